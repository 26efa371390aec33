//! Typed, layered configuration of `dunghan notify`: defaults, a TOML file, then
//! `DUNGHAN_NOTIFY__SECTION__KEY` environment variables, then flags. Its own prefix, so the
//! variables of a notifier never reach `dunghan serve` (which refuses unknown sections).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Prefix of the notifier's environment variables: `DUNGHAN_NOTIFY__WEBHOOK__URL=…`.
pub(crate) const ENV_PREFIX: &str = "DUNGHAN_NOTIFY__";

/// The notifier's configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct NotifyConfig {
    pub(crate) source: SourceSection,
    pub(crate) webhook: WebhookSection,
    pub(crate) state: StateSection,
    pub(crate) routing: RoutingSection,
    pub(crate) log: LogSection,
}

/// Where raised events come from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SourceSection {
    /// gRPC address of a node (`http://host:50051`), read with `SlaService.WatchSlaEvents`.
    pub(crate) grpc: Option<String>,
    /// Only this agency's events (empty: all).
    pub(crate) agency: Option<String>,
    /// Only events naming this department (empty: all).
    pub(crate) department: Option<String>,
}

/// The webhook events are delivered to, and how hard to try.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct WebhookSection {
    /// `http://…` URL receiving one JSON POST per event.
    pub(crate) url: Option<String>,
    /// Attempts per event before it goes to the dead-letter file.
    pub(crate) max_attempts: u32,
    /// First wait between attempts; doubles each time up to `max_backoff_ms`.
    pub(crate) initial_backoff_ms: u64,
    pub(crate) max_backoff_ms: u64,
    /// One attempt's time limit.
    pub(crate) timeout_ms: u64,
    /// Sent as `Authorization: Bearer …` when set.
    pub(crate) token: Option<String>,
}

impl Default for WebhookSection {
    fn default() -> Self {
        WebhookSection {
            url: None,
            max_attempts: 5,
            initial_backoff_ms: 500,
            max_backoff_ms: 60_000,
            timeout_ms: 10_000,
            token: None,
        }
    }
}

impl WebhookSection {
    /// The wait before attempt `attempt + 1` (attempt counts from 1): exponential, capped.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u64 << attempt.saturating_sub(1).min(20);
        Duration::from_millis(
            self.initial_backoff_ms
                .saturating_mul(factor)
                .min(self.max_backoff_ms),
        )
    }
}

/// The notifier's own durable state: delivered ids and the dead-letter file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StateSection {
    /// Directory of `delivered.log` and `dead-letter.jsonl` (default `./notify-state`).
    pub(crate) dir: Option<PathBuf>,
}

/// Who receives what.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RoutingSection {
    /// The directory file (departments' heads, agencies' leaders, the one-stop centre).
    pub(crate) directory: Option<PathBuf>,
    /// Procedure catalog, for the procedure's name in apology letters (optional).
    pub(crate) catalog: Option<PathBuf>,
    /// Kinds delivered (lower case, as in the metrics: warning, escalation, …). Default:
    /// warning, escalation, apology_required, apology_overdue, early_result,
    /// deadline_shifted.
    pub(crate) kinds: Option<Vec<String>>,
}

/// Logging on stderr.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogSection {
    pub(crate) format: Option<String>,
    pub(crate) level: Option<String>,
}

/// The kinds delivered when `[routing] kinds` is not set.
pub(crate) const DEFAULT_KINDS: [&str; 6] = [
    "warning",
    "escalation",
    "apology_required",
    "apology_overdue",
    "early_result",
    "deadline_shifted",
];

const KNOWN_KINDS: [&str; 9] = [
    "deadline_computed",
    "warning",
    "escalation",
    "apology_required",
    "apology_overdue",
    "early_result",
    "deadline_shifted",
    "outcome",
    "rejected",
];

