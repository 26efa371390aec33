//! The timer index: each open dossier's next wake-up in an indexed binary min-heap.
//!
//! One entry per dossier (its earliest pending rule), so the index stays as small as the
//! set of open dossiers; `set` and `cancel` are O(log n) through a slot → position table,
//! and firing a burst (100 000 deadlines at 17:00) is a sequence of O(log n) pops with no
//! rebalancing pauses. Ties are broken by slot, so firing order is deterministic.
//!
//! An entry is one `u64`, time in the high half and slot in the low half, so comparing
//! entries compares (time, slot); times are Unix seconds 1970–2106 (12 bytes a dossier with
//! the position table).

const ABSENT: u32 = u32::MAX;

/// Pending wake-ups by dossier slot.
#[derive(Debug, Clone, Default)]
pub struct TimerIndex {
    /// Heap of `time << 32 | slot`, smallest first.
    heap: Vec<u64>,
    /// Position in `heap` of each slot, or ABSENT.
    pos: Vec<u32>,
}

impl TimerIndex {
    pub fn new() -> Self {
        TimerIndex::default()
    }

    /// Makes room for `n` more slots.
    pub fn reserve(&mut self, n: usize) {
        self.heap.reserve(n);
        self.pos.reserve(n);
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The earliest pending (time, slot).
    pub fn peek(&self) -> Option<(i64, u32)> {
        self.heap.first().map(|&e| unpack(e))
    }

    /// The pending time of `slot`.
    pub fn get(&self, slot: u32) -> Option<i64> {
        match self.pos.get(slot as usize) {
            Some(&p) if p != ABSENT => Some(unpack(self.heap[p as usize]).0),
            _ => None,
        }
    }

    /// Sets (inserts or moves) the wake-up of `slot`; `None` cancels it. Times outside
    /// 1970–2106 are clamped to that range.
    pub fn set(&mut self, slot: u32, time: Option<i64>) {
        let Some(time) = time else {
            self.cancel(slot);
            return;
        };
        let entry = pack(time, slot);
        if self.pos.len() <= slot as usize {
            self.pos.resize(slot as usize + 1, ABSENT);
        }
        match self.pos[slot as usize] {
            ABSENT => {
                self.heap.push(entry);
                let at = self.heap.len() - 1;
                self.pos[slot as usize] = at as u32;
                self.up(at);
            }
            p => {
                let p = p as usize;
                let old = self.heap[p];
                self.heap[p] = entry;
                if entry < old {
                    self.up(p);
                } else {
                    self.down(p);
                }
            }
        }
    }

    /// Removes the wake-up of `slot`, if any.
    pub fn cancel(&mut self, slot: u32) {
        let Some(&p) = self.pos.get(slot as usize) else {
            return;
        };
        if p == ABSENT {
            return;
        }
        let p = p as usize;
        let last = self.heap.len() - 1;
        self.swap(p, last);
        self.heap.pop();
        self.pos[slot as usize] = ABSENT;
        if p < self.heap.len() {
            self.down(p);
            self.up(p);
        }
    }

    /// Removes and returns the earliest slot whose time is at or before `upto`.
    pub fn pop_due(&mut self, upto: i64) -> Option<(i64, u32)> {
        let (time, slot) = self.peek()?;
        if time > upto {
            return None;
        }
        self.cancel(slot);
        Some((time, slot))
    }

    /// The slots pending exactly at `time`, by slot (a pass over the index).
    pub fn slots_at(&self, time: i64) -> Vec<u32> {
        let mut slots: Vec<u32> = self
            .heap
            .iter()
            .map(|&e| unpack(e))
            .filter(|&(t, _)| t == time)
            .map(|(_, slot)| slot)
            .collect();
        slots.sort_unstable();
        slots
    }

    /// The earliest moment in `(after, upto]` with at least `min` slots pending at it, and
    /// how many (a pass over the index; the window is at most a day).
    pub fn crowded(&self, after: i64, upto: i64, min: usize) -> Option<(i64, usize)> {
        let width = (upto - after).clamp(0, 86_400) as usize;
        let mut counts = vec![0usize; width];
        for &e in &self.heap {
            let (t, _) = unpack(e);
            if t > after && t <= after + width as i64 {
                counts[(t - after - 1) as usize] += 1;
            }
        }
        let i = counts.iter().position(|&n| n >= min.max(1))?;
        Some((after + 1 + i as i64, counts[i]))
    }

    /// Approximate heap bytes used.
    pub fn bytes(&self) -> usize {
        self.heap.capacity() * 8 + self.pos.capacity() * 4
    }

    fn less(&self, a: usize, b: usize) -> bool {
        self.heap[a] < self.heap[b]
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[(self.heap[a] & 0xFFFF_FFFF) as usize] = a as u32;
        self.pos[(self.heap[b] & 0xFFFF_FFFF) as usize] = b as u32;
    }

    fn up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.less(i, parent) {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut smallest = i;
            if l < n && self.less(l, smallest) {
                smallest = l;
            }
            if r < n && self.less(r, smallest) {
                smallest = r;
            }
            if smallest == i {
                break;
            }
            self.swap(i, smallest);
            i = smallest;
        }
    }
}

