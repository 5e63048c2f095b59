/*
 * Copies between Oxen and guest memory that may fault. The only instruction
 * that touches guest memory is the `rep movsb` below; a #PF there is fixed up
 * (exception table) by resuming at the return path, so the function reports
 * the bytes it could not copy instead of crashing Oxen.
 *
 *   u32 oxen_copy_checked(void *dst, const void *src, u32 len)
 *   returns the number of bytes NOT copied (0 = complete).
 */
    .text
    .global oxen_copy_checked
oxen_copy_checked:
    pushl   %esi
    pushl   %edi
    movl    12(%esp), %edi
    movl    16(%esp), %esi
    movl    20(%esp), %ecx
    cld
1:  rep movsb
2:  movl    %ecx, %eax
    popl    %edi
    popl    %esi
    ret

    /* Exception table: pairs of (faulting EIP, fixup EIP). */
    .section .rodata
    .balign 4
    .global oxen_ex_table_start, oxen_ex_table_end
oxen_ex_table_start:
    .long 1b, 2b
oxen_ex_table_end:
