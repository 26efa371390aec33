//! Unit tests of the embedded node on a real store: timer bursts go out before they are
//! written, and a crash in between loses nothing and repeats nothing.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use dunghan_core::{Catalog, Engine, EngineConfig};
use dunghan_proto::v1::DossierEvent;

use super::metrics::Metrics;
use super::node::Node;
use crate::files::CalendarSpec;

const CATALOG: &str = include_str!("../../../tests/scenarios/catalog.toml");

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dunghan-node-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn open(data: &std::path::Path) -> Node {
    let catalog = Catalog::parse(CATALOG, "catalog.toml").unwrap();
    let spec = CalendarSpec::default();
    let calendars = spec.build().unwrap();
    let shared = Arc::new(RwLock::new(Arc::new(calendars.clone())));
    let engine = Engine::new(catalog, calendars, EngineConfig::default());
    Node::open(data, engine, Metrics::new().unwrap(), spec, shared).unwrap()
}

/// `n` dossiers received with a step in October 2026: every rule is due by now.
fn dossiers(n: usize) -> Vec<DossierEvent> {
    (0..n)
        .flat_map(|i| {
            let lines = [
                format!(r#"{{"eventId":"r{i}","dossierId":"D{i}","occurredAt":"2026-10-05T10:00:00+07:00","received":{{"procedureCode":"P5","agencyId":"so-a"}}}}"#),
                format!(r#"{{"eventId":"s{i}","dossierId":"D{i}","occurredAt":"2026-10-05T10:00:00+07:00","stepStarted":{{"stepId":"xu-ly","departmentId":"phong-a"}}}}"#),
            ];
            lines.map(|l| serde_json::from_str::<DossierEvent>(&l).unwrap())
        })
        .collect()
}

/// Publishes the `n` dossiers in batches of 1 000 (the largest a Publish takes).
fn publish(node: &mut Node, n: usize) {
    for batch in dossiers(n).chunks(1000) {
        node.publish(batch).unwrap();
    }
}

/// Every raised id of the dossiers, as the timeline query shows them.
fn raised_ids(node: &Node, n: usize) -> Vec<String> {
    (0..n)
        .flat_map(|i| node.timeline(&format!("D{i}")).unwrap().1)
        .map(|r| r.id)
        .collect()
}

/// Fires everything due, as the ticker does, without writing what went out.
fn fire(node: &mut Node) -> usize {
    let mut sent = 0;
    loop {
        let (n, more) = node.tick(crate::clock::now_ms()).unwrap();
        sent += n;
        if !more {
            return sent;
        }
    }
}

#[test]
fn a_burst_goes_out_before_its_write_and_a_crash_in_between_loses_and_repeats_nothing() {
    const N: usize = 5_000; // more than one slice
    let data = dir("burst");
    let mut node = open(&data);
    publish(&mut node, N);
    let mut watch = node.watch();
    let sent = fire(&mut node);
    assert!(sent >= 3 * N, "warnings, escalations, apologies: {sent}");
    let mut watched = 0;
    while let Ok(slice) = watch.try_recv() {
        watched += slice.len();
    }
    assert_eq!(watched, sent, "every fired event reached the watcher");
    let before = raised_ids(&node, N);
    assert_eq!(
        before.len(),
        N + sent,
        "the timeline shows them before they are written"
    );
    // Crash: what was sent and not written is gone with the process.
    drop(node);
    let node = open(&data);
    assert_eq!(
        raised_ids(&node, N),
        before,
        "raised again by the replay, each once"
    );
    drop(node);
    let mut node = open(&data);
    assert_eq!(raised_ids(&node, N), before, "and stored");
    assert_eq!(fire(&mut node), 0, "nothing fires twice");
    std::fs::remove_dir_all(&data).ok();
}

#[test]
fn what_went_out_is_written_a_chunk_at_a_time_and_survives_a_restart() {
    const N: usize = 6_000;
    let data = dir("written");
    let mut node = open(&data);
    publish(&mut node, N);
    let sent = fire(&mut node);
    let before = raised_ids(&node, N);
    let mut chunks = 0;
    while node.write_deferred().unwrap() > 0 {
        chunks += 1;
    }
    assert!(
        chunks >= 1,
        "{sent} events are more than one slice of 4 096 dossiers"
    );
    assert_eq!(raised_ids(&node, N), before, "written, the same");
    drop(node);
    let mut node = open(&data);
    assert_eq!(raised_ids(&node, N), before);
    assert_eq!(fire(&mut node), 0);
    std::fs::remove_dir_all(&data).ok();
}

/// The result of `D{i}`, ready at `at` (Unix s).
fn ready(i: usize, at: i64) -> DossierEvent {
    let at = dunghan_calendar::from_ts(at).to_rfc3339();
    let line = format!(
        r#"{{"eventId":"ready{i}","dossierId":"D{i}","occurredAt":"{at}","resultReady":{{}}}}"#
    );
    serde_json::from_str(&line).unwrap()
}

/// Every raised event of the dossiers, by id, as the timeline shows them.
fn raised(node: &Node, n: usize) -> Vec<dunghan_proto::v1::SlaEvent> {
    (0..n)
        .flat_map(|i| node.timeline(&format!("D{i}")).unwrap().1)
        .collect()
}

#[test]
fn a_prepared_moment_goes_out_at_the_moment_minus_what_an_event_withdrew() {
    const N: usize = 5_000; // more than one slice
    let (data, reference_data) = (dir("prepared"), dir("prepared-reference"));
    let mut node = open(&data);
    publish(&mut node, N);
    let at = node.next_timer().expect("a pending moment");
    assert_eq!(node.crowded_moment(at - 10, at + 10, 1_000), Some(at));
    while node.prepare(at) {}
    assert_eq!(node.prepared_at(), Some(at));
    let mut watch = node.watch();
    assert_eq!(
        node.tick(at * 1000 - 1).unwrap().0,
        0,
        "nothing before the moment"
    );
    assert!(watch.try_recv().is_err());
    assert_eq!(raised_ids(&node, N).len(), N, "only the deadlines so far");
    // A result for D7 just before the moment withdraws its firing.
    node.publish(&[ready(7, at - 1)]).unwrap();
    while watch.try_recv().is_ok() {} // what the result raised
    let (sent, _) = node.tick(at * 1000).unwrap();
    assert_eq!(node.prepared_at(), None);
    let mut watched = 0;
    while let Ok(slice) = watch.try_recv() {
        watched += slice.len();
    }
    assert_eq!(watched, sent, "the watcher got what went out");

    // The same without preparing.
    let mut reference = open(&reference_data);
    publish(&mut reference, N);
    reference.publish(&[ready(7, at - 1)]).unwrap();
    let mut expected = 0;
    loop {
        let (n, more) = reference.tick(at * 1000).unwrap();
        expected += n;
        if !more {
            break;
        }
    }
    assert_eq!(sent, expected);
    assert!(sent >= N - 1, "the other dossiers' moment");
    assert_eq!(raised(&node, N), raised(&reference, N));
    assert!(
        raised(&node, N)
            .iter()
            .all(|r| r.dossier_id != "D7" || r.raised_at.as_ref().unwrap().seconds < at),
        "nothing of the withdrawn firing went out"
    );
    drop((node, reference));
    std::fs::remove_dir_all(&data).ok();
    std::fs::remove_dir_all(&reference_data).ok();
}

#[test]
fn a_crash_before_a_prepared_moment_loses_nothing() {
    const N: usize = 2_000;
    let (data, reference_data) = (dir("prepared-crash"), dir("prepared-crash-reference"));
    let mut node = open(&data);
    publish(&mut node, N);
    let at = node.next_timer().expect("a pending moment");
    while node.prepare(at) {}
    drop(node); // crash: nothing prepared was stored or sent
    let node = open(&data); // the restart fires everything due by now
    let mut reference = open(&reference_data);
    publish(&mut reference, N);
    fire(&mut reference);
    assert!(raised(&reference, N).len() > 2 * N);
    assert_eq!(raised(&node, N), raised(&reference, N));
    drop((node, reference));
    std::fs::remove_dir_all(&data).ok();
    std::fs::remove_dir_all(&reference_data).ok();
}