fn pack(time: i64, slot: u32) -> u64 {
    ((time.clamp(0, u32::MAX as i64) as u64) << 32) | slot as u64
}

fn unpack(entry: u64) -> (i64, u32) {
    ((entry >> 32) as i64, entry as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fires_in_time_then_slot_order() {
        let mut t = TimerIndex::new();
        t.set(3, Some(100));
        t.set(1, Some(100));
        t.set(2, Some(50));
        t.set(2, Some(150)); // moved later
        t.set(4, Some(10));
        t.cancel(4);
        let fired: Vec<_> = std::iter::from_fn(|| t.pop_due(120)).collect();
        assert_eq!(fired, [(100, 1), (100, 3)]);
        assert_eq!(t.get(2), Some(150));
        assert_eq!(t.pop_due(149), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_burst_on_one_minute_fires_completely() {
        let mut t = TimerIndex::new();
        for slot in 0..100_000u32 {
            t.set(slot, Some(1_000 + (slot % 60) as i64));
        }
        let mut last = (i64::MIN, 0);
        let mut n = 0;
        while let Some(x) = t.pop_due(1_059) {
            assert!(x > last);
            last = x;
            n += 1;
        }
        assert_eq!(n, 100_000);
        assert!(t.is_empty());
    }

    #[test]
    fn finds_the_crowded_moment_and_its_slots() {
        let mut t = TimerIndex::new();
        for slot in 0..50u32 {
            t.set(slot, Some(100 + (slot % 5) as i64)); // 10 slots each at 100..=104
        }
        for slot in 50..80u32 {
            t.set(slot, Some(103)); // 40 at 103
        }
        assert_eq!(t.crowded(99, 110, 20), Some((103, 40)));
        assert_eq!(t.crowded(99, 110, 5), Some((100, 10)));
        assert_eq!(t.crowded(100, 102, 5), Some((101, 10)), "after is excluded");
        assert_eq!(t.crowded(103, 110, 20), None, "upto the window only");
        let at_103 = t.slots_at(103);
        assert_eq!(at_103.len(), 40);
        assert!(at_103.windows(2).all(|w| w[0] < w[1]), "by slot");
        assert!(at_103.iter().all(|&s| t.get(s) == Some(103)));
    }

    proptest! {
        #[test]
        fn behaves_like_a_sorted_map(ops in proptest::collection::vec((0u32..64, proptest::option::of(0i64..1000)), 0..400)) {
            let mut t = TimerIndex::new();
            let mut model = std::collections::BTreeMap::new();
            for (slot, time) in ops {
                t.set(slot, time);
                match time {
                    Some(x) => { model.insert(slot, x); }
                    None => { model.remove(&slot); }
                }
                prop_assert_eq!(t.len(), model.len());
            }
            let mut expected: Vec<(i64, u32)> = model.iter().map(|(s, x)| (*x, *s)).collect();
            expected.sort();
            let fired: Vec<_> = std::iter::from_fn(|| t.pop_due(i64::MAX)).collect();
            prop_assert_eq!(fired, expected);
        }
    }
}
