//! PAE page-table entries: their bits (XEN-PV-ABI.md §7.1) and which flags a
//! present entry may carry at each level (§7.7).
//!
//! The checks here look at one entry's bits only; what the entry points at is
//! the engine's business (`validate.rs`).

use hv_core::addr::Mfn;
use xen_abi::errno::Errno;

pub use xen_abi::mm::{
    PAGE_ACCESSED, PAGE_AVAIL, PAGE_DIRTY, PAGE_GLOBAL, PAGE_NX, PAGE_PAT, PAGE_PCD, PAGE_PRESENT,
    PAGE_PSE, PAGE_PWT, PAGE_RW, PAGE_USER, PTE_FRAME_MASK, PTE_HIGH_RESERVED_MASK,
};

/// The cache-attribute bits of an L1 entry, allowed to domains with I/O-memory
/// privilege.
pub const L1_CACHE_ATTRS: u64 = PAGE_PWT | PAGE_PCD | PAGE_PAT;
/// L1 bits that must be 0 when the entry is present (NX is handled apart).
pub const L1_DISALLOW_MASK: u64 = L1_CACHE_ATTRS | PAGE_GLOBAL | PTE_HIGH_RESERVED_MASK;
/// L2 bits that must be 0 when the entry is present (NX and PSE are handled apart).
///
/// As in Xen, PWT/PCD are refused here even for I/O-privileged domains: they would
/// only change how the CPU caches the L1 table itself.
pub const L2_DISALLOW_MASK: u64 = PAGE_PWT | PAGE_PCD | PAGE_GLOBAL | PTE_HIGH_RESERVED_MASK;
/// L3 bits that must be 0 when the entry is present. The guest's L3 never
/// reaches CR3 (Oxen loads a filtered per-vcpu copy, see [`crate::low_l3`]), so
/// its entries may carry what 64-bit Xen accepts from a 32-bit (compat) guest:
/// P, RW, US, A, D and the available bits besides the frame. Refused as there:
/// PWT, PCD, PS, G and bits 44–63 (NX included) — Xen's `COMPAT_L3_DISALLOW_MASK`
/// `0xFFFFF198` on the flag word (XEN-PV-ABI.md §7.7). A guest that sets just P
/// (what 32-bit Xen demands) passes too.
pub const L3_DISALLOW_MASK: u64 =
    PAGE_PWT | PAGE_PCD | PAGE_PSE | PAGE_GLOBAL | PTE_HIGH_RESERVED_MASK | PAGE_NX;

const _: () = assert!(L3_DISALLOW_MASK & 0xFFF == 0x198);
const _: () = assert!(L3_DISALLOW_MASK >> 44 == 0xF_FFFF);
const _: () = assert!(PTE_HIGH_RESERVED_MASK == ((1 << 63) - (1 << 44)));
const _: () = assert!(PTE_FRAME_MASK == ((1 << 44) - (1 << 12)));

/// Whether an entry is present.
pub const fn is_present(pte: u64) -> bool {
    pte & PAGE_PRESENT != 0
}

/// Whether an entry is writable.
pub const fn is_writable(pte: u64) -> bool {
    pte & PAGE_RW != 0
}

/// The machine frame an entry points at.
pub const fn pte_mfn(pte: u64) -> Mfn {
    Mfn((pte & PTE_FRAME_MASK) >> 12)
}

/// An entry mapping `mfn` with `flags`.
pub const fn pte(mfn: Mfn, flags: u64) -> u64 {
    ((mfn.0 << 12) & PTE_FRAME_MASK) | flags
}

/// Whether two entries differ in their frame or in any of `flags` (Xen's
/// `l1e_has_changed`): if not, an update only changes bits that hold no
/// reference and needs no new references.
pub const fn has_changed(old: u64, new: u64, flags: u64) -> bool {
    (old ^ new) & (PTE_FRAME_MASK | flags) != 0
}

/// Checks the flags of a present L1 entry.
///
/// `nx_supported`: whether NX may be set. `io_privileged`: whether the domain may
/// choose cache attributes (PWT/PCD/PAT).
pub const fn check_l1_flags(
    pte: u64,
    nx_supported: bool,
    io_privileged: bool,
) -> Result<(), Errno> {
    let mut disallow = L1_DISALLOW_MASK;
    if io_privileged {
        disallow &= !L1_CACHE_ATTRS;
    }
    if !nx_supported {
        disallow |= PAGE_NX;
    }
    if pte & disallow != 0 {
        Err(Errno::EINVAL)
    } else {
        Ok(())
    }
}

