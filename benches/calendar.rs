//! Working-time arithmetic on the national calendar: the flattened calendar ("fast",
//! per-day prefix sums, O(1) lookups) against the day-by-day walk of
//! `dunghan_calendar::reference` ("naive"), side by side in each group.
//!
//! Inputs are random instants 2000–2030 drawn once, outside the timed loops, from a seeded
//! generator; every timed iteration runs the whole batch, and each group reports
//! `Throughput::Elements(batch)` so criterion prints operations per second.
//!
//! `cargo bench -p dunghan-benches --bench calendar -- --noplot` measures (about 1.5
//! minutes); `cargo test -p dunghan-benches --bench calendar` runs every function once on a
//! small batch, after checking fast and naive agree. Numbers: BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use dunghan_benches::{instants, national, pairs, working_days, working_hours_secs, SplitMix64};
use dunghan_calendar::{reference, Anchor, Calendar, CalendarError};

/// Inputs per timed iteration when measuring (`DUNGHAN_BENCH_BATCH=n` overrides it).
///
/// Large on purpose: with a batch of 4096 the CPU's branch predictor learns the repeating
/// sequence of branches and `working_time_between` looks three times faster (110 M/s
/// instead of 35 M/s on the machine in BENCHMARKS.md). From 65 536 on the figures no
/// longer move.
const BATCH: usize = 65_536;
/// Inputs per iteration in test mode (`cargo test --benches`, unoptimised).
const TEST_BATCH: usize = 32;

/// Whether criterion will measure (`cargo bench`) rather than run each bench once.
/// Mirrors criterion's own rule: test mode unless `--bench` is given without `--test`.
fn measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

#[inline]
fn ok(r: Result<i64, CalendarError>) -> i64 {
    match r {
        Ok(v) => v,
        Err(e) => panic!("bench input out of range: {e}"),
    }
}

/// The fast result of adding `n` working days (same clock time).
#[inline]
fn fast_days(cal: &Calendar, t: i64, n: f64) -> i64 {
    ok(cal.add_working_days_ts(t, n, Anchor::SameClockTime))
}

fn naive_days(cal: &Calendar, t: i64, n: f64) -> i64 {
    ok(reference::add_working_days(cal, t, n))
}

/// Asserts the two implementations agree on every input before anything is timed.
fn check<I: Copy + std::fmt::Debug>(
    what: &str,
    inputs: &[I],
    fast: impl Fn(I) -> i64,
    naive: impl Fn(I) -> i64,
) {
    for &i in inputs {
        assert_eq!(fast(i), naive(i), "{what}: fast and naive differ on {i:?}");
    }
}

/// Times `f` over the whole batch per iteration.
fn bench_batch<I: Copy>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    inputs: &[I],
    f: impl Fn(I) -> i64,
) {
    group.throughput(Throughput::Elements(inputs.len() as u64));
    group.bench_function(id, |b| {
        b.iter(|| {
            for &i in black_box(inputs) {
                black_box(f(i));
            }
        })
    });
}

/// Settings for the fast side of a group and for the (slow) naive side.
fn fast_settings(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sampling_mode(SamplingMode::Linear)
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
}

/// The naive side takes tens of milliseconds per batch: few samples, flat sampling.
fn naive_settings(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
}

/// Checks that `fast` and `naive` agree on every input, then times both in one group.
fn fast_vs_naive<I: Copy + std::fmt::Debug>(
    c: &mut Criterion,
    name: &str,
    inputs: &[I],
    fast: impl Fn(I) -> i64 + Copy,
    naive: impl Fn(I) -> i64 + Copy,
) {
    check(name, inputs, fast, naive);
    let mut group = c.benchmark_group(name);
    fast_settings(&mut group);
    bench_batch(
        &mut group,
        BenchmarkId::from_parameter("fast"),
        inputs,
        fast,
    );
    naive_settings(&mut group);
    bench_batch(
        &mut group,
        BenchmarkId::from_parameter("naive"),
        inputs,
        naive,
    );
    group.finish();
}

fn add_working_days(c: &mut Criterion, cal: &Calendar, n: usize) {
    let mut rng = SplitMix64::new(0x0D0B_1E55);
    let inputs: Vec<(i64, f64)> = instants(&mut rng, n)
        .into_iter()
        .zip(working_days(&mut rng, n))
        .collect();
    fast_vs_naive(
        c,
        "add_working_days",
        &inputs,
        |(t, d)| fast_days(cal, t, d),
        |(t, d)| naive_days(cal, t, d),
    );
}

fn add_working_hours(c: &mut Criterion, cal: &Calendar, n: usize) {
    let mut rng = SplitMix64::new(0x4011_2500);
    let inputs: Vec<(i64, i64)> = instants(&mut rng, n)
        .into_iter()
        .zip(working_hours_secs(&mut rng, n))
        .collect();
    fast_vs_naive(
        c,
        "add_working_hours",
        &inputs,
        |(t, s)| ok(cal.add_working_secs(t, s)),
        |(t, s)| ok(reference::add_working_secs(cal, t, s)),
    );
}

fn working_time_between(c: &mut Criterion, cal: &Calendar, n: usize) {
    let mut rng = SplitMix64::new(0xB7EE_0001);
    let inputs = pairs(&mut rng, n);
    fast_vs_naive(
        c,
        "working_time_between",
        &inputs,
        |(a, b)| ok(cal.working_secs_between(a, b)),
        |(a, b)| ok(reference::working_secs_between(cal, a, b)),
    );
}

/// The fast path's cost should not grow with the span (inverse-table lookup), the naive one's
/// grows linearly; the naive side runs on a smaller batch for the long spans.
fn span(c: &mut Criterion, cal: &Calendar, n: usize) {
    let mut rng = SplitMix64::new(0x5BA1_0000);
    let starts = instants(&mut rng, n);
    let mut group = c.benchmark_group("span");
    for days in [1u32, 20, 250, 2500] {
        let d = f64::from(days);
        let naive_n = match days {
            0..=20 => n,
            21..=250 => (n / 8).max(1),
            _ => (n / 64).max(1),
        };
        check(
            &format!("span {days}"),
            &starts[..naive_n],
            |t| fast_days(cal, t, d),
            |t| naive_days(cal, t, d),
        );
        fast_settings(&mut group);
        bench_batch(&mut group, BenchmarkId::new("fast", days), &starts, |t| {
            fast_days(cal, t, d)
        });
        naive_settings(&mut group);
        bench_batch(
            &mut group,
            BenchmarkId::new("naive", days),
            &starts[..naive_n],
            |t| naive_days(cal, t, d),
        );
    }
    group.finish();
}

fn main() {
    let n = if measuring() {
        std::env::var("DUNGHAN_BENCH_BATCH")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(BATCH)
    } else {
        TEST_BATCH
    };
    let cal = national();
    let mut c = Criterion::default().configure_from_args();
    add_working_days(&mut c, &cal, n);
    add_working_hours(&mut c, &cal, n);
    working_time_between(&mut c, &cal, n);
    span(&mut c, &cal, n);
    c.final_summary();
}
