-- Question: which shards failed, in which run, on which points, and with what error?
-- (The per-run count is a join, not a window: DuckDB 2.0.1 miscounts a partitioned
-- window over a view filtered on a hive partition column.) A failure beside a success of
-- the same shard is stale (a crash between the two writes; repaired on the next touch)
-- and is not counted.
WITH failures AS (
    SELECT
        run_id,
        shard_id,
        attempts,
        points,
        first_point_index,
        last_point_index,
        error_type,
        error_message,
        finished_at
    FROM shard_outcomes AS o
    WHERE o.status = 'failure'
        AND NOT EXISTS (
            SELECT 1
            FROM shard_outcomes AS s
            WHERE s.status = 'success'
                AND s.run_date = o.run_date
                AND s.run_id = o.run_id
                AND s.shard_id = o.shard_id
        )
),
per_run AS (
    SELECT run_id, count(*) AS failed_shards_in_run
    FROM failures
    GROUP BY run_id
)
SELECT
    f.run_id,
    f.shard_id,
    f.attempts,
    f.points,
    f.first_point_index,
    f.last_point_index,
    f.error_type,
    f.error_message,
    f.finished_at,
    p.failed_shards_in_run
FROM failures AS f
JOIN per_run AS p ON p.run_id = f.run_id
ORDER BY f.run_id, f.shard_id
