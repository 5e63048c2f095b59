//! `shared_info`, `vcpu_info` and `vcpu_time_info` (XEN-PV-ABI.md §5).
//!
//! The shared-info frame is a hypervisor page shared writable with the guest; its
//! machine address is `start_info.shared_info`. Guests must not depend on its size.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::layout::XEN_LEGACY_MAX_VCPUS;
use crate::types::XenPfn;

/// Bits per `evtchn_pending`/`evtchn_mask` word on i386 (`unsigned long`).
pub const EVTCHN_WORD_BITS: usize = 32;
/// Event-channel ports of a 32-bit guest: 32 words × 32 bits.
pub const NR_EVENT_CHANNELS: usize = EVTCHN_WORD_BITS * EVTCHN_WORD_BITS;
/// Size of `shared_info` on i386 in Xen 4.1.
pub const SHARED_INFO_SIZE: usize = 2584;

/// `arch.nmi_reason` bit 0: I/O error (`XEN_NMIREASON_io_error`).
pub const XEN_NMIREASON_IO_ERROR: u32 = 1 << 0;
/// `arch.nmi_reason` bit 1: parity error (`XEN_NMIREASON_parity_error`).
pub const XEN_NMIREASON_PARITY_ERROR: u32 = 1 << 1;
/// `arch.nmi_reason` bit 2: unknown reason (`XEN_NMIREASON_unknown`).
pub const XEN_NMIREASON_UNKNOWN: u32 = 1 << 2;

/// `struct vcpu_time_info` (32 bytes, at `vcpu_info + 32`): Xen's PV clock.
///
/// Read protocol: read `version`, read the fields, re-read `version`; retry if it
/// changed or is odd (Xen is updating).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct VcpuTimeInfo {
    /// Update counter; odd while Xen writes.
    pub version: u32,
    /// Padding.
    pub pad0: u32,
    /// TSC value at the last update.
    pub tsc_timestamp: u64,
    /// System time (ns since boot) at `tsc_timestamp`.
    pub system_time: u64,
    /// Fixed-point multiplier: `(x × mul) >> 32`.
    pub tsc_to_system_mul: u32,
    /// Shift applied to the TSC delta before multiplying (negative = right).
    pub tsc_shift: i8,
    /// Padding (later Xen: a flags byte at offset 29).
    pub pad1: [u8; 3],
}
assert_layout!(
    VcpuTimeInfo,
    size = 32,
    align = 4,
    version = 0,
    pad0 = 4,
    tsc_timestamp = 8,
    system_time = 16,
    tsc_to_system_mul = 24,
    tsc_shift = 28,
    pad1 = 29,
);

/// Scales a TSC delta to nanoseconds as Xen does: shift by `shift` (left if
/// positive, right if negative), then `(delta × mul) >> 32`.
pub const fn scale_delta(delta: u64, mul: u32, shift: i8) -> u64 {
    let d = if shift >= 0 {
        delta << (shift as u32)
    } else {
        delta >> (shift.unsigned_abs() as u32)
    };
    ((d as u128 * mul as u128) >> 32) as u64
}

impl VcpuTimeInfo {
    /// System time (ns) at TSC value `tsc` according to this record.
    pub const fn system_time_at(&self, tsc: u64) -> u64 {
        let delta = tsc.wrapping_sub(self.tsc_timestamp);
        self.system_time
            .wrapping_add(scale_delta(delta, self.tsc_to_system_mul, self.tsc_shift))
    }

    /// Whether Xen is in the middle of an update (`version` odd).
    pub const fn is_updating(&self) -> bool {
        self.version & 1 != 0
    }

    /// The `(tsc_to_system_mul, tsc_shift)` pair for a TSC of `tsc_hz`, chosen as Xen
    /// does: shift the delta until the multiplier fits in 32 bits with the most
    /// precision. `tsc_hz` must be non-zero.
    pub const fn scale_for_tsc_hz(tsc_hz: u64) -> (u32, i8) {
        let mut tps = tsc_hz;
        let mut shift: i32 = 0;
        let target = 1_000_000_000u64;
        // Make target/2 < tps <= target (in shifted units), like Xen's set_time_scale.
        while tps > target * 2 {
            tps >>= 1;
            shift -= 1;
        }
        while tps <= target {
            tps <<= 1;
            shift += 1;
        }
        let mul = ((target as u128) << 32) / tps as u128;
        (mul as u32, shift as i8)
    }
}

/// `struct arch_vcpu_info` (x86_32, 24 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ArchVcpuInfo {
    /// Faulting linear address of the last #PF delivered.
    pub cr2: u32,
    /// Padding.
    pub pad: [u32; 5],
}
assert_layout!(ArchVcpuInfo, size = 24, align = 4, cr2 = 0, pad = 4);

/// `struct vcpu_info` (64 bytes): per-VCPU event and time state.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuInfo {
    /// Set by Xen when an upcall is needed; the guest clears it before scanning.
    pub evtchn_upcall_pending: u8,
    /// Non-zero: Xen starts no upcall on this VCPU (the guest's "interrupts off").
    pub evtchn_upcall_mask: u8,
    /// Padding.
    pub _pad0: [u8; 2],
    /// Bit *i*: word *i* of `evtchn_pending` may hold pending unmasked ports.
    pub evtchn_pending_sel: u32,
    /// Architecture part (`cr2`).
    pub arch: ArchVcpuInfo,
    /// The PV clock.
    pub time: VcpuTimeInfo,
}
assert_layout!(
    VcpuInfo,
    size = 64,
    align = 4,
    evtchn_upcall_pending = 0,
    evtchn_upcall_mask = 1,
    evtchn_pending_sel = 4,
    arch = 8,
    arch.cr2 = 8,
    arch.pad = 12,
    time = 32,
);

