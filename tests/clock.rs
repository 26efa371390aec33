//! The service's clock as a user sets it for a drill or a bench: `dunghan serve
//! --clock-start` (or `[clock] start`, `DUNGHAN__CLOCK__START`) starts it at an instant
//! just before a hand-checked deadline, the watcher receives the escalation at the rule's
//! moment, and the fire-lag histogram counts it; a bad value is a clear error. A burst of
//! deadlines goes out before it is written: `kill -9` in between loses and repeats nothing.
//! A crowded moment is fired in the seconds before it and sent at the moment; a result
//! that comes in between undoes that dossier's firing.

use std::process::Command;

use dunghan_proto::v1::dossier_event::Payload;
use dunghan_proto::v1::ingest_service_client::IngestServiceClient;
use dunghan_proto::v1::sla_service_client::SlaServiceClient;
use dunghan_proto::v1::{DossierEvent, DossierReceived, PublishRequest, WatchSlaEventsRequest};

mod common;

use common::{at, Node};

fn dunghan() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dunghan"));
    c.env_remove("DUNGHAN__CATALOG__FILE")
        .env_remove("DUNGHAN__CALENDAR__FILE")
        .env_remove("DUNGHAN__CLOCK__START");
    c
}

fn start(name: &str, extra: &[&str], env: &[(&str, &str)]) -> Node {
    let data = std::env::temp_dir().join(format!("dunghan-clock-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut command = common::serve_command(&data);
    command.args(extra).envs(env.iter().copied());
    Node::spawn(command).0
}

fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} in\n{body}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_clock_fires_a_known_deadline_at_its_moment() {
    // Company registration (2.001610, reduced to 2 working days) received Mon 2/11/2026
    // 10:00: due Wed 4/11/2026 10:00 (Mon → Tue 10:00 → Wed 10:00), when the dossier is
    // overdue (level 3 escalation). The clock starts three seconds before.
    let node = start(
        "deadline",
        &["--clock-start", "2026-11-04T09:59:57+07:00"],
        &[],
    );
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", node.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut watch = SlaServiceClient::new(channel.clone())
        .watch_sla_events(WatchSlaEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let received = DossierEvent {
        event_id: "r1".into(),
        dossier_id: "C-1".into(),
        occurred_at: at("2026-11-02T10:00:00+07:00"),
        payload: Some(Payload::Received(DossierReceived {
            procedure_code: "2.001610".into(),
            agency_id: "so-khdt".into(),
            ..Default::default()
        })),
    };
    let reply = IngestServiceClient::new(channel)
        .publish(PublishRequest {
            events: vec![received],
        })
        .await
        .unwrap()
        .into_inner();
    let computed = &reply.results[0].raised[0];
    assert_eq!(computed.deadline, at("2026-11-04T10:00:00+07:00"));

    let escalation = loop {
        let e = tokio::time::timeout(std::time::Duration::from_secs(20), watch.message())
            .await
            .expect("the escalation within 20 s")
            .unwrap()
            .expect("the stream goes on");
        if e.id == "C-1:escalation:-:3" {
            break e;
        }
    };
    assert_eq!(escalation.raised_at, at("2026-11-04T10:00:00+07:00"));

    let body = common::http_get(&node.metrics, "/metrics")
        .expect("the metrics endpoint answers")
        .1;
    let offset = metric(&body, "dunghan_clock_offset_seconds");
    assert!(offset != 0.0, "the simulated clock shows: {offset}");
    // Every timer-raised event so far (the warning, the apology and the escalations) has
    // its fire lag observed; the receipt's DEADLINE_COMPUTED is not a timer's.
    let fired = metric(&body, "dunghan_timer_fire_lag_seconds_count");
    assert!(fired >= 2.0, "{fired} observed in\n{body}");
}

#[test]
fn a_bad_clock_start_is_one_clear_line_with_status_2() {
    let out = dunghan()
        .args(["serve", "--clock-start", "2026-11-20 16:59"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`2026-11-20 16:59`") && stderr.contains("RFC 3339"),
        "{stderr}"
    );
    let out = dunghan()
        .arg("serve")
        .env("DUNGHAN__CLOCK__START", "friday")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("DUNGHAN__CLOCK__START") && stderr.contains("`friday`"),
        "{stderr}"
    );
}

/// Thousands of dossiers due at one moment: the watcher receives the burst, the node is
/// killed (`kill -9`) as soon as the first event arrives, before the burst is all written;
/// after a restart every dossier's escalation is stored exactly once, and the restart's
/// replay itself stored some of them (so the kill did land before their write).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_killed_before_its_write_is_stored_once_after_a_restart() {
    let (regenerated, _) = burst_stopped_at_its_first_event("burst-kill", false).await;
    assert!(
        regenerated > 0,
        "the replay stored escalations the kill left unwritten"
    );
}

/// The same burst stopped with SIGTERM at its first event: the watch stream ends, and
/// the node writes what it sent before it exits, so none of the escalations the watcher
/// received is left for the restart to store (those not fired yet fire after it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_stopped_with_sigterm_writes_what_it_sent_before_the_exit() {
    const N: u64 = BURST as u64;
    let (regenerated, received) = burst_stopped_at_its_first_event("burst-term", true).await;
    assert!(received >= 1);
    assert!(
        regenerated <= N - received,
        "{received} escalations reached the watcher, {regenerated} were stored after the restart"
    );
}

/// Dossiers due at the same moment in the burst tests.
const BURST: usize = 8_000;

/// A JSON-lines file of `n` company registrations received Mon 2/11/2026 10:00, due Wed
/// 4/11 10:00 (ids `B-00000`…).
fn receipts(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let file = dir.join("receipts.jsonl");
    let lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"eventId":"r{i}","dossierId":"B-{i:05}","occurredAt":"2026-11-02T10:00:00+07:00","received":{{"procedureCode":"2.001610","agencyId":"so-khdt"}}}}"#
            )
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    file
}

/// 2 000 dossiers due at 10:00 with the clock started 15 s before: the node fires them in
/// the 10 s before the moment (its counter says so), then a result for one of them comes
/// (published at about 09:59:52, ready at 09:59:50). At 10:00 the watcher receives every
/// other dossier's overdue escalation, raised at 10:00, and none of that one's, whose
/// timeline shows it finished on time instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowded_moment_is_prepared_and_a_result_before_it_withdraws_its_dossier() {
    use dunghan_proto::v1::dossier_service_client::DossierServiceClient;
    use dunghan_proto::v1::GetTimelineRequest;
    const N: usize = 2_000;
    let dir = common::fresh_dir("prepared");
    let file = receipts(&dir, N);
    let mut command = common::serve_command(&dir.join("data"));
    command
        .args(["--clock-start", "2026-11-04T09:59:45+07:00", "--ingest"])
        .arg(&file);
    let node = Node::spawn(command).0;
    let channel = node.channel().await;
    let mut watch = SlaServiceClient::new(channel.clone())
        .watch_sla_events(WatchSlaEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let counted = |state: &str| {
        let body = common::http_get(&node.metrics, "/metrics").unwrap().1;
        metric(
            &body,
            &format!("dunghan_timer_prepared_dossiers_total{{state=\"{state}\"}}"),
        )
    };
    let waited = std::time::Instant::now();
    while counted("prepared") < N as f64 {
        assert!(
            waited.elapsed().as_secs() < 30,
            "prepared within 30 s: {}",
            counted("prepared")
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let ready = DossierEvent {
        event_id: "ready7".into(),
        dossier_id: "B-00007".into(),
        occurred_at: at("2026-11-04T09:59:50+07:00"),
        payload: Some(Payload::ResultReady(Default::default())),
    };
    let reply = IngestServiceClient::new(channel.clone())
        .publish(PublishRequest {
            events: vec![ready],
        })
        .await
        .unwrap()
        .into_inner();
    let moment = at("2026-11-04T10:00:00+07:00").unwrap().seconds;
    assert!(
        reply.results[0]
            .raised
            .iter()
            .all(|r| r.raised_at.as_ref().unwrap().seconds < moment),
        "published before the moment: {reply:?}"
    );
    assert_eq!(counted("withdrawn"), 1.0);
    let mut escalated = std::collections::BTreeSet::new();
    while escalated.len() < N - 1 {
        let e = tokio::time::timeout(std::time::Duration::from_secs(30), watch.message())
            .await
            .expect("the moment's escalations within 30 s")
            .unwrap()
            .expect("the stream goes on");
        if e.id.ends_with(":escalation:-:3") {
            assert_eq!(e.raised_at, at("2026-11-04T10:00:00+07:00"), "{e:?}");
            assert_ne!(
                e.dossier_id, "B-00007",
                "the withdrawn dossier's firing went out"
            );
            escalated.insert(e.dossier_id);
        }
    }
    let raised = DossierServiceClient::new(channel)
        .get_timeline(GetTimelineRequest {
            dossier_id: "B-00007".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .raised;
    assert!(
        raised.iter().all(|r| !r.id.contains(":escalation:-:3")),
        "{raised:?}"
    );
    let outcome = raised
        .iter()
        .find(|r| r.kind() == dunghan_proto::v1::SlaEventKind::Outcome)
        .expect("an outcome");
    assert_ne!(
        outcome.outcome(),
        dunghan_proto::v1::Outcome::Late,
        "{outcome:?}"
    );
    drop(node);
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs a burst of 8 000 escalations due at one moment, stops the node at the first event
/// the watcher receives (SIGTERM or kill -9), restarts it, checks that each dossier has
/// its escalation exactly once. Returns how many escalations the restart stored itself
/// (its raised-events counter starts at zero) and how many the watcher received.
async fn burst_stopped_at_its_first_event(name: &str, sigterm: bool) -> (u64, u64) {
    use dunghan_proto::v1::dossier_service_client::DossierServiceClient;
    use dunghan_proto::v1::GetTimelineRequest;
    const N: usize = BURST;
    let dir = common::fresh_dir(name);
    let file = receipts(&dir, N);
    let data = dir.join("data");
    let mut first = common::serve_command(&data);
    first
        .args(["--clock-start", "2026-11-04T09:59:30+07:00", "--ingest"])
        .arg(&file);
    let mut node = Node::spawn(first).0;
    let mut watch = SlaServiceClient::new(node.channel().await)
        .watch_sla_events(WatchSlaEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let e = tokio::time::timeout(std::time::Duration::from_secs(60), watch.message())
        .await
        .expect("the burst within 60 s")
        .unwrap()
        .expect("the stream goes on");
    let escalation = |e: &dunghan_proto::v1::SlaEvent| e.id.ends_with(":escalation:-:3");
    let mut received = u64::from(escalation(&e));
    if sigterm {
        let pid = node.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        // The stream ends at the stop (a watcher must not hold the shutdown open).
        loop {
            match tokio::time::timeout(std::time::Duration::from_secs(30), watch.message()).await {
                Ok(Ok(Some(e))) => received += u64::from(escalation(&e)),
                Ok(_) => break,
                Err(_) => panic!("the watch stream did not end within 30 s of SIGTERM"),
            }
        }
        let exit = node.child.wait().unwrap();
        assert!(exit.success(), "{exit:?}");
    }
    drop(node); // kill -9 (after SIGTERM: already gone)
    assert_eq!(e.raised_at, at("2026-11-04T10:00:00+07:00"), "{e:?}");

    let mut again = common::serve_command(&data);
    again.args(["--clock-start", "2026-11-04T10:00:10+07:00"]);
    let node = Node::spawn(again).0;
    let body = common::http_get(&node.metrics, "/metrics").unwrap().1;
    let series = "dunghan_raised_events_total{kind=\"escalation\",level=\"3\"} ";
    let regenerated = body
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .map_or(0, |v| v.parse().unwrap());
    let mut dossiers = DossierServiceClient::new(node.channel().await);
    for i in 0..N {
        let dossier_id = format!("B-{i:05}");
        let raised = dossiers
            .get_timeline(GetTimelineRequest {
                dossier_id: dossier_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .raised;
        let escalations = raised
            .iter()
            .filter(|r| r.id == format!("{dossier_id}:escalation:-:3"))
            .count();
        assert_eq!(escalations, 1, "{dossier_id}: {raised:?}");
        let mut ids: Vec<&str> = raised.iter().map(|r| r.id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), raised.len(), "{dossier_id}: no id twice");
    }
    drop(node);
    std::fs::remove_dir_all(&dir).ok();
    (regenerated, received)
}
