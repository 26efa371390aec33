//! One open dossier's state, the moments its rules fire at, and the rules themselves.

use dunghan_calendar::Calendar;

use crate::config::EngineConfig;
use crate::event::Channel;
use crate::raised::{Kind, Outcome};
use crate::CoreError;

/// No department / not set.
pub(crate) const NONE: u32 = u32::MAX;
/// No instant.
pub(crate) const NEVER: i64 = i64::MIN;

/// Dossier-level rules already fired (bits of `Dossier::fired`).
pub(crate) mod fired {
    pub(crate) const WARNING: u16 = 1;
    pub(crate) const DUE_SOON: u16 = 1 << 1;
    pub(crate) const APOLOGY_REQUIRED: u16 = 1 << 2;
    pub(crate) const APOLOGY_ISSUED: u16 = 1 << 3;
    pub(crate) const OVERDUE: u16 = 1 << 4;
    pub(crate) const SECOND_LATENESS: u16 = 1 << 5;
}

/// Step-level rules already fired (bits of `StepClock::fired`).
pub(crate) mod step_fired {
    pub(crate) const WARNING: u8 = 1;
    pub(crate) const LEVEL1: u8 = 1 << 1;
    pub(crate) const LEVEL2: u8 = 1 << 2;
}

/// Why the clock is stopped (bits of `Dossier::paused`).
pub(crate) mod pause {
    pub(crate) const SUPPLEMENT: u8 = 1;
    pub(crate) const FEES: u8 = 1 << 1;
}

/// A step in progress at one department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StepClock {
    /// Interned step id and department.
    pub(crate) step: u32,
    pub(crate) department: u32,
    /// 1 for the first time this step runs, 2 when it is sent back and runs again…
    pub(crate) attempt: u16,
    pub(crate) fired: u8,
    pub(crate) start: i64,
    pub(crate) due: i64,
    pub(crate) warn_at: i64,
    pub(crate) level2_at: i64,
}

/// An open dossier. Times are Unix seconds.
#[derive(Debug, Clone)]
pub(crate) struct Dossier {
    pub(crate) id: Box<str>,
    /// Index of the procedure version in the engine.
    pub(crate) procedure: u32,
    pub(crate) agency: u32,
    pub(crate) calendar: u16,
    pub(crate) channel: Channel,
    pub(crate) fired: u16,
    pub(crate) paused: u8,
    pub(crate) supplements: u8,
    /// The department at fault: whose step overran first.
    pub(crate) fault: u32,
    pub(crate) received: i64,
    /// Working seconds from start to the appointment, at receipt (for the warning share).
    pub(crate) allotted: i64,
    pub(crate) due: i64,
    pub(crate) statutory: i64,
    pub(crate) warn_at: i64,
    pub(crate) soon_at: i64,
    pub(crate) paused_since: i64,
    pub(crate) new_appointment: i64,
    pub(crate) ready_at: i64,
    pub(crate) steps: Vec<StepClock>,
    /// Interned ids of the steps completed, for attempt numbers.
    pub(crate) done_steps: Vec<u32>,
    /// Hashes of the event ids applied, to ignore redelivered duplicates.
    pub(crate) seen: Vec<u64>,
}

/// A rule whose moment has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    StepWarning(usize),
    StepLevel1(usize),
    StepLevel2(usize),
    Warning,
    DueSoon,
    Overdue,
    SecondLateness,
}

impl Dossier {
    /// Whether timers run: not paused and no result yet.
    pub(crate) fn clock_running(&self) -> bool {
        self.paused == 0 && self.ready_at == NEVER
    }

    /// The earliest rule not yet fired, with its moment (ties in rule order).
    pub(crate) fn next_rule(&self) -> Option<(i64, Rule)> {
        if !self.clock_running() {
            return None;
        }
        let mut best: Option<(i64, Rule)> = None;
        let mut consider = |t: i64, rule: Rule| {
            if t != NEVER && best.is_none_or(|(b, _)| t < b) {
                best = Some((t, rule));
            }
        };
        for (i, s) in self.steps.iter().enumerate() {
            if s.fired & step_fired::WARNING == 0 {
                consider(s.warn_at, Rule::StepWarning(i));
            }
            if s.fired & step_fired::LEVEL1 == 0 {
                consider(s.due, Rule::StepLevel1(i));
            }
            if s.fired & step_fired::LEVEL2 == 0 {
                consider(s.level2_at, Rule::StepLevel2(i));
            }
        }
        if self.fired & fired::WARNING == 0 {
            consider(self.warn_at, Rule::Warning);
        }
        if self.fired & fired::DUE_SOON == 0 {
            consider(self.soon_at, Rule::DueSoon);
        }
        if self.fired & fired::OVERDUE == 0 {
            consider(self.due, Rule::Overdue);
        }
        if self.fired & fired::SECOND_LATENESS == 0 && self.new_appointment != NEVER {
            consider(self.new_appointment, Rule::SecondLateness);
        }
        best
    }

