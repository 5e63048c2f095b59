//! The fuzzing kernel: boot, learn its own memory, then `calls` hypercalls
//! drawn from the seed (calls.rs), a progress line every `progress` calls,
//! and power off (dom0) or shut down (domU) when done.
//!
//! What it owns and the rules that keep it alive for long runs (the policy
//! the generators follow, XEN-PV-ABI.md §4.3 for the layout):
//! - **Protected** (never a frame or address a call may write): the
//!   bootstrap region up to the end of the boot stack: the image (code, data,
//!   the arena, pvrt's stack), the P2M list, start_info and the bootstrap
//!   page tables, and the shared_info page (mapped at the first padding slot
//!   with events masked, so no upcall ever runs). Live page tables appear
//!   only as *values* (mappings, pins, copies from them) and through the L1
//!   entries of the fuzz window, the L2 slots beyond the bootstrap region and
//!   the hole's L2 slots, and L3 slots 0–2: entries the kernel never uses.
//! - **Fuzzed**: the fuzz window (padding slots 1..WINDOW), whose mappings
//!   may become anything except a writable mapping of a protected frame; the
//!   other padding frames and frames beyond the region (scratch data and
//!   page-table frames, which may be pinned, cleared, given away); the
//!   arena (a static buffer every structure argument is built in, bounded so
//!   that no count makes Oxen read or write past it); Oxen's frames, other
//!   domains' frames and frames beyond RAM; the hole, unmapped addresses and
//!   the read-only page-table mappings as pointers. A structure that holds
//!   a handle or an address Oxen writes or maps (memory_op's, the grant
//!   ops', vcpu_op's area registrations), or frames it writes, frees or
//!   retypes (mmu_update requests, mmuext_ops, extent lists, multicall
//!   lists), is built in the arena or sits where no access succeeds: read
//!   from bytes the kernel does not choose (its page tables, the window)
//!   it could name the kernel's own memory.
//!   A protected frame is never the target of a write by machine address
//!   either (`mmu_update`, `update_descriptor`, copies): Oxen, as Xen,
//!   stores into any frame of the caller's that can take a writable type.
//!   The set is taken from the P2M at boot (the M2P is the calls' to change).
//! - Calls that would end the kernel on purpose are not made: the `iret`
//!   hypercall, `SCHEDOP_block` and `shutdown`, `VCPUOP_down`/`send_nmi` on
//!   vcpu 0, debug-register enables, a vcpu_info on a frame it could own, a
//!   base pointer other than its own L3, a live table of another level, an
//!   image frame (mapped writable: it cannot validate) or a frame it cannot
//!   own, polls without a past timeout, `remote_shutdown` through memory
//!   that could read as {itself, poweroff}, and in dom0 mode
//!   `sysctl(debug_keys)` and APIC writes. `domctl` destroy and pause do
//!   reach 0 and DOMID_SELF: Oxen must refuse them.

mod calls;

use fuzz::{Mode, Options, Rng};
use pvrt::mm::{pfn_to_mfn, pfn_to_va, update_va_mapping};
use pvrt::{StartInfo, println};
use xen_abi::mm::UVMF_INVLPG;

pvrt::guest_main!(main);

pub(crate) const PAGE: u32 = 4096;
/// Padding slots 1..WINDOW are the fuzz window (slot 0 maps shared_info).
pub(crate) const WINDOW: u32 = 64;
/// Scratch frames taken from beyond the bootstrap region.
const DATA_FRAMES: usize = 96;
const PT_FRAMES: usize = 32;

/// The arena: every structure a call points at is built here.
pub(crate) const ARENA_SIZE: usize = 64 * 4096;
#[repr(C, align(4096))]
pub(crate) struct Arena(pub(crate) [u8; ARENA_SIZE]);
pub(crate) static mut ARENA: Arena = Arena([0; ARENA_SIZE]);

