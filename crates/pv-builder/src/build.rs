//! Building a PV domU: [`build()`] turns a [`BuildRequest`] into a filled guest
//! memory and a [`Built`] summary (XEN-PV-ABI.md §4, §15.7).
//!
//! Rules, checked in this order (the first failure is returned and nothing has been
//! written yet, except for memory failures, which stop the build where they occur):
//! 1. the P2M has exactly `nr_pages` MFNs;
//! 2. the kernel passes every check of §16 (`xen-loader`, the same rules as dom0)
//!    and requires no feature outside `offered_features`;
//! 3. the ramdisk is below 4 GiB; the domU layout of §4.3 fits the domain and
//!    stays below the hypervisor hole (`xen-loader`'s [`BootstrapLayout`]);
//! 4. the shared-info frame is below 4 GiB (`start_info.shared_info` is a 32-bit
//!    machine address, §4.1);
//! 5. the L3 frame is below 4 GiB unless the kernel declares extended-cr3 (§7.5).
//!
//! Then every page of the bootstrap region is written once, in address order: the
//! pages before the kernel and around it zeroed; the kernel's segments copied and
//! their bss and gaps zeroed; the ramdisk; the P2M (`mfns` as 32-bit words); the
//! start_info page; the xenstore and console pages zeroed; the page tables (whole
//! frames, see [`crate::pagetables`]); the boot stack and the padding up to
//! `v_end` zeroed. Frames beyond the region are not touched. The hypercall page
//! inside the image is left for the hypervisor (`XEN_DOMCTL_hypercall_init` on
//! [`Built::hypercall_page`]).
//!
//! start_info (§4.1), as libxc fills it for a domU: magic `"xen-3.0-x86_32p"`,
//! `nr_pages`, `shared_info` = the shared-info frame's machine address, `flags` 0,
//! `store_mfn`/`store_evtchn`, `console.domU.mfn`/`evtchn`, `pt_base`,
//! `nr_pt_frames`, `mfn_list`, `mod_start`/`mod_len` (the ramdisk's virtual address
//! and exact byte length, both 0 without one), `cmd_line`, `first_p2m_pfn` and
//! `nr_p2m_frames` 0. A command line of 1024 bytes or more is truncated to 1023
//! bytes and NUL-terminated, as libxc's `strncpy` + final NUL does; the build goes
//! on and [`Built::cmdline_truncated`] reports it so the toolstack can warn.

use alloc::vec::Vec;
use core::fmt;

use xen_abi::context::VcpuGuestContext;
use xen_abi::domid::DomId;
use xen_abi::mm::{MMUEXT_PIN_L3_TABLE, MmuextOp, foreigndom};
use xen_abi::start_info::StartInfo;
use xen_abi::types::{EvtchnPort, PAGE_SHIFT, PAGE_SIZE, XenPfn};
use xen_loader::{BootstrapLayout, Builder, Element, GuestImage, LayoutRequest};
use zerocopy::IntoBytes;

use crate::context::{EntryState, initial_vcpu_context};
use crate::error::BuildError;
use crate::memory::{GuestMemory, RegionWriter};
use crate::pagetables::{BootstrapTables, PtFrame, frame_list};

/// MFNs from this one up lie at or above 4 GiB of machine address.
const FIRST_MFN_ABOVE_4G: u32 = 1 << (32 - PAGE_SHIFT);
/// P2M entries per page (4-byte MFNs).
const MFNS_PER_PAGE: usize = PAGE_SIZE / 4;

/// What to build. Its `Debug` shows the sizes of the kernel, ramdisk and P2M,
/// not their bytes.
#[derive(Clone, Copy)]
pub struct BuildRequest<'a> {
    /// The new domain's id (the `foreigndom` of its page-table pin).
    pub domid: DomId,
    /// The kernel: an ELF32 image with Xen notes or a `__xen_guest` string.
    pub kernel: &'a [u8],
    /// The ramdisk, if any (an empty one is the same as none).
    pub ramdisk: Option<&'a [u8]>,
    /// The kernel command line.
    pub cmdline: &'a str,
    /// Pages of the domain (`start_info.nr_pages`).
    pub nr_pages: u32,
    /// The P2M: `mfns[pfn]` is the MFN of pfn, as `XENMEM_populate_physmap` returned.
    pub mfns: &'a [XenPfn],
    /// MFN of the domain's shared-info frame (`getdomaininfo.shared_info_frame`).
    pub shared_info_mfn: XenPfn,
    /// The domain's port for xenstore (allocated unbound for dom0).
    pub store_evtchn: EvtchnPort,
    /// The domain's port for its console.
    pub console_evtchn: EvtchnPort,
    /// The hypervisor's features (`XENVER_get_features` submap 0), checked against
    /// the features the kernel requires.
    pub offered_features: u32,
}

