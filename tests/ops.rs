//! The operations kit in deploy/, checked by the real tools: promtool (configs, rules and
//! their unit tests), amtool (Alertmanager config and routes), a real Prometheus scraping a
//! real `dunghan serve` until the on-time recording rule has the hand-computed value, the
//! dashboards' PromQL parsed by that Prometheus and checked against existing names, and the
//! deployment YAML parsed, and a real Alertmanager routing and inhibiting alerts.

mod common;
mod ops_deploy;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{encode, event, free_port, fresh_dir, http_get, ready, received, repo, Node};
use dunghan_proto::v1::dossier_event::Payload;

/// Runs a tool; panics with its output unless it succeeds. Returns stdout.
fn run(program: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} ({e}): ./tests/run.sh installs it"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?}:\n{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Values of `key: VALUE` lines (a YAML key at any depth) in a file.
fn values_of(text: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}:");
    text.lines()
        .map(|l| l.trim_start().trim_start_matches("- "))
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().to_owned())
        .collect()
}

const RULE_FILES: [&str; 3] = [
    "deploy/prometheus/rules/dunghan-recording.yml",
    "deploy/prometheus/rules/dunghan-alerts.yml",
    "deploy/prometheus/rules/dunghan-engine.yml",
];

#[test]
fn prometheus_rules_and_alertmanager_pass_the_real_tools() {
    let prom = repo().join("deploy/prometheus");
    run(
        "promtool",
        &[
            "check",
            "config",
            "prometheus.yml",
            "prometheus-cluster.yml",
        ],
        &prom,
    );
    let checked = run(
        "promtool",
        &[
            "check",
            "rules",
            "rules/dunghan-recording.yml",
            "rules/dunghan-alerts.yml",
            "rules/dunghan-engine.yml",
        ],
        &prom,
    );
    assert_eq!(checked.matches("SUCCESS").count(), 3, "{checked}");
    run(
        "promtool",
        &["test", "rules", "tests/rules.test.yml"],
        &prom,
    );

    // Every alert has a unit test case and a runbook section its runbook_url points to.
    let tests = read("deploy/prometheus/tests/rules.test.yml");
    let tested: BTreeSet<String> = values_of(&tests, "alertname").into_iter().collect();
    let runbook = read("deploy/prometheus/RUNBOOK.md");
    let mut alerts = Vec::new();
    for file in RULE_FILES {
        let text = read(file);
        let names = values_of(&text, "alert");
        let urls = values_of(&text, "runbook_url");
        assert_eq!(
            names.len(),
            urls.len(),
            "one runbook_url per alert in {file}"
        );
        for (name, url) in names.iter().zip(&urls) {
            assert!(tested.contains(name), "{name} has no promtool test case");
            let anchor = url.rsplit_once('#').map(|(_, a)| a).unwrap_or_default();
            assert_eq!(anchor, name.to_lowercase(), "{name}: {url}");
            assert!(
                runbook.contains(&format!("\n## {name}\n")),
                "{name} in RUNBOOK.md"
            );
        }
        alerts.extend(names);
    }
    assert!(alerts.len() >= 10, "{alerts:?}");

    // Alertmanager: the config is valid and routes go where the comments say.
    let am = repo().join("deploy/alertmanager");
    run("amtool", &["check-config", "alertmanager.yml"], &am);
    let route = |labels: &[&str]| -> String {
        let mut args = vec!["config", "routes", "test", "--config.file=alertmanager.yml"];
        args.extend(labels);
        run("amtool", &args, &am).trim().to_owned()
    };
    assert_eq!(route(&["scope=engine", "severity=page"]), "platform-oncall");
    assert_eq!(
        route(&["scope=engine", "severity=ticket"]),
        "platform-tickets"
    );
    // A department's page reaches its head and then the leaders.
    assert_eq!(
        route(&[
            "severity=page",
            "scope=dossier",
            "department=phong-quan-ly-van-hoa"
        ]),
        "head-phong-quan-ly-van-hoa,one-stop-centre-director"
    );
    assert_eq!(
        route(&["severity=page", "scope=agency", "agency=so-vhtt"]),
        "leaders-so-vhtt"
    );
    assert_eq!(
        route(&["severity=ticket", "scope=agency", "agency=so-tp"]),
        "one-stop-centre"
    );
    let config = read("deploy/alertmanager/alertmanager.yml");
    assert!(
        config.contains("source_matchers: ['scope=\"dossier\"']")
            && config.contains("target_matchers: ['scope=\"step\"']"),
        "a dossier-level alert inhibits the step-level ones"
    );
}

