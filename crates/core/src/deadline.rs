//! Deadline policy (domain.md §5): when counting starts, and where each unit of time ends.

use dunghan_calendar::{Anchor, Calendar};
use serde::Serialize;

use crate::allowed::TimeAllowed;
use crate::procedure::Procedure;
use crate::CoreError;

/// Why counting started later than the receipt instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "rule")]
pub enum StartNote {
    /// Received during working hours: counting starts at once.
    AsReceived,
    /// Received outside working hours: counting starts with the next working session.
    OutsideWorkingHours,
    /// Received at or after the procedure's cut-off: counting starts the next working day.
    AfterCutoff {
        #[serde(serialize_with = "as_clock")]
        cutoff: u32,
    },
}

fn as_clock<S: serde::Serializer>(secs: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&dunghan_calendar::hours::clock(*secs))
}

/// When counting starts for a dossier received at `received` (Unix seconds).
pub fn effective_start(
    cal: &Calendar,
    received: i64,
    cutoff: Option<u32>,
) -> Result<(i64, StartNote), CoreError> {
    if let Some(cutoff) = cutoff {
        let second_of_day = cal.local_secs(received).rem_euclid(86_400) as u32;
        if second_of_day >= cutoff && cal.end_of_day_ts(received)?.is_some() {
            let start = cal.next_working_day_start_ts(received)?;
            return Ok((start, StartNote::AfterCutoff { cutoff }));
        }
    }
    let start = cal.next_working_ts(received)?;
    let note = if start == received {
        StartNote::AsReceived
    } else {
        StartNote::OutsideWorkingHours
    };
    Ok((start, note))
}

/// Where `allowed` ends when counting starts at `start`.
pub fn due(
    cal: &Calendar,
    start: i64,
    allowed: TimeAllowed,
    anchor: Anchor,
) -> Result<i64, CoreError> {
    allowed.validate().map_err(CoreError::Duration)?;
    Ok(match allowed {
        TimeAllowed::WorkingDays(n) => cal.add_working_days_ts(start, n, anchor)?,
        TimeAllowed::WorkingHours(h) => cal.add_working_secs(start, (h * 3600.0).round() as i64)?,
        TimeAllowed::CalendarDays(n) => cal.add_calendar_days_ts(start, n as i64, anchor)?,
        TimeAllowed::Months(n) => cal.add_months_ts(start, n, anchor)?,
        TimeAllowed::SameDay { .. } => cal.end_of_this_or_next_working_day_ts(start)?,
    })
}

/// The planned deadline of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepDeadline {
    pub id: String,
    pub department: String,
    /// Planned start: the previous step's deadline (or the dossier's start).
    pub start: i64,
    pub due: i64,
}

/// A dossier's deadlines as printed on the appointment slip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deadlines {
    pub received: i64,
    pub start: i64,
    pub start_note: StartNote,
    /// The legal ceiling.
    pub statutory: i64,
    /// The appointment (reduced time if the province publishes one).
    pub appointment: i64,
    pub steps: Vec<StepDeadline>,
}

/// Statutory, reduced and planned step deadlines of a dossier received at `received`.
pub fn procedure_deadlines(
    cal: &Calendar,
    procedure: &Procedure,
    received: i64,
) -> Result<Deadlines, CoreError> {
    let (start, start_note) = effective_start(cal, received, procedure.effective_cutoff())?;
    let statutory = due(cal, start, procedure.statutory, procedure.anchor)?;
    let appointment = due(cal, start, procedure.appointment(), procedure.anchor)?;
    let mut steps = Vec::with_capacity(procedure.steps.len());
    let mut step_start = start;
    for step in &procedure.steps {
        let step_due = due(cal, step_start, step.allotted, Anchor::SameClockTime)?;
        steps.push(StepDeadline {
            id: step.id.clone(),
            department: step.department.clone(),
            start: step_start,
            due: step_due,
        });
        step_start = step_due;
    }
    Ok(Deadlines {
        received,
        start,
        start_note,
        statutory,
        appointment,
        steps,
    })
}

/// A deadline moved by a pause (supplement request, fee wait) from `from` to `to`: the
/// working time paused is added to it (mode PAUSE).
pub fn paused_deadline(
    cal: &Calendar,
    deadline: i64,
    from: i64,
    to: i64,
) -> Result<i64, CoreError> {
    let paused = cal.working_secs_between(from, to)?.max(0);
    Ok(cal.add_working_secs(deadline, paused)?)
}
