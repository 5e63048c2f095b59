//! Descriptors: `set_gdt` and `update_descriptor` on a GDT of the domain's
//! own, the descriptor checks Oxen makes, a loaded selector going bad (the
//! failsafe callback), an LDT through `mmuext_op(SET_LDT)`, and
//! `vm_assist(4gb_segments)` with its vector-15 notification.

use pvrt::mm::{mmuext, vm_assist};
use xen_abi::errno::Errno;
use xen_abi::mm::MMUEXT_SET_LDT;
use xen_abi::traps::VMASST_CMD_ENABLE;

use crate::helpers::{Checks, Mem, OXEN_IMAGE_MFN, PAGE, hcall};
use crate::traps::{td_failsafe_handler, td_failsafe_segs, td_gp_skip, td_v15_handler, trap_count};

fn read_fs() -> u32 {
    let v: u32;
    // SAFETY: reading a segment register has no side effects.
    unsafe { core::arch::asm!("mov {:e}, fs", out(reg) v) };
    v & 0xFFFF
}

fn write_fs(sel: u32) {
    // SAFETY: callers load selectors valid in the current GDT.
    unsafe { core::arch::asm!("mov fs, {:e}", in(reg) sel) };
}

/// `vm_assist(4gb_segments)`: a segment with a 4 GiB limit (truncated by
/// Oxen at the hole) reaches below its base with negative offsets, as TLS
/// does, only through the assist's emulation; `_notify` adds vector 15.
fn four_gb_segments(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::hypercall::{SET_GDT, SET_TRAP_TABLE};
    use xen_abi::traps::{
        TrapInfo, VMASST_CMD_DISABLE, VMASST_TYPE_4GB_SEGMENTS, VMASST_TYPE_4GB_SEGMENTS_NOTIFY,
    };
    let data = mem.mfn(mem.first_free_pfn + 58);
    let dva = mem.scratch_va(50);
    c.ok("seg4gb_data_map", mem.map(dva, data, true));
    let base = dva + 0x100;
    // SAFETY: the data page is mapped writable at `dva`.
    unsafe { ((base - 8) as *mut u32).write_volatile(0xCAFE_F00D) };
    // GDT entry 1: DPL 1 read/write data at `base`, 4 GiB (G=1, limit 0xFFFFF).
    let desc: u64 = (u64::from(base & 0xFF00_0000) << 32)
        | 0x00CF_B200_0000_0000
        | (u64::from((base >> 16) & 0xFF) << 32)
        | (u64::from(base & 0xFFFF) << 16)
        | 0xFFFF;
    let g = descriptor_page(
        c,
        mem,
        ("seg4gb_gdt_map", "seg4gb_gdt_unmap"),
        57,
        49,
        &[(1, desc)],
    );
    let frames = [g];
    c.ok(
        "seg4gb_set_gdt",
        hcall(SET_GDT, [frames.as_ptr() as u32, 2, 0, 0, 0]),
    );
    let v15 = [
        TrapInfo {
            vector: 15,
            flags: 0,
            cs: xen_abi::selectors::FLAT_KERNEL_CS,
            address: td_v15_handler as *const () as u32,
        },
        TrapInfo::default(),
    ];
    c.ok(
        "seg4gb_vector15_handler",
        hcall(SET_TRAP_TABLE, [v15.as_ptr() as u32, 0, 0, 0, 0]),
    );
    // SAFETY: the #GP handler reads td_gp_skip; nothing else runs.
    unsafe { core::ptr::addr_of_mut!(td_gp_skip).write_volatile(6) };
    write_fs(0x9);
    let load = || -> u32 {
        let v: u32;
        // SAFETY: `movl %fs:-8, %eax` (6 bytes): emulated, or a #GP the
        // handler skips.
        unsafe {
            core::arch::asm!(".byte 0x64, 0xA1, 0xF8, 0xFF, 0xFF, 0xFF", inout("eax") 0u32 => v)
        };
        v
    };
    // The limit the CPU holds is the truncated one (QEMU's TCG does not
    // enforce data-segment limits, so the #GP that the assist emulates on
    // hardware does not happen here: the emulation itself is host-tested in
    // hv_core::seg4gb; what is checked is the limit, the assist's
    // acceptance, and that the accesses give the 4 GiB-limit result).
    let limit: u32;
    // SAFETY: LSL only reads the descriptor.
    unsafe { core::arch::asm!("lsl {0:e}, {1:e}", out(reg) limit, in(reg) 0x9u32) };
    c.check(
        "seg4gb_limit_truncated",
        u64::from(base) + u64::from(limit) < 0xF680_0000 && limit > 0xF000_0000 - base,
        format_args!("base={base:#x} limit={limit:#x}"),
    );
    for (name, ty) in [
        ("seg4gb_enable", VMASST_TYPE_4GB_SEGMENTS),
        ("seg4gb_notify_enable", VMASST_TYPE_4GB_SEGMENTS_NOTIFY),
    ] {
        c.ok(name, vm_assist(VMASST_CMD_ENABLE, ty));
    }
    let gps = trap_count(1);
    let v = load();
    c.check(
        "seg4gb_negative_offset_load",
        v == 0xCAFE_F00D && trap_count(1) == gps,
        format_args!("eax={v:#x} #GPs={}", trap_count(1) - gps),
    );
    // SAFETY: `movl $0x600df00d, %fs:-12` (11 bytes).
    unsafe {
        core::arch::asm!(".byte 0x64, 0xC7, 0x05, 0xF4, 0xFF, 0xFF, 0xFF, 0x0D, 0xF0, 0x0D, 0x60")
    };
    // SAFETY: the data page is mapped at `dva`.
    let stored = unsafe { ((base - 12) as *const u32).read_volatile() };
    c.check(
        "seg4gb_negative_offset_store",
        stored == 0x600D_F00D && trap_count(1) == gps,
        format_args!("{stored:#x}"),
    );
    c.err(
        "seg4gb_unknown_assist",
        vm_assist(VMASST_CMD_ENABLE, 4),
        Errno::EINVAL,
    );
    let _ = vm_assist(VMASST_CMD_DISABLE, VMASST_TYPE_4GB_SEGMENTS_NOTIFY);
    let _ = vm_assist(VMASST_CMD_DISABLE, VMASST_TYPE_4GB_SEGMENTS);
    // SAFETY: as above.
    unsafe { core::ptr::addr_of_mut!(td_gp_skip).write_volatile(2) };
    write_fs(u32::from(xen_abi::selectors::FLAT_KERNEL_DS));
    c.ok("seg4gb_gdt_empty", hcall(SET_GDT, [0, 0, 0, 0, 0]));
    let _ = mem.unmap(dva);
}

