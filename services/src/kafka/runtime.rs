//! The consumer thread of Kafka mode: joins the group, restores assigned partitions from
//! the changelog (and suppresses output already written), hands each partition's records
//! to its thread (`worker.rs`; partitions without one are applied here), and checkpoints
//! in the order the exactly-once argument needs: output durable → changelog + checkpoint
//! durable → commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use dunghan_core::{Engine, Raised};
use dunghan_proto::v1::PartitionCheckpoint;
use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::BaseRecord;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::codec::{self, CONTENT_TYPE, ID_HEADER, INPUT_HEADER, MESSAGE_HEADER, REASON_HEADER};
use super::fan_out::fan_out;
use super::history::History;
use super::io::{self, Producers};
use super::metrics::KafkaMetrics;
use super::partition::{ChangelogRecord, Histories, Ids, Partition, Processed, CHECKPOINT_KEY};
use crate::config::KafkaSection;
use crate::convert::to_sla_event;
use crate::serve::metrics::{Metrics, Tally};
use crate::serve::node::wall_clock;

/// Builds a fresh engine (catalog, calendars, rules) for a partition or a query replay.
pub(crate) type EngineFactory = Arc<dyn Fn() -> Engine + Send + Sync>;

/// How long a checkpoint may wait for its writes.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts at restoring a partition before the instance gives up (and exits).
const RESTORE_ATTEMPTS: u32 = 5;

/// The owned partitions, each under its own lock: the thread that applies a partition's
/// records holds it while it applies one and sends what it raised, so a checkpoint that
/// takes the partition's state also finds that output numbered.
pub(crate) type Owned = BTreeMap<i32, Mutex<Partition>>;

/// State shared by the consumer thread, the partition threads and the gRPC services.
pub(crate) struct Shared {
    /// Read-locked to apply records or take a checkpoint; write-locked (every partition
    /// thread paused between two records) to assign, revoke or reset partitions.
    partitions: RwLock<Owned>,
    /// False while restoring (the readiness endpoint says so).
    pub(crate) ready: Arc<AtomicBool>,
    pub(crate) metrics: Metrics,
    pub(crate) kafka_metrics: KafkaMetrics,
    pub(crate) watchers: tokio::sync::broadcast::Sender<crate::serve::node::Slice>,
    pub(crate) factory: EngineFactory,
    pub(crate) cfg: KafkaSection,
    producers: Producers,
    /// Delivery failures already handled.
    failures_seen: AtomicU64,
    /// Writes that failed (a partition thread's or the consumer thread's), and how many
    /// of them the last reset dealt with: while they differ, records wait for the reset.
    write_failures: AtomicU64,
    failures_reset: AtomicU64,
    /// Sequence number of the last record handed to a producer (its delivery opaque).
    sent: AtomicUsize,
    /// The checkpoint under way, if any.
    pending: Mutex<Option<Pending>>,
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
            partitions: RwLock::new(BTreeMap::new()),
            ready,
            metrics,
            kafka_metrics,
            watchers: tokio::sync::broadcast::channel(16_384).0,
            factory,
            producers: Producers::new(&cfg)?,
            cfg,
            failures_seen: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
            failures_reset: AtomicU64::new(0),
            sent: AtomicUsize::new(0),
            pending: Mutex::new(None),
        })
    }

    /// Where the consumer resumes a restored partition.
    fn resume_at(&self, p: &Partition) -> Offset {
        if self.cfg.resume_from_beginning {
            Offset::Beginning
        } else {
            Offset::Offset(p.next_offset)
        }
    }

    /// A record to `topic`, numbered for the delivery reports (which keep the end offsets
    /// of the output topic's partitions).
    fn record<'a>(&self, topic: &'a str) -> Record<'a> {
        let seq = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        let opaque = io::Deliveries::opaque(seq, topic == self.cfg.output_topic);
        BaseRecord::with_opaque_to(topic, opaque)
    }

    fn pending(&self) -> MutexGuard<'_, Option<Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of the last record handed to a producer.
    fn last_sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }

    /// The owned partitions, to read or to apply records to.
    pub(crate) fn partitions(&self) -> RwLockReadGuard<'_, Owned> {
        self.partitions.read().unwrap_or_else(|_| poisoned())
    }

    /// The owned partitions with every partition thread paused, to change which they are.
    fn partitions_mut(&self) -> RwLockWriteGuard<'_, Owned> {
        self.partitions.write().unwrap_or_else(|_| poisoned())
    }

    /// A write failed and the owned partitions are not reset yet.
    pub(crate) fn failing(&self) -> bool {
        self.write_failures.load(Ordering::SeqCst) != self.failures_reset.load(Ordering::SeqCst)
    }
}

