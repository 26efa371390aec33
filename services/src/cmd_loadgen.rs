//! `dunghan loadgen`: a simulated province's dossier events to a file, a node's gRPC
//! ingest or Kafka, seeded and reproducible, at a target rate or as fast as possible.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate};
use clap::Args;
use dunghan_calendar::CalendarBuilder;
use dunghan_proto::v1;

use crate::input_error;
use crate::loadgen::province::Province;
use crate::loadgen::sim::{arrivals, Events};

/// Events per `IngestService.Publish` call: the service's limit.
const MAX_BATCH: usize = 1000;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dunghan loadgen --seed 7 --catalog-out province.toml --out events.jsonl
  dunghan replay --catalog province.toml --now 2026-01-01T00:00:00+07:00 events.jsonl
  dunghan loadgen --dossiers 1000000 --days 120 --out - | gzip > 1m.jsonl.gz
  dunghan loadgen --grpc 127.0.0.1:50051 --rate 5000
  dunghan loadgen --kafka-brokers localhost:9092 --topic dunghan.dossier-events

The same --seed and flags give byte-identical events and catalog. Generated dossiers
use the generated catalog (--catalog-out): give it to `serve --catalog` or `replay
--catalog`, or their procedure codes are unknown.")]
pub(crate) struct LoadgenArgs {
    /// Seed of the simulation: the same seed (and flags) gives the same bytes.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Number of dossiers to simulate.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub(crate) dossiers: u64,
    /// First day of arrivals (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", default_value = "2025-03-03", value_parser = parse_date)]
    pub(crate) start: NaiveDate,
    /// Calendar days over which arrivals spread (working hours of working days only).
    #[arg(long, value_name = "D", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub(crate) days: u32,
    /// Procedures in the generated catalog.
    #[arg(long, value_name = "N", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub(crate) procedures: u64,
    /// Agencies in the simulated province (each with a desk, leaders and 4–12 departments).
    #[arg(long, value_name = "N", default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(crate) agencies: u64,
    /// Write the generated procedure catalog (TOML, the format of --catalog) to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) catalog_out: Option<PathBuf>,
    /// Sink: write the events as proto3-JSON lines to FILE (`-` = standard output).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["grpc", "kafka_brokers"])]
    pub(crate) out: Option<String>,
    /// Sink: publish to a node's IngestService at ADDR (host:port or http://host:port).
    #[arg(long, value_name = "ADDR", conflicts_with = "kafka_brokers")]
    pub(crate) grpc: Option<String>,
    /// Events per Publish call with --grpc (at most 1000).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub(crate) batch: u64,
    /// Sink: produce to Kafka (bootstrap brokers host:port,…), keyed by dossier id, with
    /// a `content-type` header (see --kafka-format).
    #[arg(long, value_name = "HOSTS")]
    pub(crate) kafka_brokers: Option<String>,
    /// Payload format for --kafka-brokers: proto3 JSON or protobuf.
    #[arg(long, value_name = "FORMAT", default_value = "json", value_parser = ["json", "protobuf"], requires = "kafka_brokers")]
    pub(crate) kafka_format: String,
    /// Topic for --kafka-brokers [default: dunghan.dossier-events].
    #[arg(long, value_name = "T", requires = "kafka_brokers")]
    pub(crate) topic: Option<String>,
    /// Extra librdkafka producer property KEY=VALUE (repeatable), e.g. security settings.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE", requires = "kafka_brokers", value_parser = parse_property)]
    pub(crate) kafka_properties: Vec<(String, String)>,
    /// Target events per second (0 = as fast as the sink takes them).
    #[arg(long, value_name = "EVENTS_PER_SEC", default_value_t = 0.0, value_parser = parse_rate)]
    pub(crate) rate: f64,
    /// Do not print the summary line on stderr.
    #[arg(long)]
    pub(crate) quiet: bool,
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("`{text}` is not a date like 2025-03-03"))?;
    if !(2001..=2099).contains(&date.year()) {
        return Err(format!("{date} is outside 2001–2099"));
    }
    Ok(date)
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err(format!("`{text}` is not a number of events per second ≥ 0")),
    }
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

