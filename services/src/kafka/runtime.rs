//! The consumer thread of Kafka mode: joins the group, restores assigned partitions from
//! the changelog (and suppresses output already written), applies records, moves stream
//! time, writes raised events and dead letters, and checkpoints in the order the
//! exactly-once argument needs: output durable → changelog + checkpoint durable → commit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dunghan_core::Engine;
use dunghan_proto::v1::{DossierHistory, PartitionCheckpoint, SlaEvent};
use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer as _};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::codec::{self, CONTENT_TYPE, ID_HEADER, INPUT_HEADER, MESSAGE_HEADER, REASON_HEADER};
use super::io::{self, Producer};
use super::metrics::KafkaMetrics;
use super::partition::{Partition, Processed, CHECKPOINT_KEY};
use crate::config::KafkaSection;
use crate::serve::metrics::Metrics;
use crate::serve::node::wall_clock;

/// Builds a fresh engine (catalog, calendars, rules) for a partition or a query replay.
pub(crate) type EngineFactory = Arc<dyn Fn() -> Engine + Send + Sync>;

/// How long a checkpoint may wait for its writes.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts at restoring a partition before the instance gives up (and exits).
const RESTORE_ATTEMPTS: u32 = 5;

/// State shared by the consumer thread and the gRPC services.
pub(crate) struct Shared {
    pub(crate) partitions: Mutex<BTreeMap<i32, Partition>>,
    /// False while restoring (the readiness endpoint says so).
    pub(crate) ready: Arc<AtomicBool>,
    pub(crate) metrics: Metrics,
    pub(crate) kafka_metrics: KafkaMetrics,
    pub(crate) watchers: tokio::sync::broadcast::Sender<SlaEvent>,
    pub(crate) factory: EngineFactory,
    pub(crate) cfg: KafkaSection,
    producer: Producer,
    /// Delivery failures already handled.
    failures_seen: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(
        cfg: KafkaSection,
        factory: EngineFactory,
        metrics: Metrics,
        ready: Arc<AtomicBool>,
    ) -> anyhow::Result<Shared> {
        let kafka_metrics = KafkaMetrics::new(metrics.registry())?;
        Ok(Shared {
            partitions: Mutex::new(BTreeMap::new()),
            ready,
            metrics,
            kafka_metrics,
            watchers: tokio::sync::broadcast::channel(16_384).0,
            factory,
            producer: io::producer(&cfg)?,
            cfg,
            failures_seen: AtomicU64::new(0),
        })
    }

    pub(crate) fn partitions(&self) -> MutexGuard<'_, BTreeMap<i32, Partition>> {
        // A panic while holding the lock leaves state we cannot trust: stop.
        self.partitions.lock().unwrap_or_else(|_| {
            tracing::error!("partition state lock poisoned: exiting");
            std::process::exit(1)
        })
    }
}

/// The consumer's context: rebalances restore and checkpoint; statistics give the lag.
struct Context {
    shared: Arc<Shared>,
}

