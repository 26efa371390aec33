//! Kafka clients of the runtime: client settings, topic creation and checks, the
//! producer whose delivery reports say where each partition's output ends, and a reader
//! that reads one partition from an offset to its end (restores).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::config::KafkaSection;

/// How long a metadata or watermark request may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a restore read may go without a record before it is an error.
const READ_STALL: Duration = Duration::from_secs(30);

/// Settings every client shares: the brokers and the user's extra properties.
pub(crate) fn client_config(k: &KafkaSection) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set(
        "bootstrap.servers",
        k.brokers.as_deref().unwrap_or_default(),
    );
    for (key, value) in &k.properties {
        c.set(key, value);
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

/// Delivery reports of the runtime's producer: failures, and the end offset of each
/// partition written to.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    failed: AtomicU64,
    ends: Mutex<HashMap<(String, i32), i64>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                if let Ok(mut ends) = self.ends.lock() {
                    let end = ends
                        .entry((m.topic().to_owned(), m.partition()))
                        .or_default();
                    *end = (*end).max(m.offset() + 1);
                }
            }
            Err((e, m)) => {
                tracing::error!(topic = m.topic(), partition = m.partition(), error = %e, "delivery failed");
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Deliveries {
    /// Failed deliveries so far.
    pub(crate) fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// End offset of `topic`/`partition` after the deliveries reported so far.
    pub(crate) fn end(&self, topic: &str, partition: i32) -> Option<i64> {
        let ends = self.ends.lock().ok()?;
        ends.get(&(topic.to_owned(), partition)).copied()
    }
}

/// The producer of raised events, changelog and dead letters.
pub(crate) type Producer = ThreadedProducer<Deliveries>;

/// A producer that keeps each partition's records in order and loses none on a broker
/// hiccup (retries until `message.timeout.ms`).
pub(crate) fn producer(k: &KafkaSection) -> anyhow::Result<Producer> {
    let mut c = client_config(k);
    c.set("acks", "all")
        .set("max.in.flight.requests.per.connection", "1")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "300000");
    for (key, value) in &k.properties {
        c.set(key, value);
    }
    Ok(c.create_with_context(Deliveries::default())?)
}

/// Reads `topic`/`partition` from `from` up to its end as of now, calling `f` on each
/// record. Returns how many records were read.
pub(crate) fn read_partition(
    k: &KafkaSection,
    topic: &str,
    partition: i32,
    from: Offset,
    mut f: impl FnMut(&BorrowedMessage<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut c = client_config(k);
    c.set("group.id", format!("{}-restore", k.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    let consumer: BaseConsumer = c.create()?;
    let (low, high) = consumer.fetch_watermarks(topic, partition, REQUEST_TIMEOUT)?;
    let start = match from {
        Offset::Offset(o) => o.max(low),
        _ => low,
    };
    if start >= high {
        return Ok(0);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(start))?;
    consumer.assign(&tpl)?;
    let mut read = 0;
    let mut last = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                last = Instant::now();
                read += 1;
                f(&m)?;
                if m.offset() + 1 >= high {
                    return Ok(read);
                }
            }
            Some(Err(e)) => tracing::warn!(topic, partition, error = %e, "reading"),
            None if last.elapsed() > READ_STALL => anyhow::bail!(
                "reading {topic}/{partition}: no record for {} s before offset {high}",
                READ_STALL.as_secs()
            ),
            None => {}
        }
    }
}

/// The value of header `name` of a record, as text.
pub(crate) fn header<'a>(m: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a str> {
    use rdkafka::message::Headers;
    let headers = m.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| std::str::from_utf8(h.value?).ok())
}
