//! Conversions between the wire types (dunghan.v1 protobuf / proto3 JSON) and the engine's.

use dunghan_core::{Channel, Event, Kind, Outcome, Payload, Raised, Satisfaction, TimeAllowed};
use dunghan_proto::pbjson_types::{Duration, Timestamp};
use dunghan_proto::v1;

/// Why a decoded event cannot be given to the engine (missing or impossible fields).
pub(crate) fn to_event(e: v1::DossierEvent) -> Result<Event, String> {
    use v1::dossier_event::Payload as P;
    if e.event_id.trim().is_empty() {
        return Err("eventId is missing".into());
    }
    if e.dossier_id.trim().is_empty() {
        return Err(format!("event {}: dossierId is missing", e.event_id));
    }
    let occurred_at = match e.occurred_at {
        Some(t) if (0..1_000_000_000).contains(&t.nanos) => t.seconds,
        Some(t) => {
            return Err(format!(
                "event {}: occurredAt has {} nanoseconds",
                e.event_id, t.nanos
            ))
        }
        None => return Err(format!("event {}: occurredAt is missing", e.event_id)),
    };
    let payload = match e.payload {
        None => {
            return Err(format!(
                "event {}: no payload (received, stepStarted, …)",
                e.event_id
            ))
        }
        Some(P::Received(r)) => {
            if r.procedure_code.trim().is_empty() {
                return Err(format!(
                    "event {}: received.procedureCode is missing",
                    e.event_id
                ));
            }
            Payload::Received {
                channel: channel(r.channel()),
                procedure_code: r.procedure_code,
                agency_id: r.agency_id,
                office_id: r.office_id,
            }
        }
        Some(P::StepStarted(s)) => {
            if s.step_id.trim().is_empty() {
                return Err(format!(
                    "event {}: stepStarted.stepId is missing",
                    e.event_id
                ));
            }
            let allotment = match s.allotment {
                None => None,
                Some(d) => Some(allotment(d).ok_or_else(|| {
                    format!(
                        "event {}: stepStarted.allotment gives no amount",
                        e.event_id
                    )
                })?),
            };
            Payload::StepStarted {
                step_id: s.step_id,
                department_id: s.department_id,
                allotment,
            }
        }
        Some(P::StepCompleted(s)) => Payload::StepCompleted { step_id: s.step_id },
        Some(P::SupplementRequested(s)) => Payload::SupplementRequested { reason: s.reason },
        Some(P::SupplementReceived(_)) => Payload::SupplementReceived,
        Some(P::FeesRequested(_)) => Payload::FeesRequested,
        Some(P::FeesPaid(_)) => Payload::FeesPaid,
        Some(P::ProcessingStopped(s)) => Payload::ProcessingStopped { reason: s.reason },
        Some(P::ApologyIssued(a)) => Payload::ApologyIssued {
            department_id: a.department_id,
            new_appointment: a.new_appointment.map(|t| t.seconds),
            reason: a.reason,
        },
        Some(P::ResultReady(_)) => Payload::ResultReady,
        Some(P::ResultReturned(_)) => Payload::ResultReturned,
        Some(P::Withdrawn(w)) => Payload::Withdrawn { reason: w.reason },
        Some(P::Refused(r)) => Payload::Refused { reason: r.reason },
        Some(P::CitizenRated(r)) => {
            let level = match r.level() {
                v1::SatisfactionLevel::VerySatisfied => Satisfaction::VerySatisfied,
                v1::SatisfactionLevel::Satisfied => Satisfaction::Satisfied,
                v1::SatisfactionLevel::Acceptable => Satisfaction::Acceptable,
                v1::SatisfactionLevel::Dissatisfied => Satisfaction::Dissatisfied,
                v1::SatisfactionLevel::Unspecified => {
                    return Err(format!(
                        "event {}: citizenRated.level is missing",
                        e.event_id
                    ))
                }
            };
            Payload::CitizenRated {
                official_id: r.official_id,
                department_id: r.department_id,
                level,
            }
        }
    };
    Ok(Event {
        event_id: e.event_id,
        dossier_id: e.dossier_id,
        occurred_at,
        payload,
    })
}

