//! Dossiers of the simulated province as a stream of proto3-JSON `DossierEvent` lines,
//! sorted by event time, generated lazily so a million dossiers need little memory.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use chrono::{NaiveDate, SecondsFormat};
use dunghan_calendar::Calendar;

use super::province::{Province, Rng, DAY};

/// The province's UTC offset (Asia/Ho_Chi_Minh, no DST).
const OFFSET_SECS: i32 = 7 * 3600;

/// Share of dossiers with a supplement request, a withdrawal, or that stay stuck open.
const SUPPLEMENT: f64 = 0.10;
const WITHDRAWAL: f64 = 0.03;
const STUCK: f64 = 0.01;

/// One event line and the dossier it belongs to (the Kafka key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Line {
    /// Sort key: event time, dossier number, sequence within the dossier.
    at: i64,
    dossier: u64,
    seq: u32,
    pub(crate) dossier_id: String,
    pub(crate) json: String,
}

/// Arrival instants, weighted by weekday and by hour of the working day.
pub(crate) fn arrivals(
    cal: &Calendar,
    seed: u64,
    start: NaiveDate,
    days: u32,
    n: u64,
) -> Result<Vec<i64>, String> {
    // Each working half-hour slot of the period, with its weight: the morning peak
    // (08:00–10:00) is the busiest, late afternoon the quietest.
    let mut slots: Vec<(i64, i64)> = Vec::new();
    let mut cumulative = Vec::new();
    let mut total = 0.0;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    for d in 0..days {
        let date = start + chrono::Days::new(u64::from(d));
        let Some(sessions) = cal.sessions_on(date) else {
            return Err(format!("{date} is outside the calendar's years"));
        };
        let day_weight = match chrono::Datelike::weekday(&date) {
            chrono::Weekday::Mon => 1.3,
            chrono::Weekday::Fri => 0.9,
            _ => 1.0,
        };
        let midnight = (date - epoch).num_days() * 86_400;
        for s in sessions {
            let mut from = s.start;
            while from < s.end {
                let to = (from + 1800).min(s.end);
                let hour = f64::from(from) / 3600.0;
                let w = match hour {
                    h if h < 8.0 => 0.7,
                    h if h < 10.0 => 1.6,
                    h if h < 12.0 => 1.2,
                    h if h < 14.0 => 0.9,
                    h if h < 16.0 => 1.1,
                    _ => 0.6,
                };
                total += day_weight * w * f64::from(to - from);
                cumulative.push(total);
                slots.push((
                    cal.utc_secs(midnight + i64::from(from)),
                    i64::from(to - from),
                ));
                from = to;
            }
        }
    }
    if slots.is_empty() {
        return Err(format!(
            "no working day between {start} and {} (--days {days})",
            start + chrono::Days::new(u64::from(days))
        ));
    }
    let mut rng = Rng::stream(seed, u64::MAX - 1);
    let mut out: Vec<i64> = (0..n)
        .map(|_| {
            let (from, len) = slots[rng.weighted(&cumulative)];
            from + rng.below(len as u64) as i64
        })
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// The event stream: dossiers are simulated in arrival order and their events merged
/// through a heap, so lines come out sorted by (time, dossier, sequence).
#[derive(Debug)]
pub(crate) struct Events<'a> {
    province: &'a Province,
    cal: &'a Calendar,
    seed: u64,
    arrivals: Vec<i64>,
    next: usize,
    pending: BinaryHeap<Reverse<Line>>,
}

impl<'a> Events<'a> {
    pub(crate) fn new(
        province: &'a Province,
        cal: &'a Calendar,
        seed: u64,
        arrivals: Vec<i64>,
    ) -> Events<'a> {
        Events {
            province,
            cal,
            seed,
            arrivals,
            next: 0,
            pending: BinaryHeap::new(),
        }
    }

    /// Dossiers simulated so far (for the progress bar).
    pub(crate) fn dossiers_done(&self) -> usize {
        self.next
    }
}

