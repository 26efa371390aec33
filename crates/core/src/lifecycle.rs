//! How each lifecycle event changes an open dossier (domain.md §3, §5, §6).
//!
//! Out-of-order events are applied with their own event time where meaning allows: an
//! event before the dossier's receipt is refused; a pause that ends before it began pauses
//! nothing; a result whose time is before rules that already fired keeps its own time for
//! the outcome and lateness, but raised events are never taken back.

use crate::deadline::{due, effective_start, procedure_deadlines};
use crate::dossier::{pause, Dossier, StepClock, NONE, T32};
use crate::engine::{fmt, Engine, Refusal};
use crate::event::{Event, Payload};
use crate::procedure::SupplementMode;
use crate::raised::{Kind, Raised, RejectReason};
use crate::{CoreError, TimeAllowed};
use dunghan_calendar::Anchor;
use smallvec::SmallVec;

fn calendar_refusal(e: CoreError) -> Refusal {
    let reason = match e {
        CoreError::UnknownProcedure(_) | CoreError::NotInForce { .. } => {
            RejectReason::UnknownProcedure
        }
        CoreError::Duration(_) => RejectReason::InvalidValue,
        _ => RejectReason::OutOfCalendar,
    };
    (reason, e.to_string())
}

fn invalid(msg: String) -> Refusal {
    (RejectReason::InvalidValue, msg)
}

impl Engine {
    /// DossierReceived: compute the deadlines and open the dossier.
    pub(crate) fn receive(
        &mut self,
        event: &Event,
        hash: u64,
        out: &mut Vec<Raised>,
    ) -> Result<(), Refusal> {
        let Payload::Received {
            procedure_code,
            agency_id,
            office_id,
            channel,
        } = &event.payload
        else {
            unreachable!("receive is called for Received only");
        };
        let t = event.occurred_at;
        let calendar = self.calendar_for(office_id);
        let cal = self.calendars[calendar as usize].clone();
        if cal.worked_until(t).is_err() {
            return Err((
                RejectReason::OutOfCalendar,
                format!("occurred_at {} is outside the calendar's years", fmt(t)),
            ));
        }
        let procedure = self
            .procedure_for(procedure_code, cal.local_date(t))
            .map_err(calendar_refusal)?;
        let p = &self.procedures[procedure as usize];
        let agency = if agency_id.is_empty() {
            p.agency.clone()
        } else {
            agency_id.clone()
        };
        let d = procedure_deadlines(&cal, p, t).map_err(calendar_refusal)?;
        let allotted = cal
            .working_secs_between(d.start, d.appointment)
            .map_err(|e| calendar_refusal(e.into()))?;
        let explanation = self.procedure_allowed[procedure as usize].clone();
        let mut dossier = Dossier {
            id: event.dossier_id.as_str().into(),
            procedure,
            agency: self.names.intern(&agency),
            calendar,
            office: if office_id.is_empty() {
                NONE
            } else {
                self.names.intern(office_id)
            },
            channel: *channel,
            fired: 0,
            paused: 0,
            supplements: 0,
            fault: NONE,
            received: T32::of(t),
            allotted: allotted.clamp(0, u32::MAX as i64) as u32,
            due: T32::of(d.appointment),
            statutory: T32::of(d.statutory),
            warn_at: T32::NEVER,
            soon_at: T32::NEVER,
            paused_since: T32::NEVER,
            new_appointment: T32::NEVER,
            ready_at: T32::NEVER,
            steps: SmallVec::new(),
            done_steps: SmallVec::new(),
            seen: smallvec::smallvec![hash],
        };
        dossier
            .refresh_moments(&cal, &self.cfg)
            .map_err(calendar_refusal)?;
        let agency = dossier.agency;
        let slot = self.insert(dossier);
        self.agency_stats(agency).received += 1;
        let mut raised = self.raise(slot, Kind::DeadlineComputed, "", NONE, 0, t);
        raised.event_id = event.event_id.clone();
        raised.reason = explanation.into();
        out.push(raised);
        Ok(())
    }

