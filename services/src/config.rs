//! Typed, layered configuration: defaults, then a TOML file (`--config FILE`), then
//! `DUNGHAN__SECTION__KEY` environment variables, then command-line flags (applied by the
//! commands). Unknown sections and keys are errors; cross-field rules are checked at load.

use std::path::{Path, PathBuf};

use dunghan_core::EngineConfig;
use serde::Deserialize;

/// Prefix of configuration environment variables: `DUNGHAN__ENGINE__WARNING_FRACTION=0.8`.
pub(crate) const ENV_PREFIX: &str = "DUNGHAN__";

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    pub(crate) catalog: FileSection,
    pub(crate) calendar: FileSection,
    /// Rule thresholds of the SLA engine (domain.md §6 defaults).
    pub(crate) engine: EngineConfig,
    pub(crate) store: StoreSection,
    pub(crate) grpc: ListenSection,
    pub(crate) metrics: ListenSection,
    pub(crate) log: LogSection,
    pub(crate) admin: AdminSection,
    /// Kafka mode (a consumer group) when `brokers` is set; embedded otherwise.
    pub(crate) kafka: KafkaSection,
    /// The other instances, for queries that fan out or go to a partition's owner.
    pub(crate) cluster: ClusterSection,
    /// A simulated clock start, for benches and drills.
    pub(crate) clock: ClockSection,
}

/// `[clock]`: `start = "2026-11-20T16:59:30+07:00"` starts the service's clock at that
/// instant (then it runs at real speed) instead of the wall clock; for benches and drills
/// only (a warning is logged, and `dunghan_clock_offset_seconds` shows it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ClockSection {
    /// RFC 3339 with its offset; unset = the wall clock.
    pub(crate) start: Option<String>,
}

impl ClockSection {
    /// The start in Unix milliseconds, if set (validated at load).
    #[cfg(test)]
    pub(crate) fn start_ms(&self) -> Option<i64> {
        self.start
            .as_deref()
            .and_then(|s| crate::clock::parse_start(s).ok())
    }
}

/// Compression codecs of librdkafka's `compression.type`.
const COMPRESSIONS: [&str; 4] = ["lz4", "snappy", "gzip", "none"];

/// `[kafka]`: brokers, group, topic names and how topics are created.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct KafkaSection {
    /// `host:port[,host:port…]`; unset = embedded mode.
    pub(crate) brokers: Option<String>,
    pub(crate) group_id: String,
    /// Stable name of this instance in the group (static membership, e.g. the pod name of a
    /// StatefulSet): a restart takes its partitions back without waiting for the session
    /// timeout. Default: none (dynamic membership).
    pub(crate) instance_id: Option<String>,
    /// Input: dossier events keyed by dossier id (protobuf or proto3 JSON).
    pub(crate) input_topic: String,
    /// Output: raised SLA events, written to the input's partition number.
    pub(crate) output_topic: String,
    /// Compacted state: each dossier's applied history and each partition's checkpoint.
    pub(crate) changelog_topic: String,
    /// Input that could not be decoded or was refused, with the reason in headers.
    pub(crate) dead_letter_topic: String,
    /// Partitions of topics created at start (every topic gets the same count).
    pub(crate) partitions: i32,
    pub(crate) replication_factor: i32,
    /// `protobuf` (default) or `json` for raised events.
    pub(crate) output_format: String,
    /// How often (ms) a partition's work is made durable and its offset committed.
    pub(crate) checkpoint_interval_ms: u64,
    /// How often (ms) instead while a partition catches up (records to apply, its end not
    /// reached): each checkpoint rewrites every changed dossier's history, which in a
    /// catch-up are the same dossiers again and again. At least `checkpoint_interval_ms`;
    /// a crash in a catch-up redoes up to this much input.
    pub(crate) checkpoint_catch_up_interval_ms: u64,
    /// How the changelog producer compresses its batches: `lz4` (default), `snappy`,
    /// `gzip` or `none` (librdkafka is built without zstd). The output producer follows
    /// `[kafka.properties]` (uncompressed unless `compression.type` is set there).
    pub(crate) changelog_compression: String,
    /// Resume a partition from its beginning instead of its checkpoint offset (records
    /// before the checkpoint are skipped): for brokers that return nothing to a fetch
    /// starting inside a multi-record batch (tansu 0.6.0). Costs a re-read per restore.
    pub(crate) resume_from_beginning: bool,
    /// Input partitions (the first ones by number) applied on threads of their own, one
    /// each; the consumer thread applies the others. 0 = all on the consumer thread.
    pub(crate) partition_threads: usize,
    /// Extra librdkafka properties (security.protocol, sasl.*, …), applied to every client.
    pub(crate) properties: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaSection {
    fn default() -> KafkaSection {
        KafkaSection {
            brokers: None,
            group_id: "dunghan".into(),
            instance_id: None,
            input_topic: "dunghan.dossier-events".into(),
            output_topic: "dunghan.sla-events".into(),
            changelog_topic: "dunghan.changelog".into(),
            dead_letter_topic: "dunghan.dead-letter".into(),
            partitions: 6,
            replication_factor: 1,
            output_format: "protobuf".into(),
            checkpoint_interval_ms: 1_000,
            checkpoint_catch_up_interval_ms: 5_000,
            changelog_compression: "lz4".into(),
            resume_from_beginning: false,
            partition_threads: 64,
            properties: Default::default(),
        }
    }
}

