//! A flattened business calendar: each day's working sessions with prefix sums, and the
//! working-time arithmetic on them.
//!
//! Every local date in the calendar's years maps to a small "pattern" (its working sessions)
//! and to the working seconds before it (a prefix sum). Adding working time is then a
//! lookup in an inverse table (working-day ordinal → day) and a short forward scan over
//! the rest days in between: constant time whatever the span, never a day-by-day loop.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;

use crate::hours::{Session, DAY_SECS};
use crate::zone::Zone;
use crate::CalendarError;
use crate::DayNote;

const UNIX_EPOCH_DAYS_FROM_CE: i64 = 719_163;

/// The most working days any arithmetic accepts (about a thousand years).
pub const MAX_WORKING_DAYS: f64 = 250_000.0;

/// The sessions of one kind of day, with their total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    pub(crate) sessions: Box<[Session]>,
    pub(crate) total: u32,
}

impl Pattern {
    pub(crate) fn new(sessions: Vec<Session>) -> Self {
        let total = sessions.iter().map(|s| s.len()).sum();
        Pattern {
            sessions: sessions.into_boxed_slice(),
            total,
        }
    }

    /// Working seconds of this day before second-of-day `s`.
    #[inline]
    fn worked_before(&self, s: u32) -> u32 {
        let mut acc = 0;
        for session in self.sessions.iter() {
            if s <= session.start {
                break;
            }
            acc += s.min(session.end) - session.start;
        }
        acc
    }

    /// Second-of-day at which `r` working seconds of this day have passed.
    /// `at_end`: an exact session boundary resolves to the end of the earlier session
    /// (deadlines: 11:30, not 13:00); otherwise to the start of the later one (a start).
    #[inline]
    fn position(&self, mut r: u32, at_end: bool) -> u32 {
        for session in self.sessions.iter() {
            let len = session.len();
            if r < len || (at_end && r == len) {
                return session.start + r;
            }
            r -= len;
        }
        // Only reachable with `r == total` and `at_end == false`, which callers exclude.
        self.sessions.last().map_or(0, |s| s.end)
    }
}

/// One local date in the flattened table.
#[derive(Debug, Clone, Copy)]
struct Day {
    /// Working seconds before this date.
    before: i64,
    /// Index into the patterns.
    pattern: u32,
}

/// A closure of the office (storm, flood) between two instants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closure {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub reason: String,
}

/// A business calendar for one office, flattened over a range of years.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub(crate) name: String,
    zone: Zone,
    pub(crate) first_year: i32,
    pub(crate) last_year: i32,
    /// Days since 1970-01-01 of the first local date covered.
    epoch_day: i64,
    /// Per local date: working seconds before it and its pattern, side by side so one
    /// cache line serves both; one extra entry at the end holds the total.
    days: Vec<Day>,
    patterns: Vec<Pattern>,
    /// `inverse[k]` = the first day `d` with `days[d + 1].before > k × day_length`: jumps straight
    /// to (just before) the day holding a given working second, so locating one is a lookup
    /// plus a forward scan over the few rest days in between, with no binary search.
    inverse: Vec<u32>,
    /// `1 / day_length`, so probing `inverse` is a multiplication, not a division.
    per_day: f64,
    pub(crate) notes: BTreeMap<NaiveDate, DayNote>,
    pub(crate) closures: Vec<Closure>,
    /// Standard length of a working day in seconds (turns working days into working time).
    day_length: u32,
    /// The plain weekly pattern index of each weekday (Monday first), for explanations.
    pub(crate) weekly: [u32; 7],
}

/// Where "N working days" ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Anchor {
    /// The same clock time N working days later, counted in working time (the default).
    #[default]
    SameClockTime,
    /// The end of the N-th working day after the receipt day (Civil Code Art. 147–148).
    EndOfDay,
}

