//! dom0's heap: a fixed region of the kernel image's .bss (mapped by the
//! domain builder with the rest of the image) managed by
//! `linked_list_allocator`. It holds the initrd's tree, parsed configs and the
//! shell's buffers; the initrd's file data stays in the boot module.

use linked_list_allocator::LockedHeap;

/// Heap size.
pub const HEAP_SIZE: usize = 4 << 20;

#[repr(C, align(4096))]
struct Region([u8; HEAP_SIZE]);

static mut REGION: Region = Region([0; HEAP_SIZE]);

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Hands the region to the allocator. Called once, first thing at boot.
pub fn init() {
    let bottom = core::ptr::addr_of_mut!(REGION).cast::<u8>();
    // SAFETY: REGION is used by nothing else (no reference to it is ever
    // made), lives for the whole run, and `init` runs once before any
    // allocation.
    unsafe { HEAP.lock().init(bottom, HEAP_SIZE) };
}
