//! Kafka mode of `dunghan serve`: the same engine as the embedded node, one per input
//! partition, in a consumer group; state in a compacted changelog; raised events written
//! exactly once by determinism and read-back (see README "Kafka mode").

mod codec;
#[cfg(test)]
mod fuzz_tests;
mod history;
mod io;
mod metrics;
mod partition;
mod protobuf;
mod query;
mod runtime;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub(crate) use query::KafkaNode;
pub(crate) use runtime::EngineFactory;

use crate::config::KafkaSection;
use crate::serve::{cluster::Peers, metrics::Metrics, node::SharedCalendars, Listen, Services};

/// Creates the topics, starts the consumer thread (and its partition threads) and serves
/// gRPC and HTTP until a signal; then stops the consumer (last checkpoint, leave the group).
pub(crate) fn run(
    tokio: &tokio::runtime::Runtime,
    kafka: KafkaSection,
    factory: EngineFactory,
    metrics: Metrics,
    (advertise, peers): (Option<String>, Vec<String>),
    (catalog, calendars): (Arc<dunghan_core::Catalog>, SharedCalendars),
    listen: Listen,
) -> anyhow::Result<()> {
    let partitions = tokio
        .block_on(io::ensure_topics(&kafka))
        .map_err(|e| anyhow::anyhow!("Kafka at {}: {e}", kafka.brokers.as_deref().unwrap_or("")))?;
    tracing::info!(
        brokers = kafka.brokers.as_deref().unwrap_or(""),
        group = %kafka.group_id,
        input = %kafka.input_topic,
        partitions,
        "Kafka mode"
    );
    let ready = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(runtime::Shared::new(
        kafka,
        factory,
        metrics.clone(),
        ready.clone(),
    )?);
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::Builder::new()
            .name("dunghan-consumer".into())
            .spawn(move || runtime::run(shared, stop, partitions))?
    };
    let own = advertise.unwrap_or_else(|| listen.grpc.to_string());
    let services = Services {
        catalog,
        calendars,
        backend: crate::serve::ingest_api::Backend::Kafka(Arc::new(KafkaNode::new(shared)?)),
        peers: tokio.block_on(async { Peers::new(&peers, &own) })?,
        metrics,
        ready,
    };
    let served = tokio.block_on(crate::serve::serve(services, listen));
    stop.store(true, Ordering::Relaxed);
    let consumed = consumer
        .join()
        .map_err(|_| anyhow::anyhow!("the consumer thread panicked"))?;
    served.and(consumed)
}

/// What a scenario raises through a partition (for tests of raised events elsewhere).
#[cfg(test)]
pub(crate) use partition::tests::scenario_raised;