/// One partition's state, locked.
pub(crate) fn lock(p: &Mutex<Partition>) -> MutexGuard<'_, Partition> {
    p.lock().unwrap_or_else(|_| poisoned())
}

/// A panic while holding a partition lock leaves state we cannot trust: stop.
fn poisoned() -> ! {
    tracing::error!("partition state lock poisoned: exiting");
    std::process::exit(1)
}

/// The consumer's context: rebalances restore and checkpoint; statistics give the lag.
pub(crate) struct Context {
    shared: Arc<Shared>,
}

impl ClientContext for Context {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        io::log_client(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        io::log_error(error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.shared.cfg.input_topic) else {
            return;
        };
        // Never waits: the next report comes in 5 s, and this callback must not block on
        // the lock a rebalance on the same thread may hold.
        let Ok(owned) = self.shared.partitions.try_read() else {
            return;
        };
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
                // Restored before the lock is taken (queries meanwhile see what is owned,
                // nothing after a revocation); no record of these partitions flows before
                // `assign`.
                let restored = restore_with_retries(shared, &ids);
                let mut parts = shared.partitions_mut();
                for p in restored {
                    // Durable up to its checkpoint, which the restore started from.
                    shared.kafka_metrics.show_durable(p.id, p.next_offset);
                    let offset = shared.resume_at(&p);
                    if let Err(e) = tpl.set_partition_offset(&topic, p.id, offset) {
                        tracing::error!(partition = p.id, error = %e, "cannot set the start offset");
                    }
                    parts.insert(p.id, Mutex::new(p));
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
                // Every partition thread pauses between two records until they are gone.
                let mut parts = shared.partitions_mut();
                if consumer.assignment_lost() {
                    // Someone else may own them already: write nothing more.
                    shared
                        .kafka_metrics
                        .rebalances
                        .with_label_values(&["lost"])
                        .inc();
                    tracing::warn!("assignment lost: dropping partition state unwritten");
                    shared.pending().take();
                } else {
                    shared
                        .kafka_metrics
                        .rebalances
                        .with_label_values(&["revoke"])
                        .inc();
                    if let Err(e) = checkpoint(shared, &parts, consumer) {
                        tracing::error!(error = %e, "checkpoint on revocation failed");
                    }
                }
                let dropped: Vec<i32> = std::mem::take(&mut *parts).into_keys().collect();
                for p in &dropped {
                    let m = &shared.kafka_metrics;
                    for gauge in [&m.lag, &m.checkpoint_offset] {
                        let _ = gauge.remove_label_values(&[&p.to_string()]);
                    }
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

fn restore_with_retries(shared: &Shared, ids: &[i32]) -> Vec<Partition> {
    let mut wait = Duration::from_millis(500);
    for attempt in 1..=RESTORE_ATTEMPTS {
        match restore(shared, ids) {
            Ok(p) => return p,
            Err(e) => {
                tracing::warn!(partitions = ?ids, attempt, error = %e, "restore failed");
                std::thread::sleep(wait);
                wait *= 2;
            }
        }
    }
    tracing::error!(
        partitions = ?ids,
        "cannot restore after {RESTORE_ATTEMPTS} attempts: exiting so that the group \
         reassigns the partitions"
    );
    std::process::exit(1)
}

/// Reads the partitions' changelog and the output written after their checkpoints, and
/// rebuilds their state.
fn restore(shared: &Shared, ids: &[i32]) -> anyhow::Result<Vec<Partition>> {
    let cfg = &shared.cfg;
    // Histories are checked and decoded by their partition's thread when it is rebuilt.
    type State = (Histories, Option<PartitionCheckpoint>);
    let mut state: HashMap<i32, State> = ids.iter().map(|p| (*p, Default::default())).collect();
    let starts: Vec<(i32, Offset)> = ids.iter().map(|p| (*p, Offset::Beginning)).collect();
    let began = Instant::now();
    let records = io::read_partitions(cfg, &cfg.changelog_topic, &starts, |m| {
        let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
            return Ok(());
        };
        let Some((histories, checkpoint)) = state.get_mut(&m.partition()) else {
            return Ok(());
        };
        match (key, m.payload()) {
            (CHECKPOINT_KEY, Some(v)) => *checkpoint = Some(PartitionCheckpoint::decode(v)?),
            (CHECKPOINT_KEY, None) => *checkpoint = None,
            (_, Some(v)) => {
                histories.insert(Arc::from(key), History::unchecked(v.to_vec()));
            }
            (_, None) => {
                histories.remove(key);
            }
        }
        Ok(())
    })?;
    let starts: Vec<(i32, Offset)> = ids
        .iter()
        .map(|p| {
            let end = state[p].1.as_ref().map_or(0, |c| c.output_end);
            (*p, Offset::Offset(end))
        })
        .collect();
    let read_changelog = began.elapsed().as_secs_f64();
    let mut suppress: HashMap<i32, Ids> = HashMap::new();
    let tail = io::read_partitions(cfg, &cfg.output_topic, &starts, |m| {
        if let Some(id) = io::header(m, ID_HEADER) {
            suppress
                .entry(m.partition())
                .or_default()
                .insert(id.to_owned());
        }
        Ok(())
    })?;
    let read_output = began.elapsed().as_secs_f64() - read_changelog;
    // Partitions are independent: rebuilt side by side, one thread each.
    let work: Vec<_> = ids
        .iter()
        .map(|id| {
            let (histories, checkpoint) = state.remove(id).unwrap_or_default();
            (
                *id,
                histories,
                checkpoint,
                suppress.remove(id).unwrap_or_default(),
            )
        })
        .collect();
    let out = std::thread::scope(|scope| {
        let rebuilding: Vec<_> = work
            .into_iter()
            .map(|(id, histories, checkpoint, suppress)| {
                scope.spawn(move || rebuild(shared, id, histories, checkpoint, suppress))
            })
            .collect();
        rebuilding
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("rebuild panicked")))
            })
            .collect::<anyhow::Result<Vec<Partition>>>()
    })?;
    tracing::info!(
        changelog_records = records,
        read_changelog_seconds = read_changelog,
        output_records = tail,
        read_output_seconds = read_output,
        rebuild_seconds = began.elapsed().as_secs_f64() - read_changelog - read_output,
        "restore read and rebuilt"
    );
    Ok(out)
}

