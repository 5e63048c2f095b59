//! Building dom0 from the first multiboot module (its kernel, whose string is
//! its command line) and the second (its initrd), as Xen's dom0 builder does
//! (XEN-PV-ABI.md §4): parse and check the kernel, lay out the bootstrap region
//! (`xen_loader`), allocate and scrub `dom0_mem` of frames, load the image,
//! write the hypercall page, the initrd, the P2M list, start_info and the
//! bootstrap page tables (page-table frames mapped read-only), record the M2P,
//! give dom0 its shared_info page, then validate and pin the L3 through the PV
//! MMU engine and make it vcpu0's base pointer.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use hv_core::addr::{Mfn, PAGE_SIZE};
use hv_core::bootinfo::Module;

use pv_mm::{Caller, PtLevel};
use xen_abi::hypercall::hypercall_page;
use xen_abi::start_info::{SIF_INITDOMAIN, SIF_PRIVILEGED, StartInfo};
use xen_abi::traps::VMASST_TYPE_PAE_EXTENDED_CR3;
use xen_abi::version::{
    XENFEAT_MMU_PT_UPDATE_PRESERVE_AD, XENFEAT_PAE_PGDIR_ABOVE_4GB, XENFEAT_WRITABLE_PAGE_TABLES,
};
use xen_loader::{
    BootstrapLayout, Builder, GuestImage, LayoutError, LayoutRequest, LoadError, LoadTarget,
};
use zerocopy::{FromZeros, IntoBytes};

use super::{Domain, Vcpu};
use crate::arch::x86::guest;
use crate::arch::x86::paging::{PAGE_PRESENT, high_l2_slot};
use crate::arch::x86::traps::TrapFrame;
use crate::mm::frame_table::{MM, alloc_domain_frame, alloc_extra_frame_below};
use crate::mm::layout::{MODULE_VIRT_END, MODULE_VIRT_START};
use crate::mm::{hvmap, m2p, mapcache};

/// The features Oxen offers a PV kernel (checked against its required ones).
pub const OFFERED_FEATURES: u32 = (1 << XENFEAT_WRITABLE_PAGE_TABLES)
    | (1 << XENFEAT_PAE_PGDIR_ABOVE_4GB)
    | (1 << XENFEAT_MMU_PT_UPDATE_PRESERVE_AD);

/// First machine frame at 4 GiB.
const BELOW_4G: u64 = 1 << 20;

/// Why dom0 could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// The kernel module is larger than the window Oxen reads it through.
    KernelTooLarge(u64),
    /// The kernel image was refused.
    Image(LoadError),
    /// The bootstrap region does not fit.
    Layout(LayoutError),
    /// Not enough free memory for dom0.
    OutOfMemory { wanted: u64 },
    /// The PV MMU refused the bootstrap page tables (a builder bug).
    PageTables(xen_abi::errno::Errno),
    /// The L3 landed above 4 GiB, where CR3 cannot reach it.
    L3Above4G(Mfn),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KernelTooLarge(n) => write!(
                f,
                "kernel module of {n} bytes is larger than the 8 MiB Oxen reads"
            ),
            Self::Image(e) => write!(f, "kernel refused: {e}"),
            Self::Layout(e) => write!(f, "bootstrap region: {e}"),
            Self::OutOfMemory { wanted } => {
                write!(f, "out of memory allocating {wanted} pages for dom0")
            }
            Self::PageTables(e) => write!(f, "bootstrap page tables refused by the PV MMU: {e}"),
            Self::L3Above4G(m) => write!(
                f,
                "bootstrap L3 at {m} is above 4 GiB and the kernel lacks extended-cr3"
            ),
        }
    }
}

/// dom0, ready to run.
pub struct Dom0 {
    pub domain: Domain,
    pub frame: TrapFrame,
    /// Summary for the boot report.
    pub summary: String,
}

/// Maps module `m` read-only into the module window and returns its bytes.
fn map_module(m: &Module) -> Result<&'static [u8], BuildError> {
    let len = m.end - m.start;
    if len > u64::from(MODULE_VIRT_END - MODULE_VIRT_START) {
        return Err(BuildError::KernelTooLarge(len));
    }
    let first = Mfn(m.start / PAGE_SIZE);
    let pages = (m.start % PAGE_SIZE + len).div_ceil(PAGE_SIZE);
    for i in 0..pages {
        hvmap::map_page(
            MODULE_VIRT_START + (i * PAGE_SIZE) as u32,
            Mfn(first.0 + i),
            PAGE_PRESENT,
        );
    }
    let va = MODULE_VIRT_START as usize + (m.start % PAGE_SIZE) as usize;
    // SAFETY: the window maps the module's frames read-only for Oxen's life and
    // nothing writes them (they are reserved from the allocator).
    Ok(unsafe { core::slice::from_raw_parts(va as *const u8, len as usize) })
}

