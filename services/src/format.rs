//! Formatting instants for people (appointment slips) and machines (RFC 3339 with offset).

use chrono::{DateTime, Datelike, SecondsFormat};
use dunghan_calendar::hours::weekday_vi;
use dunghan_calendar::Calendar;

/// Writes a command's output to stdout; a reader that went away (`| head`) is not an error.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// RFC 3339 in the calendar's zone, e.g. `2026-02-25T16:20:00+07:00`.
pub(crate) fn rfc3339(cal: &Calendar, t: i64) -> String {
    cal.local(dunghan_calendar::from_ts(t))
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// For a desk clerk: `Thứ Tư 25/02/2026 16:20`.
pub(crate) fn slip(cal: &Calendar, t: i64) -> String {
    let local = cal.local(dunghan_calendar::from_ts(t));
    format!(
        "{} {}",
        weekday_vi(local.weekday()),
        local.format("%d/%m/%Y %H:%M")
    )
}

/// A date for a desk clerk: `Thứ Bảy 14/02/2026`.
pub(crate) fn slip_date(date: chrono::NaiveDate) -> String {
    format!("{} {}", weekday_vi(date.weekday()), date.format("%d/%m/%Y"))
}

/// Parses an instant that must carry a UTC offset; names the value and what was expected.
pub(crate) fn parse_instant(flag: &str, text: &str) -> Result<i64, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    if chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").is_ok()
        || chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").is_ok()
    {
        return Err(format!(
            "{flag} `{text}` has no UTC offset: expected RFC 3339 like 2026-02-13T16:20:00+07:00"
        ));
    }
    Err(format!(
        "{flag} `{text}` is not a timestamp: expected RFC 3339 like 2026-02-13T16:20:00+07:00"
    ))
}
