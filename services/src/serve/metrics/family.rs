//! Labelled counters of the per-event path, written straight to the text format. The
//! prometheus crate's registry renders a counter vector by copying every series' label
//! pairs into a message, sorting them and encoding those: about 9 ms of CPU per scrape
//! for a province's 5 400 series, three quarters of it the copies and the sort
//! (BENCHMARKS.md). These keep each series' label values once and render them as they are.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use hashbrown::{Equivalent, HashMap};

/// A counter vector: one counter per set of label values, made at zero when first named.
#[derive(Debug, Clone)]
pub(crate) struct CounterFamily(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    name: String,
    help: String,
    labels: Vec<String>,
    /// Indexes in `labels` in the order of their names: the order the registry writes
    /// label pairs in (and sorts series by).
    order: Vec<usize>,
    series: RwLock<Table>,
}

/// A family's series, looked up by their label values and kept in the order they render.
#[derive(Debug, Default)]
struct Table {
    /// By label values, exactly (so `["ab", "c"]` and `["a", "bc"]` are two series).
    by_values: HashMap<Box<[String]>, Counter>,
    /// Sorted by the label values in the order of the label names.
    rendered: Vec<Row>,
}

/// One series as it renders.
#[derive(Debug)]
struct Row {
    /// Its label values in the order of the label names (what the rows are sorted by).
    sort_key: Box<[String]>,
    /// `{name="value",…}`, escaped.
    labels: String,
    counter: Counter,
}

/// One series of a [`CounterFamily`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Counter(Arc<AtomicU64>);

