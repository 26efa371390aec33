//! `dunghan notify` as an alert handler sees it: a real `dunghan serve`, the notifier
//! watching it over gRPC, and a webhook in the test that refuses the first attempts of
//! every event (and every attempt for one dossier). Checks delivery after retries, the
//! routing and the apology letter in the payloads, the dead-letter file after N failures,
//! that no event is delivered twice (also across a restart and a replayed file), and a
//! redrive of the dead letters.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{event, fresh_dir, received, repo, Node};
use dunghan_proto::v1::dossier_event::Payload;
use dunghan_proto::v1::SlaEvent;

/// What the webhook saw.
#[derive(Default)]
struct Hook {
    /// Attempts per event id.
    attempts: BTreeMap<String, u32>,
    /// Accepted payloads, in order.
    accepted: Vec<serde_json::Value>,
    /// Refuse (503) the first attempts of each event.
    fail_first: u32,
    /// Refuse every attempt for events of dossiers with this prefix.
    always_fail: Option<String>,
}

type Shared = Arc<Mutex<Hook>>;

async fn hook(
    axum::extract::State(hook): axum::extract::State<Shared>,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, &'static str) {
    let payload: serde_json::Value = serde_json::from_slice(&body).expect("a JSON payload");
    let id = payload["id"].as_str().expect("an id").to_owned();
    let mut hook = hook.lock().unwrap();
    let attempts = hook.attempts.entry(id.clone()).or_default();
    *attempts += 1;
    let attempts = *attempts;
    let refused = hook
        .always_fail
        .as_ref()
        .is_some_and(|prefix| id.starts_with(prefix.as_str()));
    if refused || attempts <= hook.fail_first {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "try later");
    }
    hook.accepted.push(payload);
    (axum::http::StatusCode::OK, "ok")
}

/// Serves the webhook on a free port; returns its URL.
async fn serve_hook(shared: Shared) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(shared);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

const DIRECTORY: &str = r#"
[centre]
name = "Trung tâm Phục vụ hành chính công tỉnh"
director = { name = "Giám đốc Trung tâm", title = "Giám đốc", email = "gd@example.invalid" }
desk = { name = "Bộ phận Một cửa", email = "motcua@example.invalid" }

[[agency]]
id = "so-a"
name = "Sở Thử nghiệm"
leaders = [{ name = "Phó Giám đốc Sở", title = "Phó Giám đốc", email = "pgd@example.invalid" }]

[[department]]
id = "phong-a"
agency = "so-a"
name = "Phòng A"
head = { name = "Trần Thị B", title = "Trưởng phòng", email = "tp-a@example.invalid" }
"#;

const KINDS: [&str; 6] = [
    "warning",
    "escalation",
    "apology_required",
    "apology_overdue",
    "early_result",
    "deadline_shifted",
];

/// A running notifier; killed if the test fails half-way.
struct Notify {
    child: Child,
}

