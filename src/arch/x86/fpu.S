/*
 * Loading a vcpu's FPU image. FXRSTOR raises #GP on an image the CPU refuses
 * (reserved MXCSR bits); the fault is fixed up (exception table) by
 * resuming at a return of 1, so that the caller resets the state instead of
 * Oxen crashing (Xen's fixup on its `fxrstor`). FRSTOR does not check what
 * it loads, but gets the same fixup.
 *
 *   u32 oxen_fpu_restore_checked(const void *area, u32 fxsr)
 *   returns 0 when the image was loaded, 1 when the load faulted.
 *
 * The instructions are bytes because the soft-float target disables the
 * fxsr feature in the assembler.
 */
    .text
    .global oxen_fpu_restore_checked
oxen_fpu_restore_checked:
    movl    4(%esp), %ecx
    xorl    %eax, %eax
    cmpl    $0, 8(%esp)
    je      2f
1:  .byte   0x0f, 0xae, 0x09        /* fxrstor (%ecx) */
    ret
2:  .byte   0xdd, 0x21              /* frstor (%ecx) */
    ret
3:  movl    $1, %eax
    ret

    /* Exception table: pairs of (faulting EIP, fixup EIP). */
    .section .rodata
    .balign 4
    .global oxen_fpu_ex_table_start, oxen_fpu_ex_table_end
oxen_fpu_ex_table_start:
    .long 1b, 3b
    .long 2b, 3b
oxen_fpu_ex_table_end:
    .text
