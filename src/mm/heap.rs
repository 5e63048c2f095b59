//! Oxen's heap: `linked_list_allocator` over the heap window, backed by frames
//! from the frame allocator at bring-up.

use linked_list_allocator::LockedHeap;

use super::layout::{HEAP_VIRT_END, HEAP_VIRT_START};

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Backs `bytes` of the heap window and hands it to the allocator.
pub fn init(bytes: u32) -> u32 {
    let bytes = bytes.min(HEAP_VIRT_END - HEAP_VIRT_START) & !0xFFF;
    super::hvmap::populate(HEAP_VIRT_START, bytes / 4096);
    // SAFETY: the range was just mapped to fresh frames used by nothing else
    // (their old contents do not matter to the allocator), and the heap is
    // initialised only once (bring-up).
    unsafe { HEAP.lock().init(HEAP_VIRT_START as *mut u8, bytes as usize) };
    bytes
}

/// (used, free) bytes.
pub fn usage() -> (usize, usize) {
    let h = HEAP.lock();
    (h.used(), h.free())
}