/// Fills the free frame `first_free_pfn + pfn` with descriptors (`(slot,
/// descriptor)`, the rest zero) through scratch slot `slot`, and unmaps it
/// again, checking both steps under the two names; returns the frame, ready
/// for `set_gdt`.
fn descriptor_page(
    c: &mut Checks,
    mem: &Mem<'_>,
    (map_name, unmap_name): (&str, &str),
    pfn: u32,
    slot: u32,
    entries: &[(usize, u64)],
) -> u32 {
    let g = mem.mfn(mem.first_free_pfn + pfn);
    let va = mem.scratch_va(slot);
    c.ok(map_name, mem.map(va, g, true));
    // SAFETY: the frame is mapped writable at `va`; every slot is < 512.
    unsafe {
        core::ptr::write_bytes(va as *mut u8, 0, PAGE as usize);
        for &(i, d) in entries {
            (va as *mut u64).add(i).write_volatile(d);
        }
    }
    c.ok(unmap_name, mem.unmap(va));
    g
}

/// `set_gdt` and `update_descriptor`: a GDT of the domain's own, descriptor
/// checks, and a selector that goes bad while loaded.
pub(crate) fn descriptors(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::hypercall::{SET_GDT, UPDATE_DESCRIPTOR};
    use xen_abi::traps::{
        CALLBACKF_MASK_EVENTS, CALLBACKOP_REGISTER, CALLBACKTYPE_FAILSAFE, CallbackRegister,
        XenCallback,
    };
    const FLAT_DATA_DPL1: u64 = 0x00CF_B200_0000_67FF;
    const CODE_DPL0: u64 = 0x00CF_9A00_0000_67FF;
    const INTO_THE_HOLE: u64 = 0xF640_B290_0000_0FFF;
    let g = descriptor_page(
        c,
        mem,
        ("gdt_frame_map", "gdt_frame_unmap"),
        50,
        45,
        &[(1, FLAT_DATA_DPL1), (2, CODE_DPL0)],
    );
    let va = mem.scratch_va(45);
    let frames = [g];
    c.ok(
        "set_gdt",
        hcall(SET_GDT, [frames.as_ptr() as u32, 3, 0, 0, 0]),
    );
    write_fs(0x9);
    c.check(
        "gdt_selector_loads",
        read_fs() == 0x9,
        format_args!("fs={:#x}", read_fs()),
    );
    let ar: u32;
    // SAFETY: LAR only reads the descriptor.
    unsafe { core::arch::asm!("lar {0:e}, {1:e}", out(reg) ar, in(reg) 0x11u32) };
    c.check(
        "gdt_dpl0_raised_to_1",
        (ar >> 13) & 3 == 1,
        format_args!("ar={ar:#x}"),
    );
    c.err(
        "gdt_frame_not_writable",
        mem.map(va, g, true),
        Errno::EINVAL,
    );

    let ud = |ma: u64, d: u64| {
        hcall(
            UPDATE_DESCRIPTOR,
            [ma as u32, (ma >> 32) as u32, d as u32, (d >> 32) as u32, 0],
        )
    };
    let ma = u64::from(g) << 12;
    c.err(
        "update_descriptor_into_hole",
        ud(ma + 16, INTO_THE_HOLE),
        Errno::EINVAL,
    );
    c.ok("update_descriptor_gdt", ud(ma + 16, FLAT_DATA_DPL1));
    write_fs(0x11);
    c.check(
        "updated_selector_loads",
        read_fs() == 0x11,
        format_args!("fs={:#x}", read_fs()),
    );
    // The loaded selector goes bad: on the way back Oxen cannot reload it
    // and bounces the failsafe callback with the four data selectors, the
    // guest resuming with them null (its handler loads DS/ES again).
    let failsafe = CallbackRegister {
        type_: CALLBACKTYPE_FAILSAFE,
        flags: CALLBACKF_MASK_EVENTS,
        address: XenCallback {
            cs: u32::from(xen_abi::selectors::FLAT_KERNEL_CS),
            eip: td_failsafe_handler as *const () as u32,
        },
    };
    c.ok(
        "callback_register_failsafe",
        pvrt::hypercall::result(
            // SAFETY: `failsafe` is a live callback_register the call reads.
            unsafe {
                pvrt::hypercall::raw(
                    xen_abi::hypercall::CALLBACK_OP,
                    [CALLBACKOP_REGISTER, &failsafe as *const _ as u32, 0, 0, 0],
                )
            },
        ),
    );
    c.ok("update_descriptor_not_present", ud(ma + 16, 0));
    let segs = || -> [u32; 4] {
        // SAFETY: td_failsafe_segs is a static the failsafe handler writes;
        // read it volatile.
        unsafe { core::ptr::read_volatile(core::ptr::addr_of!(td_failsafe_segs)) }
    };
    let kds = u32::from(xen_abi::selectors::FLAT_KERNEL_DS);
    c.check(
        "bad_selector_failsafe_callback",
        trap_count(5) == 1 && segs()[0] == kds && segs()[1] == kds && segs()[2] == 0x11,
        format_args!("count={} ds/es/fs/gs={:x?}", trap_count(5), segs()),
    );
    c.check(
        "failsafe_resumes_null_fs",
        read_fs() == 0,
        format_args!("fs={:#x}", read_fs()),
    );
    write_fs(u32::from(xen_abi::selectors::FLAT_KERNEL_DS));
    c.err("update_descriptor_misaligned", ud(ma + 4, 0), Errno::EINVAL);
    let plain = mem.mfn(mem.first_free_pfn + 51);
    c.ok(
        "update_descriptor_plain_page",
        ud((u64::from(plain) << 12) + 8, FLAT_DATA_DPL1),
    );
    let _ = mem.map(va, plain, false);
    // SAFETY: mapped read-only at `va`.
    let back = unsafe { ((va + 8) as *const u64).read_volatile() };
    c.check(
        "update_descriptor_plain_written",
        back == FLAT_DATA_DPL1,
        format_args!("{back:#x}"),
    );
    let _ = mem.unmap(va);
    let own_l1 = mem.l1e_maddr(va) & !0xFFF;
    c.err(
        "update_descriptor_page_table",
        ud(own_l1, FLAT_DATA_DPL1),
        Errno::EINVAL,
    );
    c.err(
        "update_descriptor_foreign",
        ud(u64::from(OXEN_IMAGE_MFN) << 12, FLAT_DATA_DPL1),
        Errno::EINVAL,
    );
    c.err(
        "set_gdt_too_many_entries",
        hcall(SET_GDT, [frames.as_ptr() as u32, 7169, 0, 0, 0]),
        Errno::EINVAL,
    );
    let h = [mem.mfn(mem.first_free_pfn + 52)];
    let _ = mem.map(va, h[0], true);
    c.err(
        "set_gdt_writable_frame",
        hcall(SET_GDT, [h.as_ptr() as u32, 1, 0, 0, 0]),
        Errno::EINVAL,
    );
    let _ = mem.unmap(va);
    c.ok("set_gdt_empty", hcall(SET_GDT, [0, 0, 0, 0, 0]));
    four_gb_segments(c, mem);

    // An LDT: its frame must be mapped (read-only) at the LDT's address.
    let l = mem.mfn(mem.first_free_pfn + 53);
    let la = mem.scratch_va(46);
    c.ok("ldt_frame_map", mem.map(la, l, true));
    // SAFETY: mapped writable at `la`.
    unsafe {
        core::ptr::write_bytes(la as *mut u8, 0, PAGE as usize);
        (la as *mut u64).add(1).write_volatile(FLAT_DATA_DPL1);
    }
    c.ok("ldt_frame_read_only", mem.map(la, l, false));
    c.ok("set_ldt_loaded", mmuext(MMUEXT_SET_LDT, la, 2));
    write_fs(0xD); // index 1, LDT, RPL 1
    c.check(
        "ldt_selector_loads",
        read_fs() == 0xD,
        format_args!("fs={:#x}", read_fs()),
    );
    c.err(
        "ldt_frame_not_writable",
        mem.map(la, l, true),
        Errno::EINVAL,
    );
    c.ok("set_ldt_none_again", mmuext(MMUEXT_SET_LDT, 0, 0));
    c.check(
        "ldt_gone_selector_failsafe",
        read_fs() == 0 && trap_count(5) == 2 && segs()[2] == 0xD,
        format_args!(
            "fs={:#x} count={} ds/es/fs/gs={:x?}",
            read_fs(),
            trap_count(5),
            segs()
        ),
    );
    write_fs(u32::from(xen_abi::selectors::FLAT_KERNEL_DS));
    c.ok("ldt_frame_writable_again", mem.map(la, l, true));
    c.ok("ldt_frame_unmap", mem.unmap(la));
    c.err(
        "set_ldt_unmapped",
        mmuext(MMUEXT_SET_LDT, la, 2),
        Errno::EINVAL,
    );
    c.ok("gdt_frame_writable_again", mem.map(va, g, true));
    let _ = mem.unmap(va);
    code_selector_goes_bad(c, mem);
    multicall_iret_ends_list(c);
    emulation_at_code_segment_end(c, mem);
    own_selectors_accepted(c, mem);
}