/// Checks a partition's histories as read from the changelog and rebuilds its state.
fn rebuild(
    shared: &Shared,
    id: i32,
    histories: Histories,
    checkpoint: Option<PartitionCheckpoint>,
    suppress: Ids,
) -> anyhow::Result<Partition> {
    let (dossiers, written) = (histories.len(), suppress.len());
    let p = Partition::restore(id, (shared.factory)(), histories, checkpoint, suppress)?;
    tracing::info!(
        partition = id,
        dossiers,
        written_after_checkpoint = written,
        next_offset = p.next_offset,
        "restored partition"
    );
    Ok(p)
}

/// A record of the runtime's producers; its delivery opaque holds its sequence number.
type Record<'a> = BaseRecord<'a, [u8], [u8], usize>;

/// Sends one record, waiting while its producer's queue is full: the changelog's of input
/// partition `changelog`, or (`None`) the output and dead-letter topics'.
fn send(shared: &Shared, mut record: Record<'_>, changelog: Option<i32>) -> anyhow::Result<()> {
    let producer = shared.producers.get(changelog);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, r)) => {
                // Never enqueued, so never reported: a checkpoint must not wait for it.
                shared.producers.deliveries().reported(r.delivery_opaque);
                return Err(e.into());
            }
        }
    }
}

/// Sends raised events to the output partition of input partition `p` (under that
/// partition's lock: see `Owned`).
fn produce_raised(shared: &Shared, p: i32, input: &str, raised: &[Raised]) -> anyhow::Result<()> {
    let json = shared.cfg.output_format == "json";
    let content_type = if json { codec::JSON } else { codec::PROTOBUF };
    let mut payload = codec::encode_buffer();
    for e in raised {
        codec::encode(e, json, &mut payload);
        let headers = codec::headers([
            (ID_HEADER, e.id.as_str()),
            (INPUT_HEADER, input),
            (CONTENT_TYPE, content_type),
        ]);
        let record = shared
            .record(&shared.cfg.output_topic)
            .partition(p)
            .key(e.dossier_id.as_bytes())
            .payload(payload.as_slice())
            .headers(headers);
        send(shared, record, None)?;
    }
    Ok(())
}

