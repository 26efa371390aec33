//! `DeadlineService`: deadlines for the appointment slip over gRPC (stateless).

use std::sync::Arc;

use dunghan_calendar::Anchor;
use dunghan_core::{deadline, Catalog, CoreError, Procedure, StartNote};
use dunghan_proto::v1::{
    deadline_service_server::DeadlineService, ComputeDeadlineRequest, ComputeDeadlineResponse,
    StepDeadline,
};
use tonic::{Request, Response, Status};

use super::calendar_api::skipped_day;
use super::metrics::Metrics;
use super::node::SharedCalendars;
use super::wire::{instant, invalid, timestamp};
use crate::convert::allotment;

/// The service over the node's catalog and calendars.
#[derive(Debug, Clone)]
pub(crate) struct DeadlineApi {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) calendars: SharedCalendars,
    pub(crate) metrics: Metrics,
}

impl DeadlineApi {
    fn compute(&self, r: ComputeDeadlineRequest) -> Result<ComputeDeadlineResponse, Status> {
        let received = instant("received_at", r.received_at)?;
        let office = (!r.office_id.is_empty()).then_some(r.office_id.as_str());
        let set = self
            .calendars
            .read()
            .map_err(|_| Status::internal("calendar lock poisoned"))?
            .clone();
        let cal = set.for_office(office);
        if cal.worked_until(received).is_err() {
            let (first, last) = cal.years();
            return Err(invalid(
                "received_at",
                format!("is outside the calendar's years {first}–{last}"),
            ));
        }
        let procedure = match (r.procedure_code.as_str(), r.time_allowed) {
            ("", None) => {
                return Err(invalid(
                    "procedure_code",
                    "give a procedure code or a time_allowed",
                ))
            }
            ("", Some(d)) => {
                let allowed =
                    allotment(d).ok_or_else(|| invalid("time_allowed", "gives no amount"))?;
                allowed.validate().map_err(|m| invalid("time_allowed", m))?;
                Procedure::ad_hoc(allowed, Anchor::SameClockTime, None)
            }
            (code, _) => match self.catalog.lookup(code, cal.local_date(received)) {
                Ok(p) => p.clone(),
                Err(e @ (CoreError::UnknownProcedure(_) | CoreError::NotInForce { .. })) => {
                    return Err(Status::not_found(format!("procedure_code: {e}")))
                }
                Err(e) => return Err(invalid("procedure_code", e)),
            },
        };
        let d = deadline::procedure_deadlines(cal, &procedure, received)
            .map_err(|e| invalid("received_at", e))?;
        let skipped = cal
            .skipped_between(d.start, d.statutory.max(d.appointment))
            .into_iter()
            .map(skipped_day)
            .collect();
        let start_rule = match d.start_note {
            StartNote::AsReceived => "as-received",
            StartNote::OutsideWorkingHours => "outside-working-hours",
            StartNote::AfterCutoff { .. } => "after-cutoff",
        };
        let time_allowed = match procedure.reduced {
            Some(r) => format!("{r} (statutory {})", procedure.statutory),
            None => procedure.statutory.to_string(),
        };
        Ok(ComputeDeadlineResponse {
            deadline: timestamp(d.appointment),
            statutory_deadline: timestamp(d.statutory),
            start: timestamp(d.start),
            start_rule: start_rule.into(),
            time_allowed,
            steps: d
                .steps
                .into_iter()
                .map(|s| StepDeadline {
                    step_id: s.id,
                    department_id: s.department,
                    start: timestamp(s.start),
                    deadline: timestamp(s.due),
                })
                .collect(),
            skipped,
            calendar: cal.name().to_owned(),
        })
    }
}

#[tonic::async_trait]
impl DeadlineService for DeadlineApi {
    async fn compute_deadline(
        &self,
        request: Request<ComputeDeadlineRequest>,
    ) -> Result<Response<ComputeDeadlineResponse>, Status> {
        let result = self.compute(request.into_inner());
        let label = match &result {
            Ok(_) => "ok",
            Err(s) if s.code() == tonic::Code::NotFound => "not_found",
            Err(_) => "invalid_argument",
        };
        self.metrics
            .deadline_requests
            .with_label_values(&[label])
            .inc();
        result.map(Response::new)
    }
}