// Running on a code or stack selector of the domain's own that goes away
// while the guest is in Oxen: Oxen's `iret` back faults, and the fault must
// become the guest's (the failsafe callback, or its domain crashing), never
// a fault of Oxen's.
core::arch::global_asm!(
    r#"
    .data
    .balign 4
td_far:             /* far pointer for the jump onto a selector */
    .long 0, 0
td_iret_saved_esp:
    .long 0
    .global td_iret_failsafe_frame
td_iret_failsafe_frame: /* count, DS, ES, FS, GS, EIP, CS word of the last one */
    .long 0, 0, 0, 0, 0, 0, 0
    .global td_gp_landing_frame
td_gp_landing_frame:    /* count, EIP, CS word of the last #GP td_gp_landing took */
    .long 0, 0, 0

    .text
    /* u32 td_hypercall_on_cs(u32 cs, u32 nr, u32 a1, u32 a2, u32 a3, u32 a4):
     * far-jumps onto code selector `cs` (base 0), makes hypercall `nr`
     * there, then far-jumps back to FLAT_KERNEL_CS; returns EAX. When the
     * return to `cs` fails, td_iret_failsafe comes back through
     * td_iret_landing with the hypercall's EAX. */
    .global td_hypercall_on_cs
td_hypercall_on_cs:
    pushl   %ebx
    pushl   %esi
    movl    %esp, td_iret_saved_esp
    movl    12(%esp), %eax
    movl    %eax, td_far + 4
    movl    $1f, td_far
    ljmp    *td_far
1:  movl    16(%esp), %eax
    movl    20(%esp), %ebx
    movl    24(%esp), %ecx
    movl    28(%esp), %edx
    movl    32(%esp), %esi
    shll    $5, %eax
    addl    $hypercall_page, %eax
    call    *%eax
    ljmp    $0xE019, $td_iret_landing
td_iret_landing:
    movl    td_iret_saved_esp, %esp
    popl    %esi
    popl    %ebx
    ret

    /* void td_jump_on_cs(u32 cs, u32 eip): far-jumps to cs:eip, which
     * comes back through td_iret_landing (failsafe or #GP handler below). */
    .global td_jump_on_cs
td_jump_on_cs:
    pushl   %ebx
    pushl   %esi
    movl    %esp, td_iret_saved_esp
    movl    12(%esp), %eax
    movl    %eax, td_far + 4
    movl    16(%esp), %eax
    movl    %eax, td_far
    ljmp    *td_far

    /* #GP handler: [error code][EIP][CS|mask<<16][EFLAGS]. Records count,
     * EIP and CS word, resumes at td_iret_landing on FLAT_KERNEL_CS. */
    .global td_gp_landing
td_gp_landing:
    incl    td_gp_landing_frame
    addl    $4, %esp
    pushl   %eax
    movl    4(%esp), %eax
    movl    %eax, td_gp_landing_frame + 4
    movl    8(%esp), %eax
    movl    %eax, td_gp_landing_frame + 8
    movl    $td_iret_landing, 4(%esp)
    movl    $0xE019, 8(%esp)
    popl    %eax
    iret

    /* u32 td_iret_onto_cs(u32 cs): the iret hypercall to cs:1f (EFLAGS
     * with IF clear); returns the CS found there, back on FLAT_KERNEL_CS. */
    .global td_iret_onto_cs
td_iret_onto_cs:
    pushl   %ebx
    pushl   %esi
    movl    %esp, td_iret_saved_esp
    movl    12(%esp), %eax
    pushl   $0x2
    pushl   %eax
    pushl   $1f
    jmp     hypercall_page + 23 * 32   /* the stub pushes EAX */
1:  movl    %cs, %eax
    ljmp    $0xE019, $td_iret_landing

    /* void td_int3_on_ss(u32 ss, u32 base): runs `int3` on stack selector
     * ss (based at `base`, same linear stack), then back on FLAT_KERNEL_SS. */
    .global td_int3_on_ss
td_int3_on_ss:
    pushl   %ebx
    pushl   %esi
    movl    %esp, td_iret_saved_esp
    movl    12(%esp), %eax
    movl    %esp, %edx
    subl    16(%esp), %edx
    movl    %eax, %ss
    movl    %edx, %esp
    int3
    movl    $0xE021, %eax
    movl    %eax, %ss
    movl    td_iret_saved_esp, %esp
    popl    %esi
    popl    %ebx
    ret

    /* u32 td_multicall_iret(u32 list, u32 count): multicall(list, count)
     * issued with an iret frame on the stack: [EAX 0x600dcafe][EIP
     * td_iret_landing][FLAT_KERNEL_CS][EFLAGS, IF clear], for a list
     * whose first entry is the iret hypercall. Returns EAX at the
     * landing. */
    .global td_multicall_iret
td_multicall_iret:
    pushl   %ebx
    pushl   %esi
    movl    %esp, td_iret_saved_esp
    movl    12(%esp), %ebx
    movl    16(%esp), %ecx
    pushl   $0x2
    pushl   $0xE019
    pushl   $td_iret_landing
    pushl   $0x600DCAFE
    movl    $13, %eax           /* multicall */
    int     $0x82
    /* Not reached unless the iret was not taken; a continuation that
     * rewound the landing by 2 lands on these. */
    nop
    nop
    jmp     td_iret_landing

    /* u32 td_hypercall_on_ss(u32 ss, u32 nr, u32 a1, u32 a2, u32 a3, u32 a4):
     * the same with stack selector `ss` (base 0) loaded. */
    .global td_hypercall_on_ss
td_hypercall_on_ss:
    pushl   %ebx
    pushl   %esi
    movl    12(%esp), %eax
    movl    %eax, %ss
    movl    16(%esp), %eax
    movl    20(%esp), %ebx
    movl    24(%esp), %ecx
    movl    28(%esp), %edx
    movl    32(%esp), %esi
    shll    $5, %eax
    addl    $hypercall_page, %eax
    call    *%eax
    movl    $0xE021, %ecx       /* FLAT_KERNEL_SS */
    movl    %ecx, %ss
    popl    %esi
    popl    %ebx
    ret

    /* Failsafe callback for a return that failed: [DS][ES][FS][GS][EIP]
     * [CS|mask<<16][EFLAGS] on the interrupted (flat) stack. Records the
     * frame and resumes at td_iret_landing on FLAT_KERNEL_CS. */
    .global td_iret_failsafe
td_iret_failsafe:
    pushl   %eax
    movl    $0xE021, %eax       /* FLAT_KERNEL_DS */
    movl    %eax, %ds
    movl    %eax, %es
    popl    %eax
    incl    td_iret_failsafe_frame
    popl    td_iret_failsafe_frame + 4
    popl    td_iret_failsafe_frame + 8
    popl    td_iret_failsafe_frame + 12
    popl    td_iret_failsafe_frame + 16
    pushl   %eax
    movl    4(%esp), %eax
    movl    %eax, td_iret_failsafe_frame + 20
    movl    8(%esp), %eax
    movl    %eax, td_iret_failsafe_frame + 24
    movl    $td_iret_landing, 4(%esp)
    movl    $0xE019, 8(%esp)    /* FLAT_KERNEL_CS */
    popl    %eax
    iret
    "#,
    options(att_syntax)
);

