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
            table.insert(key, scalar(&raw));
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
fn scalar(raw: &str) -> toml::Value {
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

fn one_line(text: &str) -> String {
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

    #[test]
    fn defaults_file_then_environment() {
        let dir = std::env::temp_dir().join(format!("dunghan-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("dunghan.toml");
        std::fs::write(
            &file,
            "[catalog]\nfile = \"procedures.toml\"\n[engine]\nwarning_fraction = 0.8\n",
        )
        .unwrap();
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
        let e = Config::load(None, env(&[("DUNGHAN__ENGINE", "1")])).unwrap_err();
        assert!(e.contains("SECTION__KEY"), "{e}");
        let e = Config::load(Some(Path::new("/no/such/dunghan.toml")), env(&[])).unwrap_err();
        assert!(e.contains("/no/such/dunghan.toml"), "{e}");
    }
}
