//! The hierarchical wheel proper: levels, slots and occupancy bitmaps, with no clock and no
//! thread. Time is a tick counter that only [`Wheel::poll`] moves.
//!
//! # Layout
//!
//! Six levels of 64 slots. A slot of level `l` spans `64^l` ticks, so level 0 holds the next 64
//! ticks one per slot, level 1 the next 4 096 ticks 64 per slot, and level 5 reaches `2^36`
//! ticks (795 days at 1 ms). A timer goes to the level of the highest 6-bit group in which its
//! deadline differs from the wheel's current tick, and to the slot named by its deadline's bits
//! in that group. When the wheel reaches a slot of a level above 0, the slot's timers **cascade**:
//! each is placed again, now on a lower level, and the last cascade puts it in level 0, where it
//! fires. A timer therefore moves at most five times in its life, whatever its deadline.
//!
//! Each level keeps a 64-bit **occupancy bitmap**. The next slot to visit is one rotate and one
//! trailing-zeros instruction per level, so finding the next deadline never scans slots, and
//! the driver can sleep until exactly that deadline.
//!
//! # Storage
//!
//! Entries live in a slab (`Vec<Entry<T>>` plus a free list); a key is the slab index and a
//! generation, so a stale key (fired, cancelled, reused) is recognised in `O(1)` without a hash
//! map. A slot is a `Vec<u32>` of slab indices and every entry remembers its position in it:
//! cancel is a `swap_remove` plus one position update. Appending and removing the newest entry
//! of a slot, the common life of a network timeout, touches no other entry.
//!
//! This is the hierarchical scheme 7 of G. Varghese and T. Lauck, *Hashed and Hierarchical
//! Timing Wheels* (SOSP 1987), with the level geometry of tokio's timer (6 × 64 slots) and
//! Linux's `timer_list` bitmaps.

/// Levels of the wheel.
const LEVELS: usize = 6;
/// Bits of a tick number that pick the slot within one level.
const SLOT_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << SLOT_BITS;
/// Farthest a timer is placed ahead of the current tick: 63 slots of the top level. A deadline
/// beyond it waits in the top level's farthest slot and is placed again when that slot comes up.
const MAX_AHEAD: u64 = ((SLOTS as u64) - 1) << (SLOT_BITS * (LEVELS as u32 - 1));
/// Marks "no entry" in the free list.
const NIL: u32 = u32::MAX;

/// A timer's handle inside the wheel: slab index (low 32 bits) and generation (high 32 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Key(u64);

impl Key {
    fn new(index: u32, generation: u32) -> Key {
        Key(u64::from(generation) << 32 | u64::from(index))
    }

    fn index(self) -> usize {
        (self.0 & u64::from(u32::MAX)) as usize
    }

    fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    pub(super) fn to_raw(self) -> u64 {
        self.0
    }

    pub(super) fn from_raw(raw: u64) -> Key {
        Key(raw)
    }
}

/// Where an entry is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// On the free list.
    Free,
    /// In slot `level * 64 + slot`, at `pos` of that slot's vector.
    Slot(u16),
    /// Taken out of the wheel by [`Wheel::poll`]; waits in the driver's ready queue.
    Due,
    /// Its value is out: the driver is running it.
    Firing,
}

pub(super) struct Entry<T> {
    /// The tick it is due on.
    deadline: u64,
    generation: u32,
    /// Position in its slot's vector while `Place::Slot`; next free index while `Place::Free`.
    pos: u32,
    place: Place,
    /// Stays pending after it fires (a repeating timer): counted by [`Wheel::len`] while it
    /// runs, and cancelling it then still prevents something.
    repeating: bool,
    value: Option<T>,
}

/// What [`Wheel::cancel`] found.
pub(super) enum Cancelled<T> {
    /// The timer was waiting; here is its value, which will never be taken.
    Pending(T),
    /// The timer is running now; it will not be put back after it returns. `repeating` says
    /// whether that prevented a later run.
    Running { repeating: bool },
}

/// A hierarchical timing wheel of values `T` keyed by [`Key`]; see the module docs.
pub(super) struct Wheel<T> {
    entries: Vec<Entry<T>>,
    free: u32,
    /// `LEVELS * SLOTS` vectors of slab indices.
    slots: Box<[Vec<u32>]>,
    /// Bit `s` of `occupied[l]` is set while slot `s` of level `l` is not empty.
    occupied: [u64; LEVELS],
    /// The current tick: every tick before it has been processed.
    elapsed: u64,
    /// Timers that will still run: in a slot, due, or running and repeating.
    pending: usize,
    /// A reusable vector for the slot being processed.
    scratch: Vec<u32>,
}

