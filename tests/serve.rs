//! `dunghan serve` as clients see it: the real binary on loopback ports, a tonic client over
//! TCP for every RPC, the standard health and reflection services, `/metrics` over HTTP,
//! and a clean exit on SIGTERM.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use dunghan_proto::pbjson_types::Timestamp;
use dunghan_proto::v1::deadline_service_client::DeadlineServiceClient;
use dunghan_proto::v1::duration::Amount;
use dunghan_proto::v1::{ComputeDeadlineRequest, Duration};
use tonic::Code;

mod common;

use common::{at, Node};

/// A fresh data directory for one test.
fn data_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dunghan-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn start(data: &std::path::Path) -> Node {
    start_with(data, &[]).0
}

/// Starts a node with extra arguments; also returns the lines printed before the listeners.
fn start_with(data: &std::path::Path, extra: &[&str]) -> (Node, Vec<String>) {
    let mut command = common::serve_command(data);
    command.args(extra);
    Node::spawn(command)
}

fn scrape(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
        "{response}"
    );
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_health_reflection_metrics_and_shutdown() {
    let data = data_dir("deadlines");
    let mut node = start(&data);
    let channel = node.channel().await;
    let mut client = DeadlineServiceClient::new(channel.clone());

    // Worked example 1: 3 working days across Tết.
    let reply = client
        .compute_deadline(ComputeDeadlineRequest {
            time_allowed: Some(Duration {
                amount: Some(Amount::WorkingDays(3.0)),
            }),
            received_at: at("2026-02-13T16:20:00+07:00"),
            ..Default::default()
        })
        .await
        .expect("ok")
        .into_inner();
    assert_eq!(reply.deadline, at("2026-02-25T16:20:00+07:00"));
    let tet = reply
        .skipped
        .iter()
        .find(|s| s.date == "2026-02-17")
        .expect("Tết skipped");
    assert_eq!(
        (tet.reason.as_str(), tet.name.as_str()),
        ("holiday", "Tết Nguyên đán")
    );

    // A catalog procedure (the example catalog ships with serve).
    let reply = client
        .compute_deadline(ComputeDeadlineRequest {
            procedure_code: "2.000488".into(),
            received_at: at("2026-10-05T10:00:00+07:00"),
            ..Default::default()
        })
        .await
        .expect("ok")
        .into_inner();
    assert_eq!(reply.deadline, at("2026-10-12T10:00:00+07:00"));
    assert_eq!(reply.statutory_deadline, at("2026-11-02T10:00:00+07:00"));
    assert_eq!(reply.steps.len(), 2);
    assert_eq!(reply.steps[1].deadline, at("2026-10-09T15:30:00+07:00"));

    // Bad requests name the field; unknown procedures are NOT_FOUND.
    let bad = [
        (
            ComputeDeadlineRequest {
                procedure_code: "2.000488".into(),
                ..Default::default()
            },
            Code::InvalidArgument,
            "received_at",
        ),
        (
            ComputeDeadlineRequest {
                received_at: at("2026-10-05T10:00:00+07:00"),
                ..Default::default()
            },
            Code::InvalidArgument,
            "procedure_code",
        ),
        (
            ComputeDeadlineRequest {
                time_allowed: Some(Duration {
                    amount: Some(Amount::WorkingDays(-1.0)),
                }),
                received_at: at("2026-10-05T10:00:00+07:00"),
                ..Default::default()
            },
            Code::InvalidArgument,
            "time_allowed",
        ),
        (
            ComputeDeadlineRequest {
                procedure_code: "9.999".into(),
                received_at: at("2026-10-05T10:00:00+07:00"),
                ..Default::default()
            },
            Code::NotFound,
            "9.999",
        ),
    ];
    let bad_timestamp = ComputeDeadlineRequest {
        procedure_code: "2.000488".into(),
        received_at: Some(Timestamp {
            seconds: 1_759_633_200,
            nanos: 2_000_000_000,
        }),
        ..Default::default()
    };
    let bad = bad
        .into_iter()
        .chain([(bad_timestamp, Code::InvalidArgument, "received_at")]);
    for (request, code, names) in bad {
        let status = client.compute_deadline(request).await.expect_err("refused");
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(names), "{status:?}");
    }

    // Calendars: a year's special days, an instant, working time added.
    use dunghan_proto::v1::calendar_service_client::CalendarServiceClient;
    use dunghan_proto::v1::{AddWorkingTimeRequest, CheckInstantRequest, ListSpecialDaysRequest};
    let mut calendars = CalendarServiceClient::new(channel.clone());
    let year = calendars
        .list_special_days(ListSpecialDaysRequest {
            year: 2026,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let swapped = year
        .days
        .iter()
        .find(|d| d.date == "2026-01-10")
        .expect("swapped Saturday");
    assert!(swapped.working);
    assert_eq!(swapped.kind, "swapped-workday");
    assert!(year
        .days
        .iter()
        .any(|d| d.date == "2026-02-17" && !d.working));
    let check = calendars
        .check_instant(CheckInstantRequest {
            at: at("2026-02-18T09:00:00+07:00"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!check.working);
    assert_eq!(check.next_working, at("2026-02-23T07:30:00+07:00"));
    assert_eq!(check.day.expect("why").reason, "holiday");
    let added = calendars
        .add_working_time(AddWorkingTimeRequest {
            from: at("2026-02-13T16:20:00+07:00"),
            amount: Some(Duration {
                amount: Some(Amount::WorkingHours(24.0)),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(added.result, at("2026-02-25T16:20:00+07:00"));
    assert_eq!(added.skipped.len(), 9);
    let refused = calendars
        .list_special_days(ListSpecialDaysRequest {
            year: 1800,
            ..Default::default()
        })
        .await
        .expect_err("out of range");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().starts_with("year"), "{refused:?}");
    let refused = calendars
        .add_working_time(AddWorkingTimeRequest {
            from: at("2026-02-13T16:20:00+07:00"),
            ..Default::default()
        })
        .await
        .expect_err("no amount");
    assert!(refused.message().starts_with("amount"), "{refused:?}");

    let refused = calendars
        .check_instant(CheckInstantRequest::default())
        .await
        .expect_err("no instant");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().starts_with("at:"), "{refused:?}");
    use dunghan_proto::v1::sla_service_client::SlaServiceClient;
    use dunghan_proto::v1::GetRatesRequest;
    let mut sla = SlaServiceClient::new(channel.clone());
    let refused = sla
        .get_rates(GetRatesRequest {
            to: at("2026-11-01T00:00:00+07:00"),
            ..Default::default()
        })
        .await
        .expect_err("no from");
    assert!(refused.message().starts_with("from:"), "{refused:?}");
    let refused = sla
        .get_rates(GetRatesRequest {
            from: at("2026-11-01T00:00:00+07:00"),
            to: at("2026-10-01T00:00:00+07:00"),
            ..Default::default()
        })
        .await
        .expect_err("backwards period");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().starts_with("to:"), "{refused:?}");

    // Standard health service.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "dunghan.v1.DeadlineService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        serving.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    // Server reflection lists the services, as grpcurl would ask.
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream_once(request))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().expect("a response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("not a service list: {response:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"dunghan.v1.DeadlineService"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    for service in [
        "dunghan.v1.CalendarService",
        "dunghan.v1.IngestService",
        "dunghan.v1.DossierService",
        "dunghan.v1.SlaService",
    ] {
        assert!(names.contains(&service), "{service} in {names:?}");
    }

    // The counters moved: 2 ok, 3 invalid, 1 not found.
    let metrics = scrape(&node.metrics, "/metrics");
    for line in [
        "dunghan_deadline_requests_total{result=\"ok\"} 2",
        "dunghan_deadline_requests_total{result=\"invalid_argument\"} 4",
        "dunghan_deadline_requests_total{result=\"not_found\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(scrape(&node.metrics, "/healthz").ends_with("ok\n"));

    // SIGTERM: stop accepting, finish, exit 0.
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(node.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = node.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    std::fs::remove_dir_all(&data).ok();
}

/// A one-message request stream.
fn tokio_stream_once<T: Send + 'static>(item: T) -> impl tokio_stream::Stream<Item = T> {
    tokio_stream::once(item)
}

fn event(
    id: &str,
    dossier: &str,
    at_text: &str,
    payload: dunghan_proto::v1::dossier_event::Payload,
) -> dunghan_proto::v1::DossierEvent {
    dunghan_proto::v1::DossierEvent {
        event_id: id.into(),
        dossier_id: dossier.into(),
        occurred_at: at(at_text),
        payload: Some(payload),
    }
}

/// The festival licence (2.000488) received on Mon 5/10/2026 at 10:00 by so-vhtt.
fn received(id: &str, dossier: &str) -> dunghan_proto::v1::DossierEvent {
    event(
        id,
        dossier,
        "2026-10-05T10:00:00+07:00",
        dunghan_proto::v1::dossier_event::Payload::Received(dunghan_proto::v1::DossierReceived {
            procedure_code: "2.000488".into(),
            agency_id: "so-vhtt".into(),
            ..Default::default()
        }),
    )
}

/// Its examination step, handed to phong-quan-ly-van-hoa half an hour later.
fn examination(id: &str, dossier: &str) -> dunghan_proto::v1::DossierEvent {
    event(
        id,
        dossier,
        "2026-10-05T10:30:00+07:00",
        dunghan_proto::v1::dossier_event::Payload::StepStarted(dunghan_proto::v1::StepStarted {
            step_id: "tham-dinh".into(),
            department_id: "phong-quan-ly-van-hoa".into(),
            ..Default::default()
        }),
    )
}

async fn raised_ids(
    client: &mut dunghan_proto::v1::dossier_service_client::DossierServiceClient<
        tonic::transport::Channel,
    >,
    dossier: &str,
) -> (usize, Vec<String>) {
    let timeline = client
        .get_timeline(dunghan_proto::v1::GetTimelineRequest {
            dossier_id: dossier.into(),
        })
        .await
        .expect("timeline")
        .into_inner();
    let ids = timeline.raised.iter().map(|r| r.id.clone()).collect();
    (timeline.events.len(), ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_and_raised_events_survive_kill_9_exactly_once() {
    use dunghan_proto::v1::dossier_event::Payload;
    use dunghan_proto::v1::dossier_service_client::DossierServiceClient;
    use dunghan_proto::v1::ingest_service_client::IngestServiceClient;
    use dunghan_proto::v1::{PublishRequest, PublishStatus};

    let data = data_dir("restart");
    let node = start(&data);
    let channel = node.channel().await;
    let mut ingest = IngestServiceClient::new(channel.clone());
    let mut dossiers = DossierServiceClient::new(channel);
    let received = received("r1", "D-1");
    let step = examination("s1", "D-1");
    let reply = ingest
        .publish(PublishRequest {
            events: vec![received.clone(), step],
        })
        .await
        .unwrap()
        .into_inner();
    let statuses: Vec<i32> = reply.results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [PublishStatus::Accepted as i32; 2]);
    assert_eq!(reply.results[0].raised[0].id, "D-1:deadline_computed:-:0");

    // Every rule's moment is long past on the wall clock: the next tick fires them all.
    let mut before = Vec::new();
    for _ in 0..100 {
        before = raised_ids(&mut dossiers, "D-1").await.1;
        if before.iter().any(|id| id == "D-1:apology_overdue:-:0") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for id in [
        "D-1:escalation:tham-dinh:2",
        "D-1:apology_required:-:0",
        "D-1:apology_overdue:-:0",
        "D-1:escalation:-:3",
    ] {
        assert!(before.contains(&id.to_owned()), "{id} in {before:?}");
    }

    // The counters moved with the raised events (labels are agencies, fields, departments).
    let metrics = scrape(&node.metrics, "/metrics");
    for line in [
        "dunghan_dossiers_received_total{agency=\"so-vhtt\",channel=\"unspecified\",field=\"Văn hóa\"} 1",
        "dunghan_apologies_total{department=\"phong-quan-ly-van-hoa\",state=\"required\"} 1",
        "dunghan_apologies_total{department=\"phong-quan-ly-van-hoa\",state=\"overdue\"} 1",
        "dunghan_raised_events_total{kind=\"escalation\",level=\"3\"} 1",
        "dunghan_events_total{reason=\"\",status=\"accepted\"} 2",
        "dunghan_open_dossiers 1",
        "dunghan_open_dossiers_by_state{state=\"overdue\"} 1",
        "dunghan_open_dossiers_by_state{state=\"in_time\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }

    // kill -9, then restart on the same data directory.
    drop(node);
    let node = start(&data);
    let channel = node.channel().await;
    let mut ingest = IngestServiceClient::new(channel.clone());
    let mut dossiers = DossierServiceClient::new(channel);
    let (events, after) = raised_ids(&mut dossiers, "D-1").await;
    assert_eq!(events, 2, "both acknowledged events are there");
    assert_eq!(after, before, "the same raised events, each once");

    // Publishing again is idempotent; input for an unknown dossier is refused with a reason.
    let orphan = event(
        "x1",
        "D-404",
        "2026-10-05T11:00:00+07:00",
        Payload::ResultReady(Default::default()),
    );
    let reply = ingest
        .publish(PublishRequest {
            events: vec![received, orphan],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.results[0].status, PublishStatus::Duplicate as i32);
    assert_eq!(reply.results[1].status, PublishStatus::Rejected as i32);
    assert!(
        reply.results[1].reason.contains("unknown dossier"),
        "{:?}",
        reply.results[1]
    );
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(raised_ids(&mut dossiers, "D-1").await, (2, before));
    // Counters restart at zero and the replay counts nothing twice.
    let metrics = scrape(&node.metrics, "/metrics");
    for line in [
        "dunghan_events_total{reason=\"\",status=\"duplicate\"} 1",
        "dunghan_events_total{reason=\"unknown_dossier\",status=\"rejected\"} 1",
        "dunghan_open_dossiers 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(
        !metrics.contains("dunghan_dossiers_received_total{"),
        "{metrics}"
    );
    let missing = dossiers
        .get_timeline(dunghan_proto::v1::GetTimelineRequest {
            dossier_id: "nope".into(),
        })
        .await
        .expect_err("unknown dossier");
    assert_eq!(missing.code(), Code::NotFound);
    let too_many = ingest
        .publish(PublishRequest {
            events: vec![Default::default(); 1_001],
        })
        .await
        .expect_err("oversized batch");
    assert_eq!(too_many.code(), Code::InvalidArgument);
    assert!(too_many.message().contains("1001"), "{too_many:?}");
    drop(node);
    std::fs::remove_dir_all(&data).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingesting_a_file_at_start_is_idempotent() {
    use dunghan_proto::v1::dossier_service_client::DossierServiceClient;
    let data = data_dir("ingest");
    std::fs::create_dir_all(&data).unwrap();
    let scenarios = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios");
    let file = data.join("events.jsonl");
    let mut lines = std::fs::read_to_string(scenarios.join("ex3-supplement-pause.jsonl")).unwrap();
    lines.push_str("not an event\n");
    std::fs::write(&file, lines).unwrap();
    let catalog = scenarios.join("catalog.toml");
    let args = [
        "--ingest",
        file.to_str().unwrap(),
        "--catalog",
        catalog.to_str().unwrap(),
    ];

    let (node, printed) = start_with(&data, &args);
    assert_eq!(printed.len(), 1, "{printed:?}");
    assert!(
        printed[0].ends_with(": 4 accepted, 0 duplicates, 1 rejected"),
        "{printed:?}"
    );
    let channel = node.channel().await;
    let (events, raised) = raised_ids(&mut DossierServiceClient::new(channel), "D").await;
    assert_eq!(events, 4);
    for id in [
        "D:deadline_computed:-:0",
        "D:deadline_shifted:-:0:s2",
        "D:early_result:-:0",
        "D:outcome:-:0",
    ] {
        assert!(raised.contains(&id.to_owned()), "{id} in {raised:?}");
    }
    drop(node);

    // The same file again: everything is already there.
    let (node, printed) = start_with(&data, &args);
    assert!(
        printed[0].ends_with(": 0 accepted, 4 duplicates, 1 rejected"),
        "{printed:?}"
    );
    let channel = node.channel().await;
    assert_eq!(
        raised_ids(&mut DossierServiceClient::new(channel), "D").await,
        (4, raised)
    );
    drop(node);
    std::fs::remove_dir_all(&data).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_handlers_watch_raised_events_as_they_are_stored() {
    use dunghan_proto::v1::ingest_service_client::IngestServiceClient;
    use dunghan_proto::v1::sla_service_client::SlaServiceClient;
    use dunghan_proto::v1::{PublishRequest, WatchSlaEventsRequest};

    let data = data_dir("watch");
    let node = start(&data);
    let channel = node.channel().await;
    let mut sla = SlaServiceClient::new(channel.clone());
    let mut by_agency = sla
        .watch_sla_events(WatchSlaEventsRequest {
            agency_id: "so-vhtt".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut by_department = sla
        .watch_sla_events(WatchSlaEventsRequest {
            department_id: "phong-quan-ly-van-hoa".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let events = vec![received("r1", "W-1"), examination("s1", "W-1")];
    IngestServiceClient::new(channel)
        .publish(PublishRequest { events })
        .await
        .unwrap();

    // The agency's watcher sees the deadline first, then the timers as they fire.
    assert_eq!(
        next_event(&mut by_agency).await.id,
        "W-1:deadline_computed:-:0"
    );
    assert_eq!(
        next_event(&mut by_agency).await.id,
        "W-1:warning:tham-dinh:1"
    );
    // The department's watcher sees only events naming it (not the dossier's deadline).
    let first = next_event(&mut by_department).await;
    assert_eq!(first.id, "W-1:warning:tham-dinh:1");
    assert_eq!(first.department_id, "phong-quan-ly-van-hoa");
    assert_eq!(
        next_event(&mut by_department).await.id,
        "W-1:escalation:tham-dinh:1"
    );
    drop(node);
    std::fs::remove_dir_all(&data).ok();
}

/// `promtool check metrics` on a scraped response: names, types, units and help are clean.
fn promtool_check(response: &str) {
    let body = response.split_once("\r\n\r\n").map_or(response, |(_, b)| b);
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; ./tests/run.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The next event of a watch stream, within 10 seconds.
async fn next_event(
    stream: &mut tonic::Streaming<dunghan_proto::v1::SlaEvent>,
) -> dunghan_proto::v1::SlaEvent {
    tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
        .await
        .expect("an event within 10 s")
        .expect("a good stream")
        .expect("not the end")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_dossiers_are_listed_by_state_and_page() {
    use dunghan_proto::v1::dossier_event::Payload;
    use dunghan_proto::v1::dossier_service_client::DossierServiceClient;
    use dunghan_proto::v1::ingest_service_client::IngestServiceClient;
    use dunghan_proto::v1::{DossierState, ListOpenDossiersRequest, PublishRequest};

    let data = data_dir("open");
    let node = start(&data);
    let channel = node.channel().await;
    let events = vec![
        received("a1", "L-1"),
        examination("a2", "L-1"),
        event(
            "a3",
            "L-1",
            "2026-10-09T10:00:00+07:00",
            Payload::ApologyIssued(dunghan_proto::v1::ApologyIssued {
                department_id: "phong-quan-ly-van-hoa".into(),
                new_appointment: at("2026-10-16T10:00:00+07:00"),
                reason: "chờ ý kiến liên ngành".into(),
            }),
        ),
        received("b1", "L-2"),
        event(
            "b2",
            "L-2",
            "2026-10-06T10:00:00+07:00",
            Payload::ResultReady(Default::default()),
        ),
        event(
            "b3",
            "L-2",
            "2026-10-06T11:00:00+07:00",
            Payload::CitizenRated(dunghan_proto::v1::CitizenRated {
                official_id: "cb-7".into(),
                department_id: "phong-quan-ly-van-hoa".into(),
                level: dunghan_proto::v1::SatisfactionLevel::Satisfied as i32,
            }),
        ),
    ];
    IngestServiceClient::new(channel.clone())
        .publish(PublishRequest { events })
        .await
        .unwrap();
    let mut dossiers = DossierServiceClient::new(channel.clone());
    let list = |request: ListOpenDossiersRequest| {
        let mut client = dossiers.clone();
        async move {
            client
                .list_open_dossiers(request)
                .await
                .unwrap()
                .into_inner()
        }
    };
    let ids = |r: &dunghan_proto::v1::ListOpenDossiersResponse| {
        r.dossiers
            .iter()
            .map(|d| d.dossier_id.clone())
            .collect::<Vec<_>>()
    };
    let all = list(ListOpenDossiersRequest {
        agency_id: "so-vhtt".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&all), ["L-1", "L-2"]);
    let overdue = list(ListOpenDossiersRequest {
        state: DossierState::Overdue as i32,
        ..Default::default()
    })
    .await;
    assert_eq!(
        ids(&overdue),
        ["L-1"],
        "its deadline (12/10/2026) is long past"
    );
    assert_eq!(overdue.dossiers[0].department_id, "phong-quan-ly-van-hoa");
    let ready = list(ListOpenDossiersRequest {
        state: DossierState::ResultReady as i32,
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&ready), ["L-2"]);
    let held = list(ListOpenDossiersRequest {
        department_id: "phong-quan-ly-van-hoa".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&held), ["L-1"]);
    let first = list(ListOpenDossiersRequest {
        page_size: 1,
        ..Default::default()
    })
    .await;
    assert_eq!(
        (ids(&first), first.next_page_token.as_str()),
        (vec!["L-1".to_owned()], "L-1")
    );
    let second = list(ListOpenDossiersRequest {
        page_size: 1,
        page_token: first.next_page_token.clone(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        (ids(&second), second.next_page_token.as_str()),
        (vec!["L-2".to_owned()], "")
    );
    // Rates for October 2026: L-2 early, L-1 overdue at the month's end.
    use dunghan_proto::v1::sla_service_client::SlaServiceClient;
    let rates = SlaServiceClient::new(channel)
        .get_rates(dunghan_proto::v1::GetRatesRequest {
            from: at("2026-10-01T00:00:00+07:00"),
            to: at("2026-11-01T00:00:00+07:00"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let total = rates.total.unwrap();
    assert_eq!(
        (total.received, total.early, total.on_time, total.late),
        (2, 1, 0, 0)
    );
    assert_eq!(total.on_time_rate, 1.0);
    assert_eq!(total.progress_score, 10.0);
    assert_eq!(rates.rows.len(), 1);
    assert_eq!(rates.rows[0].key, "so-vhtt");
    assert_eq!((total.ratings, total.satisfied), (1, 1));
    // L-2 took one day of the seven allowed: the 0.25 bucket.
    let metrics = scrape(&node.metrics, "/metrics");
    promtool_check(&metrics);
    for line in [
        "dunghan_processing_time_ratio_bucket{le=\"0.25\"} 1",
        "dunghan_processing_time_ratio_count 1",
        "dunghan_satisfaction_ratings_total{level=\"satisfied\"} 1",
        "dunghan_apologies_total{department=\"phong-quan-ly-van-hoa\",state=\"issued\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    let too_big = dossiers
        .list_open_dossiers(ListOpenDossiersRequest {
            page_size: 5_000,
            ..Default::default()
        })
        .await
        .expect_err("page too large");
    assert_eq!(too_big.code(), Code::InvalidArgument);
    drop(node);
    std::fs::remove_dir_all(&data).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_closure_moves_open_deadlines_and_survives_a_restart() {
    use dunghan_proto::v1::calendar_service_client::CalendarServiceClient;
    use dunghan_proto::v1::dossier_event::Payload;
    use dunghan_proto::v1::dossier_service_client::DossierServiceClient;
    use dunghan_proto::v1::ingest_service_client::IngestServiceClient;
    use dunghan_proto::v1::{
        AddClosureRequest, ComputeDeadlineRequest, DossierReceived, PublishRequest,
    };

    let data = data_dir("closure");
    std::fs::create_dir_all(&data).unwrap();
    let config = data.join("dunghan.toml");
    std::fs::write(&config, "[admin]\ntoken = \"s3cret\"\n").unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let stamp = |t: i64| {
        Some(Timestamp {
            seconds: t,
            nanos: 0,
        })
    };
    let (node, _) = start_with(&data, &args);
    let channel = node.channel().await;
    let received = dunghan_proto::v1::DossierEvent {
        event_id: "c1".into(),
        dossier_id: "C-1".into(),
        occurred_at: stamp(now - 60),
        payload: Some(Payload::Received(DossierReceived {
            procedure_code: "2.000488".into(),
            agency_id: "so-vhtt".into(),
            ..Default::default()
        })),
    };
    let reply = IngestServiceClient::new(channel.clone())
        .publish(PublishRequest {
            events: vec![received],
        })
        .await
        .unwrap()
        .into_inner();
    let before = reply.results[0].raised[0].deadline.unwrap().seconds;

    // A storm closes every office for the next three days.
    let (from, to) = (now, now + 3 * 86_400);
    let closure = AddClosureRequest {
        from: stamp(from),
        to: stamp(to),
        reason: "Bão số 13".into(),
        ..Default::default()
    };
    let mut calendars = CalendarServiceClient::new(channel.clone());
    let mut request = tonic::Request::new(closure.clone());
    request
        .metadata_mut()
        .insert("authorization", "Bearer wrong".parse().unwrap());
    assert_eq!(
        calendars.add_closure(request).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        calendars
            .add_closure(closure.clone())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let mut request = tonic::Request::new(closure);
    request
        .metadata_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    let shifted = calendars
        .add_closure(request)
        .await
        .unwrap()
        .into_inner()
        .shifted;
    assert_eq!(shifted.len(), 1, "{shifted:?}");
    assert_eq!(shifted[0].id, "C-1:deadline_shifted:-:0:closure-1");
    let after = shifted[0].deadline.unwrap().seconds;
    assert!(
        after > before,
        "the deadline moved later: {before} → {after}"
    );

    // New deadlines skip the closure: one working day from now ends after it.
    let deadline_after_closure = |channel: tonic::transport::Channel| async move {
        DeadlineServiceClient::new(channel)
            .compute_deadline(ComputeDeadlineRequest {
                time_allowed: Some(Duration {
                    amount: Some(Amount::WorkingDays(1.0)),
                }),
                received_at: Some(Timestamp {
                    seconds: now,
                    nanos: 0,
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .deadline
            .unwrap()
            .seconds
    };
    assert!(deadline_after_closure(channel.clone()).await > to);

    // A year's schedule (admin): the first weekday after the closure becomes a day off.
    use chrono::{Datelike, Weekday};
    use dunghan_proto::v1::{CheckInstantRequest, SetYearScheduleRequest};
    let vn = chrono::FixedOffset::east_opt(7 * 3600).unwrap();
    let mut day = chrono::DateTime::from_timestamp(to + 86_400, 0)
        .unwrap()
        .with_timezone(&vn)
        .date_naive();
    while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        day = day.succ_opt().unwrap();
    }
    let schedule = format!(
        "year = {}\nsource = \"test\"\n[[day]]\ndate = {day}\nkind = \"day-off\"\nname_vi = \"Nghỉ thử\"\nname_en = \"Test day off\"\n",
        day.year()
    );
    let nine = day
        .and_hms_opt(9, 0, 0)
        .unwrap()
        .and_local_timezone(vn)
        .unwrap()
        .timestamp();
    let is_off = |channel: tonic::transport::Channel| async move {
        let check = CalendarServiceClient::new(channel)
            .check_instant(CheckInstantRequest {
                at: Some(Timestamp {
                    seconds: nine,
                    nanos: 0,
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        !check.working
            && check
                .day
                .is_some_and(|d| d.reason == "day-off" && d.name == "Nghỉ thử")
    };
    assert!(!is_off(channel.clone()).await);
    let unauthorised = calendars
        .set_year_schedule(SetYearScheduleRequest {
            toml: schedule.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(unauthorised.code(), Code::Unauthenticated);
    let mut request = tonic::Request::new(SetYearScheduleRequest {
        toml: "year = 1".into(),
    });
    request
        .metadata_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    let bad = calendars.set_year_schedule(request).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("toml:"), "{bad:?}");
    let mut request = tonic::Request::new(SetYearScheduleRequest { toml: schedule });
    request
        .metadata_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    calendars.set_year_schedule(request).await.unwrap();
    assert!(is_off(channel.clone()).await);

    // After a crash the closure and the schedule are still there, nothing raised twice.
    drop(node);
    let (node, _) = start_with(&data, &args);
    let channel = node.channel().await;
    assert!(deadline_after_closure(channel.clone()).await > to);
    assert!(is_off(channel.clone()).await);
    let (_, ids) = raised_ids(&mut DossierServiceClient::new(channel), "C-1").await;
    let shifts: Vec<&String> = ids
        .iter()
        .filter(|id| id.contains("deadline_shifted"))
        .collect();
    assert!(
        shifts.contains(&&"C-1:deadline_shifted:-:0:closure-1".to_owned()),
        "{shifts:?}"
    );
    let mut unique = shifts.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        shifts.len(),
        "no shift stored twice: {shifts:?}"
    );
    drop(node);
    std::fs::remove_dir_all(&data).ok();
}

#[test]
fn a_librdkafka_property_from_the_environment_reaches_the_clients() {
    // `DUNGHAN__KAFKA__PROPERTIES__QUEUED_MIN_MESSAGES` is `queued.min.messages`: a bad
    // value stops Kafka mode at start with librdkafka's own complaint about that property.
    let data = data_dir("kafka-property");
    let mut command = common::serve_command(&data);
    command
        .env("DUNGHAN__KAFKA__BROKERS", "127.0.0.1:1")
        .env("DUNGHAN__KAFKA__PROPERTIES__QUEUED_MIN_MESSAGES", "many")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().ok();
            panic!("serve did not stop on a bad property");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{status:?}");
    assert!(
        stderr.contains("\"queued.min.messages\"") && stderr.contains("many"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&data).ok();
}
