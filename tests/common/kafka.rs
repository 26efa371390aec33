//! Kafka-mode test kit shared by tests/kafka.rs and tests/faults.rs: a tansu broker on a
//! loopback port, `dunghan serve` instances, a producer and a read-committed reader,
//! `dunghan loadgen` input, `dunghan replay` as the expected output, and the comparison.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dunghan_proto::v1::SlaEvent;
use prost::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

/// Input partitions of every test's topics.
pub(crate) const PARTITIONS: i32 = 4;

/// A tansu broker on a free loopback port; killed when dropped.
pub(crate) struct Broker {
    pub(crate) child: Child,
    pub(crate) addr: String,
    pub(crate) storage: String,
}

/// The tansu binary: `$TANSU`, else `tansu` on the PATH, else where `tests/run.sh` puts it.
pub(crate) fn tansu() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU") {
        return path.into();
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("tansu"))
        .find(|p| p.is_file());
    let path = on_path.unwrap_or_else(|| "/var/tmp/dunghan-tools/bin/tansu".into());
    assert!(
        path.is_file(),
        "the tansu broker is not installed: ./tests/run.sh installs it (or set TANSU=path)"
    );
    path
}

pub(crate) fn scratch(name: &str) -> PathBuf {
    crate::common::fresh_dir(&format!("kafka-{name}"))
}

impl Broker {
    /// A broker keeping its data in memory (lost when it stops).
    pub(crate) fn start(dir: &Path) -> Broker {
        Broker::with_storage(dir, "memory://tansu/".into())
    }

    pub(crate) fn with_storage(dir: &Path, storage: String) -> Broker {
        let addr = format!("127.0.0.1:{}", crate::common::free_port());
        let child = Broker::spawn(dir, &addr, &storage);
        Broker {
            child,
            addr,
            storage,
        }
    }

    pub(crate) fn spawn(dir: &Path, addr: &str, storage: &str) -> Child {
        let url = format!("tcp://{addr}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("tansu.log"))
            .unwrap();
        let child = Command::new(tansu())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", storage])
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("tansu starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    /// Stops the broker and starts it again on the same address and storage.
    pub(crate) fn restart(&mut self, dir: &Path) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Broker::spawn(dir, &self.addr, &self.storage);
    }

    /// Creates the four topics of `prefix` (as an operator would before loading a backlog;
    /// a producer writing to a missing topic gets it auto-created, without our settings).
    pub(crate) fn create_topics(&self, prefix: &str) {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<rdkafka::client::DefaultClientContext> =
            self.config().create().unwrap();
        let names: Vec<String> = ["dossier-events", "sla-events", "changelog", "dead-letter"]
            .iter()
            .map(|t| format!("{prefix}.{t}"))
            .collect();
        let topics: Vec<NewTopic<'_>> = names
            .iter()
            .map(|n| NewTopic::new(n, PARTITIONS, TopicReplication::Fixed(1)))
            .collect();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let results = runtime
            .block_on(admin.create_topics(topics.iter(), &AdminOptions::new()))
            .unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }

    pub(crate) fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.addr);
        c
    }

    pub(crate) fn produce(&self, topic: &str, records: &[(String, Vec<u8>)]) {
        produce(&self.addr, topic, records);
    }

    /// Every record of `topic` (all partitions, from the start to where a fetch comes back
    /// empty), read by a read-committed consumer outside any group.
    pub(crate) fn read(&self, topic: &str) -> Vec<Record> {
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", "dunghan-test-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("max.partition.fetch.bytes", "52428800")
            .set("fetch.wait.max.ms", "50")
            .set("isolation.level", "read_committed")
            .create()
            .expect("consumer");
        let Ok(meta) = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) else {
            return Vec::new();
        };
        let partitions = meta
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len() as i32);
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
        if partitions == 0 {
            return Vec::new();
        }
        consumer.assign(&tpl).unwrap();
        let mut open: std::collections::BTreeSet<i32> = (0..partitions).collect();
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !open.is_empty() {
            assert!(Instant::now() < deadline, "reading {topic} stalled");
            let m = match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => m,
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    open.remove(&p);
                    continue;
                }
                _ => continue,
            };
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                            (h.key.to_owned(), value.unwrap_or_default())
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(Record {
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                payload: m.payload().unwrap_or_default().to_vec(),
                headers,
            });
        }
        out
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Produces `(key, payload)` records to `topic` (partitioned by key), waits for all.
pub(crate) fn produce(brokers: &str, topic: &str, records: &[(String, Vec<u8>)]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for (key, payload) in records {
        let mut record = BaseRecord::to(topic).key(key.as_str()).payload(payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).expect("produced");
}

/// One record read back.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) key: Option<String>,
    pub(crate) payload: Vec<u8>,
    pub(crate) headers: BTreeMap<String, String>,
}