impl fmt::Debug for BuildRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildRequest")
            .field("domid", &self.domid)
            .field("kernel_len", &self.kernel.len())
            .field("ramdisk_len", &self.ramdisk.map(<[u8]>::len))
            .field("cmdline", &self.cmdline)
            .field("nr_pages", &self.nr_pages)
            .field("mfns_len", &self.mfns.len())
            .field("shared_info_mfn", &self.shared_info_mfn)
            .field("store_evtchn", &self.store_evtchn)
            .field("console_evtchn", &self.console_evtchn)
            .field("offered_features", &self.offered_features)
            .finish()
    }
}

/// A frame of the new domain, by both its numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Pseudo-physical frame number.
    pub pfn: u32,
    /// Machine frame number (`mfns[pfn]`).
    pub mfn: XenPfn,
}

/// A built domU, ready for the caller's last steps (§15.7): pin [`Built::l3`]
/// (`MMUEXT_PIN_L3_TABLE`, foreigndom = domid), `XEN_DOMCTL_hypercall_init` on
/// [`Built::hypercall_page`], `XEN_DOMCTL_setvcpucontext` with
/// [`Built::vcpu_context`], then introduce the domain to xenstore with
/// [`Built::xenstore`]'s MFN and unpause it.
#[derive(Clone, Debug)]
pub struct Built {
    /// The domain's id.
    pub domid: DomId,
    /// The bootstrap region as laid out.
    pub layout: BootstrapLayout,
    /// The kernel entry point (`EIP`).
    pub entry: u32,
    /// The start_info page.
    pub start_info: Frame,
    /// The xenstore ring page (`store_mfn`, xenstore `store/ring-ref`).
    pub xenstore: Frame,
    /// The console ring page (`console.domU.mfn`, xenstore `console/ring-ref`).
    pub console: Frame,
    /// The bootstrap L3: pin it as an L3 table and it is `ctrlreg[3]`.
    pub l3: Frame,
    /// Every bootstrap page-table frame: L1s, then L2s, then the L3.
    pub pt_frames: Vec<PtFrame>,
    /// Where the hypervisor must write the hypercall page, if the kernel asked.
    pub hypercall_page: Option<Frame>,
    /// Initial state of vcpu 0 (`XEN_DOMCTL_setvcpucontext`).
    pub vcpu_context: VcpuGuestContext,
    /// Whether the kernel runs with `VMASST_TYPE_pae_extended_cr3`.
    pub extended_cr3: bool,
    /// Whether the command line was cut to fit `start_info.cmd_line`.
    pub cmdline_truncated: bool,
}

impl Built {
    /// The `mmuext_op` that pins the bootstrap L3.
    pub fn pin_l3_op(&self) -> MmuextOp {
        MmuextOp::new(MMUEXT_PIN_L3_TABLE, self.l3.mfn, 0)
    }

    /// The `foreigndom` argument of that `mmuext_op`: the new domain owns the frame.
    pub fn pin_foreigndom(&self) -> u32 {
        foreigndom(self.domid, None)
    }
}

