//! Kafka mode against a real Kafka-protocol broker (tansu on a loopback port): input from a
//! separate producer, `dunghan serve` instances in one consumer group, `dunghan.sla-events`
//! read back with a separate read-committed consumer, and the result compared with
//! `dunghan replay` of the same events — through crashes (`kill -9`), rebalances, bad
//! input and a broker restart.

mod common;

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
const PARTITIONS: i32 = 4;

/// A tansu broker on a free loopback port; killed when dropped.
struct Broker {
    child: Child,
    addr: String,
    storage: String,
}

/// The tansu binary: `$TANSU`, else `tansu` on the PATH, else where `tests/run.sh` puts it.
fn tansu() -> PathBuf {
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

fn scratch(name: &str) -> PathBuf {
    common::fresh_dir(&format!("kafka-{name}"))
}

impl Broker {
    /// A broker keeping its data in memory (lost when it stops).
    fn start(dir: &Path) -> Broker {
        Broker::with_storage(dir, "memory://tansu/".into())
    }

    fn with_storage(dir: &Path, storage: String) -> Broker {
        let addr = format!("127.0.0.1:{}", common::free_port());
        let child = Broker::spawn(dir, &addr, &storage);
        Broker {
            child,
            addr,
            storage,
        }
    }

    fn spawn(dir: &Path, addr: &str, storage: &str) -> Child {
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
    fn restart(&mut self, dir: &Path) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Broker::spawn(dir, &self.addr, &self.storage);
    }

    /// Creates the four topics of `prefix` (as an operator would before loading a backlog;
    /// a producer writing to a missing topic gets it auto-created, without our settings).
    fn create_topics(&self, prefix: &str) {
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

    fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.addr);
        c
    }

    fn produce(&self, topic: &str, records: &[(String, Vec<u8>)]) {
        produce(&self.addr, topic, records);
    }

    /// Every record of `topic` (all partitions, from the start to where a fetch comes back
    /// empty), read by a read-committed consumer outside any group.
    fn read(&self, topic: &str) -> Vec<Record> {
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
fn produce(brokers: &str, topic: &str, records: &[(String, Vec<u8>)]) {
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
struct Record {
    key: Option<String>,
    payload: Vec<u8>,
    headers: BTreeMap<String, String>,
}

/// A running `dunghan serve` in Kafka mode.
struct Instance {
    child: Child,
    grpc: String,
    metrics: String,
}

/// The topic names and group of one test.
fn kafka_env(broker: &Broker, prefix: &str) -> Vec<(String, String)> {
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios/catalog.toml");
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
        ("DUNGHAN__CATALOG__FILE", catalog.display().to_string()),
        // tansu 0.6.0 returns nothing to a fetch starting inside a multi-record batch.
        ("DUNGHAN__KAFKA__RESUME_FROM_BEGINNING", "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl Instance {
    fn start(dir: &Path, name: &str, env: &[(String, String)], grpc: &str) -> Instance {
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
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.http("/readyz").0 != 200 {
            assert!(Instant::now() < deadline, "not ready after 90 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the instance owns at least one partition (restored and ready).
    fn wait_owning(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (_, metrics) = self.http("/metrics");
            let owned = metrics
                .lines()
                .find_map(|l| l.strip_prefix("dunghan_kafka_owned_partitions "))
                .and_then(|v| v.trim().parse::<f64>().ok());
            if owned.is_some_and(|n| n > 0.0) && self.http("/readyz").0 == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "owns no partition after 90 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit (last checkpoint, group left).
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "graceful stop exits 0: {exit:?}");
    }

    /// (status, body) of a GET on the metrics listener.
    fn http(&self, path: &str) -> (u16, String) {
        common::http_get(&self.metrics, path).expect("the metrics listener answers")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SplitMix64: a seeded, reproducible stream of numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` dossiers' events in 2025 (so every rule has fired by now), sorted by time: receipt,
/// steps for the two-step procedure, some supplements, results early / on time / late,
/// returns, ratings, withdrawals, some never finished. (dossier id, JSON line) each.
fn events(n: usize, seed: u64) -> Vec<(String, Vec<u8>)> {
    let base = chrono::DateTime::parse_from_rfc3339("2025-03-03T08:00:00+07:00")
        .unwrap()
        .timestamp();
    let mut rng = Rng(seed);
    let mut all: Vec<(i64, usize, String, String)> = Vec::new();
    for i in 0..n {
        let d = format!("K-{i:05}");
        let t0 = base + i as i64 * 1_800 + rng.below(1_800) as i64;
        let hours = |h: u64| h as i64 * 3_600;
        let mut seq = 0;
        let mut push = |t: i64, body: String| {
            let at = chrono::DateTime::from_timestamp(t, 0)
                .unwrap()
                .with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).unwrap())
                .to_rfc3339();
            let line = format!(
                r#"{{"eventId":"{d}-{seq}","dossierId":"{d}","occurredAt":"{at}",{body}}}"#
            );
            all.push((t, all.len(), d.clone(), line));
            seq += 1;
        };
        let procedure = ["P1", "P3", "P5", "P5R"][rng.below(4) as usize];
        let agency = ["so-a", "so-b", "ubnd-x"][rng.below(3) as usize];
        let channel = ["CHANNEL_COUNTER", "CHANNEL_ONLINE"][rng.below(2) as usize];
        push(
            t0,
            format!(
                r#""received":{{"procedureCode":"{procedure}","agencyId":"{agency}","channel":"{channel}"}}"#
            ),
        );
        let mut t = t0;
        if procedure == "P5" {
            push(
                t,
                r#""stepStarted":{"stepId":"xu-ly","departmentId":"phong-a"}"#.into(),
            );
            t += hours(2 + rng.below(120));
            push(t, r#""stepCompleted":{"stepId":"xu-ly"}"#.into());
            push(
                t,
                r#""stepStarted":{"stepId":"duyet","departmentId":"phong-b"}"#.into(),
            );
            t += hours(1 + rng.below(48));
            push(t, r#""stepCompleted":{"stepId":"duyet"}"#.into());
        }
        if rng.below(6) == 0 {
            t += hours(1 + rng.below(24));
            push(
                t,
                r#""supplementRequested":{"reason":"thiếu giấy tờ"}"#.into(),
            );
            t += hours(1 + rng.below(72));
            push(t, r#""supplementReceived":{}"#.into());
        }
        match rng.below(10) {
            0 => {
                t += hours(1 + rng.below(24));
                push(t, r#""withdrawn":{"reason":"công dân rút"}"#.into());
            }
            1 => {} // never finished: the whole ladder fires
            _ => {
                t += hours(1 + rng.below(200));
                push(t, r#""resultReady":{}"#.into());
                t += hours(1 + rng.below(48));
                push(t, r#""resultReturned":{}"#.into());
                if rng.below(2) == 0 {
                    let level = [
                        "SATISFACTION_LEVEL_SATISFIED",
                        "SATISFACTION_LEVEL_DISSATISFIED",
                    ][rng.below(2) as usize];
                    push(
                        t + 60,
                        format!(r#""citizenRated":{{"departmentId":"phong-a","level":"{level}"}}"#),
                    );
                }
            }
        }
    }
    all.sort_by_key(|(t, order, _, _)| (*t, *order));
    all.into_iter()
        .map(|(_, _, d, line)| (d, line.into_bytes()))
        .collect()
}

/// `dunghan replay` of the same events with the present and the clock at now: the raised
/// events as JSON values.
fn replay(dir: &Path, events: &[(String, Vec<u8>)]) -> Vec<Value> {
    let file = dir.join("events.jsonl");
    let mut text = Vec::new();
    for (_, line) in events {
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    std::fs::write(&file, text).unwrap();
    let now = chrono::Utc::now().to_rfc3339();
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios/catalog.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_dunghan"))
        .args([
            "replay",
            "--quiet",
            "--now",
            &now,
            "--until",
            &now,
            "--catalog",
        ])
        .arg(catalog)
        .arg(&file)
        .env_remove("DUNGHAN__CALENDAR__FILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The raised events in the output topic, as JSON values (protobuf decoded).
fn output(broker: &Broker, topic: &str) -> Vec<Value> {
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
fn settled_output(broker: &Broker, topic: &str, expected: usize, dir: &Path) -> Vec<Value> {
    let deadline = Instant::now()
        + Duration::from_secs(std::env::var("KAFKA_TEST_WAIT").map_or(240, |v| v.parse().unwrap()));
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
fn assert_same(actual: &[Value], expected: &[Value]) {
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

#[test]
fn same_output_as_replay_through_kill_9_restarts() {
    let dir = scratch("crash");
    let broker = Broker::start(&dir);
    let env = kafka_env(&broker, "crash");
    let events = events(1_000, 7);
    let expected = replay(&dir, &events);
    assert!(
        expected.len() > 3_000,
        "a rich stream: {} raised",
        expected.len()
    );
    // The backlog is there before the instance: it is behind, so stream time follows
    // event time, as a replay's clock does, until it has caught up.
    broker.create_topics("crash");
    broker.produce("crash.dossier-events", &events);
    let mut instance = Instance::start(&dir, "a", &env, "127.0.0.1:0");
    let mut rng = Rng(11);
    for _ in 0..3 {
        // Killed at a random moment after it has taken its partitions; the next one
        // joins once the group has seen the dead member's session (10 s) expire.
        instance.wait_owning();
        std::thread::sleep(Duration::from_millis(rng.below(2_000)));
        instance.kill9();
        std::thread::sleep(Duration::from_secs(11));
        instance = Instance::start(&dir, "a", &env, "127.0.0.1:0");
    }
    let actual = settled_output(&broker, "crash.sla-events", expected.len(), &dir);
    assert_same(&actual, &expected);
    let (code, metrics) = instance.http("/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("dunghan_kafka_rebalances_total{kind=\"assign\"}"));
    assert_eq!(instance.http("/readyz").0, 200, "ready once restored");
    instance.stop();
}

#[test]
fn same_output_as_replay_through_rebalances() {
    let dir = scratch("rebalance");
    let broker = Broker::start(&dir);
    let env = kafka_env(&broker, "rebalance");
    let events = events(1_000, 21);
    let expected = replay(&dir, &events);
    broker.create_topics("rebalance");
    broker.produce("rebalance.dossier-events", &events);
    let a = Instance::start(&dir, "a", &env, "127.0.0.1:0");
    std::thread::sleep(Duration::from_millis(800));
    let b = Instance::start(&dir, "b", &env, "127.0.0.1:0");
    let c = Instance::start(&dir, "c", &env, "127.0.0.1:0");
    std::thread::sleep(Duration::from_millis(1_500));
    a.stop();
    b.stop();
    let actual = settled_output(&broker, "rebalance.sla-events", expected.len(), &dir);
    assert_same(&actual, &expected);
    let (_, metrics) = c.http("/metrics");
    let owned: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("dunghan_kafka_owned_partitions "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        owned, PARTITIONS as f64,
        "the last instance owns every partition"
    );
    c.stop();
}

#[test]
fn bad_input_goes_to_the_dead_letter_topic_and_the_partition_keeps_flowing() {
    let dir = scratch("bad");
    let broker = Broker::start(&dir);
    let env = kafka_env(&broker, "bad");
    let instance = Instance::start(&dir, "a", &env, "127.0.0.1:0");
    let good = events(3, 5);
    let valid = serde_json::from_slice::<dunghan_proto::v1::DossierEvent>(&good[0].1).unwrap();
    let truncated = valid.encode_to_vec()[..10].to_vec();
    let key = good[0].0.clone();
    let mut records: Vec<(String, Vec<u8>)> = vec![
        (key.clone(), b"\x00\xffgarbage\x13".to_vec()),
        (key.clone(), truncated),
        (key.clone(), br#"{"eventId": "x", "dossierId": }"#.to_vec()),
        (
            key.clone(),
            format!(r#"{{"eventId":"n","dossierId":"{key}","occurredAt":"2025-03-03T08:00:00","resultReady":{{}}}}"#).into_bytes(),
        ),
        (
            "NOPE".into(),
            br#"{"eventId":"u","dossierId":"NOPE","occurredAt":"2025-03-03T08:00:00+07:00","resultReady":{}}"#.to_vec(),
        ),
    ];
    records.extend(good.iter().cloned());
    broker.produce("bad.dossier-events", &records);
    let expected = replay(&dir, &good);
    let deadline = Instant::now() + Duration::from_secs(120);
    let letters = loop {
        let letters = broker.read("bad.dead-letter");
        if letters.len() >= 5 || Instant::now() > deadline {
            break letters;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let mut reasons: Vec<&str> = letters
        .iter()
        .map(|l| l.headers.get("dunghan-reason").map_or("", String::as_str))
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "malformed",
            "malformed",
            "malformed",
            "malformed",
            "unknown_dossier"
        ],
        "logs in {}",
        dir.display()
    );
    for letter in &letters {
        assert!(!letter.headers["dunghan-message"].is_empty());
        assert!(
            letter.headers["dunghan-input"].contains('/'),
            "input position"
        );
        assert!(
            records
                .iter()
                .any(|(_, payload)| *payload == letter.payload),
            "the original bytes are kept"
        );
    }
    // The valid events behind the bad ones were processed: their raised events are all
    // there (plus a REJECTED event per bad record).
    let actual = settled_output(&broker, "bad.sla-events", expected.len() + 5, &dir);
    let (rejected, rest): (Vec<Value>, Vec<Value>) = actual
        .into_iter()
        .partition(|e| e["kind"] == "SLA_EVENT_KIND_REJECTED");
    assert_eq!(rejected.len(), 5);
    assert_same(&rest, &expected);
    let (_, metrics) = instance.http("/metrics");
    assert!(
        metrics.contains("dunghan_kafka_dead_letters_total{reason=\"malformed\"} 4"),
        "{metrics}"
    );
    instance.stop();
}

#[test]
fn queries_reach_the_owner_and_fan_out_across_instances() {
    use dunghan_proto::v1::dossier_service_client::DossierServiceClient;
    use dunghan_proto::v1::ingest_service_client::IngestServiceClient;
    use dunghan_proto::v1::sla_service_client::SlaServiceClient;
    use dunghan_proto::v1::{GetRatesRequest, GetTimelineRequest, ListOpenDossiersRequest};

    let dir = scratch("query");
    let broker = Broker::start(&dir);
    let (pa, pb) = (
        format!("127.0.0.1:{}", common::free_port()),
        format!("127.0.0.1:{}", common::free_port()),
    );
    let mut env = kafka_env(&broker, "query");
    env.push(("DUNGHAN__CLUSTER__PEERS".into(), format!("{pa},{pb}")));
    let a = Instance::start(&dir, "a", &env, &pa);
    let b = Instance::start(&dir, "b", &env, &pb);
    let events = events(60, 3);
    // What a replay raises, to know when the instances are done; the checks below compare
    // with what the instances wrote (the Publish arrives late by event time).
    let replayed = replay(&dir, &events);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let channel = |addr: String| async move {
            tonic::transport::Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .unwrap()
        };
        let (ca, cb) = (channel(a.grpc.clone()).await, channel(b.grpc.clone()).await);
        // Publish through one instance: queued to the input topic.
        let wire: Vec<dunghan_proto::v1::DossierEvent> = events
            .iter()
            .map(|(_, l)| serde_json::from_slice(l).unwrap())
            .collect();
        let results = IngestServiceClient::new(ca.clone())
            .publish(dunghan_proto::v1::PublishRequest { events: wire })
            .await
            .unwrap()
            .into_inner()
            .results;
        assert!(results
            .iter()
            .all(|r| r.status() == dunghan_proto::v1::PublishStatus::Queued));
        let expected = settled_output(&broker, "query.sla-events", replayed.len(), &dir);
        // Both instances answer every open dossier's timeline (one forwards to the other);
        // an ended dossier is forgotten after the retention (90 days), everywhere.
        let finished: std::collections::BTreeSet<&str> = expected
            .iter()
            .filter(|e| e["kind"] == "SLA_EVENT_KIND_OUTCOME")
            .map(|e| e["dossierId"].as_str().unwrap())
            .collect();
        let mut asked = 0;
        for (d, _) in &events {
            for c in [&ca, &cb] {
                let t = DossierServiceClient::new(c.clone())
                    .get_timeline(GetTimelineRequest {
                        dossier_id: d.clone(),
                    })
                    .await;
                if finished.contains(d.as_str()) {
                    assert_eq!(
                        t.unwrap_err().code(),
                        tonic::Code::NotFound,
                        "{d} forgotten"
                    );
                    continue;
                }
                let t = t.unwrap().into_inner();
                let want: Vec<&Value> = expected
                    .iter()
                    .filter(|e| e["dossierId"] == d.as_str())
                    .collect();
                assert_eq!(t.raised.len(), want.len(), "timeline of {d}");
                assert!(t.events.iter().all(|e| e.dossier_id == *d));
                asked += 1;
            }
        }
        assert!(asked >= 4, "some dossiers are still open");
        // Open dossiers: those with no outcome, from both instances' partitions.
        let open = events
            .iter()
            .map(|(d, _)| d.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .difference(&finished)
            .count();
        let listed = DossierServiceClient::new(cb.clone())
            .list_open_dossiers(ListOpenDossiersRequest {
                page_size: 1_000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.dossiers.len(), open);
        // Rates over 2025 sum both instances' dossiers; in Kafka mode they cover the
        // dossiers the cluster still holds (ended ones are forgotten after the retention).
        let year = |y: &str| {
            Some(dunghan_proto::pbjson_types::Timestamp {
                seconds: chrono::DateTime::parse_from_rfc3339(y).unwrap().timestamp(),
                nanos: 0,
            })
        };
        let rates = SlaServiceClient::new(ca.clone())
            .get_rates(GetRatesRequest {
                from: year("2025-01-01T00:00:00+07:00"),
                to: year("2026-01-01T00:00:00+07:00"),
                by: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(rates.total.unwrap().received, open as u64);
    });
    a.stop();
    b.stop();
}

#[test]
fn a_broker_restart_loses_nothing_and_repeats_nothing() {
    let dir = scratch("restart");
    // Durable broker storage (SQLite in the test directory), so a restart keeps the topics.
    let mut broker = Broker::with_storage(&dir, "sqlite://tansu.db".into());
    let env = kafka_env(&broker, "restart");
    // A small stream: tansu's SQLite storage serves about one record per fetch.
    let events = events(60, 33);
    let expected = replay(&dir, &events);
    broker.create_topics("restart");
    broker.produce("restart.dossier-events", &events);
    let instance = Instance::start(&dir, "a", &env, "127.0.0.1:0");
    instance.wait_ready();
    let deadline = Instant::now() + Duration::from_secs(60);
    while output(&broker, "restart.sla-events").is_empty() {
        assert!(Instant::now() < deadline, "no output before the restart");
        std::thread::sleep(Duration::from_millis(100));
    }
    broker.restart(&dir);
    let actual = settled_output(&broker, "restart.sla-events", expected.len(), &dir);
    assert_same(&actual, &expected);
    instance.stop();
}
