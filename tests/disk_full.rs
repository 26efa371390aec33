//! Embedded mode on a full disk: `dunghan serve` with its data directory on a small tmpfs,
//! published to over gRPC until the disk fills. The full disk is a clear
//! `RESOURCE_EXHAUSTED` (no panic, no hang), reads and health keep answering, nothing
//! acknowledged is lost, publishing works again once space is freed, and after a `kill -9`
//! and restart the store holds exactly the acknowledged events and raises what a
//! `dunghan replay` of them raises. Needs root (or CAP_SYS_ADMIN) to mount the tmpfs.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dunghan_proto::v1::dossier_service_client::DossierServiceClient;
use dunghan_proto::v1::ingest_service_client::IngestServiceClient;
use dunghan_proto::v1::{DossierEvent, GetTimelineRequest, PublishRequest, PublishStatus};
use serde_json::Value;

/// A tmpfs mounted on a directory; unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `1m`) on `dir`; fails the test, saying why, when the
    /// mount is refused (this test needs root or CAP_SYS_ADMIN).
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("the mount program runs");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs on {} (the disk-full test needs root or CAP_SYS_ADMIN): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount of {} failed", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Dossier `i`'s events (2025, scenario catalog): received, a supplement request with a
/// long reason (so the disk fills after a few batches), result ready for two in three.
fn dossier(i: usize) -> Vec<DossierEvent> {
    use dunghan_proto::v1::dossier_event::Payload;
    let d = format!("F-{i:05}");
    let day = 3 + (i % 20);
    let at = |h: u32| format!("2025-03-{day:02}T{h:02}:00:00+07:00");
    let mut events = vec![
        common::event(
            &format!("{d}-r"),
            &d,
            &at(8),
            Payload::Received(dunghan_proto::v1::DossierReceived {
                procedure_code: ["P1", "P3", "P5R"][i % 3].into(),
                agency_id: "so-a".into(),
                channel: 1 + (i % 2) as i32,
                ..Default::default()
            }),
        ),
        common::event(
            &format!("{d}-s"),
            &d,
            &at(9),
            Payload::SupplementRequested(dunghan_proto::v1::SupplementRequested {
                reason: format!("thiếu giấy tờ {i}: {}", "bản sao chứng thực. ".repeat(40)),
            }),
        ),
    ];
    if !i.is_multiple_of(3) {
        events.push(common::event(
            &format!("{d}-ready"),
            &d,
            &at(10),
            Payload::ResultReady(Default::default()),
        ));
    }
    events
}

async fn channel(node: &common::Node) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://{}", node.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// One `Publish`, which must answer within 30 s (a full disk must not hang it).
async fn publish(
    c: &tonic::transport::Channel,
    events: Vec<DossierEvent>,
) -> Result<Vec<PublishStatus>, tonic::Status> {
    let mut client = IngestServiceClient::new(c.clone());
    let call = client.publish(PublishRequest { events });
    let reply = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("Publish answers within 30 s on a full disk")?;
    Ok(reply
        .into_inner()
        .results
        .iter()
        .map(|r| r.status())
        .collect())
}

/// `dunghan replay` of `events` with the present at `now`: the raised events by id.
fn replay(dir: &Path, events: &[DossierEvent], now: &str) -> BTreeMap<String, Value> {
    let file = dir.join("acknowledged.jsonl");
    let text: String = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    std::fs::write(&file, text).unwrap();
    let catalog = common::repo().join("tests/scenarios/catalog.toml");
    common::replay_file(&file, &catalog, now)
        .into_iter()
        .map(|v| (v["id"].as_str().unwrap().to_owned(), v))
        .collect()
}