/// `struct arch_shared_info` (x86_32, Xen 4.1; 268 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed(4))]
pub struct ArchSharedInfo {
    /// Highest PFN + 1 covered by the P2M frame lists (guest-written).
    pub max_pfn: u32,
    /// MFN of the page listing the MFNs of the pages listing the P2M (guest-written).
    pub pfn_to_mfn_frame_list_list: XenPfn,
    /// `XEN_NMIREASON_*` bits.
    pub nmi_reason: u32,
    /// Padding in 4.1; later Xen puts `p2m_cr3`, `p2m_vaddr`, `p2m_generation` and
    /// `wc_sec_hi` at its start (shared_info offsets 2328, 2332, 2336, 2340).
    pub pad: [u64; 32],
}
assert_layout!(
    ArchSharedInfo,
    size = 268,
    align = 4,
    max_pfn = 0,
    pfn_to_mfn_frame_list_list = 4,
    nmi_reason = 8,
    pad = 12,
);
zeroed_default!(ArchSharedInfo);

/// `struct shared_info` (2584 bytes on i386, Xen 4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct SharedInfo {
    /// One `vcpu_info` per legacy VCPU slot (VCPU *n* at `n*64`).
    pub vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS],
    /// Pending bits: bit *p* of the array = port *p*.
    pub evtchn_pending: [u32; EVTCHN_WORD_BITS],
    /// Mask bits, same indexing.
    pub evtchn_mask: [u32; EVTCHN_WORD_BITS],
    /// Wall-clock seqlock counter (odd while updating).
    pub wc_version: u32,
    /// Seconds since 1970-01-01 UTC at system time 0.
    pub wc_sec: u32,
    /// Nanoseconds part of the wall clock at system time 0.
    pub wc_nsec: u32,
    /// Architecture part.
    pub arch: ArchSharedInfo,
}
assert_layout!(
    SharedInfo,
    size = SHARED_INFO_SIZE,
    align = 4,
    vcpu_info = 0,
    evtchn_pending = 2048,
    evtchn_mask = 2176,
    wc_version = 2304,
    wc_sec = 2308,
    wc_nsec = 2312,
    arch = 2316,
    arch.max_pfn = 2316,
    arch.pfn_to_mfn_frame_list_list = 2320,
    arch.nmi_reason = 2324,
    arch.pad = 2328,
);
zeroed_default!(SharedInfo);

/// Byte offset of `vcpu_info[vcpu]` in the shared-info page.
pub const fn vcpu_info_offset(vcpu: usize) -> usize {
    vcpu * core::mem::size_of::<VcpuInfo>()
}

/// `(word, bit)` of event-channel `port` in `evtchn_pending`/`evtchn_mask`
/// (the word index is also the `evtchn_pending_sel` bit).
pub const fn evtchn_word_bit(port: u32) -> (usize, u32) {
    (
        port as usize / EVTCHN_WORD_BITS,
        port % EVTCHN_WORD_BITS as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_indexing() {
        assert_eq!(NR_EVENT_CHANNELS, 1024);
        assert_eq!(evtchn_word_bit(0), (0, 0));
        assert_eq!(evtchn_word_bit(33), (1, 1));
        assert_eq!(evtchn_word_bit(1023), (31, 31));
        assert_eq!(vcpu_info_offset(3), 192);
    }

    #[test]
    fn time_scaling() {
        // 2 GHz TSC: 2 ticks per ns, so a multiplier of 0.5 and no shift.
        let (mul, shift) = VcpuTimeInfo::scale_for_tsc_hz(2_000_000_000);
        assert_eq!((mul, shift), (1 << 31, 0));
        assert_eq!(scale_delta(2_000_000_000, mul, shift), 1_000_000_000);
        let (mul, shift) = VcpuTimeInfo::scale_for_tsc_hz(1_000_000_000);
        assert!((999_999_990..=1_000_000_000).contains(&scale_delta(1_000_000_000, mul, shift)));
        let (mul, shift) = VcpuTimeInfo::scale_for_tsc_hz(3_333_000);
        let ns = scale_delta(3_333_000, mul, shift);
        assert!((999_999_000..=1_000_000_000).contains(&ns), "{ns}");
        // Explicit values: mul 2^31 (0.5) with shift +1 is identity; shift -1 halves.
        assert_eq!(scale_delta(1000, 1 << 31, 1), 1000);
        assert_eq!(scale_delta(1000, 1 << 31, -1), 250);
        let t = VcpuTimeInfo {
            version: 2,
            tsc_timestamp: 100,
            system_time: 5_000,
            tsc_to_system_mul: 1 << 31,
            tsc_shift: 1,
            ..Default::default()
        };
        assert_eq!(t.system_time_at(1100), 6_000);
        assert!(!t.is_updating());
    }
}