/// A real Prometheus on a free port, with its data in `dir`; killed when dropped.
struct Prometheus {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// deploy/prometheus/prometheus.yml with 1 s intervals, the node as target and the
    /// repository's rule files.
    fn start(dir: &Path, target: &str) -> Prometheus {
        let mut config = read("deploy/prometheus/prometheus.yml");
        let rules = repo().join("deploy/prometheus/rules/*.yml");
        for (from, to) in [
            ("scrape_interval: 15s", "scrape_interval: 1s".to_owned()),
            (
                "evaluation_interval: 15s",
                "evaluation_interval: 1s".to_owned(),
            ),
            ("\"127.0.0.1:9464\"", format!("\"{target}\"")),
            ("- rules/*.yml", format!("- {}", rules.display())),
        ] {
            assert_eq!(
                config.matches(from).count(),
                1,
                "{from} once in prometheus.yml"
            );
            config = config.replace(from, &to);
        }
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, config).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus (Debian package prometheus; ./tests/run.sh installs it)");
        let prometheus = Prometheus { child, addr, log };
        prometheus.wait_for("ready", |p| {
            http_get(&p.addr, "/-/ready").is_some_and(|(status, _)| status == 200)
        });
        prometheus
    }

    /// Polls `ok` every 200 ms for up to 60 s; on timeout fails with Prometheus's log.
    fn wait_for(&self, what: &str, mut ok: impl FnMut(&Prometheus) -> bool) {
        let start = Instant::now();
        while !ok(self) {
            if start.elapsed() > Duration::from_secs(60) {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("Prometheus: no {what} within 60 s; its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// An instant query: the API's JSON answer (status "success" or "error").
    fn query(&self, promql: &str) -> serde_json::Value {
        let (_, body) = http_get(
            &self.addr,
            &format!("/api/v1/query?query={}", encode(promql)),
        )
        .expect("Prometheus answers");
        serde_json::from_str(&body).expect("JSON from the API")
    }

    /// The sample values of an instant query, by their labels.
    fn samples(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let answer = self.query(promql);
        assert_eq!(answer["status"], "success", "{promql}: {answer}");
        answer["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let value = s["value"][1].as_str().unwrap().parse().unwrap();
                (s["metric"].clone(), value)
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_records_the_on_time_rate_of_a_live_node() {
    let dir = fresh_dir("ops-prometheus");
    let node = Node::start(&dir);
    // Six dossiers of P3 (3 working days: received Mon 5/10 10:00, due Thu 8/10 10:00) and
    // one of P5 whose first step goes to phong-a.
    let online = dunghan_proto::v1::Channel::Online as i32;
    let counter = dunghan_proto::v1::Channel::Counter as i32;
    let mut receipts: Vec<_> = ["E1", "E2", "E3", "T1", "L1", "W1"]
        .iter()
        .enumerate()
        .map(|(i, d)| received(d, "P3", if i % 2 == 0 { online } else { counter }))
        .collect();
    receipts.push(received("S1", "P5", online));
    receipts.push(event(
        "S1-step",
        "S1",
        "2026-10-05T10:30:00+07:00",
        Payload::StepStarted(dunghan_proto::v1::StepStarted {
            step_id: "xu-ly".into(),
            department_id: "phong-a".into(),
            ..Default::default()
        }),
    ));
    node.publish(receipts).await;

    // Prometheus first sees every outcome series at zero (the node creates them at receipt).
    let prometheus = Prometheus::start(&dir, &node.metrics);
    prometheus.wait_for("outcome series at zero", |p| {
        let zeros = p.samples("dunghan_dossiers_finished_total{agency=\"so-a\"} == 0");
        zeros.len() == 8 // 4 outcomes × 2 channels
    });

    // Then the results: 3 early (before the due date), 1 on the due date, 1 late, 1 withdrawn.
    node.publish(vec![
        ready("E1", "2026-10-06T15:00:00+07:00"),
        ready("E2", "2026-10-07T09:00:00+07:00"),
        ready("E3", "2026-10-07T16:00:00+07:00"),
        ready("T1", "2026-10-08T16:30:00+07:00"),
        ready("L1", "2026-10-09T10:00:00+07:00"),
        event(
            "W1-w",
            "W1",
            "2026-10-06T10:00:00+07:00",
            Payload::Withdrawn(Default::default()),
        ),
    ])
    .await;

    // (3 early + 1 on time) / (3 + 1 + 1 late); the withdrawn dossier is not in the rate.
    let expected = 4.0 / 5.0;
    let close = |samples: Vec<(serde_json::Value, f64)>| {
        samples.len() == 1 && (samples[0].1 - expected).abs() < 1e-9
    };
    prometheus.wait_for("on-time rate 0.8 for so-a", |p| {
        close(p.samples("agency:dunghan_dossiers_on_time:ratio_rate1d{agency=\"so-a\"}"))
    });
    // The other rules of the group may be one evaluation behind: wait for each.
    prometheus.wait_for("on-time rate 0.8 for procedure P3", |p| {
        close(p.samples(
            "agency_procedure:dunghan_dossiers_on_time:ratio_rate1d{agency=\"so-a\",procedure=\"P3\"}",
        ))
    });
    // Channels alternate: E1, E3, L1 online (2 early, 1 late: 2/3); E2, T1, W1 at the
    // counter (1 early, 1 on time, 1 withdrawn: 2/2).
    prometheus.wait_for("on-time rates by channel", |p| {
        let mut rates: Vec<(String, f64)> = p
            .samples("agency_channel:dunghan_dossiers_on_time:ratio_rate1d")
            .iter()
            .map(|(m, v)| (m["channel"].as_str().unwrap_or_default().to_owned(), *v))
            .collect();
        rates.sort_by(|a, b| a.0.cmp(&b.0));
        rates.len() == 2
            && rates[0].0 == "counter"
            && (rates[0].1 - 1.0).abs() < 1e-9
            && rates[1].0 == "online"
            && (rates[1].1 - 2.0 / 3.0).abs() < 1e-9
    });
    // The node's own counters behind those rules (and the department's step counters).
    let (_, scrape) = http_get(&node.metrics, "/metrics").unwrap();
    for line in [
        "dunghan_dossiers_finished_by_procedure_total{agency=\"so-a\",outcome=\"early\",procedure=\"P3\"} 3",
        "dunghan_dossiers_finished_by_procedure_total{agency=\"so-a\",outcome=\"ended\",procedure=\"P3\"} 1",
        "dunghan_dossiers_finished_by_procedure_total{agency=\"so-a\",outcome=\"late\",procedure=\"P5\"} 0",
        "dunghan_steps_started_total{department=\"phong-a\"} 1",
        "dunghan_steps_overdue_total{department=\"phong-a\"} 1",
    ] {
        assert!(scrape.contains(line), "{line} in\n{scrape}");
    }
    // Every rule file loaded, no rule broken.
    let (_, rules) = http_get(&prometheus.addr, "/api/v1/rules").unwrap();
    let rules: serde_json::Value = serde_json::from_str(&rules).unwrap();
    let loaded: usize = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rules"].as_array().unwrap().len())
        .sum();
    let in_files: usize = RULE_FILES
        .iter()
        .map(|f| {
            let text = read(f);
            values_of(&text, "record").len() + values_of(&text, "alert").len()
        })
        .sum();
    assert_eq!(loaded, in_files);

    dashboards_query_existing_names(&prometheus, &node);
    drop(prometheus);
    drop(node);
    std::fs::remove_dir_all(&dir).ok();
}

/// Metric and rule names (identifiers with `dunghan_`, `dunghan:` or `:dunghan`) in PromQL,
/// outside strings.
fn names_in(promql: &str) -> BTreeSet<String> {
    let mut outside = String::new();
    let mut in_string = false;
    for c in promql.chars() {
        match c {
            '"' => in_string = !in_string,
            _ if in_string => {}
            c => outside.push(c),
        }
    }
    outside
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.contains("dunghan_") || w.contains("dunghan:") || w.contains(":dunghan"))
        .map(str::to_owned)
        .collect()
}

/// Every PromQL expression of the dashboards (panel targets and template variable
/// queries) parses in the real Prometheus and names only metrics the node exports,
/// recording rules of deploy/prometheus, or the Kafka metrics listed as optional.
fn dashboards_query_existing_names(prometheus: &Prometheus, node: &Node) {
    let (_, scrape) = http_get(&node.metrics, "/metrics").unwrap();
    let mut known: BTreeSet<String> = BTreeSet::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            known.insert(name.to_owned());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    known.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    for file in RULE_FILES {
        known.extend(values_of(&read(file), "record"));
    }
    known.extend(
        read("deploy/prometheus/optional-metrics.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(str::to_owned),
    );
    // The rules themselves only use known names (promtool does not check that).
    for file in RULE_FILES {
        let text: String = read(file)
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        for name in names_in(&text) {
            assert!(known.contains(&name), "{file} uses unknown {name}");
        }
    }
    let dashboards = repo().join("deploy/grafana/dashboards");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dashboards).unwrap() {
        let path = entry.unwrap().path();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let title = json["title"].as_str().unwrap().to_owned();
        let mut exprs: Vec<String> = Vec::new();
        let variables = json["templating"]["list"].as_array().unwrap();
        assert!(!variables.is_empty(), "{title} has template variables");
        for v in variables {
            let q = v["query"]["query"].as_str().unwrap();
            // label_values(SELECTOR, label): the selector is PromQL.
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|q| q.rsplit_once(','))
                .map(|(selector, _)| selector)
                .unwrap_or_else(|| panic!("{title}: variable query {q}"));
            exprs.push(inner.to_owned());
        }
        for panel in json["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                exprs.push(target["expr"].as_str().unwrap().to_owned());
            }
        }
        for expr in exprs {
            let promql = ["$agency", "$department", "$field", "$instance"]
                .iter()
                .fold(expr.replace("$__rate_interval", "1m"), |q, v| {
                    q.replace(v, ".*")
                });
            let answer = prometheus.query(&promql);
            assert_eq!(answer["status"], "success", "{title}: {expr}: {answer}");
            let names = names_in(&expr);
            assert!(
                !names.is_empty() || expr.contains("up{job=\"dunghan\"}"),
                "{title}: {expr} names no dunghan metric"
            );
            for name in names {
                assert!(known.contains(&name), "{title}: {expr}: unknown {name}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked} expressions");
}