#[test]
fn a_full_data_directory_refuses_clearly_loses_nothing_and_recovers() {
    let dir = common::fresh_dir("disk-full");
    let disk = Tmpfs::mount(&dir.join("data"), "1m");
    let mut node = common::Node::start(&dir);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut acknowledged: Vec<DossierEvent> = Vec::new();
    let mut next = 0;
    let batch =
        |from: usize| -> Vec<DossierEvent> { (from..from + 20).flat_map(dossier).collect() };
    let failed = runtime.block_on(async {
        let c = channel(&node).await;
        // Publish until the disk is full: every batch before is acknowledged in full.
        let (failed, status) = loop {
            assert!(next < 20_000, "the 1 MiB data directory never filled");
            let events = batch(next);
            next += 20;
            match publish(&c, events.clone()).await {
                Ok(statuses) => {
                    assert!(statuses.iter().all(|s| *s == PublishStatus::Accepted));
                    acknowledged.extend(events);
                }
                Err(status) => break (events, status),
            }
        };
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        assert!(
            status.message().contains("data directory is full")
                && status.message().contains("publish it again"),
            "a specific message: {}",
            status.message()
        );
        assert!(
            !acknowledged.is_empty(),
            "something fitted before the disk filled"
        );
        // Still full: refused again, quickly; health, readiness and reads keep answering.
        let again = publish(&c, batch(next)).await.unwrap_err();
        assert_eq!(again.code(), tonic::Code::ResourceExhausted);
        assert_eq!(common::http_get(&node.metrics, "/healthz").unwrap().0, 200);
        let first = acknowledged[0].dossier_id.clone();
        let timeline = DossierServiceClient::new(c.clone())
            .get_timeline(GetTimelineRequest { dossier_id: first })
            .await
            .expect("reads work on a full disk")
            .into_inner();
        let sent = acknowledged
            .iter()
            .filter(|e| e.dossier_id == timeline.dossier_id);
        assert_eq!(timeline.events.len(), sent.count());
        // Space freed: the refused batch goes in (ACCEPTED, or DUPLICATE when the node
        // kept it from the failed write: stored now either way), and so do new ones.
        disk.resize("64m");
        let statuses = publish(&c, failed.clone()).await.expect("space again");
        assert!(
            statuses
                .iter()
                .all(|s| matches!(s, PublishStatus::Accepted | PublishStatus::Duplicate)),
            "{statuses:?}"
        );
        acknowledged.extend(failed.iter().cloned());
        let fresh = batch(next + 20);
        let statuses = publish(&c, fresh.clone()).await.unwrap();
        assert!(statuses.iter().all(|s| *s == PublishStatus::Accepted));
        acknowledged.extend(fresh);
        failed
    });
    // A crash, then a restart on the same directory: the acknowledged events, exactly.
    let _ = node.child.kill();
    let _ = node.child.wait();
    node = common::Node::start(&dir);
    let now = chrono::Utc::now().to_rfc3339();
    let expected = replay(&dir, &acknowledged, &now);
    let mut by_dossier: BTreeMap<&str, Vec<&DossierEvent>> = BTreeMap::new();
    for e in &acknowledged {
        by_dossier.entry(&e.dossier_id).or_default().push(e);
    }
    let refused_id = &failed[0].dossier_id;
    let stored = runtime.block_on(async {
        let c = channel(&node).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut raised: BTreeMap<String, Value> = BTreeMap::new();
            for (d, events) in &by_dossier {
                let t = DossierServiceClient::new(c.clone())
                    .get_timeline(GetTimelineRequest {
                        dossier_id: d.to_string(),
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{d} lost: {e}"))
                    .into_inner();
                let stored: Vec<&DossierEvent> = t.events.iter().collect();
                assert_eq!(&stored, events, "{d}: the acknowledged events, once each");
                for r in t.raised {
                    raised.insert(r.id.clone(), serde_json::to_value(&r).unwrap());
                }
            }
            if raised.len() >= expected.len() || Instant::now() > deadline {
                break raised;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    assert!(by_dossier.contains_key(refused_id.as_str()));
    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !stored.contains_key(*k))
        .collect();
    let extra: Vec<&String> = stored
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "{} raised events missing: {missing:?}",
        missing.len()
    );
    assert!(
        extra.is_empty(),
        "{} raised events extra: {extra:?}",
        extra.len()
    );
    for (id, e) in &expected {
        assert_eq!(&stored[id], e, "raised event {id}");
    }
    drop(node);
    drop(disk);
}
