//! The baseline of the Kafka throughput bench: a bare rdkafka consumer that reads every
//! partition of a topic from the beginning to its end and only counts the records.
//!
//! `bare-consumer BROKERS TOPIC [OUTPUT_TOPIC]` prints `records seconds records_per_second`.
//! It uses the fetch settings `dunghan serve` uses in Kafka mode, so the two read alike.
//! With OUTPUT_TOPIC it is a bare pipe: each record's payload is produced unchanged to the
//! same partition of OUTPUT_TOPIC (acks=all, in order, as `dunghan serve` writes) and the
//! time runs until every record is delivered — the least a consume-and-produce service does.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (brokers, topic, output) = match args.as_slice() {
        [_, brokers, topic] => (brokers, topic, None),
        [_, brokers, topic, output] => (brokers, topic, Some(output)),
        _ => {
            eprintln!("usage: bare-consumer BROKERS TOPIC [OUTPUT_TOPIC]");
            std::process::exit(2);
        }
    };
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "1")
        .set("linger.ms", "5")
        .create()?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "dunghan-bare-consumer")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "50")
        .set("max.partition.fetch.bytes", "52428800")
        .set("fetch.queue.backoff.ms", "50")
        .create()?;
    let meta = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = meta
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len() as i32);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    let started = Instant::now();
    consumer.assign(&tpl)?;
    let mut open: HashSet<i32> = (0..partitions).collect();
    let mut records = 0u64;
    let mut bytes = 0usize;
    while !open.is_empty() {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                use rdkafka::Message as _;
                records += 1;
                bytes += m.payload().map_or(0, <[u8]>::len);
                if let Some(out) = output {
                    let mut record = BaseRecord::to(out)
                        .partition(m.partition())
                        .payload(m.payload().unwrap_or_default());
                    if let Some(key) = m.key() {
                        record = record.key(key);
                    }
                    while let Err((e, r)) = producer.send(record) {
                        if !matches!(
                            e,
                            KafkaError::MessageProduction(
                                rdkafka::types::RDKafkaErrorCode::QueueFull
                            )
                        ) {
                            return Err(e.into());
                        }
                        record = r;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) => eprintln!("{e}"),
            None => {}
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let seconds = started.elapsed().as_secs_f64();
    println!("{records} {seconds:.3} {:.0}", records as f64 / seconds);
    eprintln!("read {records} records ({bytes} bytes) in {seconds:.3} s");
    Ok(())
}
