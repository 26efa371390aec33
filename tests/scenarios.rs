//! Scenario tests: each `tests/scenarios/NAME.jsonl` (events in) is replayed by the real
//! binary and its output compared with `NAME.expected.jsonl` (raised events out).
//!
//! An expected line names only the fields it checks; `null` means "absent". Timestamps are
//! compared as instants, so expectations can be written in local time (+07:00).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The present for the future-timestamp rule, fixed so the scenarios never depend on today.
const NOW: &str = "2026-11-22T00:00:00+07:00";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios")
}

fn replay(events: &Path) -> (Vec<Value>, String) {
    replay_with(events, &[], &[])
}

/// Replays `events` with the scenario catalog and extra arguments and environment; the
/// replay must succeed. Returns the raised events and the summary.
fn replay_with(events: &Path, extra: &[&str], env: &[(&str, &str)]) -> (Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dunghan"))
        .args(["replay", "--catalog"])
        .arg(dir().join("catalog.toml"))
        .args(["--now", NOW])
        .args(extra)
        .arg(events)
        .env_remove("DUNGHAN__CALENDAR__FILE")
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each output line is JSON"))
        .collect();
    (lines, String::from_utf8(out.stderr).unwrap())
}

fn instant(v: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.timestamp())
}

/// The mismatches between an actual raised event and the fields an expected line names.
fn mismatches(actual: &Value, expected: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    for (key, want) in expected.as_object().expect("expected lines are objects") {
        let got = actual.get(key).unwrap_or(&Value::Null);
        let same = match (instant(got), instant(want)) {
            (Some(a), Some(b)) => a == b,
            _ => got == want,
        };
        if !same {
            errors.push(format!("{key}: expected {want}, got {got}"));
        }
    }
    errors
}

fn check(name: &str) {
    let events = dir().join(format!("{name}.jsonl"));
    let expected: Vec<Value> =
        std::fs::read_to_string(dir().join(format!("{name}.expected.jsonl")))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let (actual, stderr) = replay(&events);
    let mut report = Vec::new();
    for (i, want) in expected.iter().enumerate() {
        match actual.get(i) {
            None => report.push(format!("line {}: missing, expected {want}", i + 1)),
            Some(got) => {
                for e in mismatches(got, want) {
                    report.push(format!("line {} ({}): {e}", i + 1, got["id"]));
                }
            }
        }
    }
    for extra in actual.iter().skip(expected.len()) {
        report.push(format!("unexpected extra line: {extra}"));
    }
    assert!(
        report.is_empty(),
        "scenario {name}:\n  {}\nsummary:\n{stderr}",
        report.join("\n  ")
    );
    // Every raised event id is unique within a scenario (consumers deduplicate by id).
    let mut ids: Vec<&str> = actual.iter().map(|v| v["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "scenario {name}: duplicate ids");
}

macro_rules! scenarios {
    ($($name:ident => $file:literal,)*) => {
        $(#[test] fn $name() { check($file); })*

        #[test]
        fn every_scenario_file_has_a_test() {
            let known = [$($file),*];
            for entry in std::fs::read_dir(dir()).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                if let Some(stem) = name.strip_suffix(".expected.jsonl") {
                    assert!(known.contains(&stem), "no test for scenario {stem}");
                }
            }
        }
    };
}

scenarios! {
    worked_example_1_tet => "ex1-tet",
    worked_example_2_swapped_saturday => "ex2-swapped-saturday",
    worked_example_3_supplement_pause => "ex3-supplement-pause",
    worked_example_4_certification_cutoff => "ex4-certification-cutoff",
    supplement_restart => "supplement-restart",
    fee_wait => "fee-wait",
    apology_issued_then_second_lateness => "apology-issued-second-lateness",
    apology_overdue_and_step_ladder => "apology-overdue-step-ladder",
    early_and_on_time => "early-and-on-time",
    withdrawal_refusal_stop => "withdrawal-refusal",
    duplicates => "duplicates",
    out_of_order => "out-of-order",
    each_rejection_reason => "rejections",
    two_supplements_count_late => "two-supplements-late",
}

#[test]
fn summary_counts_per_agency() {
    let (_, stderr) = replay(&dir().join("early-and-on-time.jsonl"));
    let row = stderr
        .lines()
        .find(|l| l.starts_with("so-a"))
        .expect(&stderr);
    let cols: Vec<&str> = row.split_whitespace().collect();
    // agency, received, early, on-time, late, on-time%
    assert_eq!(
        &cols[..6],
        ["so-a", "2", "1", "1", "0", "100.0%"],
        "{stderr}"
    );
}

#[test]
fn replay_reads_stdin_and_fails_cleanly_on_a_missing_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_dunghan"))
        .args(["replay", "--catalog"])
        .arg(dir().join("catalog.toml"))
        .arg("/no/such/events.jsonl")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("/no/such/events.jsonl") && err.lines().count() == 1,
        "{err}"
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_dunghan"))
        .args(["replay", "--quiet", "--now", NOW, "--catalog"])
        .arg(dir().join("catalog.toml"))
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = std::fs::read(dir().join("ex1-tet.jsonl")).unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("D:deadline_computed:-:0"), "{text}");
}

#[test]
fn until_fires_the_rules_due_by_then() {
    let (actual, _) = replay_with(
        &dir().join("ex1-tet.jsonl"),
        &["--quiet", "--until", "2026-03-02T00:00:00+07:00"],
        &[],
    );
    let ids: Vec<&str> = actual.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "D:deadline_computed:-:0",
            "D:warning:-:2",
            "D:apology_required:-:0",
            "D:warning:-:1",
            "D:escalation:-:3",
            "D:apology_overdue:-:0"
        ]
    );
}

#[test]
fn engine_rules_come_from_the_config_file_and_the_environment() {
    let tmp = std::env::temp_dir().join(format!("dunghan-replay-config-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let config = tmp.join("dunghan.toml");
    std::fs::write(&config, "[engine]\nwarning_fraction = 0.5\n").unwrap();
    let (raised, _) = replay_with(
        &dir().join("ex1-tet.jsonl"),
        &[
            "--quiet",
            "--until",
            "2026-03-02T00:00:00+07:00",
            "--config",
            config.to_str().unwrap(),
        ],
        &[("DUNGHAN__ENGINE__APOLOGY_LEAD_DAYS", "2")],
    );
    let at = |id: &str| {
        let r = raised
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id}"));
        instant(&r["raisedAt"]).unwrap()
    };
    let local = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp();
    // Due Wed 25/2 16:20 with 24 working hours allotted: half of them remain at Tue 10:50.
    assert_eq!(at("D:warning:-:1"), local("2026-02-24T10:50:00+07:00"));
    // Two working days before the deadline (environment), not one.
    assert_eq!(
        at("D:apology_required:-:0"),
        local("2026-02-23T16:20:00+07:00")
    );

    std::fs::write(&config, "[engine]\nwarning_fraction = 2\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dunghan"))
        .args(["replay", "--config"])
        .arg(&config)
        .arg("--catalog")
        .arg(dir().join("catalog.toml"))
        .arg(dir().join("ex1-tet.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("warning_fraction 2") && err.lines().count() == 1,
        "{err}"
    );
    std::fs::remove_dir_all(&tmp).ok();
}
