//! Bench helper: produces a file of `KEY<TAB>JSON` lines to a Kafka topic, keyed, with
//! `content-type: application/json`, as fast as the broker takes them.
//!
//! `produce-lines BROKERS TOPIC FILE` prints how many records were delivered.

use std::io::BufRead;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, topic, file] = args.as_slice() else {
        eprintln!("usage: produce-lines BROKERS TOPIC FILE   (lines: KEY<TAB>JSON)");
        std::process::exit(2);
    };
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000")
        .create()?;
    let mut sent = 0u64;
    for line in std::io::BufReader::new(std::fs::File::open(file)?).lines() {
        let line = line?;
        let Some((key, value)) = line.split_once('\t') else {
            return Err(format!("line {}: no tab between key and value", sent + 1).into());
        };
        let headers = OwnedHeaders::new().insert(Header {
            key: "content-type",
            value: Some("application/json"),
        });
        let mut record = BaseRecord::to(topic)
            .key(key.as_bytes())
            .payload(value.as_bytes())
            .headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        sent += 1;
    }
    producer.flush(Duration::from_secs(300))?;
    println!("{sent}");
    Ok(())
}