/// `[cluster]`: this instance's gRPC address as the others reach it, and theirs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ClusterSection {
    /// Default: the gRPC listen address.
    pub(crate) advertise: Option<String>,
    /// `host:port` of every instance (this one may be listed too), as a list or a
    /// comma-separated string (`DUNGHAN__CLUSTER__PEERS=a:50051,b:50051`).
    pub(crate) peers: Peers,
}

/// A list of addresses, written as a TOML array or one comma-separated string.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "PeersForm")]
pub(crate) struct Peers(pub(crate) Vec<String>);

#[derive(Deserialize)]
#[serde(untagged)]
enum PeersForm {
    List(Vec<String>),
    Text(String),
}

impl From<PeersForm> for Peers {
    fn from(form: PeersForm) -> Peers {
        let list = match form {
            PeersForm::List(list) => list,
            PeersForm::Text(text) => text.split(',').map(str::to_owned).collect(),
        };
        Peers(
            list.into_iter()
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
        )
    }
}

/// Admin calls (calendar changes) need `authorization: Bearer <token>`; no token, no admin.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AdminSection {
    pub(crate) token: Option<String>,
}

/// The embedded node's data directory (default `./data`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StoreSection {
    pub(crate) data_dir: Option<PathBuf>,
}

/// Where a server listens (`host:port`; port 0 picks a free one).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ListenSection {
    pub(crate) listen: Option<String>,
}

/// Logging: `format = "text"` (default) or `"json"`; `level` as in `RUST_LOG` (default info).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogSection {
    pub(crate) format: Option<String>,
    pub(crate) level: Option<String>,
}

/// A section naming one input file (`[catalog] file = "procedures.toml"`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FileSection {
    pub(crate) file: Option<PathBuf>,
}

