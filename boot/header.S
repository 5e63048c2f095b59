/*
 * Multiboot headers. Oxen carries both:
 *  - multiboot2 (GRUB's `multiboot2` + `module2`), within the first 32 KiB, 8-aligned;
 *  - multiboot1 (QEMU's `-kernel` + `-initrd`), within the first 8 KiB, 4-aligned.
 * Both ask for page-aligned modules and the memory map. The loader enters
 * `oxen_entry32` (boot/entry.S) in 32-bit protected mode with paging off.
 */
    .section .multiboot_header, "a"

    .set MB2_MAGIC,         0xE85250D6
    .set MB2_ARCH_I386,     0
    .set MB1_MAGIC,         0x1BADB002
    .set MB1_PAGE_ALIGN,    1 << 0
    .set MB1_MEMORY_INFO,   1 << 1
    .set MB1_FLAGS,         MB1_PAGE_ALIGN | MB1_MEMORY_INFO

    .balign 8
mb2_header_start:
    .long MB2_MAGIC
    .long MB2_ARCH_I386
    .long mb2_header_end - mb2_header_start
    .long 0x100000000 - (MB2_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header_start))

    /* Information request: command line (1), modules (3), memory map (6). */
    .balign 8
mb2_info_request:
    .short 1, 0
    .long mb2_info_request_end - mb2_info_request
    .long 1, 3, 6
mb2_info_request_end:

    /* Module alignment: modules are loaded page-aligned. */
    .balign 8
    .short 6, 0
    .long 8

    /* End tag. */
    .balign 8
    .short 0, 0
    .long 8
mb2_header_end:

    .balign 4
mb1_header:
    .long MB1_MAGIC
    .long MB1_FLAGS
    .long 0x100000000 - (MB1_MAGIC + MB1_FLAGS)