unsafe extern "C" {
    fn td_hypercall_on_cs(cs: u32, nr: u32, a1: u32, a2: u32, a3: u32, a4: u32) -> u32;
    fn td_hypercall_on_ss(ss: u32, nr: u32, a1: u32, a2: u32, a3: u32, a4: u32) -> u32;
    fn td_iret_failsafe();
    fn td_multicall_iret(list: u32, count: u32) -> u32;
    fn td_jump_on_cs(cs: u32, eip: u32);
    fn td_iret_onto_cs(cs: u32) -> u32;
    fn td_int3_on_ss(ss: u32, base: u32);
    fn td_gp_landing();
    fn td_gp_handler();
    static td_gp_landing_frame: [u32; 3];
    static td_iret_failsafe_frame: [u32; 7];
    static hypercall_page: u8;
}

/// Count, DS, ES, FS, GS, EIP and CS word of the last failsafe frame
/// `td_iret_failsafe` took.
fn iret_failsafe_frame() -> [u32; 7] {
    // SAFETY: a static the failsafe handler writes; read it volatile.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!(td_iret_failsafe_frame)) }
}

/// Flat 32-bit code, DPL 1, ending where guest segments end.
const FLAT_CODE_DPL1: u64 = 0x00CF_BA00_0000_67FF;
/// Flat 32-bit read/write data, DPL 1.
const FLAT_DATA_DPL1: u64 = 0x00CF_B200_0000_67FF;

