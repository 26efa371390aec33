//! Decoding proto3-JSON dossier events: the hand-written path of `dunghan_proto::json`
//! (what Kafka mode does first) beside pbjson's generated visitors through serde_json,
//! the baseline and the fallback, on the lines a one-stop system publishes.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dunghan_benches::SplitMix64;
use dunghan_proto::pbjson_types::Timestamp;
use dunghan_proto::v1::{self, dossier_event::Payload, DossierEvent};

/// Lines shaped as `dunghan loadgen` writes them: a dossier received, handed to two
/// departments, finished, returned and sometimes rated.
fn lines(dossiers: usize) -> Vec<String> {
    let mut rng = SplitMix64::new(7);
    let mut out = Vec::new();
    for n in 0..dossiers {
        let id = format!("HS-{n:08}");
        let mut t = 1_759_624_200 + rng.range(0, 20 * 86_400);
        let mut payloads = vec![Payload::Received(v1::DossierReceived {
            procedure_code: format!("2.00{:04}", rng.range(0, 2_000)),
            agency_id: format!("ubnd-xa-{:03}", rng.range(0, 40)),
            office_id: String::new(),
            channel: 1 + rng.range(0, 3) as i32,
        })];
        for step in ["tiep-nhan", "tham-dinh"] {
            payloads.push(Payload::StepStarted(v1::StepStarted {
                step_id: step.into(),
                department_id: format!("so-y-te-phong-{:02}", rng.range(0, 12)),
                allotment: None,
            }));
            payloads.push(Payload::StepCompleted(v1::StepCompleted {
                step_id: step.into(),
            }));
        }
        payloads.push(Payload::ResultReady(v1::ResultReady {}));
        payloads.push(Payload::ResultReturned(v1::ResultReturned {}));
        if rng.range(0, 2) == 0 {
            payloads.push(Payload::CitizenRated(v1::CitizenRated {
                official_id: format!("cb-{:04}", rng.range(0, 5_000)),
                department_id: "so-y-te-phong-01".into(),
                level: 1 + rng.range(0, 4) as i32,
            }));
        }
        for (k, payload) in payloads.into_iter().enumerate() {
            t += rng.range(600, 86_400);
            let event = DossierEvent {
                event_id: format!("{id}-{k}"),
                dossier_id: id.clone(),
                occurred_at: Some(Timestamp {
                    seconds: t,
                    nanos: 0,
                }),
                payload: Some(payload),
            };
            out.push(serde_json::to_string(&event).expect("JSON"));
        }
    }
    out
}

fn decode(c: &mut Criterion) {
    let lines = lines(2_000);
    let mut group = c.benchmark_group("json_decode");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("pbjson_serde_json", |b| {
        b.iter(|| {
            for line in &lines {
                let event: DossierEvent = serde_json::from_str(line).expect("an event");
                black_box(event);
            }
        })
    });
    group.bench_function("dunghan_fast_path", |b| {
        b.iter(|| {
            for line in &lines {
                let event = dunghan_proto::json::decode(line).expect("the common form");
                black_box(event);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
