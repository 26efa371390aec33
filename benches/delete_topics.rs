//! Bench helper: deletes topics, so that a broker serving many bench runs holds only the
//! runs' common input (tansu's memory storage slows as it holds more).
//!
//! `delete-topics BROKERS TOPIC...` prints one line per topic deleted, and fails on the
//! first topic the broker would not delete.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, topics @ ..] = args.as_slice() else {
        eprintln!("usage: delete-topics BROKERS TOPIC...");
        std::process::exit(2);
    };
    if topics.is_empty() {
        eprintln!("usage: delete-topics BROKERS TOPIC...");
        std::process::exit(2);
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.delete_topics(&names, &options).await? {
        match result {
            Ok(topic) => println!("deleted {topic}"),
            Err((topic, code)) => return Err(format!("{topic}: {code}").into()),
        }
    }
    Ok(())
}