/// Builds the domain described by `req` into `mem`. See the module documentation.
pub fn build<M: GuestMemory + ?Sized>(
    req: &BuildRequest<'_>,
    mem: &mut M,
) -> Result<Built, BuildError<M::Error>> {
    if req.mfns.len() != req.nr_pages as usize {
        return Err(BuildError::P2mLengthMismatch {
            nr_pages: req.nr_pages,
            mfns: req.mfns.len(),
        });
    }
    let image = GuestImage::parse(req.kernel)?;
    image.check_required_features(req.offered_features)?;
    let ramdisk = req.ramdisk.unwrap_or(&[]);
    let ramdisk_len = u32::try_from(ramdisk.len())
        .map_err(|_| BuildError::RamdiskTooLarge { len: ramdisk.len() })?;
    let layout = BootstrapLayout::compute(&LayoutRequest::for_image(
        &image,
        Builder::DomU,
        req.nr_pages,
        ramdisk_len,
    ))?;
    if req.shared_info_mfn >= FIRST_MFN_ABOVE_4G {
        return Err(BuildError::SharedInfoAbove4G {
            mfn: req.shared_info_mfn,
        });
    }
    let frame = |pfn: u32| Frame {
        pfn,
        mfn: req.mfns[pfn as usize],
    };
    let l3 = frame(layout.l3_pfn());
    let extended_cr3 = image.extended_cr3();
    if !extended_cr3 && l3.mfn >= FIRST_MFN_ABOVE_4G {
        return Err(BuildError::L3Above4G {
            pfn: l3.pfn,
            mfn: l3.mfn,
        });
    }
    let element_frame = |e: Option<Element>| e.map(|e| frame(e.first_pfn(layout.virt_base)));
    let (Some(xenstore), Some(console)) = (
        element_frame(layout.xenstore),
        element_frame(layout.console),
    ) else {
        unreachable!("a domU layout has xenstore and console pages");
    };
    let start_info = frame(layout.start_info.first_pfn(layout.virt_base));

    let mut si = StartInfo::default();
    si.set_magic();
    si.nr_pages = req.nr_pages;
    si.shared_info = req.shared_info_mfn << PAGE_SHIFT;
    si.flags = 0;
    si.store_mfn = xenstore.mfn;
    si.store_evtchn = req.store_evtchn;
    si.console_mfn = console.mfn;
    si.console_evtchn = req.console_evtchn;
    si.pt_base = layout.pt_base();
    si.nr_pt_frames = layout.nr_pt_frames();
    si.mfn_list = layout.mfn_list();
    si.mod_start = layout.mod_start();
    si.mod_len = ramdisk_len;
    let cmdline_truncated = !si.set_cmd_line(req.cmdline.as_bytes());

    let mut region = RegionWriter::new(mem, layout.virt_base, req.nr_pages);
    // Before and around the kernel, then the kernel itself.
    region.zero_range(layout.virt_base, layout.kernel.va)?;
    region.zero_range(layout.kernel.va, image.virt_kstart())?;
    image.load(&mut region)?;
    region.zero_range(image.virt_kend(), layout.kernel.end())?;
    if let Some(initrd) = layout.initrd {
        region.fill(initrd, ramdisk)?;
    }
    write_p2m(&mut region, layout.p2m, req.mfns)?;
    region.fill(layout.start_info, si.as_bytes())?;
    for e in [layout.xenstore, layout.console].into_iter().flatten() {
        region.fill(e, &[])?;
    }
    let tables = BootstrapTables::new(&layout, req.mfns);
    for (pfn, page) in tables.pages() {
        mem_write_page(&mut region, &layout, pfn, &page)?;
    }
    region.fill(layout.stack, &[])?;
    region.zero_range(layout.stack.end(), layout.v_end)?;

    let vcpu_context = initial_vcpu_context(&EntryState {
        entry: image.entry(),
        stack_top: layout.stack_top(),
        start_info_va: layout.start_info_va(),
        l3_mfn: l3.mfn,
        extended_cr3,
    });
    let hypercall_page = image
        .hypercall_page()
        .and_then(|va| layout.pfn_of(va))
        .map(frame);
    Ok(Built {
        domid: req.domid,
        layout,
        entry: image.entry(),
        start_info,
        xenstore,
        console,
        l3,
        pt_frames: frame_list(&layout, req.mfns),
        hypercall_page,
        vcpu_context,
        extended_cr3,
        cmdline_truncated,
    })
}

/// Writes the P2M element: `mfns` as little-endian 32-bit words, one page at a
/// time, then zeros to the end of the element.
fn write_p2m<M: GuestMemory + ?Sized>(
    region: &mut RegionWriter<'_, M>,
    p2m: Element,
    mfns: &[XenPfn],
) -> Result<(), BuildError<M::Error>> {
    let mut page = [0u8; PAGE_SIZE];
    let mut va = p2m.va;
    for chunk in mfns.chunks(MFNS_PER_PAGE) {
        for (bytes, mfn) in page.chunks_exact_mut(4).zip(chunk) {
            bytes.copy_from_slice(&mfn.to_le_bytes());
        }
        region.write_bytes(va, &page[..chunk.len() * 4])?;
        va += PAGE_SIZE as u32;
    }
    let written = mfns.len() as u32 * 4;
    region.zero_range(p2m.va + written, p2m.end())
}

/// Writes one whole page-table frame at its place in the region.
fn mem_write_page<M: GuestMemory + ?Sized>(
    region: &mut RegionWriter<'_, M>,
    layout: &BootstrapLayout,
    pfn: u32,
    page: &[u8; PAGE_SIZE],
) -> Result<(), BuildError<M::Error>> {
    let va = layout.va_of(pfn).ok_or(BuildError::OutsideDomain {
        va: u64::from(layout.virt_base) + (u64::from(pfn) << PAGE_SHIFT),
    })?;
    region.write_bytes(va, page)
}
