//! Kafka clients of the runtime: client settings, topic creation and checks, the
//! producer whose delivery reports say where each partition's output ends, and a reader
//! that reads one partition from an offset to its end (restores).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::config::KafkaSection;

/// How long a metadata or watermark request may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a restore read may go without a record before it is an error.
const READ_STALL: Duration = Duration::from_secs(30);

/// How every consumer of serve fetches (the input's and a restore's read alike):
/// - short fetch waits: a broker that holds a fetch for its full wait while other
///   partitions have data (tansu does) would otherwise pace a catch-up at 2 fetches/s;
/// - large fetches per partition;
/// - `fetch.queue.backoff.ms` (librdkafka's default 1 000 ms: how long it waits before
///   fetching again for a partition whose local queue is full). A consumer that does real
///   work per record fills its queue, then drains it in less than that and sits idle until
///   the next fetch: with the default, serve's consumer was off the CPU about 40 % of a
///   catch-up (BENCHMARKS.md, Kafka-mode throughput, 2026-12-01).
pub(crate) const FETCH_TUNING: [(&str, &str); 3] = [
    ("fetch.wait.max.ms", "50"),
    ("max.partition.fetch.bytes", "52428800"),
    ("fetch.queue.backoff.ms", "50"),
];

/// Settings every client shares: the brokers and the user's extra properties.
pub(crate) fn client_config(k: &KafkaSection) -> ClientConfig {
    settings(k, &[], &[])
}

/// A client's settings, in the order that decides who wins: the brokers and dunghan's
/// `tuning` (which `[kafka.properties]` may change), then those properties, then `fixed`:
/// what the exactly-once argument or the runtime's own logic rests on (a property that
/// names one of these is ignored, with a warning).
pub(crate) fn settings(
    k: &KafkaSection,
    tuning: &[(&str, &str)],
    fixed: &[(&str, &str)],
) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set(
        "bootstrap.servers",
        k.brokers.as_deref().unwrap_or_default(),
    );
    for (key, value) in tuning {
        c.set(*key, *value);
    }
    for (key, value) in &k.properties {
        c.set(key, value);
    }
    for (key, value) in fixed {
        if let Some(configured) = k.properties.get(*key).filter(|v| v != value) {
            tracing::warn!(
                property = key,
                configured = %configured,
                used = value,
                "[kafka.properties] names a setting dunghan fixes: the configured value is ignored"
            );
        }
        c.set(*key, *value);
    }
    c
}

/// Creates the four topics if missing (same partition count; the changelog compacted)
/// and checks that output and changelog have at least the input's partitions, since a
/// partition's output and state go to the same partition number.
pub(crate) async fn ensure_topics(k: &KafkaSection) -> anyhow::Result<i32> {
    let admin: AdminClient<DefaultClientContext> = client_config(k).create()?;
    let replication = || TopicReplication::Fixed(k.replication_factor);
    let topics = [
        NewTopic::new(&k.input_topic, k.partitions, replication()),
        NewTopic::new(&k.output_topic, k.partitions, replication()),
        NewTopic::new(&k.changelog_topic, k.partitions, replication())
            .set("cleanup.policy", "compact"),
        NewTopic::new(&k.dead_letter_topic, k.partitions, replication()),
    ];
    let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
    for result in admin.create_topics(topics.iter(), &options).await? {
        match result {
            Ok(name) => tracing::info!(topic = %name, partitions = k.partitions, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("cannot create topic {name}: {code}"),
        }
    }
    let count = |topic: &str| -> anyhow::Result<i32> {
        let meta = admin.inner().fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
        let n = meta.topics().first().map_or(0, |t| t.partitions().len()) as i32;
        anyhow::ensure!(n > 0, "topic {topic} has no partitions");
        Ok(n)
    };
    let input = count(&k.input_topic)?;
    for topic in [&k.output_topic, &k.changelog_topic] {
        let n = count(topic)?;
        anyhow::ensure!(
            n >= input,
            "topic {topic} has {n} partitions, fewer than the {input} of {}: a partition's \
             output and state go to the same partition number",
            k.input_topic
        );
    }
    Ok(input)
}

/// A client context that logs errors except the end-of-partition notices readers ask for.
#[derive(Debug)]
pub(crate) struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log_client(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_error(error, reason);
    }
}

