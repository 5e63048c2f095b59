//! Test-only faults (`selftest_fault=pf|de|fxrstor`): prove that the
//! exception reports work by causing one inside Oxen after bring-up, or that
//! a fault Oxen fixes up (an FPU image the CPU refuses) lets it carry on.

use hv_core::cmdline::{Options, SelftestFault};

/// A linear address nothing maps (below the hypervisor hole, no guest loaded).
pub const UNMAPPED_TEST_VA: u32 = 0xA5A5_A000;

/// Triggers the requested fault, if any; does not return when one is asked for.
pub fn run(opts: &Options<'_>) {
    match opts.selftest_fault {
        None => {}
        Some(SelftestFault::PageFault) => {
            crate::printk!("selftest: reading unmapped address {UNMAPPED_TEST_VA:#010x}\n");
            // SAFETY: deliberately faulting; the #PF handler reports and stops,
            // so the read never completes.
            let v = unsafe { core::ptr::read_volatile(UNMAPPED_TEST_VA as *const u32) };
            panic!("selftest: read of unmapped memory returned {v:#x}");
        }
        Some(SelftestFault::DivideError) => {
            crate::printk!("selftest: dividing by zero\n");
            let q: u32;
            // SAFETY: deliberately faulting with #DE; the handler reports and
            // stops, so execution never continues past the `div`.
            unsafe {
                core::arch::asm!("xor edx, edx", "div {d:e}", d = in(reg) 0u32,
                                 inout("eax") 1u32 => q, out("edx") _)
            };
            panic!("selftest: division by zero returned {q}");
        }
        Some(SelftestFault::Fxrstor) => crate::arch::x86::fpu::selftest_bad_image(),
    }
}
