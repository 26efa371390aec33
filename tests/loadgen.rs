//! `dunghan loadgen` as a user runs it: reproducible bytes, a generated catalog that
//! `replay` and `serve` accept with every event, the requested mix of a province's
//! dossiers, publication to a real node over gRPC, and one-line errors for bad flags.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{Datelike, Timelike};

mod common;
#[path = "common/kafka.rs"]
mod kit;

use common::Node;

fn dunghan() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dunghan"));
    c.env_remove("DUNGHAN__CATALOG__FILE")
        .env_remove("DUNGHAN__CALENDAR__FILE")
        .env_remove("DUNGHAN_CONFIG");
    c
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dunghan-loadgen-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    let out = dunghan().args(args).output().expect("the binary runs");
    assert!(
        out.status.success(),
        "dunghan {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Generates `dossiers` dossiers with `seed` into `dir`: (catalog path, events path).
fn generate(dir: &Path, seed: u64, dossiers: u64) -> (PathBuf, PathBuf) {
    let catalog = dir.join(format!("catalog-{seed}.toml"));
    let events = dir.join(format!("events-{seed}.jsonl"));
    run(&[
        "loadgen",
        "--seed",
        &seed.to_string(),
        "--dossiers",
        &dossiers.to_string(),
        "--catalog-out",
        catalog.to_str().unwrap(),
        "--out",
        events.to_str().unwrap(),
    ]);
    (catalog, events)
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn payload(e: &serde_json::Value) -> &str {
    e.as_object()
        .unwrap()
        .keys()
        .find(|k| !["eventId", "dossierId", "occurredAt"].contains(&k.as_str()))
        .expect("a payload")
}

fn at(e: &serde_json::Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(e["occurredAt"].as_str().unwrap()).unwrap()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let d = dir("seed");
    let stdout = |seed: &str| {
        run(&[
            "loadgen",
            "--seed",
            seed,
            "--dossiers",
            "1500",
            "--out",
            "-",
        ])
        .stdout
    };
    let a = stdout("11");
    assert!(!a.is_empty());
    assert_eq!(a, stdout("11"), "same seed, same bytes");
    assert_ne!(a, stdout("12"), "another seed, other bytes");

    // The file sink writes the same bytes as stdout, and the catalog is reproducible too.
    let (c1, e1) = generate(&d, 11, 1500);
    assert_eq!(std::fs::read(&e1).unwrap(), a);
    let again = d.join("again");
    std::fs::create_dir_all(&again).unwrap();
    let (c2, _) = generate(&again, 11, 1500);
    assert_eq!(std::fs::read(c1).unwrap(), std::fs::read(c2).unwrap());

    // Sorted by event time.
    let times: Vec<i64> = lines(&e1).iter().map(|e| at(e).timestamp()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "sorted by time");
}

#[test]
fn replay_with_the_generated_catalog_accepts_every_event() {
    let d = dir("replay");
    let (catalog, events) = generate(&d, 5, 5000);
    let n = lines(&events).len();
    let out = run(&[
        "replay",
        "--catalog",
        catalog.to_str().unwrap(),
        "--now",
        "2026-01-01T00:00:00+07:00",
        events.to_str().unwrap(),
    ]);
    let raised = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!raised.contains("REJECTED"), "no rejection:\n{}", {
        raised
            .lines()
            .filter(|l| l.contains("REJECTED"))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    });
    assert!(
        stderr.contains(&format!("events applied {n}, rejected 0")),
        "{stderr}"
    );

    // Results early, on time and late, from chronically late departments among others.
    let mut outcomes = BTreeMap::new();
    for l in raised.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        if let Some(o) = v["outcome"].as_str() {
            *outcomes.entry(o.to_owned()).or_insert(0u32) += 1;
        }
    }
    for o in ["OUTCOME_EARLY", "OUTCOME_ON_TIME", "OUTCOME_LATE"] {
        assert!(
            outcomes.get(o).copied().unwrap_or(0) > 0,
            "{o} in {outcomes:?}"
        );
    }
    assert!(
        outcomes["OUTCOME_LATE"] < outcomes["OUTCOME_EARLY"],
        "{outcomes:?}"
    );
    assert!(raised.contains("SLA_EVENT_KIND_ESCALATION"));
    assert!(raised.contains("SLA_EVENT_KIND_APOLOGY_REQUIRED"));
}

