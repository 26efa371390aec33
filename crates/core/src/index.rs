//! Open dossiers by id: a hash table of slot numbers whose keys are the ids stored in the
//! slots themselves, so an id is kept once and an entry costs 4 bytes (plus control bytes).
//! Ids come from publishers, so they are hashed with a random key (foldhash, hashbrown's
//! default): ids made to collide under a known hash cannot be prepared in advance.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::dossier::Dossier;

fn id_of(slots: &[Option<Dossier>], slot: u32) -> &str {
    slots[slot as usize].as_ref().map_or("", |d| &d.id)
}

/// The slot of each open dossier, by dossier id.
#[derive(Debug, Clone, Default)]
pub(crate) struct DossierIndex {
    table: HashTable<u32>,
    /// This index's random hashing key.
    keys: DefaultHashBuilder,
}

impl DossierIndex {
    pub(crate) fn get(&self, id: &str, slots: &[Option<Dossier>]) -> Option<u32> {
        self.table
            .find(self.keys.hash_one(id), |&slot| id_of(slots, slot) == id)
            .copied()
    }

    /// Adds `slot`, whose dossier is already stored in `slots`.
    pub(crate) fn insert(&mut self, slot: u32, slots: &[Option<Dossier>]) {
        let (keys, id) = (&self.keys, id_of(slots, slot));
        self.table
            .insert_unique(keys.hash_one(id), slot, |&s| keys.hash_one(id_of(slots, s)));
    }

    /// Removes `id` (call while its dossier is still in `slots`).
    pub(crate) fn remove(&mut self, id: &str, slots: &[Option<Dossier>]) {
        if let Ok(entry) = self
            .table
            .find_entry(self.keys.hash_one(id), |&slot| id_of(slots, slot) == id)
        {
            entry.remove();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn reserve(&mut self, n: usize, slots: &[Option<Dossier>]) {
        let keys = &self.keys;
        self.table.reserve(n, |&s| keys.hash_one(id_of(slots, s)));
    }

    /// Approximate bytes: 4 per bucket plus a control byte.
    pub(crate) fn bytes(&self) -> usize {
        self.table.capacity() * 5
    }
}
