//! The checked accessor for guest memory: the only way Oxen reads or writes a
//! guest virtual address it got from a hypercall.
//!
//! It first applies `hv_core::guest_access::check_guest_range` (wholly below the
//! hypervisor hole), then copies with the one faultable instruction of
//! uaccess.S; a page fault there (unmapped page, or a write to a read-only
//! page — CR0.WP is on) is fixed up and reported as `-EFAULT`.

use hv_core::guest_access::check_guest_range;
use xen_abi::errno::Errno;
use zerocopy::{FromBytes, Immutable, IntoBytes};

unsafe extern "C" {
    fn oxen_copy_checked(dst: *mut u8, src: *const u8, len: u32) -> u32;
    static oxen_ex_table_start: [u32; 0];
    static oxen_ex_table_end: [u32; 0];
    static oxen_trap_ex_table_start: [u32; 0];
    static oxen_trap_ex_table_end: [u32; 0];
    static oxen_fpu_ex_table_start: [u32; 0];
    static oxen_fpu_ex_table_end: [u32; 0];
}

/// A table of (faulting EIP, fixup EIP) pairs between two symbols.
fn table(start: *const [u32; 0], end: *const [u32; 0]) -> &'static [u32] {
    let (start, end) = (start as *const u32, end as *const u32);
    // SAFETY: uaccess.S, traps.S and fpu.S lay their tables out as consecutive
    // (fault, fixup) u32 pairs between the two symbols, in read-only data that
    // lives forever.
    unsafe { core::slice::from_raw_parts(start, end.offset_from(start) as usize) }
}

/// The fixup address for a fault at `eip`, if `eip` is a faultable
/// instruction: a guest-memory copy, a segment load or the `iret` on the
/// way back to a guest, or the load of a vcpu's FPU image (fpu.S).
pub fn search_exception_table(eip: u32) -> Option<u32> {
    let copies = table(
        core::ptr::addr_of!(oxen_ex_table_start),
        core::ptr::addr_of!(oxen_ex_table_end),
    );
    let returns = table(
        core::ptr::addr_of!(oxen_trap_ex_table_start),
        core::ptr::addr_of!(oxen_trap_ex_table_end),
    );
    let fpu = table(
        core::ptr::addr_of!(oxen_fpu_ex_table_start),
        core::ptr::addr_of!(oxen_fpu_ex_table_end),
    );
    copies
        .chunks_exact(2)
        .chain(returns.chunks_exact(2))
        .chain(fpu.chunks_exact(2))
        .find(|pair| pair[0] == eip)
        .map(|pair| pair[1])
}

/// Whether a byte of Oxen's own mapping at `va` can be read without a fault
/// (the boot-time probe of the physical-address width reads a frame it
/// mapped at a machine address the CPU may refuse).
pub fn hypervisor_byte_readable(va: u32) -> bool {
    let mut byte = 0u8;
    // SAFETY: the destination is a local byte; the source is one byte of a
    // mapping the caller owns (nothing else aliases it), and a fault on it is
    // fixed up by the exception table, as for a guest copy.
    unsafe { oxen_copy_checked(&mut byte, va as *const u8, 1) == 0 }
}

/// Copies `dst.len()` bytes from guest virtual address `va`.
pub fn copy_from_guest(dst: &mut [u8], va: u32) -> Result<(), Errno> {
    check_guest_range(va, dst.len())?;
    // SAFETY: `dst` is a valid Rust buffer of that length; the source range was
    // checked to lie below the hypervisor hole, so it cannot alias Oxen's memory,
    // and a fault on it is fixed up by the exception table.
    let left = unsafe { oxen_copy_checked(dst.as_mut_ptr(), va as *const u8, dst.len() as u32) };
    if left == 0 {
        Ok(())
    } else {
        Err(Errno::EFAULT)
    }
}

/// Copies `src` to guest virtual address `va`.
pub fn copy_to_guest(va: u32, src: &[u8]) -> Result<(), Errno> {
    check_guest_range(va, src.len())?;
    // SAFETY: as for `copy_from_guest`, with the guest range as the destination:
    // it lies below the hole, so it is never Oxen's own memory.
    let left = unsafe { oxen_copy_checked(va as *mut u8, src.as_ptr(), src.len() as u32) };
    if left == 0 {
        Ok(())
    } else {
        Err(Errno::EFAULT)
    }
}

/// Reads an ABI struct from guest memory.
pub fn read_guest<T: FromBytes + IntoBytes>(va: u32) -> Result<T, Errno> {
    let mut v = T::new_zeroed();
    copy_from_guest(v.as_mut_bytes(), va)?;
    Ok(v)
}

/// Writes an ABI struct to guest memory.
pub fn write_guest<T: IntoBytes + Immutable>(va: u32, v: &T) -> Result<(), Errno> {
    copy_to_guest(va, v.as_bytes())
}