/// Checks the flags of a present L2 entry. PSE is refused: Oxen gives guests no
/// superpages (Xen accepts them only when booted with `allowsuperpage`).
pub const fn check_l2_flags(pte: u64, nx_supported: bool) -> Result<(), Errno> {
    let mut disallow = L2_DISALLOW_MASK | PAGE_PSE;
    if !nx_supported {
        disallow |= PAGE_NX;
    }
    if pte & disallow != 0 {
        Err(Errno::EINVAL)
    } else {
        Ok(())
    }
}

/// Checks the flags of a present L3 entry against [`L3_DISALLOW_MASK`].
pub const fn check_l3_flags(pte: u64) -> Result<(), Errno> {
    if pte & L3_DISALLOW_MASK != 0 {
        Err(Errno::EINVAL)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip() {
        let e = pte(Mfn(0xABC_DEF01), PAGE_PRESENT | PAGE_RW);
        assert_eq!(pte_mfn(e), Mfn(0xABC_DEF01));
        assert!(is_present(e) && is_writable(e));
        // Frame bits beyond 44 address bits are dropped, not smuggled into flags.
        assert_eq!(pte(Mfn(1 << 32), 0), 0);
    }

    #[test]
    fn has_changed_looks_at_frame_and_given_flags() {
        let a = pte(Mfn(5), PAGE_PRESENT | PAGE_RW);
        assert!(!has_changed(
            a,
            a | PAGE_ACCESSED | PAGE_DIRTY,
            PAGE_PRESENT | PAGE_RW
        ));
        assert!(has_changed(a, a & !PAGE_RW, PAGE_PRESENT | PAGE_RW));
        assert!(!has_changed(a, a & !PAGE_RW, PAGE_PRESENT));
        assert!(has_changed(a, pte(Mfn(6), PAGE_PRESENT | PAGE_RW), 0));
    }

    #[test]
    fn l1_flag_rules() {
        let ok = pte(
            Mfn(7),
            PAGE_PRESENT | PAGE_RW | PAGE_USER | PAGE_ACCESSED | PAGE_DIRTY | PAGE_AVAIL,
        );
        assert_eq!(check_l1_flags(ok, false, false), Ok(()));
        for bad in [PAGE_PWT, PAGE_PCD, PAGE_PAT, PAGE_GLOBAL, 1 << 44, 1 << 62] {
            assert_eq!(
                check_l1_flags(ok | bad, true, false),
                Err(Errno::EINVAL),
                "{bad:#x}"
            );
        }
        for cache in [PAGE_PWT, PAGE_PCD, PAGE_PAT] {
            assert_eq!(check_l1_flags(ok | cache, false, true), Ok(()));
        }
        assert_eq!(
            check_l1_flags(ok | PAGE_GLOBAL, false, true),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            check_l1_flags(ok | PAGE_NX, false, false),
            Err(Errno::EINVAL)
        );
        assert_eq!(check_l1_flags(ok | PAGE_NX, true, false), Ok(()));
    }

    #[test]
    fn l2_flag_rules() {
        let ok = pte(Mfn(7), PAGE_PRESENT | PAGE_RW | PAGE_USER | PAGE_ACCESSED);
        assert_eq!(check_l2_flags(ok, false), Ok(()));
        for bad in [PAGE_PWT, PAGE_PCD, PAGE_PSE, PAGE_GLOBAL, 1 << 44, 1 << 62] {
            assert_eq!(
                check_l2_flags(ok | bad, true),
                Err(Errno::EINVAL),
                "{bad:#x}"
            );
        }
        assert_eq!(check_l2_flags(ok | PAGE_NX, false), Err(Errno::EINVAL));
        assert_eq!(check_l2_flags(ok | PAGE_NX, true), Ok(()));
    }

    #[test]
    fn l3_flag_rules() {
        let ok = pte(Mfn(0xF_FFFF_FFFF), PAGE_PRESENT | PAGE_AVAIL);
        assert_eq!(check_l3_flags(ok), Ok(()));
        // What 64-bit Xen takes from a compat guest: RW, US, A and D.
        for bit in [1, 2, 5, 6] {
            assert_eq!(check_l3_flags(ok | 1 << bit), Ok(()), "bit {bit}");
        }
        let all = PAGE_RW | PAGE_USER | PAGE_ACCESSED | PAGE_DIRTY;
        assert_eq!(check_l3_flags(ok | all), Ok(()));
        // Cache attributes, PS and G never.
        for bit in [3, 4, 7, 8] {
            assert_eq!(
                check_l3_flags(ok | all | 1 << bit),
                Err(Errno::EINVAL),
                "bit {bit}"
            );
        }
        // Nor bits 44-63 (NX included, whether or not the CPU has NX).
        for bit in 44..=63 {
            assert_eq!(
                check_l3_flags(ok | 1 << bit),
                Err(Errno::EINVAL),
                "bit {bit}"
            );
        }
    }
}
