//! The simulated province: agencies, departments (some chronically late) and a procedure
//! catalog, generated from a seed, with its TOML form for `--catalog-out`.

use std::fmt::Write as _;

/// SplitMix64: tiny, fast and identical on every platform, so a seed names one output.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// An independent stream for one item (a dossier), so that item `i` does not depend on
    /// how many random numbers the items before it drew.
    pub(crate) fn stream(seed: u64, item: u64) -> Rng {
        let mut r = Rng(seed ^ item.wrapping_add(1).wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index drawn with probability proportional to `cumulative[i] - cumulative[i-1]`.
    pub(crate) fn weighted(&mut self, cumulative: &[f64]) -> usize {
        let total = cumulative.last().copied().unwrap_or(0.0);
        let x = self.unit() * total;
        cumulative
            .partition_point(|&c| c <= x)
            .min(cumulative.len() - 1)
    }
}

/// Working seconds in one working day of the national calendar (07:30–11:30, 13:00–17:00).
pub(crate) const DAY: f64 = 8.0 * 3600.0;

/// Time allowed by a procedure, in the units the generator uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Allowed {
    WorkingDays(f64),
    WorkingHours(u32),
    /// Same day, next working day when received at or after 15:00.
    SameDay,
}

impl Allowed {
    /// Nominal working seconds (same day: half a day, what such a dossier usually has).
    pub(crate) fn secs(self) -> f64 {
        match self {
            Allowed::WorkingDays(d) => d * DAY,
            Allowed::WorkingHours(h) => f64::from(h) * 3600.0,
            Allowed::SameDay => DAY / 2.0,
        }
    }