impl Counter {
    pub(crate) fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Label values as the caller has them, looked up without copying: a slice of `&str`
/// hashes as the slice of `String`s with the same values does.
#[derive(std::hash::Hash)]
struct Values<'a>(&'a [&'a str]);

impl Equivalent<Box<[String]>> for Values<'_> {
    fn equivalent(&self, key: &Box<[String]>) -> bool {
        self.0.len() == key.len() && self.0.iter().zip(key.iter()).all(|(a, b)| *a == b)
    }
}

impl CounterFamily {
    /// A family `name` with `help` and label names `labels`. Fails on a name or label
    /// name the text format does not allow.
    pub(crate) fn new(name: &str, help: &str, labels: &[&str]) -> anyhow::Result<Self> {
        for n in std::iter::once(&name).chain(labels) {
            let mut chars = n.chars();
            let valid = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            anyhow::ensure!(
                valid,
                "metric or label name `{n}` is not [a-zA-Z_][a-zA-Z0-9_]*"
            );
        }
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by_key(|i| labels[*i]);
        Ok(CounterFamily(Arc::new(Inner {
            name: name.to_owned(),
            help: help.to_owned(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            order,
            series: RwLock::default(),
        })))
    }

    /// The series of `values` (one per label name, in order: fewer is a bug, and panics),
    /// made at zero if new.
    pub(crate) fn with_label_values(&self, values: &[&str]) -> Counter {
        debug_assert_eq!(values.len(), self.0.labels.len(), "{}", self.0.name);
        if let Some(c) = self.read().by_values.get(&Values(values)) {
            return c.clone();
        }
        let mut table = self.0.series.write().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = table.by_values.get(&Values(values)) {
            return c.clone(); // made by another thread meanwhile
        }
        let counter = Counter::default();
        let key: Box<[String]> = values.iter().map(|v| v.to_string()).collect();
        table.by_values.insert(key, counter.clone());
        let Inner { labels, order, .. } = &*self.0;
        let sort_key: Box<[String]> = order.iter().map(|i| values[*i].to_owned()).collect();
        let mut rendered = String::new();
        for (n, i) in order.iter().enumerate() {
            rendered.push(if n == 0 { '{' } else { ',' });
            let _ = write!(rendered, "{}=\"{}\"", labels[*i], escape(values[*i], true));
        }
        if !order.is_empty() {
            rendered.push('}');
        }
        let at = table
            .rendered
            .binary_search_by(|row| row.sort_key.cmp(&sort_key))
            .unwrap_or_else(|at| at);
        let row = Row {
            sort_key,
            labels: rendered,
            counter: counter.clone(),
        };
        table.rendered.insert(at, row);
        counter
    }

    /// Adds 1 to the series of `values`.
    pub(crate) fn inc(&self, values: &[&str]) {
        // The read lock is let go at the end of this statement, before a new series is made.
        let counted = self
            .read()
            .by_values
            .get(&Values(values))
            .map(|c| c.inc_by(1));
        if counted.is_none() {
            self.with_label_values(values).inc_by(1);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        // A panic under the lock leaves whole counts behind: go on with them.
        self.0.series.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends the family in the text format (0.0.4) as the registry would write it: label
    /// pairs in the order of their names, series sorted by their values in that order;
    /// nothing while it has none.
    pub(crate) fn render(&self, out: &mut String) {
        let Inner { name, help, .. } = &*self.0;
        let table = self.read();
        if table.rendered.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {name} {}", escape(help, false));
        let _ = writeln!(out, "# TYPE {name} counter");
        for row in &table.rendered {
            out.push_str(name);
            out.push_str(&row.labels);
            let _ = writeln!(out, " {}", row.counter.get());
        }
    }
}

/// `text` escaped for the text format: backslash and line feed, and in a label value
/// (`quoted`) the double quote.
fn escape(text: &str, quoted: bool) -> std::borrow::Cow<'_, str> {
    let special = |c: char| c == '\\' || c == '\n' || (quoted && c == '"');
    if !text.contains(special) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quoted => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

    #[test]
    fn a_family_renders_as_the_registry_renders_a_counter_vector() {
        // Label names out of their order, a help and label values to escape.
        let (help, labels) = ("Help with \\ and\nline.", ["b", "a"]);
        let family = CounterFamily::new("t_total", help, &labels).unwrap();
        let vector = IntCounterVec::new(Opts::new("t_total", help), &labels).unwrap();
        let registry = Registry::new();
        registry.register(Box::new(vector.clone())).unwrap();
        let mut empty = String::new();
        family.render(&mut empty);
        assert_eq!(empty, "", "no series, no family");
        for (values, n) in [
            (["x", "1"], 3),
            (["quote \" and \\", "new\nline"], 1),
            (["x", "0"], 0),
            (["Đầu tư", "2"], 7),
        ] {
            family.with_label_values(&values).inc_by(n);
            vector.with_label_values(&values).inc_by(n);
        }
        family.inc(&["x", "1"]);
        vector.with_label_values(&["x", "1"]).inc();
        let mut ours = String::new();
        family.render(&mut ours);
        let mut theirs = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut theirs)
            .unwrap();
        assert_eq!(ours, String::from_utf8(theirs).unwrap());
        assert_eq!(family.with_label_values(&["x", "1"]).get(), 4);
    }

    #[test]
    fn a_family_without_labels_renders_its_one_series_bare() {
        let family = CounterFamily::new("t_total", "h", &[]).unwrap();
        family.inc(&[]);
        let mut out = String::new();
        family.render(&mut out);
        assert_eq!(out, "# HELP t_total h\n# TYPE t_total counter\nt_total 1\n");
    }

    #[test]
    fn label_values_that_run_together_alike_are_two_series() {
        let family = CounterFamily::new("t_total", "h", &["a", "b"]).unwrap();
        family.inc(&["ab", "c"]);
        family.inc(&["a", "bc"]);
        family.inc(&["a", "bc"]);
        assert_eq!(family.with_label_values(&["ab", "c"]).get(), 1);
        assert_eq!(family.with_label_values(&["a", "bc"]).get(), 2);
    }

    #[test]
    fn a_name_the_text_format_refuses_is_an_error() {
        assert!(CounterFamily::new("t-total", "h", &[]).is_err());
        assert!(CounterFamily::new("t_total", "h", &["1a"]).is_err());
        assert!(CounterFamily::new("t_total", "h", &["a_1"]).is_ok());
    }
}