impl ClientContext for Context {
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.shared.cfg.input_topic) else {
            return;
        };
        let owned = self.shared.partitions();
        for (p, stats) in &topic.partitions {
            if owned.contains_key(p) && stats.consumer_lag >= 0 {
                self.shared
                    .kafka_metrics
                    .lag
                    .with_label_values(&[&p.to_string()])
                    .set(stats.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for Context {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Context>,
        err: rdkafka::types::RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        use rdkafka::types::RDKafkaRespErr as E;
        let shared = &self.shared;
        match err {
            E::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                shared
                    .kafka_metrics
                    .rebalances
                    .with_label_values(&["assign"])
                    .inc();
                shared.ready.store(false, Ordering::Relaxed);
                shared.kafka_metrics.restoring.set(1);
                let started = Instant::now();
                let topic = shared.cfg.input_topic.clone();
                let ids: Vec<i32> = tpl
                    .elements_for_topic(&topic)
                    .iter()
                    .map(|e| e.partition())
                    .collect();
                for id in &ids {
                    let p = restore_with_retries(shared, *id);
                    let offset = Offset::Offset(p.next_offset);
                    if let Err(e) = tpl.set_partition_offset(&topic, *id, offset) {
                        tracing::error!(partition = id, error = %e, "cannot set the start offset");
                    }
                    shared.partitions().insert(*id, p);
                }
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(error = %e, "assign failed");
                }
                let took = started.elapsed().as_secs_f64();
                shared.kafka_metrics.restore_seconds.set(took);
                shared.kafka_metrics.restoring.set(0);
                shared.kafka_metrics.owned.set(ids.len() as i64);
                shared.ready.store(true, Ordering::Relaxed);
                tracing::info!(partitions = ?ids, seconds = took, "assigned and restored");
            }
            E::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                if consumer.assignment_lost() {
                    // Someone else may own them already: write nothing more.
                    shared
                        .kafka_metrics
                        .rebalances
                        .with_label_values(&["lost"])
                        .inc();
                    tracing::warn!("assignment lost: dropping partition state unwritten");
                } else {
                    shared
                        .kafka_metrics
                        .rebalances
                        .with_label_values(&["revoke"])
                        .inc();
                    if let Err(e) = checkpoint(shared, consumer) {
                        tracing::error!(error = %e, "checkpoint on revocation failed");
                    }
                }
                let dropped: Vec<i32> = std::mem::take(&mut *shared.partitions())
                    .into_keys()
                    .collect();
                for p in &dropped {
                    let _ = shared
                        .kafka_metrics
                        .lag
                        .remove_label_values(&[&p.to_string()]);
                }
                shared.kafka_metrics.owned.set(0);
                if let Err(e) = consumer.unassign() {
                    tracing::error!(error = %e, "unassign failed");
                }
                tracing::info!(partitions = ?dropped, "revoked");
            }
            other => tracing::error!(error = ?other, "rebalance error"),
        }
    }
}

fn restore_with_retries(shared: &Shared, id: i32) -> Partition {
    let mut wait = Duration::from_millis(500);
    for attempt in 1..=RESTORE_ATTEMPTS {
        match restore(shared, id) {
            Ok(p) => return p,
            Err(e) => {
                tracing::warn!(partition = id, attempt, error = %e, "restore failed");
                std::thread::sleep(wait);
                wait *= 2;
            }
        }
    }
    tracing::error!(
        partition = id,
        "cannot restore the partition after {RESTORE_ATTEMPTS} attempts: exiting so that \
         the group reassigns it"
    );
    std::process::exit(1)
}

/// Reads a partition's changelog and the output written after its checkpoint, and
/// rebuilds its state.
fn restore(shared: &Shared, id: i32) -> anyhow::Result<Partition> {
    let cfg = &shared.cfg;
    let mut histories = HashMap::new();
    let mut checkpoint = None;
    let records = io::read_partition(cfg, &cfg.changelog_topic, id, Offset::Beginning, |m| {
        let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
            return Ok(());
        };
        match (key, m.payload()) {
            (CHECKPOINT_KEY, Some(v)) => checkpoint = Some(PartitionCheckpoint::decode(v)?),
            (CHECKPOINT_KEY, None) => checkpoint = None,
            (_, Some(v)) => {
                let history = DossierHistory::decode(v)?;
                histories.insert(Arc::from(key), history.entries);
            }
            (_, None) => {
                histories.remove(key);
            }
        }
        Ok(())
    })?;
    let from = checkpoint
        .as_ref()
        .map_or(0, |c: &PartitionCheckpoint| c.output_end);
    let mut suppress = HashSet::new();
    io::read_partition(cfg, &cfg.output_topic, id, Offset::Offset(from), |m| {
        if let Some(id) = io::header(m, ID_HEADER) {
            suppress.insert(id.to_owned());
        }
        Ok(())
    })?;
    let dossiers = histories.len();
    let (written, next) = (
        suppress.len(),
        checkpoint.as_ref().map_or(0, |c| c.next_offset),
    );
    let p = Partition::restore(id, (shared.factory)(), histories, checkpoint, suppress)?;
    tracing::info!(
        partition = id,
        changelog_records = records,
        dossiers,
        written_after_checkpoint = written,
        next_offset = next,
        "restored partition"
    );
    Ok(p)
}

