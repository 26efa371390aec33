//! The calendar file (TOML): a province layer over the national calendar, with office
//! layers nested under it, and the [`CalendarSet`] built from it.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};

use crate::builder::CalendarBuilder;
use crate::calendar::{Calendar, Closure};
use crate::hours::{Session, WeekHours};
use crate::schedule::YearSchedule;
use crate::{CalendarError, DayKind, DayNote};

/// A calendar file. Example:
///
/// ```toml
/// name = "an-giang"
/// timezone = "Asia/Ho_Chi_Minh"
/// schedule_files = ["vn-2027.toml"]     # read by the caller, relative to this file
/// [hours]
/// weekdays = ["07:00-11:30", "13:30-17:00"]
/// [[day]]
/// date = 2026-09-03
/// working = false
/// name = "Nghỉ lễ địa phương"
/// [[closure]]
/// from = 2026-10-27T14:00:00+07:00
/// to = 2026-10-28T12:00:00+07:00
/// reason = "Bão số 12"
/// [office.ubnd-xa-my-hoa]
/// hours = { saturday = ["07:30-11:30"] }
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarFile {
    /// Name of the province or calendar (default "vn").
    pub name: Option<String>,
    /// IANA time zone (default Asia/Ho_Chi_Minh).
    pub timezone: Option<String>,
    /// First and last year to precompute (default 1900–2100).
    pub years: Option<[i32; 2]>,
    /// Include Vietnamese national holidays and schedules (default true).
    pub national: Option<bool>,
    /// Yearly schedule files to add (paths relative to this file; the caller reads them).
    #[serde(default)]
    pub schedule_files: Vec<String>,
    pub hours: Option<HoursSpec>,
    #[serde(default)]
    pub day: Vec<DaySpec>,
    #[serde(default)]
    pub closure: Vec<ClosureSpec>,
    /// Office layers by office id.
    #[serde(default)]
    pub office: BTreeMap<String, OfficeSpec>,
}

/// An office layer over the province.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficeSpec {
    pub hours: Option<HoursSpec>,
    #[serde(default)]
    pub day: Vec<DaySpec>,
    #[serde(default)]
    pub closure: Vec<ClosureSpec>,
}

/// Working sessions by weekday; a day left out keeps the layer below's sessions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursSpec {
    /// Monday to Friday at once.
    pub weekdays: Option<Vec<String>>,
    pub monday: Option<Vec<String>>,
    pub tuesday: Option<Vec<String>>,
    pub wednesday: Option<Vec<String>>,
    pub thursday: Option<Vec<String>>,
    pub friday: Option<Vec<String>>,
    pub saturday: Option<Vec<String>>,
    pub sunday: Option<Vec<String>>,
    /// Sessions of a rest day worked by exchange (default: the first working weekday's).
    pub swapped: Option<Vec<String>>,
}

/// A local day off or working day.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaySpec {
    #[serde(deserialize_with = "text_or_datetime")]
    pub date: String,
    pub working: bool,
    pub name: String,
    pub name_en: Option<String>,
}

/// An office closure between two instants (RFC 3339, or local time in the calendar's zone).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosureSpec {
    #[serde(deserialize_with = "text_or_datetime")]
    pub from: String,
    #[serde(deserialize_with = "text_or_datetime")]
    pub to: String,
    pub reason: String,
}

/// Accepts a TOML date/datetime or a string.
fn text_or_datetime<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match toml::Value::deserialize(d)? {
        toml::Value::String(s) => Ok(s),
        toml::Value::Datetime(dt) => Ok(dt.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a date or date-time, found {}",
            other.type_str()
        ))),
    }
}

impl CalendarFile {
    /// Parses a calendar file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<CalendarFile, CalendarError> {
        toml::from_str(text).map_err(|e| CalendarError::File {
            origin: origin.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })
    }
}

/// The calendars of a province: its own and one per office that has a layer of its own.
#[derive(Debug, Clone)]
pub struct CalendarSet {
    province: Arc<Calendar>,
    offices: BTreeMap<String, Arc<Calendar>>,
}

impl CalendarSet {
    /// The national calendar alone, with the schedules shipped in dunghan.
    pub fn national() -> CalendarSet {
        CalendarSet::single(
            CalendarBuilder::national()
                .build()
                .expect("builtin calendar builds"),
        )
    }

    /// A set holding one calendar for every office.
    pub fn single(calendar: Calendar) -> CalendarSet {
        CalendarSet {
            province: Arc::new(calendar),
            offices: BTreeMap::new(),
        }
    }

