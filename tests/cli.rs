//! The `dunghan` CLI as users and scripts call it: the real binary, real files, exit statuses.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dunghan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dunghan"))
        .args(args)
        .current_dir(repo())
        .env_remove("DUNGHAN__CALENDAR__FILE")
        .env_remove("DUNGHAN__CATALOG__FILE")
        .output()
        .expect("the binary runs")
}

fn json(args: &[&str]) -> Value {
    let out = dunghan(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Runs a command that must fail with status 2 and one line on stderr; returns that line.
fn bad(args: &[&str]) -> String {
    let out = dunghan(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(out.stdout.is_empty());
    err
}

#[test]
fn deadline_example_1_json() {
    let v = json(&[
        "deadline",
        "--received",
        "2026-02-13T16:20:00+07:00",
        "--working-days",
        "3",
        "--json",
    ]);
    assert_eq!(v["deadline"], "2026-02-25T16:20:00+07:00");
    let skipped: Vec<&str> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["date"].as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 9);
    assert!(skipped.contains(&"2026-02-17"));
    let tet = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["date"] == "2026-02-17")
        .unwrap();
    assert_eq!(tet["reason"], "holiday");
    assert_eq!(tet["name"], "Tết Nguyên đán");
}

#[test]
fn deadline_example_2_and_4() {
    let v = json(&[
        "deadline",
        "--received",
        "2026-01-10T09:00:00+07:00",
        "--working-days",
        "1",
        "--json",
    ]);
    assert_eq!(v["deadline"], "2026-01-12T09:00:00+07:00");
    let v = json(&[
        "deadline",
        "--received",
        "2026-10-05T16:00:00+07:00",
        "--same-day",
        "--cutoff",
        "15:00",
        "--json",
    ]);
    assert_eq!(v["deadline"], "2026-10-06T17:00:00+07:00");
    assert_eq!(v["start_rule"]["rule"], "after-cutoff");
    // The same with the catalog's certification procedure.
    let v = json(&[
        "deadline",
        "--received",
        "2026-10-05T16:00:00+07:00",
        "--procedure",
        "2.000815",
        "--catalog",
        "deploy/catalog/procedures.toml",
        "--json",
    ]);
    assert_eq!(v["deadline"], "2026-10-06T17:00:00+07:00");
}

#[test]
fn deadline_for_a_procedure_has_statutory_reduced_and_steps() {
    let v = json(&[
        "deadline",
        "--received",
        "2026-10-05T10:00:00+07:00",
        "--procedure",
        "2.000488",
        "--catalog",
        "deploy/catalog/procedures.toml",
        "--json",
    ]);
    assert_eq!(v["deadline"], "2026-10-12T10:00:00+07:00");
    assert_eq!(v["statutory_deadline"], "2026-11-02T10:00:00+07:00");
    assert_eq!(v["procedure"]["field"], "Văn hóa");
    assert_eq!(v["steps"][0]["id"], "tham-dinh");
    assert_eq!(v["steps"][1]["deadline"], "2026-10-09T15:30:00+07:00");
}

#[test]
fn deadline_text_reads_like_a_slip() {
    let out = dunghan(&[
        "deadline",
        "--received",
        "2026-02-13T16:20:00+07:00",
        "--working-days",
        "3",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Hẹn trả kết quả (due):         Thứ Tư 25/02/2026 16:20"),
        "{text}"
    );
    assert!(
        text.contains("Thứ Ba 17/02/2026      Tết Nguyên đán (Lunar New Year)"),
        "{text}"
    );
}

#[test]
fn deadline_on_a_province_calendar_with_offices_and_closures() {
    let base = [
        "deadline",
        "--received",
        "2026-10-27T10:00:00+07:00",
        "--working-days",
        "1",
        "--json",
        "--calendar",
        "deploy/calendar/province.toml",
    ];
    // Province hours 07:00–11:30, 13:30–17:00 and the storm from Tue 14:00 to Wed 12:00.
    let v = json(&base);
    assert_eq!(v["deadline"], "2026-10-29T09:30:00+07:00");
    assert_eq!(v["skipped"][0]["reason"], "closure");
    assert_eq!(v["skipped"][0]["whole_day"], false);
    // Saturday mornings count at ubnd-phuong-1.
    let v = json(&[
        "deadline",
        "--received",
        "2026-10-30T16:00:00+07:00",
        "--working-hours",
        "2",
        "--json",
        "--calendar",
        "deploy/calendar/province.toml",
        "--office",
        "ubnd-phuong-1",
    ]);
    assert_eq!(v["deadline"], "2026-10-31T08:30:00+07:00");
}

#[test]
fn calendar_2026_json_lists_exactly_the_changed_days() {
    let v = json(&["calendar", "2026", "--json"]);
    let days: Vec<(String, bool)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().to_owned(),
                d["working"].as_bool().unwrap(),
            )
        })
        .collect();
    let off = |d: &str| (d.to_owned(), false);
    let mut expected = vec![
        off("2026-01-01"),
        off("2026-01-02"),
        ("2026-01-10".to_owned(), true),
        off("2026-02-16"),
        off("2026-02-17"),
        off("2026-02-18"),
        off("2026-02-19"),
        off("2026-02-20"),
        off("2026-04-27"),
        off("2026-04-30"),
        off("2026-05-01"),
        off("2026-09-01"),
        off("2026-09-02"),
        off("2026-11-24"),
    ];
    expected.sort();
    assert_eq!(days, expected);
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["name"].as_str().is_some_and(|n| !n.is_empty())));
}

