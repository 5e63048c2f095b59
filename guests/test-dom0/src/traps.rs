//! Traps: the domain's own trap table with handlers that count and recover
//! (#PF, #GP, #BP, a permitted software interrupt, #NM), `stack_switch`,
//! the callbacks (`set_callbacks`, `callback_op`, `nmi_op`),
//! `fpu_taskswitch`, `int $0x80` from ring 3 (direct gate and through Oxen),
//! and the privileged instructions Oxen emulates for ring 1 (and the ones
//! it turns into a #GP). The handlers and their counters also serve the
//! descriptor checks (the failsafe callback, the #GP skip, vector 15).

use core::sync::atomic::Ordering as AtOrd;

use pvrt::mm::{pfn_to_mfn, update_va_mapping};
use xen_abi::errno::Errno;
use xen_abi::mm::UVMF_INVLPG;

use crate::helpers::{A, Checks, Mem, P, PAGE, hcall, pte};

// Trap handlers for `traps()`: each counts its vector, records the error code
// where there is one, and resumes past the instruction that trapped.
core::arch::global_asm!(
    r#"
    .data
    .balign 4
    .global td_counts
td_counts:          /* #PF, #GP, #BP, int 0x81, #NM, failsafe, int 0x80, vector 15 */
    .long 0, 0, 0, 0, 0, 0, 0, 0
    .global td_gp_skip
td_gp_skip:         /* bytes the #GP handler skips */
    .long 2
    .global td_int80_frame
td_int80_frame:     /* CS word and EFLAGS of the last int $0x80 frame */
    .long 0, 0
td_user_saved_esp:
    .long 0
    .global td_errors
td_errors:          /* #PF, #GP error codes */
    .long 0, 0
    .global td_failsafe_segs
td_failsafe_segs:   /* DS, ES, FS, GS of the last failsafe frame */
    .long 0, 0, 0, 0

    .text
    .global td_pf_handler
td_pf_handler:      /* [error code][eip][cs|mask<<16][eflags] */
    incl    td_counts
    pushl   %eax
    movl    4(%esp), %eax
    movl    %eax, td_errors
    popl    %eax
    addl    $4, %esp
    addl    $2, (%esp)          /* skip the 2-byte load that faulted */
    jmp     hypercall_page + 23 * 32   /* return with the iret hypercall */

    .global td_gp_handler
td_gp_handler:
    incl    td_counts + 4
    pushl   %eax
    movl    4(%esp), %eax
    movl    %eax, td_errors + 4
    movl    td_gp_skip, %eax
    addl    %eax, 8(%esp)       /* skip the instruction (`int $0x40`: 2) */
    popl    %eax
    addl    $4, %esp
    iret

    .global td_v15_handler
td_v15_handler:
    incl    td_counts + 28
    iret

    .global td_bp_handler
td_bp_handler:
    incl    td_counts + 8
    iret

    .global td_soft_handler
td_soft_handler:
    incl    td_counts + 12
    iret

    .global td_nm_handler
td_nm_handler:
    incl    td_counts + 16
    iret

    /* void td_run_user(u32 eip, u32 esp): runs ring-3 code at eip (with
     * events masked) until it executes `int $0x80`, whose handler below
     * comes back here. */
    .global td_run_user
td_run_user:
    pushl   %ebp
    pushl   %ebx
    pushl   %esi
    pushl   %edi
    movl    %esp, td_user_saved_esp
    movl    20(%esp), %eax
    movl    24(%esp), %ecx
    pushl   $0xE033             /* SS: FLAT_USER_SS */
    pushl   %ecx                /* ESP */
    pushl   $0x2                /* EFLAGS: IF clear, so upcall_mask = 1 */
    pushl   $0xE02B             /* CS: FLAT_USER_CS */
    pushl   %eax                /* EIP */
    jmp     hypercall_page + 23 * 32

    /* int $0x80 from ring 3, on the stack_switch stack: [EIP][CS][EFLAGS]
     * [ESP][SS]. Records the CS word and EFLAGS, then returns from
     * td_run_user. Data selectors are null after a return to ring 3. */
    .global td_int80_handler
td_int80_handler:
    movl    $0xE021, %eax       /* FLAT_KERNEL_DS */
    movl    %eax, %ds
    movl    %eax, %es
    movl    4(%esp), %eax
    movl    %eax, td_int80_frame
    movl    8(%esp), %eax
    movl    %eax, td_int80_frame + 4
    incl    td_counts + 24
    movl    td_user_saved_esp, %esp
    popl    %edi
    popl    %esi
    popl    %ebx
    popl    %ebp
    ret

    /* The failsafe callback: [DS][ES][FS][GS][EIP][CS|mask<<16][EFLAGS],
     * entered with null data selectors, so the stack (SS) is all it may use
     * until it loads a data selector of its own. */
    .global td_failsafe_handler
td_failsafe_handler:
    pushl   %eax
    movl    $0xE021, %eax       /* FLAT_KERNEL_DS */
    movl    %eax, %ds
    movl    %eax, %es
    popl    %eax
    incl    td_counts + 20
    popl    td_failsafe_segs
    popl    td_failsafe_segs + 4
    popl    td_failsafe_segs + 8
    popl    td_failsafe_segs + 12
    iret
    "#,
    options(att_syntax)
);