/// What the kernel learnt about its memory at boot (never changed after).
pub(crate) struct World {
    pub(crate) mode: Mode,
    /// Padding slot 0's VA (shared_info); the fuzz window follows.
    pub(crate) window: u32,
    /// The machine address of each window slot's L1 entry.
    pub(crate) window_l1e: [u64; WINDOW as usize],
    /// Frames the calls may do anything to: the padding (but slot 0's) and
    /// frames beyond the region.
    pub(crate) data: [u32; DATA_FRAMES + WINDOW as usize * 2],
    pub(crate) n_data: usize,
    pub(crate) pt: [u32; PT_FRAMES],
    pub(crate) n_pt: usize,
    /// The live page tables: L3, the L2s, the L1s of the bootstrap region.
    pub(crate) l3: u32,
    pub(crate) live_l2: [u32; 4],
    pub(crate) n_l2: usize,
    pub(crate) live_l1: [u32; 16],
    pub(crate) n_l1: usize,
    /// The L2 of slot 3 and the first L2 index beyond the bootstrap region.
    pub(crate) l2_top: u32,
    pub(crate) l2_free_index: u32,
    /// Image frames (protected; values only, read-only).
    pub(crate) image: [u32; 8],
    pub(crate) shared_info_mfn: u32,
    /// The bootstrap VA of the page tables (mapped read-only).
    pub(crate) pt_va: u32,
    pub(crate) nr_pt_frames: u32,
    /// A VA no table maps and the fuzz never maps (an L2 slot it leaves alone).
    pub(crate) unmapped: u32,
    /// The highest machine frame (XENMEM_maximum_ram_page).
    pub(crate) max_mfn: u32,
    /// The protected frames, sorted (the bootstrap region's through the
    /// boot stack, from the P2M at boot: the M2P is the calls' to change).
    pub(crate) protected: [u32; MAX_PROTECTED],
    pub(crate) n_protected: usize,
}

/// At most this many protected frames (the bootstrap region through the
/// boot stack: image, P2M list, start_info, page tables).
const MAX_PROTECTED: usize = 2048;

impl World {
    /// Whether `mfn` is one of the kernel's protected frames or shared_info.
    pub(crate) fn protected(&self, mfn: u32) -> bool {
        mfn == self.shared_info_mfn
            || self.protected[..self.n_protected]
                .binary_search(&mfn)
                .is_ok()
    }
}

fn main(si: &'static StartInfo) -> ! {
    let cmdline = core::str::from_utf8(si.cmd_line()).unwrap_or("");
    let o = match Options::parse(cmdline) {
        Ok(o) => o,
        Err(e) => {
            println!("fuzz: {e} on the command line '{cmdline}'");
            pvrt::hypercall::shutdown(xen_abi::sched::SHUTDOWN_CRASH);
            halt()
        }
    };
    let world = learn(si, o.mode);
    println!(
        "fuzz: mode {} seed {} calls {} (replay: cargo xtask fuzz --mode {} --seed {} --calls N)",
        mode_name(o.mode),
        o.seed,
        o.calls,
        mode_name(o.mode),
        o.seed
    );
    println!(
        "fuzz: {} pages, {} data and {} page-table scratch frames, window at {:#x}, max mfn {:#x}",
        si.nr_pages, world.n_data, world.n_pt, world.window, world.max_mfn
    );
    println!(
        "fuzz: L3 {:#x}, L2s {:x?}, L1s {:x?}, image {:#x}.., padding {:#x}.., scratch {:#x}..",
        world.l3,
        &world.live_l2[..world.n_l2],
        &world.live_l1[..world.n_l1],
        world.image[0],
        world.data[0],
        world.pt[0]
    );
    let mut g = calls::Gen::new(&world, Rng::new(o.seed));
    if o.mode == Mode::Dom0 {
        g.create_domain();
    }
    let mut sums = [0u32; 64];
    image_changed(&mut sums);
    let mut ok = 0u64;
    for i in 0..o.calls {
        if o.progress != 0 && i % o.progress == 0 && i != 0 {
            println!("fuzz: call {i} ({ok} succeeded)");
        }
        let call = g.next_call();
        let traced = o.trace_from.is_some_and(|t| i >= t);
        if traced {
            println!(
                "fuzz: #{i} hypercall {} ({:#x}, {:#x}, {:#x}, {:#x}, {:#x})",
                call.nr, call.args[0], call.args[1], call.args[2], call.args[3], call.args[4]
            );
            calls::dump_arena_args(&call);
        }
        if o.skipped(i) {
            continue;
        }
        // SAFETY: the generator only passes pointers into the arena, the fuzz
        // window, or addresses that are not the kernel's (see the module
        // docs); what Oxen writes there cannot reach the kernel's state.
        let ret = unsafe { hypercall(call.nr, call.args) };
        if ret >= 0 {
            ok += 1;
        }
        if traced {
            println!("fuzz: #{i} -> {ret}");
        }
        g.after(&call, ret);
        if o.verify
            && let Some(page) = image_changed(&mut sums)
        {
            println!(
                "fuzz: call #{i} (hypercall {} {:#x?}) changed the kernel's image at {page:#x}",
                call.nr, call.args
            );
            pvrt::hypercall::shutdown(xen_abi::sched::SHUTDOWN_CRASH);
        }
    }
    if o.mode == Mode::Dom0 {
        g.destroy_domains();
    }
    println!(
        "fuzz: done: {} calls, {ok} succeeded, seed {} mode {}",
        o.calls,
        o.seed,
        mode_name(o.mode)
    );
    pvrt::hypercall::shutdown(xen_abi::sched::SHUTDOWN_POWEROFF);
    halt()
}