/// Counts sent raised events and hands them to the watchers (after the partition's lock).
fn publish(shared: &Shared, raised: &[Raised], tally: &mut Tally) {
    shared.metrics.observe_into(tally, raised);
    if !raised.is_empty() && shared.watchers.receiver_count() > 0 {
        // A subscriber that left meanwhile is not an error.
        let _ = shared
            .watchers
            .send(Arc::new(raised.iter().map(to_sla_event).collect()));
    }
}

/// Sends the dead letter of input record `m` (its payload, key and the reason).
fn produce_dead_letter(
    shared: &Shared,
    m: &BorrowedMessage<'_>,
    input: &str,
    (code, message): &(String, String),
) -> anyhow::Result<()> {
    let headers = codec::headers(
        [
            (REASON_HEADER, code.as_str()),
            (MESSAGE_HEADER, message.as_str()),
            (INPUT_HEADER, input),
        ]
        .into_iter()
        .chain(io::content_type(m).map(|t| (CONTENT_TYPE, t))),
    );
    let mut record = shared
        .record(&shared.cfg.dead_letter_topic)
        .payload(m.payload().unwrap_or_default())
        .headers(headers);
    if let Some(key) = m.key() {
        record = record.key(key);
    }
    send(shared, record, None)
}

/// Counts a failed write: every partition waits for the reset, and no checkpoint is taken
/// before it (the caller still holds the partition's lock).
fn write_failed(shared: &Shared) {
    shared.write_failures.fetch_add(1, Ordering::SeqCst);
}

/// Handles one input record of an owned partition: applies it and sends what it raised
/// and its dead letter under the partition's lock, then counts them. An error is a failed
/// write (counted: the consumer thread resets the partitions).
pub(crate) fn handle(
    shared: &Shared,
    parts: &Owned,
    m: &BorrowedMessage<'_>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let id = m.partition();
    let present = m
        .timestamp()
        .to_millis()
        .filter(|ms| *ms > 0)
        .map_or_else(wall_clock, |ms| ms.div_euclid(1000));
    let done: Processed = {
        let Some(p) = parts.get(&id) else {
            return Ok(()); // revoked meanwhile
        };
        let mut p = lock(p);
        if m.offset() < p.next_offset {
            return Ok(()); // applied before the last checkpoint
        }
        // A payload that starts as JSON is JSON: its headers are not even parsed.
        let payload = m.payload();
        let content_type = match payload {
            Some(bytes) if codec::starts_as_json(bytes) => None,
            _ => io::content_type(m),
        };
        let done = p.process(m.offset(), present, m.key(), payload, content_type);
        if !done.raised.is_empty() || done.dead_letter.is_some() {
            let input = codec::input_id(id, m.offset());
            let sent = produce_raised(shared, id, &input, &done.raised).and_then(|()| {
                done.dead_letter
                    .as_ref()
                    .map_or(Ok(()), |dead| produce_dead_letter(shared, m, &input, dead))
            });
            if let Err(e) = sent {
                write_failed(shared);
                return Err(e);
            }
        }
        done
    };
    if let Some(status) = done.status {
        let reason = done
            .dead_letter
            .as_ref()
            .map_or("", |(code, _)| code.as_str());
        shared
            .metrics
            .count_event_into(tally, status, reason, done.accepted.as_ref());
    }
    if let Some((code, _)) = &done.dead_letter {
        shared
            .kafka_metrics
            .dead_letters
            .with_label_values(&[code.as_str()])
            .inc();
    }
    publish(shared, &done.raised, tally);
    Ok(())
}

/// Moves owned partition `id`'s stream time to the wall clock if it is at its end (its
/// records are all applied) and sends what fires.
pub(crate) fn advance(
    shared: &Shared,
    parts: &Owned,
    id: i32,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let Some(p) = parts.get(&id) else {
        return Ok(());
    };
    let raised = {
        let mut p = lock(p);
        if !p.at_end {
            return Ok(()); // records to apply first: stream time follows them
        }
        let raised = p.advance(wall_clock());
        if raised.is_empty() {
            return Ok(()); // the usual tick: nothing due
        }
        if let Err(e) = produce_raised(shared, id, &format!("{id}/clock"), &raised) {
            write_failed(shared);
            return Err(e);
        }
        raised
    };
    publish(shared, &raised, tally);
    Ok(())
}

/// What a checkpoint writes: each changed partition's changelog records (dossier
/// histories, tombstones, its checkpoint last) and the input offsets to commit after.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// (partition, its records).
    records: Vec<(i32, Vec<ChangelogRecord>)>,
    offsets: Vec<(i32, i64)>,
}

