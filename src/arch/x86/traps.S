/*
 * Trap entry stubs: one per vector 0..47. Each leaves one word with the error
 * code in its low half and the vector in its high half (as Xen's cpu_user_regs
 * `error_code`/`entry_vector`), then `trap_common` saves the general registers
 * in cpu_user_regs order (ebx first) with the data segments below them, loads
 * Oxen's data selector and calls `oxen_handle_trap(&mut TrapFrame)`.
 *
 * Every instruction of the way back that loads guest state (the four data
 * selectors, and the final `iret` with CS:EIP, EFLAGS, SS:ESP) has an
 * exception-table fixup: a fault there is the guest's, never Oxen's.
 */
    .set FLAT_RING0_DS, 0xE010

    /* Oxen's data selectors, and the direction flag its code expects (clobbers
     * EAX). Oxen uses no FS/GS: they are nulled, so that a nested trap never
     * saves (and later reloads) a guest selector that may have gone bad
     * meanwhile. */
    .macro LOAD_OXEN_SEGMENTS
    movl    $FLAT_RING0_DS, %eax
    movl    %eax, %ds
    movl    %eax, %es
    xorl    %eax, %eax
    movl    %eax, %fs
    movl    %eax, %gs
    cld
    .endm

    /* Completes a TrapFrame below the error code and vector already pushed:
     * the general registers, then the guest's data selectors; loads Oxen's. */
    .macro SAVE_FRAME
    pushl   %eax
    pushl   %ebp
    pushl   %edi
    pushl   %esi
    pushl   %edx
    pushl   %ecx
    pushl   %ebx
    subl    $16, %esp
    movl    %ds, %eax
    movl    %eax, 12(%esp)
    movl    %es, %eax
    movl    %eax, 8(%esp)
    movl    %fs, %eax
    movl    %eax, 4(%esp)
    movl    %gs, %eax
    movl    %eax, 0(%esp)
    LOAD_OXEN_SEGMENTS
    .endm

    .macro TRAP_NOERR vec
    .global oxen_trap_\vec
oxen_trap_\vec:
    pushl   $0
    movw    $\vec, 2(%esp)
    jmp     oxen_trap_common
    .endm

    .macro TRAP_ERR vec
    .global oxen_trap_\vec
oxen_trap_\vec:
    movw    $\vec, 2(%esp)
    jmp     oxen_trap_common
    .endm

    .text
    .balign 16
    TRAP_NOERR 0
    TRAP_NOERR 1
    TRAP_NOERR 2
    TRAP_NOERR 3
    TRAP_NOERR 4
    TRAP_NOERR 5
    TRAP_NOERR 6
    TRAP_NOERR 7
    TRAP_ERR   8
    TRAP_NOERR 9
    TRAP_ERR   10
    TRAP_ERR   11
    TRAP_ERR   12
    TRAP_ERR   13
    TRAP_ERR   14
    TRAP_NOERR 15
    TRAP_NOERR 16
    TRAP_ERR   17
    TRAP_NOERR 18
    TRAP_NOERR 19
    TRAP_NOERR 20
    TRAP_ERR   21
    .irp vec, 22,23,24,25,26,27,28
    TRAP_NOERR \vec
    .endr
    TRAP_ERR   29                       /* #VC */
    TRAP_ERR   30                       /* #SX */
    .irp vec, 31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    TRAP_NOERR \vec
    .endr

oxen_trap_common:
    SAVE_FRAME
    movl    %esp, %eax
    pushl   %eax
    call    oxen_handle_trap
    addl    $4, %esp
    .global oxen_trap_return
oxen_trap_return:
    /*
     * A guest's data selector may have gone bad while it was away (its GDT
     * or LDT changed): a load below that faults is not Oxen's fault but the
     * guest's, reported to its failsafe callback as Xen does.
     */
    movl    0(%esp), %eax
.Lload_gs:
    movl    %eax, %gs
    movl    4(%esp), %eax
.Lload_fs:
    movl    %eax, %fs
    movl    8(%esp), %eax
.Lload_es:
    movl    %eax, %es
    movl    12(%esp), %eax
.Lload_ds:
    movl    %eax, %ds
    addl    $16, %esp
    popl    %ebx
    popl    %ecx
    popl    %edx
    popl    %esi
    popl    %edi
    popl    %ebp
    popl    %eax
    addl    $4, %esp
.Liret:
    iret

    /*
     * A load above faulted (the exception table sent us here, with ESP back
     * at the guest's frame): Oxen's own data selectors first, as some guest
     * ones may be loaded by now; then Rust bounces the failsafe callback (or
     * crashes the domain) and clears the frame's data selectors, and the
     * whole return path runs again.
     */
.Lsegment_reload_failed:
    LOAD_OXEN_SEGMENTS
    movl    %esp, %eax
    pushl   %eax
    call    oxen_segment_reload_failed
    addl    $4, %esp
    jmp     oxen_trap_return

    /*
     * The `iret` above faulted: the guest's CS or SS went bad while it was
     * away (its GDT or LDT changed), or its EIP lies beyond the CS limit.
     * The fault was taken in ring 0 on this stack and resumed here with the
     * registers as they were at the `iret` (the guest's), ESP back at the
     * guest's EIP: save them again into a frame of the same layout, then
     * hand it to Rust like a failed data-selector reload (the failsafe
     * callback, or the domain crashes). The data selectors loaded fine and
     * are saved as they are.
     */
.Liret_failed:
    pushl   $0
    SAVE_FRAME
    movl    %esp, %eax
    pushl   %eax
    call    oxen_iret_failed
    addl    $4, %esp
    jmp     oxen_trap_return

    /* Faults on the way back to a guest, and where to resume instead. */
    .section .rodata
    .balign 4
    .global oxen_trap_ex_table_start, oxen_trap_ex_table_end
oxen_trap_ex_table_start:
    .long .Lload_gs, .Lsegment_reload_failed
    .long .Lload_fs, .Lsegment_reload_failed
    .long .Lload_es, .Lsegment_reload_failed
    .long .Lload_ds, .Lsegment_reload_failed
    .long .Liret, .Liret_failed

oxen_trap_ex_table_end:
    .text

    /* The hypercall gate (vector 0x82, DPL 1): same frame as any trap. */
    .global oxen_hypercall_entry
oxen_hypercall_entry:
    pushl   $0
    movw    $0x82, 2(%esp)
    jmp     oxen_trap_common

    /*
     * void oxen_enter_guest(struct TrapFrame *frame): switch to the stack
     * holding `frame` (the top of the per-CPU guest stack) and return to the
     * context it describes, through the common trap exit.
     */
    .global oxen_enter_guest
oxen_enter_guest:
    movl    4(%esp), %esp
    jmp     oxen_trap_return

    /* Table of the stubs' addresses, indexed by vector. */
    .section .rodata
    .balign 4
    .global oxen_trap_stubs
oxen_trap_stubs:
    .irp vec, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    .long oxen_trap_\vec
    .endr