/// A hypercall, any number (`pvrt::hypercall::raw` traps with `int $0x82`
/// for those the hypercall page has no stub for).
///
/// # Safety
/// As for `pvrt::hypercall::raw`: pointer arguments are the caller's word.
unsafe fn hypercall(nr: u32, a: [u32; 5]) -> i32 {
    // SAFETY: the caller vouches for the arguments.
    unsafe { pvrt::hypercall::raw(nr, a) }
}

fn halt() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// Checksums the image's pages below the arena (code, read-only data) into
/// `sums`; returns the first page whose sum changed since the last call.
fn image_changed(sums: &mut [u32; 64]) -> Option<u32> {
    let end = core::ptr::addr_of!(ARENA) as u32;
    let mut changed = None;
    for (i, sum) in sums.iter_mut().enumerate() {
        let page = pvrt::VIRT_BASE + i as u32 * PAGE;
        if page >= end {
            break;
        }
        let mut s = 0u32;
        for w in 0..(PAGE / 4) {
            // SAFETY: the image is mapped for the kernel's life.
            let v = unsafe { ((page + 4 * w) as *const u32).read_volatile() };
            s = s.rotate_left(5) ^ v;
        }
        if *sum != s && *sum != 0 && changed.is_none() {
            changed = Some(page);
        }
        *sum = s;
    }
    changed
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Dom0 => "dom0",
        Mode::DomU => "domu",
    }
}

const FRAME: u64 = 0x000F_FFFF_FFFF_F000;

fn read_u64(va: u32) -> u64 {
    // SAFETY: callers pass VAs of the bootstrap page tables (mapped
    // read-only for the kernel's life) or of shared_info.
    unsafe { (va as *const u64).read_volatile() }
}

/// Walks the live tables: the L1 entry's machine address for `va`, if an L1 maps it.
fn l1e_maddr(si: &StartInfo, va: u32) -> Option<u64> {
    let l3e = read_u64(si.pt_base + (va >> 30) * 8);
    if l3e & 1 == 0 {
        return None;
    }
    let l2 = va_of(((l3e & FRAME) >> 12) as u32)?;
    let l2e = read_u64(l2 + ((va >> 21) & 511) * 8);
    if l2e & 1 == 0 {
        return None;
    }
    Some((l2e & FRAME) + u64::from((va >> 12) & 511) * 8)
}

/// The machine frame the live tables map at `va`.
fn mapped_mfn(si: &StartInfo, va: u32) -> Option<u32> {
    let l1e_ma = l1e_maddr(si, va)?;
    let l1 = va_of((l1e_ma >> 12) as u32)?;
    let l1e = read_u64(l1 + (l1e_ma & 0xFFF) as u32);
    (l1e & 1 != 0).then_some(((l1e & FRAME) >> 12) as u32)
}

/// The bootstrap VA of one of the kernel's frames.
fn va_of(mfn: u32) -> Option<u32> {
    let pfn = pvrt::mm::mfn_to_pfn(mfn);
    (pfn < 0x10_0000).then(|| pfn_to_va(pfn))
}