    /// Any other event for an open dossier.
    pub(crate) fn lifecycle(
        &mut self,
        slot: u32,
        event: &Event,
        out: &mut Vec<Raised>,
    ) -> Result<(), Refusal> {
        let t = event.occurred_at;
        let cal = self.calendar_of(slot);
        match &event.payload {
            Payload::Received { .. } => unreachable!("handled by the caller"),
            Payload::StepStarted {
                step_id,
                department_id,
                allotment,
            } => {
                let d = self.dossier(slot);
                let p = &self.procedures[d.procedure as usize];
                let planned = p.steps.iter().find(|s| &s.id == step_id);
                let allotted: TimeAllowed = match (allotment, planned) {
                    (Some(a), _) => {
                        a.validate().map_err(|m| invalid(format!("step {step_id} allotment: {m}")))?;
                        *a
                    }
                    (None, Some(s)) => s.allotted,
                    (None, None) => {
                        return Err((
                            RejectReason::UnknownStep,
                            format!(
                                "step `{step_id}` is not a step of procedure {} and the event gives no allotment",
                                p.code
                            ),
                        ))
                    }
                };
                let department = match (department_id.as_str(), planned) {
                    ("", Some(s)) => s.department.clone(),
                    ("", None) => {
                        return Err(invalid(format!("step `{step_id}` names no department")))
                    }
                    (dep, _) => dep.to_owned(),
                };
                let step = self.names.intern(step_id);
                let d = self.dossier(slot);
                if d.steps.iter().any(|s| s.step == step) {
                    return Err(invalid(format!("step `{step_id}` is already in progress")));
                }
                let attempt = 1 + d.done_steps.iter().filter(|&&s| s == step).count() as u16;
                let step_due =
                    due(&cal, t, allotted, Anchor::SameClockTime).map_err(calendar_refusal)?;
                let span = cal
                    .working_secs_between(t, step_due)
                    .map_err(|e| calendar_refusal(e.into()))?;
                let warn_at = cal
                    .add_working_secs(t, (self.cfg.warning_fraction * span as f64).round() as i64)
                    .map_err(|e| calendar_refusal(e.into()))?;
                let delay = cal
                    .days_to_secs(self.cfg.escalation_level2_delay_days)
                    .map_err(|e| calendar_refusal(e.into()))?;
                let level2_at = cal
                    .add_working_secs(step_due, delay)
                    .map_err(|e| calendar_refusal(e.into()))?;
                let department = self.names.intern(&department);
                self.dossier_mut(slot).steps.push(StepClock {
                    step,
                    department,
                    attempt,
                    fired: 0,
                    start: T32::of(t),
                    due: T32::of(step_due),
                    warn_at: T32::of(warn_at),
                    level2_at: T32::of(level2_at),
                });
            }
            Payload::StepCompleted { step_id } => {
                let step = self.names.intern(step_id);
                let d = self.dossier_mut(slot);
                let Some(i) = d.steps.iter().position(|s| s.step == step) else {
                    return Err((
                        RejectReason::UnknownStep,
                        format!("step `{step_id}` is not in progress"),
                    ));
                };
                let s = d.steps.remove(i);
                if t > s.due.get() && d.fault == NONE {
                    d.fault = s.department;
                }
                d.done_steps.push(step);
            }
            Payload::SupplementRequested { .. } => {
                let d = self.dossier_mut(slot);
                d.supplements = d.supplements.saturating_add(1);
                self.pause(slot, pause::SUPPLEMENT, t);
            }
            Payload::FeesRequested => self.pause(slot, pause::FEES, t),
            Payload::SupplementReceived => self.resume(slot, pause::SUPPLEMENT, event, out)?,
            Payload::FeesPaid => self.resume(slot, pause::FEES, event, out)?,
            Payload::ApologyIssued {
                department_id,
                new_appointment,
                ..
            } => {
                let d = self.dossier(slot);
                if d.fired & crate::dossier::fired::APOLOGY_ISSUED != 0 {
                    return Err((
                        RejectReason::SecondAppointment,
                        "an apology with a new appointment was already issued; only one is allowed"
                            .into(),
                    ));
                }
                if let Some(n) = new_appointment {
                    if !T32::fits(*n) {
                        return Err(invalid(format!(
                            "new appointment {} is outside 1970–2106",
                            fmt(*n)
                        )));
                    }
                    if *n <= t {
                        return Err(invalid(format!(
                            "new appointment {} is not after the apology ({})",
                            fmt(*n),
                            fmt(t)
                        )));
                    }
                }
                let agency = d.agency;
                let department =
                    (!department_id.is_empty()).then(|| self.names.intern(department_id));
                let d = self.dossier_mut(slot);
                d.fired |= crate::dossier::fired::APOLOGY_ISSUED;
                d.new_appointment = new_appointment.map_or(T32::NEVER, T32::of);
                if let (Some(dep), NONE) = (department, d.fault) {
                    d.fault = dep;
                }
                self.agency_stats(agency).apologies_issued += 1;
            }
            Payload::ResultReady => {
                if !self.dossier(slot).ready_at.is_never() {
                    return Err(invalid("the result was already ready".into()));
                }
                self.finish(slot, event, out)?;
            }
            Payload::ResultReturned => {
                if self.dossier(slot).ready_at.is_never() {
                    self.finish(slot, event, out)?;
                }
                self.end(slot, t);
            }
            Payload::Withdrawn { reason }
            | Payload::Refused { reason }
            | Payload::ProcessingStopped { reason } => {
                let ready = self.dossier(slot).ready_at;
                if !ready.is_never() {
                    return Err(invalid(format!(
                        "{}: the result was ready at {}; a finished dossier can only be returned",
                        event.payload.name(),
                        fmt(ready.get())
                    )));
                }
                let (label, what) = match &event.payload {
                    Payload::Withdrawn { .. } => ("withdrawn", 0),
                    Payload::Refused { .. } => ("refused", 1),
                    _ => ("stopped", 2),
                };
                let mut raised = self.raise(slot, Kind::Outcome, "", NONE, 0, t);
                raised.event_id = event.event_id.clone();
                raised.reason = if reason.is_empty() {
                    label.into()
                } else {
                    format!("{label}: {reason}").into()
                };
                let agency = self.dossier(slot).agency;
                let stats = self.agency_stats(agency);
                match what {
                    0 => stats.withdrawn += 1,
                    1 => stats.refused += 1,
                    _ => stats.stopped += 1,
                }
                out.push(raised);
                self.end(slot, t);
            }
            Payload::CitizenRated { level, .. } => {
                let agency = self.dossier(slot).agency;
                self.agency_stats(agency).count_rating(*level);
            }
        }
        Ok(())
    }

