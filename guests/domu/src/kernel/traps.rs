//! Exception handlers (XEN-PV-ABI.md §6.1–6.2): every CPU exception a PV
//! kernel can get is reported on the hypervisor console with its frame
//! (vector, error code, EIP, and CR2 for #PF from vcpu_info) and the domain
//! is shut down as crashed. This kernel has no user mode and no recoverable
//! fault, so there is nothing else to do.

use core::mem::offset_of;

use xen_abi::shared_info::{VcpuInfo, vcpu_info_offset};
use xen_abi::traps::TrapInfo;

core::arch::global_asm!(
    r#"
    .text
    .macro DOMU_TRAP vec, has_error
    .global domu_trap_\vec
domu_trap_\vec:
    .if \has_error == 0
    pushl   $0                  /* no error code: keep one frame shape */
    .endif
    pushl   $\vec
    jmp     domu_trap_common
    .endm

    DOMU_TRAP 0, 0
    DOMU_TRAP 1, 0
    DOMU_TRAP 3, 0
    DOMU_TRAP 4, 0
    DOMU_TRAP 5, 0
    DOMU_TRAP 6, 0
    DOMU_TRAP 7, 0
    DOMU_TRAP 10, 1
    DOMU_TRAP 11, 1
    DOMU_TRAP 12, 1
    DOMU_TRAP 13, 1
    DOMU_TRAP 14, 1
    DOMU_TRAP 16, 0
    DOMU_TRAP 17, 1
    DOMU_TRAP 18, 0
    DOMU_TRAP 19, 0

domu_trap_common:               /* [vector][error][eip][cs|mask][eflags] */
    movl    %esp, %eax
    pushl   %eax
    call    domu_trap
1:  jmp     1b
    "#,
    options(att_syntax)
);

/// The frame `domu_trap_common` passes.
#[repr(C)]
struct Frame {
    vector: u32,
    error: u32,
    eip: u32,
    cs: u32,
    eflags: u32,
}

/// Where shared_info is mapped (for CR2), 0 before.
static SHARED_VA: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

#[unsafe(no_mangle)]
extern "C" fn domu_trap(frame: *const Frame) -> ! {
    // SAFETY: the stub passes the frame it just completed on this stack.
    let f = unsafe { &*frame };
    let shared = SHARED_VA.load(core::sync::atomic::Ordering::SeqCst);
    let cr2 = if shared != 0 {
        let at = vcpu_info_offset(0) + offset_of!(VcpuInfo, arch.cr2);
        // SAFETY: shared_info is mapped at `shared`; vcpu_info[0].arch.cr2
        // is an aligned u32 inside it (§5.2).
        unsafe { ((shared as usize + at) as *const u32).read_volatile() }
    } else {
        0
    };
    pvrt::println!(
        "domU: exception {} (error {:#x}) at eip {:#x} cs {:#x} eflags {:#x} cr2 {:#x}: crashing",
        f.vector,
        f.error,
        f.eip,
        f.cs & 0xFFFF,
        f.eflags,
        cr2
    );
    pvrt::hypercall::shutdown(xen_abi::sched::SHUTDOWN_CRASH);
    loop {
        core::hint::spin_loop();
    }
}

unsafe extern "C" {
    fn domu_trap_0();
    fn domu_trap_1();
    fn domu_trap_3();
    fn domu_trap_4();
    fn domu_trap_5();
    fn domu_trap_6();
    fn domu_trap_7();
    fn domu_trap_10();
    fn domu_trap_11();
    fn domu_trap_12();
    fn domu_trap_13();
    fn domu_trap_14();
    fn domu_trap_16();
    fn domu_trap_17();
    fn domu_trap_18();
    fn domu_trap_19();
}

/// Installs the handlers (DPL 0: none may be raised with `int n`). Later
/// faults read CR2 from shared_info at `shared_va` (0 if not mapped).
pub fn install(shared_va: u32) -> Result<u32, xen_abi::errno::Errno> {
    SHARED_VA.store(shared_va, core::sync::atomic::Ordering::SeqCst);
    let handlers: [(u8, unsafe extern "C" fn()); 16] = [
        (0, domu_trap_0),
        (1, domu_trap_1),
        (3, domu_trap_3),
        (4, domu_trap_4),
        (5, domu_trap_5),
        (6, domu_trap_6),
        (7, domu_trap_7),
        (10, domu_trap_10),
        (11, domu_trap_11),
        (12, domu_trap_12),
        (13, domu_trap_13),
        (14, domu_trap_14),
        (16, domu_trap_16),
        (17, domu_trap_17),
        (18, domu_trap_18),
        (19, domu_trap_19),
    ];
    let mut table = [TrapInfo::default(); 17];
    for (slot, (vector, handler)) in table.iter_mut().zip(handlers) {
        *slot = pvrt::traps::entry(vector, 0, handler as *const () as u32);
    }
    pvrt::traps::set_trap_table(&table)
}
