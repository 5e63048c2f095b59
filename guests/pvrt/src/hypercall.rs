//! Calls through the hypercall page (XEN-PV-ABI.md §1.2): `call hypercall_page
//! + nr * 32` with arguments in EBX, ECX, EDX, ESI, EDI and the result in EAX.

use xen_abi::errno::Errno;
use xen_abi::hypercall as nr;

unsafe extern "C" {
    fn pvrt_hypercall(nr: u32, a1: u32, a2: u32, a3: u32, a4: u32, a5: u32) -> i32;
}

/// Makes hypercall `nr` with five argument registers; returns EAX. Numbers
/// the hypercall page has no stub for (128 and up) trap with `int $0x82`
/// directly, as the stubs do.
///
/// # Safety
/// Pointer arguments must be valid for what the hypercall reads or writes.
pub unsafe fn raw(nr: u32, args: [u32; 5]) -> i32 {
    // SAFETY: the stub page was filled by the domain builder; the caller
    // vouches for the pointers among `args`.
    unsafe { pvrt_hypercall(nr, args[0], args[1], args[2], args[3], args[4]) }
}

/// A hypercall's result as `Result`: negative values are `-errno`.
pub fn result(ret: i32) -> Result<u32, Errno> {
    match Errno::from_ret(ret) {
        Some(e) => Err(e),
        None => Ok(ret as u32),
    }
}

/// `sched_op(SCHEDOP_shutdown, reason)`: never returns when it works.
pub fn shutdown(reason: u32) -> Errno {
    let arg = xen_abi::sched::SchedShutdown { reason };
    // SAFETY: `arg` lives across the call and is only read.
    let ret = unsafe {
        raw(
            nr::SCHED_OP,
            [
                xen_abi::sched::SCHEDOP_SHUTDOWN,
                &arg as *const _ as u32,
                0,
                0,
                0,
            ],
        )
    };
    Errno::from_ret(ret).unwrap_or(Errno::EINVAL)
}

/// `xen_version(cmd, arg)`.
///
/// # Safety
/// `arg` must be null or point at a buffer of the size `cmd` writes.
pub unsafe fn xen_version(cmd: u32, arg: *mut u8) -> Result<u32, Errno> {
    // SAFETY: the caller vouches for `arg`.
    result(unsafe { raw(nr::XEN_VERSION, [cmd, arg as u32, 0, 0, 0]) })
}