    fn pause(&mut self, slot: u32, why: u8, t: i64) {
        let d = self.dossier_mut(slot);
        if d.paused == 0 {
            d.paused_since = T32::of(t);
        }
        d.paused |= why;
    }

    /// Ends a pause; when nothing else holds the clock, moves the deadlines (PAUSE) or
    /// restarts the full time (RESTART for supplements) and tells the desk.
    fn resume(
        &mut self,
        slot: u32,
        why: u8,
        event: &Event,
        out: &mut Vec<Raised>,
    ) -> Result<(), Refusal> {
        let t = event.occurred_at;
        let cal = self.calendar_of(slot);
        let d = self.dossier(slot);
        if d.paused & why == 0 {
            let what = if why == pause::SUPPLEMENT {
                "supplement"
            } else {
                "fee payment"
            };
            return Err(invalid(format!("no {what} was requested")));
        }
        let restart = why == pause::SUPPLEMENT
            && self.procedures[d.procedure as usize].supplement == SupplementMode::Restart;
        let since = d.paused_since.get();
        let rest = d.paused & !why;
        self.dossier_mut(slot).paused = rest;
        if rest != 0 && !restart {
            return Ok(());
        }
        let paused = cal
            .working_secs_between(since, t.max(since))
            .map_err(|e| calendar_refusal(e.into()))?;
        let before = self.dossier(slot).due;
        let reason = if restart {
            let p = &self.procedures[self.dossier(slot).procedure as usize];
            let (start, _) =
                effective_start(&cal, t, p.effective_cutoff()).map_err(calendar_refusal)?;
            let appointment =
                due(&cal, start, p.appointment(), p.anchor).map_err(calendar_refusal)?;
            let statutory = due(&cal, start, p.statutory, p.anchor).map_err(calendar_refusal)?;
            let allotted = cal
                .working_secs_between(start, appointment)
                .map_err(|e| calendar_refusal(e.into()))?;
            let cfg = self.cfg.clone();
            let d = self.dossier_mut(slot);
            d.due = T32::of(appointment);
            d.statutory = T32::of(statutory);
            d.allotted = allotted.clamp(0, u32::MAX as i64) as u32;
            d.refresh_moments(&cal, &cfg).map_err(calendar_refusal)?;
            d.shift_steps(&cal, paused, since)
                .map_err(calendar_refusal)?;
            "supplement received: the full time restarts".to_owned()
        } else {
            self.dossier_mut(slot)
                .shift(&cal, paused, since)
                .map_err(calendar_refusal)?;
            format!("clock paused for {} working minutes", paused / 60)
        };
        self.dossier_mut(slot).paused_since = T32::NEVER;
        if self.dossier(slot).due != before {
            let mut raised = self.raise(slot, Kind::DeadlineShifted, "", NONE, 0, t);
            raised.id = format!("{}:{}", raised.id, event.event_id);
            raised.event_id = event.event_id.clone();
            raised.reason = reason.into();
            out.push(raised);
        }
        Ok(())
    }