impl<T> Wheel<T> {
    pub(super) fn new() -> Wheel<T> {
        Wheel {
            entries: Vec::new(),
            free: NIL,
            slots: (0..LEVELS * SLOTS).map(|_| Vec::new()).collect(),
            occupied: [0; LEVELS],
            elapsed: 0,
            pending: 0,
            scratch: Vec::new(),
        }
    }

    /// Timers that will still run (see [`Wheel::pending`]).
    pub(super) fn len(&self) -> usize {
        self.pending
    }

    /// The current tick.
    #[cfg(test)]
    pub(super) fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Adds `value`, due on tick `deadline` (a past tick means the current one).
    ///
    /// # Panics
    ///
    /// If more than `u32::MAX - 1` entries are live at once.
    pub(super) fn insert(&mut self, deadline: u64, repeating: bool, value: T) -> Key {
        let index = if self.free != NIL {
            let index = self.free;
            let entry = &mut self.entries[index as usize];
            self.free = entry.pos;
            entry.repeating = repeating;
            entry.value = Some(value);
            index
        } else {
            let index = u32::try_from(self.entries.len())
                .ok()
                .filter(|&i| i != NIL)
                .expect("timing wheel: too many pending timers");
            self.entries.push(Entry {
                deadline: 0,
                generation: 1,
                pos: NIL,
                place: Place::Free,
                repeating,
                value: Some(value),
            });
            index
        };
        self.pending += 1;
        self.link(index, deadline);
        Key::new(index, self.entries[index as usize].generation)
    }

    /// Cancels the timer `key`; `None` if it has fired, was cancelled, or is a stale key.
    pub(super) fn cancel(&mut self, key: Key) -> Option<Cancelled<T>> {
        let index = self.live(key)?;
        let entry = &mut self.entries[index];
        let repeating = entry.repeating;
        let place = entry.place;
        let value = entry.value.take();
        match place {
            Place::Slot(loc) => self.unlink(index, loc),
            Place::Due => {}
            Place::Firing if repeating => {}
            // A one-shot timer that is running can no longer be prevented.
            Place::Firing => return None,
            Place::Free => unreachable!("live() returned a free entry"),
        }
        self.pending -= 1;
        self.release(index);
        Some(match value {
            Some(v) => Cancelled::Pending(v),
            None => Cancelled::Running { repeating },
        })
    }

    /// Processes every slot due on or before tick `now`: timers due by then are marked due and
    /// their keys appended to `due`, in deadline order; timers of higher levels cascade down.
    /// Afterwards the current tick is `now` (it never moves back).
    pub(super) fn poll(&mut self, now: u64, due: &mut impl Extend<Key>) {
        while let Some((level, slot, at)) = self.next_slot() {
            if at > now {
                break;
            }
            self.elapsed = at;
            let loc = level * SLOTS + slot;
            self.occupied[level] &= !(1 << slot);
            let mut taken = std::mem::take(&mut self.scratch);
            std::mem::swap(&mut taken, &mut self.slots[loc]);
            for &index in &taken {
                let entry = &mut self.entries[index as usize];
                if entry.deadline <= at {
                    entry.place = Place::Due;
                    due.extend(Some(Key::new(index, entry.generation)));
                } else {
                    let deadline = entry.deadline;
                    self.link(index, deadline);
                }
            }
            taken.clear();
            self.scratch = taken;
        }
        self.elapsed = self.elapsed.max(now);
    }

    /// The tick of the next slot to process, if any timer is pending in the wheel. It is never
    /// later than the earliest deadline (a higher-level slot comes up before its timers are due,
    /// to cascade them).
    pub(super) fn next_tick(&self) -> Option<u64> {
        self.next_slot().map(|(_, _, at)| at)
    }

    /// Takes the value of a due timer to run it. `None` if it was cancelled meanwhile.
    pub(super) fn take(&mut self, key: Key) -> Option<(T, u64)> {
        let index = self.live(key)?;
        let entry = &mut self.entries[index];
        if entry.place != Place::Due {
            return None;
        }
        entry.place = Place::Firing;
        let value = entry.value.take().expect("a due entry has its value");
        let deadline = entry.deadline;
        if !entry.repeating {
            self.pending -= 1;
        }
        Some((value, deadline))
    }