pub(crate) fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let sinks = [
        args.out.is_some(),
        args.grpc.is_some(),
        args.kafka_brokers.is_some(),
    ];
    if args.kafka_brokers.is_none() && (args.topic.is_some() || !args.kafka_properties.is_empty()) {
        return input_error("--topic and --kafka-property need --kafka-brokers");
    }
    if !sinks.contains(&true) && args.catalog_out.is_none() {
        return input_error(
            "nothing to do: give a sink (--out FILE, --grpc ADDR or --kafka-brokers HOSTS) \
             and/or --catalog-out FILE",
        );
    }
    let province = Province::generate(args.seed, args.agencies as usize, args.procedures as usize);
    if let Some(path) = &args.catalog_out {
        if let Err(e) = std::fs::write(path, province.catalog_toml(args.seed)) {
            return input_error(format!("cannot write catalog {}: {e}", path.display()));
        }
    }
    if !sinks.contains(&true) {
        return Ok(());
    }
    let end = args.start + chrono::Days::new(u64::from(args.days));
    let cal = match CalendarBuilder::national()
        .years(args.start.year() - 1, end.year() + 2)
        .build()
    {
        Ok(cal) => cal,
        Err(e) => return input_error(format!("calendar: {e}")),
    };
    let arrivals = match arrivals(&cal, args.seed, args.start, args.days, args.dossiers) {
        Ok(a) => a,
        Err(e) => return input_error(e),
    };
    let mut sink: Box<dyn Sink> = if let Some(out) = &args.out {
        Box::new(FileSink::open(out)?)
    } else if let Some(addr) = &args.grpc {
        Box::new(GrpcSink::connect(addr, args.batch as usize)?)
    } else {
        let brokers = args.kafka_brokers.as_deref().unwrap_or_default();
        Box::new(KafkaSink::new(
            brokers,
            args.topic.as_deref().unwrap_or("dunghan.dossier-events"),
            &args.kafka_properties,
            args.kafka_format == "protobuf",
        )?)
    };
    let progress = progress_bar(args.dossiers);
    let began = Instant::now();
    let mut events = Events::new(&province, &cal, args.seed, arrivals);
    let mut count = 0u64;
    while let Some(line) = events.next() {
        sink.send(&line.dossier_id, &line.json)?;
        count += 1;
        if count.is_multiple_of(4096) {
            progress.set_position(events.dossiers_done() as u64);
        }
        if args.rate > 0.0 {
            // Pace against the start, not the previous event, so short stalls catch up.
            let due = began + Duration::from_secs_f64(count as f64 / args.rate);
            let now = Instant::now();
            if due > now + Duration::from_millis(1) {
                std::thread::sleep(due - now);
            }
        }
    }
    let note = sink.finish()?;
    progress.finish_and_clear();
    let secs = began.elapsed().as_secs_f64();
    if !args.quiet {
        eprintln!(
            "loadgen: {count} events, {} dossiers, {secs:.2} s, {:.0} events/s{note}",
            args.dossiers,
            count as f64 / secs.max(1e-9)
        );
    }
    Ok(())
}

fn progress_bar(dossiers: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    indicatif::ProgressBar::new(dossiers).with_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} dossiers {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    )
}

/// Where the events go.
trait Sink {
    fn send(&mut self, dossier_id: &str, json: &str) -> anyhow::Result<()>;
    /// Flushes; returns a note for the summary line (", 12 rejected" …).
    fn finish(&mut self) -> anyhow::Result<String>;
}

struct FileSink {
    out: std::io::BufWriter<Box<dyn Write>>,
    name: String,
}

impl FileSink {
    fn open(path: &str) -> anyhow::Result<FileSink> {
        let out: Box<dyn Write> = if path == "-" {
            Box::new(std::io::stdout().lock())
        } else {
            match std::fs::File::create(path) {
                Ok(f) => Box::new(f),
                Err(e) => return input_error(format!("cannot write events file {path}: {e}")),
            }
        };
        Ok(FileSink {
            out: std::io::BufWriter::with_capacity(1 << 16, out),
            name: path.to_owned(),
        })
    }
}

impl Sink for FileSink {
    fn send(&mut self, _: &str, json: &str) -> anyhow::Result<()> {
        self.out
            .write_all(json.as_bytes())
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", self.name))
    }

    fn finish(&mut self) -> anyhow::Result<String> {
        self.out
            .flush()
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", self.name))?;
        Ok(String::new())
    }
}

/// Publishes batches to `IngestService.Publish` one after the other (each reply comes after
/// the batch is durable, so this measures the node's ingest, not a queue).
struct GrpcSink {
    rt: tokio::runtime::Runtime,
    client: v1::ingest_service_client::IngestServiceClient<tonic::transport::Channel>,
    batch: Vec<v1::DossierEvent>,
    size: usize,
    counts: [u64; 5],
    /// The first few refusals, printed before the summary so a user sees why.
    refusals: Vec<String>,
}

