//! Metrics of the Kafka runtime, in the node's registry: consumer lag, checkpoints,
//! restores, rebalances, dead letters, delivery failures and resets. Labels: partition
//! numbers and reason codes (bounded), never dossier ids.

use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Records behind the end of each owned input partition (from librdkafka statistics).
pub(crate) const LAG: &str = "dunghan_kafka_consumer_lag";
/// Seconds the last assignment took to restore its partitions.
pub(crate) const RESTORE_SECONDS: &str = "dunghan_kafka_restore_seconds";
/// 1 while partitions are being restored (the instance is not ready), else 0.
pub(crate) const RESTORING: &str = "dunghan_kafka_restoring";
/// Rebalances this instance took part in (assignments and revocations).
pub(crate) const REBALANCES: &str = "dunghan_kafka_rebalances_total";
/// Input records sent to the dead-letter topic, by reason code.
pub(crate) const DEAD_LETTERS: &str = "dunghan_kafka_dead_letters_total";
/// Records the producer failed to deliver (each leads to a reset).
pub(crate) const DELIVERY_FAILURES: &str = "dunghan_kafka_delivery_failures_total";
/// Times the owned partitions were restored again after a failed checkpoint.
pub(crate) const RESETS: &str = "dunghan_kafka_resets_total";
/// Input partitions this instance owns.
pub(crate) const OWNED: &str = "dunghan_kafka_owned_partitions";
/// Input offset below which an owned partition's work is durable (its last checkpoint
/// delivered, or the one it was restored from).
pub(crate) const CHECKPOINT_OFFSET: &str = "dunghan_kafka_checkpoint_offset";

/// The runtime's metrics.
#[derive(Debug, Clone)]
pub(crate) struct KafkaMetrics {
    pub(crate) lag: IntGaugeVec,
    pub(crate) restore_seconds: Gauge,
    pub(crate) restoring: IntGauge,
    pub(crate) rebalances: IntCounterVec,
    pub(crate) dead_letters: IntCounterVec,
    pub(crate) delivery_failures: IntCounter,
    pub(crate) resets: IntCounter,
    pub(crate) owned: IntGauge,
    pub(crate) checkpoint_offset: IntGaugeVec,
}

impl KafkaMetrics {
    pub(crate) fn new(registry: &Registry) -> anyhow::Result<KafkaMetrics> {
        let lag = IntGaugeVec::new(
            Opts::new(LAG, "Records behind the partition's end."),
            &["partition"],
        )?;
        let restore_seconds = Gauge::new(RESTORE_SECONDS, "Duration of the last restore.")?;
        let restoring = IntGauge::new(RESTORING, "1 while restoring partitions.")?;
        let rebalances = IntCounterVec::new(
            Opts::new(REBALANCES, "Rebalances by kind (assign, revoke, lost)."),
            &["kind"],
        )?;
        let dead_letters = IntCounterVec::new(
            Opts::new(DEAD_LETTERS, "Input records sent to the dead-letter topic."),
            &["reason"],
        )?;
        let delivery_failures = IntCounter::new(DELIVERY_FAILURES, "Failed deliveries.")?;
        let resets = IntCounter::new(RESETS, "Restores after a failed checkpoint.")?;
        let owned = IntGauge::new(OWNED, "Input partitions owned.")?;
        let checkpoint_offset = IntGaugeVec::new(
            Opts::new(
                CHECKPOINT_OFFSET,
                "Input offset below which the partition's work is durable (last checkpoint).",
            ),
            &["partition"],
        )?;
        registry.register(Box::new(lag.clone()))?;
        registry.register(Box::new(restore_seconds.clone()))?;
        registry.register(Box::new(restoring.clone()))?;
        registry.register(Box::new(rebalances.clone()))?;
        registry.register(Box::new(dead_letters.clone()))?;
        registry.register(Box::new(delivery_failures.clone()))?;
        registry.register(Box::new(resets.clone()))?;
        registry.register(Box::new(owned.clone()))?;
        registry.register(Box::new(checkpoint_offset.clone()))?;
        for kind in ["assign", "revoke", "lost"] {
            rebalances.with_label_values(&[kind]);
        }
        Ok(KafkaMetrics {
            lag,
            restore_seconds,
            restoring,
            rebalances,
            dead_letters,
            delivery_failures,
            resets,
            owned,
            checkpoint_offset,
        })
    }

    /// Shows that owned `partition`'s work is durable below input `offset`.
    pub(crate) fn show_durable(&self, partition: i32, offset: i64) {
        self.checkpoint_offset
            .with_label_values(&[&partition.to_string()])
            .set(offset);
    }
}
