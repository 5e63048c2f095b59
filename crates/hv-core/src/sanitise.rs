//! Rules for values a guest (or dom0's toolstack) hands Oxen that neither the
//! CPU nor Oxen's arithmetic may take as they are: a vcpu context's EFLAGS
//! and FPU image, `memory_op`'s address width, timer periods and deadlines,
//! and the machine's physical-address width. (An L3 may lie anywhere: CR3
//! holds a low copy of it, `pv_mm::low_l3`.)
//!
//! Invariant: every function here is total — any `u32`/`u64` a guest can
//! choose gives a result without overflow (Oxen's CI builds the kernel once
//! with overflow checks on, so a wrap here would stop the machine).

use crate::addr::Mfn;
use crate::bounce::{EFLAGS_IF, EFLAGS_TF};
use xen_abi::errno::Errno;

/// EFLAGS bit 1, always set.
pub const EFLAGS_MBS: u32 = 1 << 1;

/// The EFLAGS bits a vcpu context keeps as dom0 gave them: the arithmetic
/// flags (CF, PF, AF, ZF, SF, OF), TF, DF, AC and ID. Everything else goes:
/// IOPL (virtualised), NT (a guest `iret` would try a task return), RF, VM
/// (Oxen's own `iret` would enter virtual-8086 mode), VIF/VIP and the
/// reserved bits. IF and bit 1 are always set (events are masked through
/// the upcall mask, never through the real IF).
pub const CONTEXT_EFLAGS_KEPT: u32 =
    0x1 | 0x4 | 0x10 | 0x40 | 0x80 | EFLAGS_TF | (1 << 10) | (1 << 11) | (1 << 18) | (1 << 21);

/// The EFLAGS a vcpu starts from when `setvcpucontext` gives it `eflags`.
pub const fn context_eflags(eflags: u32) -> u32 {
    (eflags & CONTEXT_EFLAGS_KEPT) | EFLAGS_IF | EFLAGS_MBS
}

/// Byte offset of MXCSR in an FXSAVE image.
pub const FXSAVE_MXCSR: usize = 24;
/// Byte offset of MXCSR_MASK in an FXSAVE image.
pub const FXSAVE_MXCSR_MASK: usize = 28;
/// The MXCSR bits every SSE CPU accepts, for a CPU whose FXSAVE reports a
/// mask of 0 (Intel SDM "Guidelines for Writing to the MXCSR Register").
pub const MXCSR_DEFAULT_MASK: u32 = 0xFFBF;

/// The MXCSR bits the CPU accepts, from the MXCSR_MASK field an FXSAVE of
/// it wrote.
pub const fn mxcsr_mask(fxsave_field: u32) -> u32 {
    if fxsave_field == 0 {
        MXCSR_DEFAULT_MASK
    } else {
        fxsave_field
    }
}

/// Clears the MXCSR bits of an FXSAVE `image` that the CPU does not accept
/// (`mask`, see [`mxcsr_mask`]): FXRSTOR raises #GP on any of them.
pub fn sanitise_fxsave(image: &mut [u8; 512], mask: u32) {
    let field = &mut image[FXSAVE_MXCSR..FXSAVE_MXCSR + 4];
    let mxcsr = u32::from_le_bytes(field.try_into().expect("4 bytes")) & mask;
    field.copy_from_slice(&mxcsr.to_le_bytes());
}

/// Reads MXCSR from an FXSAVE `image`.
pub fn fxsave_mxcsr(image: &[u8; 512]) -> u32 {
    u32::from_le_bytes(
        image[FXSAVE_MXCSR..FXSAVE_MXCSR + 4]
            .try_into()
            .expect("4 bytes"),
    )
}

/// What a reservation call's `address_bits` (`XENMEMF_address_bits`) asks of
/// the frames it allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressLimit {
    /// No limit (0, or at least as wide as any frame Oxen has).
    Any,
    /// Only frames below this MFN.
    Below(Mfn),
    /// No frame can satisfy it (1..=12 bits: not even one page): as Xen,
    /// the call does nothing and returns the extent it started at.
    Nothing,
}

