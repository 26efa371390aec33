//! The deployment files of the operations kit (deploy/k8s, deploy/compose.yaml, the
//! notifier's examples) parsed and loaded by the binary, and the Alertmanager
//! configuration in a real Alertmanager: routes and inhibition.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{free_port, fresh_dir, http_get, repo};
use crate::run;

/// Every YAML document of a file, as JSON (parsed by python3's yaml module).
fn yaml_documents(path: &Path) -> Vec<serde_json::Value> {
    let script = "import sys, json, yaml\n\
                  print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1], encoding='utf-8')) if d is not None]))";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 with the yaml module (./tests/run.sh installs python3-yaml)");
    assert!(
        out.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs the binary; panics unless it succeeds. Returns stdout.
fn dunghan(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dunghan"))
        .args(args)
        .env_remove("DUNGHAN__CATALOG__FILE")
        .env_remove("DUNGHAN__CALENDAR__FILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dunghan {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn deployment_files_parse_and_their_configs_load() {
    let k8s = repo().join("deploy/k8s");
    let mut kinds = BTreeSet::new();
    let mut config_maps = Vec::new();
    for entry in std::fs::read_dir(&k8s).unwrap() {
        let path = entry.unwrap().path();
        for doc in yaml_documents(&path) {
            let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
            assert!(
                doc["apiVersion"].is_string(),
                "{}: apiVersion",
                path.display()
            );
            if kind != "Kustomization" {
                assert!(
                    doc["metadata"]["name"].is_string(),
                    "{}: name",
                    path.display()
                );
            }
            if kind == "Kustomization" {
                for r in doc["resources"].as_array().unwrap() {
                    assert!(
                        k8s.join(r.as_str().unwrap()).exists(),
                        "{r} in kustomization"
                    );
                }
            }
            if kind == "ConfigMap" {
                config_maps.push(doc.clone());
            }
            if kind == "StatefulSet" && doc["metadata"]["name"] == "dunghan" {
                let c = &doc["spec"]["template"]["spec"]["containers"][0];
                assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
                assert_eq!(c["startupProbe"]["httpGet"]["path"], "/healthz");
                assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
                assert!(c["resources"]["requests"]["cpu"].is_string());
                assert!(c["resources"]["requests"]["memory"].is_string());
            }
            kinds.insert(kind);
        }
    }
    for kind in [
        "ConfigMap",
        "Service",
        "StatefulSet",
        "ServiceMonitor",
        "Kustomization",
    ] {
        assert!(kinds.contains(kind), "{kind} in deploy/k8s: {kinds:?}");
    }

    // The config maps hold files the binary accepts (paths moved to a temporary directory).
    let dir = fresh_dir("ops-k8s");
    for cm in &config_maps {
        for (name, text) in cm["data"].as_object().unwrap() {
            let text = text
                .as_str()
                .unwrap()
                .replace("/etc/dunghan-notify/", &format!("{}/", dir.display()))
                .replace("/etc/dunghan/", &format!("{}/", dir.display()))
                .replace(
                    "/var/lib/dunghan-notify",
                    &dir.join("notify-state").display().to_string(),
                )
                .replace(
                    "/var/lib/dunghan/data",
                    &dir.join("data").display().to_string(),
                );
            std::fs::write(dir.join(name), text).unwrap();
        }
    }
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let config = dir.join("dunghan.toml");
    let empty_arg = empty.to_str().unwrap();
    dunghan(&[
        "replay",
        "--quiet",
        "--config",
        config.to_str().unwrap(),
        empty_arg,
    ]);
    let notify = dir.join("notify.toml");
    let summary = dunghan(&[
        "notify",
        "--config",
        notify.to_str().unwrap(),
        "--from-file",
        empty_arg,
    ]);
    assert_eq!(
        summary.trim(),
        "0 delivered, 0 already delivered, 0 skipped, 0 dead-lettered"
    );
    // The example notify configuration and directory in deploy/notify load too.
    let example = repo().join("deploy/notify/notify.toml");
    let state = dir.join("example-state");
    dunghan(&[
        "notify",
        "--config",
        example.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--from-file",
        empty_arg,
    ]);

    // compose: the stack the README promises, with mounts that exist in the repository.
    let compose = &yaml_documents(&repo().join("deploy/compose.yaml"))[0];
    let services = compose["services"].as_object().unwrap();
    for name in [
        "kafka",
        "dunghan-1",
        "dunghan-2",
        "prometheus",
        "alertmanager",
        "grafana",
    ] {
        assert!(services.contains_key(name), "{name} in compose.yaml");
    }
    assert!(services["kafka"]["image"]
        .as_str()
        .unwrap()
        .starts_with("apache/kafka"));
    for (name, service) in services {
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let source = volume.as_str().unwrap().split(':').next().unwrap();
            if source.starts_with("./") {
                assert!(
                    repo().join("deploy").join(source).exists(),
                    "{name}: {source} does not exist"
                );
            }
        }
    }
    // The Prometheus in compose reads the cluster scrape config checked above.
    let command = services["prometheus"]["command"].to_string();
    assert!(command.contains("prometheus-cluster.yml"), "{command}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_real_alertmanager_inhibits_step_alerts_under_a_dossier_alert() {
    let dir = fresh_dir("ops-alertmanager");
    let addr = format!("127.0.0.1:{}", free_port());
    let config = repo().join("deploy/alertmanager/alertmanager.yml");
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-alertmanager (Debian package; ./tests/run.sh installs it)");
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _alertmanager = Kill(child);
    let until = |what: &str, mut ok: Box<dyn FnMut() -> bool>| {
        let start = Instant::now();
        while !ok() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no {what} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let ready_addr = addr.clone();
    until(
        "Alertmanager ready",
        Box::new(move || http_get(&ready_addr, "/-/ready").is_some_and(|(s, _)| s == 200)),
    );
    let url = format!("--alertmanager.url=http://{addr}");
    for labels in [
        [
            "DunghanApologyOverdue",
            "department=phong-quan-ly-van-hoa",
            "severity=page",
            "scope=dossier",
        ],
        [
            "DunghanStepsOverdue",
            "department=phong-quan-ly-van-hoa",
            "severity=ticket",
            "scope=step",
        ],
        [
            "DunghanStepsOverdue",
            "department=phong-ho-tich",
            "severity=ticket",
            "scope=step",
        ],
    ] {
        let mut args = vec![url.as_str(), "alert", "add"];
        args.extend(labels);
        run("amtool", &args, &dir);
    }
    // The apology overdue silences the same department's step alert, not another's.
    let states = move || -> BTreeSet<(String, String, String, String)> {
        let (_, body) = http_get(&addr, "/api/v2/alerts").unwrap_or_default();
        let alerts: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        alerts
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                let mut receivers: Vec<&str> = a["receivers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["name"].as_str().unwrap())
                    .collect();
                receivers.sort_unstable();
                (
                    a["labels"]["alertname"].as_str().unwrap().to_owned(),
                    a["labels"]["department"].as_str().unwrap().to_owned(),
                    a["status"]["state"].as_str().unwrap().to_owned(),
                    receivers.join(","),
                )
            })
            .collect()
    };
    let expected: BTreeSet<(String, String, String, String)> = [
        (
            "DunghanApologyOverdue",
            "phong-quan-ly-van-hoa",
            "active",
            "head-phong-quan-ly-van-hoa,one-stop-centre-director",
        ),
        (
            "DunghanStepsOverdue",
            "phong-quan-ly-van-hoa",
            "suppressed",
            "head-phong-quan-ly-van-hoa,null",
        ),
        (
            "DunghanStepsOverdue",
            "phong-ho-tich",
            "active",
            "head-phong-ho-tich,null",
        ),
    ]
    .iter()
    .map(|(a, b, c, d)| ((*a).into(), (*b).into(), (*c).into(), (*d).into()))
    .collect();
    let mut last = BTreeSet::new();
    let start = Instant::now();
    while last != expected {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "alerts in Alertmanager: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
        last = states();
    }
    drop(_alertmanager);
    std::fs::remove_dir_all(&dir).ok();
}
