//! `domctl` (#36): the privileged domain-control interface of Xen 4.1
//! (interface version 7), XEN-PV-ABI.md §15.7.
//!
//! This is a tools interface: `u64` fields and 64-bit guest handles are 8-aligned,
//! so the layouts are identical for 32- and 64-bit callers. Structs with `u64`
//! fields are `align(8)` with explicit padding.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::domid::DomId;
use crate::types::GuestHandle64;
use crate::version::XenDomainHandle;

/// `XEN_DOMCTL_INTERFACE_VERSION` of Xen 4.1; any other value gets −EACCES.
pub const XEN_DOMCTL_INTERFACE_VERSION: u32 = 0x0000_0007;

/// `DOM0_INTERFACE_VERSION` of Xen 3.0.0–3.0.2's `dom0_op` (hypercall 7).
pub const DOM0_INTERFACE_VERSION: u32 = 0x0300_0000;

/// Create a domain ([`XenDomctlCreatedomain`]).
pub const XEN_DOMCTL_CREATEDOMAIN: u32 = 1;
/// Destroy a domain.
pub const XEN_DOMCTL_DESTROYDOMAIN: u32 = 2;
/// Pause a domain.
pub const XEN_DOMCTL_PAUSEDOMAIN: u32 = 3;
/// Unpause a domain.
pub const XEN_DOMCTL_UNPAUSEDOMAIN: u32 = 4;
/// Information on the first domain with id ≥ `domain` ([`XenDomctlGetdomaininfo`]).
pub const XEN_DOMCTL_GETDOMAININFO: u32 = 5;
/// List a domain's frames ([`XenDomctlGetmemlist`]).
pub const XEN_DOMCTL_GETMEMLIST: u32 = 6;
/// Page type of one frame.
pub const XEN_DOMCTL_GETPAGEFRAMEINFO: u32 = 7;
/// Page types of a list of frames.
pub const XEN_DOMCTL_GETPAGEFRAMEINFO2: u32 = 8;
/// Set a VCPU's affinity ([`XenDomctlVcpuaffinity`]).
pub const XEN_DOMCTL_SETVCPUAFFINITY: u32 = 9;
/// Set the memory limit ([`XenDomctlMaxMem`]).
pub const XEN_DOMCTL_MAX_MEM: u32 = 11;
/// Set a VCPU's context ([`XenDomctlVcpucontext`]).
pub const XEN_DOMCTL_SETVCPUCONTEXT: u32 = 12;
/// Get a VCPU's context ([`XenDomctlVcpucontext`]).
pub const XEN_DOMCTL_GETVCPUCONTEXT: u32 = 13;
/// VCPU information ([`XenDomctlGetvcpuinfo`]).
pub const XEN_DOMCTL_GETVCPUINFO: u32 = 14;
/// Set the number of VCPUs ([`XenDomctlMaxVcpus`]).
pub const XEN_DOMCTL_MAX_VCPUS: u32 = 15;
/// Set the domain's UUID ([`XenDomctlSetdomainhandle`]).
pub const XEN_DOMCTL_SETDOMAINHANDLE: u32 = 17;
/// Grant/revoke a physical IRQ ([`XenDomctlIrqPermission`]).
pub const XEN_DOMCTL_IRQ_PERMISSION: u32 = 19;
/// Grant/revoke I/O memory ([`XenDomctlIomemPermission`]).
pub const XEN_DOMCTL_IOMEM_PERMISSION: u32 = 20;
/// Grant/revoke I/O ports ([`XenDomctlIoportPermission`]).
pub const XEN_DOMCTL_IOPORT_PERMISSION: u32 = 21;
/// Write the hypercall page into a frame ([`XenDomctlHypercallInit`]).
pub const XEN_DOMCTL_HYPERCALL_INIT: u32 = 22;
/// Set the wall-clock offset ([`XenDomctlSettimeoffset`]).
pub const XEN_DOMCTL_SETTIMEOFFSET: u32 = 24;
/// Get a VCPU's affinity ([`XenDomctlVcpuaffinity`]).
pub const XEN_DOMCTL_GETVCPUAFFINITY: u32 = 25;
/// HVM only.
pub const XEN_DOMCTL_GETHVMCONTEXT: u32 = 33;
/// HVM only.
pub const XEN_DOMCTL_SETHVMCONTEXT: u32 = 34;
/// Set the guest address size ([`XenDomctlAddressSize`]); 64-bit Xen needs 32
/// before building a 32-bit PV domain.
pub const XEN_DOMCTL_SET_ADDRESS_SIZE: u32 = 35;
/// Get the guest address size ([`XenDomctlAddressSize`]).
pub const XEN_DOMCTL_GET_ADDRESS_SIZE: u32 = 36;
/// Page types of a list of frames (v3).
pub const XEN_DOMCTL_GETPAGEFRAMEINFO3: u32 = 61;

