//! Kafka mode against a real Kafka-protocol broker (tansu on a loopback port): input from a
//! separate producer, `dunghan serve` instances in one consumer group, `dunghan.sla-events`
//! read back with a separate read-committed consumer, and the result compared with
//! `dunghan replay` of the same events — through crashes (`kill -9`), rebalances, bad
//! input and a broker restart.

mod common;
#[path = "common/kafka.rs"]
mod kit;

use std::time::{Duration, Instant};

use kit::{
    assert_same, kafka_env, loadgen, replay, scratch, settled_output, Broker, Instance, PARTITIONS,
};
use prost::Message as _;
use serde_json::Value;

#[test]
fn same_output_as_replay_through_rebalances() {
    let dir = scratch("rebalance");
    let broker = Broker::start(&dir);
    let (catalog, events) = loadgen(&dir, 21, 500);
    let env = kafka_env(&broker, "rebalance", &catalog);
    let expected = replay(&dir, &events, &catalog);
    broker.create_topics("rebalance");
    broker.produce("rebalance.dossier-events", &events);
    let a = Instance::start(&dir, "a", &env, "127.0.0.1:0");
    std::thread::sleep(Duration::from_millis(800));
    let b = Instance::start(&dir, "b", &env, "127.0.0.1:0");
    let c = Instance::start(&dir, "c", &env, "127.0.0.1:0");
    std::thread::sleep(Duration::from_millis(1_500));
    a.stop();
    b.stop();
    let actual = settled_output(&broker, "rebalance.sla-events", expected.len(), &dir);
    assert_same(&actual, &expected);
    let (_, metrics) = c.http("/metrics");
    let owned: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("dunghan_kafka_owned_partitions "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        owned, PARTITIONS as f64,
        "the last instance owns every partition"
    );
    c.stop();
}

