-- Question: how did each run go? Shards and points that succeeded or failed, attempts,
-- and shard durations (seconds, from the shard outcome records). A failure beside a
-- success of the same shard is stale (repaired on the next touch) and is not counted.
SELECT
    run_id,
    count(*) AS shards,
    count_if(status = 'success') AS succeeded_shards,
    count_if(status = 'failure') AS failed_shards,
    CAST(sum(CASE WHEN status = 'success' THEN points ELSE 0 END) AS BIGINT) AS succeeded_points,
    CAST(sum(CASE WHEN status = 'failure' THEN points ELSE 0 END) AS BIGINT) AS failed_points,
    max(attempts) AS max_attempts,
    avg(CASE WHEN status = 'success' THEN duration_s END) AS success_duration_mean_s,
    max(CASE WHEN status = 'success' THEN duration_s END) AS success_duration_max_s,
    min(started_at) AS first_started_at,
    max(finished_at) AS last_finished_at
FROM shard_outcomes AS o
WHERE o.status = 'success'
    OR NOT EXISTS (
        SELECT 1
        FROM shard_outcomes AS s
        WHERE s.status = 'success'
            AND s.run_date = o.run_date
            AND s.run_id = o.run_id
            AND s.shard_id = o.shard_id
    )
GROUP BY run_id
ORDER BY run_id
