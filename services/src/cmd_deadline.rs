//! `dunghan deadline`: the appointment for a dossier received at a given instant, explained.

use dunghan_calendar::hours::{clock, parse_clock};
use dunghan_calendar::{Anchor, Calendar};
use dunghan_core::{deadline, Procedure, StartNote, TimeAllowed};
use std::fmt::Write;

use serde_json::{json, Value};

use crate::cli::DeadlineArgs;
use crate::files::{load_calendar, load_catalog};
use crate::format::{emit, parse_instant, rfc3339, slip, slip_date};
use crate::{input_error, InputError};

pub(crate) fn run(args: DeadlineArgs) -> anyhow::Result<()> {
    let received = parse_instant("--received", &args.received).map_err(InputError)?;
    let cal = &*load_calendar(&args.source)?;
    let procedure = match (&args.procedure, &args.catalog) {
        (Some(code), Some(path)) => {
            let catalog = load_catalog(path)?;
            let date = cal.local_date(received);
            Some(
                catalog
                    .lookup(code, date)
                    .map_err(|e| InputError(e.to_string()))?
                    .clone(),
            )
        }
        _ => None,
    };
    let procedure = match procedure {
        Some(p) => p,
        None => ad_hoc(&args)?,
    };
    let deadlines = deadline::procedure_deadlines(cal, &procedure, received)
        .map_err(|e| InputError(e.to_string()))?;
    let last = deadlines.statutory.max(deadlines.appointment);
    let skipped = cal.skipped_between(deadlines.start, last);
    let is_catalog = args.procedure.is_some();
    if args.json {
        let mut out = json!({
            "received": rfc3339(cal, received),
            "start": rfc3339(cal, deadlines.start),
            "start_rule": deadlines.start_note,
            "time_allowed": procedure.appointment().to_string(),
            "deadline": rfc3339(cal, deadlines.appointment),
            "calendar": cal.name(),
            "skipped": skipped.iter().map(|s| json!({
                "date": s.date.to_string(),
                "reason": s.reason,
                "name": s.name_vi,
                "name_en": s.name_en,
                "whole_day": s.whole_day,
            })).collect::<Vec<Value>>(),
        });
        if is_catalog {
            out["procedure"] = json!({
                "code": procedure.code,
                "name": procedure.name,
                "field": procedure.field,
                "agency": procedure.agency,
                "effective_from": procedure.effective_from.to_string(),
                "statutory": procedure.statutory.to_string(),
                "reduced": procedure.reduced.map(|r| r.to_string()),
            });
            out["statutory_deadline"] = json!(rfc3339(cal, deadlines.statutory));
            out["steps"] = deadlines
                .steps
                .iter()
                .map(|s| {
                    json!({
                        "id": s.id,
                        "department": s.department,
                        "start": rfc3339(cal, s.start),
                        "deadline": rfc3339(cal, s.due),
                    })
                })
                .collect();
        }
        emit(&(serde_json::to_string_pretty(&out)? + "\n"))?;
        return Ok(());
    }
    emit(&slip_text(
        cal, &procedure, is_catalog, &deadlines, &skipped,
    )?)
}

/// A count that must be a positive whole number.
fn whole(flag: &str, n: i64, unit: &str) -> anyhow::Result<u32> {
    match u32::try_from(n) {
        Ok(n) if n > 0 => Ok(n),
        _ => input_error(format!("{flag} `{n}` is not a positive number of {unit}")),
    }
}

/// A one-off "procedure" from the duration flags, with the default policy.
fn ad_hoc(args: &DeadlineArgs) -> anyhow::Result<Procedure> {
    let cutoff = match args.cutoff.as_deref().map(parse_clock).transpose() {
        Ok(c) => c,
        Err(m) => return input_error(format!("--cutoff: {m}")),
    };
    let allowed = if let Some(n) = args.working_days {
        TimeAllowed::WorkingDays(n)
    } else if let Some(h) = args.working_hours {
        TimeAllowed::WorkingHours(h)
    } else if let Some(n) = args.calendar_days {
        TimeAllowed::CalendarDays(whole("--calendar-days", n, "calendar days")?)
    } else if let Some(n) = args.months {
        TimeAllowed::Months(whole("--months", n, "months")?)
    } else {
        TimeAllowed::SameDay { cutoff }
    };
    if let Err(m) = allowed.validate() {
        return input_error(format!("time allowed: {m}"));
    }
    let anchor = match args.anchor.as_deref() {
        None | Some("same-clock-time") => Anchor::SameClockTime,
        Some("end-of-day") => Anchor::EndOfDay,
        Some(other) => {
            return input_error(format!(
                "--anchor `{other}` is not one of same-clock-time, end-of-day"
            ))
        }
    };
    Ok(Procedure::ad_hoc(allowed, anchor, cutoff))
}

fn slip_text(
    cal: &Calendar,
    procedure: &Procedure,
    is_catalog: bool,
    d: &deadline::Deadlines,
    skipped: &[dunghan_calendar::Skipped],
) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    if is_catalog {
        writeln!(
            out,
            "Thủ tục (procedure):           {} {} — {} ({})",
            procedure.code, procedure.name, procedure.field, procedure.agency
        )?;
    }
    writeln!(
        out,
        "Tiếp nhận (received):          {}",
        slip(cal, d.received)
    )?;
    let start = match d.start_note {
        StartNote::AsReceived => String::new(),
        StartNote::OutsideWorkingHours => {
            "  — ngoài giờ làm việc (received outside working hours)".into()
        }
        StartNote::AfterCutoff { cutoff } => format!(
            "  — nhận sau {} (received at or after the {} cut-off)",
            clock(cutoff),
            clock(cutoff)
        ),
    };
    writeln!(
        out,
        "Bắt đầu tính (counting from):  {}{start}",
        slip(cal, d.start)
    )?;
    let allowed = procedure.appointment();
    writeln!(
        out,
        "Thời hạn (time allowed):       {} ({allowed})",
        allowed.to_vietnamese()
    )?;
    writeln!(
        out,
        "Hẹn trả kết quả (due):         {}",
        slip(cal, d.appointment)
    )?;
    if is_catalog && procedure.reduced.is_some() {
        writeln!(
            out,
            "Hạn theo quy định (statutory): {} — {}",
            slip(cal, d.statutory),
            procedure.statutory.to_vietnamese()
        )?;
    }
    if !d.steps.is_empty() {
        writeln!(out, "Các bước (steps):")?;
        for s in &d.steps {
            writeln!(
                out,
                "  {:<16} {:<28} đến (until) {}",
                s.id,
                s.department,
                slip(cal, s.due)
            )?;
        }
    }
    if skipped.is_empty() {
        writeln!(
            out,
            "Không có ngày nghỉ trong thời hạn (no non-working days skipped)."
        )?;
    } else {
        writeln!(out, "Ngày không tính (days not counted):")?;
        for s in skipped {
            let part = if s.whole_day {
                ""
            } else {
                " — một phần ngày (part of the day)"
            };
            writeln!(
                out,
                "  {:<22} {} ({}){part}",
                slip_date(s.date),
                s.name_vi,
                s.name_en
            )?;
        }
    }
    Ok(out)
}
