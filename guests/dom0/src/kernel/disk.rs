//! dom0's hardware: the PCI scan and the virtio block and network devices
//! (DESIGN.md §8).
//!
//! - Configuration space through ports 0xCF8/0xCFC ([`PortCam`]), which
//!   dom0 may use once its virtual IOPL is 1 (Oxen emulates IN/OUT).
//! - Device MMIO (the virtio BAR) mapped with `update_va_mapping_otherdomain`
//!   on `DOMID_IO`, uncached, into pages of the bootstrap padding past the
//!   foreign-mapping slots ([`MMIO_PAGES`]).
//! - DMA by machine address: dom0 knows its P2M. A buffer the device reads
//!   or writes is given by its machine address when its pages are machine-
//!   contiguous, else through a bounce page ([`OxenHal::share`]).
//! - Interrupts: not yet (the driver polls the used ring; pirq event
//!   channels come with PHYSDEVOP_map_pirq).
//!
//! Invariants: every machine address given to the device is a frame of
//! dom0's own (P2M) or a bounce page of dom0's heap; MMIO VAs are handed out
//! once and never reused (devices are probed once at boot).

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};

use oxen_dom0::pci::PciFunction;
use pvrt::StartInfo;
use pvrt::xenbus::PTE_RW;
use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::transport::DeviceType;
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::pci::bus::{Command, ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};
use xen_abi::domid::DOMID_IO;
use xen_abi::mm::{PAGE_PCD, PAGE_PWT, UVMF_INVLPG, pte_from_mfn};

const PAGE: usize = 4096;

/// Pages of the bootstrap padding for device MMIO.
pub const MMIO_PAGES: u32 = 48;

/// The configuration address port and data port.
const CONFIG_ADDRESS: u16 = 0xCF8;
const CONFIG_DATA: u16 = 0xCFC;

/// PCI configuration mechanism #1 through I/O ports.
pub struct PortCam;

fn config_address(df: DeviceFunction, offset: u8) -> u32 {
    0x8000_0000
        | u32::from(df.bus) << 16
        | u32::from(df.device) << 11
        | u32::from(df.function) << 8
        | u32::from(offset & 0xFC)
}

impl ConfigurationAccess for PortCam {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        pvrt::io::outl(CONFIG_ADDRESS, config_address(df, offset));
        pvrt::io::inl(CONFIG_DATA)
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        pvrt::io::outl(CONFIG_ADDRESS, config_address(df, offset));
        pvrt::io::outl(CONFIG_DATA, data);
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortCam
    }
}

/// Where dom0's P2M and bootstrap mapping are (set once at boot).
static P2M_BASE: AtomicU32 = AtomicU32::new(0);
static NR_PAGES: AtomicU32 = AtomicU32::new(0);
/// The next free MMIO page and the end of the MMIO pages.
static MMIO_NEXT: AtomicU32 = AtomicU32::new(0);
static MMIO_END: AtomicU32 = AtomicU32::new(0);

/// The machine address behind dom0 virtual address `va` (in the bootstrap
/// mapping of pseudo-physical memory).
pub(super) fn machine_address(va: usize) -> u64 {
    let nr = NR_PAGES.load(Ordering::Relaxed) as usize;
    let pfn = va.wrapping_sub(pvrt::VIRT_BASE as usize) / PAGE;
    assert!(
        pfn < nr,
        "dom0: DMA buffer at {va:#x} is not in pseudo-physical memory"
    );
    let p2m = P2M_BASE.load(Ordering::Relaxed) as *const u32;
    // SAFETY: the builder maps the P2M list (nr_pages entries) at `mfn_list`
    // for the domain's life; `pfn` is below nr_pages.
    let mfn = unsafe { p2m.add(pfn).read() };
    (u64::from(mfn) << 12) | (va % PAGE) as u64
}

/// Whether `len` bytes at `va` are machine-contiguous.
fn machine_contiguous(va: usize, len: usize) -> bool {
    let first = va / PAGE;
    let last = (va + len - 1) / PAGE;
    let base = machine_address(first * PAGE);
    (first..=last).all(|p| machine_address(p * PAGE) == base + ((p - first) * PAGE) as u64)
}

