//! Interned strings: agencies, departments and step ids stored once, referred to by `u32`.

use std::sync::Arc;

// Names come from publishers: keyed hashing (hashbrown's default, foldhash).
use hashbrown::HashMap;

use crate::dossier::NONE;

/// Interned strings (agencies, departments, step ids).
#[derive(Debug, Clone)]
pub(crate) struct Names {
    index: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
    empty: Arc<str>,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            index: HashMap::default(),
            names: Vec::new(),
            empty: Arc::from(""),
        }
    }
}

impl Names {
    pub(crate) fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        let name: Arc<str> = name.into();
        self.names.push(name.clone());
        self.index.insert(name, i);
        i
    }

    /// The shared string of an interned name (empty for NONE).
    pub(crate) fn shared(&self, i: u32) -> Arc<str> {
        if i == NONE {
            self.empty.clone()
        } else {
            self.names[i as usize].clone()
        }
    }

    pub(crate) fn get(&self, i: u32) -> &str {
        if i == NONE {
            ""
        } else {
            &self.names[i as usize]
        }
    }
}
