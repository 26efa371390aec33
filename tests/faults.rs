//! The fault-injection suite in Kafka mode (issue 7), against a real broker (tansu): a
//! generated province's backlog (`dunghan loadgen`) mixed with bad records, consumed
//! through `kill -9` at random moments, a rebalance storm (instances joining, leaving,
//! crashing) and broker restarts. Each run's raised events must equal `dunghan replay` of
//! the valid input, field by field, 0 lost and 0 duplicated, and every bad record must be
//! in the dead-letter topic with its reason. `DUNGHAN_FAULT_SCALE=full` runs it at full
//! scale (README "Fault injection"); the default is a small scale for the test command.

mod common;
#[path = "common/kafka.rs"]
mod kit;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use kit::{
    assert_same, kafka_env, loadgen, replay, scratch, settled_output, Broker, Instance, Rng,
    PARTITIONS,
};
use serde_json::Value;

/// How hard each test pushes: `DUNGHAN_FAULT_SCALE=full`, else small.
#[derive(Debug)]
struct Scale {
    /// Dossiers of the crash test's backlog (about 6 events each).
    dossiers: usize,
    /// `kill -9`s of the crash test.
    kills: usize,
    /// Joins, leaves and crashes (each followed by a replacement) of the rebalance storm,
    /// and its backlog.
    storm_changes: usize,
    storm_dossiers: usize,
    /// Broker restarts, and the backlog (tansu's SQLite storage is slow).
    restarts: usize,
    restart_dossiers: usize,
}

fn scale() -> Scale {
    match std::env::var("DUNGHAN_FAULT_SCALE").as_deref() {
        Ok("full") => Scale {
            dossiers: 17_000,
            kills: 20,
            storm_changes: 30,
            storm_dossiers: 3_000,
            restarts: 3,
            restart_dossiers: 150,
        },
        Ok("small") | Err(_) => Scale {
            dossiers: 700,
            kills: 3,
            storm_changes: 8,
            storm_dossiers: 300,
            restarts: 1,
            restart_dossiers: 20,
        },
        Ok(other) => panic!("DUNGHAN_FAULT_SCALE is `small` or `full`, not `{other}`"),
    }
}

/// One bad record mixed into the input, and the dead-letter reason it must get.
struct Bad {
    key: String,
    payload: Vec<u8>,
    reason: &'static str,
}