fn register_failsafe(c: &mut Checks, name: &str, handler: unsafe extern "C" fn()) {
    use xen_abi::traps::{
        CALLBACKF_MASK_EVENTS, CALLBACKOP_REGISTER, CALLBACKTYPE_FAILSAFE, CallbackRegister,
        XenCallback,
    };
    let failsafe = CallbackRegister {
        type_: CALLBACKTYPE_FAILSAFE,
        flags: CALLBACKF_MASK_EVENTS,
        address: XenCallback {
            cs: u32::from(xen_abi::selectors::FLAT_KERNEL_CS),
            eip: handler as *const () as u32,
        },
    };
    c.ok(
        name,
        pvrt::hypercall::result(
            // SAFETY: `failsafe` is a live callback_register the call reads.
            unsafe {
                pvrt::hypercall::raw(
                    xen_abi::hypercall::CALLBACK_OP,
                    [CALLBACKOP_REGISTER, &failsafe as *const _ as u32, 0, 0, 0],
                )
            },
        ),
    );
}

/// The guest far-jumps onto a DPL-1 code segment of its own (in its GDT,
/// then in its LDT) and removes that descriptor with a hypercall made
/// while running on it. Oxen's `iret` back to the selector faults; the
/// guest gets the failsafe callback with the frame it could not return to
/// (as 32-bit Xen does) and Oxen goes on.
fn code_selector_goes_bad(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::hypercall::{MMUEXT_OP, SET_GDT, UPDATE_DESCRIPTOR, XEN_VERSION};
    let g = descriptor_page(
        c,
        mem,
        ("iret_gdt_map", "iret_gdt_unmap"),
        54,
        56,
        &[(3, FLAT_CODE_DPL1)],
    );
    let frames = [g];
    c.ok(
        "iret_set_gdt_own_code",
        hcall(SET_GDT, [frames.as_ptr() as u32, 4, 0, 0, 0]),
    );
    register_failsafe(c, "iret_failsafe_register", td_iret_failsafe);
    let hp = core::ptr::addr_of!(hypercall_page) as u32;
    let before = iret_failsafe_frame()[0];
    // SAFETY: 0x19 is the DPL-1 flat code segment just loaded; xen_version
    // takes no pointer for XENVER_version (0).
    let v = unsafe { td_hypercall_on_cs(0x19, XEN_VERSION, 0, 0, 0, 0) };
    c.check(
        "iret_own_code_selector_returns",
        v >> 16 >= 3 && iret_failsafe_frame()[0] == before,
        format_args!(
            "version {v:#x}, failsafe count {}",
            iret_failsafe_frame()[0]
        ),
    );
    let ma = u64::from(g) << 12;
    // SAFETY: as above; the hypercall removes the running code descriptor.
    let r = unsafe {
        td_hypercall_on_cs(
            0x19,
            UPDATE_DESCRIPTOR,
            (ma + 24) as u32,
            (ma >> 32) as u32,
            0,
            0,
        )
    };
    let f = iret_failsafe_frame();
    let in_stub = |eip: u32, nr: u32| (hp + nr * 32..hp + nr * 32 + 32).contains(&eip);
    let kds = u32::from(xen_abi::selectors::FLAT_KERNEL_DS);
    c.check(
        "iret_gdt_code_gone_failsafe",
        r == 0
            && f[0] == before + 1
            && f[6] & 0xFFFF == 0x19
            && in_stub(f[5], UPDATE_DESCRIPTOR)
            && f[1] == kds,
        format_args!("result {r:#x} failsafe frame {f:x?}"),
    );
    // Again, the descriptor back in place, now dropped with the whole GDT
    // (`set_gdt` without it).
    c.ok(
        "iret_gdt_code_back",
        hcall(
            UPDATE_DESCRIPTOR,
            [
                (ma + 24) as u32,
                (ma >> 32) as u32,
                FLAT_CODE_DPL1 as u32,
                (FLAT_CODE_DPL1 >> 32) as u32,
                0,
            ],
        ),
    );
    // SAFETY: as above; the hypercall drops the GDT holding the running
    // code descriptor.
    let r = unsafe { td_hypercall_on_cs(0x19, SET_GDT, 0, 0, 0, 0) };
    let f = iret_failsafe_frame();
    c.check(
        "iret_gdt_dropped_failsafe",
        r == 0 && f[0] == before + 2 && f[6] & 0xFFFF == 0x19 && in_stub(f[5], SET_GDT),
        format_args!("result {r:#x} failsafe frame {f:x?}"),
    );
    c.ok("iret_gdt_empty", hcall(SET_GDT, [0, 0, 0, 0, 0]));

    // The same with a code segment in the LDT and `MMUEXT_SET_LDT(0, 0)`.
    let l = mem.mfn(mem.first_free_pfn + 55);
    let la = mem.scratch_va(58);
    c.ok("iret_ldt_map", mem.map(la, l, true));
    // SAFETY: mapped writable at `la`.
    unsafe {
        core::ptr::write_bytes(la as *mut u8, 0, PAGE as usize);
        (la as *mut u64).add(1).write_volatile(FLAT_CODE_DPL1);
    }
    c.ok("iret_ldt_read_only", mem.map(la, l, false));
    c.ok("iret_set_ldt_own_code", mmuext(MMUEXT_SET_LDT, la, 2));
    let op = [xen_abi::mm::MmuextOp::new(MMUEXT_SET_LDT, 0, 0)];
    let mut done = 0u32;
    // SAFETY: 0xD is index 1 of the LDT (RPL 1), the code segment just
    // loaded; `op` and `done` are live for the call, which drops the LDT.
    let r = unsafe {
        td_hypercall_on_cs(
            0xD,
            MMUEXT_OP,
            op.as_ptr() as u32,
            1,
            &mut done as *mut u32 as u32,
            u32::from(xen_abi::domid::DOMID_SELF),
        )
    };
    let f = iret_failsafe_frame();
    c.check(
        "iret_ldt_code_gone_failsafe",
        r == 0
            && done == 1
            && f[0] == before + 3
            && f[6] & 0xFFFF == 0xD
            && in_stub(f[5], MMUEXT_OP),
        format_args!("result {r:#x} done {done} failsafe frame {f:x?}"),
    );
    c.ok("iret_ldt_writable_again", mem.map(la, l, true));
    c.ok("iret_ldt_unmap", mem.unmap(la));
    register_failsafe(c, "iret_failsafe_restored", td_failsafe_handler);
}

