//! Requests in flight, by id.
//!
//! The front end gives each request an id that names a slot here (low 32
//! bits) and that slot's generation (high 32 bits), and keeps with it what the
//! completion needs (the grants to revoke, the caller to wake). A response is
//! matched by its id; an id that names no request in flight — never issued,
//! already answered, or from an earlier use of the slot — is refused, so a
//! confused or hostile back end cannot complete a request twice or complete
//! the wrong one.

/// A response's id named no request in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownId(pub u64);

/// Up to `N` requests in flight (`N` = the ring size).
pub struct InFlight<T, const N: usize> {
    slots: [Option<T>; N],
    generation: [u32; N],
    busy: usize,
}

impl<T, const N: usize> Default for InFlight<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> InFlight<T, N> {
    /// Nothing in flight.
    pub fn new() -> Self {
        InFlight {
            slots: core::array::from_fn(|_| None),
            generation: [0; N],
            busy: 0,
        }
    }

    /// Requests in flight.
    pub fn len(&self) -> usize {
        self.busy
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.busy == 0
    }

    /// Records `v` and returns the id to put in the request; gives `v` back if
    /// `N` requests are already in flight.
    pub fn insert(&mut self, v: T) -> Result<u64, T> {
        let Some(i) = self.slots.iter().position(Option::is_none) else {
            return Err(v);
        };
        self.generation[i] = self.generation[i].wrapping_add(1);
        self.slots[i] = Some(v);
        self.busy += 1;
        Ok(u64::from(self.generation[i]) << 32 | i as u64)
    }

    /// Completes the request with id `id` and returns what was recorded.
    pub fn complete(&mut self, id: u64) -> Result<T, UnknownId> {
        let i = (id & 0xFFFF_FFFF) as usize;
        let generation = (id >> 32) as u32;
        if i >= N || self.generation[i] != generation {
            return Err(UnknownId(id));
        }
        let v = self.slots[i].take().ok_or(UnknownId(id))?;
        self.busy -= 1;
        Ok(v)
    }

    /// Hands every request still in flight to `f` and forgets it (the ring is
    /// being torn down: fail them, revoke their grants).
    pub fn drain(&mut self, mut f: impl FnMut(T)) {
        for v in self.slots.iter_mut().filter_map(Option::take) {
            f(v);
        }
        self.busy = 0;
    }
}