impl Config {
    /// Loads the file (if any) and overlays the `DUNGHAN__…` variables of `env`. Relative
    /// paths in the file are resolved against the file's directory.
    pub(crate) fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, String> {
        let mut root = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                let value: toml::Table = toml::from_str(&text)
                    .map_err(|e| format!("{}: {}", path.display(), one_line(&e.to_string())))?;
                value
            }
            None => toml::Table::new(),
        };
        let mut origins = Vec::new();
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                return Err(format!(
                    "environment variable {name}: expected {ENV_PREFIX}SECTION__KEY"
                ));
            };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            let table = root
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(table) = table.as_table_mut() else {
                return Err(format!(
                    "environment variable {name}: [{section}] is not a section"
                ));
            };
            match (section.as_str(), key.split_once("__")) {
                // `DUNGHAN__KAFKA__PROPERTIES__SASL_MECHANISM=PLAIN` is
                // `[kafka.properties] "sasl.mechanism" = "PLAIN"`: librdkafka's names are
                // dotted, and a variable's name cannot hold a dot.
                ("kafka", Some(("properties", property))) if !property.is_empty() => {
                    let properties = table
                        .entry("properties")
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    let Some(properties) = properties.as_table_mut() else {
                        return Err(format!(
                            "environment variable {name}: [kafka] properties is not a table"
                        ));
                    };
                    properties.insert(property.replace('_', "."), toml::Value::String(raw));
                }
                _ => {
                    table.insert(key, scalar(&raw));
                }
            }
            origins.push(name);
        }
        let origin = match (file, origins.is_empty()) {
            (Some(p), true) => p.display().to_string(),
            (Some(p), false) => format!("{} with {}", p.display(), origins.join(", ")),
            (None, false) => origins.join(", "),
            (None, true) => "defaults".into(),
        };
        let mut config: Config = toml::Value::Table(root)
            .try_into()
            .map_err(|e: toml::de::Error| format!("{origin}: {}", one_line(&e.to_string())))?;
        config
            .engine
            .validate()
            .map_err(|m| format!("{origin}: [engine] {m}"))?;
        if let Some(f) = config
            .log
            .format
            .as_deref()
            .filter(|f| !["text", "json"].contains(f))
        {
            return Err(format!(
                "{origin}: [log] format `{f}` is not one of text, json"
            ));
        }
        let k = &config.kafka;
        if !["protobuf", "json"].contains(&k.output_format.as_str()) {
            return Err(format!(
                "{origin}: [kafka] output_format `{}` is not one of protobuf, json",
                k.output_format
            ));
        }
        if !COMPRESSIONS.contains(&k.changelog_compression.as_str()) {
            return Err(format!(
                "{origin}: [kafka] changelog_compression `{}` is not one of {}",
                k.changelog_compression,
                COMPRESSIONS.join(", ")
            ));
        }
        if !(1..=10_000).contains(&k.partitions) || !(1..=16).contains(&k.replication_factor) {
            return Err(format!(
                "{origin}: [kafka] partitions must be 1–10000 and replication_factor 1–16"
            ));
        }
        if k.partition_threads > 1_024 {
            return Err(format!(
                "{origin}: [kafka] partition_threads must be 0–1024 (one thread per partition)"
            ));
        }
        if !(10..=600_000).contains(&k.checkpoint_interval_ms) {
            return Err(format!(
                "{origin}: [kafka] checkpoint_interval_ms must be 10–600000"
            ));
        }
        if !(k.checkpoint_interval_ms..=600_000).contains(&k.checkpoint_catch_up_interval_ms) {
            return Err(format!(
                "{origin}: [kafka] checkpoint_catch_up_interval_ms must be at least \
                 checkpoint_interval_ms ({}) and at most 600000",
                k.checkpoint_interval_ms
            ));
        }
        if let Some(start) = &config.clock.start {
            crate::clock::parse_start(start).map_err(|m| format!("{origin}: {m}"))?;
        }
        if let Some(dir) = file.and_then(Path::parent) {
            for f in [
                &mut config.catalog.file,
                &mut config.calendar.file,
                &mut config.store.data_dir,
            ] {
                if let Some(p) = f.as_mut().filter(|p| p.is_relative()) {
                    *p = dir.join(&*p);
                }
            }
        }
        Ok(config)
    }
}

/// An environment value as the TOML scalar it looks like (integer, float, boolean, string).
pub(crate) fn scalar(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(f) = raw.parse::<f64>() {
        toml::Value::Float(f)
    } else if let Ok(b) = raw.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(raw.to_owned())
    }
}