    /// The result is ready: outcome by date, early-result notice, timers stop.
    fn finish(&mut self, slot: u32, event: &Event, out: &mut Vec<Raised>) -> Result<(), Refusal> {
        let t = event.occurred_at;
        let cal = self.calendar_of(slot);
        if self.dossier(slot).paused != 0 {
            // A result while the clock is stopped ends the pause at that moment.
            let since = self.dossier(slot).paused_since.get();
            let paused = cal
                .working_secs_between(since, t.max(since))
                .map_err(|e| calendar_refusal(e.into()))?;
            let d = self.dossier_mut(slot);
            d.paused = 0;
            d.paused_since = T32::NEVER;
            d.shift(&cal, paused, since).map_err(calendar_refusal)?;
        }
        let finish = self
            .dossier(slot)
            .outcome(&cal, t)
            .map_err(calendar_refusal)?;
        let (outcome, lateness, note) = (finish.outcome, finish.lateness, finish.note);
        self.dossier_mut(slot).ready_at = T32::of(t);
        let mut raised = self.raise(slot, Kind::Outcome, "", NONE, 0, t);
        raised.event_id = event.event_id.clone();
        raised.outcome = Some(outcome);
        raised.lateness = Some(lateness);
        raised.department_id = self.names.shared(self.dossier(slot).fault);
        raised.reason = note.into();
        let agency = self.dossier(slot).agency;
        self.agency_stats(agency).count_outcome(outcome);
        if finish.before_due_date {
            let mut early = self.raise(slot, Kind::EarlyResult, "", NONE, 0, t);
            early.event_id = event.event_id.clone();
            early.reason =
                "result ready before the due date: invite the applicant to collect it".into();
            out.push(early);
        }
        out.push(raised);
        Ok(())
    }
}