/// Writes into dom0's memory by virtual address in the bootstrap region.
struct Dom0Memory<'a> {
    virt_base: u32,
    p2m: &'a [Mfn],
}

impl Dom0Memory<'_> {
    fn each_page(&self, va: u32, len: usize, mut f: impl FnMut(*mut u8, usize, usize)) {
        let mut done = 0usize;
        while done < len {
            let at = va + done as u32;
            let pfn = ((at - self.virt_base) / PAGE_SIZE as u32) as usize;
            let off = (at % PAGE_SIZE as u32) as usize;
            let n = (PAGE_SIZE as usize - off).min(len - done);
            let m = mapcache::map_frame(self.p2m[pfn]);
            // SAFETY: `off + n` stays within the mapped frame.
            f(unsafe { m.as_mut_ptr().add(off) }, done, n);
            done += n;
        }
    }
}

impl LoadTarget for Dom0Memory<'_> {
    type Error = core::convert::Infallible;

    fn write(&mut self, va: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        // SAFETY: each destination chunk lies in one mapped dom0 frame and
        // `bytes[done..done + n]` is in bounds.
        self.each_page(va, bytes.len(), |dst, done, n| unsafe {
            core::ptr::copy_nonoverlapping(bytes.as_ptr().add(done), dst, n)
        });
        Ok(())
    }

    fn zero(&mut self, va: u32, len: u32) -> Result<(), Self::Error> {
        // SAFETY: as for `write`.
        self.each_page(va, len as usize, |dst, _, n| unsafe {
            core::ptr::write_bytes(dst, 0, n)
        });
        Ok(())
    }
}

/// Copies machine memory `[start, end)` (a boot module) into dom0 at `va`.
fn copy_module(mem: &mut Dom0Memory<'_>, m: &Module, va: u32) {
    let mut at = m.start;
    while at < m.end {
        let off = (at % PAGE_SIZE) as usize;
        let n = (PAGE_SIZE as usize - off).min((m.end - at) as usize);
        let src = mapcache::map_frame(Mfn(at / PAGE_SIZE));
        // SAFETY: `off + n` stays within the mapped frame.
        let bytes = unsafe { core::slice::from_raw_parts(src.as_mut_ptr().add(off), n) };
        let Ok(()) = mem.write(va + (at - m.start) as u32, bytes);
        at += n as u64;
    }
}

/// The dom0 command line: the module string without a leading image path.
fn dom0_cmdline(m: &Module) -> &str {
    let s = m.string.as_str().trim_start();
    match s.split_once(char::is_whitespace) {
        Some((first, rest)) if first.contains('/') && !first.contains('=') => rest.trim_start(),
        None if s.contains('/') && !s.contains('=') => "",
        _ => s,
    }
}