    /// The moment the next rule fires, for the timer index.
    pub(crate) fn next_wakeup(&self) -> Option<i64> {
        self.next_rule().map(|(t, _)| t)
    }

    /// Recomputes the dossier-level warning moments from `due` and `allotted`.
    pub(crate) fn refresh_moments(
        &mut self,
        cal: &Calendar,
        cfg: &EngineConfig,
    ) -> Result<(), CoreError> {
        let remaining = ((1.0 - cfg.warning_fraction) * self.allotted as f64).round() as i64;
        self.warn_at = cal.add_working_secs(self.due, -remaining)?;
        let lead = cal.days_to_secs(cfg.apology_lead_days)?;
        // A dossier allowed no more than the lead (a same-day certification) would need its
        // apology at receipt; it is required when the deadline passes instead.
        self.soon_at = if self.allotted > lead {
            cal.add_working_secs(self.due, -lead)?
        } else {
            self.due
        };
        Ok(())
    }

    /// Moves every pending moment later by `paused` working seconds (a pause ended).
    /// Steps started during the pause started with a full clock and are left alone.
    pub(crate) fn shift(
        &mut self,
        cal: &Calendar,
        paused: i64,
        pause_start: i64,
    ) -> Result<(), CoreError> {
        if paused <= 0 {
            return Ok(());
        }
        for t in [
            &mut self.due,
            &mut self.statutory,
            &mut self.warn_at,
            &mut self.soon_at,
        ] {
            *t = cal.add_working_secs(*t, paused)?;
        }
        for s in self.steps.iter_mut().filter(|s| s.start < pause_start) {
            s.due = cal.add_working_secs(s.due, paused)?;
            s.warn_at = cal.add_working_secs(s.warn_at, paused)?;
            s.level2_at = cal.add_working_secs(s.level2_at, paused)?;
        }
        Ok(())
    }

    /// The department an apology or escalation names: whose step overran, else the one
    /// holding the dossier (the latest step in progress), else none (the desk).
    pub(crate) fn department_at_fault(&self) -> u32 {
        if self.fault != NONE {
            return self.fault;
        }
        self.steps.last().map_or(NONE, |s| s.department)
    }

    /// Outcome by date (domain.md §6): early before the due date, on time on it, late after;
    /// more than one supplement request counts as late. Lateness in working seconds.
    /// Also whether it was finished on a date before the due date (the early-result notice
    /// goes by date even when statistics count the dossier late).
    pub(crate) fn outcome(&self, cal: &Calendar, finished: i64) -> Result<Finish, CoreError> {
        let (done, due) = (cal.local_date(finished), cal.local_date(self.due));
        let lateness = if finished > self.due {
            cal.working_secs_between(self.due, finished)?
        } else {
            0
        };
        let by_date = match done.cmp(&due) {
            std::cmp::Ordering::Less => Outcome::Early,
            std::cmp::Ordering::Equal => Outcome::OnTime,
            std::cmp::Ordering::Greater => Outcome::Late,
        };
        let (outcome, note) = if self.supplements > 1 {
            (
                Outcome::Late,
                "more than one supplement request counts as late",
            )
        } else {
            (by_date, "")
        };
        Ok(Finish {
            outcome,
            lateness,
            note,
            before_due_date: by_date == Outcome::Early,
        })
    }

    /// Approximate bytes this dossier occupies (struct plus its heap parts).
    pub(crate) fn bytes(&self) -> usize {
        std::mem::size_of::<Dossier>()
            + self.id.len()
            + self.steps.capacity() * std::mem::size_of::<StepClock>()
            + self.done_steps.capacity() * 4
            + self.seen.capacity() * 8
    }
}

/// How a finished dossier did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Finish {
    pub(crate) outcome: Outcome,
    /// Working seconds late (0 if not late).
    pub(crate) lateness: i64,
    pub(crate) note: &'static str,
    pub(crate) before_due_date: bool,
}

/// What a fired rule raises: kind, level, and whether it names a step.
pub(crate) fn rule_kind(rule: Rule) -> (Kind, u32) {
    match rule {
        Rule::StepWarning(_) => (Kind::Warning, 1),
        Rule::StepLevel1(_) => (Kind::Escalation, 1),
        Rule::StepLevel2(_) => (Kind::Escalation, 2),
        Rule::Warning => (Kind::Warning, 1),
        Rule::DueSoon => (Kind::Warning, 2),
        Rule::Overdue => (Kind::Escalation, 3),
        Rule::SecondLateness => (Kind::Escalation, 2),
    }
}
