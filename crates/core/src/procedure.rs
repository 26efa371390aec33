//! Procedures (thủ tục hành chính) and the catalog file that lists their versions.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use dunghan_calendar::hours::parse_clock;
use dunghan_calendar::Anchor;
use serde::{Deserialize, Serialize};

use crate::allowed::{TimeAllowed, TimeAllowedSpec};
use crate::CoreError;

/// How a supplement request affects the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SupplementMode {
    /// The time between request and receipt is not counted (the default).
    #[default]
    Pause,
    /// The full time restarts when the complete dossier arrives.
    Restart,
}

/// One internal step of a procedure: the department that handles it and its allotted time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub id: String,
    pub department: String,
    pub allotted: TimeAllowed,
}

/// One version of a procedure, in force from `effective_from`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Procedure {
    /// National code, e.g. "2.000488".
    pub code: String,
    pub name: String,
    /// Field (lĩnh vực), e.g. "Văn hóa".
    pub field: String,
    /// Competent agency id.
    pub agency: String,
    pub effective_from: NaiveDate,
    /// The legal ceiling.
    pub statutory: TimeAllowed,
    /// The province's reduced time, used for the appointment; `None` means the statutory one.
    pub reduced: Option<TimeAllowed>,
    pub anchor: Anchor,
    pub supplement: SupplementMode,
    /// Received at or after this clock time (seconds after midnight), counting starts the
    /// next working day.
    pub cutoff: Option<u32>,
    pub steps: Vec<Step>,
}

impl Procedure {
    /// The time used for the appointment: the reduced one if published, else the statutory one.
    pub fn appointment(&self) -> TimeAllowed {
        self.reduced.unwrap_or(self.statutory)
    }

    /// A one-off procedure for an ad-hoc time allowed (no code, no steps), with the default
    /// policy apart from the anchor and the cut-off.
    pub fn ad_hoc(allowed: TimeAllowed, anchor: Anchor, cutoff: Option<u32>) -> Procedure {
        Procedure {
            code: String::new(),
            name: String::new(),
            field: String::new(),
            agency: String::new(),
            effective_from: NaiveDate::MIN,
            statutory: allowed,
            reduced: None,
            anchor,
            supplement: SupplementMode::default(),
            cutoff,
            steps: Vec::new(),
        }
    }