#[test]
fn the_mix_is_a_province_s_working_days() {
    let d = dir("mix");
    let (catalog, events) = generate(&d, 3, 4000);
    let events = lines(&events);
    let mut by_kind: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut levels = BTreeSet::new();
    let mut departments = BTreeSet::new();
    let mut procedures = BTreeSet::new();
    let mut agencies = BTreeSet::new();
    let mut hours = [0u32; 24];
    for e in &events {
        let kind = payload(e);
        by_kind
            .entry(kind)
            .or_default()
            .insert(e["dossierId"].as_str().unwrap());
        match kind {
            "received" => {
                let t = at(e);
                assert_eq!(t.offset().local_minus_utc(), 7 * 3600);
                assert!(t.weekday().num_days_from_monday() < 5, "weekday: {t}");
                let minute = t.hour() * 60 + t.minute();
                assert!(
                    (450..690).contains(&minute) || (780..1020).contains(&minute),
                    "received in working hours: {t}"
                );
                hours[t.hour() as usize] += 1;
                procedures.insert(e["received"]["procedureCode"].as_str().unwrap());
                agencies.insert(e["received"]["agencyId"].as_str().unwrap());
            }
            "stepStarted" => {
                departments.insert(e["stepStarted"]["departmentId"].as_str().unwrap());
            }
            "citizenRated" => {
                levels.insert(e["citizenRated"]["level"].as_str().unwrap());
            }
            _ => {}
        }
    }
    let share = |kind: &str| by_kind.get(kind).map_or(0, BTreeSet::len) as f64 / 4000.0;
    assert_eq!(share("received"), 1.0);
    assert!(
        (0.07..0.13).contains(&share("supplementRequested")),
        "{}",
        share("supplementRequested")
    );
    assert_eq!(share("supplementRequested"), share("supplementReceived"));
    assert!(
        (0.015..0.05).contains(&share("withdrawn")),
        "{}",
        share("withdrawn")
    );
    assert!(share("resultReady") > 0.9);
    assert!(share("resultReturned") > 0.85);
    assert!((0.3..0.8).contains(&share("citizenRated")));
    assert!(share("apologyIssued") > 0.0);
    assert_eq!(levels.len(), 4, "every satisfaction level: {levels:?}");
    assert!(
        departments.len() >= 50,
        "steps over many departments: {}",
        departments.len()
    );
    assert!(
        procedures.len() >= 100,
        "{} procedures filed",
        procedures.len()
    );
    assert!(agencies.len() >= 30, "{} agencies", agencies.len());
    // The morning peak is busier than the last hour of the afternoon.
    assert!(hours[8] + hours[9] > 2 * (hours[16]), "{hours:?}");

    // The catalog is a province: a few hundred procedures, dozens of agencies, hundreds
    // of departments, reduced times, steps, some departments chronically late.
    let text = std::fs::read_to_string(catalog).unwrap();
    assert_eq!(text.matches("[[procedure]]").count(), 300);
    assert!(text.matches("reduced = ").count() > 100);
    assert!(text.matches("[[procedure.steps]]").count() > 100);
    let late = text
        .lines()
        .find_map(|l| l.strip_prefix("# Chronically late departments in the simulation: "))
        .unwrap();
    assert!(late.split(' ').count() >= 10, "{late}");
}

