-- Question: how does the marketplace evolve minute by minute at one point — by default
-- the point with the highest mean platform revenue in each run? Counts are averaged over
-- replications. To see another point, replace `chosen` with e.g.
--     SELECT 'demo-run-001' AS run_id, CAST(5 AS BIGINT) AS point_index
WITH point_revenue AS (
    SELECT
        run_id,
        point_index,
        avg(CAST(platform_revenue AS DOUBLE)) AS platform_revenue_mean
    FROM shard_metrics
    GROUP BY run_id, point_index
),
chosen AS (
    SELECT run_id, point_index
    FROM (
        SELECT
            run_id,
            point_index,
            row_number() OVER (
                PARTITION BY run_id ORDER BY platform_revenue_mean DESC, point_index ASC
            ) AS revenue_rank
        FROM point_revenue
    ) AS ranked
    WHERE revenue_rank = 1
)
SELECT
    s.run_id,
    s.point_index,
    s.minute,
    count(*) AS replicates,
    avg(CAST(s.drivers_idle + s.drivers_en_route + s.drivers_on_trip AS DOUBLE)) AS drivers_online,
    avg(CAST(s.drivers_idle AS DOUBLE)) AS drivers_idle,
    avg(CAST(s.drivers_en_route AS DOUBLE)) AS drivers_en_route,
    avg(CAST(s.drivers_on_trip AS DOUBLE)) AS drivers_on_trip,
    avg(CAST(s.riders_waiting AS DOUBLE)) AS riders_waiting,
    avg(CAST(s.riders_riding AS DOUBLE)) AS riders_riding
FROM snapshot_counts AS s
JOIN chosen AS c ON c.run_id = s.run_id AND c.point_index = s.point_index
GROUP BY s.run_id, s.point_index, s.minute
ORDER BY s.run_id, s.point_index, s.minute