/// Size of the `u` union of `xen_domctl`.
pub const XEN_DOMCTL_PAYLOAD_SIZE: usize = 128;

/// `struct xen_domctl` (144 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, align(8))]
pub struct XenDomctl {
    /// `XEN_DOMCTL_*`.
    pub cmd: u32,
    /// Must be [`XEN_DOMCTL_INTERFACE_VERSION`].
    pub interface_version: u32,
    /// Target domain.
    pub domain: DomId,
    /// Padding up to the union.
    pub _pad: [u8; 6],
    /// The per-command payload.
    pub u: [u8; XEN_DOMCTL_PAYLOAD_SIZE],
}
assert_layout!(
    XenDomctl,
    size = 144,
    align = 8,
    cmd = 0,
    interface_version = 4,
    domain = 8,
    u = 16
);
zeroed_default!(XenDomctl);

impl XenDomctl {
    /// A request `cmd` on `domain` with this interface version and `payload`.
    pub fn new<T: IntoBytes + Immutable>(cmd: u32, domain: DomId, payload: &T) -> Self {
        let mut d = Self {
            cmd,
            interface_version: XEN_DOMCTL_INTERFACE_VERSION,
            domain,
            ..Self::default()
        };
        d.set_payload(payload);
        d
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

/// `XEN_DOMCTL_CDF_hvm_guest` (clear for PV).
pub const XEN_DOMCTL_CDF_HVM_GUEST: u32 = 1 << 0;
/// `XEN_DOMCTL_CDF_hap`.
pub const XEN_DOMCTL_CDF_HAP: u32 = 1 << 1;
/// `XEN_DOMCTL_CDF_s3_integrity`.
pub const XEN_DOMCTL_CDF_S3_INTEGRITY: u32 = 1 << 2;
/// `XEN_DOMCTL_CDF_oos_off`.
pub const XEN_DOMCTL_CDF_OOS_OFF: u32 = 1 << 3;

/// `struct xen_domctl_createdomain` (24 bytes). With `domain` = 0 Xen picks the id
/// and returns it in `xen_domctl.domain`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenDomctlCreatedomain {
    /// Security label.
    pub ssidref: u32,
    /// UUID.
    pub handle: XenDomainHandle,
    /// `XEN_DOMCTL_CDF_*`.
    pub flags: u32,
}
assert_layout!(
    XenDomctlCreatedomain,
    size = 24,
    align = 4,
    ssidref = 0,
    handle = 4,
    flags = 20
);

/// `XEN_DOMINF_dying`.
pub const XEN_DOMINF_DYING: u32 = 1 << 0;
/// `XEN_DOMINF_hvm_guest`.
pub const XEN_DOMINF_HVM_GUEST: u32 = 1 << 1;
/// `XEN_DOMINF_shutdown`: the shutdown reason is in bits 16–23.
pub const XEN_DOMINF_SHUTDOWN: u32 = 1 << 2;
/// `XEN_DOMINF_paused`.
pub const XEN_DOMINF_PAUSED: u32 = 1 << 3;
/// `XEN_DOMINF_blocked`.
pub const XEN_DOMINF_BLOCKED: u32 = 1 << 4;
/// `XEN_DOMINF_running`.
pub const XEN_DOMINF_RUNNING: u32 = 1 << 5;
/// `XEN_DOMINF_debugged`.
pub const XEN_DOMINF_DEBUGGED: u32 = 1 << 6;
/// `XEN_DOMINF_shutdownshift`.
pub const XEN_DOMINF_SHUTDOWNSHIFT: u32 = 16;
/// `XEN_DOMINF_shutdownmask`.
pub const XEN_DOMINF_SHUTDOWNMASK: u32 = 255;

/// The shutdown reason in `getdomaininfo.flags`.
pub const fn dominf_shutdown_reason(flags: u32) -> u32 {
    (flags >> XEN_DOMINF_SHUTDOWNSHIFT) & XEN_DOMINF_SHUTDOWNMASK
}

/// `getdomaininfo.flags` with `reason` stored in bits 16–23.
pub const fn dominf_with_shutdown_reason(flags: u32, reason: u32) -> u32 {
    (flags & !(XEN_DOMINF_SHUTDOWNMASK << XEN_DOMINF_SHUTDOWNSHIFT))
        | ((reason & XEN_DOMINF_SHUTDOWNMASK) << XEN_DOMINF_SHUTDOWNSHIFT)
}

/// `struct xen_domctl_getdomaininfo` (80 bytes); also the record type of
/// `XEN_SYSCTL_getdomaininfolist`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, align(8))]
pub struct XenDomctlGetdomaininfo {
    /// Domain id.
    pub domain: DomId,
    /// Padding.
    pub _pad0: u16,
    /// `XEN_DOMINF_*`.
    pub flags: u32,
    /// Pages owned.
    pub tot_pages: u64,
    /// Page limit.
    pub max_pages: u64,
    /// Shared pages.
    pub shr_pages: u64,
    /// MFN of the shared-info page.
    pub shared_info_frame: u64,
    /// CPU time used (ns).
    pub cpu_time: u64,
    /// Online VCPUs.
    pub nr_online_vcpus: u32,
    /// Highest VCPU id.
    pub max_vcpu_id: u32,
    /// Security label.
    pub ssidref: u32,
    /// UUID.
    pub handle: XenDomainHandle,
    /// CPU pool.
    pub cpupool: u32,
}
assert_layout!(
    XenDomctlGetdomaininfo,
    size = 80,
    align = 8,
    domain = 0,
    flags = 4,
    tot_pages = 8,
    max_pages = 16,
    shr_pages = 24,
    shared_info_frame = 32,
    cpu_time = 40,
    nr_online_vcpus = 48,
    max_vcpu_id = 52,
    ssidref = 56,
    handle = 60,
    cpupool = 76,
);

/// `struct xen_domctl_getmemlist` (32 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, align(8))]
pub struct XenDomctlGetmemlist {
    /// IN: size of the buffer.
    pub max_pfns: u64,
    /// IN: first PFN.
    pub start_pfn: u64,
    /// IN: buffer of `u64` frame numbers.
    pub buffer: GuestHandle64,
    /// OUT: number written.
    pub num_pfns: u64,
}
assert_layout!(
    XenDomctlGetmemlist,
    size = 32,
    align = 8,
    max_pfns = 0,
    start_pfn = 8,
    buffer = 16,
    num_pfns = 24,
);

/// `getpageframeinfo*`: not a page table.
pub const XEN_DOMCTL_PFINFO_NOTAB: u32 = 0;
/// `getpageframeinfo*`: L1 table.
pub const XEN_DOMCTL_PFINFO_L1TAB: u32 = 1 << 28;
/// `getpageframeinfo*`: L2 table.
pub const XEN_DOMCTL_PFINFO_L2TAB: u32 = 2 << 28;
/// `getpageframeinfo*`: L3 table.
pub const XEN_DOMCTL_PFINFO_L3TAB: u32 = 3 << 28;
/// `getpageframeinfo*`: L4 table.
pub const XEN_DOMCTL_PFINFO_L4TAB: u32 = 4 << 28;
/// `getpageframeinfo*`: the table is pinned.
pub const XEN_DOMCTL_PFINFO_LPINTAB: u32 = 1 << 31;
/// `getpageframeinfo*`: invalid page.
pub const XEN_DOMCTL_PFINFO_XTAB: u32 = 0xF << 28;
/// `getpageframeinfo*`: the type bits.
pub const XEN_DOMCTL_PFINFO_LTAB_MASK: u32 = 0xF << 28;

/// `struct xen_domctl_max_mem` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, align(8))]
pub struct XenDomctlMaxMem {
    /// Limit in KiB.
    pub max_memkb: u64,
}
assert_layout!(XenDomctlMaxMem, size = 8, align = 8, max_memkb = 0);

/// `struct xen_domctl_vcpucontext` (16 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, align(8))]
pub struct XenDomctlVcpucontext {
    /// VCPU.
    pub vcpu: u32,
    /// Padding.
    pub _pad: u32,
    /// Caller's [`crate::context::VcpuGuestContext`].
    pub ctxt: GuestHandle64,
}
assert_layout!(
    XenDomctlVcpucontext,
    size = 16,
    align = 8,
    vcpu = 0,
    ctxt = 8
);

/// `struct xen_domctl_getvcpuinfo` (24 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, align(8))]
pub struct XenDomctlGetvcpuinfo {
    /// IN: VCPU.
    pub vcpu: u32,
    /// OUT: online?
    pub online: u8,
    /// OUT: blocked?
    pub blocked: u8,
    /// OUT: running?
    pub running: u8,
    /// Padding.
    pub _pad0: u8,
    /// OUT: CPU time used (ns).
    pub cpu_time: u64,
    /// OUT: physical CPU it is on.
    pub cpu: u32,
    /// Padding.
    pub _pad1: u32,
}
assert_layout!(
    XenDomctlGetvcpuinfo,
    size = 24,
    align = 8,
    vcpu = 0,
    online = 4,
    blocked = 5,
    running = 6,
    cpu_time = 8,
    cpu = 16,
);

/// `struct xen_domctl_max_vcpus` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenDomctlMaxVcpus {
    /// Number of VCPUs.
    pub max: u32,
}
assert_layout!(XenDomctlMaxVcpus, size = 4, align = 4, max = 0);