pub(crate) fn allotment(d: v1::Duration) -> Option<TimeAllowed> {
    use v1::duration::Amount;
    Some(match d.amount? {
        Amount::WorkingDays(n) => TimeAllowed::WorkingDays(n),
        Amount::WorkingHours(n) => TimeAllowed::WorkingHours(n),
        Amount::CalendarDays(n) => TimeAllowed::CalendarDays(n),
        Amount::Months(n) => TimeAllowed::Months(n),
    })
}

fn channel(c: v1::Channel) -> Channel {
    match c {
        v1::Channel::Unspecified => Channel::Unspecified,
        v1::Channel::Counter => Channel::Counter,
        v1::Channel::Online => Channel::Online,
        v1::Channel::Postal => Channel::Postal,
    }
}

fn timestamp(t: i64) -> Timestamp {
    Timestamp {
        seconds: t,
        nanos: 0,
    }
}

/// The wire kind of a raised event's kind.
pub(crate) fn sla_kind(kind: Kind) -> v1::SlaEventKind {
    match kind {
        Kind::DeadlineComputed => v1::SlaEventKind::DeadlineComputed,
        Kind::Warning => v1::SlaEventKind::Warning,
        Kind::Escalation => v1::SlaEventKind::Escalation,
        Kind::ApologyRequired => v1::SlaEventKind::ApologyRequired,
        Kind::ApologyOverdue => v1::SlaEventKind::ApologyOverdue,
        Kind::EarlyResult => v1::SlaEventKind::EarlyResult,
        Kind::DeadlineShifted => v1::SlaEventKind::DeadlineShifted,
        Kind::Outcome => v1::SlaEventKind::Outcome,
        Kind::Rejected => v1::SlaEventKind::Rejected,
    }
}

/// The wire outcome of a raised event's outcome.
pub(crate) fn sla_outcome(outcome: Option<Outcome>) -> v1::Outcome {
    match outcome {
        None => v1::Outcome::Unspecified,
        Some(Outcome::Early) => v1::Outcome::Early,
        Some(Outcome::OnTime) => v1::Outcome::OnTime,
        Some(Outcome::Late) => v1::Outcome::Late,
    }
}

/// The wire channel of a dossier's channel.
pub(crate) fn sla_channel(channel: Channel) -> v1::Channel {
    match channel {
        Channel::Unspecified => v1::Channel::Unspecified,
        Channel::Counter => v1::Channel::Counter,
        Channel::Online => v1::Channel::Online,
        Channel::Postal => v1::Channel::Postal,
    }
}

/// The wire form of a raised event (`kafka::protobuf::encode_raised` writes the same
/// bytes without building it).
pub(crate) fn to_sla_event(r: &Raised) -> v1::SlaEvent {
    let kind = sla_kind(r.kind());
    let outcome = sla_outcome(r.outcome);
    let channel = sla_channel(r.channel);
    // `String::from(&*…)`, not `to_string()`: for a shared `Arc<str>` the latter goes
    // through `Display` (about a sixth of the conversion's cost, six fields per event).
    v1::SlaEvent {
        id: r.id.clone(),
        dossier_id: String::from(&*r.dossier_id),
        kind: kind as i32,
        raised_at: Some(timestamp(r.raised_at)),
        agency_id: String::from(&*r.agency_id),
        department_id: String::from(&*r.department_id),
        step_id: String::from(&*r.step_id),
        level: r.level,
        deadline: r.deadline.map(timestamp),
        outcome: outcome as i32,
        lateness: r.lateness.filter(|l| *l > 0).map(|s| Duration {
            seconds: s,
            nanos: 0,
        }),
        reason: String::from(&*r.reason),
        procedure_code: String::from(&*r.procedure_code),
        field: String::from(&*r.field),
        channel: channel as i32,
        event_id: r.event_id.clone(),
        statutory_deadline: r.statutory_deadline.map(timestamp),
        reject_reason: r
            .reject_reason
            .map(|x| x.as_str().to_owned())
            .unwrap_or_default(),
    }
}