impl NotifyConfig {
    /// Loads the file (if any) and overlays the `DUNGHAN_NOTIFY__…` variables of `env`;
    /// relative paths in the file are resolved against its directory.
    pub(crate) fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<NotifyConfig, String> {
        let mut root = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                toml::from_str::<toml::Table>(&text).map_err(|e| {
                    format!(
                        "{}: {}",
                        path.display(),
                        crate::config::one_line(&e.to_string())
                    )
                })?
            }
            None => toml::Table::new(),
        };
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                return Err(format!(
                    "environment variable {name}: expected {ENV_PREFIX}SECTION__KEY"
                ));
            };
            let section = section.to_ascii_lowercase();
            let table = root
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| {
                    format!("environment variable {name}: [{section}] is not a section")
                })?;
            let value = if key.eq_ignore_ascii_case("kinds") {
                toml::Value::Array(
                    raw.split(',')
                        .map(|k| toml::Value::String(k.trim().to_owned()))
                        .collect(),
                )
            } else {
                crate::config::scalar(&raw)
            };
            table.insert(key.to_ascii_lowercase(), value);
        }
        let origin = file.map_or_else(
            || "notify configuration".into(),
            |p| p.display().to_string(),
        );
        let mut config: NotifyConfig =
            toml::Value::Table(root)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    format!("{origin}: {}", crate::config::one_line(&e.to_string()))
                })?;
        if let Some(dir) = file.and_then(Path::parent) {
            for path in [
                &mut config.state.dir,
                &mut config.routing.directory,
                &mut config.routing.catalog,
            ]
            .into_iter()
            .flatten()
            {
                if path.is_relative() {
                    *path = dir.join(&*path);
                }
            }
        }
        Ok(config)
    }

    /// Cross-field rules, checked once flags are applied; `from_file` when the events come
    /// from a file instead of a node.
    pub(crate) fn validate(&self, from_file: bool) -> Result<(), String> {
        let url = self.webhook.url.as_deref().ok_or(
            "no webhook: set --webhook-url, [webhook] url or DUNGHAN_NOTIFY__WEBHOOK__URL",
        )?;
        if !url.starts_with("http://") {
            return Err(format!(
                "[webhook] url `{url}`: only http:// URLs (terminate TLS in an egress proxy)"
            ));
        }
        url.parse::<http::Uri>()
            .map_err(|e| format!("[webhook] url `{url}`: {e}"))?;
        if self.source.grpc.is_none() && !from_file {
            return Err(
                "no source: set --grpc, [source] grpc or DUNGHAN_NOTIFY__SOURCE__GRPC (or --from-file)"
                    .into(),
            );
        }
        let w = &self.webhook;
        if w.max_attempts == 0 || w.max_attempts > 100 {
            return Err(format!(
                "[webhook] max_attempts {} is not 1..=100",
                w.max_attempts
            ));
        }
        if w.initial_backoff_ms == 0 || w.initial_backoff_ms > w.max_backoff_ms {
            return Err("[webhook] initial_backoff_ms must be > 0 and ≤ max_backoff_ms".into());
        }
        if w.timeout_ms == 0 {
            return Err("[webhook] timeout_ms must be > 0".into());
        }
        for kind in self.kinds() {
            if !KNOWN_KINDS.contains(&kind.as_str()) {
                return Err(format!(
                    "[routing] kinds: `{kind}` is not one of {}",
                    KNOWN_KINDS.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The kinds delivered.
    pub(crate) fn kinds(&self) -> Vec<String> {
        self.routing
            .kinds
            .clone()
            .unwrap_or_else(|| DEFAULT_KINDS.iter().map(|k| (*k).to_owned()).collect())
    }
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
    fn environment_overrides_and_validation() {
        let c = NotifyConfig::load(
            None,
            env(&[
                ("DUNGHAN_NOTIFY__WEBHOOK__URL", "http://127.0.0.1:9/hook"),
                ("DUNGHAN_NOTIFY__WEBHOOK__MAX_ATTEMPTS", "3"),
                ("DUNGHAN_NOTIFY__SOURCE__GRPC", "http://127.0.0.1:50051"),
                (
                    "DUNGHAN_NOTIFY__ROUTING__KINDS",
                    "escalation, apology_required",
                ),
                ("DUNGHAN__ENGINE__WARNING_FRACTION", "0.5"),
            ]),
        )
        .unwrap();
        assert_eq!(c.webhook.max_attempts, 3);
        assert_eq!(c.kinds(), ["escalation", "apology_required"]);
        c.validate(false).unwrap();
        assert_eq!(c.webhook.backoff(1), Duration::from_millis(500));
        assert_eq!(c.webhook.backoff(3), Duration::from_millis(2000));
        assert_eq!(c.webhook.backoff(30), Duration::from_millis(60_000));

        let e =
            NotifyConfig::load(None, env(&[("DUNGHAN_NOTIFY__WEBHOOK__URLL", "x")])).unwrap_err();
        assert!(e.contains("urll"), "{e}");
        let mut c = c;
        c.webhook.url = Some("https://example.invalid/".into());
        assert!(c.validate(false).unwrap_err().contains("http://"));
        c.webhook.url = Some("http://127.0.0.1:9/".into());
        c.routing.kinds = Some(vec!["escalations".into()]);
        assert!(c.validate(false).unwrap_err().contains("escalations"));
    }
}