/// Builds dom0 with `nr_pages` of memory.
pub fn build(kernel: &Module, initrd: Option<&Module>, nr_pages: u64) -> Result<Dom0, BuildError> {
    let image_bytes = map_module(kernel)?;
    let img = GuestImage::parse(image_bytes).map_err(BuildError::Image)?;
    img.check_required_features(OFFERED_FEATURES)
        .map_err(BuildError::Image)?;
    let initrd_len = initrd.map_or(0, |m| (m.end - m.start) as u32);
    let layout = BootstrapLayout::compute(&LayoutRequest::for_image(
        &img,
        Builder::Dom0,
        nr_pages as u32,
        initrd_len,
    ))
    .map_err(BuildError::Layout)?;

    // As Xen: dom0 may grow while there is free memory.
    MM.lock()
        .as_ref()
        .expect("frame table initialised")
        .set_max_pages(0, u32::MAX)
        .expect("dom0 has an account");
    // Memory: every frame dom0 will own (counted in its tot_pages), with its
    // M2P entry, then scrubbed (runs of consecutive frames at a time).
    let mut p2m: Vec<Mfn> = Vec::with_capacity(nr_pages as usize);
    for pfn in 0..nr_pages {
        let mfn = alloc_domain_frame(0).ok_or(BuildError::OutOfMemory { wanted: nr_pages })?;
        m2p::set(mfn, pfn as u32);
        p2m.push(mfn);
    }
    for run in p2m.chunk_by(|a, b| b.0 == a.0 + 1) {
        mapcache::clear_frames(run[0], run.len() as u64);
    }
    crate::time::milestone("dom0 memory allocated and scrubbed");
    let mut mem = Dom0Memory {
        virt_base: layout.virt_base,
        p2m: &p2m,
    };

    // The image, then the hypercall page inside it.
    let Ok(()) = img.load(&mut mem);
    if let Some(va) = img.hypercall_page() {
        let Ok(()) = mem.write(va, &hypercall_page());
    }
    if let Some(m) = initrd {
        copy_module(&mut mem, m, layout.mod_start());
    }

    // The P2M list.
    let list: Vec<u32> = p2m.iter().map(|m| m.0 as u32).collect();
    let Ok(()) = mem.write(layout.mfn_list(), list.as_bytes());

    // shared_info: a page Oxen and dom0 share (its machine address must fit
    // start_info's 32-bit field); every vcpu starts with events masked. Like
    // Xen's shared Xen pages it holds a permanent `writable` type reference,
    // so the guest can map it but never turn it into a page table; like
    // Xen's, it is not counted in dom0's tot_pages.
    let shared_info = alloc_extra_frame_below(0, Some(Mfn(BELOW_4G)))
        .ok_or(BuildError::OutOfMemory { wanted: 1 })?;
    let shared_va = super::shared::share(shared_info, 0).map_err(BuildError::PageTables)?;

    // start_info.
    let cmdline = dom0_cmdline(kernel);
    let mut si = StartInfo::new_zeroed();
    si.set_magic();
    si.nr_pages = nr_pages as u32;
    si.shared_info = (shared_info.maddr().0) as u32;
    si.flags = SIF_PRIVILEGED | SIF_INITDOMAIN;
    si.pt_base = layout.pt_base();
    si.nr_pt_frames = layout.nr_pt_frames();
    si.mfn_list = layout.mfn_list();
    si.mod_start = if initrd.is_some() {
        layout.mod_start()
    } else {
        0
    };
    si.mod_len = initrd_len;
    si.set_cmd_line(cmdline.as_bytes());
    let Ok(()) = mem.write(layout.start_info_va(), si.as_bytes());

    crate::time::milestone("dom0 image, initrd, P2M and start_info written");
    // The bootstrap page tables.
    // The entries come table by table: keep the current table mapped.
    let mut mapped: Option<(Mfn, mapcache::Mapping)> = None;
    layout.for_each_bootstrap_pte(|p| {
        let table = p2m[p.table_pfn as usize];
        let val = (p2m[p.target_pfn as usize].maddr().0) | p.flags;
        if mapped.as_ref().is_none_or(|(mfn, _)| *mfn != table) {
            mapped = Some((table, mapcache::map_frame(table)));
        }
        let m = &mapped.as_ref().expect("just mapped").1;
        assert!(p.index < 512);
        // SAFETY: `index` < 512 within the mapped table frame; nothing else
        // uses the frame yet (it is validated below).
        unsafe {
            (m.as_mut_ptr() as *mut u64)
                .add(p.index as usize)
                .write_volatile(val)
        };
    });
    drop(mapped);

    // Validate, pin, and make it vcpu0's base pointer.
    // An L3 above 4 GiB needs a kernel that declared extended-cr3 support
    // (CR3 itself holds Oxen's low copy of the L3, `mm::low_l3`).
    let l3 = p2m[layout.l3_pfn() as usize];
    let extended_cr3 = img.extended_cr3();
    if l3.0 >= BELOW_4G && !extended_cr3 {
        return Err(BuildError::L3Above4G(l3));
    }
    let caller = Caller {
        domid: 0,
        privileged: true,
        iomem_access: true,
    };
    {
        let mut guard = MM.lock();
        let mm = guard.as_mut().expect("frame table initialised");
        mm.pin(l3, PtLevel::L3, &caller, 0)
            .map_err(BuildError::PageTables)?;
        mm.new_baseptr(l3, None, &caller, extended_cr3)
            .map_err(BuildError::PageTables)?;
    }
    assert!(high_l2_slot(MODULE_VIRT_START) >= xen_abi::layout::FIRST_XEN_L2_SLOT);

    let summary = alloc::format!(
        "dom0: {} '{}' entry {:#x}, {} pages, bootstrap {:#x}-{:#x}, {} page-table frames, L3 {}, cmdline '{}'",
        img.guest_os(),
        img.guest_version(),
        img.entry(),
        nr_pages,
        layout.virt_base,
        layout.v_end,
        layout.nr_pt_frames(),
        l3,
        cmdline
    );
    let domain = Domain {
        privileged: true,
        iomem_access: true,
        pirqs: hv_core::pirq::DomainPirqs::new(true),
        vm_assist: if extended_cr3 {
            1 << VMASST_TYPE_PAE_EXTENDED_CR3
        } else {
            0
        },
        vcpu: {
            let mut v = Vcpu::new(l3);
            v.online = true;
            v
        },
        ..Domain::new(0, String::from("Domain-0"), shared_info, shared_va)
    };
    let frame = guest::initial_frame(img.entry(), layout.stack_top(), layout.start_info_va());
    Ok(Dom0 {
        domain,
        frame,
        summary,
    })
}
