//! `sysctl` (#35): the privileged system-control interface of Xen 4.1
//! (interface version 8), XEN-PV-ABI.md §15.7. Tools layout: 8-aligned `u64`s.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::domid::DomId;
use crate::types::GuestHandle64;

/// `XEN_SYSCTL_INTERFACE_VERSION` of Xen 4.1; any other value gets −EACCES.
pub const XEN_SYSCTL_INTERFACE_VERSION: u32 = 0x0000_0008;

/// Read Xen's console ring ([`XenSysctlReadconsole`]).
pub const XEN_SYSCTL_READCONSOLE: u32 = 1;
/// Trace-buffer control.
pub const XEN_SYSCTL_TBUF_OP: u32 = 2;
/// Physical machine information ([`XenSysctlPhysinfo`]).
pub const XEN_SYSCTL_PHYSINFO: u32 = 3;
/// Scheduler id ([`XenSysctlSchedId`]).
pub const XEN_SYSCTL_SCHED_ID: u32 = 4;
/// Information on a range of domains ([`XenSysctlGetdomaininfolist`]).
pub const XEN_SYSCTL_GETDOMAININFOLIST: u32 = 6;
/// Inject debug keys.
pub const XEN_SYSCTL_DEBUG_KEYS: u32 = 7;
/// Per-CPU idle time.
pub const XEN_SYSCTL_GETCPUINFO: u32 = 8;
/// Free heap pages.
pub const XEN_SYSCTL_AVAILHEAP: u32 = 9;

/// Size of the `u` union of `xen_sysctl`.
pub const XEN_SYSCTL_PAYLOAD_SIZE: usize = 128;

/// `struct xen_sysctl` (136 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, align(8))]
pub struct XenSysctl {
    /// `XEN_SYSCTL_*`.
    pub cmd: u32,
    /// Must be [`XEN_SYSCTL_INTERFACE_VERSION`].
    pub interface_version: u32,
    /// The per-command payload.
    pub u: [u8; XEN_SYSCTL_PAYLOAD_SIZE],
}
assert_layout!(
    XenSysctl,
    size = 136,
    align = 8,
    cmd = 0,
    interface_version = 4,
    u = 8
);
zeroed_default!(XenSysctl);

impl XenSysctl {
    /// A request `cmd` with this interface version and `payload`.
    pub fn new<T: IntoBytes + Immutable>(cmd: u32, payload: &T) -> Self {
        let mut s = Self {
            cmd,
            interface_version: XEN_SYSCTL_INTERFACE_VERSION,
            ..Self::default()
        };
        s.set_payload(payload);
        s
    }

    /// The payload read as `T`.
    pub fn payload<T: FromBytes + IntoBytes>(&self) -> T {
        crate::types::read_union(&self.u)
    }

    /// Stores `payload` in the union (the rest is zeroed).
    pub fn set_payload<T: IntoBytes + Immutable>(&mut self, payload: &T) {
        crate::types::write_union(&mut self.u, payload);
    }
}

/// `struct xen_sysctl_readconsole` (24 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, align(8))]
pub struct XenSysctlReadconsole {
    /// IN: clear the ring after reading.
    pub clear: u8,
    /// IN: start at `index` rather than the oldest byte.
    pub incremental: u8,
    /// Padding.
    pub _pad0: [u8; 2],
    /// IN/OUT: position in the ring.
    pub index: u32,
    /// IN: caller's buffer.
    pub buffer: GuestHandle64,
    /// IN: buffer size; OUT: bytes written.
    pub count: u32,
    /// Padding.
    pub _pad1: u32,
}
assert_layout!(
    XenSysctlReadconsole,
    size = 24,
    align = 8,
    clear = 0,
    incremental = 1,
    index = 4,
    buffer = 8,
    count = 16,
);

/// `physinfo.capabilities`: HVM supported.
pub const XEN_SYSCTL_PHYSCAP_HVM: u32 = 1 << 0;
/// `physinfo.capabilities`: HVM direct I/O supported.
pub const XEN_SYSCTL_PHYSCAP_HVM_DIRECTIO: u32 = 1 << 1;

/// `struct xen_sysctl_physinfo` (96 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, align(8))]
pub struct XenSysctlPhysinfo {
    /// Threads per core.
    pub threads_per_core: u32,
    /// Cores per socket.
    pub cores_per_socket: u32,
    /// Online CPUs.
    pub nr_cpus: u32,
    /// Highest CPU id.
    pub max_cpu_id: u32,
    /// NUMA nodes.
    pub nr_nodes: u32,
    /// Highest node id.
    pub max_node_id: u32,
    /// CPU frequency in kHz.
    pub cpu_khz: u32,
    /// Padding.
    pub _pad: u32,
    /// Machine pages.
    pub total_pages: u64,
    /// Free pages.
    pub free_pages: u64,
    /// Pages waiting to be scrubbed.
    pub scrub_pages: u64,
    /// CPUID feature words.
    pub hw_cap: [u32; 8],
    /// `XEN_SYSCTL_PHYSCAP_*`.
    pub capabilities: u32,
    /// Padding.
    pub _pad1: u32,
}
assert_layout!(
    XenSysctlPhysinfo,
    size = 96,
    align = 8,
    threads_per_core = 0,
    cores_per_socket = 4,
    nr_cpus = 8,
    max_cpu_id = 12,
    nr_nodes = 16,
    max_node_id = 20,
    cpu_khz = 24,
    total_pages = 32,
    free_pages = 40,
    scrub_pages = 48,
    hw_cap = 56,
    capabilities = 88,
);

/// `struct xen_sysctl_sched_id` (4 bytes).
/// `XEN_SCHEDULER_CREDIT` (domctl.h): the id `sched_id` reports for Xen's
/// credit scheduler (SEDF is 4, credit2 6).
pub const XEN_SCHEDULER_CREDIT: u32 = 5;

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenSysctlSchedId {
    /// OUT: scheduler id.
    pub sched_id: u32,
}
assert_layout!(XenSysctlSchedId, size = 4, align = 4, sched_id = 0);

/// `struct xen_sysctl_getdomaininfolist` (24 bytes). The buffer receives
/// [`crate::domctl::XenDomctlGetdomaininfo`] records (80 bytes each).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, align(8))]
pub struct XenSysctlGetdomaininfolist {
    /// IN: first domain id.
    pub first_domain: DomId,
    /// Padding.
    pub _pad0: u16,
    /// IN: records the buffer holds.
    pub max_domains: u32,
    /// IN: caller's buffer.
    pub buffer: GuestHandle64,
    /// OUT: records written.
    pub num_domains: u32,
    /// Padding.
    pub _pad1: u32,
}
assert_layout!(
    XenSysctlGetdomaininfolist,
    size = 24,
    align = 8,
    first_domain = 0,
    max_domains = 4,
    buffer = 8,
    num_domains = 16,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_payload() {
        let p = XenSysctlPhysinfo {
            nr_cpus: 1,
            total_pages: 65536,
            capabilities: 0,
            ..Default::default()
        };
        let s = XenSysctl::new(XEN_SYSCTL_PHYSINFO, &p);
        assert_eq!(s.interface_version, 8);
        assert_eq!(s.payload::<XenSysctlPhysinfo>(), p);
        assert_eq!(&s.as_bytes()[40..48], &65536u64.to_le_bytes());
    }
}
