//! The hypervisor as the toolstack sees it: the privileged hypercalls the shell,
//! `xm`, the domain builder and the daemons issue (sysctl, domctl, sched_op,
//! memory_op, mmuext_op, event channels, foreign mappings), the PV clock and
//! version, behind one trait so that the same code runs on Oxen (the kernel's
//! implementation in `kernel/xen.rs`) and against a recording fake in the host
//! tests.
//!
//! A frame of another domain is reached only through [`Hypervisor::map_foreign`]
//! (a [`Mapping`] handle) and [`SharedPage`] (bounded reads and writes of that
//! page, the page being shared with an untrusted guest): no raw pointer leaves
//! the kernel's implementation.
//!
//! Invariant: every refusal reaches the user as one line naming the hypercall
//! and the errno, `the hypervisor refused sysctl physinfo: -ENOSYS (function not
//! implemented)` ([`Refused`]); nothing here invents a result the hypervisor did
//! not give.

use alloc::string::String;
use core::fmt;

use xen_abi::context::VcpuGuestContext;
use xen_abi::domctl::XenDomctl;
use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::mm::MmuextOp;
use xen_abi::sysctl::XenSysctl;
use xen_abi::types::{EvtchnPort, XenPfn};

/// A page of another domain mapped into dom0 ([`Hypervisor::map_foreign`]).
/// Valid until [`Hypervisor::unmap_foreign`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mapping(pub u32);

/// A 4 KiB page shared with another domain. Offsets are checked by the
/// implementation (an access outside the page panics: a toolstack bug, never
/// guest-controlled, since every offset used comes from a masked ring index).
/// Every read is a fresh load (the guest may change the page at any time).
pub trait SharedPage {
    /// Copies `out.len()` bytes from `offset`.
    fn read(&self, offset: usize, out: &mut [u8]);
    /// Stores `data` at `offset`.
    fn write(&mut self, offset: usize, data: &[u8]);
    /// The little-endian `u32` at `offset` (4-aligned).
    fn read_u32(&self, offset: usize) -> u32;
    /// Stores a `u32` at `offset` (4-aligned).
    fn write_u32(&mut self, offset: usize, v: u32);
    /// A full memory barrier between the accesses before and after it.
    fn barrier(&self);
}

/// What `xen_version` says about the hypervisor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionInfo {
    pub major: u16,
    pub minor: u16,
    /// `XENVER_extraversion` (e.g. `.0-oxen`).
    pub extra: String,
    /// `XENVER_capabilities` (e.g. `xen-3.0-x86_32p`).
    pub capabilities: String,
}

/// The hypercalls and clocks the toolstack uses.
pub trait Hypervisor {
    /// `sysctl(op)`. `buf` is the buffer `op`'s payload names by address (if
    /// any): it stays borrowed across the call.
    fn sysctl(&mut self, op: &mut XenSysctl, buf: &mut [u8]) -> Result<(), Errno>;
    /// `domctl(op)`.
    fn domctl(&mut self, op: &mut XenDomctl) -> Result<(), Errno>;
    /// `sched_op(SCHEDOP_shutdown, {reason})` for this domain: returns only if
    /// the hypervisor refused.
    fn shutdown(&mut self, reason: u32) -> Errno;
    /// System time: ns since the hypervisor booted (the PV clock).
    fn system_time_ns(&self) -> u64;
    /// Seconds since 1970 at system time 0 (`shared_info.wc_sec`).
    fn wallclock_base(&self) -> u64;
    /// The hypervisor's version.
    fn version(&self) -> VersionInfo;
    /// `XENVER_get_features` submap 0 (0 if refused).
    fn features(&self) -> u32;

    /// `memory_op(XENMEM_populate_physmap)` for `domid`, one page per extent:
    /// `extents` holds pfns on entry and the mfns given on return. Returns how
    /// many extents were populated.
    fn populate_physmap(&mut self, domid: DomId, extents: &mut [XenPfn]) -> Result<u32, Errno>;
    /// `mmuext_op(op, 1, &done, foreigndom)`.
    fn mmuext_op(&mut self, op: &MmuextOp, foreigndom: u32) -> Result<(), Errno>;
    /// `domctl setvcpucontext` for `vcpu` of `domid`.
    fn set_vcpu_context(
        &mut self,
        domid: DomId,
        vcpu: u32,
        ctx: &VcpuGuestContext,
    ) -> Result<(), Errno>;

