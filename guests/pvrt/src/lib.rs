//! pvrt: the runtime every Oxen PV guest kernel is written against.
//!
//! It owns the guest's entry point (`_start`, entered in ring 1 with ESI =
//! start_info and ESP = the top of the bootstrap stack, XEN-PV-ABI.md §4.2),
//! the Xen ELF notes the domain builder reads (§16), the hypercall page and the
//! wrappers that call through it (§1.2), console output over `console_io`, and
//! the panic handler (which reports and shuts the domain down as crashed).
//!
//! `_start` moves to a 64 KiB stack of pvrt's own (the builder's boot stack is
//! one page) before calling the guest.
//!
//! A guest crate names its main function with `pvrt::guest_main!(path)`; the
//! function gets the start_info page and never returns.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod console;
pub mod events;
pub mod gnttab;
pub mod hypercall;
pub mod io;
pub mod mm;
pub mod shared;
pub mod time;
pub mod traps;
pub mod xenbus;
pub mod xencons;

use xen_abi::elfnote::{
    XEN_ELFNOTE_ENTRY, XEN_ELFNOTE_FEATURES, XEN_ELFNOTE_GUEST_OS, XEN_ELFNOTE_GUEST_VERSION,
    XEN_ELFNOTE_HYPERCALL_PAGE, XEN_ELFNOTE_LOADER, XEN_ELFNOTE_PADDR_OFFSET, XEN_ELFNOTE_PAE_MODE,
    XEN_ELFNOTE_VIRT_BASE, XEN_ELFNOTE_XEN_VERSION,
};
pub use xen_abi::start_info::StartInfo;

/// Where pvrt guests are linked (guest.ld).
pub const VIRT_BASE: u32 = 0xC000_0000;

core::arch::global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    cld
    /* The builder's boot stack is one page: move to pvrt's own. */
    movl    $pvrt_stack_top, %esp
    xorl    %ebp, %ebp
    pushl   %esi
    call    pvrt_main
1:  hlt
    jmp     1b

    /* The page the domain builder fills with hypercall stubs. */
    .section .hypercall_page, "ax"
    .balign 4096
    .fill   4096, 1, 0xCC

    .section .bss.pvrt_stack, "aw", @nobits
    .balign 16
    .space  64 * 1024
pvrt_stack_top:

    .text
    /* i32 pvrt_hypercall(u32 nr, u32 a1, u32 a2, u32 a3, u32 a4, u32 a5) */
    .global pvrt_hypercall
pvrt_hypercall:
    pushl   %ebx
    pushl   %esi
    pushl   %edi
    movl    16(%esp), %eax
    movl    20(%esp), %ebx
    movl    24(%esp), %ecx
    movl    28(%esp), %edx
    movl    32(%esp), %esi
    movl    36(%esp), %edi
    /* The page has stubs for 0..127; a number beyond traps as they do. */
    cmpl    $128, %eax
    jae     1f
    shll    $5, %eax
    addl    $hypercall_page, %eax
    call    *%eax
    jmp     2f
1:  int     $0x82
2:  popl    %edi
    popl    %esi
    popl    %ebx
    ret

    .macro XEN_NOTE_STR type, str
    .balign 4
    .long   4, 2f - 1f, \type
    .asciz  "Xen"
    .balign 4
1:  .asciz  "\str"
2:  .balign 4
    .endm

    .macro XEN_NOTE_WORD type, val
    .balign 4
    .long   4, 4, \type
    .asciz  "Xen"
    .balign 4
    .long   \val
    .endm

    .section .note.Xen, "a"
    XEN_NOTE_STR  {guest_os}, "Oxen-pvrt"
    XEN_NOTE_STR  {guest_version}, "0.1"
    XEN_NOTE_STR  {xen_version}, "xen-3.0"
    XEN_NOTE_WORD {virt_base}, {base}
    XEN_NOTE_WORD {paddr_offset}, 0
    XEN_NOTE_WORD {entry}, _start
    XEN_NOTE_WORD {hypercall_page}, hypercall_page
    XEN_NOTE_STR  {loader}, "generic"
    XEN_NOTE_STR  {pae_mode}, "yes"
    XEN_NOTE_STR  {features}, "writable_page_tables|pae_pgdir_above_4gb"
    .text
    "#,
    guest_os = const XEN_ELFNOTE_GUEST_OS,
    guest_version = const XEN_ELFNOTE_GUEST_VERSION,
    xen_version = const XEN_ELFNOTE_XEN_VERSION,
    virt_base = const XEN_ELFNOTE_VIRT_BASE,
    base = const VIRT_BASE,
    paddr_offset = const XEN_ELFNOTE_PADDR_OFFSET,
    entry = const XEN_ELFNOTE_ENTRY,
    hypercall_page = const XEN_ELFNOTE_HYPERCALL_PAGE,
    loader = const XEN_ELFNOTE_LOADER,
    pae_mode = const XEN_ELFNOTE_PAE_MODE,
    features = const XEN_ELFNOTE_FEATURES,
    options(att_syntax)
);

/// Declares the guest's main function: `fn(&'static StartInfo) -> !`.
#[macro_export]
macro_rules! guest_main {
    ($main:path) => {
        #[unsafe(no_mangle)]
        extern "C" fn pvrt_main(start_info: *const $crate::StartInfo) -> ! {
            // SAFETY: the domain builder passes the virtual address of the
            // start_info page, mapped for the guest's whole life.
            let si: &'static $crate::StartInfo = unsafe { &*start_info };
            $main(si)
        }
    };
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("guest panic: {info}");
    hypercall::shutdown(xen_abi::sched::SHUTDOWN_CRASH);
    loop {
        core::hint::spin_loop();
    }
}