/// Xen's rule for `address_bits` (`bits`, 0..=255): 0 or 44 and more place
/// no limit on a 32-bit PAE machine (the M2P ends below 2^34 bytes), 1..=12
/// cannot be met, the others limit to frames below `2^(bits-12)`.
pub const fn address_limit(bits: u32) -> AddressLimit {
    match bits {
        0 => AddressLimit::Any,
        1..=12 => AddressLimit::Nothing,
        13..=43 => AddressLimit::Below(Mfn(1 << (bits - 12))),
        _ => AddressLimit::Any,
    }
}

/// Whether a reservation call of `nr_extents` extents can encode every
/// extent it may resume at in the bits of `cmd` above `shift` (Xen returns
/// at once otherwise).
pub const fn reservation_fits(nr_extents: u32, shift: u32) -> bool {
    nr_extents <= u32::MAX >> shift
}

/// The shortest periodic timer Xen accepts (1 ms).
pub const MIN_PERIOD_NS: u64 = 1_000_000;
/// The longest: Xen's `STIME_DELTA_MAX` (system time is signed, 63 bits).
pub const MAX_PERIOD_NS: u64 = i64::MAX as u64;

/// `VCPUOP_set_periodic_timer`'s `period_ns`, checked as Xen does.
pub const fn periodic_period(period_ns: u64) -> Result<u64, Errno> {
    if period_ns < MIN_PERIOD_NS || period_ns > MAX_PERIOD_NS {
        Err(Errno::EINVAL)
    } else {
        Ok(period_ns)
    }
}

/// The next periodic deadline `period` after `now` (never wraps: a deadline
/// beyond the end of time is the end of time).
pub const fn next_deadline(now: u64, period: u64) -> u64 {
    now.saturating_add(period)
}

/// How far ahead `set_timer_op` takes a deadline as it is (2^50 ns, about 13
/// days); further ones are a wrapped jiffies count in old Linux guests.
pub const TIMER_OP_FAR: u64 = 1 << 50;
/// When a too-far `set_timer_op` deadline fires instead: 100 ms from now.
pub const TIMER_OP_FAR_FALLBACK_NS: u64 = 100_000_000;

/// The single-shot deadline `set_timer_op(timeout)` arms at `now` (`None`:
/// 0 cancels). As Xen: a deadline more than [`TIMER_OP_FAR`] ahead fires in
/// 100 ms; one in the past (as signed system time) fires at once.
pub const fn set_timer_op_deadline(now: u64, timeout: u64) -> Option<u64> {
    if timeout == 0 {
        return None;
    }
    if timeout > i64::MAX as u64 || timeout <= now {
        Some(now)
    } else if timeout - now >= TIMER_OP_FAR {
        Some(now.saturating_add(TIMER_OP_FAR_FALLBACK_NS))
    } else {
        Some(timeout)
    }
}

/// The deadline `VCPUOP_set_singleshot_timer(timeout_abs_ns, flags)` arms at
/// `now` (`future`: the `VCPU_SSHOTTMR_future` flag). As Xen: with the flag a
/// deadline before `now` (compared as unsigned) is `-ETIME`; otherwise the
/// deadline is signed system time, so one at or past 2^63 is in the past and
/// fires at once, like any past deadline.
pub const fn singleshot_deadline(
    now: u64,
    timeout_abs_ns: u64,
    future: bool,
) -> Result<u64, Errno> {
    if future && timeout_abs_ns < now {
        Err(Errno::ETIME)
    } else if timeout_abs_ns > i64::MAX as u64 {
        Ok(now)
    } else {
        Ok(timeout_abs_ns)
    }
}

