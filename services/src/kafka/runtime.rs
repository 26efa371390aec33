//! The consumer thread of Kafka mode: joins the group, restores assigned partitions from
//! the changelog (and suppresses output already written), applies records, moves stream
//! time, writes raised events and dead letters, and checkpoints in the order the
//! exactly-once argument needs: output durable → changelog + checkpoint durable → commit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
use super::partition::{Histories, Ids, Partition, Processed, CHECKPOINT_KEY};
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
    pub(crate) watchers: tokio::sync::broadcast::Sender<crate::serve::node::Slice>,
    pub(crate) factory: EngineFactory,
    pub(crate) cfg: KafkaSection,
    producer: Producer,
    /// Delivery failures already handled.
    failures_seen: AtomicU64,
    /// Bumped on every assignment or revocation (caught-up flags start over).
    rebalances: AtomicU64,
    /// Sequence number of the last record handed to the producer (its delivery opaque).
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
            partitions: Mutex::new(BTreeMap::new()),
            ready,
            metrics,
            kafka_metrics,
            watchers: tokio::sync::broadcast::channel(16_384).0,
            factory,
            producer: io::producer(&cfg)?,
            cfg,
            failures_seen: AtomicU64::new(0),
            rebalances: AtomicU64::new(0),
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

    /// A record to `topic`, numbered for the delivery reports.
    fn record<'a>(&self, topic: &'a str) -> Record<'a> {
        BaseRecord::with_opaque_to(topic, self.sent.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn pending(&self) -> MutexGuard<'_, Option<Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of the last record handed to the producer.
    fn last_sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
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
        shared.rebalances.fetch_add(1, Ordering::Relaxed);
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
                for p in restore_with_retries(shared, &ids) {
                    let offset = shared.resume_at(&p);
                    if let Err(e) = tpl.set_partition_offset(&topic, p.id, offset) {
                        tracing::error!(partition = p.id, error = %e, "cannot set the start offset");
                    }
                    shared.partitions().insert(p.id, p);
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
                    shared.pending().take();
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
    // Histories stay encoded while reading; each partition decodes its own when rebuilt.
    type State = (Histories<Vec<u8>>, Option<PartitionCheckpoint>);
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
                histories.insert(Arc::from(key), v.to_vec());
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

/// Decodes a partition's histories as read from the changelog and rebuilds its state.
fn rebuild(
    shared: &Shared,
    id: i32,
    encoded: Histories<Vec<u8>>,
    checkpoint: Option<PartitionCheckpoint>,
    suppress: Ids,
) -> anyhow::Result<Partition> {
    let mut histories = Histories::with_capacity_and_hasher(encoded.len(), Default::default());
    for (dossier, bytes) in encoded {
        let history = DossierHistory::decode(bytes.as_slice())
            .map_err(|e| anyhow::anyhow!("changelog history of {dossier}: {e}"))?;
        histories.insert(dossier, history.entries);
    }
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

/// A record of the runtime's producer; its delivery opaque is its sequence number.
type Record<'a> = BaseRecord<'a, [u8], [u8], usize>;

/// Sends one record, waiting while the producer's queue is full.
fn send(shared: &Shared, mut record: Record<'_>) -> anyhow::Result<()> {
    loop {
        match shared.producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, r)) => {
                // Never enqueued, so never reported: a checkpoint must not wait for it.
                shared.producer.context().reported(r.delivery_opaque);
                return Err(e.into());
            }
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
        let record = shared
            .record(&shared.cfg.output_topic)
            .partition(p)
            .key(e.dossier_id.as_bytes())
            .payload(payload.as_slice())
            .headers(headers);
        send(shared, record)?;
    }
    shared.metrics.observe(raised);
    if !raised.is_empty() && shared.watchers.receiver_count() > 0 {
        // A subscriber that left meanwhile is not an error.
        let _ = shared.watchers.send(Arc::new(raised.to_vec()));
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
        let mut record = shared
            .record(&shared.cfg.dead_letter_topic)
            .payload(m.payload().unwrap_or_default())
            .headers(headers);
        if let Some(key) = m.key() {
            record = record.key(key);
        }
        send(shared, record)?;
        shared
            .kafka_metrics
            .dead_letters
            .with_label_values(&[code.as_str()])
            .inc();
    }
    Ok(())
}

/// What a checkpoint writes: each changed partition's changelog records (dossier
/// histories, tombstones, its checkpoint last) and the input offsets to commit after.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    records: Vec<(i32, String, Option<Vec<u8>>)>,
    offsets: Vec<(i32, i64)>,
}

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
/// suppresses more ids that are never raised again).
fn snapshot(shared: &Shared) -> Snapshot {
    let deliveries = shared.producer.context();
    let mut snapshot = Snapshot::default();
    let mut parts = shared.partitions();
    let (mut open, mut pending) = (0, 0);
    for p in parts.values_mut() {
        open += p.engine().open_dossiers();
        pending += p.engine().pending_timers();
        let end = deliveries.end(&shared.cfg.output_topic, p.id).unwrap_or(0);
        let records = p.take_changelog(end);
        if !records.is_empty() {
            snapshot.offsets.push((p.id, p.next_offset));
        }
        snapshot
            .records
            .extend(records.into_iter().map(|(k, v)| (p.id, k, v)));
    }
    shared.metrics.open.set(open as i64);
    shared.metrics.pending_timers.set(pending as i64);
    snapshot
}