    /// The cut-off that applies at receipt: the procedure's own, or its same-day cut-off.
    pub fn effective_cutoff(&self) -> Option<u32> {
        match (self.cutoff, self.appointment()) {
            (Some(c), _) => Some(c),
            (None, TimeAllowed::SameDay { cutoff }) => cutoff,
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFileSpec {
    #[serde(default)]
    procedure: Vec<ProcedureSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcedureSpec {
    code: String,
    name: String,
    #[serde(default)]
    field: String,
    #[serde(default)]
    agency: String,
    effective_from: toml::value::Datetime,
    statutory: TimeAllowedSpec,
    reduced: Option<TimeAllowedSpec>,
    #[serde(default)]
    anchor: Anchor,
    #[serde(default)]
    supplement: SupplementMode,
    cutoff: Option<String>,
    #[serde(default)]
    steps: Vec<StepSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepSpec {
    id: String,
    department: String,
    allotted: TimeAllowedSpec,
}

/// All procedures, each with its versions sorted by `effective_from`.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    procedures: BTreeMap<String, Vec<Procedure>>,
}

impl Catalog {
    /// Parses and validates a catalog file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Catalog, CoreError> {
        let file: CatalogFileSpec = toml::from_str(text).map_err(|e| CoreError::CatalogFile {
            origin: origin.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let mut catalog = Catalog::default();
        for spec in file.procedure {
            let procedure = resolve(spec, origin)?;
            let versions = catalog
                .procedures
                .entry(procedure.code.clone())
                .or_default();
            if versions
                .iter()
                .any(|v| v.effective_from == procedure.effective_from)
            {
                return Err(CoreError::Procedure {
                    origin: origin.to_owned(),
                    code: procedure.code.clone(),
                    effective_from: procedure.effective_from.to_string(),
                    field: "effective_from".into(),
                    message: "two versions take effect on the same date".into(),
                });
            }
            versions.push(procedure);
            versions.sort_by_key(|v| v.effective_from);
        }
        Ok(catalog)
    }

    /// The version of `code` in force on `date` (the latest whose `effective_from` is not after it).
    pub fn lookup(&self, code: &str, date: NaiveDate) -> Result<&Procedure, CoreError> {
        let versions = self
            .procedures
            .get(code)
            .ok_or_else(|| CoreError::UnknownProcedure(code.to_owned()))?;
        versions
            .iter()
            .rev()
            .find(|v| v.effective_from <= date)
            .ok_or_else(|| CoreError::NotInForce {
                code: code.to_owned(),
                date,
                earliest: versions[0].effective_from,
            })
    }

    /// Every version of every procedure, by code.
    pub fn iter(&self) -> impl Iterator<Item = &Procedure> {
        self.procedures.values().flatten()
    }

    /// Number of distinct procedure codes.
    pub fn len(&self) -> usize {
        self.procedures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procedures.is_empty()
    }
}

fn resolve(spec: ProcedureSpec, origin: &str) -> Result<Procedure, CoreError> {
    let effective = spec.effective_from.to_string();
    let fail = |field: &str, message: String| CoreError::Procedure {
        origin: origin.to_owned(),
        code: spec.code.clone(),
        effective_from: effective.clone(),
        field: field.to_owned(),
        message,
    };
    if spec.code.trim().is_empty() {
        return Err(fail("code", "must not be empty".into()));
    }
    let effective_from = NaiveDate::parse_from_str(&effective, "%Y-%m-%d").map_err(|_| {
        fail(
            "effective_from",
            format!("`{effective}` is not a date like 2025-07-01"),
        )
    })?;
    let statutory = spec.statutory.resolve().map_err(|m| fail("statutory", m))?;
    let reduced = spec
        .reduced
        .as_ref()
        .map(|r| r.resolve().map_err(|m| fail("reduced", m)))
        .transpose()?;
    if let Some(r) = reduced {
        let longer = match (r.nominal_working_days(), statutory.nominal_working_days()) {
            (Some(a), Some(b)) => a > b,
            _ => match (r.nominal_calendar_days(), statutory.nominal_calendar_days()) {
                (Some(a), Some(b)) => a > b,
                _ => false,
            },
        };
        if longer {
            return Err(fail(
                "reduced",
                format!("{r} is longer than the statutory {statutory}"),
            ));
        }
    }
    let cutoff = spec
        .cutoff
        .as_deref()
        .map(parse_clock)
        .transpose()
        .map_err(|m| fail("cutoff", m))?;
    let mut steps = Vec::with_capacity(spec.steps.len());
    for (i, s) in spec.steps.iter().enumerate() {
        let allotted = s
            .allotted
            .resolve()
            .map_err(|m| fail(&format!("steps[{i}].allotted"), m))?;
        if steps.iter().any(|x: &Step| x.id == s.id) {
            return Err(fail(
                &format!("steps[{i}].id"),
                format!("step `{}` appears twice", s.id),
            ));
        }
        steps.push(Step {
            id: s.id.clone(),
            department: s.department.clone(),
            allotted,
        });
    }
    let appointment = reduced.unwrap_or(statutory);
    if let Some(limit) = appointment.nominal_working_days() {
        let total: Option<f64> = steps
            .iter()
            .map(|s| s.allotted.nominal_working_days())
            .sum();
        if let Some(total) = total.filter(|t| *t > limit + 1e-9) {
            return Err(fail(
                "steps",
                format!(
                    "the steps add up to {total} working days, more than the {appointment} allowed"
                ),
            ));
        }
    }
    Ok(Procedure {
        code: spec.code,
        name: spec.name,
        field: spec.field,
        agency: spec.agency,
        effective_from,
        statutory,
        reduced,
        anchor: spec.anchor,
        supplement: spec.supplement,
        cutoff,
        steps,
    })
}
