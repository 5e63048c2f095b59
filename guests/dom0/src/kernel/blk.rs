//! dom0's block back end bound to Oxen: the platform of
//! `oxen_dom0::vbd` ([`BlkHost`]) and the event-loop glue ([`Backend`]).
//!
//! - `phy:/dev/vda` is the whole virtio disk ([`PhyDisk`], polled I/O).
//! - A ring grant is mapped with `GNTTABOP_map_grant_ref` at one of
//!   [`RING_PAGES`] pages of the bootstrap padding past the MMIO pages
//!   ([`RingPage`], on pvrt's `SharedPage`: volatile accesses, the CPU's
//!   fences).
//! - Data moves with one batched `GNTTABOP_copy` per request between the
//!   front end's grants and a bounce buffer of dom0's own page-aligned heap
//!   pages, named by machine frame ([`Copier`]).
//!
//! Invariants: a ring page's VA is used by one mapping at a time and is
//! cleared before it is mapped; a bounce buffer belongs to one connection.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt::Write;

use blkback::xenbus::{TargetKind, VbdTarget};
use blkback::{BOUNCE_BYTES, BlockDevice, CopyDir, CopyError, CopyOp, GrantCopy, IoError};
use oxen_dom0::hv::Hypervisor;
use oxen_dom0::toolstack::{Backends, Toolstack};
use oxen_dom0::vbd::{VbdHost, Vbds};
use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::transport::pci::PciTransport;
use xen_abi::domid::{DOMID_SELF, DomId};
use xen_abi::evtchn::{EVTCHNOP_BIND_INTERDOMAIN, EvtchnBindInterdomain};
use xen_abi::grant::{
    GNTCOPY_DEST_GREF, GNTCOPY_SOURCE_GREF, GNTST_OKAY, GNTTABOP_COPY, GnttabCopy, GnttabCopyPtr,
};
use xen_abi::mm::UVMF_INVLPG;
use xen_abi::types::{EvtchnPort, GrantHandle, GrantRef, PAGE_SIZE};
use xen_ring::SharedMemory;
use xenstored::Xenstored;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::disk::{OxenHal, machine_address};

/// Padding pages for ring mappings: at most this many vbds connected.
pub const RING_PAGES: u32 = 8;

/// dom0's virtio disk, shared by the vbds that name it.
pub type Device = Rc<RefCell<VirtIOBlk<OxenHal, PciTransport>>>;

/// `phy:/dev/vda`.
pub struct PhyDisk {
    dev: Device,
    sectors: u64,
}

impl BlockDevice for PhyDisk {
    fn sectors(&self) -> u64 {
        self.sectors
    }
    fn supports_flush(&self) -> bool {
        true
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.dev
            .borrow_mut()
            .read_blocks(sector as usize, buf)
            .map_err(|_| IoError::Io)
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), IoError> {
        self.dev
            .borrow_mut()
            .write_blocks(sector as usize, data)
            .map_err(|_| IoError::Io)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        self.dev.borrow_mut().flush().map_err(|_| IoError::Io)
    }
}

/// A front end's ring page mapped at one of the ring VAs.
pub struct RingPage {
    page: pvrt::shared::SharedPage,
    handle: GrantHandle,
    slot: usize,
}

impl SharedMemory for RingPage {
    fn len(&self) -> usize {
        self.page.len()
    }
    fn read(&self, offset: usize, out: &mut [u8]) {
        self.page.read(offset, out)
    }
    fn write(&self, offset: usize, data: &[u8]) {
        self.page.write(offset, data)
    }
    fn read_u32(&self, offset: usize) -> u32 {
        self.page.read_u32(offset)
    }
    fn write_u32(&self, offset: usize, v: u32) {
        self.page.write_u32(offset, v)
    }
}

/// A page of the bounce buffer.
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, align(4096))]
struct Page([u8; PAGE_SIZE]);

/// Grant copies against one front end.
pub struct Copier {
    domid: DomId,
    pages: Vec<Page>,
    mfns: Vec<u32>,
    ops: Vec<GnttabCopy>,
}

impl Copier {
    fn new(domid: DomId) -> Self {
        let n = BOUNCE_BYTES / PAGE_SIZE;
        let pages = alloc::vec![Page([0; PAGE_SIZE]); n];
        let mfns = pages
            .iter()
            .map(|p| (machine_address(p as *const Page as usize) >> 12) as u32)
            .collect();
        Copier {
            domid,
            pages,
            mfns,
            ops: Vec::new(),
        }
    }
}

impl GrantCopy for Copier {
    fn buffer(&mut self) -> &mut [u8] {
        self.pages.as_mut_slice().as_mut_bytes()
    }

    fn copy(&mut self, ops: &[CopyOp]) -> Result<(), CopyError> {
        self.ops.clear();
        for o in ops {
            let local = GnttabCopyPtr {
                u: self.mfns[o.local_offset as usize / PAGE_SIZE],
                domid: DOMID_SELF,
                offset: (o.local_offset as usize % PAGE_SIZE) as u16,
            };
            let remote = GnttabCopyPtr {
                u: o.gref,
                domid: self.domid,
                offset: o.gref_offset,
            };
            let (source, dest, flags) = match o.dir {
                CopyDir::ToFrontend => (local, remote, GNTCOPY_DEST_GREF),
                CopyDir::FromFrontend => (remote, local, GNTCOPY_SOURCE_GREF),
            };
            self.ops.push(GnttabCopy {
                source,
                dest,
                len: o.len,
                flags,
                status: 0,
                _pad: 0,
            });
        }
        if self.ops.is_empty() {
            return Ok(());
        }
        if pvrt::gnttab::op(GNTTABOP_COPY, &mut self.ops).is_err() {
            return Err(CopyError {
                index: 0,
                status: xen_abi::grant::GNTST_GENERAL_ERROR,
            });
        }
        match self.ops.iter().position(|c| c.status != GNTST_OKAY) {
            None => Ok(()),
            Some(index) => Err(CopyError {
                index,
                status: self.ops[index].status,
            }),
        }
    }
}