/// What CPUID says of the CPU's physical-address width (MAXPHYADDR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhysAddrWidth {
    /// CPUID fixes it: leaf 0x80000008 EAX[7:0], or 36 with PSE-36, or 32
    /// without PAE.
    Known(u32),
    /// A PAE CPU without PSE-36 and without leaf 0x80000008: the SDM says 36
    /// bits, but some CPU models enforce 32 (QEMU 7.2's `qemu32`, which sets
    /// reserved bits 32..35 of a PTE then). Only a probe of the page walk
    /// tells ([`probed_phys_addr_bits`]).
    Probe,
}

/// The CPU's physical-address width from CPUID: leaf 0x80000008 EAX[7:0]
/// when the CPU has that leaf (`max_extended_leaf` from CPUID 0x80000000
/// EAX) and reports at least 32 bits; else 36 with PSE-36, 32 without PAE,
/// and a probe for PAE alone (Intel SDM, "MAXPHYADDR").
pub const fn phys_addr_bits(
    max_extended_leaf: u32,
    leaf_80000008_eax: u32,
    pae: bool,
    pse36: bool,
) -> PhysAddrWidth {
    let reported = leaf_80000008_eax & 0xFF;
    if max_extended_leaf >= 0x8000_0008 && max_extended_leaf < 0x8001_0000 && reported >= 32 {
        PhysAddrWidth::Known(reported)
    } else if pse36 {
        PhysAddrWidth::Known(36)
    } else if pae {
        PhysAddrWidth::Probe
    } else {
        PhysAddrWidth::Known(32)
    }
}

/// The width a probe finds: the highest of bits 35..=32 that a PTE may set
/// without the page walk faulting (`addressable(bit)` maps a frame at
/// machine address `1 << bit` and reads it under a fault fixup), plus one;
/// 32 when none may.
pub fn probed_phys_addr_bits(mut addressable: impl FnMut(u32) -> bool) -> u32 {
    (32..36)
        .rev()
        .find(|&bit| addressable(bit))
        .map_or(32, |bit| bit + 1)
}

