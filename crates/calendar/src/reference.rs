//! The naive day-by-day reference: walks the calendar one day at a time. Slow on purpose;
//! the property tests check [`Calendar`] against it and the benches use it as the baseline.

use chrono::{Days, NaiveDate};

use crate::calendar::{from_ts, Calendar};
use crate::hours::DAY_SECS;
use crate::CalendarError;

fn out_of_range(cal: &Calendar, t: i64) -> CalendarError {
    let (first, last) = cal.years();
    CalendarError::OutOfRange {
        what: from_ts(t).to_rfc3339(),
        first,
        last,
    }
}

fn split(cal: &Calendar, t: i64) -> (NaiveDate, u32) {
    let local = cal.local_secs(t);
    (
        from_ts(local).date_naive(),
        local.rem_euclid(DAY_SECS as i64) as u32,
    )
}

fn instant(cal: &Calendar, date: NaiveDate, sec: u32) -> i64 {
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp();
    cal.utc_secs(midnight + sec as i64)
}

/// Adds `dur >= 0` working seconds by walking day by day; same contract as
/// [`Calendar::add_working_secs`] (which also subtracts; this reference does not).
pub fn add_working_secs(cal: &Calendar, t: i64, dur: i64) -> Result<i64, CalendarError> {
    if dur < 0 {
        return Err(CalendarError::Duration(format!(
            "the reference adds only: {dur} working seconds"
        )));
    }
    if dur == 0 {
        return Ok(t);
    }
    let (mut date, mut sec) = split(cal, t);
    let mut left = dur;
    loop {
        let sessions = cal.sessions_on(date).ok_or_else(|| out_of_range(cal, t))?;
        for s in sessions {
            if sec >= s.end {
                continue;
            }
            let from = sec.max(s.start);
            let available = (s.end - from) as i64;
            if left <= available {
                return Ok(instant(cal, date, from + left as u32));
            }
            left -= available;
        }
        date = date
            .checked_add_days(Days::new(1))
            .ok_or_else(|| out_of_range(cal, t))?;
        sec = 0;
    }
}

/// Working seconds between `a <= b` by walking day by day.
pub fn working_secs_between(cal: &Calendar, a: i64, b: i64) -> Result<i64, CalendarError> {
    if b < a {
        return working_secs_between(cal, b, a).map(|s| -s);
    }
    let (mut date, mut sec) = split(cal, a);
    let (end_date, end_sec) = split(cal, b);
    let mut total = 0i64;
    loop {
        let sessions = cal.sessions_on(date).ok_or_else(|| out_of_range(cal, a))?;
        let until = if date == end_date { end_sec } else { DAY_SECS };
        for s in sessions {
            let (lo, hi) = (s.start.max(sec), s.end.min(until));
            if hi > lo {
                total += (hi - lo) as i64;
            }
        }
        if date >= end_date {
            return Ok(total);
        }
        date = date.succ_opt().ok_or_else(|| out_of_range(cal, b))?;
        sec = 0;
    }
}

/// Adds `n` standard working days (same clock time) by walking day by day.
pub fn add_working_days(cal: &Calendar, t: i64, n: f64) -> Result<i64, CalendarError> {
    add_working_secs(cal, t, cal.days_to_secs(n)?)
}