unsafe extern "C" {
    static td_counts: [u32; 8];
    pub(crate) static mut td_gp_skip: u32;
    pub(crate) fn td_v15_handler();
    static td_int80_frame: [u32; 2];
    fn td_run_user(eip: u32, esp: u32);
    fn td_int80_handler();
    static td_errors: [u32; 2];
    pub(crate) static td_failsafe_segs: [u32; 4];
    pub(crate) fn td_failsafe_handler();
    fn td_pf_handler();
    fn td_gp_handler();
    fn td_bp_handler();
    fn td_soft_handler();
    fn td_nm_handler();
}

pub(crate) fn trap_count(i: usize) -> u32 {
    // SAFETY: td_counts is a static the handlers update; read it volatile.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!(td_counts).cast::<u32>().add(i)) }
}

fn trap_error(i: usize) -> u32 {
    // SAFETY: as for `trap_count`.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!(td_errors).cast::<u32>().add(i)) }
}

/// set_trap_table, stack_switch, callbacks, fpu_taskswitch and iret, with
/// faults the domain catches and recovers from.
pub(crate) fn traps(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::hypercall::{
        CALLBACK_OP, FPU_TASKSWITCH, SET_CALLBACKS, SET_TRAP_TABLE, STACK_SWITCH,
    };
    use xen_abi::selectors::{FLAT_KERNEL_CS, FLAT_KERNEL_SS};
    use xen_abi::traps::*;
    let call = |nr: u32, args: [u32; 5]| {
        // SAFETY: every pointer passed below is valid for what the call reads.
        pvrt::hypercall::result(unsafe { pvrt::hypercall::raw(nr, args) })
    };
    let ti = |vector: u8, dpl: u8, handler: unsafe extern "C" fn()| TrapInfo {
        vector,
        flags: dpl,
        cs: FLAT_KERNEL_CS & !3, // RPL 0: Oxen raises it to 1
        address: handler as usize as u32,
    };
    let table = [
        ti(3, 3, td_bp_handler),
        ti(7, 0, td_nm_handler),
        ti(13, 0, td_gp_handler),
        ti(14, 0, td_pf_handler),
        ti(0x81, 1, td_soft_handler),
        TrapInfo::default(),
    ];
    c.ok(
        "set_trap_table",
        call(SET_TRAP_TABLE, [table.as_ptr() as u32, 0, 0, 0, 0]),
    );
    static mut KSTACK: [u8; 4096] = [0; 4096];
    let kstack_top = core::ptr::addr_of!(KSTACK) as u32 + 4096;
    c.ok(
        "stack_switch",
        call(
            STACK_SWITCH,
            [u32::from(FLAT_KERNEL_SS), kstack_top, 0, 0, 0],
        ),
    );

    // A page fault the domain handles: its handler skips the load and returns
    // with the iret hypercall; Oxen reports the address in vcpu_info.arch.cr2.
    let v: u32;
    // SAFETY: reads an unmapped address on purpose; the #PF handler skips the
    // 2-byte `mov (%eax),%edx` and resumes.
    unsafe { core::arch::asm!(".byte 0x8b, 0x10", in("eax") 0x2000u32, out("edx") v) };
    let _ = v;
    let si_va = mem.scratch_va(63);
    let _ = mem.map(si_va, mem.si.shared_info >> 12, true);
    // SAFETY: shared_info is mapped at si_va; vcpu_info[0].arch.cr2 is at +8.
    let cr2 = unsafe { ((si_va + 8) as *const u32).read_volatile() };
    c.check(
        "trap_page_fault_caught",
        trap_count(0) == 1 && trap_error(0) == 0 && cr2 == 0x2000,
        format_args!(
            "count={} err={:#x} cr2={cr2:#x}",
            trap_count(0),
            trap_error(0)
        ),
    );

    // `int $0x40` has no gate the guest may use: a #GP with error code
    // (0x40 << 3) | 2 reaches the domain's #GP handler.
    // SAFETY: the #GP handler skips the 2-byte instruction.
    unsafe { core::arch::asm!("int 0x40") };
    c.check(
        "trap_gp_caught",
        trap_count(1) == 1 && trap_error(1) == (0x40 << 3) | 2,
        format_args!("count={} err={:#x}", trap_count(1), trap_error(1)),
    );
    // `int3` reaches the #BP handler directly; `int $0x81` is allowed from
    // ring 1 by its trap-table DPL and is re-delivered as vector 0x81.
    // SAFETY: both handlers return with iret.
    unsafe { core::arch::asm!("int3", "int 0x81") };
    c.check(
        "trap_int3",
        trap_count(2) == 1,
        format_args!("count={}", trap_count(2)),
    );
    c.check(
        "trap_softint_permitted",
        trap_count(3) == 1,
        format_args!("count={}", trap_count(3)),
    );

    // fpu_taskswitch(1): the next FPU instruction raises #NM to the domain,
    // once; Oxen clears the virtual TS when it delivers it.
    c.ok("fpu_taskswitch_set", call(FPU_TASKSWITCH, [1, 0, 0, 0, 0]));
    // SAFETY: `fnop` changes no state; it only probes CR0.TS.
    unsafe { core::arch::asm!("fnop", "fnop") };
    c.check(
        "fpu_taskswitch_nm_once",
        trap_count(4) == 1,
        format_args!("count={}", trap_count(4)),
    );
    c.ok(
        "fpu_taskswitch_clear",
        call(FPU_TASKSWITCH, [0, 0, 0, 0, 0]),
    );
    // SAFETY: as above.
    unsafe { core::arch::asm!("fnop") };
    c.check(
        "fpu_taskswitch_clear_no_nm",
        trap_count(4) == 1,
        format_args!("count={}", trap_count(4)),
    );

    // Callbacks: both forms; syscall32/sysenter are accepted (§18); only NMI
    // may be unregistered.
    let handler = td_soft_handler as *const () as u32;
    c.ok(
        "set_callbacks",
        call(
            SET_CALLBACKS,
            [
                u32::from(FLAT_KERNEL_CS),
                handler,
                u32::from(FLAT_KERNEL_CS),
                handler,
                0,
            ],
        ),
    );
    let reg = |type_: u16| CallbackRegister {
        type_,
        flags: 0,
        address: XenCallback {
            cs: u32::from(FLAT_KERNEL_CS),
            eip: handler,
        },
    };
    for (name, ty) in [
        ("callback_register_event", CALLBACKTYPE_EVENT),
        ("callback_register_syscall32", CALLBACKTYPE_SYSCALL32),
        ("callback_register_sysenter", CALLBACKTYPE_SYSENTER),
        ("callback_register_nmi", CALLBACKTYPE_NMI),
    ] {
        let r = reg(ty);
        c.ok(
            name,
            call(
                CALLBACK_OP,
                [CALLBACKOP_REGISTER, &r as *const _ as u32, 0, 0, 0],
            ),
        );
    }
    let unreg = |type_: u16| CallbackUnregister { type_, _unused: 0 };
    let u = unreg(CALLBACKTYPE_EVENT);
    c.err(
        "callback_unregister_event",
        call(
            CALLBACK_OP,
            [CALLBACKOP_UNREGISTER, &u as *const _ as u32, 0, 0, 0],
        ),
        Errno::EINVAL,
    );
    let u = unreg(CALLBACKTYPE_NMI);
    c.ok(
        "callback_unregister_nmi",
        call(
            CALLBACK_OP,
            [CALLBACKOP_UNREGISTER, &u as *const _ as u32, 0, 0, 0],
        ),
    );
    c.err(
        "callback_op_bad_cmd",
        call(CALLBACK_OP, [9, 0, 0, 0, 0]),
        Errno::ENOSYS,
    );
    let nmi = [handler, 0];
    c.ok(
        "nmi_op_register",
        call(
            xen_abi::hypercall::NMI_OP,
            [XENNMI_REGISTER_CALLBACK, nmi.as_ptr() as u32, 0, 0, 0],
        ),
    );
    c.ok(
        "nmi_op_unregister",
        call(
            xen_abi::hypercall::NMI_OP,
            [XENNMI_UNREGISTER_CALLBACK, 0, 0, 0, 0],
        ),
    );
    c.err(
        "nmi_op_unknown",
        call(xen_abi::hypercall::NMI_OP, [7, 0, 0, 0, 0]),
        Errno::ENOSYS,
    );
    c.err(
        "set_trap_table_in_hole",
        call(SET_TRAP_TABLE, [0xF580_0000, 0, 0, 0, 0]),
        Errno::EFAULT,
    );
    int80(c, mem, si_va);
    privileged_instructions(c, mem);
    let _ = mem.unmap(si_va);
}

