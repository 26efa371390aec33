//! The service's one source of time: the wall clock, or for benches and drills a simulated
//! clock that starts at a configured instant (`[clock] start`) and runs at real speed.
//!
//! Process-wide on purpose: every part of `dunghan serve` (the timer ticker, publish, calendar
//! changes, queries, the Kafka runtime) must see the same present, and a clock passed
//! through every layer would only add ways to disagree. The pure crates never read it.

use std::sync::OnceLock;

/// Milliseconds added to the system clock; set at most once, at start.
static OFFSET_MS: OnceLock<i64> = OnceLock::new();

fn system_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Starts the clock at `start_ms` (Unix milliseconds) now; returns the offset from the
/// system clock in ms. A second call keeps the first start (there is one clock).
pub(crate) fn start_at(start_ms: i64) -> i64 {
    *OFFSET_MS.get_or_init(|| start_ms - system_ms())
}

/// How far the service's clock is from the system clock (ms; 0 unless simulated).
pub(crate) fn offset_ms() -> i64 {
    OFFSET_MS.get().copied().unwrap_or(0)
}

/// The present in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    system_ms() + offset_ms()
}

/// The present in Unix seconds (what the engine takes).
pub(crate) fn now() -> i64 {
    now_ms().div_euclid(1000)
}

/// Parses a `[clock] start` value: RFC 3339 with its offset; the error names the value.
pub(crate) fn parse_start(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            format!(
                "[clock] start `{text}` is not an RFC 3339 instant with its offset \
                 (e.g. 2026-11-20T16:59:30+07:00): {e}"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_values_are_rfc3339_with_an_offset() {
        assert_eq!(
            parse_start("2026-11-20T16:59:30+07:00"),
            Ok(1_795_168_770_000)
        );
        let e = parse_start("2026-11-20 16:59:30").unwrap_err();
        assert!(
            e.contains("`2026-11-20 16:59:30`") && e.contains("RFC 3339"),
            "{e}"
        );
        assert!(parse_start("2026-11-20T16:59:30").is_err(), "no offset");
    }
}
