//! The directory file of `dunghan notify` (who heads which department, which leaders an
//! agency escalates to, the one-stop centre) and the routing of a raised event to its
//! recipients by kind, department and escalation level (domain.md §6).

use std::collections::HashMap;
use std::path::Path;

use dunghan_proto::v1::{SlaEvent, SlaEventKind};
use serde::{Deserialize, Serialize};

/// Someone who receives notifications.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Contact {
    pub(crate) name: String,
    /// Their title as printed under a signature (Trưởng phòng, Phó Giám đốc …).
    #[serde(default)]
    pub(crate) title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) email: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) phone: String,
}

/// One recipient of one event, with the reason they receive it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Recipient {
    /// department_head, agency_leader, centre_director, desk.
    pub(crate) role: &'static str,
    #[serde(flatten)]
    pub(crate) contact: Contact,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CentreEntry {
    name: String,
    director: Contact,
    /// The one-stop desk (re-notifies applicants: early results, shifted deadlines).
    desk: Contact,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgencyEntry {
    id: String,
    name: String,
    /// In escalation order: level 2 goes to the first.
    leaders: Vec<Contact>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DepartmentEntry {
    id: String,
    agency: String,
    name: String,
    head: Contact,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryFile {
    centre: CentreEntry,
    #[serde(default)]
    agency: Vec<AgencyEntry>,
    #[serde(default)]
    department: Vec<DepartmentEntry>,
}

/// The directory, indexed.
#[derive(Debug, Clone)]
pub(crate) struct Directory {
    centre: CentreEntry,
    agencies: HashMap<String, AgencyEntry>,
    departments: HashMap<String, DepartmentEntry>,
}

impl Directory {
    /// Reads and checks a directory file: unknown keys, duplicate ids, agencies without
    /// leaders and departments of unknown agencies are errors naming the entry.
    pub(crate) fn load(path: &Path) -> Result<Directory, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read directory file {}: {e}", path.display()))?;
        Directory::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub(crate) fn parse(text: &str) -> Result<Directory, String> {
        let file: DirectoryFile = toml::from_str(text).map_err(|e| {
            e.to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })?;
        let mut agencies = HashMap::new();
        for a in file.agency {
            if a.leaders.is_empty() {
                return Err(format!("agency `{}` lists no leaders", a.id));
            }
            if let Some(old) = agencies.insert(a.id.clone(), a) {
                return Err(format!("agency `{}` is listed twice", old.id));
            }
        }
        let mut departments = HashMap::new();
        for d in file.department {
            if !agencies.contains_key(&d.agency) {
                return Err(format!(
                    "department `{}` belongs to agency `{}`, which is not listed",
                    d.id, d.agency
                ));
            }
            if let Some(old) = departments.insert(d.id.clone(), d) {
                return Err(format!("department `{}` is listed twice", old.id));
            }
        }
        Ok(Directory {
            centre: file.centre,
            agencies,
            departments,
        })
    }

    /// The one-stop centre's name.
    pub(crate) fn centre_name(&self) -> &str {
        &self.centre.name
    }

    /// The agency's name, or its id when it is not listed.
    pub(crate) fn agency_name(&self, id: &str) -> String {
        self.agencies
            .get(id)
            .map_or_else(|| id.to_owned(), |a| a.name.clone())
    }

    /// The department's name, or its id when it is not listed.
    pub(crate) fn department_name(&self, id: &str) -> String {
        self.departments
            .get(id)
            .map_or_else(|| id.to_owned(), |d| d.name.clone())
    }

    /// The department's head, when listed.
    pub(crate) fn head(&self, department: &str) -> Option<&Contact> {
        self.departments.get(department).map(|d| &d.head)
    }

    /// Who receives `event`:
    /// - level 1 (a step's warning or escalation), an apology required: the department head;
    /// - level 2 (still overdue, a second lateness), an apology overdue: the agency's next
    ///   leader (the first of its `leaders`), with the department head informed;
    /// - level 3 (the dossier overdue): the one-stop centre's director, with the agency's
    ///   leader informed;
    /// - early results and shifted deadlines, and apologies required: the one-stop desk,
    ///   which tells the applicant.
    ///
    /// Anyone missing from the directory is skipped; if nobody is left the centre's
    /// director receives it, so nothing routes to nobody.
    pub(crate) fn route(&self, event: &SlaEvent) -> Vec<Recipient> {
        let head = || {
            self.head(&event.department_id).map(|c| Recipient {
                role: "department_head",
                contact: c.clone(),
            })
        };
        let leader = |index: usize| {
            self.agencies.get(&event.agency_id).map(|a| Recipient {
                role: "agency_leader",
                contact: a.leaders[index.min(a.leaders.len() - 1)].clone(),
            })
        };
        let director = || {
            Some(Recipient {
                role: "centre_director",
                contact: self.centre.director.clone(),
            })
        };
        let desk = || {
            Some(Recipient {
                role: "desk",
                contact: self.centre.desk.clone(),
            })
        };
        let chosen: Vec<Option<Recipient>> = match (event.kind(), event.level) {
            (SlaEventKind::ApologyRequired, _) => vec![head(), desk()],
            (SlaEventKind::ApologyOverdue, _) => vec![leader(0), head()],
            (SlaEventKind::EarlyResult | SlaEventKind::DeadlineShifted, _) => vec![desk()],
            (SlaEventKind::Warning | SlaEventKind::Escalation, 0 | 1) => vec![head()],
            (SlaEventKind::Warning | SlaEventKind::Escalation, 2) => vec![leader(0), head()],
            (SlaEventKind::Warning | SlaEventKind::Escalation, level) => {
                vec![director(), leader(level as usize - 2)]
            }
            _ => vec![director()],
        };
        let mut recipients: Vec<Recipient> = Vec::new();
        for r in chosen.into_iter().flatten() {
            if !recipients.contains(&r) {
                recipients.push(r);
            }
        }
        if recipients.is_empty() {
            tracing::warn!(
                event = %event.id,
                agency = %event.agency_id,
                department = %event.department_id,
                "nobody in the directory for this event: sending it to the centre's director"
            );
            recipients.extend(director());
        }
        recipients
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[centre]
name = "Trung tâm Phục vụ hành chính công tỉnh"
director = { name = "Giám đốc Trung tâm", title = "Giám đốc", email = "gd@example.invalid" }
desk = { name = "Bộ phận Một cửa", email = "motcua@example.invalid" }

[[agency]]
id = "so-a"
name = "Sở A"
leaders = [{ name = "Phó Giám đốc Sở A", title = "Phó Giám đốc" }, { name = "Giám đốc Sở A" }]

[[department]]
id = "phong-a"
agency = "so-a"
name = "Phòng A"
head = { name = "Trưởng phòng A", title = "Trưởng phòng" }
"#;

    fn raised(kind: SlaEventKind, level: u32, department: &str) -> SlaEvent {
        SlaEvent {
            id: "x".into(),
            kind: kind as i32,
            level,
            agency_id: "so-a".into(),
            department_id: department.into(),
            ..Default::default()
        }
    }

    fn names(d: &Directory, e: &SlaEvent) -> Vec<String> {
        d.route(e)
            .into_iter()
            .map(|r| format!("{}:{}", r.role, r.contact.name))
            .collect()
    }

    #[test]
    fn routes_by_kind_and_level() {
        let d = Directory::parse(FILE).unwrap();
        use SlaEventKind::*;
        assert_eq!(
            names(&d, &raised(Escalation, 1, "phong-a")),
            ["department_head:Trưởng phòng A"]
        );
        assert_eq!(
            names(&d, &raised(Escalation, 2, "phong-a")),
            [
                "agency_leader:Phó Giám đốc Sở A",
                "department_head:Trưởng phòng A"
            ]
        );
        assert_eq!(
            names(&d, &raised(Escalation, 3, "")),
            [
                "centre_director:Giám đốc Trung tâm",
                "agency_leader:Giám đốc Sở A"
            ]
        );
        assert_eq!(
            names(&d, &raised(ApologyRequired, 0, "phong-a")),
            ["department_head:Trưởng phòng A", "desk:Bộ phận Một cửa"]
        );
        assert_eq!(
            names(&d, &raised(EarlyResult, 0, "")),
            ["desk:Bộ phận Một cửa"]
        );
        // Unknown department: nobody left, the director receives it.
        assert_eq!(
            names(&d, &raised(Warning, 1, "phong-x")),
            ["centre_director:Giám đốc Trung tâm"]
        );
        let bad = FILE.replace(
            "agency = \"so-a\"\nname = \"Phòng A\"",
            "agency = \"so-b\"\nname = \"Phòng A\"",
        );
        assert!(Directory::parse(&bad).unwrap_err().contains("so-b"));
    }
}
