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
    while watch.try_recv().is_ok() {
        watched += 1;
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