/// Forwards librdkafka's own log lines to the tracing subscriber.
pub(crate) fn log_client(level: RDKafkaLogLevel, facility: &str, message: &str) {
    use RDKafkaLogLevel as L;
    match level {
        L::Emerg | L::Alert | L::Critical | L::Error => {
            tracing::error!(target: "librdkafka", facility, "{message}")
        }
        L::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
        L::Notice | L::Info => tracing::info!(target: "librdkafka", facility, "{message}"),
        L::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
    }
}

impl rdkafka::consumer::ConsumerContext for Quiet {}

/// Logs a client error, leaving out end-of-partition notices.
pub(crate) fn log_error(error: KafkaError, reason: &str) {
    let eof = matches!(
        error,
        KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
    );
    if !eof {
        tracing::error!(error = %error, reason, "Kafka client");
    }
}

/// Delivery reports of the runtime's producers: failures, the end offset of each output
/// partition, and how far the sequence numbers of sent records (in their delivery opaque,
/// see [`Deliveries::opaque`]) are all delivered or failed — what a checkpoint waits for.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    failed: AtomicU64,
    /// One lock per report (the delivery thread takes it for every record).
    reports: Mutex<Reports>,
}

/// What the delivery reports so far say.
#[derive(Debug, Default)]
struct Reports {
    /// The end offset of each output partition by number (0: nothing delivered there yet).
    ends: Vec<i64>,
    /// Every sequence number up to this one is reported…
    base: usize,
    /// …and bit k of word w says whether `base + 1 + 64 w + k` is: reports of different
    /// partitions come back out of order. A full first word moves `base` on.
    above: VecDeque<u64>,
}

impl Reports {
    fn delivered(&mut self, partition: i32, offset: i64) {
        let Ok(partition) = usize::try_from(partition) else {
            return;
        };
        if self.ends.len() <= partition {
            self.ends.resize(partition + 1, 0);
        }
        self.ends[partition] = self.ends[partition].max(offset + 1);
    }

    fn end(&self, partition: i32) -> Option<i64> {
        let end = *self.ends.get(usize::try_from(partition).ok()?)?;
        (end > 0).then_some(end)
    }

    fn reported(&mut self, seq: usize) {
        let Some(bit) = seq.checked_sub(self.base + 1) else {
            return; // reported before
        };
        let word = bit / 64;
        if self.above.len() <= word {
            self.above.resize(word + 1, 0);
        }
        self.above[word] |= 1 << (bit % 64);
        while self.above.front() == Some(&u64::MAX) {
            self.above.pop_front();
            self.base += 64;
        }
    }

    fn through(&self) -> usize {
        self.base + self.above.front().map_or(0, |w| w.trailing_ones() as usize)
    }
}

/// The context of every producer of the runtime: their delivery reports go to one
/// [`Deliveries`].
#[derive(Debug)]
pub(crate) struct Reporter(Arc<Deliveries>);

impl ClientContext for Reporter {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log_client(level, fac, message);
    }
}

impl ProducerContext for Reporter {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let (seq, output) = Deliveries::unpack(opaque);
        let mut reports = self.0.reports();
        match result {
            // The opaque says whether it is an output record (no topic name to compare).
            Ok(m) if output => reports.delivered(m.partition(), m.offset()),
            Ok(_) => {}
            Err((e, m)) => {
                tracing::error!(topic = m.topic(), partition = m.partition(), error = %e, "delivery failed");
                self.0.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        reports.reported(seq);
    }
}

impl Deliveries {
    /// The delivery opaque of record `seq`, and whether it goes to the output topic.
    pub(crate) fn opaque(seq: usize, output: bool) -> usize {
        seq << 1 | usize::from(output)
    }

    fn unpack(opaque: usize) -> (usize, bool) {
        (opaque >> 1, opaque & 1 == 1)
    }

    fn reports(&self) -> std::sync::MutexGuard<'_, Reports> {
        // A panic under the lock leaves whole values behind: go on with them.
        self.reports.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Failed deliveries so far.
    pub(crate) fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// End offset of output `partition` after the deliveries reported so far.
    pub(crate) fn end(&self, partition: i32) -> Option<i64> {
        self.reports().end(partition)
    }

    /// Marks the record of delivery opaque `opaque` as reported (delivered, failed, or
    /// never enqueued).
    pub(crate) fn reported(&self, opaque: usize) {
        self.reports().reported(Deliveries::unpack(opaque).0);
    }

