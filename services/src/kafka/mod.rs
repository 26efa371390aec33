//! Kafka mode of `dunghan serve`: the same engine as the embedded node, one per input
//! partition, in a consumer group; state in a compacted changelog; raised events written
//! exactly once by determinism and read-back (see README "Kafka mode").

mod codec;
mod fan_out;
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

/// Transparent huge pages off for the process from here on, unless `MIMALLOC_ALLOW_THP`
/// asks for them. mimalloc advises the kernel to back its arenas with 2 MiB pages, so each
/// fresh arena region costs a fault that zeroes 2 MiB; librdkafka's fetch and produce
/// buffers come and go through such regions, and zeroing pages took about a tenth of the
/// CPU in Kafka mode, with a fifth more resident memory (BENCHMARKS.md, "Huge pages").
/// mimalloc's own `MIMALLOC_ALLOW_THP=0` does the same, read only from the environment at
/// start. Embedded mode keeps the kernel's default: nothing measured there asks otherwise.
fn without_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return; // mimalloc has done what was asked
    }
    // A kernel without the flag (before 3.15) keeps its default: nothing to report.
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

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
    without_huge_pages();
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