#[test]
fn calendar_for_rule_generated_years() {
    // No official file for 2030: by rule, Tết (Vietnamese lunar 1/1 = Sat 2 Feb) is the
    // last day of the old year (Fri 1 Feb) to lunar 4/1 (Tue 5 Feb).
    let v = json(&["calendar", "2030", "--json"]);
    let dates: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    assert!(
        dates.contains(&"2030-02-01"),
        "the last day of the lunar year: {dates:?}"
    );
    assert!(dates.contains(&"2030-02-05"), "lunar 4/1: {dates:?}");
    let out = dunghan(&["calendar", "1985"]);
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("21/01/1985"));
}

#[test]
fn bad_input_exits_2_with_one_line() {
    const R: &str = "2026-02-13T16:20:00+07:00";
    const CATALOG: &str = "deploy/catalog/procedures.toml";
    // (arguments, what the one line must name)
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[
                "deadline",
                "--received",
                "2026-02-13T16:20:00",
                "--working-days",
                "3",
            ],
            &["2026-02-13T16:20:00", "no UTC offset"],
        ),
        (
            &["deadline", "--received", "tomorrow", "--working-days", "3"],
            &["tomorrow"],
        ),
        (
            &["deadline", "--received", R, "--working-days", "-3"],
            &["-3 working days"],
        ),
        (
            &["deadline", "--received", R, "--working-days", "100000"],
            &["100000"],
        ),
        (
            &["deadline", "--received", R, "--calendar-days", "0"],
            &["--calendar-days `0`"],
        ),
        (
            &[
                "deadline",
                "--received",
                R,
                "--procedure",
                "9.999",
                "--catalog",
                CATALOG,
            ],
            &["unknown procedure `9.999`"],
        ),
        (
            &["deadline", "--received", R, "--procedure", "2.000488"],
            &["--catalog"],
        ),
        (
            &["calendar", "2026", "--calendar", "no/such/file.toml"],
            &["no/such/file.toml"],
        ),
        (&["calendar", "1800"], &["1800"]),
        (
            &[
                "calendar",
                "2026",
                "--calendar",
                "deploy/calendar/province.toml",
                "--office",
                "nowhere",
            ],
            &["nowhere"],
        ),
    ];
    for (args, names) in cases {
        let line = bad(args);
        for name in *names {
            assert!(line.contains(name), "{args:?}: {line}");
        }
    }
}

#[test]
fn malformed_files_exit_2_naming_the_file_and_value() {
    let dir = std::env::temp_dir().join(format!("dunghan-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cal = dir.join("bad-calendar.toml");
    std::fs::write(&cal, "[hours]\nmonday = [\"25:00-26:00\"]\n").unwrap();
    let e = bad(&["calendar", "2026", "--calendar", cal.to_str().unwrap()]);
    assert!(
        e.contains("bad-calendar.toml") && e.contains("25:00"),
        "{e}"
    );
    let cat = dir.join("bad-catalog.toml");
    std::fs::write(&cat, "[[procedure]]\ncode = \"1\"\nname = \"x\"\neffective_from = 2025-01-01\nstatutory = { working_days = 5 }\nreduced = { working_days = 9 }\n").unwrap();
    let e = bad(&[
        "deadline",
        "--received",
        "2026-02-13T16:20:00+07:00",
        "--procedure",
        "1",
        "--catalog",
        cat.to_str().unwrap(),
    ]);
    assert!(
        e.contains("bad-catalog.toml") && e.contains("reduced"),
        "{e}"
    );
    // A yearly schedule added by an operator, without a rebuild.
    std::fs::write(
        dir.join("vn-2027.toml"),
        "year = 2027\nsource = \"test\"\n[[day]]\ndate = 2027-03-03\nkind = \"day-off\"\nname_vi = \"Nghỉ\"\nname_en = \"Off\"\n",
    )
    .unwrap();
    let with_year = dir.join("with-2027.toml");
    std::fs::write(&with_year, "schedule_files = [\"vn-2027.toml\"]\n").unwrap();
    let v = json(&[
        "calendar",
        "2027",
        "--calendar",
        with_year.to_str().unwrap(),
        "--json",
    ]);
    let dates: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        ["2027-03-03"],
        "the file replaces the rule-generated days of 2027"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn help_explains_the_commands() {
    let out = dunghan(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("calendar") && text.contains("deadline"));
    let out = dunghan(&["deadline", "--help"]);
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("--received"));
}