    /// Every record numbered up to this one has been reported.
    pub(crate) fn reported_through(&self) -> usize {
        self.reports().through()
    }
}

/// At most this many producers write the changelog.
const CHANGELOG_PRODUCERS: usize = 4;

/// One of the runtime's producers.
pub(crate) type Producer = ThreadedProducer<Reporter>;

/// The runtime's producers (the output's and the changelog's), numbering their records in
/// one sequence whose delivery reports one [`Deliveries`] keeps. Each keeps its
/// partitions' records in order and loses none on a broker hiccup (retries until
/// `message.timeout.ms`).
pub(crate) struct Producers {
    /// Raised events and dead letters, in uncompressed batches (librdkafka's default):
    /// compressing them cost serve a tenth more CPU on the path of every event, which on
    /// the bench's two shared cores evened out (BENCHMARKS.md).
    output: Producer,
    /// Dossier histories and checkpoints, compressed (`[kafka] changelog_compression`):
    /// a checkpoint writes the histories of every changed dossier, and after a catch-up
    /// that is most of them at once; the broker takes a fraction of the bytes. One
    /// producer per core (at most [`CHANGELOG_PRODUCERS`]), input partition `p`'s records
    /// on producer `p % len`: a producer compresses on its one broker thread, and alone it
    /// kept a core idle at the end of a catch-up (BENCHMARKS.md).
    changelog: Vec<Producer>,
    deliveries: Arc<Deliveries>,
}

impl Producers {
    /// The producers, with `[kafka.properties]` and dunghan's settings (`settings`).
    pub(crate) fn new(k: &KafkaSection) -> anyhow::Result<Producers> {
        let deliveries = Arc::new(Deliveries::default());
        let producer = |compression: Option<&str>| -> anyhow::Result<Producer> {
            let mut c = settings(
                k,
                &[("linger.ms", "5"), ("message.timeout.ms", "300000")],
                // Durable before a checkpoint counts it, and in order within a partition.
                &[
                    ("acks", "all"),
                    ("max.in.flight.requests.per.connection", "1"),
                ],
            );
            if let Some(compression) = compression {
                c.set("compression.type", compression);
            }
            Ok(c.create_with_context(Reporter(deliveries.clone()))?)
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let changelog = (0..cores.clamp(1, CHANGELOG_PRODUCERS))
            .map(|_| producer(Some(&k.changelog_compression)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Producers {
            // `[kafka.properties]` may still set `compression.type` for these.
            output: producer(None)?,
            changelog,
            deliveries,
        })
    }

    /// The producer of input partition `p`'s changelog records (`Some(p)`), or of the
    /// output and dead-letter topics (`None`).
    pub(crate) fn get(&self, changelog: Option<i32>) -> &Producer {
        match changelog {
            Some(p) => &self.changelog[p.unsigned_abs() as usize % self.changelog.len()],
            None => &self.output,
        }
    }

    /// What the delivery reports of all of them say.
    pub(crate) fn deliveries(&self) -> &Deliveries {
        &self.deliveries
    }

    /// Waits until every record any of them has sent is delivered or failed, for at most
    /// `timeout` in all.
    pub(crate) fn flush(&self, timeout: Duration) -> rdkafka::error::KafkaResult<()> {
        use rdkafka::producer::Producer as _;
        let deadline = Instant::now() + timeout;
        for producer in std::iter::once(&self.output).chain(&self.changelog) {
            producer.flush(deadline.saturating_duration_since(Instant::now()))?;
        }
        Ok(())
    }
}

/// Reads partitions of `topic`, each from its start offset up to its end as of now,
/// calling `f` on each record. Returns how many records were read. The end is where a
/// fetch comes back empty (partition EOF), not the reported high watermark, which some
/// Kafka-protocol brokers get wrong for multi-record batches.
pub(crate) fn read_partitions(
    k: &KafkaSection,
    topic: &str,
    starts: &[(i32, Offset)],
    mut f: impl FnMut(&BorrowedMessage<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    if starts.is_empty() {
        return Ok(0);
    }
    let group = format!("{}-restore", k.group_id);
    let c = settings(
        k,
        &FETCH_TUNING,
        // A group of its own that commits nothing; the end of a partition ends the read.
        &[
            ("group.id", &group),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "true"),
        ],
    );
    let consumer: BaseConsumer<Quiet> = c.create_with_context(Quiet)?;
    let mut tpl = TopicPartitionList::new();
    for (partition, from) in starts {
        tpl.add_partition_offset(topic, *partition, *from)?;
    }
    consumer.assign(&tpl)?;
    let mut open: std::collections::HashSet<i32> = starts.iter().map(|(p, _)| *p).collect();
    let mut read = 0;
    // Progress is checked when a poll comes back empty, not per record (reading the clock
    // for each of a million records was 3 % of a restore).
    let (mut last, mut read_then) = (Instant::now(), 0);
    while !open.is_empty() {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                read += 1;
                f(&m)?;
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) => tracing::warn!(topic, error = %e, "reading"),
            None if read != read_then => (last, read_then) = (Instant::now(), read),
            None if last.elapsed() > READ_STALL => anyhow::bail!(
                "reading {topic}: nothing for {} s after {read} records",
                READ_STALL.as_secs()
            ),
            None => {}
        }
    }
    Ok(read)
}

/// The value of header `name` of a record, as text.
pub(crate) fn header<'a>(m: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a str> {
    std::str::from_utf8(header_bytes(m, name)?).ok()
}