/// `test=bad-stack-selector`: the guest loads SS with a DPL-1 data segment
/// of its own and removes that descriptor with a hypercall made on it.
/// Oxen's `iret` back faults on SS; the failsafe callback would have to be
/// delivered on that very stack, so the domain crashes (as in Xen), and
/// Oxen reports it and goes on: it must not take a fault of its own.
pub(crate) fn stack_selector_goes_bad(mem: &Mem<'_>) {
    use xen_abi::hypercall::{SET_GDT, UPDATE_DESCRIPTOR};
    let mut c = Checks {
        passed: 0,
        failed: 0,
    };
    let g = descriptor_page(
        &mut c,
        mem,
        ("iret_ss_gdt_map", "iret_ss_gdt_unmap"),
        54,
        56,
        &[(2, FLAT_DATA_DPL1)],
    );
    let frames = [g];
    let _ = hcall(SET_GDT, [frames.as_ptr() as u32, 3, 0, 0, 0]);
    // With a failsafe callback: it cannot help, as it would run on the
    // stack that went bad.
    register_failsafe(&mut c, "iret_ss_failsafe_register", td_iret_failsafe);
    let ma = u64::from(g) << 12;
    pvrt::println!("test-dom0: removing the stack descriptor while running on it");
    // SAFETY: 0x11 is the DPL-1 flat data segment just loaded; the
    // hypercall removes it, and Oxen must crash this domain on the way back.
    let r = unsafe {
        td_hypercall_on_ss(
            0x11,
            UPDATE_DESCRIPTOR,
            (ma + 16) as u32,
            (ma >> 32) as u32,
            0,
            0,
        )
    };
    pvrt::println!("test-dom0: returned on the removed stack selector ({r:#x})");
}