    /// `EVTCHNOP_alloc_unbound` in `dom` for `remote_dom`: the new port.
    fn evtchn_alloc_unbound(&mut self, dom: DomId, remote_dom: DomId) -> Result<EvtchnPort, Errno>;
    /// `EVTCHNOP_bind_interdomain`: dom0's new port, routed to the event loop.
    fn evtchn_bind_interdomain(
        &mut self,
        remote_dom: DomId,
        remote_port: EvtchnPort,
    ) -> Result<EvtchnPort, Errno>;
    /// `EVTCHNOP_bind_virq` on vcpu 0: dom0's new port, routed to the event loop.
    fn evtchn_bind_virq(&mut self, virq: u32) -> Result<EvtchnPort, Errno>;
    /// `EVTCHNOP_send`.
    fn evtchn_send(&mut self, port: EvtchnPort) -> Result<(), Errno>;
    /// `EVTCHNOP_close` (of dom0's own port).
    fn evtchn_close(&mut self, port: EvtchnPort) -> Result<(), Errno>;

    /// Maps frame `mfn` of `domid` read-write into dom0
    /// (`update_va_mapping_otherdomain`).
    fn map_foreign(&mut self, domid: DomId, mfn: XenPfn) -> Result<Mapping, Errno>;
    /// Removes a mapping made by [`Hypervisor::map_foreign`].
    fn unmap_foreign(&mut self, m: Mapping) -> Result<(), Errno>;
    /// The page behind a live mapping (`None` for an unknown handle).
    fn page(&mut self, m: Mapping) -> Option<&mut dyn SharedPage>;
}

/// The text of an errno, as `strerror` words it (lower case).
pub fn strerror(e: Errno) -> &'static str {
    match e {
        Errno::EPERM => "operation not permitted",
        Errno::ENOENT => "no such file or directory",
        Errno::ESRCH => "no such process",
        Errno::EINTR => "interrupted system call",
        Errno::EIO => "input/output error",
        Errno::ENXIO => "no such device or address",
        Errno::E2BIG => "argument list too long",
        Errno::ENOEXEC => "exec format error",
        Errno::EBADF => "bad file descriptor",
        Errno::EAGAIN => "resource temporarily unavailable",
        Errno::ENOMEM => "cannot allocate memory",
        Errno::EACCES => "permission denied",
        Errno::EFAULT => "bad address",
        Errno::EBUSY => "device or resource busy",
        Errno::EEXIST => "file exists",
        Errno::EXDEV => "invalid cross-device link",
        Errno::ENODEV => "no such device",
        Errno::ENOTDIR => "not a directory",
        Errno::EISDIR => "is a directory",
        Errno::EINVAL => "invalid argument",
        Errno::ENOSPC => "no space left on device",
        Errno::EROFS => "read-only file system",
        Errno::EDOM => "numerical argument out of domain",
        Errno::ERANGE => "numerical result out of range",
        Errno::EDEADLK => "resource deadlock avoided",
        Errno::ENOSYS => "function not implemented",
        Errno::ENOTEMPTY => "directory not empty",
        Errno::ENODATA => "no data available",
        Errno::ETIME => "timer expired",
        Errno::EOVERFLOW => "value too large for defined data type",
        Errno::ERESTART => "interrupted system call should be restarted",
        Errno::EOPNOTSUPP => "operation not supported",
        Errno::ETIMEDOUT => "connection timed out",
        _ => "unknown error",
    }
}

/// A hypercall the hypervisor refused: `what` names it as a user would look
/// it up (`sysctl getdomaininfolist`, `domctl createdomain`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub what: &'static str,
    pub errno: Errno,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the hypervisor refused {}: {} ({})",
            self.what,
            self.errno,
            strerror(self.errno)
        )
    }
}

/// Tags a hypercall result with the name of the call for [`Refused`].
pub fn refused<T>(what: &'static str, r: Result<T, Errno>) -> Result<T, Refused> {
    r.map_err(|errno| Refused { what, errno })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn refusal_names_call_errno_and_text() {
        let r = refused::<()>("sysctl getdomaininfolist", Err(Errno::ENOSYS)).unwrap_err();
        assert_eq!(
            r.to_string(),
            "the hypervisor refused sysctl getdomaininfolist: -ENOSYS (function not implemented)"
        );
        assert_eq!(refused("domctl pausedomain", Ok(7)), Ok(7));
    }

    #[test]
    fn unknown_errno_still_has_text() {
        assert_eq!(strerror(Errno(4000)), "unknown error");
        assert_eq!(strerror(Errno::EACCES), "permission denied");
        let r = Refused {
            what: "x",
            errno: Errno(4000),
        };
        assert_eq!(
            r.to_string(),
            "the hypervisor refused x: -errno 4000 (unknown error)"
        );
    }
}