/// The platform `oxen_dom0::vbd` runs on.
pub struct BlkHost {
    disk: Option<Device>,
    ring_va: u32,
    ring_used: [bool; RING_PAGES as usize],
    on_port: pvrt::events::Handler,
}

impl VbdHost for BlkHost {
    type Ring = RingPage;
    type Grants = Copier;
    type Disk = PhyDisk;

    fn open(&mut self, target: &VbdTarget<'_>) -> Result<PhyDisk, String> {
        if target.kind != TargetKind::Phy {
            return Err("file: images are not served yet".into());
        }
        if target.path != "/dev/vda" {
            return Err("no such device".into());
        }
        let dev = self.disk.clone().ok_or("dom0 has no disk")?;
        if !target.readonly && dev.borrow().readonly() {
            return Err("the device is read-only".into());
        }
        let sectors = dev.borrow().capacity();
        Ok(PhyDisk { dev, sectors })
    }

    fn map_ring(&mut self, domid: DomId, gref: GrantRef) -> Result<RingPage, String> {
        let slot = self
            .ring_used
            .iter()
            .position(|u| !u)
            .ok_or("no free ring page")?;
        let va = self.ring_va + slot as u32 * PAGE_SIZE as u32;
        pvrt::mm::update_va_mapping(va, 0, UVMF_INVLPG).map_err(|e| format!("{e}"))?;
        let handle = pvrt::gnttab::map_grant(va, domid, gref, false).map_err(|e| format!("{e}"))?;
        self.ring_used[slot] = true;
        // SAFETY: the grant is mapped at `va` until unmap_ring, which takes
        // this RingPage; the slot is used by nothing else meanwhile.
        let page = unsafe { pvrt::shared::SharedPage::new(va as usize) };
        Ok(RingPage { page, handle, slot })
    }

    fn unmap_ring(&mut self, ring: RingPage) {
        if let Err(e) = pvrt::gnttab::unmap_grant(ring.page.va() as u32, ring.handle) {
            pvrt::println!("blkback: unmapping a ring: {e}");
            // The VA stays taken: it still maps the grant.
            return;
        }
        self.ring_used[ring.slot] = false;
    }

    fn grants(&mut self, domid: DomId) -> Copier {
        Copier::new(domid)
    }

    fn bind(&mut self, domid: DomId, port: EvtchnPort) -> Result<EvtchnPort, String> {
        let mut b = EvtchnBindInterdomain {
            remote_dom: domid,
            _pad: 0,
            remote_port: port,
            local_port: 0,
        };
        pvrt::events::op(EVTCHNOP_BIND_INTERDOMAIN, &mut b).map_err(|e| format!("{e}"))?;
        pvrt::events::on(b.local_port, self.on_port);
        Ok(b.local_port)
    }

    fn notify(&mut self, port: EvtchnPort) {
        let _ = pvrt::events::send(port);
    }

    fn close(&mut self, port: EvtchnPort) {
        let _ = pvrt::events::close(port);
    }

    fn kick(&mut self, port: EvtchnPort) {
        (self.on_port)(port);
    }
}

/// The back end as the event loop sees it.
pub struct Backend {
    host: BlkHost,
    vbds: Vbds<BlkHost>,
}

/// The back end shared by the event loop and the toolstack (which releases
/// a domain's vbds before destroying it). dom0 is one vcpu and neither
/// holds a borrow while calling the other.
#[derive(Clone)]
pub struct Shared(pub Rc<RefCell<Backend>>);

impl Backends for Shared {
    fn release_domain(&mut self, xs: &mut Xenstored, domid: DomId) {
        let b = &mut *self.0.borrow_mut();
        b.vbds.release_domain(&mut b.host, xs, domid);
    }
}

impl Backend {
    /// `ring_va`: the first of [`RING_PAGES`] padding pages.
    pub fn new(disk: Option<Device>, ring_va: u32, on_port: pvrt::events::Handler) -> Self {
        Backend {
            host: BlkHost {
                disk,
                ring_va,
                ring_used: [false; RING_PAGES as usize],
                on_port,
            },
            vbds: Vbds::new(),
        }
    }

    /// Re-reads xenstore after a change and takes the vbds' steps; serves
    /// the store rings of the domains that got watch events.
    pub fn poll(&mut self, ts: &mut Toolstack<'_>, hv: &mut dyn Hypervisor, out: &mut dyn Write) {
        // A step's write can enable the next (the front end answers on its
        // ring, served in flush_store): a few rounds settle it.
        for _ in 0..4 {
            if !self.vbds.poll(&mut self.host, &mut ts.xs, out) {
                break;
            }
            ts.flush_store(hv, out);
        }
    }

    /// A ring's event: one batch. `None` if `port` is no vbd's; else
    /// whether more is waiting.
    pub fn on_event(
        &mut self,
        ts: &mut Toolstack<'_>,
        hv: &mut dyn Hypervisor,
        port: EvtchnPort,
        out: &mut dyn Write,
    ) -> Option<bool> {
        if !self.vbds.owns(port) {
            return None;
        }
        let more = self.vbds.on_event(&mut self.host, &mut ts.xs, port, out);
        // A broken ring closed its vbd: tell the front end.
        ts.flush_store(hv, out);
        more
    }
}
