//! Bytes per open dossier with one active step, on 1 M dossiers: the engine's own
//! accounting and the process's resident-set growth. Run with
//! `cargo bench -p dunghan-benches --bench memory` (prints; no timing).

use dunghan_calendar::{CalendarBuilder, CalendarSet};
use dunghan_core::{Channel, Event, Payload};

// Only the engine constructor is used here; the event generator serves the engine bench.
#[allow(dead_code)]
#[path = "workload.rs"]
mod workload;

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    // `cargo test --benches` runs bench targets once; keep that quick.
    let n: usize = if std::env::args().any(|a| a == "--bench") {
        1_000_000
    } else {
        10_000
    };
    let calendars = CalendarSet::single(
        CalendarBuilder::national()
            .years(2020, 2030)
            .build()
            .unwrap(),
    );
    let mut engine = workload::engine(&calendars);
    let mut out = Vec::new();
    let before = resident_bytes();
    for i in 0..n {
        let id = format!("HS-2026-{i:08}");
        let t = workload::START + (i % 30_000) as i64;
        let received = Event {
            event_id: format!("{id}-r"),
            dossier_id: id.clone(),
            occurred_at: t,
            payload: Payload::Received {
                procedure_code: "2.000488".into(),
                agency_id: format!("agency-{}", i % 40),
                office_id: String::new(),
                channel: Channel::Online,
            },
        };
        engine.apply(&received, &mut out);
        let step = Event {
            event_id: format!("{id}-s"),
            dossier_id: id,
            occurred_at: t + 600,
            payload: Payload::StepStarted {
                step_id: "tham-dinh".into(),
                department_id: format!("phong-{}", i % 300),
                allotment: None,
            },
        };
        engine.apply(&step, &mut out);
        out.clear();
    }
    let after = resident_bytes();
    assert_eq!(engine.open_dossiers(), n);
    println!("open dossiers with one active step: {n}");
    println!(
        "engine accounting: {} bytes per dossier",
        engine.state_bytes() / n
    );
    println!(
        "resident set growth: {} bytes per dossier",
        after.saturating_sub(before) / n
    );
    println!("pending timers: {}", engine.pending_timers());
}
