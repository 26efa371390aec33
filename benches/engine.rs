//! Engine benches: events applied per second with a realistic mix (beside the floor of
//! merely filing each event under its dossier), and timer firing with millions pending and
//! a 100 000-deadline burst at one minute (beside `BTreeSet`, what most code would use).

use std::collections::{BTreeSet, HashMap};
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dunghan_benches::SplitMix64;
use dunghan_calendar::{CalendarBuilder, CalendarSet};
use dunghan_core::TimerIndex;

#[path = "workload.rs"]
mod workload;

fn apply(c: &mut Criterion) {
    let calendars = CalendarSet::single(
        CalendarBuilder::national()
            .years(2020, 2030)
            .build()
            .unwrap(),
    );
    let events = workload::events(20_000, 7);
    let mut group = c.benchmark_group("engine_apply");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(10);
    group.bench_function("dunghan_engine", |b| {
        b.iter_batched(
            || {
                let mut engine = workload::engine(&calendars);
                engine.reserve(20_000);
                engine
            },
            |mut engine| {
                let mut out = Vec::with_capacity(64);
                for e in &events {
                    engine.apply(e, &mut out);
                    out.clear();
                }
                black_box(engine.open_dossiers())
            },
            BatchSize::LargeInput,
        )
    });
    // The floor: file each event id under its dossier, no rules at all.
    group.bench_function("floor_hashmap_append", |b| {
        b.iter_batched(
            HashMap::<String, Vec<u64>>::new,
            |mut map| {
                for e in &events {
                    let seen = map.entry(e.dossier_id.clone()).or_default();
                    seen.push(e.event_id.len() as u64 ^ e.occurred_at as u64);
                }
                black_box(map.len())
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// `pending` random deadlines over a month after `burst_at`, plus `burst` at `burst_at`.
fn deadlines(pending: usize, burst: usize, burst_at: i64) -> Vec<(i64, u32)> {
    let mut rng = SplitMix64::new(11);
    let mut v: Vec<(i64, u32)> = (0..pending)
        .map(|slot| (burst_at + 60 + rng.range(0, 30 * 86_400), slot as u32))
        .collect();
    v.extend((0..burst).map(|i| (burst_at + rng.range(0, 60), (pending + i) as u32)));
    v
}

fn timers(c: &mut Criterion) {
    let burst_at = workload::START + 9 * 3_600 + 1_800; // 17:00
                                                        // `cargo test --benches` runs each bench once: keep that run small.
    let sizes: &[usize] = if std::env::args().any(|a| a == "--bench") {
        &[1_000_000, 10_000_000]
    } else {
        &[10_000]
    };
    for &pending in sizes {
        let all = deadlines(pending, 100_000, burst_at);
        let burst: Vec<(i64, u32)> = all[pending..].to_vec();
        let mut group = c.benchmark_group(format!(
            "timer_burst_100k_with_{}m_pending",
            pending / 1_000_000
        ));
        group.throughput(Throughput::Elements(burst.len() as u64));
        group.sample_size(10);

        let mut index = TimerIndex::new();
        for &(t, slot) in &all {
            index.set(slot, Some(t));
        }
        group.bench_function("dunghan_timer_index", |b| {
            b.iter(|| {
                let mut fired = 0u32;
                while let Some((_, slot)) = index.pop_due(burst_at + 59) {
                    fired = fired.wrapping_add(slot);
                }
                for &(t, slot) in &burst {
                    index.set(slot, Some(t));
                }
                black_box(fired)
            })
        });
        drop(index);

        let mut set: BTreeSet<(i64, u32)> = all.iter().copied().collect();
        group.bench_function("baseline_btreeset", |b| {
            b.iter(|| {
                let mut fired = 0u32;
                while let Some(&(t, slot)) = set.first() {
                    if t > burst_at + 59 {
                        break;
                    }
                    set.pop_first();
                    fired = fired.wrapping_add(slot);
                }
                for &x in &burst {
                    set.insert(x);
                }
                black_box(fired)
            })
        });
        group.finish();
    }
}

criterion_group!(benches, apply, timers);
criterion_main!(benches);
