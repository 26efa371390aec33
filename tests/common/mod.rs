//! Helpers shared by the integration tests: a real `dunghan serve` on loopback ports,
//! event builders, and a tiny blocking HTTP client (Kafka helpers in `kafka.rs`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use dunghan_proto::pbjson_types::Timestamp;
use dunghan_proto::v1::dossier_event::Payload;
use dunghan_proto::v1::DossierEvent;

/// The repository's root directory.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("services/ has a parent")
        .to_path_buf()
}

/// A fresh, empty directory for one test.
pub(crate) fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dunghan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `dunghan serve`; killed when dropped.
pub(crate) struct Node {
    pub(crate) child: Child,
    pub(crate) grpc: String,
    pub(crate) metrics: String,
}

/// `dunghan serve` on free loopback ports with its data under `data`, and no catalog,
/// calendar or clock from the environment; add arguments, then [`Node::spawn`] it.
pub(crate) fn serve_command(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dunghan"));
    c.args(["serve", "--grpc-listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env_remove("DUNGHAN__CATALOG__FILE")
        .env_remove("DUNGHAN__CALENDAR__FILE")
        .env_remove("DUNGHAN__CLOCK__START");
    c
}

impl Node {
    /// Starts a node on free loopback ports with the scenario catalog
    /// (tests/scenarios/catalog.toml) and a data directory under `dir`.
    pub(crate) fn start(dir: &Path) -> Node {
        let mut c = serve_command(&dir.join("data"));
        c.arg("--catalog")
            .arg(repo().join("tests/scenarios/catalog.toml"));
        Node::spawn(c).0
    }

    /// Runs `command` (a `dunghan serve`, see [`serve_command`]) and waits for its
    /// listener lines; also returns the lines it printed before them.
    pub(crate) fn spawn(mut command: Command) -> (Node, Vec<String>) {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the dunghan binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = || lines.next().expect("a listener line").unwrap();
        let mut before = Vec::new();
        let grpc = loop {
            let line = next();
            match line.strip_prefix("gRPC listening on ") {
                Some(addr) => break addr.to_owned(),
                None => before.push(line),
            }
        };
        let metrics = next()
            .strip_prefix("metrics on http://")
            .and_then(|m| m.strip_suffix("/metrics"))
            .expect("the metrics line after the gRPC line")
            .to_owned();
        let node = Node {
            child,
            grpc,
            metrics,
        };
        (node, before)
    }

    /// A gRPC channel to the node over TCP.
    pub(crate) async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .expect("connects over TCP")
    }

    /// Publishes events; every one must be accepted.
    pub(crate) async fn publish(&self, events: Vec<DossierEvent>) {
        use dunghan_proto::v1::ingest_service_client::IngestServiceClient;
        use dunghan_proto::v1::{PublishRequest, PublishStatus};
        let reply = IngestServiceClient::new(self.channel().await)
            .publish(PublishRequest { events })
            .await
            .expect("publish")
            .into_inner();
        for r in reply.results {
            assert_eq!(r.status(), PublishStatus::Accepted, "{r:?}");
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An RFC 3339 instant as a protobuf timestamp.
pub(crate) fn at(text: &str) -> Option<Timestamp> {
    let t = chrono::DateTime::parse_from_rfc3339(text).unwrap();
    Some(Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    })
}

/// One dossier event.
pub(crate) fn event(id: &str, dossier: &str, at_text: &str, payload: Payload) -> DossierEvent {
    DossierEvent {
        event_id: id.into(),
        dossier_id: dossier.into(),
        occurred_at: at(at_text),
        payload: Some(payload),
    }
}

/// A dossier of `procedure` received by agency so-a on Mon 5/10/2026 at 10:00.
pub(crate) fn received(dossier: &str, procedure: &str, channel: i32) -> DossierEvent {
    event(
        &format!("{dossier}-r"),
        dossier,
        "2026-10-05T10:00:00+07:00",
        Payload::Received(dunghan_proto::v1::DossierReceived {
            procedure_code: procedure.into(),
            agency_id: "so-a".into(),
            channel,
            ..Default::default()
        }),
    )
}

/// The dossier's result ready at `at_text`.
pub(crate) fn ready(dossier: &str, at_text: &str) -> DossierEvent {
    event(
        &format!("{dossier}-ready"),
        dossier,
        at_text,
        Payload::ResultReady(Default::default()),
    )
}

/// A free loopback port (bound, then released for the child process to take).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Percent-encodes a query-string value.
pub(crate) fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A blocking HTTP/1.0 GET: (status code, body), or None when nothing listens.
pub(crate) fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// `dunghan replay` of a JSON-lines file of events with the present and the clock at
/// `now`: the raised events as JSON values.
pub(crate) fn replay_file(file: &Path, catalog: &Path, now: &str) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_dunghan"))
        .args([
            "replay",
            "--quiet",
            "--now",
            now,
            "--until",
            now,
            "--catalog",
        ])
        .arg(catalog)
        .arg(file)
        .env_remove("DUNGHAN__CALENDAR__FILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