impl Snapshot {
    /// How many records it writes.
    fn len(&self) -> usize {
        self.records.iter().map(|(_, r)| r.len()).sum()
    }

    /// The bytes of their values.
    fn bytes(&self) -> usize {
        let values = self.records.iter().flat_map(|(_, r)| r);
        values.map(|(_, v)| v.as_ref().map_or(0, Vec::len)).sum()
    }
}

/// A checkpoint of at least this many records takes and sends each partition's on a
/// thread of its own (`fan_out.rs`): one after a catch-up, with a core otherwise idle.
const FAN_OUT_FROM: usize = 10_000;

/// A checkpoint under way while processing goes on: its changelog records wait until the
/// output sent before it is delivered, its offsets until its changelog records are.
#[derive(Debug)]
pub(crate) struct Pending {
    snapshot: Snapshot,
    /// The stage is done when every record numbered up to this one is reported.
    waits_for: usize,
    changelog_sent: bool,
    /// When the stage began: one that waits longer than a flush may is a failure.
    since: Instant,
}

/// Takes each changed partition's changelog records as of now. `output_end` of each
/// partition is where its output is known delivered: after a flush exactly, otherwise
/// short of what is in flight, which a restore then reads as well (safe: it only
/// suppresses more ids that are never raised again). Fails if a write failed: the state
/// taken may be ahead of its output.
fn snapshot(shared: &Shared, parts: &Owned) -> anyhow::Result<Snapshot> {
    let deliveries = shared.producers.deliveries();
    let unsaved: usize = parts.values().map(|p| lock(p).unsaved()).sum();
    let taken = fan_out(parts.values(), unsaved >= FAN_OUT_FROM, |p| {
        let mut p = lock(p);
        let end = deliveries.end(p.id).unwrap_or(0);
        (p.id, p.next_offset, p.take_changelog(end))
    });
    let mut snapshot = Snapshot::default();
    for (id, next_offset, records) in taken {
        if !records.is_empty() {
            snapshot.offsets.push((id, next_offset));
            snapshot.records.push((id, records));
        }
    }
    anyhow::ensure!(
        !shared.failing(),
        "a raised-event or dead-letter write failed"
    );
    Ok(snapshot)
}

/// Sends a snapshot's changelog records, each to its input partition's number (and a
/// large snapshot's partitions at once, in order within each).
fn write_changelog(shared: &Shared, snapshot: &Snapshot) -> anyhow::Result<()> {
    let parallel = snapshot.len() >= FAN_OUT_FROM;
    let sent = fan_out(&snapshot.records, parallel, |(partition, records)| {
        for (key, value) in records {
            let mut record = shared
                .record(&shared.cfg.changelog_topic)
                .partition(*partition)
                .key(key.as_bytes());
            if let Some(v) = value {
                record = record.payload(v.as_slice());
            }
            send(shared, record, Some(*partition))?;
        }
        Ok(())
    });
    sent.into_iter().collect()
}

/// Commits a snapshot's input offsets, once its changelog is delivered (and shows them in
/// `dunghan_kafka_checkpoint_offset`). The checkpoint, not the group offset, decides
/// where a restore starts: a failed commit only leaves the group's lag figure behind.
fn commit(
    consumer: &BaseConsumer<Context>,
    shared: &Shared,
    snapshot: &Snapshot,
    mode: CommitMode,
) {
    if snapshot.offsets.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (p, offset) in &snapshot.offsets {
        shared.kafka_metrics.show_durable(*p, *offset);
        if let Err(e) =
            tpl.add_partition_offset(&shared.cfg.input_topic, *p, Offset::Offset(*offset))
        {
            tracing::warn!(partition = p, error = %e, "offset to commit");
        }
    }
    if let Err(e) = consumer.commit(&tpl, mode) {
        tracing::warn!(error = %e, "offset commit failed");
    }
}

/// Fails if deliveries failed since the last look (counted in the metrics).
fn check_deliveries(shared: &Shared, what: &str) -> anyhow::Result<()> {
    let failed = shared.producers.deliveries().failed();
    let seen = shared.failures_seen.swap(failed, Ordering::Relaxed);
    if failed > seen {
        shared.kafka_metrics.delivery_failures.inc_by(failed - seen);
        anyhow::bail!("{} {what} records were not delivered", failed - seen);
    }
    Ok(())
}

