//! One open dossier's state, the moments its rules fire at, and the rules themselves.
//!
//! Kept compact (the engine holds millions): times are `u32` Unix seconds ([`T32`], valid
//! 1970–2106), ids are interned `u32`s, and the first step in progress and the first event-id
//! hashes live inline rather than in heap allocations of their own.

use dunghan_calendar::Calendar;
use smallvec::SmallVec;

use crate::config::EngineConfig;
use crate::event::Channel;
use crate::raised::{Kind, Outcome};
use crate::CoreError;

/// No department / not set.
pub(crate) const NONE: u32 = u32::MAX;
/// No instant (in the engine's `i64` arithmetic).
pub(crate) const NEVER: i64 = i64::MIN;

/// An instant stored in 32 bits: Unix seconds, or "never".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct T32(u32);

impl T32 {
    pub(crate) const NEVER: T32 = T32(u32::MAX);

    /// Whether `t` can be stored (1970-01-01 to 2106-02-07).
    pub(crate) fn fits(t: i64) -> bool {
        (0..u32::MAX as i64).contains(&t)
    }

    /// Stores `t` (saturating at the ends of the range: input is checked with [`T32::fits`]).
    pub(crate) fn of(t: i64) -> T32 {
        if t == NEVER {
            T32::NEVER
        } else {
            T32(t.clamp(0, u32::MAX as i64 - 1) as u32)
        }
    }

    pub(crate) fn get(self) -> i64 {
        if self.is_never() {
            NEVER
        } else {
            self.0 as i64
        }
    }

    pub(crate) fn is_never(self) -> bool {
        self == T32::NEVER
    }
}

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
    pub(crate) start: T32,
    pub(crate) due: T32,
    pub(crate) warn_at: T32,
    pub(crate) level2_at: T32,
}

/// An open dossier.
#[derive(Debug, Clone)]
pub(crate) struct Dossier {
    /// Shared with the events raised about it.
    pub(crate) id: std::sync::Arc<str>,
    /// Index of the procedure version in the engine.
    pub(crate) procedure: u32,
    pub(crate) agency: u32,
    /// Interned receiving office (its calendar layer), NONE for the province's.
    pub(crate) office: u32,
    /// The department at fault: whose step overran first.
    pub(crate) fault: u32,
    /// Working seconds from start to the appointment, at receipt (for the warning share).
    pub(crate) allotted: u32,
    pub(crate) calendar: u16,
    pub(crate) fired: u16,
    pub(crate) channel: Channel,
    pub(crate) paused: u8,
    pub(crate) supplements: u8,
    pub(crate) received: T32,
    pub(crate) due: T32,
    pub(crate) statutory: T32,
    pub(crate) warn_at: T32,
    pub(crate) soon_at: T32,
    pub(crate) paused_since: T32,
    pub(crate) new_appointment: T32,
    pub(crate) ready_at: T32,
    /// Steps in progress (usually one).
    pub(crate) steps: SmallVec<[StepClock; 1]>,
    /// Interned ids of the steps completed, for attempt numbers.
    pub(crate) done_steps: SmallVec<[u32; 2]>,
    /// Hashes of the event ids applied, to ignore redelivered duplicates.
    pub(crate) seen: SmallVec<[u64; 2]>,
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
    /// Records an applied event's id hash (once).
    pub(crate) fn see(&mut self, hash: u64) {
        if !self.seen.contains(&hash) {
            self.seen.push(hash);
        }
    }

    /// Whether timers run: not paused and no result yet.
    pub(crate) fn clock_running(&self) -> bool {
        self.paused == 0 && self.ready_at.is_never()
    }

    /// The earliest rule not yet fired, with its moment (ties in rule order).
    pub(crate) fn next_rule(&self) -> Option<(i64, Rule)> {
        if !self.clock_running() {
            return None;
        }
        let mut best: Option<(i64, Rule)> = None;
        let mut consider = |t: T32, rule: Rule| {
            let t = t.get();
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
        if self.fired & fired::SECOND_LATENESS == 0 {
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
        let due = self.due.get();
        self.warn_at = T32::of(cal.add_working_secs(due, -remaining)?);
        let lead = cal.days_to_secs(cfg.apology_lead_days)?;
        // A dossier allowed no more than the lead (a same-day certification) would need its
        // apology at receipt; it is required when the deadline passes instead.
        self.soon_at = if self.allotted as i64 > lead {
            T32::of(cal.add_working_secs(due, -lead)?)
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
        let later = |t: &mut T32| -> Result<(), CoreError> {
            *t = T32::of(cal.add_working_secs(t.get(), paused)?);
            Ok(())
        };
        later(&mut self.due)?;
        later(&mut self.statutory)?;
        later(&mut self.warn_at)?;
        later(&mut self.soon_at)?;
        self.shift_steps(cal, paused, pause_start)
    }

    /// Moves the moments of the steps started before `pause_start` later by `paused`.
    pub(crate) fn shift_steps(
        &mut self,
        cal: &Calendar,
        paused: i64,
        pause_start: i64,
    ) -> Result<(), CoreError> {
        for s in self
            .steps
            .iter_mut()
            .filter(|s| s.start.get() < pause_start)
        {
            for t in [&mut s.due, &mut s.warn_at, &mut s.level2_at] {
                *t = T32::of(cal.add_working_secs(t.get(), paused)?);
            }
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
        let due_at = self.due.get();
        let (done, due) = (cal.local_date(finished), cal.local_date(due_at));
        let lateness = if finished > due_at {
            cal.working_secs_between(due_at, finished)?
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

    /// Approximate bytes this dossier occupies: the struct, its id, and whatever spilled
    /// from the inline step and hash storage to the heap.
    pub(crate) fn bytes(&self) -> usize {
        let spilled = |cap: usize, inline: usize, each: usize| {
            if cap > inline {
                cap * each
            } else {
                0
            }
        };
        // The id's allocation holds the two reference counts before the text.
        std::mem::size_of::<Dossier>()
            + 16
            + self.id.len()
            + spilled(self.steps.capacity(), 1, std::mem::size_of::<StepClock>())
            + spilled(self.done_steps.capacity(), 2, 4)
            + spilled(self.seen.capacity(), 2, 8)
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
