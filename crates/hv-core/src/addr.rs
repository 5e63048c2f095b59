//! Frame numbers and addresses in Xen's vocabulary.
//!
//! * [`Mfn`]: a *machine* frame number, the index of a real 4 KiB frame of RAM.
//! * [`Pfn`]: a guest's *pseudo-physical* frame number, an index into the
//!   guest's own view of its memory (translated to an `Mfn` through the P2M).
//! * [`Maddr`]: a machine byte address.
//!
//! The types never convert into one another implicitly. `Mfn` and `Maddr` are the
//! same space at two granularities and convert through [`Mfn::maddr`] and
//! [`Maddr::mfn`]; an `Mfn` and a `Pfn` are different spaces and only meet
//! through an explicit `.0`, so that a missing P2M/M2P translation is visible in
//! the code that omits it.

use core::fmt;

/// log2 of the page size.
pub const PAGE_SHIFT: u32 = 12;
/// The size of a page and of a frame, in bytes.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// A machine frame number: `Maddr >> PAGE_SHIFT`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Mfn(pub u64);

/// A guest pseudo-physical frame number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Pfn(pub u64);

/// A machine (host physical) byte address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Maddr(pub u64);

impl Mfn {
    /// The machine address of the first byte of this frame.
    ///
    /// Frame numbers of real machines are far below 2^52, so the shift loses
    /// nothing; bits shifted out of a larger value are dropped.
    pub const fn maddr(self) -> Maddr {
        Maddr(self.0 << PAGE_SHIFT)
    }
}

impl Maddr {
    /// The frame that contains this address (rounds down).
    pub const fn mfn(self) -> Mfn {
        Mfn(self.0 >> PAGE_SHIFT)
    }

    /// The first frame that starts at or above this address (rounds up).
    pub const fn mfn_up(self) -> Mfn {
        Mfn(self.0.div_ceil(PAGE_SIZE))
    }

    /// The byte offset of this address within its frame.
    pub const fn page_offset(self) -> u64 {
        self.0 & (PAGE_SIZE - 1)
    }

    /// Whether this address is the first byte of a frame.
    pub const fn is_page_aligned(self) -> bool {
        self.page_offset() == 0
    }
}

impl fmt::Display for Mfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mfn {:#x}", self.0)
    }
}

impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pfn {:#x}", self.0)
    }
}

impl fmt::Display for Maddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "maddr {:#x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn page_constants() {
        assert_eq!(PAGE_SIZE, 4096);
        assert_eq!(1u64 << PAGE_SHIFT, PAGE_SIZE);
    }

    #[test]
    fn mfn_maddr_conversions() {
        assert_eq!(Mfn(0x1234).maddr(), Maddr(0x123_4000));
        assert_eq!(Maddr(0x123_4000).mfn(), Mfn(0x1234));
        assert_eq!(Maddr(0x123_4fff).mfn(), Mfn(0x1234));
        assert_eq!(Maddr(0x123_4000).mfn_up(), Mfn(0x1234));
        assert_eq!(Maddr(0x123_4001).mfn_up(), Mfn(0x1235));
        assert_eq!(Maddr(0).mfn_up(), Mfn(0));
        assert_eq!(Maddr(u64::MAX).mfn_up(), Mfn(1 << 52));
        assert_eq!(Maddr(0x123_4abc).page_offset(), 0xabc);
        assert!(Maddr(0x5000).is_page_aligned());
        assert!(!Maddr(0x5001).is_page_aligned());
    }

    #[test]
    fn display_is_hex() {
        assert_eq!(Mfn(0x1234).to_string(), "mfn 0x1234");
        assert_eq!(Pfn(0xabc).to_string(), "pfn 0xabc");
        assert_eq!(Maddr(0x10_0000).to_string(), "maddr 0x100000");
        assert_eq!(Mfn(0).to_string(), "mfn 0x0");
    }

    #[test]
    fn ordering_and_hash_derive() {
        use std::collections::HashSet;
        assert!(Mfn(1) < Mfn(2));
        assert!(Pfn(7) > Pfn(3));
        let set: HashSet<Mfn> = [Mfn(1), Mfn(1), Mfn(2)].into_iter().collect();
        assert_eq!(set.len(), 2);
    }

    proptest! {
        #[test]
        fn maddr_mfn_roundtrip(mfn in 0u64..(1 << 52)) {
            prop_assert_eq!(Mfn(mfn).maddr().mfn(), Mfn(mfn));
            prop_assert!(Mfn(mfn).maddr().is_page_aligned());
        }

        #[test]
        fn rounding_brackets_address(a in any::<u64>()) {
            let down = Maddr(a).mfn().0;
            let up = Maddr(a).mfn_up().0;
            prop_assert!(u128::from(down) * 4096 <= u128::from(a));
            prop_assert!(u128::from(up) * 4096 >= u128::from(a));
            prop_assert!(up - down <= 1);
            prop_assert_eq!(up == down, Maddr(a).is_page_aligned());
        }
    }
}