#[test]
fn bad_input_goes_to_the_dead_letter_topic_and_the_partition_keeps_flowing() {
    let dir = scratch("bad");
    let broker = Broker::start(&dir);
    let (catalog, good) = loadgen(&dir, 5, 1);
    let env = kafka_env(&broker, "bad", &catalog);
    let instance = Instance::start(&dir, "a", &env, "127.0.0.1:0");
    let valid = serde_json::from_slice::<dunghan_proto::v1::DossierEvent>(&good[0].1).unwrap();
    let truncated = valid.encode_to_vec()[..10].to_vec();
    let key = good[0].0.clone();
    let mut records: Vec<(String, Vec<u8>)> = vec![
        (key.clone(), b"\x00\xffgarbage\x13".to_vec()),
        (key.clone(), truncated),
        (key.clone(), br#"{"eventId": "x", "dossierId": }"#.to_vec()),
        (
            key.clone(),
            format!(r#"{{"eventId":"n","dossierId":"{key}","occurredAt":"2025-03-03T08:00:00","resultReady":{{}}}}"#).into_bytes(),
        ),
        (
            "NOPE".into(),
            br#"{"eventId":"u","dossierId":"NOPE","occurredAt":"2025-03-03T08:00:00+07:00","resultReady":{}}"#.to_vec(),
        ),
    ];
    records.extend(good.iter().cloned());
    broker.produce("bad.dossier-events", &records);
    let expected = replay(&dir, &good, &catalog);
    let deadline = Instant::now() + Duration::from_secs(120);
    let letters = loop {
        let letters = broker.read("bad.dead-letter");
        if letters.len() >= 5 || Instant::now() > deadline {
            break letters;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let mut reasons: Vec<&str> = letters
        .iter()
        .map(|l| l.headers.get("dunghan-reason").map_or("", String::as_str))
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "malformed",
            "malformed",
            "malformed",
            "malformed",
            "unknown_dossier"
        ],
        "logs in {}",
        dir.display()
    );
    for letter in &letters {
        assert!(!letter.headers["dunghan-message"].is_empty());
        assert!(
            letter.headers["dunghan-input"].contains('/'),
            "input position"
        );
        assert!(
            records
                .iter()
                .any(|(_, payload)| *payload == letter.payload),
            "the original bytes are kept"
        );
    }
    // The valid events behind the bad ones were processed: their raised events are all
    // there (plus a REJECTED event per bad record).
    let actual = settled_output(&broker, "bad.sla-events", expected.len() + 5, &dir);
    let (rejected, rest): (Vec<Value>, Vec<Value>) = actual
        .into_iter()
        .partition(|e| e["kind"] == "SLA_EVENT_KIND_REJECTED");
    assert_eq!(rejected.len(), 5);
    assert_same(&rest, &expected);
    let (_, metrics) = instance.http("/metrics");
    assert!(
        metrics.contains("dunghan_kafka_dead_letters_total{reason=\"malformed\"} 4"),
        "{metrics}"
    );
    instance.stop();
}

#[test]
fn queries_reach_the_owner_and_fan_out_across_instances() {
    use dunghan_proto::v1::dossier_service_client::DossierServiceClient;
    use dunghan_proto::v1::ingest_service_client::IngestServiceClient;
    use dunghan_proto::v1::sla_service_client::SlaServiceClient;
    use dunghan_proto::v1::{GetRatesRequest, GetTimelineRequest, ListOpenDossiersRequest};

    let dir = scratch("query");
    let broker = Broker::start(&dir);
    let (pa, pb) = (
        format!("127.0.0.1:{}", common::free_port()),
        format!("127.0.0.1:{}", common::free_port()),
    );
    let (catalog, generated) = loadgen(&dir, 3, 60);
    let mut env = kafka_env(&broker, "query", &catalog);
    env.push(("DUNGHAN__CLUSTER__PEERS".into(), format!("{pa},{pb}")));
    let a = Instance::start(&dir, "a", &env, &pa);
    let b = Instance::start(&dir, "b", &env, &pb);
    // One dossier in five is never handled after its receipt: still open (and overdue) now,
    // while the others ended in 2025 and are forgotten after the retention.
    let mut seen = std::collections::BTreeMap::new();
    let events: Vec<(String, Vec<u8>)> = generated
        .into_iter()
        .filter(|(d, _)| {
            let n = seen.len();
            let (order, count) = seen.entry(d.clone()).or_insert((n, 0));
            *count += 1;
            *order % 5 != 0 || *count == 1
        })
        .collect();
    // What a replay raises, to know when the instances are done; the checks below compare
    // with what the instances wrote (the Publish arrives late by event time).
    let replayed = replay(&dir, &events, &catalog);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let channel = |addr: String| async move {
            tonic::transport::Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .unwrap()
        };
        let (ca, cb) = (channel(a.grpc.clone()).await, channel(b.grpc.clone()).await);
        // Publish through one instance: queued to the input topic.
        let wire: Vec<dunghan_proto::v1::DossierEvent> = events
            .iter()
            .map(|(_, l)| serde_json::from_slice(l).unwrap())
            .collect();
        let results = IngestServiceClient::new(ca.clone())
            .publish(dunghan_proto::v1::PublishRequest { events: wire })
            .await
            .unwrap()
            .into_inner()
            .results;
        assert!(results
            .iter()
            .all(|r| r.status() == dunghan_proto::v1::PublishStatus::Queued));
        let expected = settled_output(&broker, "query.sla-events", replayed.len(), &dir);
        // Both instances answer every open dossier's timeline (one forwards to the other);
        // an ended dossier is forgotten after the retention (90 days), everywhere.
        // Ended: returned, withdrawn, refused or stopped (all in 2025).
        let ends = [
            "\"resultReturned\"",
            "\"withdrawn\"",
            "\"refused\"",
            "\"processingStopped\"",
        ];
        let finished: std::collections::BTreeSet<&str> = events
            .iter()
            .filter(|(_, line)| {
                let line = String::from_utf8_lossy(line);
                ends.iter().any(|end| line.contains(end))
            })
            .map(|(d, _)| d.as_str())
            .collect();
        let mut asked = 0;
        for (d, _) in &events {
            for c in [&ca, &cb] {
                let t = DossierServiceClient::new(c.clone())
                    .get_timeline(GetTimelineRequest {
                        dossier_id: d.clone(),
                    })
                    .await;
                if finished.contains(d.as_str()) {
                    assert_eq!(
                        t.unwrap_err().code(),
                        tonic::Code::NotFound,
                        "{d} forgotten"
                    );
                    continue;
                }
                let t = t.unwrap().into_inner();
                let want: Vec<&Value> = expected
                    .iter()
                    .filter(|e| e["dossierId"] == d.as_str())
                    .collect();
                assert_eq!(t.raised.len(), want.len(), "timeline of {d}");
                assert!(t.events.iter().all(|e| e.dossier_id == *d));
                asked += 1;
            }
        }
        assert!(asked >= 4, "some dossiers are still open");
        // Open dossiers: those not ended, from both instances' partitions.
        let open = events
            .iter()
            .map(|(d, _)| d.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .difference(&finished)
            .count();
        let listed = DossierServiceClient::new(cb.clone())
            .list_open_dossiers(ListOpenDossiersRequest {
                page_size: 1_000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.dossiers.len(), open);
        // Rates over 2025 sum both instances' dossiers; in Kafka mode they cover the
        // dossiers the cluster still holds (ended ones are forgotten after the retention).
        let year = |y: &str| {
            Some(dunghan_proto::pbjson_types::Timestamp {
                seconds: chrono::DateTime::parse_from_rfc3339(y).unwrap().timestamp(),
                nanos: 0,
            })
        };
        let rates = SlaServiceClient::new(ca.clone())
            .get_rates(GetRatesRequest {
                from: year("2025-01-01T00:00:00+07:00"),
                to: year("2026-01-01T00:00:00+07:00"),
                by: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(rates.total.unwrap().received, open as u64);
    });
    a.stop();
    b.stop();
}
