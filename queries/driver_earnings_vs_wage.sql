-- Question: do drivers earn their reservation wage, and how does that change with the
-- commission rate? Net hourly earnings (pay minus operating cost per online hour)
-- against the mean reservation wage, with the share of the driver pool that is online.
-- Averaged over every other swept dimension and every replication.
SELECT
    run_id,
    commission_rate,
    count(*) AS simulations,
    avg(driver_net_hourly_earnings) AS net_hourly_earnings_mean,
    avg(reservation_wage_mean) AS reservation_wage_mean,
    avg(driver_net_hourly_earnings - reservation_wage_mean) AS earnings_minus_wage_mean,
    avg(driver_net_hourly_earnings / NULLIF(reservation_wage_mean, 0.0)) AS earnings_to_wage_ratio,
    avg(mean_online_drivers / CAST(num_drivers AS DOUBLE)) AS online_share_mean,
    avg(utilisation) AS utilisation_mean
FROM shard_metrics
GROUP BY run_id, commission_rate
ORDER BY run_id, commission_rate