/// A bounce buffer in use: the device's address, the caller's buffer.
struct Bounce {
    paddr: u64,
    page: NonNull<u8>,
    pages: usize,
}

/// The bounce buffers lent out. dom0 is one vcpu and the driver runs only
/// in the event loop (never from an event handler), so a plain cell is
/// enough; [`Bounces`] is its only user.
struct Bounces(core::cell::RefCell<Vec<Bounce>>);

// SAFETY: dom0 runs on one vcpu and only the event loop (never an upcall)
// reaches the HAL, so the cell is never touched concurrently.
unsafe impl Sync for Bounces {}

static BOUNCES: Bounces = Bounces(core::cell::RefCell::new(Vec::new()));

/// Allocates `pages` zeroed, page-aligned, machine-contiguous pages of the
/// heap; `None` if the heap's pages there are not machine-contiguous.
fn alloc_contiguous(pages: usize) -> Option<(u64, NonNull<u8>)> {
    let layout = Layout::from_size_align(pages * PAGE, PAGE).ok()?;
    // SAFETY: the layout has a non-zero size.
    let p = NonNull::new(unsafe { alloc_zeroed(layout) })?;
    let va = p.as_ptr() as usize;
    if machine_contiguous(va, pages * PAGE) {
        Some((machine_address(va), p))
    } else {
        // SAFETY: allocated just above with this layout.
        unsafe { dealloc(p.as_ptr(), layout) };
        None
    }
}

/// The HAL virtio-drivers runs on in dom0.
pub struct OxenHal;

// SAFETY: dma_alloc returns zeroed, page-aligned memory of the heap that no
// one else uses until dma_dealloc; mmio_phys_to_virt returns a fresh mapping
// of exactly the device's frames; share returns the machine address of the
// buffer or of a bounce page holding its bytes, and unshare copies a bounce
// page back before freeing it.
unsafe impl Hal for OxenHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        // One page is always contiguous; a few tries for longer runs.
        for _ in 0..8 {
            if let Some((paddr, p)) = alloc_contiguous(pages) {
                return (paddr, p);
            }
        }
        panic!("dom0: no {pages} machine-contiguous pages for DMA");
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        let layout = Layout::from_size_align(pages * PAGE, PAGE).expect("DMA layout");
        // SAFETY: the caller passes what dma_alloc returned, allocated with
        // this layout.
        unsafe { dealloc(vaddr.as_ptr(), layout) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let first = paddr / PAGE as u64;
        let last = (paddr + size as u64 - 1) / PAGE as u64;
        let count = (last - first + 1) as u32;
        let va = MMIO_NEXT.fetch_add(count * PAGE as u32, Ordering::Relaxed);
        assert!(
            va + count * PAGE as u32 <= MMIO_END.load(Ordering::Relaxed),
            "dom0: out of MMIO pages for {size:#x} bytes at {paddr:#x}"
        );
        for i in 0..count {
            let pte = pte_from_mfn(first + u64::from(i), PTE_RW | PAGE_PCD | PAGE_PWT);
            if let Err(e) = pvrt::mm::update_va_mapping_otherdomain(
                va + i * PAGE as u32,
                pte,
                UVMF_INVLPG,
                DOMID_IO,
            ) {
                panic!("dom0: cannot map device memory at {paddr:#x}: {e}");
            }
        }
        NonNull::new((va as usize + (paddr as usize % PAGE)) as *mut u8).expect("MMIO VA")
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let va = buffer.as_ptr().cast::<u8>() as usize;
        let len = buffer.len();
        if machine_contiguous(va, len) {
            return machine_address(va);
        }
        let pages = len.div_ceil(PAGE);
        let (paddr, page) = Self::dma_alloc(pages, direction);
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller's buffer is valid for `len` bytes (Hal
            // contract); the bounce page holds at least that many.
            unsafe { core::ptr::copy_nonoverlapping(va as *const u8, page.as_ptr(), len) };
        }
        BOUNCES.0.borrow_mut().push(Bounce { paddr, page, pages });
        paddr
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let mut bounces = BOUNCES.0.borrow_mut();
        let Some(i) = bounces.iter().position(|b| b.paddr == paddr) else {
            return; // shared in place
        };
        let b = bounces.swap_remove(i);
        drop(bounces);
        if direction != BufferDirection::DriverToDevice {
            // SAFETY: as in `share`, the other way.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    b.page.as_ptr(),
                    buffer.as_ptr().cast::<u8>(),
                    buffer.len(),
                )
            };
        }
        // SAFETY: the bounce pages came from dma_alloc with this count.
        unsafe { Self::dma_dealloc(b.paddr, b.page, b.pages) };
    }
}