/// The first MFN a CPU with `bits` of physical address cannot reach (`bits`
/// taken within 32..=52, the widths a PAE CPU can have).
pub const fn mfn_limit(bits: u32) -> u64 {
    let bits = if bits > 52 {
        52
    } else if bits < 32 {
        32
    } else {
        bits
    };
    1 << (bits - 12)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bounce::{EFLAGS_IOPL, EFLAGS_NT, EFLAGS_RF, EFLAGS_VM};

    #[test]
    fn context_eflags_clears_vm_iopl_nt_and_sets_if() {
        let e = context_eflags(EFLAGS_VM | EFLAGS_IOPL | EFLAGS_NT | EFLAGS_RF | 0x8D5);
        assert_eq!(e, 0x8D5 | EFLAGS_IF | EFLAGS_MBS);
        assert_eq!(context_eflags(0), EFLAGS_IF | EFLAGS_MBS);
        // Everything set: only the kept bits, IF and bit 1 remain.
        let all = context_eflags(u32::MAX);
        assert_eq!(all & (EFLAGS_VM | EFLAGS_IOPL | EFLAGS_NT | EFLAGS_RF), 0);
        assert_eq!(all, CONTEXT_EFLAGS_KEPT | EFLAGS_IF | EFLAGS_MBS);
        assert_eq!(all & 0xFFC0_0000, 0, "reserved bits 22..31 cleared");
        // TF, DF, AC and ID survive.
        let kept = EFLAGS_TF | (1 << 10) | (1 << 18) | (1 << 21);
        assert_eq!(context_eflags(kept) & kept, kept);
    }

    #[test]
    fn mxcsr_mask_defaults_when_the_cpu_reports_none() {
        assert_eq!(mxcsr_mask(0), 0xFFBF);
        assert_eq!(mxcsr_mask(0xFFFF), 0xFFFF);
    }

    #[test]
    fn sanitise_fxsave_clears_reserved_mxcsr_bits_only() {
        let mut image = [0xA5u8; 512];
        image[FXSAVE_MXCSR..FXSAVE_MXCSR + 4].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        let before = image;
        sanitise_fxsave(&mut image, 0xFFBF);
        assert_eq!(fxsave_mxcsr(&image), 0xFFBF);
        assert_eq!(image[..FXSAVE_MXCSR], before[..FXSAVE_MXCSR]);
        assert_eq!(image[FXSAVE_MXCSR + 4..], before[FXSAVE_MXCSR + 4..]);
        // A valid MXCSR is kept as it is.
        image[FXSAVE_MXCSR..FXSAVE_MXCSR + 4].copy_from_slice(&0x1F80u32.to_le_bytes());
        sanitise_fxsave(&mut image, 0xFFFF);
        assert_eq!(fxsave_mxcsr(&image), 0x1F80);
        // The DAZ bit goes where the CPU does not have it.
        image[FXSAVE_MXCSR..FXSAVE_MXCSR + 4].copy_from_slice(&0x1FC0u32.to_le_bytes());
        sanitise_fxsave(&mut image, 0xFFBF);
        assert_eq!(fxsave_mxcsr(&image), 0x1F80);
    }

    #[test]
    fn address_limit_follows_xen_for_every_width() {
        assert_eq!(address_limit(0), AddressLimit::Any);
        for bits in 1..=12 {
            assert_eq!(address_limit(bits), AddressLimit::Nothing, "{bits}");
        }
        assert_eq!(address_limit(13), AddressLimit::Below(Mfn(2)));
        assert_eq!(address_limit(32), AddressLimit::Below(Mfn(1 << 20)));
        assert_eq!(address_limit(43), AddressLimit::Below(Mfn(1 << 31)));
        for bits in 44..=255 {
            assert_eq!(address_limit(bits), AddressLimit::Any, "{bits}");
        }
        // Total over the whole u32 range too.
        assert_eq!(address_limit(u32::MAX), AddressLimit::Any);
    }

    #[test]
    fn reservation_fits_the_continuation_encoding() {
        assert!(reservation_fits(0, 6));
        assert!(reservation_fits(u32::MAX >> 6, 6));
        assert!(!reservation_fits((u32::MAX >> 6) + 1, 6));
        assert!(!reservation_fits(u32::MAX, 6));
    }

    #[test]
    fn periodic_period_refuses_too_short_and_too_long() {
        assert_eq!(periodic_period(0), Err(Errno::EINVAL));
        assert_eq!(periodic_period(MIN_PERIOD_NS - 1), Err(Errno::EINVAL));
        assert_eq!(periodic_period(MIN_PERIOD_NS), Ok(MIN_PERIOD_NS));
        assert_eq!(periodic_period(MAX_PERIOD_NS), Ok(MAX_PERIOD_NS));
        assert_eq!(periodic_period(MAX_PERIOD_NS + 1), Err(Errno::EINVAL));
        assert_eq!(periodic_period(u64::MAX), Err(Errno::EINVAL));
    }

    #[test]
    fn next_deadline_saturates() {
        assert_eq!(next_deadline(10, 5), 15);
        assert_eq!(next_deadline(10, u64::MAX), u64::MAX);
        assert_eq!(next_deadline(u64::MAX, MAX_PERIOD_NS), u64::MAX);
    }

    #[test]
    fn singleshot_deadline_as_xen() {
        let now = 5_000_000_000;
        assert_eq!(singleshot_deadline(now, now + 7, true), Ok(now + 7));
        assert_eq!(singleshot_deadline(now, now, true), Ok(now));
        assert_eq!(singleshot_deadline(now, now - 1, true), Err(Errno::ETIME));
        assert_eq!(singleshot_deadline(now, 1, false), Ok(1));
        assert_eq!(
            singleshot_deadline(now, i64::MAX as u64, true),
            Ok(i64::MAX as u64)
        );
        // Negative as system time: in the past, so at once, flag or not (the
        // flag's comparison is unsigned, as Xen's).
        for neg in [1 << 63, u64::MAX] {
            assert_eq!(singleshot_deadline(now, neg, true), Ok(now), "{neg:#x}");
            assert_eq!(singleshot_deadline(now, neg, false), Ok(now), "{neg:#x}");
        }
    }

    #[test]
    fn set_timer_op_deadline_as_xen() {
        let now = 5_000_000_000;
        assert_eq!(set_timer_op_deadline(now, 0), None);
        assert_eq!(set_timer_op_deadline(now, now + 1), Some(now + 1));
        assert_eq!(
            set_timer_op_deadline(now, now + TIMER_OP_FAR - 1),
            Some(now + TIMER_OP_FAR - 1)
        );
        // Too far ahead: 100 ms from now.
        for far in [now + TIMER_OP_FAR, u64::MAX >> 1, i64::MAX as u64] {
            assert_eq!(
                set_timer_op_deadline(now, far),
                Some(now + TIMER_OP_FAR_FALLBACK_NS),
                "{far:#x}"
            );
        }
        // In the past, or negative as system time: at once.
        for past in [1, now - 1, now, u64::MAX, 1 << 63] {
            assert_eq!(set_timer_op_deadline(now, past), Some(now), "{past:#x}");
        }
        // No wrap at the end of time either.
        assert_eq!(set_timer_op_deadline(u64::MAX, 1), Some(u64::MAX));
        assert_eq!(
            set_timer_op_deadline(u64::MAX - 1, u64::MAX),
            Some(u64::MAX - 1)
        );
        assert_eq!(
            set_timer_op_deadline(u64::MAX - 1, i64::MAX as u64),
            Some(u64::MAX - 1)
        );
    }

    #[test]
    fn phys_addr_bits_from_cpuid() {
        use PhysAddrWidth::{Known, Probe};
        // 0x80000008 present: its width.
        assert_eq!(phys_addr_bits(0x8000_0008, 0x3028, true, true), Known(40));
        assert_eq!(phys_addr_bits(0x8000_001F, 0x3024, false, false), Known(36));
        assert_eq!(phys_addr_bits(0x8000_0008, 0x3020, true, true), Known(32));
        // Absent (or a garbage leaf count): 36 with PSE-36, 32 without PAE,
        // a probe with PAE alone.
        assert_eq!(phys_addr_bits(0x8000_0004, 0x3028, true, true), Known(36));
        assert_eq!(phys_addr_bits(0x8000_0004, 0x3028, false, true), Known(36));
        assert_eq!(phys_addr_bits(0x8000_0004, 0x3028, true, false), Probe);
        assert_eq!(phys_addr_bits(0x8000_0004, 0, false, false), Known(32));
        assert_eq!(phys_addr_bits(0, 0, true, false), Probe);
        assert_eq!(phys_addr_bits(0xFFFF_FFFF, 0x28, true, true), Known(36));
        // A leaf that reports less than 32 bits is not believed.
        assert_eq!(phys_addr_bits(0x8000_0008, 0, true, true), Known(36));
        assert_eq!(phys_addr_bits(0x8000_0008, 0x1F, true, false), Probe);
    }

    #[test]
    fn probe_finds_the_highest_addressable_bit() {
        for width in 32..=36 {
            let mut asked = Vec::new();
            let found = probed_phys_addr_bits(|bit| {
                asked.push(bit);
                bit < width
            });
            assert_eq!(found, width);
            // From the top down, stopping at the first that works.
            let expected: Vec<u32> = (width.max(33) - 1..36).rev().collect();
            assert_eq!(asked, expected, "width {width}");
        }
    }

    #[test]
    fn mfn_limit_of_widths() {
        assert_eq!(mfn_limit(32), 1 << 20);
        assert_eq!(mfn_limit(36), 1 << 24);
        assert_eq!(mfn_limit(52), 1 << 40);
        assert_eq!(mfn_limit(255), 1 << 40);
        assert_eq!(mfn_limit(0), 1 << 20);
    }
}
