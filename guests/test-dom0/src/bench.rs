//! The `bench` mode: micro-benchmarks of the hypercall round trip and the
//! PV MMU path (`update_va_mapping`, `mmu_update` batches, TLB flushes), one
//! `bench NAME ops=N tsc_per_op=T` line each for `cargo xtask bench`; no
//! checks run in this mode.

use pvrt::mm::{mmu_update, mmuext};
use pvrt::println;
use xen_abi::mm::{MMUEXT_TLB_FLUSH_LOCAL, MmuUpdate};

use crate::helpers::{A, D, Mem, P, RW, normal, pte, self_dom};

fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: RDTSC has no side effects.
    unsafe { core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Prints `bench NAME ops=N tsc_per_op=T` for `cargo xtask bench`.
fn report(name: &str, ops: u64, start: u64) {
    let per = (rdtsc() - start) / ops.max(1);
    println!("bench {name} ops={ops} tsc_per_op={per}");
}

/// Micro-benchmarks of the PV MMU path, run instead of the checks when the
/// command line says `bench`.
pub(crate) fn bench(mem: &Mem<'_>) {
    use xen_abi::sched::SCHEDOP_YIELD;
    let va = mem.scratch_va(60);
    let frame = mem.mfn(mem.first_free_pfn + 40);
    let slot = mem.l1e_maddr(va);

    const N: u64 = 20_000;
    let t = rdtsc();
    for _ in 0..N {
        // SAFETY: no pointers.
        unsafe { pvrt::hypercall::raw(xen_abi::hypercall::SCHED_OP, [SCHEDOP_YIELD, 0, 0, 0, 0]) };
    }
    report("hypercall_round_trip", N, t);

    const M: u64 = 2_000;
    let t = rdtsc();
    for _ in 0..M {
        let _ = mem.map(va, frame, true);
        let _ = mem.unmap(va);
    }
    report("update_va_mapping", 2 * M, t);

    // One batch of 512 entries, alternately mapping and unmapping one slot.
    let mut reqs = [MmuUpdate::new(0, 0, 0); 512];
    for (i, r) in reqs.iter_mut().enumerate() {
        *r = normal(
            slot,
            if i % 2 == 0 {
                pte(frame, P | RW | A | D)
            } else {
                0
            },
        );
    }
    const B: u64 = 40;
    let t = rdtsc();
    for _ in 0..B {
        let _ = mmu_update(&reqs, self_dom());
    }
    report("mmu_update_batch_entry", B * reqs.len() as u64, t);

    let t = rdtsc();
    for _ in 0..M {
        let _ = mmuext(MMUEXT_TLB_FLUSH_LOCAL, 0, 0);
    }
    report("mmuext_tlb_flush", M, t);
}