/// Sends one record, waiting while the producer's queue is full.
fn send(producer: &Producer, mut record: BaseRecord<'_, [u8], [u8]>) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

/// Writes raised events to the output partition of input partition `p`.
fn write_raised(shared: &Shared, p: i32, input: &str, raised: &[SlaEvent]) -> anyhow::Result<()> {
    let json = shared.cfg.output_format == "json";
    let content_type = if json { codec::JSON } else { codec::PROTOBUF };
    for e in raised {
        let payload = codec::encode(e, json);
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: ID_HEADER,
                value: Some(e.id.as_bytes()),
            })
            .insert(Header {
                key: INPUT_HEADER,
                value: Some(input.as_bytes()),
            })
            .insert(Header {
                key: CONTENT_TYPE,
                value: Some(content_type.as_bytes()),
            });
        let record = BaseRecord::to(&shared.cfg.output_topic)
            .partition(p)
            .key(e.dossier_id.as_bytes())
            .payload(payload.as_slice())
            .headers(headers);
        send(&shared.producer, record)?;
    }
    shared.metrics.observe(raised);
    for e in raised {
        // No subscriber is not an error.
        let _ = shared.watchers.send(e.clone());
    }
    Ok(())
}

/// Handles one input record of an owned partition.
fn handle(shared: &Shared, m: &BorrowedMessage<'_>) -> anyhow::Result<()> {
    let id = m.partition();
    let present = m
        .timestamp()
        .to_millis()
        .filter(|ms| *ms > 0)
        .map_or_else(wall_clock, |ms| ms.div_euclid(1000));
    let content_type = io::header(m, CONTENT_TYPE);
    let done: Processed = {
        let mut parts = shared.partitions();
        let Some(p) = parts.get_mut(&id) else {
            return Ok(()); // revoked meanwhile
        };
        if m.offset() < p.next_offset {
            return Ok(()); // applied before the last checkpoint
        }
        p.process(m.offset(), present, m.key(), m.payload(), content_type)
    };
    let input = format!("{id}/{}", m.offset());
    write_raised(shared, id, &input, &done.raised)?;
    if let Some(status) = done.status {
        let reason = done
            .dead_letter
            .as_ref()
            .map_or("", |(code, _)| code.as_str());
        shared
            .metrics
            .count_event(status, reason, done.accepted.as_ref());
    }
    if let Some((code, message)) = &done.dead_letter {
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: REASON_HEADER,
                value: Some(code.as_bytes()),
            })
            .insert(Header {
                key: MESSAGE_HEADER,
                value: Some(message.as_bytes()),
            })
            .insert(Header {
                key: INPUT_HEADER,
                value: Some(input.as_bytes()),
            });
        if let Some(t) = content_type {
            headers = headers.insert(Header {
                key: CONTENT_TYPE,
                value: Some(t.as_bytes()),
            });
        }
        let mut record = BaseRecord::to(&shared.cfg.dead_letter_topic)
            .payload(m.payload().unwrap_or_default())
            .headers(headers);
        if let Some(key) = m.key() {
            record = record.key(key);
        }
        send(&shared.producer, record)?;
        shared
            .kafka_metrics
            .dead_letters
            .with_label_values(&[code.as_str()])
            .inc();
    }
    Ok(())
}

