//! The client of `benches/grpc_ingest.sh`: reads a JSON-lines file of `DossierEvent`s into
//! batches first (so parsing is not timed), then publishes them in order to
//! `IngestService.Publish` at ADDR, one batch in flight, and prints
//! `EVENTS events in SECONDS s = RATE events/s (accepted A, duplicate D, rejected R)`.
//!
//! `ingest-client ADDR EVENTS.jsonl [BATCH]` (BATCH default 1000, the node's limit).

use std::io::BufRead;
use std::time::Instant;

use dunghan_proto::v1::ingest_service_client::IngestServiceClient;
use dunghan_proto::v1::{DossierEvent, PublishRequest};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(addr), Some(path)) = (args.first(), args.get(1)) else {
        return Err("usage: ingest-client ADDR EVENTS.jsonl [BATCH]".into());
    };
    let size: usize = args.get(2).map_or(Ok(1000), |b| b.parse())?;
    let mut batches: Vec<Vec<DossierEvent>> = vec![Vec::with_capacity(size)];
    for line in std::io::BufReader::new(std::fs::File::open(path)?).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        if batches.last().is_some_and(|b| b.len() == size) {
            batches.push(Vec::with_capacity(size));
        }
        if let Some(b) = batches.last_mut() {
            b.push(serde_json::from_str(&line)?);
        }
    }
    let events: usize = batches.iter().map(Vec::len).sum();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut client = IngestServiceClient::connect(format!("http://{addr}"))
            .await?
            .max_decoding_message_size(256 << 20);
        let mut counts = [0usize; 5];
        let start = Instant::now();
        for events in batches {
            let reply = client.publish(PublishRequest { events }).await?.into_inner();
            for r in reply.results {
                counts[usize::try_from(r.status).unwrap_or(0).min(4)] += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{events} events in {secs:.3} s = {:.0} events/s (accepted {}, duplicate {}, rejected {})",
            events as f64 / secs,
            counts[1],
            counts[2],
            counts[3]
        );
        Ok(())
    })
}
