//! Raised SLA events: what the engine tells desks, departments, leaders and applicants.

use std::borrow::Cow;
use std::sync::Arc;

use crate::event::Channel;

/// The kind of a raised event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    DeadlineComputed,
    /// Due soon (sắp đến hạn): a share of the allotted time is used, or due within a working day.
    Warning,
    /// Level 1 department head, 2 agency leader, 3 one-stop centre director / province.
    Escalation,
    /// The mandatory apology (Decree 61 Art. 19) must be issued.
    ApologyRequired,
    ApologyOverdue,
    /// Result ready before the due date: tell the applicant to collect it.
    EarlyResult,
    DeadlineShifted,
    Outcome,
    Rejected,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::DeadlineComputed,
        Kind::Warning,
        Kind::Escalation,
        Kind::ApologyRequired,
        Kind::ApologyOverdue,
        Kind::EarlyResult,
        Kind::DeadlineShifted,
        Kind::Outcome,
        Kind::Rejected,
    ];

    /// Stable lower-case name, used in ids and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DeadlineComputed => "deadline_computed",
            Kind::Warning => "warning",
            Kind::Escalation => "escalation",
            Kind::ApologyRequired => "apology_required",
            Kind::ApologyOverdue => "apology_overdue",
            Kind::EarlyResult => "early_result",
            Kind::DeadlineShifted => "deadline_shifted",
            Kind::Outcome => "outcome",
            Kind::Rejected => "rejected",
        }
    }
}

/// How a finished dossier did, by date as official statistics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Finished on a date before the due date (trước hạn).
    Early,
    /// Finished on the due date (đúng hạn).
    OnTime,
    /// Finished after the due date (quá hạn).
    Late,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Early => "early",
            Outcome::OnTime => "on_time",
            Outcome::Late => "late",
        }
    }
}

/// Why input was refused; bounded, so it can label metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The input could not be decoded (bad JSON or protobuf, missing fields).
    Malformed,
    UnknownDossier,
    UnknownProcedure,
    UnknownStep,
    AlreadyReceived,
    AfterEnd,
    BeforeReceipt,
    FutureTimestamp,
    /// Outside the calendar's years, or a time the calendar cannot place.
    OutOfCalendar,
    InvalidValue,
    SecondAppointment,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::UnknownDossier => "unknown_dossier",
            RejectReason::UnknownProcedure => "unknown_procedure",
            RejectReason::UnknownStep => "unknown_step",
            RejectReason::AlreadyReceived => "already_received",
            RejectReason::AfterEnd => "after_end",
            RejectReason::BeforeReceipt => "before_receipt",
            RejectReason::FutureTimestamp => "future_timestamp",
            RejectReason::OutOfCalendar => "out_of_calendar",
            RejectReason::InvalidValue => "invalid_value",
            RejectReason::SecondAppointment => "second_appointment",
        }
    }
}

/// A raised SLA event. Times are Unix seconds; `raised_at` is the event-time moment the rule
/// fired, never the wall clock.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Raised {
    /// Deterministic: dossier, kind, step, level (and the causing event for kinds that recur).
    pub id: String,
    pub dossier_id: Arc<str>,
    pub kind: Option<Kind>,
    pub raised_at: i64,
    /// Shared with the engine's tables: cloning a raised event does not copy it.
    pub agency_id: Arc<str>,
    pub department_id: Arc<str>,
    pub step_id: Arc<str>,
    pub level: u32,
    pub deadline: Option<i64>,
    pub statutory_deadline: Option<i64>,
    pub outcome: Option<Outcome>,
    /// Working seconds late (0 when not late).
    pub lateness: Option<i64>,
    /// Static for rule firings, owned for rejections and explanations.
    pub reason: Cow<'static, str>,
    pub procedure_code: Arc<str>,
    pub field: Arc<str>,
    pub channel: Channel,
    /// The input event that caused (or armed) this one.
    pub event_id: String,
    /// Set on `Rejected`.
    pub reject_reason: Option<RejectReason>,
}

impl Raised {
    /// The kind (always set by the engine).
    pub fn kind(&self) -> Kind {
        self.kind.unwrap_or(Kind::Rejected)
    }

    /// A rejection of input: `dossier_id` may be empty when the input could not be decoded.
    pub fn rejected(
        dossier_id: &str,
        event_id: &str,
        at: i64,
        reason: RejectReason,
        message: String,
    ) -> Raised {
        let dossier = if dossier_id.is_empty() {
            "-"
        } else {
            dossier_id
        };
        Raised {
            id: format!("{dossier}:rejected:{event_id}"),
            dossier_id: Arc::from(dossier_id),
            kind: Some(Kind::Rejected),
            raised_at: at,
            reason: Cow::Owned(message),
            event_id: event_id.to_owned(),
            reject_reason: Some(reason),
            ..Raised::default()
        }
    }
}

/// The deterministic id of a raised event: `dossier:kind:step:level` (built without the
/// formatting machinery: it is on the hot path).
pub fn raised_id(dossier: &str, kind: Kind, step: &str, level: u32) -> String {
    let step = if step.is_empty() { "-" } else { step };
    let kind = kind.as_str();
    let mut id = String::with_capacity(dossier.len() + kind.len() + step.len() + 6);
    id.push_str(dossier);
    id.push(':');
    id.push_str(kind);
    id.push(':');
    id.push_str(step);
    id.push(':');
    if level < 10 {
        id.push(char::from(b'0' + level as u8));
    } else {
        id.push_str(&level.to_string());
    }
    id
}