/// `int $0x80` from ring 3. A trap-table entry that leaves events unmasked
/// gets a direct gate: the CPU enters the handler itself, so the frame holds
/// the real CS word and the real IF (set) although the vcpu's events are
/// masked. With the mask flag the call goes through Oxen, whose frame carries
/// the saved upcall mask above CS and the virtual IF (clear).
fn int80(c: &mut Checks, mem: &Mem<'_>, si_va: u32) {
    use xen_abi::hypercall::SET_TRAP_TABLE;
    use xen_abi::selectors::FLAT_USER_CS;
    use xen_abi::traps::TrapInfo;
    const USER: u64 = 1 << 2;
    const EFLAGS_IF: u32 = 1 << 9;
    let code = mem.mfn(mem.first_free_pfn + 56);
    let va = mem.scratch_va(48);
    c.ok("user_page_map", mem.map(va, code, true));
    // SAFETY: the frame is mapped writable at `va`: `int $0x80; jmp .`.
    unsafe {
        core::ptr::copy_nonoverlapping([0xCDu8, 0x80, 0xEB, 0xFE].as_ptr(), va as *mut u8, 4)
    };
    c.ok(
        "user_page_user_mode",
        update_va_mapping(va, pte(code, P | A | USER), UVMF_INVLPG),
    );
    // SAFETY: shared_info is mapped at `si_va`; vcpu_info[0]'s upcall mask
    // is its byte 1.
    let mask_byte = unsafe { &*((si_va + 1) as *const core::sync::atomic::AtomicU8) };
    let saved_mask = mask_byte.load(AtOrd::SeqCst);
    for (name, flags, direct) in [
        ("int80_direct_gate", 3u8, true),
        ("int80_through_oxen", 3 | 4, false),
    ] {
        let table = [
            TrapInfo {
                vector: 0x80,
                flags,
                cs: xen_abi::selectors::FLAT_KERNEL_CS,
                address: td_int80_handler as *const () as u32,
            },
            TrapInfo::default(),
        ];
        let set = pvrt::hypercall::result(
            // SAFETY: `table` is a terminated trap table the call reads.
            unsafe { pvrt::hypercall::raw(SET_TRAP_TABLE, [table.as_ptr() as u32, 0, 0, 0, 0]) },
        );
        let before = trap_count(6);
        // SAFETY: the page at `va` holds `int $0x80`, whose handler returns
        // here; its stack is never used.
        unsafe { td_run_user(va, va + 0x800) };
        // SAFETY: td_int80_frame is a static the handler writes.
        let [cs_word, eflags] =
            unsafe { core::ptr::read_volatile(core::ptr::addr_of!(td_int80_frame)) };
        let expected_cs = if direct {
            u32::from(FLAT_USER_CS)
        } else {
            u32::from(FLAT_USER_CS) | 1 << 16
        };
        c.check(
            name,
            set.is_ok()
                && trap_count(6) == before + 1
                && cs_word == expected_cs
                && (eflags & EFLAGS_IF != 0) == direct,
            format_args!(
                "set={set:?} count={} cs word={cs_word:#x} eflags={eflags:#x}",
                trap_count(6)
            ),
        );
    }
    mask_byte.store(saved_mask, AtOrd::SeqCst);
    let _ = mem.unmap(va);
}

