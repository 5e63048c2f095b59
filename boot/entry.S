/*
 * 32-bit entry from a multiboot1 or multiboot2 loader.
 *
 * In:  EAX = loader magic (0x2BADB002 or 0x36D76289), EBX = physical address of
 *      the boot information; protected mode, paging off, interrupts off, the
 *      loader's GDT (which we must not rely on for long).
 * Does: zeroes .bss, builds the idle page tables' boot mappings (PAE: the low
 *      12 MiB both identity-mapped and at DIRECT_MAP_VIRT, with 2 MiB pages),
 *      turns on PAE paging, jumps high, switches to the boot stack and calls
 *      `oxen_start(magic, info)` in Rust, which drops the identity map.
 * The page tables themselves are Rust statics (src/arch/x86/paging.rs):
 * IDLE_PG_L3 (4 entries) and IDLE_PG_L2_LOW / IDLE_PG_L2_HIGH.
 */
    .set DIRECT_MAP_VIRT,   0xFF000000
    .set DIRECT_MAP_MB,     12
    .set PDE_PRESENT_RW_PS, 0x83          /* present, writable, 2 MiB page */
    .set L3E_PRESENT,       0x01          /* PAE PDPTEs allow only P/PWT/PCD */
    .set HIGH_L2_FIRST,     (DIRECT_MAP_VIRT - 0xC0000000) >> 21    /* 504 */
    .set CR4_PAE,           1 << 5
    .set CR0_PG_WP,         (1 << 31) | (1 << 16)

    .section .boot.text, "ax"
    .code32
    .global oxen_entry32
oxen_entry32:
    cli
    cld
    mov     %eax, %ebp                    /* magic: kept in callee-saved regs */
    mov     %ebx, %esi                    /* info */

    /* Zero .bss (by physical address; it is NOBITS in the image). */
    mov     $(__bss_start - DIRECT_MAP_VIRT), %edi
    mov     $(__bss_end - DIRECT_MAP_VIRT), %ecx
    sub     %edi, %ecx
    shr     $2, %ecx
    xor     %eax, %eax
    rep stosl

    /* 2 MiB mappings of [0, 12 MiB) in the low L2 (identity) and high L2. */
    mov     $(IDLE_PG_L2_LOW - DIRECT_MAP_VIRT), %edi
    mov     $(IDLE_PG_L2_HIGH - DIRECT_MAP_VIRT + HIGH_L2_FIRST * 8), %ebx
    mov     $PDE_PRESENT_RW_PS, %eax
    mov     $(DIRECT_MAP_MB / 2), %ecx
1:  mov     %eax, (%edi)
    movl    $0, 4(%edi)
    mov     %eax, (%ebx)
    movl    $0, 4(%ebx)
    add     $8, %edi
    add     $8, %ebx
    add     $0x200000, %eax
    loop    1b

    /* L3: slot 0 -> low L2 (temporary identity map), slot 3 -> high L2. */
    mov     $(IDLE_PG_L3 - DIRECT_MAP_VIRT), %edi
    mov     $(IDLE_PG_L2_LOW - DIRECT_MAP_VIRT + L3E_PRESENT), %eax
    mov     %eax, 0(%edi)
    mov     $(IDLE_PG_L2_HIGH - DIRECT_MAP_VIRT + L3E_PRESENT), %eax
    mov     %eax, 24(%edi)

    mov     %cr4, %eax
    or      $CR4_PAE, %eax
    mov     %eax, %cr4
    mov     %edi, %cr3
    mov     %cr0, %eax
    or      $CR0_PG_WP, %eax
    mov     %eax, %cr0

    /* Now paging is on; still running from the identity map. Go high. */
    mov     $oxen_entry_high, %eax
    jmp     *%eax

    .text
oxen_entry_high:
    mov     $oxen_boot_stack_top, %esp
    xor     %eax, %eax
    push    %eax                          /* a zero return address ends backtraces */
    push    %esi                          /* info (physical) */
    push    %ebp                          /* magic */
    push    %eax
    xor     %ebp, %ebp
    jmp     oxen_start

    .section .bss.boot_stack, "aw", @nobits
    .balign 4096
    .global oxen_boot_stack_bottom
oxen_boot_stack_bottom:
    .space  128 * 1024
    .global oxen_boot_stack_top
oxen_boot_stack_top:
