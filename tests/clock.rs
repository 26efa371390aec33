//! The service's clock as a user sets it for a drill or a bench: `dunghan serve
//! --clock-start` (or `[clock] start`, `DUNGHAN__CLOCK__START`) starts it at an instant
//! just before a hand-checked deadline, the watcher receives the escalation at the rule's
//! moment, and the fire-lag histogram counts it; a bad value is a clear error.

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
