//! `vcpu_op` commands and structs, i386 layout (XEN-PV-ABI.md §15.3).
//! `VCPUOP_initialise` takes a [`crate::context::VcpuGuestContext`].

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Initialise a VCPU from a `vcpu_guest_context` (once per VCPU).
pub const VCPUOP_INITIALISE: u32 = 0;
/// Bring a VCPU up.
pub const VCPUOP_UP: u32 = 1;
/// Take a VCPU down.
pub const VCPUOP_DOWN: u32 = 2;
/// Query whether a VCPU is up (returns 1/0).
pub const VCPUOP_IS_UP: u32 = 3;
/// Read the runstate ([`VcpuRunstateInfo`]).
pub const VCPUOP_GET_RUNSTATE_INFO: u32 = 4;
/// Register a guest area Xen keeps the runstate in ([`VcpuRegisterRunstateMemoryArea`]).
pub const VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA: u32 = 5;
/// Set the periodic timer ([`VcpuSetPeriodicTimer`]).
pub const VCPUOP_SET_PERIODIC_TIMER: u32 = 6;
/// Stop the periodic timer.
pub const VCPUOP_STOP_PERIODIC_TIMER: u32 = 7;
/// Set the single-shot timer ([`VcpuSetSingleshotTimer`]).
pub const VCPUOP_SET_SINGLESHOT_TIMER: u32 = 8;
/// Stop the single-shot timer.
pub const VCPUOP_STOP_SINGLESHOT_TIMER: u32 = 9;
/// Move this VCPU's `vcpu_info` ([`VcpuRegisterVcpuInfo`]).
pub const VCPUOP_REGISTER_VCPU_INFO: u32 = 10;
/// Send an NMI to a VCPU.
pub const VCPUOP_SEND_NMI: u32 = 11;
/// Get the physical ids of a VCPU ([`VcpuGetPhysid`]).
pub const VCPUOP_GET_PHYSID: u32 = 12;
/// Register a guest area for a second `vcpu_time_info` ([`VcpuRegisterTimeMemoryArea`]).
pub const VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA: u32 = 13;

/// Runstate: running on a physical CPU.
pub const RUNSTATE_RUNNING: i32 = 0;
/// Runstate: runnable, waiting for a CPU.
pub const RUNSTATE_RUNNABLE: i32 = 1;
/// Runstate: blocked.
pub const RUNSTATE_BLOCKED: i32 = 2;
/// Runstate: offline.
pub const RUNSTATE_OFFLINE: i32 = 3;

/// `VCPU_SSHOTTMR_future`: fail with −ETIME if the deadline already passed.
pub const VCPU_SSHOTTMR_FUTURE: u32 = 1 << 0;

/// `struct vcpu_runstate_info` (44 bytes on i386).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct VcpuRunstateInfo {
    /// `RUNSTATE_*`.
    pub state: i32,
    /// System time when `state` was entered.
    pub state_entry_time: u64,
    /// Time spent in each runstate (ns).
    pub time: [u64; 4],
}
assert_layout!(
    VcpuRunstateInfo,
    size = 44,
    align = 4,
    state = 0,
    state_entry_time = 4,
    time = 12
);

/// `struct vcpu_register_runstate_memory_area` (8 bytes): union `{h, v, p}`
/// holding a guest virtual address.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct VcpuRegisterRunstateMemoryArea {
    /// The address (a 32-bit guest pointer in the low half).
    pub addr: u64,
}
assert_layout!(
    VcpuRegisterRunstateMemoryArea,
    size = 8,
    align = 4,
    addr = 0
);

/// `struct vcpu_register_time_memory_area` (8 bytes): as the runstate area.
pub type VcpuRegisterTimeMemoryArea = VcpuRegisterRunstateMemoryArea;

/// `struct vcpu_set_periodic_timer` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct VcpuSetPeriodicTimer {
    /// Period in ns.
    pub period_ns: u64,
}
assert_layout!(VcpuSetPeriodicTimer, size = 8, align = 4, period_ns = 0);

/// `struct vcpu_set_singleshot_timer` (12 bytes on i386).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct VcpuSetSingleshotTimer {
    /// Absolute system time (ns) of the deadline.
    pub timeout_abs_ns: u64,
    /// `VCPU_SSHOTTMR_*`.
    pub flags: u32,
}
assert_layout!(
    VcpuSetSingleshotTimer,
    size = 12,
    align = 4,
    timeout_abs_ns = 0,
    flags = 8
);

/// `struct vcpu_register_vcpu_info` (16 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct VcpuRegisterVcpuInfo {
    /// MFN of the page to hold the `vcpu_info`.
    pub mfn: u64,
    /// Offset in that page (the 64 bytes must not cross it).
    pub offset: u32,
    /// Reserved.
    pub rsvd: u32,
}
assert_layout!(
    VcpuRegisterVcpuInfo,
    size = 16,
    align = 4,
    mfn = 0,
    offset = 8,
    rsvd = 12
);

/// `struct vcpu_get_physid` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct VcpuGetPhysid {
    /// APIC id in the low 32 bits, ACPI id in the high 32 bits.
    pub phys_id: u64,
}
assert_layout!(VcpuGetPhysid, size = 8, align = 4, phys_id = 0);

impl VcpuGetPhysid {
    /// The APIC id.
    pub const fn apic_id(&self) -> u32 {
        self.phys_id as u32
    }

    /// The ACPI id.
    pub const fn acpi_id(&self) -> u32 {
        (self.phys_id >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromBytes;

    #[test]
    fn physid_and_runstate_bytes() {
        let p = VcpuGetPhysid {
            phys_id: 0x0000_0002_0000_0005,
        };
        assert_eq!((p.apic_id(), p.acpi_id()), (5, 2));
        let mut b = [0u8; 44];
        b[0] = RUNSTATE_BLOCKED as u8;
        b[4..12].copy_from_slice(&7u64.to_le_bytes());
        b[36..44].copy_from_slice(&9u64.to_le_bytes());
        let r = VcpuRunstateInfo::read_from_bytes(&b).unwrap();
        assert_eq!(r.state, RUNSTATE_BLOCKED);
        assert_eq!({ r.state_entry_time }, 7);
        assert_eq!({ r.time }[3], 9);
    }
}