impl Drop for Notify {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn notify_command(dir: &Path, webhook: &str) -> Command {
    let directory = dir.join("directory.toml");
    std::fs::write(&directory, DIRECTORY).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_dunghan"));
    command
        .arg("notify")
        .arg("--webhook-url")
        .arg(webhook)
        .arg("--directory")
        .arg(directory)
        .arg("--catalog")
        .arg(repo().join("tests/scenarios/catalog.toml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(["--max-attempts", "3", "--initial-backoff-ms", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// Starts `dunghan notify --grpc` and waits for its "watching" line.
fn start_notify(dir: &Path, webhook: &str, node: &Node) -> Notify {
    let mut child = notify_command(dir, webhook)
        .arg("--grpc")
        .arg(format!("http://{}", node.grpc))
        .spawn()
        .expect("the dunghan binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").unwrap();
    assert!(
        first.starts_with("watching raised events of http://"),
        "{first}"
    );
    // Keep reading (the summary comes at the end) without blocking the child.
    std::thread::spawn(move || lines.for_each(drop));
    Notify { child }
}

/// `dunghan notify --from-file FILE`: its summary line.
fn notify_file(dir: &Path, webhook: &str, file: &Path) -> String {
    let out = notify_command(dir, webhook)
        .arg("--from-file")
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The raised events of a dossier once its timers up to the wall clock have fired.
async fn raised(node: &Node, dossier: &str) -> Vec<SlaEvent> {
    use dunghan_proto::v1::dossier_service_client::DossierServiceClient;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", node.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = DossierServiceClient::new(channel);
    let done = format!("{dossier}:apology_overdue:-:0");
    let start = Instant::now();
    loop {
        let timeline = client
            .get_timeline(dunghan_proto::v1::GetTimelineRequest {
                dossier_id: dossier.into(),
            })
            .await
            .unwrap()
            .into_inner();
        if timeline.raised.iter().any(|r| r.id == done) {
            return timeline.raised;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{dossier}: timers did not fire"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ids a notifier delivers among `events` (the default kinds).
fn deliverable(events: &[SlaEvent]) -> BTreeSet<String> {
    events
        .iter()
        .filter(|e| {
            let kind = e
                .kind()
                .as_str_name()
                .trim_start_matches("SLA_EVENT_KIND_")
                .to_ascii_lowercase();
            KINDS.contains(&kind.as_str())
        })
        .map(|e| e.id.clone())
        .collect()
}

/// Polls `ok` every 100 ms for up to 30 s.
async fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no {what} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A dossier of P5 (two steps) at so-a whose first step goes to phong-a on 5/10/2026; every
/// rule up to the apology overdue is long due on the wall clock.
fn stepped(dossier: &str) -> Vec<dunghan_proto::v1::DossierEvent> {
    vec![
        received(dossier, "P5", dunghan_proto::v1::Channel::Online as i32),
        event(
            &format!("{dossier}-step"),
            dossier,
            "2026-10-05T10:30:00+07:00",
            Payload::StepStarted(dunghan_proto::v1::StepStarted {
                step_id: "xu-ly".into(),
                department_id: "phong-a".into(),
                ..Default::default()
            }),
        ),
    ]
}

fn dead_letters(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("state/dead-letter.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write_events(path: &PathBuf, events: &[SlaEvent]) {
    let lines: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifier_delivers_each_event_once_with_retries_letters_and_dead_letters() {
    let dir = fresh_dir("notify");
    let node = Node::start(&dir);
    let shared = Shared::default();
    shared.lock().unwrap().fail_first = 2;
    shared.lock().unwrap().always_fail = Some("DL:".into());
    let webhook = serve_hook(shared.clone()).await;
    let notify = start_notify(&dir, &webhook, &node);

    let mut events = stepped("A1");
    events.extend(stepped("DL"));
    node.publish(events).await;
    let a1 = raised(&node, "A1").await;
    let dl = raised(&node, "DL").await;
    let a1_ids = deliverable(&a1);
    let dl_ids = deliverable(&dl);
    assert!(a1_ids.len() >= 6, "{a1_ids:?}");

    // Every deliverable event of A1 arrives once, after two refused attempts each.
    wait_until("delivery of A1's events", || {
        let hook = shared.lock().unwrap();
        let accepted: BTreeSet<String> = hook
            .accepted
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect();
        accepted == a1_ids
    })
    .await;
    // DL's events fail every attempt: after 3 attempts each, one dead-letter record each.
    wait_until("DL's dead letters", || {
        dead_letters(&dir).len() == dl_ids.len()
    })
    .await;
    {
        let hook = shared.lock().unwrap();
        assert_eq!(hook.accepted.len(), a1_ids.len(), "no event accepted twice");
        for id in &a1_ids {
            assert_eq!(hook.attempts[id], 3, "{id}: two refusals, then delivered");
        }
        for id in &dl_ids {
            assert_eq!(hook.attempts[id], 3, "{id}: max_attempts = 3");
        }
        // Nothing that is not deliverable was sent (the computed deadline, for one).
        assert!(hook
            .attempts
            .keys()
            .all(|id| a1_ids.contains(id) || dl_ids.contains(id)));
    }
    let records = dead_letters(&dir);
    let dead: BTreeSet<String> = records
        .iter()
        .map(|r| r["event"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(dead, dl_ids);
    assert!(records
        .iter()
        .all(|r| r["attempts"] == 3 && r["error"].as_str().unwrap().contains("503")));

    // The payloads: routing by level and department, and the apology letter.
    let payloads: BTreeMap<String, serde_json::Value> = shared
        .lock()
        .unwrap()
        .accepted
        .iter()
        .map(|p| (p["id"].as_str().unwrap().to_owned(), p.clone()))
        .collect();
    let roles = |id: &str| -> Vec<String> {
        payloads[id]["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r["role"].as_str().unwrap(),
                    r["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(
        roles("A1:escalation:xu-ly:1"),
        ["department_head Trần Thị B"]
    );
    assert_eq!(
        roles("A1:escalation:xu-ly:2"),
        [
            "agency_leader Phó Giám đốc Sở",
            "department_head Trần Thị B"
        ]
    );
    assert_eq!(
        roles("A1:escalation:-:3"),
        [
            "centre_director Giám đốc Trung tâm",
            "agency_leader Phó Giám đốc Sở"
        ]
    );
    let apology = &payloads["A1:apology_required:-:0"];
    assert_eq!(apology["kind"], "apology_required");
    assert_eq!(apology["department_name"], "Phòng A");
    assert_eq!(
        roles("A1:apology_required:-:0"),
        ["department_head Trần Thị B", "desk Bộ phận Một cửa"]
    );
    let text = apology["letter"]["text"].as_str().unwrap();
    let html = apology["letter"]["html"].as_str().unwrap();
    let required = a1
        .iter()
        .find(|e| e.id == "A1:apology_required:-:0")
        .unwrap();
    let due = chrono::DateTime::from_timestamp(required.deadline.as_ref().unwrap().seconds, 0)
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).unwrap());
    for part in [
        "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ".to_owned(),
        "SỞ THỬ NGHIỆM".to_owned(),
        "hồ sơ số A1".to_owned(),
        "thủ tục Năm ngày, hai bước (mã P5)".to_owned(),
        format!("là {}", due.format("%H giờ %M ngày %d/%m/%Y")),
        "Phòng A xin lỗi Ông/Bà".to_owned(),
        "họ tên người nộp hồ sơ".to_owned(),
        "TRƯỞNG PHÒNG\n(Ký, ghi rõ họ tên)\nTrần Thị B".to_owned(),
    ] {
        assert!(text.contains(&part), "{part} in\n{text}");
    }
    assert!(
        html.contains("hồ sơ số A1") && html.contains("<h1"),
        "{html}"
    );
    assert!(apology.get("letter").is_some());
    assert!(payloads["A1:escalation:xu-ly:1"].get("letter").is_none());

    // Stop the notifier (SIGTERM), then feed it everything A1 raised from a file: all
    // already delivered, nothing goes out again.
    let status = Command::new("kill")
        .args(["-TERM", &notify.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut notify = notify;
    assert!(notify.child.wait().unwrap().success());
    let file = dir.join("a1.jsonl");
    write_events(&file, &a1);
    let skipped = a1.len() - a1_ids.len();
    assert_eq!(
        notify_file(&dir, &webhook, &file),
        format!(
            "0 delivered, {} already delivered, {skipped} skipped, 0 dead-lettered",
            a1_ids.len()
        )
    );

    // A restarted watcher delivers a new dossier's events, and still none of A1's again.
    let notify = start_notify(&dir, &webhook, &node);
    node.publish(stepped("A2")).await;
    let a2_ids = deliverable(&raised(&node, "A2").await);
    wait_until("delivery of A2's events", || {
        shared.lock().unwrap().accepted.len() == a1_ids.len() + a2_ids.len()
    })
    .await;
    drop(notify);
    {
        let hook = shared.lock().unwrap();
        let mut seen = BTreeSet::new();
        for p in &hook.accepted {
            assert!(
                seen.insert(p["id"].as_str().unwrap().to_owned()),
                "delivered twice: {}",
                p["id"]
            );
        }
    }

    // Redrive: the webhook accepts DL's events now; the dead-letter file is a valid input.
    shared.lock().unwrap().always_fail = None;
    let redrive = dir.join("redrive.jsonl");
    std::fs::copy(dir.join("state/dead-letter.jsonl"), &redrive).unwrap();
    assert_eq!(
        notify_file(&dir, &webhook, &redrive),
        format!(
            "{} delivered, 0 already delivered, 0 skipped, 0 dead-lettered",
            dl_ids.len()
        )
    );
    assert_eq!(
        shared.lock().unwrap().accepted.len(),
        a1_ids.len() + a2_ids.len() + dl_ids.len()
    );
    drop(node);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_configuration_exits_with_status_2_and_one_line() {
    let dir = fresh_dir("notify-bad");
    for (args, expected) in [
        (vec!["--grpc", "http://127.0.0.1:1"], "no webhook"),
        (
            vec![
                "--grpc",
                "http://127.0.0.1:1",
                "--webhook-url",
                "https://x.invalid/",
            ],
            "only http://",
        ),
        (
            vec![
                "--grpc",
                "http://127.0.0.1:1",
                "--webhook-url",
                "http://127.0.0.1:1/",
                "--directory",
                "/nonexistent.toml",
            ],
            "/nonexistent.toml",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_dunghan"))
            .arg("notify")
            .args(&args)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env_remove("DUNGHAN_NOTIFY_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{expected} in {stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
