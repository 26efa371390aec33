//! Loading calendars and catalogs from disk, with errors that name the file.

use std::path::Path;

use std::sync::Arc;

use dunghan_calendar::{schedule, Calendar, CalendarFile, CalendarSet};
use dunghan_core::Catalog;

use crate::cli::CalendarSource;
use crate::{input_error, InputError};

fn read(path: &Path, what: &str) -> Result<String, InputError> {
    std::fs::read_to_string(path)
        .map_err(|e| InputError(format!("cannot read {what} file {}: {e}", path.display())))
}

/// The calendars from `--calendar FILE` (plus the yearly schedule files it names, relative
/// to it), or the national calendar.
pub(crate) fn load_calendars(path: Option<&Path>) -> anyhow::Result<CalendarSet> {
    let Some(path) = path else {
        return Ok(CalendarSet::national());
    };
    let spec = load_calendar_spec(path)?;
    spec.build()
}

/// A calendar file with the yearly schedules it names: what a node rebuilds its calendars
/// from when an administrator adds a closure.
#[derive(Debug, Clone, Default)]
pub(crate) struct CalendarSpec {
    pub(crate) file: CalendarFile,
    pub(crate) origin: String,
    pub(crate) schedules: Vec<schedule::YearSchedule>,
}

impl CalendarSpec {
    pub(crate) fn build(&self) -> anyhow::Result<CalendarSet> {
        match CalendarSet::from_file(&self.file, &self.origin, self.schedules.clone()) {
            Ok(set) => Ok(set),
            Err(e) => input_error(e.to_string()),
        }
    }
}

/// Reads a calendar file and the schedule files it names (relative to it).
pub(crate) fn load_calendar_spec(path: &Path) -> anyhow::Result<CalendarSpec> {
    let origin = path.display().to_string();
    let file = CalendarFile::parse(&read(path, "calendar")?, &origin)
        .map_err(|e| InputError(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut schedules = Vec::new();
    for name in &file.schedule_files {
        let schedule_path = dir.join(name);
        let text = read(&schedule_path, "schedule")?;
        let parsed = schedule::parse(&text, &schedule_path.display().to_string())
            .map_err(|e| InputError(e.to_string()))?;
        schedules.push(parsed);
    }
    Ok(CalendarSpec {
        file,
        origin,
        schedules,
    })
}

/// The calendar a command works on: `--office`'s own layer (an error if the file has no
/// such office), else the province's.
pub(crate) fn load_calendar(source: &CalendarSource) -> anyhow::Result<Arc<Calendar>> {
    let set = load_calendars(source.calendar.as_deref())?;
    match source.office.as_deref() {
        Some(office) => match set.office(office) {
            Ok(cal) => Ok(cal.clone()),
            Err(e) => input_error(e.to_string()),
        },
        None => Ok(set.province().clone()),
    }
}

/// The procedure catalog from a file.
pub(crate) fn load_catalog(path: &Path) -> anyhow::Result<Catalog> {
    let text = read(path, "catalog")?;
    Catalog::parse(&text, &path.display().to_string()).map_err(|e| InputError(e.to_string()).into())
}