impl Calendar {
    /// Assembles a calendar from resolved per-day sessions. Used by [`crate::CalendarBuilder`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assemble(
        name: String,
        zone: Zone,
        first_year: i32,
        last_year: i32,
        days: Vec<Vec<Session>>,
        weekly: [Vec<Session>; 7],
        notes: BTreeMap<NaiveDate, DayNote>,
        closures: Vec<Closure>,
        day_length: u32,
    ) -> Calendar {
        let first = NaiveDate::from_ymd_opt(first_year, 1, 1).expect("valid year");
        let epoch_day = first.num_days_from_ce() as i64 - UNIX_EPOCH_DAYS_FROM_CE;
        let mut index: std::collections::HashMap<Vec<Session>, u32> = Default::default();
        let mut patterns = Vec::new();
        let mut intern = |sessions: Vec<Session>| -> u32 {
            *index.entry(sessions.clone()).or_insert_with(|| {
                patterns.push(Pattern::new(sessions));
                (patterns.len() - 1) as u32
            })
        };
        let weekly = weekly.map(&mut intern);
        let day_pattern: Vec<u32> = days.into_iter().map(&mut intern).collect();
        let mut entries = Vec::with_capacity(day_pattern.len() + 1);
        let mut acc = 0i64;
        for &p in &day_pattern {
            entries.push(Day {
                before: acc,
                pattern: p,
            });
            acc += patterns[p as usize].total as i64;
        }
        entries.push(Day {
            before: acc,
            pattern: 0,
        });
        let cum: Vec<i64> = entries.iter().map(|d| d.before).collect();
        let inverse = inverse_table(&cum, day_length);
        Calendar {
            name,
            zone,
            first_year,
            last_year,
            epoch_day,
            days: entries,
            patterns,
            inverse,
            per_day: if day_length > 0 {
                1.0 / day_length as f64
            } else {
                0.0
            },
            notes,
            closures,
            day_length,
            weekly,
        }
    }

    /// Number of days covered.
    #[inline]
    fn len(&self) -> usize {
        self.days.len() - 1
    }

    /// The calendar's name (office or province id).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The calendar's time zone.
    pub fn tz(&self) -> Tz {
        self.zone.tz
    }

    /// First and last year covered.
    pub fn years(&self) -> (i32, i32) {
        (self.first_year, self.last_year)
    }

    /// Standard working-day length in seconds.
    pub fn day_length(&self) -> u32 {
        self.day_length
    }

    /// Dated notes (holidays, days off, swapped working days) known to this calendar.
    pub fn notes(&self) -> &BTreeMap<NaiveDate, DayNote> {
        &self.notes
    }

    /// Closures known to this calendar.
    pub fn closures(&self) -> &[Closure] {
        &self.closures
    }

    /// Approximate heap bytes used by the per-day tables.
    pub fn table_bytes(&self) -> usize {
        self.days.len() * std::mem::size_of::<Day>() + self.inverse.len() * 4
    }

    // ---- local time -------------------------------------------------------------------------

    /// Local wall-clock seconds (since 1970-01-01 local) of a UTC instant in seconds.
    #[inline]
    pub fn local_secs(&self, t: i64) -> i64 {
        self.zone.local_secs(t)
    }

    /// The UTC instant of local wall-clock seconds (the earliest one if ambiguous).
    #[inline]
    pub fn utc_secs(&self, local: i64) -> i64 {
        self.zone.utc_secs(local)
    }

    /// The day index of a local date, if covered.
    pub(crate) fn index_of(&self, date: NaiveDate) -> Option<usize> {
        let d = date.num_days_from_ce() as i64 - UNIX_EPOCH_DAYS_FROM_CE - self.epoch_day;
        (0..self.len() as i64).contains(&d).then_some(d as usize)
    }

    fn too_long(&self, dur: i64) -> CalendarError {
        CalendarError::Duration(format!(
            "{dur} working seconds is beyond any date the calendar can hold"
        ))
    }

    fn out_of_range(&self, what: String) -> CalendarError {
        CalendarError::OutOfRange {
            what,
            first: self.first_year,
            last: self.last_year,
        }
    }

    /// Day index and second-of-day of an instant.
    #[inline]
    fn split(&self, t: i64) -> Result<(usize, u32), CalendarError> {
        let local = self.local_secs(t);
        let day = local.div_euclid(DAY_SECS as i64) - self.epoch_day;
        if day < 0 || day >= self.len() as i64 {
            return Err(self.out_of_range(format_ts(t)));
        }
        Ok((day as usize, local.rem_euclid(DAY_SECS as i64) as u32))
    }

    #[inline]
    fn pattern(&self, day: usize) -> &Pattern {
        &self.patterns[self.days[day].pattern as usize]
    }

    /// The sessions worked on a local date (empty for a non-working day), or `None` outside
    /// the calendar's years.
    pub fn sessions_on(&self, date: NaiveDate) -> Option<&[Session]> {
        self.index_of(date).map(|d| &*self.pattern(d).sessions)
    }

    /// The sessions of a weekday in the plain weekly pattern, before holidays and closures.
    pub fn weekly_sessions(&self, weekday: chrono::Weekday) -> &[Session] {
        &self.patterns[self.weekly[weekday.num_days_from_monday() as usize] as usize].sessions
    }

    /// The UTC instant of a second-of-day on a day index.
    #[inline]
    fn instant(&self, day: usize, sec: u32) -> i64 {
        self.utc_secs((self.epoch_day + day as i64) * DAY_SECS as i64 + sec as i64)
    }

    // ---- working-time arithmetic on UTC seconds ---------------------------------------------

    /// Working seconds from the calendar's start to `t`.
    #[inline]
    pub fn worked_until(&self, t: i64) -> Result<i64, CalendarError> {
        let (day, sec) = self.split(t)?;
        Ok(self.days[day].before + self.pattern(day).worked_before(sec) as i64)
    }

    /// The earliest instant, on or after day `from`, at which `w` working seconds have passed.
    /// `at_end` resolves exact boundaries to the end of a session (see [`Pattern::position`]).
    #[inline]
    fn locate(&self, w: i64, from: usize, at_end: bool) -> Result<i64, CalendarError> {
        let reached = |c: i64| if at_end { c >= w } else { c > w };
        let n = self.len();
        let mut day = from;
        if self.day_length > 0 {
            // Exact: w / day_length is at least 1 / day_length (≈ 3e-5) away from the next
            // integer below, far more than the float error; at an exact multiple the product
            // may land just under it, which only starts the scan one granule early.
            let probe = ((if at_end { w - 1 } else { w }) as f64 * self.per_day) as i64;
            match self.inverse.get(probe.max(0) as usize) {
                Some(&d) => day = day.max(d as usize),
                None => return Err(self.out_of_range("the computed instant".into())),
            }
        }
        while day < n && !reached(self.days[day + 1].before) {
            day += 1;
        }
        if day >= n {
            return Err(self.out_of_range("the computed instant".into()));
        }
        let r = (w - self.days[day].before) as u32;
        Ok(self.instant(day, self.pattern(day).position(r, at_end)))
    }

    /// Adds (or, if negative, subtracts) working seconds: the earliest instant at which
    /// exactly `dur` more working seconds have passed since `t`. An exact session boundary
    /// resolves to the end of the earlier session. `dur == 0` returns `t`.
    #[inline]
    pub fn add_working_secs(&self, t: i64, dur: i64) -> Result<i64, CalendarError> {
        if dur == 0 {
            return Ok(t);
        }
        let (day, sec) = self.split(t)?;
        let w = (self.days[day].before + self.pattern(day).worked_before(sec) as i64)
            .checked_add(dur)
            .ok_or_else(|| self.too_long(dur))?;
        if dur > 0 {
            self.locate(w, day, true)
        } else {
            if w <= 0 {
                return Err(
                    self.out_of_range(format!("{dur} working seconds before {}", format_ts(t)))
                );
            }
            self.locate(w, 0, true)
        }
    }

    /// Working seconds between two instants (negative if `b` is before `a`).
    #[inline]
    pub fn working_secs_between(&self, a: i64, b: i64) -> Result<i64, CalendarError> {
        Ok(self.worked_until(b)? - self.worked_until(a)?)
    }

    /// Whether `t` falls inside a working session (`[start, end)`).
    pub fn is_working_ts(&self, t: i64) -> Result<bool, CalendarError> {
        let (day, sec) = self.split(t)?;
        Ok(self
            .pattern(day)
            .sessions
            .iter()
            .any(|s| s.start <= sec && sec < s.end))
    }

    /// The first working instant at or after `t` (`t` itself when it is working time).
    pub fn next_working_ts(&self, t: i64) -> Result<i64, CalendarError> {
        let (day, _) = self.split(t)?;
        self.locate(self.worked_until(t)?, day, false)
    }

    /// The first working instant of the first working day after `t`'s local date.
    pub fn next_working_day_start_ts(&self, t: i64) -> Result<i64, CalendarError> {
        let (day, _) = self.split(t)?;
        if day + 1 >= self.len() {
            return Err(self.out_of_range(format_ts(t)));
        }
        self.locate(self.days[day + 1].before, day + 1, false)
    }

    /// The end of the last session of `t`'s local date, if that date is a working day.
    pub fn end_of_day_ts(&self, t: i64) -> Result<Option<i64>, CalendarError> {
        let (day, _) = self.split(t)?;
        Ok(self
            .pattern(day)
            .sessions
            .last()
            .map(|s| self.instant(day, s.end)))
    }

    /// The end of the working day containing or following `t`: `t`'s own date if it is a
    /// working day, else the next working day's end.
    pub fn end_of_this_or_next_working_day_ts(&self, t: i64) -> Result<i64, CalendarError> {
        match self.end_of_day_ts(t)? {
            Some(end) => Ok(end),
            None => {
                let start = self.next_working_ts(t)?;
                Ok(self
                    .end_of_day_ts(start)?
                    .expect("a working instant has sessions"))
            }
        }
    }

    /// Adds `n` working days (fractions allowed: 0.5 is half the standard day).
    pub fn add_working_days_ts(
        &self,
        t: i64,
        n: f64,
        anchor: Anchor,
    ) -> Result<i64, CalendarError> {
        let dur = self.days_to_secs(n)?;
        match anchor {
            Anchor::SameClockTime => self.add_working_secs(t, dur),
            Anchor::EndOfDay => {
                // Count from the end of the (effective) receipt day, then end that day.
                let start = self.next_working_ts(t)?;
                let (day, _) = self.split(start)?;
                let w = self.days[day + 1]
                    .before
                    .checked_add(dur)
                    .ok_or_else(|| self.too_long(dur))?;
                let due = self.locate(w, day, true)?;
                Ok(self.end_of_day_ts(due)?.unwrap_or(due))
            }
        }
    }

    /// Working seconds in `n` standard working days; rejects negative, non-finite or absurd values.
    pub fn days_to_secs(&self, n: f64) -> Result<i64, CalendarError> {
        // More working days than 1 000 years hold is a typo, not a deadline.
        if !n.is_finite() || !(0.0..=MAX_WORKING_DAYS).contains(&n) {
            return Err(CalendarError::Duration(format!(
                "working days must be a number from 0 to {MAX_WORKING_DAYS}, got {n}"
            )));
        }
        // `+ 0.5` then truncation rounds a non-negative number (cheaper than `f64::round`).
        Ok((n * self.day_length as f64 + 0.5) as i64)
    }

    /// Adds calendar days to the local date and clock time of `t`. If the result falls on a
    /// non-working day it moves to the end of the next working day (Civil Code Art. 148).
    pub fn add_calendar_days_ts(
        &self,
        t: i64,
        n: i64,
        anchor: Anchor,
    ) -> Result<i64, CalendarError> {
        let local = self.local_secs(t) + n * DAY_SECS as i64;
        self.roll_forward(self.utc_secs(local), anchor)
    }

    /// Adds calendar months (clamped to the month's last day), with the same roll-forward.
    pub fn add_months_ts(&self, t: i64, n: u32, anchor: Anchor) -> Result<i64, CalendarError> {
        let local = naive_of(self.local_secs(t));
        let moved = local
            .checked_add_months(chrono::Months::new(n))
            .ok_or_else(|| self.out_of_range(format!("{n} months after {}", format_ts(t))))?;
        self.roll_forward(self.utc_secs(moved.and_utc().timestamp()), anchor)
    }

    fn roll_forward(&self, t: i64, anchor: Anchor) -> Result<i64, CalendarError> {
        match (self.end_of_day_ts(t)?, anchor) {
            (None, _) => self.end_of_this_or_next_working_day_ts(t),
            (Some(end), Anchor::EndOfDay) => Ok(end),
            (Some(_), Anchor::SameClockTime) => Ok(t),
        }
    }

    // ---- chrono wrappers --------------------------------------------------------------------

    /// The instant in the calendar's time zone.
    pub fn local(&self, t: DateTime<Utc>) -> DateTime<Tz> {
        t.with_timezone(&self.zone.tz)
    }

    /// See [`Calendar::add_working_secs`].
    pub fn add_working(
        &self,
        t: DateTime<Utc>,
        dur: chrono::TimeDelta,
    ) -> Result<DateTime<Utc>, CalendarError> {
        self.add_working_secs(t.timestamp(), dur.num_seconds())
            .map(from_ts)
    }

    /// See [`Calendar::working_secs_between`].
    pub fn working_between(
        &self,
        a: DateTime<Utc>,
        b: DateTime<Utc>,
    ) -> Result<chrono::TimeDelta, CalendarError> {
        self.working_secs_between(a.timestamp(), b.timestamp())
            .map(chrono::TimeDelta::seconds)
    }

    /// See [`Calendar::is_working_ts`].
    pub fn is_working(&self, t: DateTime<Utc>) -> Result<bool, CalendarError> {
        self.is_working_ts(t.timestamp())
    }

    /// See [`Calendar::next_working_ts`].
    pub fn next_working(&self, t: DateTime<Utc>) -> Result<DateTime<Utc>, CalendarError> {
        self.next_working_ts(t.timestamp()).map(from_ts)
    }

    /// See [`Calendar::add_working_days_ts`].
    pub fn add_working_days(
        &self,
        t: DateTime<Utc>,
        n: f64,
        anchor: Anchor,
    ) -> Result<DateTime<Utc>, CalendarError> {
        self.add_working_days_ts(t.timestamp(), n, anchor)
            .map(from_ts)
    }

    /// See [`Calendar::add_calendar_days_ts`].
    pub fn add_calendar_days(
        &self,
        t: DateTime<Utc>,
        n: i64,
        anchor: Anchor,
    ) -> Result<DateTime<Utc>, CalendarError> {
        self.add_calendar_days_ts(t.timestamp(), n, anchor)
            .map(from_ts)
    }

    /// See [`Calendar::add_months_ts`].
    pub fn add_months(
        &self,
        t: DateTime<Utc>,
        n: u32,
        anchor: Anchor,
    ) -> Result<DateTime<Utc>, CalendarError> {
        self.add_months_ts(t.timestamp(), n, anchor).map(from_ts)
    }
}

/// See [`Calendar::inverse`]. Empty when the week has no working time.
fn inverse_table(cum: &[i64], day_length: u32) -> Vec<u32> {
    let total = cum.last().copied().unwrap_or(0);
    if day_length == 0 || cum.len() < 2 {
        return Vec::new();
    }
    let len = day_length as i64;
    let last_day = cum.len() - 2;
    let mut inverse = Vec::with_capacity((total / len + 1) as usize);
    let mut day = 0usize;
    for k in 0..=total / len {
        while day < last_day && cum[day + 1] <= k * len {
            day += 1;
        }
        inverse.push(day as u32);
    }
    inverse
}

/// A UTC instant from Unix seconds (clamped to chrono's range, which callers never leave).
pub fn from_ts(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or_default()
}

fn naive_of(local: i64) -> NaiveDateTime {
    from_ts(local).naive_utc()
}

fn format_ts(t: i64) -> String {
    from_ts(t).to_rfc3339()
}