    /// After running a timer taken with [`take`](Wheel::take): puts a repeating one back, due
    /// on `next` (`Some`), or retires it (`None`). Hands `value` back if the timer was cancelled
    /// while it ran (or `next` is `None`), so the caller can drop it outside any lock.
    pub(super) fn put_back(&mut self, key: Key, next: Option<(u64, T)>) -> Option<T> {
        let Some(index) = self.live(key) else {
            return next.map(|(_, v)| v);
        };
        debug_assert_eq!(self.entries[index].place, Place::Firing);
        match next {
            Some((deadline, value)) if self.entries[index].repeating => {
                self.entries[index].value = Some(value);
                self.link(index as u32, deadline);
                None
            }
            other => {
                if self.entries[index].repeating {
                    self.pending -= 1;
                }
                self.release(index);
                other.map(|(_, v)| v)
            }
        }
    }

    /// Removes every timer; returns the values that had not run (a running repeating timer
    /// has no value here but still counts in `pending`, which is reset to 0).
    pub(super) fn drain(&mut self) -> Vec<T> {
        for slot in self.slots.iter_mut() {
            slot.clear();
        }
        self.occupied = [0; LEVELS];
        self.pending = 0;
        let mut values = Vec::new();
        for index in 0..self.entries.len() {
            if self.entries[index].place != Place::Free {
                values.extend(self.entries[index].value.take());
                self.release(index);
            }
        }
        values
    }

    /// The slab index of `key` if it names a live entry.
    fn live(&self, key: Key) -> Option<usize> {
        let entry = self.entries.get(key.index())?;
        (entry.generation == key.generation() && entry.place != Place::Free).then_some(key.index())
    }

    fn release(&mut self, index: usize) {
        let entry = &mut self.entries[index];
        entry.place = Place::Free;
        entry.value = None;
        // Wrapping: a key is stale after 2^32 reuses of one slab slot at the earliest.
        entry.generation = entry.generation.wrapping_add(1).max(1);
        entry.pos = self.free;
        self.free = index as u32;
    }

    /// Puts entry `index` in the slot for `deadline` relative to the current tick.
    fn link(&mut self, index: u32, deadline: u64) {
        let deadline = deadline.max(self.elapsed);
        let placed = deadline.min(self.elapsed.saturating_add(MAX_AHEAD));
        let level = level_for(self.elapsed, placed);
        let slot = ((placed >> (SLOT_BITS * level as u32)) as usize) & (SLOTS - 1);
        let loc = level * SLOTS + slot;
        let list = &mut self.slots[loc];
        let entry = &mut self.entries[index as usize];
        entry.deadline = deadline;
        entry.place = Place::Slot(loc as u16);
        entry.pos = list.len() as u32;
        list.push(index);
        self.occupied[level] |= 1 << slot;
    }

    fn unlink(&mut self, index: usize, loc: u16) {
        let loc = usize::from(loc);
        let pos = self.entries[index].pos as usize;
        let list = &mut self.slots[loc];
        list.swap_remove(pos);
        if let Some(&moved) = list.get(pos) {
            self.entries[moved as usize].pos = pos as u32;
        }
        if list.is_empty() {
            self.occupied[loc / SLOTS] &= !(1 << (loc % SLOTS));
        }
    }

    /// The next occupied slot at or after the current tick: `(level, slot, first tick)`.
    ///
    /// Levels are searched from 0 up: every timer of a lower level is due before the slots of
    /// the levels above it begin, because a lower level only holds deadlines that share the
    /// current tick's higher bits.
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        (0..LEVELS).find_map(|level| {
            let occupied = self.occupied[level];
            if occupied == 0 {
                return None;
            }
            let shift = SLOT_BITS * level as u32;
            let now_slot = ((self.elapsed >> shift) as usize) & (SLOTS - 1);
            let slot = (now_slot
                + occupied.rotate_right(now_slot as u32).trailing_zeros() as usize)
                & (SLOTS - 1);
            let slot_span = 1u64 << shift;
            let level_span = slot_span << SLOT_BITS;
            let level_start = self.elapsed & !(level_span - 1);
            let mut at = level_start + slot as u64 * slot_span;
            if at < self.elapsed && level > 0 {
                // Only the top level wraps: its slot is in the next turn of that level.
                at += level_span;
            }
            Some((level, slot, at))
        })
    }
}

