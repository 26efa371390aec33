//! Open dossiers by id: a hash table of slot numbers whose keys are the ids stored in the
//! slots themselves, so an id is kept once and an entry costs 4 bytes (plus control bytes).

use hashbrown::HashTable;

use crate::dossier::Dossier;

fn hash(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

fn id_of(slots: &[Option<Dossier>], slot: u32) -> &str {
    slots[slot as usize].as_ref().map_or("", |d| &d.id)
}

/// The slot of each open dossier, by dossier id.
#[derive(Debug, Clone, Default)]
pub(crate) struct DossierIndex {
    table: HashTable<u32>,
}

impl DossierIndex {
    pub(crate) fn get(&self, id: &str, slots: &[Option<Dossier>]) -> Option<u32> {
        self.table
            .find(hash(id), |&slot| id_of(slots, slot) == id)
            .copied()
    }

    /// Adds `slot`, whose dossier is already stored in `slots`.
    pub(crate) fn insert(&mut self, slot: u32, slots: &[Option<Dossier>]) {
        let id = id_of(slots, slot);
        self.table
            .insert_unique(hash(id), slot, |&s| hash(id_of(slots, s)));
    }

    /// Removes `id` (call while its dossier is still in `slots`).
    pub(crate) fn remove(&mut self, id: &str, slots: &[Option<Dossier>]) {
        if let Ok(entry) = self
            .table
            .find_entry(hash(id), |&slot| id_of(slots, slot) == id)
        {
            entry.remove();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn reserve(&mut self, n: usize, slots: &[Option<Dossier>]) {
        self.table.reserve(n, |&s| hash(id_of(slots, s)));
    }

    /// Approximate bytes: 4 per bucket plus a control byte.
    pub(crate) fn bytes(&self) -> usize {
        self.table.capacity() * 5
    }
}
