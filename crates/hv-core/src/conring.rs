//! The console ring: the last `N` bytes printed on the hypervisor console,
//! which `sysctl(readconsole)` hands to the toolstack (`xm dmesg`,
//! XEN-PV-ABI.md §15.7).
//!
//! Bytes are numbered from 0 as they are produced (a free-running u32, as
//! Xen's `conringp`); the ring holds numbers `[produced - N, produced)` (or
//! from 0 before it first wraps) and, after a clear, only what came since.
//! An incremental read names the first byte it wants and gets back the next
//! number to ask for; asking for bytes that were overwritten starts at the
//! oldest one kept.

/// A console ring of `N` bytes (`N` a power of two).
pub struct ConRing<const N: usize> {
    buf: [u8; N],
    /// Number of the next byte to be written.
    produced: u32,
    /// How many of the latest bytes are held (at most `N`; 0 after a clear).
    held: u32,
}

impl<const N: usize> Default for ConRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ConRing<N> {
    pub const fn new() -> Self {
        const { assert!(N.is_power_of_two() && N <= 1 << 30) };
        Self {
            buf: [0; N],
            produced: 0,
            held: 0,
        }
    }

    /// Appends `bytes` (only the last `N` of a longer slice survive).
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.buf[self.produced as usize & (N - 1)] = b;
            self.produced = self.produced.wrapping_add(1);
        }
        self.held = (self.held as usize + bytes.len()).min(N) as u32;
    }

    /// The number of the oldest byte still held.
    fn oldest(&self) -> u32 {
        self.produced.wrapping_sub(self.held)
    }

    /// Copies bytes from number `from` on (clamped to the oldest held) into
    /// `out`; returns how many were copied and the number to read next.
    pub fn read(&self, from: u32, out: &mut [u8]) -> (usize, u32) {
        let oldest = self.oldest();
        let start = if self.produced.wrapping_sub(from) > self.produced.wrapping_sub(oldest) {
            oldest
        } else {
            from
        };
        let available = self.produced.wrapping_sub(start) as usize;
        let n = available.min(out.len());
        for (i, o) in out.iter_mut().take(n).enumerate() {
            *o = self.buf[start.wrapping_add(i as u32) as usize & (N - 1)];
        }
        (n, start.wrapping_add(n as u32))
    }

    /// Forgets everything produced so far (`readconsole` with `clear`).
    pub fn clear(&mut self) {
        self.held = 0;
    }

    /// The number of the next byte to be produced.
    pub fn produced(&self) -> u32 {
        self.produced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_was_pushed() {
        let mut r = ConRing::<16>::new();
        r.push(b"hello ");
        r.push(b"world");
        let mut out = [0u8; 32];
        let (n, next) = r.read(0, &mut out);
        assert_eq!(&out[..n], b"hello world");
        assert_eq!(next, 11);
        // Incremental: nothing new, then only the new bytes.
        assert_eq!(r.read(next, &mut out).0, 0);
        r.push(b"!");
        let (n, next) = r.read(next, &mut out);
        assert_eq!((&out[..n], next), (&b"!"[..], 12));
    }

    #[test]
    fn keeps_the_last_n_bytes() {
        let mut r = ConRing::<8>::new();
        r.push(b"0123456789abc");
        let mut out = [0u8; 32];
        let (n, next) = r.read(0, &mut out);
        assert_eq!(&out[..n], b"56789abc");
        assert_eq!(next, 13);
        // A small buffer gets the oldest part first.
        let mut small = [0u8; 3];
        let (n, next) = r.read(0, &mut small);
        assert_eq!((&small[..n], next), (&b"567"[..], 8));
        let (n, _) = r.read(next, &mut small);
        assert_eq!(&small[..n], b"89a");
    }

    #[test]
    fn clear_forgets_the_past() {
        let mut r = ConRing::<16>::new();
        r.push(b"old");
        r.clear();
        let mut out = [0u8; 16];
        assert_eq!(r.read(0, &mut out), (0, 3));
        r.push(b"new");
        let (n, next) = r.read(0, &mut out);
        assert_eq!((&out[..n], next), (&b"new"[..], 6));
    }

    #[test]
    fn numbers_wrap_around_u32() {
        let mut r = ConRing::<8>::new();
        r.produced = u32::MAX - 2;
        r.push(b"abcdef");
        let mut out = [0u8; 8];
        let (n, next) = r.read(u32::MAX - 2, &mut out);
        assert_eq!((&out[..n], next), (&b"abcdef"[..], 3));
    }

    #[test]
    fn a_read_from_the_future_returns_nothing() {
        let mut r = ConRing::<8>::new();
        r.push(b"abc");
        let mut out = [0u8; 8];
        // Asking beyond `produced` is treated as asking for the oldest.
        let (n, _) = r.read(100, &mut out);
        assert_eq!(&out[..n], b"abc");
    }
}
