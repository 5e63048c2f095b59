//! Guests' FPU/SSE state. Oxen itself is built soft-float and never uses the
//! FPU, so the registers always hold some guest's state: the state of the
//! vcpu recorded as the FPU's owner. Switching vcpus sets CR0.TS; the next
//! x87/SSE instruction of the new vcpu raises #NM, and only then is the
//! owner's state saved and the new vcpu's restored (Xen's lazy scheme).
//!
//! Invariant: when CR0.TS is clear while a guest runs, that guest's vcpu is
//! the owner.

use core::sync::atomic::{AtomicBool, Ordering};

/// An FXSAVE image (512 bytes, 16-byte aligned); with no FXSR the first 108
/// bytes hold an FNSAVE image instead.
#[repr(C, align(16))]
pub struct FpuArea(pub [u8; 512]);

impl FpuArea {
    pub const fn new() -> Self {
        Self([0; 512])
    }
}

impl Default for FpuArea {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether the CPU has FXSAVE/FXRSTOR (and Oxen turned on CR4.OSFXSR).
static FXSR: AtomicBool = AtomicBool::new(false);

const CPUID1_EDX_FXSR: u32 = 1 << 24;
const CPUID1_EDX_SSE: u32 = 1 << 25;
const CR4_OSFXSR: u32 = 1 << 9;
const CR4_OSXMMEXCPT: u32 = 1 << 10;

/// Turns on FXSAVE/SSE support for guests where the CPU has it, and leaves
/// CR0.TS set so that the first guest FPU use is noticed.
pub fn init() {
    let (_, _, _, edx) = super::cpu::cpuid(1, 0);
    if edx & CPUID1_EDX_FXSR != 0 {
        let mut cr4 = super::cpu::read_cr4() | CR4_OSFXSR;
        if edx & CPUID1_EDX_SSE != 0 {
            cr4 |= CR4_OSXMMEXCPT;
        }
        // SAFETY: OSFXSR/OSXMMEXCPT only let FXSAVE/FXRSTOR cover the SSE
        // state and SSE instructions run; Oxen uses neither.
        unsafe { super::cpu::write_cr4(cr4) };
        FXSR.store(true, Ordering::Relaxed);
    }
    super::cpu::set_task_switched(true);
}

/// Saves the FPU registers into `area`. CR0.TS must be clear.
pub fn save(area: &mut FpuArea) {
    let p = area.0.as_mut_ptr();
    if FXSR.load(Ordering::Relaxed) {
        // SAFETY: `p` is a 512-byte, 16-byte aligned buffer (FXSAVE's
        // operand); encoded as bytes because the soft-float target disables
        // the fxsr feature in the assembler. 0F AE /0 = fxsave [eax].
        unsafe { core::arch::asm!(".byte 0x0f, 0xae, 0x00", in("eax") p, options(nostack)) };
    } else {
        // SAFETY: as above with FNSAVE's 108-byte image (DD /6 = fnsave [eax]).
        unsafe { core::arch::asm!(".byte 0xdd, 0x30", in("eax") p, options(nostack)) };
    }
}

/// Loads the FPU registers from `area`, saved by [`save`] (or prepared by
/// [`reset_area`]). CR0.TS must be clear.
pub fn restore(area: &FpuArea) {
    let p = area.0.as_ptr();
    if FXSR.load(Ordering::Relaxed) {
        // SAFETY: `p` holds an FXSAVE image Oxen wrote or built with only
        // valid fields (0F AE /1 = fxrstor [eax]).
        unsafe {
            core::arch::asm!(".byte 0x0f, 0xae, 0x08", in("eax") p, options(nostack, readonly))
        };
    } else {
        // SAFETY: as above for FRSTOR (DD /4 = frstor [eax]).
        unsafe { core::arch::asm!(".byte 0xdd, 0x20", in("eax") p, options(nostack, readonly)) };
    }
}

/// Makes `area` the state a vcpu starts with (§4.2: the initial FPU state,
/// as after FNINIT, with SSE exceptions masked).
pub fn reset_area(area: &mut FpuArea) {
    area.0 = [0; 512];
    if FXSR.load(Ordering::Relaxed) {
        area.0[0..2].copy_from_slice(&0x037Fu16.to_le_bytes()); // FCW
        area.0[24..28].copy_from_slice(&0x1F80u32.to_le_bytes()); // MXCSR
    } else {
        area.0[0..4].copy_from_slice(&0xFFFF_037Fu32.to_le_bytes()); // FCW
        area.0[8..12].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes()); // FTW: empty
    }
}
