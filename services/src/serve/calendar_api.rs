//! `CalendarService`: the node's calendars over gRPC: queries, and admin changes (closures,
//! yearly schedules) that move open deadlines.

use std::sync::Arc;

use dunghan_calendar::{Anchor, Skipped};
use dunghan_proto::v1::duration::Amount;
use dunghan_proto::v1::{
    calendar_service_server::CalendarService, AddClosureRequest, AddClosureResponse,
    AddWorkingTimeRequest, AddWorkingTimeResponse, CheckInstantRequest, CheckInstantResponse,
    ListSpecialDaysRequest, ListSpecialDaysResponse, SetYearScheduleRequest, SkippedDay,
    SpecialDay,
};
use tonic::{Request, Response, Status};

use super::node::SharedCalendars;
use super::wire::{instant, invalid, timestamp};

/// The service over the node's calendars.
#[derive(Debug, Clone)]
pub(crate) struct CalendarApi {
    pub(crate) calendars: SharedCalendars,
    /// For admin changes: the embedded node (`None` in Kafka mode, where a change must
    /// reach every partition's owner and is not supported yet) and the bearer token
    /// (`None`: admin calls disabled).
    pub(crate) node: Option<std::sync::Arc<std::sync::Mutex<super::node::Node>>>,
    pub(crate) admin_token: Option<String>,
}

impl CalendarApi {
    /// The embedded node, for calendar changes.
    fn embedded(&self) -> Result<&std::sync::Arc<std::sync::Mutex<super::node::Node>>, Status> {
        self.node.as_ref().ok_or_else(|| {
            Status::failed_precondition(
                "calendar changes are not supported in Kafka mode yet: change the calendar \
                 file and restart the instances (restored dossiers are counted on the new \
                 calendar, without DEADLINE_SHIFTED events)",
            )
        })
    }
}

/// The wire form of a skipped day (shared with `DeadlineService`).
pub(crate) fn skipped_day(s: Skipped) -> SkippedDay {
    SkippedDay {
        date: s.date.to_string(),
        reason: serde_json::to_value(s.reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        name: s.name_vi,
        name_en: s.name_en,
        whole_day: s.whole_day,
    }
}

impl CalendarApi {
    /// Admin calls need `authorization: Bearer <[admin] token>`.
    fn authorize(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
        let Some(token) = &self.admin_token else {
            return Err(Status::permission_denied(
                "admin calls are disabled: set [admin] token (DUNGHAN__ADMIN__TOKEN)",
            ));
        };
        let given = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return Err(Status::unauthenticated(
                "authorization: a valid Bearer token is required",
            ));
        }
        Ok(())
    }

    fn calendar(&self, office: &str) -> Result<Arc<dunghan_calendar::Calendar>, Status> {
        let set = self
            .calendars
            .read()
            .map_err(|_| Status::internal("calendar lock poisoned"))?
            .clone();
        Ok(set
            .for_office((!office.is_empty()).then_some(office))
            .clone())
    }
}

#[tonic::async_trait]
impl CalendarService for CalendarApi {
    async fn add_closure(
        &self,
        request: Request<AddClosureRequest>,
    ) -> Result<Response<AddClosureResponse>, Status> {
        self.authorize(request.metadata())?;
        let r = request.into_inner();
        let (from, to) = (instant("from", r.from)?, instant("to", r.to)?);
        if to <= from {
            return Err(invalid("to", "must be after from"));
        }
        if r.reason.trim().is_empty() {
            return Err(invalid("reason", "is required"));
        }
        let closure = super::store::ClosureChange {
            office: r.office_id,
            from,
            to,
            reason: r.reason,
        };
        let shifted =
            super::node::run_on(self.embedded()?, move |node| node.add_closure(closure)).await?;
        Ok(Response::new(AddClosureResponse { shifted }))
    }

    async fn set_year_schedule(
        &self,
        request: Request<SetYearScheduleRequest>,
    ) -> Result<Response<AddClosureResponse>, Status> {
        self.authorize(request.metadata())?;
        let text = request.into_inner().toml;
        dunghan_calendar::schedule::parse(&text, "toml").map_err(|e| invalid("toml", e))?;
        let shifted =
            super::node::run_on(self.embedded()?, move |node| node.set_schedule(text)).await?;
        Ok(Response::new(AddClosureResponse { shifted }))
    }

    async fn list_special_days(
        &self,
        request: Request<ListSpecialDaysRequest>,
    ) -> Result<Response<ListSpecialDaysResponse>, Status> {
        let r = request.into_inner();
        let cal = self.calendar(&r.office_id)?;
        let (first, last) = cal.years();
        if !(first..=last).contains(&r.year) {
            return Err(invalid(
                "year",
                format!("{} is outside {first}–{last}", r.year),
            ));
        }
        let days = cal
            .special_days(r.year)
            .into_iter()
            .map(|d| SpecialDay {
                date: d.date.to_string(),
                working: d.working,
                name: d.name_vi,
                name_en: d.name_en,
                kind: d
                    .kind
                    .and_then(|k| serde_json::to_value(k).ok())
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(ListSpecialDaysResponse {
            days,
            calendar: cal.name().to_owned(),
        }))
    }

    async fn check_instant(
        &self,
        request: Request<CheckInstantRequest>,
    ) -> Result<Response<CheckInstantResponse>, Status> {
        let r = request.into_inner();
        let at = instant("at", r.at)?;
        let cal = self.calendar(&r.office_id)?;
        let working = cal.is_working_ts(at).map_err(|e| invalid("at", e))?;
        let next = cal.next_working_ts(at).map_err(|e| invalid("at", e))?;
        Ok(Response::new(CheckInstantResponse {
            working,
            next_working: timestamp(next),
            day: cal.skipped_on(cal.local_date(at)).map(skipped_day),
        }))
    }

    async fn add_working_time(
        &self,
        request: Request<AddWorkingTimeRequest>,
    ) -> Result<Response<AddWorkingTimeResponse>, Status> {
        let r = request.into_inner();
        let from = instant("from", r.from)?;
        let cal = self.calendar(&r.office_id)?;
        let result = match r.amount.and_then(|d| d.amount) {
            Some(Amount::WorkingDays(n)) => cal.add_working_days_ts(from, n, Anchor::SameClockTime),
            Some(Amount::WorkingHours(h)) if h.is_finite() && h.abs() <= 2.0e6 => {
                cal.add_working_secs(from, (h * 3600.0).round() as i64)
            }
            Some(Amount::WorkingHours(h)) => {
                return Err(invalid("amount", format!("{h} working hours is absurd")))
            }
            Some(_) => return Err(invalid("amount", "give working_days or working_hours")),
            None => return Err(invalid("amount", "is required")),
        }
        .map_err(|e| invalid("amount", e))?;
        Ok(Response::new(AddWorkingTimeResponse {
            result: timestamp(result),
            skipped: cal
                .skipped_between(from.min(result), from.max(result))
                .into_iter()
                .map(skipped_day)
                .collect(),
        }))
    }
}