    /// Builds a province's calendars from its file and the extra yearly schedules it names.
    pub fn from_file(
        file: &CalendarFile,
        origin: &str,
        schedules: Vec<YearSchedule>,
    ) -> Result<CalendarSet, CalendarError> {
        let invalid = |field: &str, message: String| CalendarError::Invalid {
            origin: origin.to_owned(),
            field: field.to_owned(),
            message,
        };
        let tz: Tz = match &file.timezone {
            Some(name) => name
                .parse()
                .map_err(|_| invalid("timezone", format!("`{name}` is not an IANA time zone")))?,
            None => crate::builder::DEFAULT_TZ,
        };
        let mut base = if file.national.unwrap_or(true) {
            CalendarBuilder::national()
        } else {
            CalendarBuilder::plain()
        };
        base = base.timezone(tz).name(file.name.as_deref().unwrap_or("vn"));
        if let Some([first, last]) = file.years {
            base = base.years(first, last);
        }
        for s in schedules {
            base = base.schedule(s);
        }
        let province = apply_layer(base, file.hours.as_ref(), &file.day, &file.closure, tz)
            .map_err(|(field, message)| invalid(&field, message))?;
        let mut offices = BTreeMap::new();
        for (id, office) in &file.office {
            let layer = apply_layer(
                province.clone().name(id),
                office.hours.as_ref(),
                &office.day,
                &office.closure,
                tz,
            )
            .map_err(|(field, message)| invalid(&format!("office.{id}.{field}"), message))?;
            offices.insert(id.clone(), Arc::new(layer.build()?));
        }
        Ok(CalendarSet {
            province: Arc::new(province.build()?),
            offices,
        })
    }

    /// The province's own calendar.
    pub fn province(&self) -> &Arc<Calendar> {
        &self.province
    }

    /// The calendar of an office: its own layer if it has one, else the province's.
    pub fn for_office(&self, office: Option<&str>) -> &Arc<Calendar> {
        office
            .and_then(|id| self.offices.get(id))
            .unwrap_or(&self.province)
    }

    /// The office's own calendar, or an error naming the office if it has no layer.
    pub fn office(&self, id: &str) -> Result<&Arc<Calendar>, CalendarError> {
        self.offices
            .get(id)
            .ok_or_else(|| CalendarError::UnknownOffice(id.to_owned()))
    }

    /// Ids of the offices with a layer of their own.
    pub fn office_ids(&self) -> impl Iterator<Item = &str> {
        self.offices.keys().map(String::as_str)
    }
}

type LayerError = (String, String);

fn apply_layer(
    mut builder: CalendarBuilder,
    hours: Option<&HoursSpec>,
    days: &[DaySpec],
    closures: &[ClosureSpec],
    tz: Tz,
) -> Result<CalendarBuilder, LayerError> {
    if let Some(h) = hours {
        builder.hours = apply_hours(builder.hours.clone(), h)?;
    }
    for (i, d) in days.iter().enumerate() {
        let field = || format!("day[{i}].date");
        let date = NaiveDate::parse_from_str(&d.date, "%Y-%m-%d").map_err(|_| {
            (
                field(),
                format!("`{}` is not a date like 2026-09-03", d.date),
            )
        })?;
        let kind = if d.working {
            DayKind::LocalWorkday
        } else {
            DayKind::LocalDayOff
        };
        let name_en = d.name_en.as_deref().unwrap_or(&d.name);
        builder = builder.day(DayNote::new(date, kind, &d.name, name_en));
    }
    for (i, c) in closures.iter().enumerate() {
        let from = parse_instant(&c.from, tz).map_err(|m| (format!("closure[{i}].from"), m))?;
        let to = parse_instant(&c.to, tz).map_err(|m| (format!("closure[{i}].to"), m))?;
        if to <= from {
            return Err((
                format!("closure[{i}].to"),
                format!("`{}` is not after `{}`", c.to, c.from),
            ));
        }
        builder = builder.closure(Closure {
            from,
            to,
            reason: c.reason.clone(),
        });
    }
    Ok(builder)
}

fn apply_hours(mut hours: WeekHours, spec: &HoursSpec) -> Result<WeekHours, LayerError> {
    let parse = |name: &str, list: &[String]| -> Result<Vec<Session>, LayerError> {
        list.iter()
            .map(|s| Session::parse(s).map_err(|m| (format!("hours.{name}"), m)))
            .collect()
    };
    let set = |hours: &mut WeekHours, name: &str, day: Weekday, list: &[String]| {
        let sessions = parse(name, list)?;
        hours
            .set(day, sessions)
            .map_err(|m| (format!("hours.{name}"), m))
    };
    if let Some(list) = &spec.weekdays {
        for day in [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ] {
            set(&mut hours, "weekdays", day, list)?;
        }
        if spec.swapped.is_none() {
            let sessions = parse("weekdays", list)?;
            hours
                .set_swapped(sessions)
                .map_err(|m| ("hours.weekdays".to_owned(), m))?;
        }
    }
    let days = [
        ("monday", Weekday::Mon, &spec.monday),
        ("tuesday", Weekday::Tue, &spec.tuesday),
        ("wednesday", Weekday::Wed, &spec.wednesday),
        ("thursday", Weekday::Thu, &spec.thursday),
        ("friday", Weekday::Fri, &spec.friday),
        ("saturday", Weekday::Sat, &spec.saturday),
        ("sunday", Weekday::Sun, &spec.sunday),
    ];
    for (name, day, list) in days {
        if let Some(list) = list {
            set(&mut hours, name, day, list)?;
        }
    }
    if let Some(list) = &spec.swapped {
        let sessions = parse("swapped", list)?;
        hours
            .set_swapped(sessions)
            .map_err(|m| ("hours.swapped".to_owned(), m))?;
    }
    Ok(hours)
}

/// Parses an instant: RFC 3339 with an offset, or a local date-time read in `tz`.
pub fn parse_instant(text: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S"))
        .map_err(|_| format!("`{text}` is not a date-time like 2026-10-27T14:00:00+07:00"))?;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("`{text}` does not exist in {tz}"))
}