/// Bad records of every kind, one after every `every` valid ones: bytes that are no
/// event, a truncated protobuf, broken JSON, a time without offset, a dossier nobody
/// received. Returns the mixed input and the bad records.
fn with_bad_records(
    events: &[(String, Vec<u8>)],
    every: usize,
) -> (Vec<(String, Vec<u8>)>, Vec<Bad>) {
    use prost::Message as _;
    let mut mixed = Vec::with_capacity(events.len() + events.len() / every + 1);
    let mut bad = Vec::new();
    for (i, (key, line)) in events.iter().enumerate() {
        mixed.push((key.clone(), line.clone()));
        if i % every != every - 1 {
            continue;
        }
        let n = bad.len();
        let (payload, reason) = match n % 5 {
            0 => (format!("\x00\u{ff}garbage {n}\x13").into_bytes(), "malformed"),
            1 => {
                let event: dunghan_proto::v1::DossierEvent = serde_json::from_slice(line).unwrap();
                let bytes = event.encode_to_vec();
                (bytes[..bytes.len() / 2].to_vec(), "malformed")
            }
            2 => (
                format!(r#"{{"eventId": "bad-{n}", "dossierId": }}"#).into_bytes(),
                "malformed",
            ),
            3 => (
                format!(r#"{{"eventId":"bad-{n}","dossierId":"{key}","occurredAt":"2025-03-03T08:00:00","resultReady":{{}}}}"#)
                    .into_bytes(),
                "malformed",
            ),
            _ => {
                let nope = format!("NOPE-{n}");
                let line = format!(r#"{{"eventId":"bad-{n}","dossierId":"{nope}","occurredAt":"2025-03-03T08:00:00+07:00","resultReady":{{}}}}"#);
                bad.push(Bad {
                    key: nope.clone(),
                    payload: line.clone().into_bytes(),
                    reason: "unknown_dossier",
                });
                mixed.push((nope, line.into_bytes()));
                continue;
            }
        };
        bad.push(Bad {
            key: key.clone(),
            payload: payload.clone(),
            reason,
        });
        mixed.push((key.clone(), payload));
    }
    (mixed, bad)
}

/// The output with one REJECTED event per bad record (each once) set apart; the rest.
fn without_rejections(actual: Vec<Value>, bad: &[Bad]) -> Vec<Value> {
    let (rejected, rest): (Vec<Value>, Vec<Value>) = actual
        .into_iter()
        .partition(|e| e["kind"] == "SLA_EVENT_KIND_REJECTED");
    let ids: BTreeSet<&str> = rejected.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), rejected.len(), "a REJECTED event repeated");
    assert_eq!(
        rejected.len(),
        bad.len(),
        "one REJECTED event per bad record"
    );
    rest
}

/// Every bad record is in the dead-letter topic with its reason, message, input position
/// and original bytes. A record reprocessed after a crash may be dead-lettered again:
/// letters are told apart by their `dunghan-input` position (the count is printed).
fn assert_dead_lettered(broker: &Broker, topic: &str, bad: &[Bad], dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let by_input = loop {
        let mut by_input: BTreeMap<String, Vec<kit::Record>> = BTreeMap::new();
        for letter in broker.read(topic) {
            let input = letter.headers.get("dunghan-input").cloned();
            let input = input.expect("a dead letter says which input record it was");
            by_input.entry(input).or_default().push(letter);
        }
        if by_input.len() >= bad.len() || Instant::now() > deadline {
            break by_input;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        by_input.len(),
        bad.len(),
        "dead letters, by input position; logs in {}",
        dir.display()
    );
    let mut wanted: BTreeMap<(&str, &[u8]), (&str, usize)> = BTreeMap::new();
    for b in bad {
        wanted
            .entry((&b.key, &b.payload))
            .or_insert((b.reason, 0))
            .1 += 1;
    }
    let mut repeated = 0;
    for (input, letters) in &by_input {
        repeated += letters.len() - 1;
        let first = &letters[0];
        assert!(
            letters.iter().all(|l| l.payload == first.payload),
            "{input}"
        );
        let key = first.key.as_deref().unwrap_or("");
        let (reason, count) = wanted
            .get_mut(&(key, first.payload.as_slice()))
            .unwrap_or_else(|| panic!("dead letter {input} is no bad record we sent"));
        assert_eq!(
            first.headers.get("dunghan-reason").map(String::as_str),
            Some(*reason)
        );
        assert!(
            !first.headers["dunghan-message"].is_empty(),
            "{input}: a message"
        );
        *count -= 1;
    }
    assert!(
        wanted.values().all(|(_, c)| *c == 0),
        "every bad record, once per input"
    );
    println!(
        "dead letters: {} bad records, all present; {repeated} written again after a crash",
        bad.len()
    );
}

#[test]
fn kill_9_at_random_moments_loses_and_repeats_nothing() {
    let scale = scale();
    let began = Instant::now();
    let dir = scratch("faults-crash");
    let broker = Broker::start(&dir);
    let (catalog, events) = loadgen(&dir, 7, scale.dossiers);
    let env = kafka_env(&broker, "crash", &catalog);
    let expected = replay(&dir, &events, &catalog);
    let (input, bad) = with_bad_records(&events, 997);
    // The backlog is there before the instance: it is behind, so stream time follows
    // event time, as a replay's clock does, until it has caught up.
    broker.create_topics("crash");
    broker.produce("crash.dossier-events", &input);
    let mut instance = Instance::start(&dir, "a", &env, "127.0.0.1:0");
    let mut rng = Rng(11);
    for _ in 0..scale.kills {
        // Killed at a random moment after it has taken its partitions; the next one
        // joins once the group has seen the dead member's session (10 s) expire.
        instance.wait_owning();
        std::thread::sleep(Duration::from_millis(rng.below(3_000)));
        instance.kill9();
        std::thread::sleep(Duration::from_secs(11));
        instance = Instance::start(&dir, "a", &env, "127.0.0.1:0");
    }
    let total = expected.len() + bad.len();
    let actual = settled_output(&broker, "crash.sla-events", total, &dir);
    assert_same(&without_rejections(actual, &bad), &expected);
    assert_dead_lettered(&broker, "crash.dead-letter", &bad, &dir);
    assert_eq!(instance.http("/readyz").0, 200, "ready once restored");
    instance.stop();
    println!(
        "kill -9 x{}: {} events + {} bad records, {} raised, identical to the replay; {:.0} s",
        scale.kills,
        events.len(),
        bad.len(),
        expected.len(),
        began.elapsed().as_secs_f64()
    );
}

/// Owned partitions, from the instance's metrics.
fn owned(instance: &Instance) -> f64 {
    let (_, metrics) = instance.http("/metrics");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("dunghan_kafka_owned_partitions "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_rebalance_storm_loses_and_repeats_nothing() {
    let scale = scale();
    let began = Instant::now();
    let dir = scratch("faults-storm");
    let broker = Broker::start(&dir);
    let (catalog, events) = loadgen(&dir, 23, scale.storm_dossiers);
    let env = kafka_env(&broker, "storm", &catalog);
    let expected = replay(&dir, &events, &catalog);
    let (input, bad) = with_bad_records(&events, 499);
    broker.create_topics("storm");
    broker.produce("storm.dossier-events", &input);
    let mut rng = Rng(5);
    let mut running: Vec<Instance> = vec![Instance::start(&dir, "m0", &env, "127.0.0.1:0")];
    running[0].wait_owning();
    let (mut joins, mut leaves, mut crashes) = (1, 0, 0);
    for change in 0..scale.storm_changes {
        std::thread::sleep(Duration::from_millis(300 + rng.below(1_500)));
        // tansu 0.6.0 rebalances on a join or a leave, not when a dead member's session
        // expires, and keeps a member that went away before its first join as a ghost
        // holding partitions: so each joiner is waited for until it owns partitions (with
        // at most one member per partition, every member owns some), and a crash is
        // followed, after the session timeout, by a replacement joining.
        let join = |running: &mut Vec<Instance>, name: String| {
            let member = Instance::start(&dir, &name, &env, "127.0.0.1:0");
            member.wait_owning();
            running.push(member);
        };
        match rng.below(4) {
            0 | 1 if running.len() < PARTITIONS as usize => {
                join(&mut running, format!("m{}", change + 1));
                joins += 1;
            }
            // Crash a member (kill -9), then a replacement joins.
            3 if running.len() > 1 => {
                let i = rng.below(running.len() as u64) as usize;
                running.remove(i).kill9();
                crashes += 1;
                std::thread::sleep(Duration::from_secs(11));
                join(&mut running, format!("m{}r", change + 1));
                joins += 1;
            }
            // Leave (SIGTERM: last checkpoint, leave the group).
            _ if running.len() > 1 => {
                let i = rng.below(running.len() as u64) as usize;
                running.remove(i).stop();
                leaves += 1;
            }
            _ => {}
        }
    }
    let total = expected.len() + bad.len();
    let actual = settled_output(&broker, "storm.sla-events", total, &dir);
    assert_same(&without_rejections(actual, &bad), &expected);
    assert_dead_lettered(&broker, "storm.dead-letter", &bad, &dir);
    let held: f64 = running.iter().map(owned).sum();
    assert_eq!(held, PARTITIONS as f64, "the survivors own every partition");
    for member in running {
        member.stop();
    }
    println!(
        "storm: {joins} joins, {leaves} leaves, {crashes} kill -9 over {} events + {} bad \
         records; {} raised, identical to the replay; {:.0} s",
        events.len(),
        bad.len(),
        expected.len(),
        began.elapsed().as_secs_f64()
    );
}

#[test]
fn a_broker_restart_loses_nothing_and_repeats_nothing() {
    let scale = scale();
    let dir = scratch("faults-restart");
    // Durable broker storage (SQLite in the test directory), so a restart keeps the topics.
    let mut broker = Broker::with_storage(&dir, "sqlite://tansu.db".into());
    // A small stream: tansu's SQLite storage serves about one record per fetch.
    let (catalog, events) = loadgen(&dir, 33, scale.restart_dossiers);
    let env = kafka_env(&broker, "restart", &catalog);
    let expected = replay(&dir, &events, &catalog);
    broker.create_topics("restart");
    broker.produce("restart.dossier-events", &events);
    let instance = Instance::start(&dir, "a", &env, "127.0.0.1:0");
    instance.wait_ready();
    for round in 0..scale.restarts {
        // Restarted while output is being written (more of it each round).
        let deadline = Instant::now() + Duration::from_secs(120);
        let want = expected.len() * (round + 1) / (scale.restarts + 1);
        while kit::output(&broker, "restart.sla-events").len() <= want.min(expected.len() - 1) {
            assert!(
                Instant::now() < deadline,
                "no output before restart {round}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        broker.restart(&dir);
    }
    let actual = settled_output(&broker, "restart.sla-events", expected.len(), &dir);
    assert_same(&actual, &expected);
    instance.stop();
}