impl GrpcSink {
    fn connect(addr: &str, size: usize) -> anyhow::Result<GrpcSink> {
        let url = if addr.contains("://") {
            addr.to_owned()
        } else {
            format!("http://{addr}")
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let endpoint = match tonic::transport::Endpoint::from_shared(url.clone()) {
            Ok(e) => e,
            Err(e) => return input_error(format!("--grpc {addr}: {e}")),
        };
        let channel = rt
            .block_on(endpoint.connect_timeout(Duration::from_secs(10)).connect())
            .map_err(|e| anyhow::anyhow!("cannot connect to {url}: {e}"))?;
        let client = v1::ingest_service_client::IngestServiceClient::new(channel)
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20);
        Ok(GrpcSink {
            rt,
            client,
            batch: Vec::with_capacity(size),
            size: size.min(MAX_BATCH),
            counts: [0; 5],
            refusals: Vec::new(),
        })
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(&mut self.batch);
        let reply = self
            .rt
            .block_on(self.client.publish(v1::PublishRequest { events }))
            .map_err(|s| anyhow::anyhow!("Publish failed: {} ({:?})", s.message(), s.code()))?;
        for r in reply.into_inner().results {
            let i = usize::try_from(r.status).unwrap_or(0).min(4);
            self.counts[i] += 1;
            if r.status == v1::PublishStatus::Rejected as i32 && self.refusals.len() < 5 {
                self.refusals.push(format!("{}: {}", r.event_id, r.reason));
            }
        }
        Ok(())
    }
}

impl Sink for GrpcSink {
    fn send(&mut self, _: &str, json: &str) -> anyhow::Result<()> {
        let event = parse(json)?;
        self.batch.push(event);
        if self.batch.len() >= self.size {
            self.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<String> {
        self.flush()?;
        let [_, accepted, duplicate, rejected, queued] = self.counts;
        for r in &self.refusals {
            eprintln!("loadgen: rejected {r}");
        }
        Ok(format!(
            "; node: {accepted} accepted, {duplicate} duplicate, {rejected} rejected, {queued} queued"
        ))
    }
}

/// Counts deliveries the producer gave up on.
#[derive(Debug, Default)]
struct Deliveries {
    failed: Arc<AtomicU64>,
}

impl rdkafka::ClientContext for Deliveries {}

impl rdkafka::producer::ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A generated JSON line as the wire event.
fn parse(json: &str) -> anyhow::Result<v1::DossierEvent> {
    serde_json::from_str(json)
        .map_err(|e| anyhow::anyhow!("generated an invalid event ({e}): {json}"))
}

/// A generated JSON line in protobuf.
fn encode_protobuf(json: &str) -> anyhow::Result<Vec<u8>> {
    Ok(prost::Message::encode_to_vec(&parse(json)?))
}

struct KafkaSink {
    producer: rdkafka::producer::ThreadedProducer<Deliveries>,
    topic: String,
    failed: Arc<AtomicU64>,
    /// Protobuf payloads instead of JSON.
    protobuf: bool,
}

impl KafkaSink {
    fn new(
        brokers: &str,
        topic: &str,
        properties: &[(String, String)],
        protobuf: bool,
    ) -> anyhow::Result<KafkaSink> {
        let mut config = rdkafka::ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("linger.ms", "5")
            .set("message.timeout.ms", "60000");
        for (k, v) in properties {
            config.set(k, v);
        }
        let failed = Arc::new(AtomicU64::new(0));
        let producer = config
            .create_with_context(Deliveries {
                failed: failed.clone(),
            })
            .map_err(|e| anyhow::anyhow!("Kafka producer: {e}"))?;
        Ok(KafkaSink {
            producer,
            topic: topic.to_owned(),
            failed,
            protobuf,
        })
    }
}

impl Sink for KafkaSink {
    fn send(&mut self, dossier_id: &str, json: &str) -> anyhow::Result<()> {
        use rdkafka::error::{KafkaError, RDKafkaErrorCode};
        use rdkafka::message::{Header, OwnedHeaders};
        let (payload, content_type) = if self.protobuf {
            (encode_protobuf(json)?, "application/x-protobuf")
        } else {
            (json.as_bytes().to_vec(), "application/json")
        };
        let headers = OwnedHeaders::new().insert(Header {
            key: "content-type",
            value: Some(content_type),
        });
        let mut record = rdkafka::producer::BaseRecord::to(&self.topic)
            .key(dossier_id.as_bytes())
            .payload(payload.as_slice())
            .headers(headers);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => anyhow::bail!("Kafka produce to {}: {e}", self.topic),
            }
        }
    }

    fn finish(&mut self) -> anyhow::Result<String> {
        use rdkafka::producer::Producer as _;
        self.producer
            .flush(Duration::from_secs(120))
            .map_err(|e| anyhow::anyhow!("Kafka flush: {e}"))?;
        let failed = self.failed.load(Ordering::Relaxed);
        if failed > 0 {
            anyhow::bail!("{failed} events were not delivered to {}", self.topic);
        }
        Ok(format!("; produced to {}", self.topic))
    }
}
