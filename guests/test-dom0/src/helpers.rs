//! What every family of checks shares: the PTE bits, the check counter that
//! prints one line per check, what the test knows about its own memory
//! (`Mem`: the bootstrap region, the scratch slots, the first free pfn), and
//! small hypercall and memory accessors.

use core::fmt;

use pvrt::mm::{mfn_to_pfn, pfn_to_mfn, pfn_to_va, update_va_mapping};
use pvrt::{StartInfo, println};
use xen_abi::domid::DOMID_SELF;
use xen_abi::errno::Errno;
use xen_abi::mm::{MMU_NORMAL_PT_UPDATE, MmuUpdate, UVMF_INVLPG};

pub(crate) const P: u64 = 1;
pub(crate) const RW: u64 = 2;
pub(crate) const US: u64 = 4;
pub(crate) const A: u64 = 0x20;
pub(crate) const D: u64 = 0x40;
pub(crate) const FRAME: u64 = 0x000F_FFFF_FFFF_F000;
pub(crate) const PAGE: u32 = 4096;
/// A frame of Oxen's own image (machine address 1 MiB): never dom0's.
pub(crate) const OXEN_IMAGE_MFN: u32 = 0x100;

pub(crate) struct Checks {
    pub(crate) passed: u32,
    pub(crate) failed: u32,
}

impl Checks {
    pub(crate) fn check(&mut self, name: &str, ok: bool, detail: fmt::Arguments<'_>) {
        if ok {
            self.passed += 1;
            println!("check {name}: ok");
        } else {
            self.failed += 1;
            println!("check {name}: FAILED ({detail})");
        }
    }

    pub(crate) fn ok<T: fmt::Debug>(&mut self, name: &str, r: Result<T, Errno>) {
        self.check(name, r.is_ok(), format_args!("{r:?}"));
    }

    pub(crate) fn err<T: fmt::Debug>(&mut self, name: &str, r: Result<T, Errno>, want: Errno) {
        self.check(
            name,
            matches!(r, Err(e) if e == want),
            format_args!("got {r:?}, want {want}"),
        );
    }
}

/// What the test knows about its own memory.
pub(crate) struct Mem<'a> {
    pub(crate) si: &'a StartInfo,
    /// First scratch VA (the padding after the boot stack).
    pub(crate) scratch: u32,
    /// First pfn not in the bootstrap region.
    pub(crate) first_free_pfn: u32,
}

impl Mem<'_> {
    pub(crate) fn mfn(&self, pfn: u32) -> u32 {
        pfn_to_mfn(self.si, pfn).expect("pfn in range")
    }

    pub(crate) fn scratch_va(&self, i: u32) -> u32 {
        assert!(i < 64, "scratch slots are the first 256 KiB of the padding");
        self.scratch + i * PAGE
    }

    /// The virtual address of a frame of the bootstrap region.
    pub(crate) fn va_of_mfn(&self, mfn: u32) -> u32 {
        pfn_to_va(mfn_to_pfn(mfn))
    }

    /// The machine address of the bootstrap L1 entry that maps `va`.
    pub(crate) fn l1e_maddr(&self, va: u32) -> u64 {
        let l3 = self.si.pt_base as *const u64;
        // SAFETY: pt_base and the L2s are mapped read-only in the bootstrap region.
        let l3e = unsafe { l3.add((va >> 30) as usize).read_volatile() };
        let l2 = self.va_of_mfn(((l3e & FRAME) >> 12) as u32) as *const u64;
        // SAFETY: as above.
        let l2e = unsafe { l2.add(((va >> 21) & 511) as usize).read_volatile() };
        (l2e & FRAME) + u64::from((va >> 12) & 511) * 8
    }

    /// Reads the current bootstrap L1 entry for `va`.
    pub(crate) fn l1e(&self, va: u32) -> u64 {
        let maddr = self.l1e_maddr(va);
        let l1 = self.va_of_mfn((maddr >> 12) as u32) as *const u64;
        // SAFETY: bootstrap L1s are mapped read-only in the region.
        unsafe { l1.add(((maddr & 0xFFF) / 8) as usize).read_volatile() }
    }

    pub(crate) fn map(&self, va: u32, mfn: u32, rw: bool) -> Result<u32, Errno> {
        let pte = (u64::from(mfn) << 12) | P | A | if rw { RW | D } else { 0 };
        update_va_mapping(va, pte, UVMF_INVLPG)
    }

    pub(crate) fn unmap(&self, va: u32) -> Result<u32, Errno> {
        update_va_mapping(va, 0, UVMF_INVLPG)
    }
}

pub(crate) fn pte(mfn: u32, flags: u64) -> u64 {
    (u64::from(mfn) << 12) | flags
}

pub(crate) fn normal(maddr: u64, val: u64) -> MmuUpdate {
    MmuUpdate::new(MMU_NORMAL_PT_UPDATE, maddr, val)
}

pub(crate) fn self_dom() -> u32 {
    u32::from(DOMID_SELF)
}

pub(crate) fn read_u32(va: u32) -> u32 {
    // SAFETY: callers pass a VA they just mapped.
    unsafe { (va as *const u32).read_volatile() }
}

pub(crate) fn write_u32(va: u32, v: u32) {
    // SAFETY: callers pass a VA they just mapped writable.
    unsafe { (va as *mut u32).write_volatile(v) }
}

pub(crate) fn hcall(nr: u32, args: [u32; 5]) -> Result<u32, Errno> {
    // SAFETY: callers pass pointers valid for what the call reads or writes.
    pvrt::hypercall::result(unsafe { pvrt::hypercall::raw(nr, args) })
}

/// `vcpu_op(VCPUOP_register_runstate_memory_area)` for vcpu 0: Oxen writes
/// the vcpu's `vcpu_runstate_info` at `addr` (0: none) now and each time the
/// vcpu comes on the CPU, so `addr` must stay valid while registered.
pub(crate) fn register_runstate_area(addr: u32) -> Result<u32, Errno> {
    let reg = [addr, 0];
    hcall(
        xen_abi::hypercall::VCPU_OP,
        [
            xen_abi::vcpu::VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA,
            0,
            reg.as_ptr() as u32,
            0,
            0,
        ],
    )
}