/// What the scan found.
pub struct Hardware {
    pub functions: Vec<PciFunction>,
    /// The first virtio block device, with its slot.
    pub disk: Option<(PciFunction, VirtIOBlk<OxenHal, PciTransport>)>,
    /// The first virtio network device, with its slot and its PCI
    /// interrupt line (config offset 0x3C, as the firmware routed it).
    pub nic: Option<(PciFunction, NetRaw, u8)>,
}

/// The virtio NIC driver dom0 runs (16 descriptors a queue).
pub type NetRaw = virtio_drivers::device::net::VirtIONetRaw<OxenHal, PciTransport, 16>;

/// Raises the IOPL, scans bus 0 and starts the first virtio block device
/// and the first virtio network device.
/// `mmio_va` is the first of [`MMIO_PAGES`] pages whose L1 entries exist.
pub fn probe(si: &StartInfo, mmio_va: u32) -> Hardware {
    P2M_BASE.store(si.mfn_list, Ordering::Relaxed);
    NR_PAGES.store(si.nr_pages, Ordering::Relaxed);
    MMIO_NEXT.store(mmio_va, Ordering::Relaxed);
    MMIO_END.store(mmio_va + MMIO_PAGES * PAGE as u32, Ordering::Relaxed);
    let mut hw = Hardware {
        functions: Vec::new(),
        disk: None,
        nic: None,
    };
    if let Err(e) = pvrt::io::set_iopl(1) {
        pvrt::println!("dom0: no I/O privilege ({e}): no PCI devices");
        return hw;
    }
    let mut root = PciRoot::new(PortCam);
    let found: Vec<_> = root.enumerate_bus(0).collect();
    for (df, info) in found {
        let f = PciFunction {
            bus: df.bus,
            device: df.device,
            function: df.function,
            vendor_id: info.vendor_id,
            device_id: info.device_id,
            class: info.class,
            subclass: info.subclass,
            prog_if: info.prog_if,
            revision: info.revision,
        };
        hw.functions.push(f);
        let kind = virtio_drivers::transport::pci::virtio_device_type(&info);
        let wanted = match kind {
            Some(DeviceType::Block) => hw.disk.is_none(),
            Some(DeviceType::Network) => hw.nic.is_none(),
            _ => false,
        };
        if !wanted {
            continue;
        }
        root.set_command(
            df,
            Command::IO_SPACE | Command::MEMORY_SPACE | Command::BUS_MASTER,
        );
        let transport = match PciTransport::new::<OxenHal, _>(&mut root, df) {
            Ok(t) => t,
            Err(e) => {
                pvrt::println!("dom0: virtio at {}: {e}", f.slot());
                continue;
            }
        };
        if kind == Some(DeviceType::Block) {
            match VirtIOBlk::<OxenHal, _>::new(transport) {
                Ok(blk) => hw.disk = Some((f, blk)),
                Err(e) => pvrt::println!("dom0: virtio-blk at {}: {e}", f.slot()),
            }
        } else {
            match NetRaw::new(transport) {
                Ok(nic) => {
                    let line = PortCam.read_word(df, 0x3C) as u8;
                    hw.nic = Some((f, nic, line));
                }
                Err(e) => pvrt::println!("dom0: virtio-net at {}: {e}", f.slot()),
            }
        }
    }
    hw
}