fn learn(si: &'static StartInfo, mode: Mode) -> World {
    let stack_end = si.pt_base + si.nr_pt_frames * PAGE + PAGE;
    let region_end = (stack_end + 512 * 1024).next_multiple_of(4 << 20);
    let first_free_pfn = (region_end - pvrt::VIRT_BASE) / PAGE;
    let mfn = |pfn: u32| pfn_to_mfn(si, pfn).unwrap_or(0);
    // shared_info at slot 0, this vcpu's events masked for good.
    let shared_va = stack_end;
    let si_mfn = si.shared_info >> 12;
    if let Err(e) = update_va_mapping(shared_va, (u64::from(si_mfn) << 12) | 0x63, UVMF_INVLPG) {
        println!("fuzz: cannot map shared_info: {e}");
    } else {
        // SAFETY: shared_info is mapped writable at shared_va; byte 1 is
        // vcpu_info[0].evtchn_upcall_mask.
        unsafe { ((shared_va + 1) as *mut u8).write_volatile(1) };
    }
    let mut w = World {
        mode,
        window: shared_va,
        window_l1e: [0; WINDOW as usize],
        data: [0; DATA_FRAMES + WINDOW as usize * 2],
        n_data: 0,
        pt: [0; PT_FRAMES],
        n_pt: 0,
        l3: mapped_mfn(si, si.pt_base).unwrap_or(0),
        live_l2: [0; 4],
        n_l2: 0,
        live_l1: [0; 16],
        n_l1: 0,
        l2_top: 0,
        l2_free_index: ((region_end - 0xC000_0000) >> 21) + 1,
        image: [0; 8],
        shared_info_mfn: si_mfn,
        pt_va: si.pt_base,
        nr_pt_frames: si.nr_pt_frames,
        unmapped: 0,
        max_mfn: 0,
        protected: [0; MAX_PROTECTED],
        n_protected: 0,
    };
    let region_pfns = ((shared_va - pvrt::VIRT_BASE) / PAGE + 1) as usize;
    assert!(
        region_pfns <= MAX_PROTECTED,
        "a bootstrap region of {region_pfns} pages"
    );
    for pfn in 0..region_pfns {
        w.protected[pfn] = mfn(pfn as u32);
    }
    w.protected[..region_pfns].sort_unstable();
    w.n_protected = region_pfns;
    for slot in 0..WINDOW {
        w.window_l1e[slot as usize] = l1e_maddr(si, shared_va + slot * PAGE).unwrap_or(0);
    }
    // The padding frames (but slot 0's, whose mapping now is shared_info).
    for slot in 1..128 {
        let pfn = (shared_va + slot * PAGE - pvrt::VIRT_BASE) / PAGE;
        if pfn < si.nr_pages {
            w.data[w.n_data] = mapped_mfn(si, shared_va + slot * PAGE).unwrap_or(0);
            w.n_data += 1;
        }
    }
    let mut pfn = first_free_pfn;
    while pfn < si.nr_pages && w.n_pt < PT_FRAMES {
        w.pt[w.n_pt] = mfn(pfn);
        w.n_pt += 1;
        pfn += 1;
    }
    while pfn < si.nr_pages && w.n_data < w.data.len() {
        w.data[w.n_data] = mfn(pfn);
        w.n_data += 1;
        pfn += 1;
    }
    for i in 0..4 {
        let l3e = read_u64(si.pt_base + i * 8);
        if l3e & 1 != 0 {
            let l2 = ((l3e & FRAME) >> 12) as u32;
            w.live_l2[w.n_l2] = l2;
            w.n_l2 += 1;
            if i == 3 {
                w.l2_top = l2;
            }
        }
    }
    if let Some(l2va) = va_of(w.l2_top) {
        for idx in 0..(region_end - 0xC000_0000) >> 21 {
            let l2e = read_u64(l2va + idx * 8);
            if l2e & 1 != 0 && w.n_l1 < w.live_l1.len() {
                w.live_l1[w.n_l1] = ((l2e & FRAME) >> 12) as u32;
                w.n_l1 += 1;
            }
        }
    }
    for (i, f) in w.image.iter_mut().enumerate() {
        *f = mapped_mfn(si, pvrt::VIRT_BASE + i as u32 * 3 * PAGE).unwrap_or(0);
    }
    // An L2 slot of slot 3 that the fuzz leaves alone (it fuzzes the
    // first few beyond the region and the hole's).
    let unmapped = 0xC000_0000 + ((w.l2_free_index + 16) << 21) + 0x1234;
    if l1e_maddr(si, unmapped).is_none() {
        w.unmapped = unmapped;
    } else {
        println!("fuzz: {unmapped:#x} is mapped; using 0 as the unmapped address");
    }
    // SAFETY: no pointer.
    let max = unsafe {
        pvrt::hypercall::raw(
            xen_abi::hypercall::MEMORY_OP,
            [xen_abi::memory::XENMEM_MAXIMUM_RAM_PAGE, 0, 0, 0, 0],
        )
    };
    w.max_mfn = if max > 0 { max as u32 } else { 0x4_0000 };
    w
}
