//! `dunghan calendar YEAR`: a year's holidays, compensatory days and swapped working days.

use std::fmt::Write;

use serde_json::json;

use crate::cli::CalendarArgs;
use crate::files::load_calendar;
use crate::format::{emit, slip_date};
use crate::input_error;

pub(crate) fn run(args: CalendarArgs) -> anyhow::Result<()> {
    if !(1900..=2100).contains(&args.year) {
        return input_error(format!("year `{}` is outside 1900–2100", args.year));
    }
    let cal = load_calendar(&args.source)?;
    let (first, last) = cal.years();
    if !(first..=last).contains(&args.year) {
        return input_error(format!(
            "year `{}` is outside the calendar's years {first}–{last}",
            args.year
        ));
    }
    let days = cal.special_days(args.year);
    if args.json {
        let entries: Vec<_> = days
            .iter()
            .map(|d| {
                json!({
                    "date": d.date.to_string(),
                    "working": d.working,
                    "name": d.name_vi,
                    "name_en": d.name_en,
                    "kind": d.kind,
                })
            })
            .collect();
        emit(&(serde_json::to_string_pretty(&entries)? + "\n"))?;
        return Ok(());
    }
    let mut out = String::new();
    writeln!(
        out,
        "Lịch {} năm {} / {} calendar for {}",
        cal.name(),
        args.year,
        cal.name(),
        args.year
    )?;
    writeln!(
        out,
        "Ngày khác lịch thứ Hai–thứ Sáu (days that differ from plain Monday–Friday):"
    )?;
    for d in &days {
        let status = if d.working {
            "làm việc / working"
        } else {
            "nghỉ / off"
        };
        writeln!(
            out,
            "  {:<22} {:<20} {} ({})",
            slip_date(d.date),
            status,
            d.name_vi,
            d.name_en
        )?;
    }
    let weekend: Vec<_> = cal
        .notes()
        .values()
        .filter(|n| {
            n.date.format("%Y").to_string() == args.year.to_string()
                && !n.working()
                && days.iter().all(|d| d.date != n.date)
        })
        .collect();
    if !weekend.is_empty() {
        writeln!(out, "Ngày lễ rơi vào cuối tuần (holidays on a weekend):")?;
        for n in weekend {
            writeln!(
                out,
                "  {:<22} {} ({})",
                slip_date(n.date),
                n.name_vi,
                n.name_en
            )?;
        }
    }
    emit(&out)
}