/// Waits until every record sent so far is delivered.
fn flush(shared: &Shared, what: &str) -> anyhow::Result<()> {
    shared
        .producers
        .flush(FLUSH_TIMEOUT)
        .map_err(|e| anyhow::anyhow!("flushing {what}: {e}"))?;
    check_deliveries(shared, what)
}

/// Moves the checkpoint under way one stage on when its writes are delivered, or starts
/// one when `due`. Processing goes on meanwhile; the order stays output → changelog →
/// commit, one checkpoint at a time.
fn pipeline_checkpoint(
    shared: &Shared,
    consumer: &BaseConsumer<Context>,
    due: bool,
) -> anyhow::Result<bool> {
    let mut slot = shared.pending();
    match slot.as_mut() {
        Some(p) if shared.producers.deliveries().reported_through() < p.waits_for => {
            if p.since.elapsed() > FLUSH_TIMEOUT {
                anyhow::bail!(
                    "a checkpoint waited {} s for its deliveries",
                    FLUSH_TIMEOUT.as_secs()
                );
            }
            Ok(false)
        }
        Some(p) if !p.changelog_sent => {
            check_deliveries(shared, "raised-event")?;
            tracing::debug!(
                waited_ms = p.since.elapsed().as_millis() as u64,
                "checkpoint: output delivered"
            );
            let t = Instant::now();
            write_changelog(shared, &p.snapshot)?;
            tracing::debug!(
                send_ms = t.elapsed().as_millis() as u64,
                "checkpoint: changelog sent"
            );
            p.waits_for = shared.last_sent();
            p.changelog_sent = true;
            p.since = Instant::now();
            Ok(false)
        }
        Some(p) => {
            check_deliveries(shared, "changelog")?;
            tracing::debug!(
                waited_ms = p.since.elapsed().as_millis() as u64,
                "checkpoint: changelog delivered"
            );
            commit(consumer, shared, &p.snapshot, CommitMode::Async);
            *slot = None;
            Ok(false)
        }
        None if due => {
            let t = Instant::now();
            let snapshot = snapshot(shared, &shared.partitions())?;
            tracing::debug!(
                records = snapshot.len(),
                bytes = snapshot.bytes(),
                snapshot_ms = t.elapsed().as_millis() as u64,
                "checkpoint: taken"
            );
            // Read after every partition's state is taken: each one's output so far is
            // numbered by now (it was sent under the partition's lock).
            let waits_for = shared.last_sent();
            *slot = Some(Pending {
                snapshot,
                waits_for,
                changelog_sent: false,
                since: Instant::now(),
            });
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Makes everything so far durable and waits for it: raised events and dead letters,
/// then the checkpoint under way, then each changed partition's dossier histories and
/// checkpoint, then the offsets (on revocation and at the stop, with the partition
/// threads paused: `parts` is write-locked).
fn checkpoint(
    shared: &Shared,
    parts: &Owned,
    consumer: &BaseConsumer<Context>,
) -> anyhow::Result<()> {
    flush(shared, "raised-event")?;
    if let Some(p) = shared.pending().take() {
        if !p.changelog_sent {
            write_changelog(shared, &p.snapshot)?;
        }
    }
    let snapshot = snapshot(shared, parts)?;
    write_changelog(shared, &snapshot)?;
    flush(shared, "changelog")?;
    commit(consumer, shared, &snapshot, CommitMode::Sync);
    Ok(())
}

/// After a failed write or checkpoint: rebuild every owned partition from what is
/// durable and go back to its checkpoint (the partition threads paused meanwhile).
fn reset(shared: &Shared, consumer: &BaseConsumer<Context>) {
    let mut parts = shared.partitions_mut();
    shared.kafka_metrics.resets.inc();
    shared.ready.store(false, Ordering::Relaxed);
    // Its records were not all delivered: the restore starts from the last durable one.
    shared.pending().take();
    // What is still in flight lands (or fails) before the restore reads the output tail:
    // output delivered after that read would be raised again. A failure here is only
    // output the tail will not have, which the restore regenerates.
    if let Err(e) = shared.producers.flush(FLUSH_TIMEOUT) {
        tracing::warn!(error = %e, "flushing before the reset");
    }
    // Counted now, so that they do not fail the first checkpoint after the reset.
    let _ = check_deliveries(shared, "in-flight");
    let ids: Vec<i32> = parts.keys().copied().collect();
    for p in restore_with_retries(shared, &ids) {
        let (id, offset) = (p.id, shared.resume_at(&p));
        parts.insert(id, Mutex::new(p));
        if let Err(e) = consumer.seek(&shared.cfg.input_topic, id, offset, io::REQUEST_TIMEOUT) {
            tracing::error!(partition = id, error = %e, "seek after reset failed: exiting");
            std::process::exit(1);
        }
    }
    // Every failure so far is dealt with; records of the seeked partitions flow again.
    let failures = shared.write_failures.load(Ordering::SeqCst);
    shared.failures_reset.store(failures, Ordering::SeqCst);
    shared.ready.store(true, Ordering::Relaxed);
}

/// How often caught-up partitions move their stream time to the wall clock.
pub(crate) const CLOCK_TICK: Duration = Duration::from_millis(250);
/// Records handled between two rounds of the consumer loop's clock-driven work (wall-clock
/// advance, checkpoint stages): a few hundred microseconds at full speed.
const HOUSEKEEPING_EVERY: u32 = 64;
/// The consumer thread's poll when the partition threads take every record: how long a
/// wall-clock advance or the start of a checkpoint may wait.
const CONSUMER_POLL: Duration = Duration::from_millis(20);
/// The same while a checkpoint is under way: how long it may wait to move on to its next
/// stage once its writes are delivered (at the end of a catch-up, 20 ms a stage was a
/// tenth of the time from the last event applied to its work durable).
const CHECKPOINT_POLL: Duration = Duration::from_millis(2);

/// Whether a checkpoint is due `elapsed` after the last one: every `interval`, but while
/// a partition catches up (`catching_up`, asked only then) every `catch_up_interval`. A
/// checkpoint rewrites each changed dossier's whole history: in a catch-up, where the
/// same dossiers change again and again, fewer of them are less work for the same input.
fn checkpoint_due(
    elapsed: Duration,
    interval: Duration,
    catch_up_interval: Duration,
    catching_up: impl FnOnce() -> bool,
) -> bool {
    elapsed >= catch_up_interval || (elapsed >= interval && !catching_up())
}

/// Whether an owned partition has records to apply: its end not reached since the last
/// record it applied (or since it was assigned).
fn catching_up(parts: &Owned) -> bool {
    parts.values().any(|p| !lock(p).at_end)
}

/// Owned partition `id`'s end was reached ([`catching_up`]).
pub(crate) fn reached_end(parts: &Owned, id: i32) {
    if let Some(p) = parts.get(&id) {
        lock(p).at_end = true;
    }
}

/// Shows the owned partitions' open dossiers and pending timers in their gauges (every
/// clock tick, not at checkpoints: those are 5 s apart in a catch-up).
fn show_state(shared: &Shared) {
    let (mut open, mut pending) = (0, 0);
    for p in shared.partitions().values() {
        let p = lock(p);
        open += p.engine().open_dossiers();
        pending += p.engine().pending_timers();
    }
    shared.metrics.open.set(open as i64);
    shared.metrics.pending_timers.set(pending as i64);
}

/// Moves the stream time of the partitions the consumer thread applies (those from
/// `threaded` on) to the wall clock where they are at their end; writes what fires.
fn advance_caught_up(shared: &Shared, threaded: i32, tally: &mut Tally) -> anyhow::Result<()> {
    let parts = shared.partitions();
    for id in parts.keys().filter(|id| **id >= threaded) {
        advance(shared, &parts, *id, tally)?;
    }
    Ok(())
}

/// Runs the consumer until `stop`; then checkpoints and leaves the group. The first
/// `partition_threads` of the input's `partitions` get a thread each; the consumer
/// thread applies the records of the others.
pub(crate) fn run(
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    partitions: i32,
) -> anyhow::Result<()> {
    let cfg = shared.cfg.clone();
    let tuning: Vec<_> = [
        ("auto.offset.reset", "earliest"),
        ("statistics.interval.ms", "5000"),
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "1000"),
    ]
    .into_iter()
    .chain(io::FETCH_TUNING)
    .collect();
    // Offsets are the checkpoint's to commit; partition EOF moves stream time to the clock.
    let mut fixed = vec![
        ("group.id", cfg.group_id.as_str()),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("enable.partition.eof", "true"),
    ];
    if let Some(id) = &cfg.instance_id {
        // Static membership: a restarted instance takes its own place back at once.
        fixed.push(("group.instance.id", id.as_str()));
    }
    let c = io::settings(&cfg, &tuning, &fixed);
    let consumer: Arc<BaseConsumer<Context>> = Arc::new(c.create_with_context(Context {
        shared: shared.clone(),
    })?);
    // Split before subscribing: no record of these partitions ever reaches the consumer's
    // own queue, so each is applied by one thread, in order.
    let threaded = partitions.min(i32::try_from(cfg.partition_threads).unwrap_or(i32::MAX));
    let mut workers = Vec::new();
    for id in 0..threaded {
        let queue = consumer
            .split_partition_queue(&cfg.input_topic, id)
            .ok_or_else(|| anyhow::anyhow!("no queue for partition {id}"))?;
        workers.push(super::worker::spawn(
            shared.clone(),
            queue,
            id,
            stop.clone(),
        )?);
    }
    consumer.subscribe(&[&cfg.input_topic])?;
    let interval = Duration::from_millis(cfg.checkpoint_interval_ms);
    let catch_up_interval = Duration::from_millis(cfg.checkpoint_catch_up_interval_ms);
    let mut last = Instant::now();
    let mut last_clock = Instant::now();
    // Records handled since the clock-driven work below last ran: it runs every
    // `HOUSEKEEPING_EVERY` records or when a poll brings no record, not for each record
    // (the clock reads and locks of doing it for each record showed in serve's profile).
    let mut handled = 0u32;
    let mut tally = Tally::new();
    // Whether a checkpoint was under way when the checkpoint stages last ran (looked at
    // there, not at every record: its lock is shared with the rebalance callbacks).
    let mut checkpointing = false;
    while !stop.load(Ordering::Relaxed) {
        let polled = consumer.poll(if checkpointing {
            CHECKPOINT_POLL
        } else {
            CONSUMER_POLL
        });
        let record = matches!(polled, Some(Ok(_)));
        let mut result = match polled {
            Some(Ok(m)) if shared.failing() => {
                drop(m); // the reset below seeks back to the checkpoint
                Ok(())
            }
            Some(Ok(m)) => handle(&shared, &shared.partitions(), &m, &mut tally),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                reached_end(&shared.partitions(), p);
                Ok(())
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "consumer");
                Ok(())
            }
            None => Ok(()),
        };
        handled = if record {
            handled + 1
        } else {
            HOUSEKEEPING_EVERY
        };
        if result.is_ok() && handled < HOUSEKEEPING_EVERY {
            continue;
        }
        handled = 0;
        if result.is_ok() && last_clock.elapsed() >= CLOCK_TICK {
            last_clock = Instant::now();
            show_state(&shared);
            result = advance_caught_up(&shared, threaded, &mut tally);
        }
        tally.flush(!record);
        if result.is_ok() && shared.failing() {
            result = Err(anyhow::anyhow!("a partition thread's write failed"));
        }
        let result = result.and_then(|()| {
            let due = checkpoint_due(last.elapsed(), interval, catch_up_interval, || {
                catching_up(&shared.partitions())
            });
            if pipeline_checkpoint(&shared, &consumer, due)? {
                last = Instant::now();
            }
            checkpointing = shared.pending().is_some();
            Ok(())
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "checkpoint failed: restoring owned partitions again");
            reset(&shared, &consumer);
        }
    }
    tracing::info!("stopping the consumer: last checkpoint, then leaving the group");
    for worker in workers {
        // A panic exits the process from the thread itself (`worker::spawn`).
        let _ = worker.join();
    }
    if let Err(e) = checkpoint(&shared, &shared.partitions_mut(), &consumer) {
        tracing::error!(error = %e, "last checkpoint failed (the next owner regenerates)");
    }
    consumer.unsubscribe();
    // Closing the consumer (on drop) revokes the partitions and leaves the group.
    drop(consumer);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catch_up_puts_checkpoints_off_to_its_own_interval() {
        let (interval, catch_up) = (Duration::from_secs(1), Duration::from_secs(5));
        let due = |ms: u64, catching_up: bool| {
            checkpoint_due(Duration::from_millis(ms), interval, catch_up, || {
                catching_up
            })
        };
        assert!(!due(999, false), "before the interval");
        assert!(due(1_000, false), "caught up: every interval");
        assert!(!due(1_000, true), "catching up: not yet");
        assert!(!due(4_999, true));
        assert!(due(5_000, true), "catching up: every catch-up interval");
        // The partitions are looked at only when it matters.
        let asked = std::cell::Cell::new(0);
        let ask = || {
            asked.set(asked.get() + 1);
            true
        };
        checkpoint_due(Duration::from_millis(10), interval, catch_up, ask);
        checkpoint_due(Duration::from_secs(9), interval, catch_up, ask);
        assert_eq!(asked.get(), 0);
    }
}