/// Sends a snapshot's changelog records, each to its input partition's number.
fn write_changelog(shared: &Shared, snapshot: &Snapshot) -> anyhow::Result<()> {
    for (partition, key, value) in &snapshot.records {
        let mut record = shared
            .record(&shared.cfg.changelog_topic)
            .partition(*partition)
            .key(key.as_bytes());
        if let Some(v) = value {
            record = record.payload(v.as_slice());
        }
        send(shared, record)?;
    }
    Ok(())
}

/// Commits a snapshot's input offsets. The checkpoint, not the group offset, decides
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
    let failed = shared.producer.context().failed();
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
        .producer
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
        Some(p) if shared.producer.context().reported_through() < p.waits_for => {
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
            write_changelog(shared, &p.snapshot)?;
            p.waits_for = shared.last_sent();
            p.changelog_sent = true;
            p.since = Instant::now();
            Ok(false)
        }
        Some(p) => {
            check_deliveries(shared, "changelog")?;
            commit(consumer, shared, &p.snapshot, CommitMode::Async);
            *slot = None;
            Ok(false)
        }
        None if due => {
            *slot = Some(Pending {
                snapshot: snapshot(shared),
                waits_for: shared.last_sent(),
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
/// checkpoint, then the offsets (on revocation and at the stop).
fn checkpoint(shared: &Shared, consumer: &BaseConsumer<Context>) -> anyhow::Result<()> {
    flush(shared, "raised-event")?;
    if let Some(p) = shared.pending().take() {
        if !p.changelog_sent {
            write_changelog(shared, &p.snapshot)?;
        }
    }
    let snapshot = snapshot(shared);
    write_changelog(shared, &snapshot)?;
    flush(shared, "changelog")?;
    commit(consumer, shared, &snapshot, CommitMode::Sync);
    Ok(())
}

/// After a failed checkpoint: rebuild every owned partition from what is durable and
/// go back to its checkpoint.
fn reset(shared: &Shared, consumer: &BaseConsumer<Context>) {
    shared.kafka_metrics.resets.inc();
    shared.ready.store(false, Ordering::Relaxed);
    // Its records were not all delivered: the restore starts from the last durable one.
    shared.pending().take();
    let ids: Vec<i32> = shared.partitions().keys().copied().collect();
    for p in restore_with_retries(shared, &ids) {
        let (id, offset) = (p.id, shared.resume_at(&p));
        shared.partitions().insert(id, p);
        if let Err(e) = consumer.seek(&shared.cfg.input_topic, id, offset, io::REQUEST_TIMEOUT) {
            tracing::error!(partition = id, error = %e, "seek after reset failed: exiting");
            std::process::exit(1);
        }
    }
    shared.ready.store(true, Ordering::Relaxed);
}

/// How often caught-up partitions move their stream time to the wall clock.
const CLOCK_TICK: Duration = Duration::from_millis(250);
/// Records handled between two rounds of the consumer loop's clock-driven work (wall-clock
/// advance, checkpoint stages): a few hundred microseconds at full speed.
const HOUSEKEEPING_EVERY: u32 = 64;

/// Moves the caught-up partitions' stream time to the wall clock; writes what fires.
fn advance_caught_up(shared: &Shared, caught_up: &HashSet<i32>) -> anyhow::Result<()> {
    let now = wall_clock();
    let mut fired = Vec::new();
    for (id, p) in shared.partitions().iter_mut() {
        if caught_up.contains(id) {
            let raised = p.advance(now);
            if !raised.is_empty() {
                fired.push((*id, raised));
            }
        }
    }
    for (id, raised) in &fired {
        write_raised(shared, *id, &format!("{id}/clock"), raised)?;
    }
    Ok(())
}

/// Runs the consumer until `stop`; then checkpoints and leaves the group.
pub(crate) fn run(shared: Arc<Shared>, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let cfg = shared.cfg.clone();
    let mut c = io::client_config(&cfg);
    c.set("group.id", &cfg.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .set("statistics.interval.ms", "5000")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        // Short fetch waits: a broker that holds a fetch for its full wait while other
        // partitions have data (tansu does) would otherwise pace a catch-up at 2 fetches/s.
        .set("fetch.wait.max.ms", "50")
        .set("max.partition.fetch.bytes", "52428800")
        .set("fetch.queue.backoff.ms", io::FETCH_QUEUE_BACKOFF_MS);
    if let Some(id) = &cfg.instance_id {
        // Static membership: a restarted instance takes its own place back at once.
        c.set("group.instance.id", id);
    }
    for (key, value) in &cfg.properties {
        c.set(key, value);
    }
    let consumer: BaseConsumer<Context> = c.create_with_context(Context {
        shared: shared.clone(),
    })?;
    consumer.subscribe(&[&cfg.input_topic])?;
    let interval = Duration::from_millis(cfg.checkpoint_interval_ms);
    let mut last = Instant::now();
    // Partitions whose end was reached (and nothing consumed since): their stream time
    // follows the wall clock.
    let mut caught_up: HashSet<i32> = HashSet::new();
    let mut last_clock = Instant::now();
    let mut epoch = 0;
    // Records handled since the clock-driven work below last ran: it runs every
    // `HOUSEKEEPING_EVERY` records or when a poll brings no record, not for each record
    // (the clock reads and locks of doing it for each record showed in serve's profile).
    let mut handled = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let now_epoch = shared.rebalances.load(Ordering::Relaxed);
        if now_epoch != epoch {
            epoch = now_epoch;
            caught_up.clear();
        }
        let polled = consumer.poll(Duration::from_millis(100));
        let record = matches!(polled, Some(Ok(_)));
        let mut result = match polled {
            Some(Ok(m)) => {
                caught_up.remove(&m.partition());
                handle(&shared, &m)
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                caught_up.insert(p);
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
            result = advance_caught_up(&shared, &caught_up);
        }
        let result = result.and_then(|()| {
            if pipeline_checkpoint(&shared, &consumer, last.elapsed() >= interval)? {
                last = Instant::now();
            }
            Ok(())
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "checkpoint failed: restoring owned partitions again");
            reset(&shared, &consumer);
            caught_up.clear();
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