impl Iterator for Events<'_> {
    type Item = Line;

    fn next(&mut self) -> Option<Line> {
        loop {
            let arrival = self.arrivals.get(self.next).copied();
            let ready = match (self.pending.peek(), arrival) {
                (Some(Reverse(l)), Some(a)) => (l.at, l.dossier) < (a, self.next as u64),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return None,
            };
            if ready {
                return self.pending.pop().map(|Reverse(l)| l);
            }
            let i = self.next as u64;
            self.next += 1;
            let mut d = Dossier {
                cal: self.cal,
                p: self.province,
                rng: Rng::stream(self.seed, i),
                number: i,
                id: format!("HS-{i:08}"),
                seq: 0,
                t: arrival.unwrap_or_default(),
                out: &mut self.pending,
            };
            d.simulate();
        }
    }
}

/// One dossier being simulated: its clock `t` moves forward as events are written.
struct Dossier<'a> {
    cal: &'a Calendar,
    p: &'a Province,
    rng: Rng,
    number: u64,
    id: String,
    seq: u32,
    t: i64,
    out: &'a mut BinaryHeap<Reverse<Line>>,
}

impl Dossier<'_> {
    fn push(&mut self, payload: &str) {
        let at = chrono::DateTime::from_timestamp(self.t, 0)
            .unwrap_or_default()
            .with_timezone(&chrono::FixedOffset::east_opt(OFFSET_SECS).expect("valid offset"))
            .to_rfc3339_opts(SecondsFormat::Secs, false);
        let json = format!(
            r#"{{"eventId":"{id}-{seq}","dossierId":"{id}","occurredAt":"{at}",{payload}}}"#,
            id = self.id,
            seq = self.seq
        );
        self.out.push(Reverse(Line {
            at: self.t,
            dossier: self.number,
            seq: self.seq,
            dossier_id: self.id.clone(),
            json,
        }));
        self.seq += 1;
    }

    /// Moves the clock by `secs` of working time.
    fn work(&mut self, secs: f64) {
        let secs = secs.max(0.0).round() as i64;
        self.t = self
            .cal
            .add_working_secs(self.t, secs)
            .unwrap_or(self.t + secs);
    }

    /// Moves the clock by a uniform amount of working time in [lo, hi) seconds.
    fn work_between(&mut self, lo: f64, hi: f64) {
        let secs = self.rng.range(lo, hi);
        self.work(secs);
    }

    fn simulate(&mut self) {
        let p = self.p;
        let proc = &p.procedures[self.rng.weighted(&p.popularity)];
        let agency = &p.agencies[proc.agency];
        let channel = match self.rng.unit() {
            x if x < 0.5 => "CHANNEL_ONLINE",
            x if x < 0.9 => "CHANNEL_COUNTER",
            _ => "CHANNEL_POSTAL",
        };
        self.push(&format!(
            r#""received":{{"procedureCode":"{}","agencyId":"{}","channel":"{channel}"}}"#,
            proc.code, agency.id
        ));
        let allowed = proc.appointment().secs();
        // The processing plan: one segment per catalog step, or one for the handler.
        let plan: Vec<(Option<&str>, usize, f64)> = if proc.steps.is_empty() {
            vec![(None, proc.handler, allowed)]
        } else {
            proc.steps
                .iter()
                .map(|s| (Some(s.id), s.department, f64::from(s.hours) * 3600.0))
                .collect()
        };
        let supplement = self.rng.chance(SUPPLEMENT);
        let withdraw = self.rng.chance(WITHDRAWAL);
        let stuck = !withdraw && self.rng.chance(STUCK);
        let special_at = self.rng.below(plan.len() as u64) as usize;
        // The desk hands the dossier over within the hour.
        self.work_between(60.0, 3600.0);
        let (mut used, mut worst) = (0.0, (0.0, plan[0].1));
        for (k, &(step, department, allotted)) in plan.iter().enumerate() {
            let dep = &p.departments[department];
            if let Some(step) = step {
                self.push(&format!(
                    r#""stepStarted":{{"stepId":"{step}","departmentId":"{}"}}"#,
                    dep.id
                ));
            }
            // Share of its allotment the department uses this time; now and then a file
            // gets lost on a desk.
            let mut pace = dep.pace * self.rng.range(0.5, 1.5);
            if self.rng.chance(0.02) {
                pace *= 2.5;
            }
            let secs = allotted * pace;
            if pace > worst.0 {
                worst = (pace, department);
            }
            used += secs;
            let split = self.rng.range(0.2, 0.7);
            if k == special_at && (withdraw || stuck) {
                self.work(secs * split);
                if withdraw {
                    self.push(r#""withdrawn":{"reason":"công dân yêu cầu rút hồ sơ"}"#);
                }
                return;
            }
            if k == special_at && supplement {
                self.work(secs * split);
                self.push(r#""supplementRequested":{"reason":"thiếu giấy tờ, đề nghị bổ sung"}"#);
                // The applicant takes from an hour to a week to bring the papers.
                let wait = self.rng.range(0.1, 5.0) * DAY;
                self.work(wait);
                self.push(r#""supplementReceived":{}"#);
                self.work(secs * (1.0 - split));
            } else {
                self.work(secs);
            }
            if let Some(step) = step {
                self.push(&format!(r#""stepCompleted":{{"stepId":"{step}"}}"#));
                self.work_between(0.0, 1800.0);
            }
        }
        // A late dossier sometimes gets its written apology (with a new appointment) from the
        // department at fault.
        let late = used > allowed;
        if late && self.rng.chance(0.4) {
            let new = self
                .cal
                .add_working_secs(self.t, (self.rng.range(0.5, 3.0) * DAY) as i64)
                .unwrap_or(self.t + 86_400);
            let new = chrono::DateTime::from_timestamp(new, 0)
                .unwrap_or_default()
                .with_timezone(&chrono::FixedOffset::east_opt(OFFSET_SECS).expect("valid offset"))
                .to_rfc3339_opts(SecondsFormat::Secs, false);
            self.push(&format!(
                r#""apologyIssued":{{"departmentId":"{}","newAppointment":"{new}","reason":"hồ sơ phức tạp, cần thêm thời gian thẩm định"}}"#,
                p.departments[worst.1].id
            ));
            self.work_between(60.0, 1800.0);
        }
        self.push(r#""resultReady":{}"#);
        // Returned to the applicant at the desk, by post or online; a few never collect it.
        if self.rng.chance(0.03) {
            return;
        }
        let wait = match channel {
            "CHANNEL_POSTAL" => self.rng.range(0.5, 3.0),
            "CHANNEL_ONLINE" => self.rng.range(0.0, 1.0),
            _ => self.rng.range(0.05, 2.0),
        };
        self.work(wait * DAY);
        self.push(r#""resultReturned":{}"#);
        if self.rng.chance(0.6) {
            let x = self.rng.unit();
            let level = if late {
                match x {
                    x if x < 0.15 => "SATISFACTION_LEVEL_SATISFIED",
                    x if x < 0.55 => "SATISFACTION_LEVEL_ACCEPTABLE",
                    _ => "SATISFACTION_LEVEL_DISSATISFIED",
                }
            } else {
                match x {
                    x if x < 0.5 => "SATISFACTION_LEVEL_VERY_SATISFIED",
                    x if x < 0.85 => "SATISFACTION_LEVEL_SATISFIED",
                    x if x < 0.97 => "SATISFACTION_LEVEL_ACCEPTABLE",
                    _ => "SATISFACTION_LEVEL_DISSATISFIED",
                }
            };
            let desk = &p.departments[agency.desk].id;
            let official = self.rng.below(6) + 1;
            // Rated on the tablet or Zalo minutes after the hand-over.
            self.t += self.rng.range(30.0, 900.0) as i64;
            self.push(&format!(
                r#""citizenRated":{{"officialId":"{desk}-cb-{official:02}","departmentId":"{desk}","level":"{level}"}}"#
            ));
        }
    }
}
