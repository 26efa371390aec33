//! Dossier lifecycle events (domain.md §3), in the engine's own types.

use crate::allowed::TimeAllowed;

/// How the dossier was filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum Channel {
    #[default]
    Unspecified,
    /// At a one-stop desk (Bộ phận Một cửa).
    Counter,
    /// On the national portal, Zalo or a provincial portal.
    Online,
    Postal,
}

impl Channel {
    /// Label value for metrics and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Unspecified => "unspecified",
            Channel::Counter => "counter",
            Channel::Online => "online",
            Channel::Postal => "postal",
        }
    }
}

/// A citizen's rating of an official.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Satisfaction {
    VerySatisfied,
    Satisfied,
    Acceptable,
    Dissatisfied,
}

impl Satisfaction {
    pub const ALL: [Satisfaction; 4] = [
        Satisfaction::VerySatisfied,
        Satisfaction::Satisfied,
        Satisfaction::Acceptable,
        Satisfaction::Dissatisfied,
    ];

    /// Satisfied or better counts towards the satisfaction rate (domain.md §7).
    pub fn is_satisfied(self) -> bool {
        matches!(self, Satisfaction::VerySatisfied | Satisfaction::Satisfied)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Satisfaction::VerySatisfied => "very_satisfied",
            Satisfaction::Satisfied => "satisfied",
            Satisfaction::Acceptable => "acceptable",
            Satisfaction::Dissatisfied => "dissatisfied",
        }
    }
}

/// What happened to the dossier.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Received at the desk (status 2, Được tiếp nhận).
    Received {
        procedure_code: String,
        agency_id: String,
        office_id: String,
        channel: Channel,
    },
    /// Handed over to a department for a step; `allotment` overrides the catalog's.
    StepStarted {
        step_id: String,
        department_id: String,
        allotment: Option<TimeAllowed>,
    },
    StepCompleted {
        step_id: String,
    },
    SupplementRequested {
        reason: String,
    },
    SupplementReceived,
    FeesRequested,
    FeesPaid,
    /// Processing stopped (status 8, Dừng xử lý): ends the dossier without an outcome.
    ProcessingStopped {
        reason: String,
    },
    /// The apology (phiếu xin lỗi) was issued, with the new appointment.
    ApologyIssued {
        department_id: String,
        new_appointment: Option<i64>,
        reason: String,
    },
    /// Result ready (status 9, Đã xử lý xong): the dossier is finished.
    ResultReady,
    /// Result returned to the applicant (status 10).
    ResultReturned,
    Withdrawn {
        reason: String,
    },
    Refused {
        reason: String,
    },
    CitizenRated {
        official_id: String,
        department_id: String,
        level: Satisfaction,
    },
}

impl Payload {
    /// Short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Payload::Received { .. } => "received",
            Payload::StepStarted { .. } => "step_started",
            Payload::StepCompleted { .. } => "step_completed",
            Payload::SupplementRequested { .. } => "supplement_requested",
            Payload::SupplementReceived => "supplement_received",
            Payload::FeesRequested => "fees_requested",
            Payload::FeesPaid => "fees_paid",
            Payload::ProcessingStopped { .. } => "processing_stopped",
            Payload::ApologyIssued { .. } => "apology_issued",
            Payload::ResultReady => "result_ready",
            Payload::ResultReturned => "result_returned",
            Payload::Withdrawn { .. } => "withdrawn",
            Payload::Refused { .. } => "refused",
            Payload::CitizenRated { .. } => "citizen_rated",
        }
    }
}

/// One lifecycle event of one dossier. `occurred_at` is Unix seconds (event time).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub dossier_id: String,
    pub occurred_at: i64,
    pub payload: Payload,
}