/// The level for a deadline: the highest 6-bit group in which it differs from `elapsed`.
fn level_for(elapsed: u64, deadline: u64) -> usize {
    let differing = (elapsed ^ deadline) | (SLOTS as u64 - 1);
    let highest_bit = 63 - differing.leading_zeros();
    (highest_bit / SLOT_BITS).min(LEVELS as u32 - 1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls `wheel` tick by tick up to `until`, recording `(tick, value)` of what comes due.
    fn run_until(wheel: &mut Wheel<&'static str>, until: u64) -> Vec<(u64, &'static str)> {
        let mut fired = Vec::new();
        let mut due = Vec::new();
        for tick in wheel.elapsed()..=until {
            wheel.poll(tick, &mut due);
            for key in due.drain(..) {
                let (value, deadline) = wheel.take(key).unwrap();
                assert_eq!(deadline, tick, "{value} fired on the wrong tick");
                wheel.put_back(key, None);
                fired.push((tick, value));
            }
        }
        fired
    }

    /// Like `run_until`, but jumps from one `next_tick` to the next, as the driver does.
    fn jump_until(wheel: &mut Wheel<&'static str>, until: u64) -> Vec<(u64, &'static str)> {
        let mut fired = Vec::new();
        let mut due = Vec::new();
        while let Some(tick) = wheel.next_tick().filter(|&t| t <= until) {
            wheel.poll(tick, &mut due);
            for key in due.drain(..) {
                let (value, deadline) = wheel.take(key).unwrap();
                assert!(deadline <= tick);
                wheel.put_back(key, None);
                fired.push((tick, value));
            }
        }
        fired
    }

    const DEADLINES: [(u64, &str); 9] = [
        (0, "0"),
        (1, "1"),
        (63, "63"),
        (64, "64"),
        (100, "100"),
        (4_095, "4095"),
        (4_096, "4096"),
        (10_000_000, "10M"),
        (3_600_000, "1h at 1 ms"),
    ];

    fn expected() -> Vec<(u64, &'static str)> {
        let mut v = DEADLINES.to_vec();
        v.sort();
        v
    }

    #[test]
    fn level_is_the_highest_differing_group() {
        assert_eq!(level_for(0, 0), 0);
        assert_eq!(level_for(0, 63), 0);
        assert_eq!(level_for(0, 64), 1);
        assert_eq!(level_for(60, 70), 1);
        assert_eq!(level_for(0, 4_095), 1);
        assert_eq!(level_for(0, 4_096), 2);
        assert_eq!(level_for(0, 1 << 35), 5);
        assert_eq!(level_for(0, u64::MAX), 5, "clamped to the top level");
    }

    #[test]
    fn every_timer_comes_due_exactly_on_its_tick_tick_by_tick() {
        let mut wheel = Wheel::new();
        for (d, name) in DEADLINES.iter().take(7) {
            wheel.insert(*d, false, *name);
        }
        assert_eq!(run_until(&mut wheel, 5_000), expected()[..7]);
        assert_eq!(wheel.len(), 0);
    }

    #[test]
    fn jumping_between_next_ticks_fires_in_deadline_order_across_levels() {
        let mut wheel = Wheel::new();
        for (d, name) in DEADLINES {
            wheel.insert(d, false, name);
        }
        assert_eq!(wheel.len(), DEADLINES.len());
        let fired = jump_until(&mut wheel, 20_000_000);
        assert_eq!(
            fired.iter().map(|f| f.1).collect::<Vec<_>>(),
            expected().iter().map(|e| e.1).collect::<Vec<_>>()
        );
        // Each fired on its own deadline, since next_tick never skips past one.
        for ((tick, _), (deadline, _)) in fired.iter().zip(expected()) {
            assert_eq!(*tick, deadline);
        }
        assert_eq!(wheel.next_tick(), None);
    }

    #[test]
    fn deadlines_relative_to_a_moved_clock_and_past_deadlines() {
        let mut wheel = Wheel::new();
        wheel.poll(1_000_003, &mut Vec::new());
        wheel.insert(5, false, "past: due at once");
        wheel.insert(1_000_003, false, "now");
        wheel.insert(1_000_070, false, "next level-1 slot");
        wheel.insert(1_262_144, false, "level 3");
        let fired = jump_until(&mut wheel, 2_000_000);
        assert_eq!(
            fired,
            [
                (1_000_003, "past: due at once"),
                (1_000_003, "now"),
                (1_000_070, "next level-1 slot"),
                (1_262_144, "level 3"),
            ]
        );
    }

    #[test]
    fn a_deadline_beyond_the_top_level_waits_and_is_placed_again() {
        let mut wheel = Wheel::new();
        let far = 3 * MAX_AHEAD + 12_345;
        wheel.insert(far, false, "far");
        wheel.insert(MAX_AHEAD - 1, false, "edge");
        let fired = jump_until(&mut wheel, u64::MAX / 2);
        assert_eq!(fired, [(MAX_AHEAD - 1, "edge"), (far, "far")]);
    }

    #[test]
    fn the_top_level_wraps_around() {
        let mut wheel = Wheel::new();
        // Start late in a turn of the top level so that deadlines wrap into the next turn.
        let start = (1u64 << 36) - 5;
        wheel.poll(start, &mut Vec::new());
        wheel.insert(start + MAX_AHEAD, false, "wrapped");
        wheel.insert(start + (1 << 31), false, "sooner");
        let fired = jump_until(&mut wheel, u64::MAX / 2);
        assert_eq!(
            fired,
            [
                (start + (1 << 31), "sooner"),
                (start + MAX_AHEAD, "wrapped")
            ]
        );
    }

    #[test]
    fn cancel_pending_due_and_running() {
        let mut wheel = Wheel::new();
        let a = wheel.insert(10, false, "a");
        let b = wheel.insert(10, false, "b");
        let c = wheel.insert(10, true, "c");
        let d = wheel.insert(5_000, false, "d");
        assert!(matches!(wheel.cancel(d), Some(Cancelled::Pending("d"))));
        assert!(wheel.cancel(d).is_none(), "twice");
        let mut due = Vec::new();
        wheel.poll(10, &mut due);
        assert_eq!(due, [a, b, c]);
        // Due but not yet run: still cancellable, and take() then skips it.
        assert!(matches!(wheel.cancel(b), Some(Cancelled::Pending("b"))));
        assert!(wheel.take(b).is_none());
        // Running: a one-shot can no longer be prevented; a repeating one can.
        let (_, _) = wheel.take(a).unwrap();
        assert!(wheel.cancel(a).is_none());
        assert_eq!(wheel.put_back(a, None), None);
        let (v, _) = wheel.take(c).unwrap();
        assert_eq!(wheel.len(), 1, "a running repeating timer is still pending");
        assert!(matches!(
            wheel.cancel(c),
            Some(Cancelled::Running { repeating: true })
        ));
        assert_eq!(wheel.put_back(c, Some((20, v))), Some("c"), "handed back");
        assert_eq!(wheel.len(), 0);
        assert_eq!(wheel.next_tick(), None);
    }

    #[test]
    fn repeating_timers_are_put_back_under_the_same_key() {
        let mut wheel = Wheel::new();
        let key = wheel.insert(3, true, "r");
        let mut due = Vec::new();
        for round in 0..5u64 {
            // Jump from slot to slot (cascades included) until the timer comes due.
            while due.is_empty() {
                let tick = wheel.next_tick().unwrap();
                assert!(tick <= 3 + round * 100);
                wheel.poll(tick, &mut due);
            }
            assert_eq!(wheel.elapsed(), 3 + round * 100);
            assert_eq!(std::mem::take(&mut due), [key]);
            let (v, deadline) = wheel.take(key).unwrap();
            assert_eq!(wheel.put_back(key, Some((deadline + 100, v))), None);
        }
        assert_eq!(wheel.len(), 1);
    }

    #[test]
    fn stale_keys_never_cancel_a_reused_entry() {
        let mut wheel = Wheel::new();
        let old = wheel.insert(10, false, "old");
        assert!(wheel.cancel(old).is_some());
        let new = wheel.insert(10, false, "new");
        assert_ne!(old, new);
        assert!(wheel.cancel(old).is_none());
        assert!(wheel.cancel(new).is_some());
    }

    #[test]
    fn swap_remove_keeps_positions_right() {
        let mut wheel = Wheel::new();
        let keys: Vec<Key> = (0..10).map(|_| wheel.insert(7, false, "x")).collect();
        for key in [keys[0], keys[5], keys[9], keys[3]] {
            assert!(wheel.cancel(key).is_some());
        }
        let mut due = Vec::new();
        wheel.poll(7, &mut due);
        due.sort_by_key(|k| k.index());
        assert_eq!(due, [keys[1], keys[2], keys[4], keys[6], keys[7], keys[8]]);
    }

    #[test]
    fn drain_returns_unrun_values() {
        let mut wheel = Wheel::new();
        wheel.insert(1, false, "a");
        wheel.insert(1 << 20, false, "b");
        let mut values = wheel.drain();
        values.sort();
        assert_eq!(values, ["a", "b"]);
        assert_eq!(wheel.len(), 0);
        assert_eq!(wheel.next_tick(), None);
    }
}
