-- Question: what do online drivers earn per hour, and how do earnings and participation
-- move with the commission rate? Net hourly earnings (pay minus operating cost) are
-- weighted by online driver-hours, so big fleets and long windows count for more.
-- reservation_wage_mean is the mean wage of the whole driver *pool*: the drivers who go
-- online are the ones with low wages, so earnings below it are expected, not a loss.
-- Pooled over every other swept dimension and every replication.
SELECT
    run_id,
    commission_rate,
    count(*) AS simulations,
    sum(driver_net_hourly_earnings * mean_online_drivers
        * CAST(window_end_minute - window_start_minute AS DOUBLE))
        / NULLIF(sum(CASE WHEN driver_net_hourly_earnings IS NULL THEN NULL
                          ELSE mean_online_drivers
                               * CAST(window_end_minute - window_start_minute AS DOUBLE)
                     END), 0.0) AS net_hourly_earnings,
    avg(reservation_wage_mean) AS pool_reservation_wage_mean,
    avg(mean_online_drivers / CAST(num_drivers AS DOUBLE)) AS online_share_mean,
    sum(utilisation * mean_online_drivers
        * CAST(window_end_minute - window_start_minute AS DOUBLE))
        / NULLIF(sum(CASE WHEN utilisation IS NULL THEN NULL
                          ELSE mean_online_drivers
                               * CAST(window_end_minute - window_start_minute AS DOUBLE)
                     END), 0.0) AS utilisation
FROM shard_metrics
GROUP BY run_id, commission_rate
ORDER BY run_id, commission_rate