/// The value of header `name` of `m`, as bytes.
fn header_bytes<'a>(m: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a [u8]> {
    use rdkafka::message::Headers;
    m.headers()?.iter().find(|h| h.key == name)?.value
}

/// The `content-type` header of an input record, as [`header`] reads it; the two types
/// dunghan knows are recognised by their bytes, without a UTF-8 check per record.
pub(crate) fn content_type<'a>(m: &'a BorrowedMessage<'_>) -> Option<&'a str> {
    use super::codec::{CONTENT_TYPE, JSON, PROTOBUF};
    match header_bytes(m, CONTENT_TYPE)? {
        v if v == JSON.as_bytes() => Some(JSON),
        v if v == PROTOBUF.as_bytes() => Some(PROTOBUF),
        v => std::str::from_utf8(v).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_in_any_order_say_how_far_everything_is_reported() {
        let d = Deliveries::default();
        let report = |seq: usize| d.reported(Deliveries::opaque(seq, seq.is_multiple_of(2)));
        assert_eq!(d.reported_through(), 0);
        // Two partitions' reports interleaved, one record late by 200 numbers.
        let mut order: Vec<usize> = (1..=300).filter(|s| *s != 7).collect();
        order.swap(10, 150);
        for (i, seq) in order.iter().enumerate() {
            report(*seq);
            // 1–6 come first; 7 is missing throughout.
            assert_eq!(d.reported_through(), (i + 1).min(6), "after {seq}");
        }
        report(7);
        assert_eq!(d.reported_through(), 300);
        report(3); // again: no change
        assert_eq!(d.reported_through(), 300);
        report(302);
        assert_eq!(d.reported_through(), 300);
        report(301);
        assert_eq!(d.reported_through(), 302);
    }

    #[test]
    fn properties_beat_the_tuning_and_lose_to_what_correctness_fixes() {
        let mut k = KafkaSection {
            brokers: Some("b:9092".into()),
            ..KafkaSection::default()
        };
        for (key, value) in [
            ("fetch.wait.max.ms", "10"),
            ("enable.auto.commit", "true"),
            ("client.id", "desk"),
        ] {
            k.properties.insert(key.into(), value.into());
        }
        let c = settings(
            &k,
            &[("fetch.wait.max.ms", "50"), ("linger.ms", "5")],
            &[("enable.auto.commit", "false")],
        );
        assert_eq!(c.get("bootstrap.servers"), Some("b:9092"));
        assert_eq!(c.get("fetch.wait.max.ms"), Some("10"), "the user's tuning");
        assert_eq!(
            c.get("linger.ms"),
            Some("5"),
            "dunghan's where the user is silent"
        );
        assert_eq!(c.get("enable.auto.commit"), Some("false"), "fixed");
        assert_eq!(c.get("client.id"), Some("desk"));
    }

    #[test]
    fn each_output_partitions_end_is_its_highest_delivered_offset_plus_one() {
        let mut r = Reports::default();
        assert_eq!(r.end(0), None);
        r.delivered(2, 41);
        r.delivered(2, 40); // an older report after a newer one
        assert_eq!(r.end(2), Some(42));
        assert_eq!(r.end(0), None, "partition 0 has nothing yet");
        assert_eq!(r.end(9), None);
        r.delivered(-1, 3); // no partition: ignored
        assert_eq!(r.end(-1), None);
    }

    #[test]
    fn an_opaque_carries_the_sequence_number_and_whether_it_is_output() {
        for (seq, output) in [
            (0, false),
            (1, true),
            (12_345, false),
            (usize::MAX >> 1, true),
        ] {
            assert_eq!(
                Deliveries::unpack(Deliveries::opaque(seq, output)),
                (seq, output)
            );
        }
        let d = Deliveries::default();
        d.reported(Deliveries::opaque(1, true));
        d.reported(Deliveries::opaque(2, false));
        assert_eq!(d.reported_through(), 2);
    }
}