/// `struct xenctl_cpumap` (16 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, align(8))]
pub struct XenctlCpumap {
    /// Caller's bitmap.
    pub bitmap: GuestHandle64,
    /// Bits in the bitmap.
    pub nr_cpus: u32,
    /// Padding.
    pub _pad: u32,
}
assert_layout!(XenctlCpumap, size = 16, align = 8, bitmap = 0, nr_cpus = 8);

/// `struct xen_domctl_vcpuaffinity` (24 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, align(8))]
pub struct XenDomctlVcpuaffinity {
    /// VCPU.
    pub vcpu: u32,
    /// Padding.
    pub _pad: u32,
    /// The CPU map.
    pub cpumap: XenctlCpumap,
}
assert_layout!(
    XenDomctlVcpuaffinity,
    size = 24,
    align = 8,
    vcpu = 0,
    cpumap = 8
);

/// `struct xen_domctl_setdomainhandle` (16 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenDomctlSetdomainhandle {
    /// UUID.
    pub handle: XenDomainHandle,
}
assert_layout!(XenDomctlSetdomainhandle, size = 16, align = 1, handle = 0);

/// `struct xen_domctl_irq_permission` (2 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenDomctlIrqPermission {
    /// Physical IRQ.
    pub pirq: u8,
    /// Non-zero = grant, zero = revoke.
    pub allow_access: u8,
}
assert_layout!(
    XenDomctlIrqPermission,
    size = 2,
    align = 1,
    pirq = 0,
    allow_access = 1
);

