//! Shared helpers for the criterion benches (random instants, the bench calendar).
//!
//! Everything here is deterministic: a seeded SplitMix64 generator produces the inputs, so
//! every run (and the numpy peer in `peer_numpy.py`, which uses the same ranges) times the
//! same kind of work. No `rand` dependency.

use dunghan_calendar::{Calendar, CalendarBuilder};

/// 2000-01-01T00:00:00Z in Unix seconds.
pub const FROM: i64 = 946_684_800;
/// 2031-01-01T00:00:00Z in Unix seconds (exclusive end of the random range).
pub const UNTIL: i64 = 1_924_992_000;

/// Seconds in an hour.
pub const HOUR: i64 = 3_600;
/// Seconds in a calendar day.
pub const DAY: i64 = 86_400;

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast and good enough for bench inputs.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`lo < hi`); the modulo bias is irrelevant at these ranges.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        assert!(lo < hi, "empty range {lo}..{hi}");
        lo + (self.next_u64() % (hi - lo) as u64) as i64
    }
}

/// The calendar every bench uses: the national Vietnamese calendar, 1900–2100, with its
/// holidays, compensatory days and yearly schedules.
pub fn national() -> Calendar {
    CalendarBuilder::national()
        .build()
        .expect("the national calendar builds")
}

/// `n` random UTC instants (Unix seconds, to the second) in 2000-01-01 .. 2030-12-31.
pub fn instants(rng: &mut SplitMix64, n: usize) -> Vec<i64> {
    (0..n).map(|_| rng.range(FROM, UNTIL)).collect()
}

/// `n` random working-day counts: 0.5, 1, 1.5, …, 30 (whole and half days, as the
/// administrative procedures use).
pub fn working_days(rng: &mut SplitMix64, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.range(1, 61) as f64 / 2.0).collect()
}

/// `n` random working-hour durations in seconds: 1–200 whole hours.
pub fn working_hours_secs(rng: &mut SplitMix64, n: usize) -> Vec<i64> {
    (0..n).map(|_| rng.range(1, 201) * HOUR).collect()
}

/// `n` random pairs `(a, b)` with `a` in 2000–2030 and `b` up to a year after `a`.
pub fn pairs(rng: &mut SplitMix64, n: usize) -> Vec<(i64, i64)> {
    (0..n)
        .map(|_| {
            let a = rng.range(FROM, UNTIL);
            (a, a + rng.range(0, 366 * DAY))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_stay_in_range() {
        let mut rng = SplitMix64::new(7);
        assert!(instants(&mut rng, 1000)
            .iter()
            .all(|t| (FROM..UNTIL).contains(t)));
        assert!(working_days(&mut rng, 1000)
            .iter()
            .all(|d| (0.5..=30.0).contains(d) && (d * 2.0).fract() == 0.0));
        assert!(working_hours_secs(&mut rng, 1000)
            .iter()
            .all(|s| (HOUR..=200 * HOUR).contains(s) && s % HOUR == 0));
        assert!(pairs(&mut rng, 1000)
            .iter()
            .all(|(a, b)| a <= b && b - a < 366 * DAY));
    }

    #[test]
    fn same_seed_same_inputs() {
        let a = instants(&mut SplitMix64::new(42), 16);
        let b = instants(&mut SplitMix64::new(42), 16);
        assert_eq!(a, b);
        assert_ne!(a, instants(&mut SplitMix64::new(43), 16));
    }
}
