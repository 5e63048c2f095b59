//! The rule for guest pointers: a range a guest passes to a hypercall must lie
//! wholly below the hypervisor hole (`HYPERVISOR_VIRT_START`) without wrapping.
//! The hypervisor copies through one accessor that applies this check and then
//! relies on fault fixup for pages that are not mapped (or not writable).

use xen_abi::errno::Errno;
use xen_abi::layout::HYPERVISOR_VIRT_START;

/// Checks that `[va, va + len)` is a guest range Oxen may copy to or from.
/// A zero-length range is fine anywhere below the hole.
pub fn check_guest_range(va: u32, len: usize) -> Result<(), Errno> {
    let len = u32::try_from(len).map_err(|_| Errno::EFAULT)?;
    let end = va.checked_add(len).ok_or(Errno::EFAULT)?;
    if va >= HYPERVISOR_VIRT_START || end > HYPERVISOR_VIRT_START {
        return Err(Errno::EFAULT);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_below_the_hole_pass() {
        assert_eq!(check_guest_range(0, 4096), Ok(()));
        assert_eq!(check_guest_range(0xC000_0000, 1112), Ok(()));
        assert_eq!(check_guest_range(HYPERVISOR_VIRT_START - 8, 8), Ok(()));
        assert_eq!(check_guest_range(HYPERVISOR_VIRT_START - 1, 0), Ok(()));
    }

    #[test]
    fn ranges_touching_the_hole_or_wrapping_fail() {
        assert_eq!(
            check_guest_range(HYPERVISOR_VIRT_START - 8, 9),
            Err(Errno::EFAULT)
        );
        assert_eq!(
            check_guest_range(HYPERVISOR_VIRT_START, 0),
            Err(Errno::EFAULT)
        );
        assert_eq!(check_guest_range(0xF680_0000, 4), Err(Errno::EFAULT));
        assert_eq!(check_guest_range(0xFFFF_FFF0, 0x20), Err(Errno::EFAULT));
        assert_eq!(check_guest_range(0x1000, usize::MAX), Err(Errno::EFAULT));
    }
}