/// `struct xen_domctl_iomem_permission` (24 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, align(8))]
pub struct XenDomctlIomemPermission {
    /// First MFN.
    pub first_mfn: u64,
    /// Number of MFNs.
    pub nr_mfns: u64,
    /// Non-zero = grant, zero = revoke.
    pub allow_access: u8,
    /// Padding.
    pub _pad: [u8; 7],
}
assert_layout!(
    XenDomctlIomemPermission,
    size = 24,
    align = 8,
    first_mfn = 0,
    nr_mfns = 8,
    allow_access = 16,
);

/// `struct xen_domctl_ioport_permission` (12 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenDomctlIoportPermission {
    /// First port.
    pub first_port: u32,
    /// Number of ports.
    pub nr_ports: u32,
    /// Non-zero = grant, zero = revoke.
    pub allow_access: u8,
    /// Padding.
    pub _pad: [u8; 3],
}
assert_layout!(
    XenDomctlIoportPermission,
    size = 12,
    align = 4,
    first_port = 0,
    nr_ports = 4,
    allow_access = 8,
);

/// `struct xen_domctl_hypercall_init` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, align(8))]
pub struct XenDomctlHypercallInit {
    /// GMFN to write the hypercall page into.
    pub gmfn: u64,
}
assert_layout!(XenDomctlHypercallInit, size = 8, align = 8, gmfn = 0);

/// `struct xen_domctl_settimeoffset` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenDomctlSettimeoffset {
    /// Offset of the domain's wall clock.
    pub time_offset_seconds: i32,
}
assert_layout!(
    XenDomctlSettimeoffset,
    size = 4,
    align = 4,
    time_offset_seconds = 0
);

/// `struct xen_domctl_address_size` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenDomctlAddressSize {
    /// Guest address size in bits (32 or 64).
    pub size: u32,
}
assert_layout!(XenDomctlAddressSize, size = 4, align = 4, size = 0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domctl_payload_round_trip() {
        let info = XenDomctlGetdomaininfo {
            domain: 3,
            flags: dominf_with_shutdown_reason(XEN_DOMINF_SHUTDOWN, 3),
            tot_pages: 16384,
            cpupool: 0,
            ..Default::default()
        };
        let d = XenDomctl::new(XEN_DOMCTL_GETDOMAININFO, 3, &info);
        assert_eq!(d.interface_version, 7);
        let back: XenDomctlGetdomaininfo = d.payload();
        assert_eq!(back, info);
        assert_eq!(dominf_shutdown_reason(back.flags), 3);
        // tot_pages at u+8 = byte 24 of the whole struct.
        assert_eq!(&d.as_bytes()[24..32], &16384u64.to_le_bytes());
    }
}
