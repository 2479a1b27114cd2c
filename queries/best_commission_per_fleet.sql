-- Question: for each fleet size (and demand level), which commission rate maximises
-- platform revenue while the 95th-percentile rider wait stays within a bound?
-- Edit the bound in `bounds` (minutes). Each (fleet, demand, commission) cell is first
-- averaged over replications and any other swept dimension. A fleet where no commission
-- meets the bound is still listed, with NULL commission_rate.
WITH bounds AS (
    SELECT CAST(10.0 AS DOUBLE) AS max_wait_p95_min
),
cells AS (
    SELECT
        run_id,
        num_drivers,
        num_riders,
        commission_rate,
        count(*) AS simulations,
        avg(CAST(platform_revenue AS DOUBLE)) AS platform_revenue_mean,
        avg(wait_p95_min) AS wait_p95_min_mean
    FROM shard_metrics
    GROUP BY run_id, num_drivers, num_riders, commission_rate
),
ranked AS (
    SELECT
        c.run_id,
        c.num_drivers,
        c.num_riders,
        c.commission_rate,
        c.simulations,
        c.platform_revenue_mean,
        c.wait_p95_min_mean,
        row_number() OVER (
            PARTITION BY c.run_id, c.num_drivers, c.num_riders
            ORDER BY c.platform_revenue_mean DESC, c.commission_rate ASC
        ) AS revenue_rank
    FROM cells AS c
    CROSS JOIN bounds AS b
    WHERE c.wait_p95_min_mean <= b.max_wait_p95_min
),
fleets AS (
    SELECT DISTINCT run_id, num_drivers, num_riders FROM cells
)
SELECT
    f.run_id,
    f.num_drivers,
    f.num_riders,
    b.max_wait_p95_min,
    r.commission_rate,
    r.platform_revenue_mean,
    r.wait_p95_min_mean,
    r.simulations
FROM fleets AS f
CROSS JOIN bounds AS b
LEFT JOIN ranked AS r
    ON r.run_id = f.run_id
    AND r.num_drivers = f.num_drivers
    AND r.num_riders = f.num_riders
    AND r.revenue_rank = 1
ORDER BY f.run_id, f.num_drivers, f.num_riders