/// An `iret` inside a multicall ends the multicall there, as in Xen (the
/// guest is elsewhere now): the entries after it do not run, the multicall
/// "returns" the iret's EAX, and no continuation rewinds the EIP the iret
/// set (which could be 0 or 1, then wrapped past the code segment's limit).
fn multicall_iret_ends_list(c: &mut Checks) {
    use xen_abi::hypercall::{IRET, MulticallEntry, XEN_VERSION};
    const SENTINEL: u32 = 0xDEAD;
    // More entries than one multicall invocation runs: without the stop,
    // the call yields and re-executes from the rewound EIP.
    static mut LIST: [MulticallEntry; 70] = [MulticallEntry {
        op: XEN_VERSION,
        result: SENTINEL,
        args: [0; 6],
    }; 70];
    // SAFETY: one vcpu; only this function touches LIST.
    let list = unsafe { &mut *core::ptr::addr_of_mut!(LIST) };
    list[0].op = IRET;
    // SAFETY: the list is read and written for its length; the stub's iret
    // frame returns to td_iret_landing on the flat code segment.
    let eax = unsafe { td_multicall_iret(list.as_mut_ptr() as u32, list.len() as u32) };
    let ran_after = list[1..].iter().filter(|e| e.result != SENTINEL).count();
    c.check(
        "multicall_iret_ends_the_list",
        eax == 0x600D_CAFE && list[0].result == 0x600D_CAFE && ran_after == 0,
        format_args!(
            "eax {eax:#x}, iret entry result {:#x}, {ran_after} entries ran after it",
            list[0].result
        ),
    );
}