/// Makes everything so far durable: raised events and dead letters, then each changed
/// partition's dossier histories and checkpoint, then the offsets.
fn checkpoint(shared: &Shared, consumer: &BaseConsumer<Context>) -> anyhow::Result<()> {
    let producer = &shared.producer;
    let deliveries = producer.context();
    let flush = |what: &str| -> anyhow::Result<()> {
        producer
            .flush(FLUSH_TIMEOUT)
            .map_err(|e| anyhow::anyhow!("flushing {what}: {e}"))?;
        let failed = deliveries.failed();
        let seen = shared.failures_seen.swap(failed, Ordering::Relaxed);
        if failed > seen {
            shared.kafka_metrics.delivery_failures.inc_by(failed - seen);
            anyhow::bail!("{} {what} records were not delivered", failed - seen);
        }
        Ok(())
    };
    flush("raised-event")?;
    let mut offsets = TopicPartitionList::new();
    {
        let mut parts = shared.partitions();
        let (mut open, mut pending) = (0, 0);
        for p in parts.values_mut() {
            open += p.engine().open_dossiers();
            pending += p.engine().pending_timers();
            let end = deliveries.end(&shared.cfg.output_topic, p.id).unwrap_or(0);
            for (key, value) in p.take_changelog(end) {
                let mut record = BaseRecord::to(&shared.cfg.changelog_topic)
                    .partition(p.id)
                    .key(key.as_bytes());
                if let Some(v) = &value {
                    record = record.payload(v.as_slice());
                }
                send(producer, record)?;
                if key == CHECKPOINT_KEY {
                    offsets.add_partition_offset(
                        &shared.cfg.input_topic,
                        p.id,
                        Offset::Offset(p.next_offset),
                    )?;
                }
            }
        }
        shared.metrics.open.set(open as i64);
        shared.metrics.pending_timers.set(pending as i64);
    }
    flush("changelog")?;
    if offsets.count() > 0 {
        // The checkpoint, not the group offset, decides where a restore starts: a failed
        // commit only leaves the group's lag figure behind.
        if let Err(e) = consumer.commit(&offsets, CommitMode::Sync) {
            tracing::warn!(error = %e, "offset commit failed");
        }
    }
    Ok(())
}

/// After a failed checkpoint: rebuild every owned partition from what is durable and
/// go back to its checkpoint.
fn reset(shared: &Shared, consumer: &BaseConsumer<Context>) {
    shared.kafka_metrics.resets.inc();
    shared.ready.store(false, Ordering::Relaxed);
    let ids: Vec<i32> = shared.partitions().keys().copied().collect();
    for id in ids {
        let p = restore_with_retries(shared, id);
        let offset = Offset::Offset(p.next_offset);
        shared.partitions().insert(id, p);
        if let Err(e) = consumer.seek(&shared.cfg.input_topic, id, offset, io::REQUEST_TIMEOUT) {
            tracing::error!(partition = id, error = %e, "seek after reset failed: exiting");
            std::process::exit(1);
        }
    }
    shared.ready.store(true, Ordering::Relaxed);
}

/// Runs the consumer until `stop`; then checkpoints and leaves the group.
pub(crate) fn run(shared: Arc<Shared>, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let cfg = shared.cfg.clone();
    let mut c = io::client_config(&cfg);
    c.set("group.id", &cfg.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "5000");
    for (key, value) in &cfg.properties {
        c.set(key, value);
    }
    let consumer: BaseConsumer<Context> = c.create_with_context(Context {
        shared: shared.clone(),
    })?;
    consumer.subscribe(&[&cfg.input_topic])?;
    let interval = Duration::from_millis(cfg.checkpoint_interval_ms);
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let result = match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => handle(&shared, &m),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "consumer");
                Ok(())
            }
            None => {
                // Caught up: stream time follows the wall clock.
                let now = wall_clock();
                let mut fired = Vec::new();
                for (id, p) in shared.partitions().iter_mut() {
                    let raised = p.advance(now);
                    if !raised.is_empty() {
                        fired.push((*id, format!("{id}/clock"), raised));
                    }
                }
                fired
                    .iter()
                    .try_for_each(|(id, input, raised)| write_raised(&shared, *id, input, raised))
            }
        };
        let result = result.and_then(|()| {
            if last.elapsed() >= interval {
                last = Instant::now();
                checkpoint(&shared, &consumer)
            } else {
                Ok(())
            }
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "checkpoint failed: restoring owned partitions again");
            reset(&shared, &consumer);
        }
    }
    tracing::info!("stopping the consumer: last checkpoint, then leaving the group");
    if let Err(e) = checkpoint(&shared, &consumer) {
        tracing::error!(error = %e, "last checkpoint failed (the next owner regenerates)");
    }
    consumer.unsubscribe();
    // Closing the consumer (on drop) revokes the partitions and leaves the group.
    drop(consumer);
    Ok(())
}
