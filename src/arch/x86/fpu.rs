//! Guests' FPU/SSE state. Oxen itself is built soft-float and never uses the
//! FPU, so the registers always hold some guest's state: the state of the
//! vcpu recorded as the FPU's owner. Switching vcpus sets CR0.TS; the next
//! x87/SSE instruction of the new vcpu raises #NM, and only then is the
//! owner's state saved and the new vcpu's restored (Xen's lazy scheme).
//!
//! An image a vcpu's state is loaded from was saved by the CPU, built by
//! [`reset_area`], or came from dom0 through `setvcpucontext` and went
//! through [`sanitise`] (MXCSR masked with the CPU's MXCSR_MASK). Should the
//! load fault all the same, fpu.S's fixup reports it and the vcpu gets the
//! initial state instead (Xen resets it too).
//!
//! Invariant: when CR0.TS is clear while a guest runs, that guest's vcpu is
//! the owner.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

unsafe extern "C" {
    fn oxen_fpu_restore_checked(area: *const u8, fxsr: u32) -> u32;
}

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

/// The MXCSR bits the CPU accepts (from its FXSAVE's MXCSR_MASK).
static MXCSR_MASK: AtomicU32 = AtomicU32::new(hv_core::sanitise::MXCSR_DEFAULT_MASK);

const CPUID1_EDX_FXSR: u32 = 1 << 24;
const CPUID1_EDX_SSE: u32 = 1 << 25;
const CR4_OSFXSR: u32 = 1 << 9;
const CR4_OSXMMEXCPT: u32 = 1 << 10;

/// Turns on FXSAVE/SSE support for guests where the CPU has it, learns the
/// CPU's MXCSR_MASK, and leaves CR0.TS set so that the first guest FPU use
/// is noticed. Runs before any guest owns the FPU.
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
        super::cpu::set_task_switched(false);
        let mut probe = FpuArea::new();
        save(&mut probe);
        let field = u32::from_le_bytes(
            probe.0[hv_core::sanitise::FXSAVE_MXCSR_MASK..][..4]
                .try_into()
                .expect("4 bytes"),
        );
        MXCSR_MASK.store(hv_core::sanitise::mxcsr_mask(field), Ordering::Relaxed);
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

/// Loads the FPU registers from `area`. CR0.TS must be clear. If the CPU
/// refuses the image (fpu.S's fixup), `area` becomes the initial state and
/// is loaded instead; returns whether the image was loaded as it was.
pub fn restore(area: &mut FpuArea) -> bool {
    let fxsr = u32::from(FXSR.load(Ordering::Relaxed));
    // SAFETY: `area` is a 512-byte, 16-byte aligned buffer (FXRSTOR's and
    // FRSTOR's operand) that Oxen owns; a fault on the load is fixed up.
    if unsafe { oxen_fpu_restore_checked(area.0.as_ptr(), fxsr) } == 0 {
        return true;
    }
    reset_area(area);
    // SAFETY: as above; the initial state is one every CPU accepts.
    let again = unsafe { oxen_fpu_restore_checked(area.0.as_ptr(), fxsr) };
    assert_eq!(again, 0, "the initial FPU state did not load");
    false
}

/// Makes an image dom0 gave (`setvcpucontext`) one the CPU accepts: MXCSR
/// masked with the CPU's MXCSR_MASK, as Xen does. (An FNSAVE image, without
/// FXSR, has nothing FRSTOR refuses.)
pub fn sanitise(area: &mut FpuArea) {
    if FXSR.load(Ordering::Relaxed) {
        hv_core::sanitise::sanitise_fxsave(&mut area.0, MXCSR_MASK.load(Ordering::Relaxed));
    }
}

/// `selftest_fault=fxrstor`: loads an image with every MXCSR bit set and
/// reports what happened (a CPU refuses it: the fixup resets the state; TCG
/// takes it), then an FXRSTOR whose operand is misaligned, which every CPU
/// refuses with #GP: reports that the fixup caught it. Without FXSR, there
/// is nothing the CPU refuses: reports that.
pub fn selftest_bad_image() {
    if !FXSR.load(Ordering::Relaxed) {
        crate::printk!("selftest: no FXSR, no FPU image the CPU refuses\n");
        return;
    }
    let mut area = FpuArea::new();
    reset_area(&mut area);
    area.0[hv_core::sanitise::FXSAVE_MXCSR..][..4].copy_from_slice(&u32::MAX.to_le_bytes());
    super::cpu::set_task_switched(false);
    let loaded = restore(&mut area);
    let mut now = FpuArea::new();
    save(&mut now);
    crate::printk!(
        "selftest: FPU image with MXCSR 0xffffffff {}; MXCSR now {:#x}\n",
        if loaded {
            "loaded"
        } else {
            "refused, state reset"
        },
        hv_core::sanitise::fxsave_mxcsr(&now.0)
    );
    #[repr(C, align(16))]
    struct Padded([u8; 528]);
    let padded = Padded([0; 528]);
    // SAFETY: 8 bytes into a 528-byte buffer: 512 readable bytes, 8 off a
    // 16-byte boundary, so FXRSTOR raises #GP before loading anything and
    // the fixup returns 1.
    let faulted = unsafe { oxen_fpu_restore_checked(padded.0.as_ptr().add(8), 1) };
    reset_area(&mut area);
    let reset = restore(&mut area);
    save(&mut now);
    super::cpu::set_task_switched(true);
    crate::printk!(
        "selftest: FXRSTOR of a misaligned image {}; then the initial state {}, MXCSR {:#x}\n",
        if faulted == 1 {
            "faulted and was fixed up"
        } else {
            "did not fault"
        },
        if reset { "loaded" } else { "refused" },
        hv_core::sanitise::fxsave_mxcsr(&now.0)
    );
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