/// Ring 1 runs a privileged instruction Oxen emulates (`clts`) that
/// crosses the end of its own code segment: the CPU could not fetch it
/// whole, so Oxen must not emulate it (it used to, reading past the limit),
/// and the guest gets the #GP with the instruction not done. (Emulating the
/// segment's last instruction leaves EIP past the limit, and on hardware
/// Oxen's `iret` there faults into the failsafe callback; QEMU's TCG does
/// not check EIP against the limit on `iret`, so that case is hardware-only
/// and covered by the `iret` fixup the code-selector checks exercise.)
fn emulation_at_code_segment_end(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::hypercall::{FPU_TASKSWITCH, SET_GDT};
    use xen_abi::traps::TrapInfo;
    const CLTS: [u8; 2] = [0x0F, 0x06];
    const CR0_TS: u32 = 1 << 3;
    let va = mem.scratch_va(59);
    let (code, next) = (
        mem.mfn(mem.first_free_pfn + 60),
        mem.mfn(mem.first_free_pfn + 61),
    );
    let mapped = mem.map(va, code, true).and(mem.map(va + PAGE, next, true));
    c.ok("emul_end_code_map", mapped);
    // SAFETY: both pages are mapped writable at `va`.
    unsafe { core::ptr::write_bytes(va as *mut u8, 0x90, 2 * PAGE as usize) };
    // Flat DPL-1 code, 4 KiB granular, ending at the end of the page.
    let limit = u64::from(((va + PAGE) >> 12) - 1);
    let desc = (limit & 0xFFFF) | ((limit >> 16) & 0xF) << 48 | 0xBA << 40 | 0xC << 52;
    let g = descriptor_page(
        c,
        mem,
        ("emul_end_gdt_map", "emul_end_gdt_unmap"),
        54,
        56,
        &[(3, desc)],
    );
    let frames = [g];
    c.ok(
        "emul_end_set_gdt",
        hcall(SET_GDT, [frames.as_ptr() as u32, 4, 0, 0, 0]),
    );
    let cr0 = || -> u32 {
        let v: u32;
        // SAFETY: emulated by Oxen for ring 1 (the virtual CR0).
        unsafe { core::arch::asm!("mov {}, cr0", out(reg) v) };
        v
    };
    // `clts` as the segment's last byte, its second byte past the limit
    // (on the next page, mapped: only the limit stops the fetch).
    // SAFETY: both pages are mapped writable at `va`.
    unsafe { core::ptr::copy_nonoverlapping(CLTS.as_ptr(), (va + PAGE - 1) as *mut u8, 2) };
    let gp = |handler: unsafe extern "C" fn()| {
        let t = [
            TrapInfo {
                vector: 13,
                flags: 0,
                cs: xen_abi::selectors::FLAT_KERNEL_CS,
                address: handler as usize as u32,
            },
            TrapInfo::default(),
        ];
        pvrt::traps::set_trap_table(&t)
    };
    c.ok("emul_end_gp_landing", gp(td_gp_landing));
    let _ = hcall(FPU_TASKSWITCH, [1, 0, 0, 0, 0]);
    // SAFETY: a read-only static the #GP handler writes; read it volatile.
    let gp_frame = || unsafe { core::ptr::read_volatile(core::ptr::addr_of!(td_gp_landing_frame)) };
    let gps = gp_frame()[0];
    // SAFETY: as above; the fetch of `clts` crosses the limit, so the
    // way back is the #GP handler's landing.
    unsafe { td_jump_on_cs(0x19, va + PAGE - 1) };
    let f = gp_frame();
    let ts_after = cr0() & CR0_TS != 0;
    c.check(
        "emul_insn_across_segment_limit_refused",
        ts_after && f[0] == gps + 1 && f[1] == va + PAGE - 1 && f[2] & 0xFFFF == 0x19,
        format_args!("TS {ts_after}, #GP frame {f:x?}"),
    );
    c.ok("emul_end_gp_restored", gp(td_gp_handler));
    let _ = hcall(FPU_TASKSWITCH, [0, 0, 0, 0, 0]);
    c.ok("emul_end_gdt_empty", hcall(SET_GDT, [0, 0, 0, 0, 0]));
    c.ok(
        "emul_end_code_unmap",
        mem.unmap(va).and(mem.unmap(va + PAGE)),
    );
}

/// Code and stack selectors of the guest's own, not only Oxen's flat ones,
/// are returned to when the CPU would take them (as Xen accepts them): the
/// iret hypercall onto a DPL-1 code segment of its GDT, and a trap taken
/// on a stack segment based at 0x1000, whose bounce frame Oxen must write
/// at base + ESP for the handler's own `iret` to find it.
fn own_selectors_accepted(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::hypercall::SET_GDT;
    /// DPL-1 read/write data based at 0x1000, 4 GiB (truncated by Oxen).
    const BASED_DATA_DPL1: u64 = 0x00CF_B200_1000_FFFF;
    let g = descriptor_page(
        c,
        mem,
        ("own_sel_gdt_map", "own_sel_gdt_unmap"),
        54,
        56,
        &[(2, BASED_DATA_DPL1), (3, FLAT_CODE_DPL1)],
    );
    let frames = [g];
    c.ok(
        "own_sel_set_gdt",
        hcall(SET_GDT, [frames.as_ptr() as u32, 4, 0, 0, 0]),
    );
    // SAFETY: 0x19 is the DPL-1 flat code segment just loaded.
    let cs = unsafe { td_iret_onto_cs(0x19) };
    c.check(
        "iret_hypercall_onto_own_code_selector",
        cs & 0xFFFF == 0x19,
        format_args!("cs there {cs:#x}"),
    );
    let bps = trap_count(2);
    // SAFETY: 0x11 is the based stack segment just loaded; the same linear
    // stack is addressed with ESP lowered by its base.
    unsafe { td_int3_on_ss(0x11, 0x1000) };
    c.check(
        "trap_bounced_on_own_based_stack",
        trap_count(2) == bps + 1,
        format_args!("#BP count {} -> {}", bps, trap_count(2)),
    );
    c.ok("own_sel_gdt_empty", hcall(SET_GDT, [0, 0, 0, 0, 0]));
}