    fn toml(self) -> String {
        match self {
            Allowed::WorkingDays(d) => format!("{{ working_days = {d} }}"),
            Allowed::WorkingHours(h) => format!("{{ working_hours = {h} }}"),
            Allowed::SameDay => "{ same_day = { cutoff = \"15:00\" } }".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Department {
    pub(crate) id: String,
    /// Mean share of a step's allotment this department uses; above 1 means usually late.
    pub(crate) pace: f64,
    pub(crate) chronically_late: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Agency {
    pub(crate) id: String,
    /// The one-stop desk (bộ phận một cửa): receives, returns, is rated.
    pub(crate) desk: usize,
    /// The leadership (lãnh đạo), who approve.
    pub(crate) leaders: usize,
    /// The specialist departments (phòng chuyên môn).
    pub(crate) offices: Vec<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct StepDef {
    pub(crate) id: &'static str,
    pub(crate) department: usize,
    pub(crate) hours: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct ProcedureDef {
    pub(crate) code: String,
    pub(crate) name: String,
    pub(crate) field: &'static str,
    pub(crate) agency: usize,
    pub(crate) statutory: Allowed,
    pub(crate) reduced: Option<Allowed>,
    pub(crate) end_of_day: bool,
    pub(crate) restart: bool,
    /// Who processes a procedure without steps.
    pub(crate) handler: usize,
    pub(crate) steps: Vec<StepDef>,
}

impl ProcedureDef {
    pub(crate) fn appointment(&self) -> Allowed {
        self.reduced.unwrap_or(self.statutory)
    }
}

/// Everything the generator draws dossiers from.
#[derive(Debug, Clone)]
pub(crate) struct Province {
    pub(crate) agencies: Vec<Agency>,
    pub(crate) departments: Vec<Department>,
    pub(crate) procedures: Vec<ProcedureDef>,
    /// Cumulative popularity of the procedures (a few are filed far more than the rest).
    pub(crate) popularity: Vec<f64>,
}

const SO: [&str; 16] = [
    "so-tu-phap",
    "so-xay-dung",
    "so-nong-nghiep-moi-truong",
    "so-van-hoa-the-thao-du-lich",
    "so-giao-duc-dao-tao",
    "so-y-te",
    "so-noi-vu",
    "so-tai-chinh",
    "so-cong-thuong",
    "so-xay-dung-giao-thong",
    "so-khoa-hoc-cong-nghe",
    "so-dan-toc-ton-giao",
    "cong-an-tinh",
    "bhxh-tinh",
    "cuc-thue-tinh",
    "ban-quan-ly-kcn",
];

const FIELDS: [&str; 14] = [
    "Hộ tịch",
    "Chứng thực",
    "Đất đai",
    "Xây dựng",
    "Văn hóa",
    "Giáo dục",
    "Y tế",
    "Lao động",
    "Tư pháp",
    "Giao thông",
    "Công thương",
    "Nông nghiệp",
    "Môi trường",
    "Đầu tư",
];

const VERBS: [&str; 8] = [
    "Cấp giấy phép",
    "Cấp lại giấy phép",
    "Gia hạn giấy phép",
    "Đăng ký",
    "Thẩm định hồ sơ",
    "Điều chỉnh giấy chứng nhận",
    "Xác nhận",
    "Công nhận",
];

impl Province {
    /// A province of `agencies` agencies and `procedures` procedures.
    pub(crate) fn generate(seed: u64, agencies: usize, procedures: usize) -> Province {
        let mut rng = Rng::stream(seed, u64::MAX);
        let mut departments = Vec::new();
        let mut add = |rng: &mut Rng, id: String, late_share: f64| {
            let chronically_late = rng.chance(late_share);
            let pace = if chronically_late {
                rng.range(0.95, 1.4)
            } else {
                rng.range(0.3, 0.75)
            };
            departments.push(Department {
                id,
                pace,
                chronically_late,
            });
            departments.len() - 1
        };
        let mut list = Vec::with_capacity(agencies);
        for i in 0..agencies {
            let id = match SO.get(i) {
                Some(s) => (*s).to_owned(),
                None => format!("ubnd-xa-{:03}", i - SO.len() + 1),
            };
            let desk = add(&mut rng, format!("{id}-mot-cua"), 0.0);
            let leaders = add(&mut rng, format!("{id}-lanh-dao"), 0.05);
            let n = 4 + rng.below(9) as usize;
            let offices = (1..=n)
                .map(|k| add(&mut rng, format!("{id}-phong-{k:02}"), 0.12))
                .collect();
            list.push(Agency {
                id,
                desk,
                leaders,
                offices,
            });
        }
        let mut procs = Vec::with_capacity(procedures);
        let mut popularity = Vec::with_capacity(procedures);
        let mut total = 0.0;
        for i in 0..procedures {
            let agency = rng.below(agencies as u64) as usize;
            let a = &list[agency];
            let field = *rng.pick(&FIELDS);
            let r = rng.unit();
            let statutory = if r < 0.1 {
                Allowed::SameDay
            } else if r < 0.2 {
                Allowed::WorkingHours(*rng.pick(&[4, 8, 16, 24, 40]))
            } else {
                Allowed::WorkingDays(
                    *rng.pick(&[1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 12.0, 15.0, 20.0, 30.0]),
                )
            };
            let reduced = match statutory {
                Allowed::WorkingDays(d) if d >= 1.0 && rng.chance(0.75) => {
                    let r = ((d * rng.range(0.5, 0.8)) * 2.0).round() / 2.0;
                    (r >= 0.5 && r < d).then_some(Allowed::WorkingDays(r))
                }
                Allowed::WorkingHours(h) if h > 4 && rng.chance(0.5) => {
                    let r = (f64::from(h) * rng.range(0.5, 0.8)).round() as u32;
                    (r >= 1 && r < h).then_some(Allowed::WorkingHours(r))
                }
                _ => None,
            };
            let handler = *rng.pick(&a.offices);
            let appointment = reduced.unwrap_or(statutory);
            let mut steps = Vec::new();
            if let Allowed::WorkingDays(d) = appointment {
                if d >= 2.0 && rng.chance(0.6) {
                    let hours = (d * 8.0).floor() as u32;
                    // Examination takes most of the time; optional inter-agency opinion
                    // (liên thông) and site visit; approval by the leadership.
                    let mut plan: Vec<(&'static str, usize, f64)> =
                        vec![("tham-dinh", handler, 0.55)];
                    if rng.chance(0.3) {
                        plan.push(("kiem-tra-thuc-te", *rng.pick(&a.offices), 0.2));
                    }
                    if rng.chance(0.2) {
                        let other = &list[rng.below(agencies as u64) as usize];
                        plan.push(("lay-y-kien-lien-thong", *rng.pick(&other.offices), 0.25));
                    }
                    plan.push(("phe-duyet", a.leaders, 0.15));
                    let sum: f64 = plan.iter().map(|p| p.2).sum();
                    for (id, department, share) in plan {
                        let h = ((f64::from(hours) * share / sum).floor() as u32).max(1);
                        steps.push(StepDef {
                            id,
                            department,
                            hours: h,
                        });
                    }
                }
            }
            procs.push(ProcedureDef {
                code: format!("{}.{:06}", 1 + i % 2, 1000 + i),
                name: format!(
                    "{} {} (mô phỏng {})",
                    rng.pick(&VERBS),
                    field.to_lowercase(),
                    i + 1
                ),
                field,
                agency,
                statutory,
                reduced,
                end_of_day: matches!(appointment, Allowed::WorkingDays(_)) && rng.chance(0.15),
                restart: rng.chance(0.1),
                handler,
                steps,
            });
            total += 1.0 / ((i + 1) as f64).powf(0.8);
            popularity.push(total);
        }
        Province {
            agencies: list,
            departments,
            procedures: procs,
            popularity,
        }
    }

    /// The catalog in the format `Catalog::parse` reads (deploy/catalog/procedures.toml).
    pub(crate) fn catalog_toml(&self, seed: u64) -> String {
        let mut s = format!(
            "# Procedure catalog generated by `dunghan loadgen --seed {seed}`: {} procedures of {} \
             agencies, {} departments.\n# Simulated data for load tests, not a real province.\n",
            self.procedures.len(),
            self.agencies.len(),
            self.departments.len()
        );
        let late: Vec<&str> = self
            .departments
            .iter()
            .filter(|d| d.chronically_late)
            .map(|d| d.id.as_str())
            .collect();
        let _ = writeln!(
            s,
            "# Chronically late departments in the simulation: {}",
            late.join(" ")
        );
        for p in &self.procedures {
            let _ = write!(
                s,
                "\n[[procedure]]\ncode = \"{}\"\nname = \"{}\"\nfield = \"{}\"\nagency = \"{}\"\n\
                 effective_from = {EFFECTIVE_FROM}\nstatutory = {}\n",
                p.code,
                escape(&p.name),
                escape(p.field),
                self.agencies[p.agency].id,
                p.statutory.toml()
            );
            if let Some(r) = p.reduced {
                let _ = writeln!(s, "reduced = {}", r.toml());
            }
            if p.end_of_day {
                s.push_str("anchor = \"end-of-day\"\n");
            }
            if p.restart {
                s.push_str("supplement = \"restart\"\n");
            }
            for step in &p.steps {
                let _ = write!(
                    s,
                    "[[procedure.steps]]\nid = \"{}\"\ndepartment = \"{}\"\nallotted = {{ working_hours = {} }}\n",
                    step.id, self.departments[step.department].id, step.hours
                );
            }
        }
        s
    }
}

/// Every generated procedure is in force from this date; `--start` must be after it.
pub(crate) const EFFECTIVE_FROM: &str = "2000-01-01";

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}