/// A running `dunghan serve` in Kafka mode.
pub(crate) struct Instance {
    pub(crate) child: Child,
    pub(crate) grpc: String,
    pub(crate) metrics: String,
}

/// Sum of the samples of metric `name` in a `/metrics` page, if it has any.
pub(crate) fn metric_sum(page: &str, name: &str) -> Option<f64> {
    let values: Vec<f64> = page
        .lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// Sets `key` to `value` in an instance's environment, replacing the value it had.
pub(crate) fn set_env(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    env.retain(|(k, _)| k != key);
    env.push((key.into(), value.into()));
}

/// The topic names and group of one test.
pub(crate) fn kafka_env(broker: &Broker, prefix: &str, catalog: &Path) -> Vec<(String, String)> {
    [
        ("DUNGHAN__KAFKA__BROKERS", broker.addr.clone()),
        ("DUNGHAN__KAFKA__GROUP_ID", format!("{prefix}-group")),
        (
            "DUNGHAN__KAFKA__INPUT_TOPIC",
            format!("{prefix}.dossier-events"),
        ),
        (
            "DUNGHAN__KAFKA__OUTPUT_TOPIC",
            format!("{prefix}.sla-events"),
        ),
        (
            "DUNGHAN__KAFKA__CHANGELOG_TOPIC",
            format!("{prefix}.changelog"),
        ),
        (
            "DUNGHAN__KAFKA__DEAD_LETTER_TOPIC",
            format!("{prefix}.dead-letter"),
        ),
        ("DUNGHAN__KAFKA__PARTITIONS", PARTITIONS.to_string()),
        ("DUNGHAN__KAFKA__CHECKPOINT_INTERVAL_MS", "100".into()),
        // Checkpoints during a catch-up too, so that crashes in one lose little.
        (
            "DUNGHAN__KAFKA__CHECKPOINT_CATCH_UP_INTERVAL_MS",
            "300".into(),
        ),
        ("DUNGHAN__CATALOG__FILE", catalog.display().to_string()),
        // tansu 0.6.0 returns nothing to a fetch starting inside a multi-record batch.
        ("DUNGHAN__KAFKA__RESUME_FROM_BEGINNING", "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl Instance {
    pub(crate) fn start(dir: &Path, name: &str, env: &[(String, String)], grpc: &str) -> Instance {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{name}.log")))
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_dunghan"))
            .args([
                "serve",
                "--grpc-listen",
                grpc,
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .env_remove("DUNGHAN__CALENDAR__FILE")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = || {
            lines
                .next()
                .unwrap_or_else(|| panic!("{name} exited; see {}", dir.display()))
                .unwrap()
        };
        let grpc = next()
            .strip_prefix("gRPC listening on ")
            .expect("gRPC line first")
            .to_owned();
        let metrics = next()
            .strip_prefix("metrics on http://")
            .and_then(|m| m.strip_suffix("/metrics"))
            .expect("metrics line second")
            .to_owned();
        Instance {
            child,
            grpc,
            metrics,
        }
    }

    /// Waits until `/readyz` says the instance has partitions and has restored them.
    pub(crate) fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.http("/readyz").0 != 200 {
            assert!(Instant::now() < deadline, "not ready after 90 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the instance owns at least one partition (restored and ready).
    pub(crate) fn wait_owning(&self) {
        self.wait_metrics(90, "owns no partition", |page| {
            metric_sum(page, "dunghan_kafka_owned_partitions").is_some_and(|n| n > 0.0)
                && self.http("/readyz").0 == 200
        });
    }

    /// Reads `/metrics` every 100 ms until `done` accepts it (the page it accepted); fails
    /// saying `what` after `secs` seconds.
    pub(crate) fn wait_metrics(
        &self,
        secs: u64,
        what: &str,
        mut done: impl FnMut(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (_, page) = self.http("/metrics");
            if done(&page) {
                return page;
            }
            assert!(Instant::now() < deadline, "{what} after {secs} s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit (last checkpoint, group left).
    pub(crate) fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "graceful stop exits 0: {exit:?}");
    }

    /// (status, body) of a GET on the metrics listener.
    pub(crate) fn http(&self, path: &str) -> (u16, String) {
        crate::common::http_get(&self.metrics, path).expect("the metrics listener answers")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SplitMix64: a seeded, reproducible stream of numbers.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `dunghan replay` of the same events with the present and the clock at now: the raised
/// events as JSON values.
pub(crate) fn replay(dir: &Path, events: &[(String, Vec<u8>)], catalog: &Path) -> Vec<Value> {
    let file = dir.join("events.jsonl");
    let mut text = Vec::new();
    for (_, line) in events {
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    std::fs::write(&file, text).unwrap();
    crate::common::replay_file(&file, catalog, &chrono::Utc::now().to_rfc3339())
}

/// The raised events in the output topic, as JSON values (protobuf decoded).
pub(crate) fn output(broker: &Broker, topic: &str) -> Vec<Value> {
    broker
        .read(topic)
        .iter()
        .map(|r| {
            let event = SlaEvent::decode(r.payload.as_slice()).expect("protobuf SlaEvent");
            assert_eq!(r.headers.get("dunghan-id"), Some(&event.id), "id header");
            assert_eq!(
                r.key.as_deref(),
                Some(event.dossier_id.as_str()),
                "keyed by dossier"
            );
            serde_json::to_value(&event).unwrap()
        })
        .collect()
}

/// Waits until the output holds at least `expected` records and has not changed for a few
/// seconds (so that a late duplicate would be seen), then returns it.
pub(crate) fn settled_output(
    broker: &Broker,
    topic: &str,
    expected: usize,
    dir: &Path,
) -> Vec<Value> {
    let deadline = Instant::now()
        + Duration::from_secs(std::env::var("KAFKA_TEST_WAIT").map_or(
            // A full-scale fault run (tests/faults.rs) has 100 000+ records to settle.
            match std::env::var("DUNGHAN_FAULT_SCALE").as_deref() {
                Ok("full") => 1_800,
                _ => 240,
            },
            |v| v.parse().unwrap(),
        ));
    let mut last = 0;
    let mut stable_since = Instant::now();
    loop {
        let out = output(broker, topic);
        if out.len() != last {
            last = out.len();
            stable_since = Instant::now();
        }
        if out.len() >= expected && stable_since.elapsed() > Duration::from_secs(4) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "output stuck at {} of {expected} records ({:?}); logs in {}",
            out.len(),
            out.iter()
                .map(|e| e["id"].as_str().unwrap_or("?"))
                .collect::<Vec<_>>(),
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The same raised events, each exactly once: compares by id, then field by field.
pub(crate) fn assert_same(actual: &[Value], expected: &[Value]) {
    let by_id = |events: &[Value]| -> BTreeMap<String, Vec<Value>> {
        let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for e in events {
            m.entry(e["id"].as_str().unwrap().to_owned())
                .or_default()
                .push(e.clone());
        }
        m
    };
    let (a, e) = (by_id(actual), by_id(expected));
    let repeated: Vec<&String> = a
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(repeated.is_empty(), "raised more than once: {repeated:?}");
    let missing: Vec<&String> = e.keys().filter(|k| !a.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let extra: Vec<&String> = a.keys().filter(|k| !e.contains_key(*k)).collect();
    assert!(
        extra.is_empty(),
        "{} extra, e.g. {:?}",
        extra.len(),
        &extra[..extra.len().min(5)]
    );
    for (id, events) in &e {
        assert_eq!(&a[id][0], &events[0], "event {id} differs");
    }
}

/// A generated province's events (`dunghan loadgen --seed S --dossiers N`, 2025, so every
/// rule has fired by now) and its catalog file: (dossier id, proto3-JSON line) each.
pub(crate) fn loadgen(dir: &Path, seed: u64, dossiers: usize) -> (PathBuf, Vec<(String, Vec<u8>)>) {
    let (catalog, file) = (dir.join("catalog.toml"), dir.join("generated.jsonl"));
    let out = Command::new(env!("CARGO_BIN_EXE_dunghan"))
        .args(["loadgen", "--quiet", "--seed", &seed.to_string()])
        .args(["--dossiers", &dossiers.to_string(), "--catalog-out"])
        .arg(&catalog)
        .arg("--out")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let key = v["dossierId"].as_str().unwrap().to_owned();
            (key, line.as_bytes().to_vec())
        })
        .collect();
    (catalog, events)
}

/// The dossiers of `events` (generated lines keyed by dossier id) that ended: returned,
/// withdrawn, refused or stopped.
pub(crate) fn ended(events: &[(String, Vec<u8>)]) -> std::collections::BTreeSet<&str> {
    let ends = [
        "\"resultReturned\"",
        "\"withdrawn\"",
        "\"refused\"",
        "\"processingStopped\"",
    ];
    events
        .iter()
        .filter(|(_, line)| {
            let line = String::from_utf8_lossy(line);
            ends.iter().any(|end| line.contains(end))
        })
        .map(|(d, _)| d.as_str())
        .collect()
}

/// How many dossiers of `events` are still open after them.
pub(crate) fn still_open(events: &[(String, Vec<u8>)]) -> usize {
    let all: std::collections::BTreeSet<&str> = events.iter().map(|(d, _)| d.as_str()).collect();
    all.difference(&ended(events)).count()
}