/// Privileged instructions Oxen emulates for ring 1, and ones it does not
/// (those arrive at the domain's #GP handler, which skips 2 bytes).
fn privileged_instructions(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::hypercall::{FPU_TASKSWITCH, PHYSDEV_OP};
    use xen_abi::physdev::{PHYSDEVOP_SET_IOBITMAP, PHYSDEVOP_SET_IOPL};
    let gp = || trap_count(1);
    // CR0.TS follows fpu_taskswitch, and clts clears it.
    let _ = hcall(FPU_TASKSWITCH, [1, 0, 0, 0, 0]);
    let cr0_ts: u32;
    // SAFETY: emulated by Oxen (mov %cr0,%eax).
    unsafe { core::arch::asm!("mov {}, cr0", out(reg) cr0_ts) };
    // SAFETY: emulated by Oxen.
    unsafe { core::arch::asm!("clts") };
    let cr0: u32;
    // SAFETY: as above.
    unsafe { core::arch::asm!("mov {}, cr0", out(reg) cr0) };
    c.check(
        "emulate_cr0_and_clts",
        cr0_ts & 8 != 0 && cr0 & 8 == 0 && cr0 & 0x8000_0001 == 0x8000_0001,
        format_args!("{cr0_ts:#x} {cr0:#x}"),
    );
    // CR3 in Xen's rotated form; writing it back switches to the same L3.
    let cr3: u32;
    // SAFETY: emulated by Oxen.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) cr3) };
    let l3 = pfn_to_mfn(mem.si, (mem.si.pt_base - pvrt::VIRT_BASE) / PAGE).unwrap_or(0);
    c.check(
        "emulate_read_cr3",
        xen_abi::mm::xen_cr3_to_pfn(cr3) == l3,
        format_args!("{cr3:#x} vs mfn {l3:#x}"),
    );
    // SAFETY: emulated: the same base pointer again.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) cr3) };
    let cr2: u32;
    // SAFETY: emulated by Oxen.
    unsafe { core::arch::asm!("mov {}, cr2", out(reg) cr2) };
    c.check("emulate_read_cr2", cr2 == 0x2000, format_args!("{cr2:#x}"));
    // rdmsr of the TSC works; wrmsr is dropped; other rdmsr is #GP.
    let (lo, hi): (u32, u32);
    // SAFETY: emulated by Oxen.
    unsafe { core::arch::asm!("rdmsr", in("ecx") 0x10, out("eax") lo, out("edx") hi) };
    c.check(
        "emulate_rdmsr_tsc",
        ((u64::from(hi) << 32) | u64::from(lo)) != 0,
        format_args!("{hi:#x}:{lo:#x}"),
    );
    let before = gp();
    // SAFETY: emulated (ignored) by Oxen.
    unsafe { core::arch::asm!("wrmsr", in("ecx") 0x1A0, in("eax") 0, in("edx") 0) };
    c.check(
        "emulate_wrmsr_ignored",
        gp() == before,
        format_args!("gp={}", gp()),
    );
    // SAFETY: not emulated: the #GP handler skips the 2-byte rdmsr.
    unsafe { core::arch::asm!("rdmsr", in("ecx") 0xC000_0080u32, out("eax") _, out("edx") _) };
    c.check(
        "rdmsr_unknown_is_gp",
        gp() == before + 1 && trap_error(1) == 0,
        format_args!("gp={} err={:#x}", gp(), trap_error(1)),
    );
    // Port I/O: refused until the virtual IOPL or the I/O bitmap allows it.
    // SAFETY: `in $0x71` faults (skipped by the handler) or is emulated.
    unsafe { core::arch::asm!("in al, 0x71", out("al") _) };
    c.check(
        "in_without_iopl_is_gp",
        gp() == before + 2,
        format_args!("gp={}", gp()),
    );
    let mut bitmap = [0xFFu8; 32];
    bitmap[0x80 / 8] &= !1; // port 0x80 only
    let bm = [bitmap.as_ptr() as u32, 0x100];
    c.ok(
        "physdev_set_iobitmap",
        hcall(
            PHYSDEV_OP,
            [PHYSDEVOP_SET_IOBITMAP, bm.as_ptr() as u32, 0, 0, 0],
        ),
    );
    // SAFETY: port 0x80 is the POST port (harmless); 0x81 is refused.
    unsafe { core::arch::asm!("out 0x80, al", "out 0x81, al", in("al") 0u8) };
    c.check(
        "iobitmap_allows_only_its_ports",
        gp() == before + 3,
        format_args!("gp={}", gp()),
    );
    let iopl = [1u32];
    c.ok(
        "physdev_set_iopl",
        hcall(
            PHYSDEV_OP,
            [PHYSDEVOP_SET_IOPL, iopl.as_ptr() as u32, 0, 0, 0],
        ),
    );
    let status: u8;
    // SAFETY: reads CMOS status register A through the emulated in/out.
    unsafe { core::arch::asm!("out 0x70, al", "in al, 0x71", inout("al") 0x0Au8 => status) };
    c.check(
        "port_io_with_iopl",
        gp() == before + 3 && status & 0x7F != 0,
        format_args!("gp={} status={status:#x}", gp()),
    );
    // Oxen's own devices stay Oxen's even with IOPL: the PIC's mask, the
    // PIT and the serial console's status register are each a #GP.
    // SAFETY: each `in` (2 bytes: the handler skips 2) faults and reads
    // nothing; `in ax, dx` reads the UART's status ports 0x3FD-0x3FE.
    unsafe {
        core::arch::asm!(
            "in al, 0x21",
            "in al, 0x40",
            "in ax, dx",
            out("ax") _,
            in("dx") 0x3FDu16,
        )
    };
    c.check(
        "port_io_oxen_ports_refused",
        gp() == before + 6,
        format_args!("gp={} (want {})", gp(), before + 6),
    );
    let bad = [4u32];
    c.err(
        "physdev_set_iopl_4",
        hcall(
            PHYSDEV_OP,
            [PHYSDEVOP_SET_IOPL, bad.as_ptr() as u32, 0, 0, 0],
        ),
        Errno::EINVAL,
    );
    let zero = [0u32];
    c.ok(
        "physdev_set_iopl_0",
        hcall(
            PHYSDEV_OP,
            [PHYSDEVOP_SET_IOPL, zero.as_ptr() as u32, 0, 0, 0],
        ),
    );
    c.err(
        "physdev_op_unknown",
        hcall(PHYSDEV_OP, [99, 0, 0, 0, 0]),
        Errno::ENOSYS,
    );

    // The forced-emulation CPUID: Xen's leaves and the hypervisor bit.
    let cpuid = |leaf: u32| -> (u32, u32, u32, u32) {
        let (a, b, c, d): (u32, u32, u32, u32);
        // SAFETY: ud2a "xen" cpuid: Oxen emulates it (EBX saved by hand, since
        // Rust reserves it).
        unsafe {
            core::arch::asm!(
                "push ebx",
                ".byte 0x0f, 0x0b, 0x78, 0x65, 0x6e",
                "cpuid",
                "mov {b}, ebx",
                "pop ebx",
                b = out(reg) b,
                inout("eax") leaf => a,
                inout("ecx") 0 => c,
                out("edx") d,
            )
        };
        (a, b, c, d)
    };
    let (a, b, cx, d) = cpuid(0x4000_0000);
    let mut sig = [0u8; 12];
    sig[..4].copy_from_slice(&b.to_le_bytes());
    sig[4..8].copy_from_slice(&cx.to_le_bytes());
    sig[8..].copy_from_slice(&d.to_le_bytes());
    c.check(
        "cpuid_xen_signature",
        a >= 0x4000_0002 && &sig == b"XenVMMXenVMM",
        format_args!("{a:#x} {:?}", core::str::from_utf8(&sig)),
    );
    let (a, ..) = cpuid(0x4000_0001);
    c.check(
        "cpuid_xen_version",
        a == 0x0004_0001,
        format_args!("{a:#x}"),
    );
    let (a, b, ..) = cpuid(0x4000_0002);
    c.check(
        "cpuid_hypercall_page",
        a == 1 && b == 0x4000_0000,
        format_args!("{a} {b:#x}"),
    );
    let (_, _, cx, d) = cpuid(1);
    c.check(
        "cpuid_leaf1_filtered",
        cx & (1 << 31) != 0 && d & (1 << 13) == 0,
        format_args!("ecx={cx:#x} edx={d:#x}"),
    );
}