/// A message on one line (TOML errors span several).
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `dunghan.toml` holding `text` in a fresh directory named after `name`.
    fn config_file(name: &str, text: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("dunghan-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("dunghan.toml");
        std::fs::write(&file, text).unwrap();
        (dir, file)
    }

    #[test]
    fn defaults_file_then_environment() {
        let (dir, file) = config_file(
            "config",
            "[catalog]\nfile = \"procedures.toml\"\n[engine]\nwarning_fraction = 0.8\n",
        );
        let c = Config::load(Some(&file), env(&[])).unwrap();
        assert_eq!(c.engine.warning_fraction, 0.8);
        assert_eq!(c.catalog.file, Some(dir.join("procedures.toml")));
        assert_eq!(c.engine.apology_lead_days, 1.0, "defaults fill the rest");
        let c = Config::load(
            Some(&file),
            env(&[
                ("DUNGHAN__ENGINE__WARNING_FRACTION", "0.5"),
                ("DUNGHAN__ENGINE__APOLOGY_LEAD_DAYS", "2"),
                ("PATH", "/usr/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.engine.warning_fraction, 0.5, "environment beats the file");
        assert_eq!(c.engine.apology_lead_days, 2.0);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn librdkafka_properties_come_from_the_file_and_the_environment() {
        let (dir, file) = config_file(
            "props",
            "[kafka.properties]\n\"security.protocol\" = \"SSL\"\n\"client.id\" = \"desk\"\n",
        );
        let c = Config::load(
            Some(&file),
            env(&[
                ("DUNGHAN__KAFKA__PROPERTIES__SECURITY_PROTOCOL", "SASL_SSL"),
                (
                    "DUNGHAN__KAFKA__PROPERTIES__SASL_MECHANISM",
                    "SCRAM-SHA-512",
                ),
                ("DUNGHAN__KAFKA__PROPERTIES__QUEUED_MIN_MESSAGES", "5000"),
                ("DUNGHAN__KAFKA__GROUP_ID", "tinh"),
            ]),
        )
        .unwrap();
        let p = &c.kafka.properties;
        assert_eq!(
            p["security.protocol"], "SASL_SSL",
            "environment beats the file"
        );
        assert_eq!(
            p["sasl.mechanism"], "SCRAM-SHA-512",
            "value kept as written"
        );
        assert_eq!(p["queued.min.messages"], "5000", "a number stays text");
        assert_eq!(p["client.id"], "desk", "the file's others stay");
        assert_eq!(c.kafka.group_id, "tinh");
        let e = Config::load(None, env(&[("DUNGHAN__KAFKA__PROPERTIES", "x")])).unwrap_err();
        assert!(e.contains("properties"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_naming_them() {
        let e =
            Config::load(None, env(&[("DUNGHAN__ENGINE__WARNING_FRACTON", "0.5")])).unwrap_err();
        assert!(
            e.contains("warning_fracton") && e.contains("DUNGHAN__ENGINE__WARNING_FRACTON"),
            "{e}"
        );
        let e = Config::load(None, env(&[("DUNGHAN__NOPE__X", "1")])).unwrap_err();
        assert!(e.contains("nope"), "{e}");
        let e =
            Config::load(None, env(&[("DUNGHAN__ENGINE__WARNING_FRACTION", "1.5")])).unwrap_err();
        assert!(e.contains("warning_fraction 1.5"), "{e}");
        let e =
            Config::load(None, env(&[("DUNGHAN__KAFKA__PARTITION_THREADS", "5000")])).unwrap_err();
        assert!(e.contains("partition_threads must be 0–1024"), "{e}");
        let c = Config::load(None, env(&[("DUNGHAN__KAFKA__PARTITION_THREADS", "0")])).unwrap();
        assert_eq!(
            c.kafka.partition_threads, 0,
            "0 = all on the consumer thread"
        );
        let e = Config::load(
            None,
            env(&[
                ("DUNGHAN__KAFKA__CHECKPOINT_INTERVAL_MS", "2000"),
                ("DUNGHAN__KAFKA__CHECKPOINT_CATCH_UP_INTERVAL_MS", "1000"),
            ]),
        )
        .unwrap_err();
        assert!(
            e.contains(
                "checkpoint_catch_up_interval_ms must be at least checkpoint_interval_ms (2000)"
            ),
            "{e}"
        );
        let e = Config::load(
            None,
            env(&[("DUNGHAN__KAFKA__CHANGELOG_COMPRESSION", "lz5")]),
        )
        .unwrap_err();
        assert!(
            e.contains("changelog_compression `lz5` is not one of lz4, snappy, gzip, none"),
            "{e}"
        );
        let c = Config::load(
            None,
            env(&[("DUNGHAN__KAFKA__CHANGELOG_COMPRESSION", "none")]),
        );
        assert_eq!(c.unwrap().kafka.changelog_compression, "none");
        let e = Config::load(None, env(&[("DUNGHAN__ENGINE", "1")])).unwrap_err();
        assert!(e.contains("SECTION__KEY"), "{e}");
        let e = Config::load(Some(Path::new("/no/such/dunghan.toml")), env(&[])).unwrap_err();
        assert!(e.contains("/no/such/dunghan.toml"), "{e}");
    }

    #[test]
    fn a_simulated_clock_start_comes_from_file_or_environment_and_is_checked() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.clock.start_ms(), None, "the wall clock by default");
        let c = Config::load(
            None,
            env(&[("DUNGHAN__CLOCK__START", "2026-11-20T16:59:30+07:00")]),
        )
        .unwrap();
        assert_eq!(c.clock.start_ms(), Some(1_795_168_770_000));
        let dir = std::env::temp_dir().join(format!("dunghan-clock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("dunghan.toml");
        std::fs::write(&file, "[clock]\nstart = \"2026-11-20T16:59:30+07:00\"\n").unwrap();
        let c = Config::load(Some(&file), env(&[])).unwrap();
        assert_eq!(c.clock.start_ms(), Some(1_795_168_770_000));
        let e = Config::load(None, env(&[("DUNGHAN__CLOCK__START", "tomorrow")])).unwrap_err();
        assert!(
            e.contains("DUNGHAN__CLOCK__START")
                && e.contains("`tomorrow`")
                && e.contains("RFC 3339"),
            "{e}"
        );
        let e = Config::load(None, env(&[("DUNGHAN__CLOCK__SPEED", "2")])).unwrap_err();
        assert!(e.contains("speed"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
