//! The map cache: temporary mappings of any machine frame into one of 512 slots
//! at `MAPCACHE_VIRT_START`, backed by one L1 that is part of Oxen's image.
//!
//! Slot bookkeeping (sharing a slot between users of the same frame, runs of
//! consecutive slots) is `hv_core::mapcache`; this file writes the PTEs.
//! A mapping is a guard: dropping it releases the slot, and the last release
//! clears the PTE and invalidates its TLB entry.

use core::sync::atomic::Ordering;

use hv_core::addr::{Maddr, Mfn, PAGE_SIZE};
use hv_core::bootinfo::{PhysRead, PhysReadError};
use hv_core::mapcache::{MapCacheSlots, Release, slot_va};
use spin::Mutex;

use super::layout::{MAPCACHE_SLOTS, MAPCACHE_VIRT_START};
use crate::arch::x86::cpu;
use crate::arch::x86::paging::{self, PAGE_PRESENT, PAGE_RW, PageTable};

static MAPCACHE_L1: PageTable = PageTable::new();
static SLOTS: Mutex<MapCacheSlots<MAPCACHE_SLOTS>> = Mutex::new(MapCacheSlots::new());

/// Installs the map cache's L1 in the idle L2. Bring-up only.
pub fn init() {
    paging::install_high_l1(
        paging::high_l2_slot(MAPCACHE_VIRT_START),
        paging::image_maddr(&MAPCACHE_L1),
    );
}

/// A temporary mapping of `count` consecutive machine frames.
pub struct Mapping {
    first_slot: usize,
    count: usize,
}

impl Mapping {
    /// The virtual address of the first mapped byte.
    pub fn va(&self) -> u32 {
        slot_va(MAPCACHE_VIRT_START, self.first_slot)
    }

    /// The mapping as a byte pointer.
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.va() as *mut u8
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let was = cpu::disable_interrupts();
        let mut slots = SLOTS.lock();
        let freed = if self.count == 1 {
            match slots.release(self.first_slot) {
                Ok(Release::Freed) => true,
                Ok(Release::StillMapped { .. }) => false,
                Err(e) => panic!("map cache: releasing slot {}: {e}", self.first_slot),
            }
        } else {
            match slots.release_run(self.first_slot, self.count) {
                Ok(()) => true,
                Err(e) => panic!("map cache: releasing run at slot {}: {e}", self.first_slot),
            }
        };
        if freed {
            for slot in self.first_slot..self.first_slot + self.count {
                MAPCACHE_L1.0[slot].store(0, Ordering::SeqCst);
                cpu::invlpg(slot_va(MAPCACHE_VIRT_START, slot));
            }
        }
        drop(slots);
        cpu::restore_interrupts(was);
    }
}

/// Maps `count` consecutive machine frames from `first` at consecutive addresses.
/// Panics if the map cache is exhausted (a leak of mappings is a bug in Oxen).
pub fn map_frames(first: Mfn, count: usize) -> Mapping {
    let was = cpu::disable_interrupts();
    let mut slots = SLOTS.lock();
    let acquired = if count == 1 {
        slots.acquire(first)
    } else {
        slots.acquire_run(first, count)
    };
    let first_slot = match acquired {
        Ok(s) => s,
        Err(e) => panic!("map cache: mapping {count} frame(s) at {first}: {e}"),
    };
    for i in 0..count {
        let slot = first_slot + i;
        let maddr = Mfn(first.0 + i as u64).maddr().0;
        let new = maddr | PAGE_PRESENT | PAGE_RW;
        let old = MAPCACHE_L1.0[slot].swap(new, Ordering::SeqCst);
        if old != new {
            cpu::invlpg(slot_va(MAPCACHE_VIRT_START, slot));
        }
    }
    drop(slots);
    cpu::restore_interrupts(was);
    Mapping { first_slot, count }
}

/// Maps one machine frame.
pub fn map_frame(mfn: Mfn) -> Mapping {
    map_frames(mfn, 1)
}

/// Whether the CPU's page walk accepts a PTE for machine address
/// `1 << bit` (a bit at or above the physical-address width is reserved and
/// the access faults). Boot only: it reads the frame there, which need not
/// be RAM, and discards the byte.
pub fn machine_address_bit_usable(bit: u32) -> bool {
    let m = map_frame(Mfn(1 << (bit - 12)));
    crate::arch::x86::uaccess::hypervisor_byte_readable(m.va())
}

/// Fills a machine frame with zeroes.
pub fn clear_frame(mfn: Mfn) {
    let m = map_frame(mfn);
    // SAFETY: the mapping covers exactly one writable page that no Rust object
    // lives in (the frame was just allocated or is owned by the caller).
    unsafe { fill_dwords(m.as_mut_ptr(), PAGE_SIZE as usize / 4, 0) };
}

/// Frames [`clear_frames`] maps at once.
const CLEAR_RUN: usize = 32;

/// Fills `count` consecutive machine frames from `first` with zeroes, mapping
/// up to `CLEAR_RUN` of them at a time.
pub fn clear_frames(first: Mfn, count: u64) {
    let mut done = 0;
    while done < count {
        let n = (count - done).min(CLEAR_RUN as u64) as usize;
        let m = map_frames(Mfn(first.0 + done), n);
        // SAFETY: the mapping covers `n` whole writable frames owned by the
        // caller, holding no Rust object.
        unsafe { fill_dwords(m.as_mut_ptr(), n * PAGE_SIZE as usize / 4, 0) };
        done += n as u64;
    }
}

/// Writes `count` copies of `value` from `dst` up, with one `rep stosl`.
///
/// # Safety
/// `dst` is 4-byte aligned, `count * 4` bytes from it are mapped writable and
/// hold no Rust object that the write would invalidate.
pub unsafe fn fill_dwords(dst: *mut u8, count: usize, value: u32) {
    // SAFETY: the caller's promise; `rep stosl` writes ecx dwords from edi
    // upwards (the direction flag is clear in Oxen).
    unsafe {
        core::arch::asm!(
            "rep stosl",
            inout("ecx") count => _,
            inout("edi") dst => _,
            in("eax") value,
            options(nostack, att_syntax)
        )
    };
}

/// Reads machine memory through the map cache.
pub struct MachineMemory;

impl PhysRead for MachineMemory {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<(), PhysReadError> {
        let mut done = 0usize;
        while done < buf.len() {
            let addr = paddr.checked_add(done as u64).ok_or(PhysReadError {
                paddr,
                len: buf.len(),
            })?;
            let offset = (addr % PAGE_SIZE) as usize;
            let chunk = (PAGE_SIZE as usize - offset).min(buf.len() - done);
            let m = map_frame(Maddr(addr).mfn());
            // SAFETY: the mapping covers the whole frame; `offset + chunk` stays
            // within it, and `buf` is a distinct Rust buffer.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    m.as_mut_ptr().add(offset),
                    buf[done..].as_mut_ptr(),
                    chunk,
                )
            };
            done += chunk;
        }
        Ok(())
    }
}