fn serve(data: &Path, catalog: &Path) -> Node {
    let mut command = common::serve_command(data);
    command
        .arg("--catalog")
        .arg(catalog)
        // The events are from 2025 and the node's clock is the wall clock: keep ended
        // dossiers long enough that a rating after the return still finds its dossier.
        .env(
            "DUNGHAN__ENGINE__RETAIN_ENDED_SECS",
            (3650 * 86_400).to_string(),
        );
    Node::spawn(command).0
}

#[test]
fn grpc_sink_publishes_everything_a_node_accepts() {
    let d = dir("grpc");
    let (catalog, events) = generate(&d, 9, 600);
    let n = lines(&events).len();
    let node = serve(&d.join("data"), &catalog);
    let out = run(&[
        "loadgen",
        "--seed",
        "9",
        "--dossiers",
        "600",
        "--batch",
        "250",
        "--grpc",
        &node.grpc,
    ]);
    let summary = String::from_utf8(out.stderr).unwrap();
    assert!(
        summary.contains(&format!("loadgen: {n} events, 600 dossiers, "))
            && summary.contains(&format!("node: {n} accepted, 0 duplicate, 0 rejected")),
        "{summary}"
    );
    let metrics = common::http_get(&node.metrics, "/metrics")
        .expect("the metrics endpoint answers")
        .1;
    let line = format!("dunghan_events_total{{reason=\"\",status=\"accepted\"}} {n}");
    assert!(metrics.contains(&line), "{line} in\n{metrics}");
    assert!(!metrics.contains("status=\"rejected\"} "), "{metrics}");
}

#[test]
fn bad_flags_exit_2_with_one_line_and_help_explains() {
    for args in [
        &["loadgen", "--dossiers", "0", "--out", "-"][..],
        &["loadgen", "--start", "2025-13-01", "--out", "-"],
        &["loadgen", "--rate", "-5", "--out", "-"],
        &["loadgen", "--batch", "5000", "--grpc", "127.0.0.1:1"],
        &["loadgen", "--out", "-", "--grpc", "127.0.0.1:1"],
        &["loadgen", "--topic", "t", "--out", "-"],
        &["loadgen", "--seed", "1"],
        &["loadgen", "--out", "/nonexistent-dir/events.jsonl"],
    ] {
        let out = dunghan().args(args).output().unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let help = run(&["loadgen", "--help"]).stdout;
    let help = String::from_utf8(help).unwrap();
    for flag in [
        "--seed",
        "--dossiers",
        "--start",
        "--days",
        "--catalog-out",
        "--out",
        "--grpc",
        "--kafka-brokers",
        "--topic",
        "--rate",
    ] {
        assert!(help.contains(flag), "{flag} in\n{help}");
    }
}

#[test]
fn kafka_sink_produces_every_event_keyed_by_dossier_in_order() {
    let d = dir("kafka");
    let (_, events) = generate(&d, 21, 300);
    let broker = kit::Broker::start(&d);
    broker.create_topics("lg");
    let out = run(&[
        "loadgen",
        "--seed",
        "21",
        "--dossiers",
        "300",
        "--kafka-brokers",
        &broker.addr,
        "--topic",
        "lg.dossier-events",
    ]);
    let summary = String::from_utf8(out.stderr).unwrap();
    assert!(
        summary.contains("produced to lg.dossier-events"),
        "{summary}"
    );

    // Read everything back: per dossier, the same events in the same order as the file,
    // each keyed by its dossier id with a JSON content type.
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for record in broker.read("lg.dossier-events") {
        let content_type = BTreeMap::from([("content-type".into(), "application/json".into())]);
        assert_eq!(record.headers, content_type);
        let json = String::from_utf8(record.payload).unwrap();
        got.entry(record.key.expect("keyed by dossier"))
            .or_default()
            .push(json);
    }
    let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in std::fs::read_to_string(&events).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        want.entry(v["dossierId"].as_str().unwrap().to_owned())
            .or_default()
            .push(line.to_owned());
    }
    assert_eq!(got.len(), 300);
    assert!(
        got == want,
        "the topic holds the generated events, in order per dossier"
    );
}
