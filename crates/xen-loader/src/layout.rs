//! The bootstrap virtual region of a new PV domain (XEN-PV-ABI.md §4.3), computed
//! without touching memory.
//!
//! Owns where each element of the region goes, how many bootstrap page-table frames
//! there are and what they contain. Rules, all from §4.3 unless noted:
//! - The region starts at `virt_base` and maps pfn `p` at `virt_base + p * 4096`, one
//!   to one, for every pfn below `nr_bootstrap_pages()`.
//! - Elements follow each other, each starting on the page after the previous one
//!   ends. Dom0 (Xen's builder): kernel, initrd, P2M, start_info, page tables, stack.
//!   DomU (libxc's builder): kernel, ramdisk, P2M, start_info, xenstore page, console
//!   page, page tables, stack. An initrd of length 0 takes no space.
//! - The kernel element is `[virt_kstart, virt_kend)` widened to whole pages; the
//!   pages between `virt_base` and it are mapped but belong to no element.
//! - The P2M holds 4 bytes per page of the domain (`nr_pages`, §4.1 `mfn_list`);
//!   start_info (+ dom0's 36-byte VGA info after its 1112 bytes, §4.1) takes one page;
//!   the stack one page, `ESP` = its end (§4.2).
//! - Page tables: page 0 is the L3 (`pt_base`), then the L2s, then the L1s. Dom0 has
//!   all four L2s, for L3 slots 0–3 in order (the fourth holds Oxen's slots).
//!   DomU has one L2 per 1 GiB slot the region touches, plus one for slot 3 if it
//!   does not touch it; in slot order either way. Then one L1 per 2 MiB of the
//!   region, in address order. The L1s must map the page tables themselves, so their
//!   number is the least fixed point of "L1s needed for a region that contains these
//!   L1s" (Xen's and libxc's loops compute the same).
//! - The region ends on a 4 MiB boundary with at least 512 KiB of mapped padding
//!   after the stack: round the stack end up to 4 MiB, and if that leaves less than
//!   512 KiB, add 4 MiB.
//! - The region must stay below the hypervisor hole (`0xF5800000`, §3.2) and fit in
//!   the domain: `nr_bootstrap_pages() <= nr_pages`.
//! - Bootstrap PTEs: L3 = P; L2 = P|RW|A|D|US; L1 = P|RW|A, without RW for the
//!   page-table frames ([`BootstrapLayout::for_each_bootstrap_pte`]).
//!
//! Xen's dom0 builder counts L1s as `ceil((v_end − v_start) / 2 MiB)`, which
//! assumes a 2 MiB-aligned `virt_base`; here the L1s are counted per 2 MiB slot
//! actually touched, which is the same for aligned bases and correct for others.

use core::fmt;

use xen_abi::layout::HYPERVISOR_VIRT_START;

use crate::image::GuestImage;

const PAGE_SHIFT: u32 = 12;
const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// Bytes mapped by one PAE L1 table.
const L1_SPAN_SHIFT: u32 = 21;
/// Bytes mapped by one PAE L2 table (one L3 slot).
const L2_SPAN_SHIFT: u32 = 30;
/// Entries per PAE table.
const PT_ENTRIES: u32 = 512;
/// The region ends on this boundary.
const REGION_ALIGN: u64 = 4 << 20;
/// Minimum mapped padding after the last element.
const MIN_PADDING: u64 = 512 << 10;
/// Bytes per P2M entry (`unsigned long` on i386).
const P2M_ENTRY_SIZE: u64 = 4;

/// `_PAGE_PRESENT`.
pub const PTE_PRESENT: u64 = 1 << 0;
/// `_PAGE_RW`.
pub const PTE_RW: u64 = 1 << 1;
/// `_PAGE_USER`.
pub const PTE_USER: u64 = 1 << 2;
/// `_PAGE_ACCESSED`.
pub const PTE_ACCESSED: u64 = 1 << 5;
/// `_PAGE_DIRTY`.
pub const PTE_DIRTY: u64 = 1 << 6;
/// Flags of a bootstrap L1 entry (RW removed for page-table frames).
pub const BOOTSTRAP_L1_FLAGS: u64 = PTE_PRESENT | PTE_RW | PTE_ACCESSED;
/// Flags of a bootstrap L2 entry.
pub const BOOTSTRAP_L2_FLAGS: u64 = PTE_PRESENT | PTE_RW | PTE_ACCESSED | PTE_DIRTY | PTE_USER;
/// Flags of a bootstrap L3 entry.
pub const BOOTSTRAP_L3_FLAGS: u64 = PTE_PRESENT;

/// Which builder's element order to follow (§4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builder {
    /// Xen's dom0 builder: no xenstore/console pages, always four L2s.
    Dom0,
    /// libxc's domU builder: xenstore and console pages, L2s only where needed (+ slot 3).
    DomU,
}

/// What the layout is computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayoutRequest {
    /// Element order.
    pub builder: Builder,
    /// Start of the region (page aligned).
    pub virt_base: u32,
    /// First byte of the loaded kernel.
    pub virt_kstart: u32,
    /// One past the last byte of the loaded kernel.
    pub virt_kend: u32,
    /// Pages of the domain (`start_info.nr_pages`).
    pub nr_pages: u32,
    /// Initrd / ramdisk length in bytes; 0 = none.
    pub initrd_len: u32,
}

impl LayoutRequest {
    /// The request for a validated kernel.
    pub fn for_image(
        image: &GuestImage<'_>,
        builder: Builder,
        nr_pages: u32,
        initrd_len: u32,
    ) -> Self {
        LayoutRequest {
            builder,
            virt_base: image.virt_base(),
            virt_kstart: image.virt_kstart(),
            virt_kend: image.virt_kend(),
            nr_pages,
            initrd_len,
        }
    }
}

/// Why a bootstrap region cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// `virt_base` is not page aligned.
    VirtBaseNotPageAligned { virt_base: u32 },
    /// The kernel does not lie at or above `virt_base`, or ends before it starts.
    KernelOutsideRegion { virt_kstart: u32, virt_kend: u32 },
    /// The region would reach the hypervisor hole at `0xF5800000`.
    ReachesHypervisorHole { v_end: u64 },
    /// The region needs more pages than the domain has.
    DomainTooSmall { needed_pages: u64, nr_pages: u32 },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LayoutError::VirtBaseNotPageAligned { virt_base } => {
                write!(
                    f,
                    "bootstrap region base {virt_base:#x} is not page aligned"
                )
            }
            LayoutError::KernelOutsideRegion {
                virt_kstart,
                virt_kend,
            } => write!(
                f,
                "kernel [{virt_kstart:#x}, {virt_kend:#x}) does not lie in the bootstrap region"
            ),
            LayoutError::ReachesHypervisorHole { v_end } => write!(
                f,
                "bootstrap region would end at {v_end:#x}, past the hypervisor hole at 0xf5800000"
            ),
            LayoutError::DomainTooSmall {
                needed_pages,
                nr_pages,
            } => write!(
                f,
                "bootstrap region needs {needed_pages} pages ({} KiB) but the domain has {nr_pages} \
                 ({} KiB)",
                needed_pages * 4,
                u64::from(nr_pages) * 4
            ),
        }
    }
}

/// A page-aligned run of whole pages inside the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Element {
    /// Virtual address of its first page.
    pub va: u32,
    /// Its length in pages.
    pub pages: u32,
}

impl Element {
    /// One past its last byte.
    pub fn end(&self) -> u32 {
        self.va + self.pages * PAGE_SIZE as u32
    }

    /// Whether `va` lies in it.
    pub fn contains(&self, va: u32) -> bool {
        va >= self.va && va < self.end()
    }

    /// Its first pfn in a region starting at `virt_base`.
    pub fn first_pfn(&self, virt_base: u32) -> u32 {
        (self.va - virt_base) >> PAGE_SHIFT
    }
}

/// One entry of the bootstrap page tables (see [`BootstrapLayout::for_each_bootstrap_pte`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootstrapPte {
    /// Table level: 3, 2 or 1.
    pub level: u8,
    /// The pfn of the page-table frame the entry goes into.
    pub table_pfn: u32,
    /// Index of the entry in that table.
    pub index: u32,
    /// The pfn the entry points to (a table for levels 3 and 2, a page for level 1).
    pub target_pfn: u32,
    /// Flags of the entry; the entry is `(mfn_of(target_pfn) << 12) | flags`.
    pub flags: u64,
}

/// The computed bootstrap region. All addresses are guest virtual.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootstrapLayout {
    /// Element order used.
    pub builder: Builder,
    /// Start of the region; pfn 0 is mapped here.
    pub virt_base: u32,
    /// The kernel image, widened to whole pages.
    pub kernel: Element,
    /// The initrd (`mod_start` = its `va`), if its length is not 0.
    pub initrd: Option<Element>,
    /// Initrd length in bytes (`mod_len`).
    pub initrd_len: u32,
    /// The P2M array (`mfn_list` = its `va`).
    pub p2m: Element,
    /// The start_info page (`ESI` at entry).
    pub start_info: Element,
    /// The xenstore ring page (domU only; `store_mfn` is its mfn).
    pub xenstore: Option<Element>,
    /// The console ring page (domU only; `console.domU.mfn` is its mfn).
    pub console: Option<Element>,
    /// All bootstrap page-table frames (`pt_base` = its `va`, `nr_pt_frames` = pages).
    pub page_tables: Element,
    /// Bit `s` set = there is an L2 frame for L3 slot `s`.
    pub l2_slots: u8,
    /// Number of L1 frames.
    pub nr_l1_frames: u32,
    /// The boot stack page.
    pub stack: Element,
    /// End of the region (4 MiB aligned).
    pub v_end: u32,
    /// Pages of the domain.
    pub nr_pages: u32,
}

impl BootstrapLayout {
    /// Lays out the region for `req`. See the module documentation for the rules.
    pub fn compute(req: &LayoutRequest) -> Result<Self, LayoutError> {
        let virt_base = u64::from(req.virt_base);
        if virt_base % PAGE_SIZE != 0 {
            return Err(LayoutError::VirtBaseNotPageAligned {
                virt_base: req.virt_base,
            });
        }
        if req.virt_kstart < req.virt_base || req.virt_kend < req.virt_kstart {
            return Err(LayoutError::KernelOutsideRegion {
                virt_kstart: req.virt_kstart,
                virt_kend: req.virt_kend,
            });
        }
        let hole = u64::from(HYPERVISOR_VIRT_START);
        let nr_pages = u64::from(req.nr_pages);

        let kernel_start = round_down(u64::from(req.virt_kstart));
        let kernel_end = round_up(u64::from(req.virt_kend));
        let mut cursor = kernel_end;
        let mut take = |bytes: u64| {
            let start = cursor;
            cursor = round_up(cursor + bytes);
            (start, cursor)
        };
        let initrd = take(u64::from(req.initrd_len));
        let p2m = take(nr_pages * P2M_ENTRY_SIZE);
        let start_info = take(PAGE_SIZE);
        let (xenstore, console) = match req.builder {
            Builder::Dom0 => (None, None),
            Builder::DomU => (Some(take(PAGE_SIZE)), Some(take(PAGE_SIZE))),
        };
        let pt_start = cursor;
        if pt_start > hole {
            return Err(LayoutError::ReachesHypervisorHole { v_end: pt_start });
        }

        // Least fixed point of "the tables needed to map a region that holds these
        // tables": start below it and iterate; the need only grows with the region,
        // so this stops at the smallest count that suffices (Xen's loop, §4.3).
        let mut nr_pt = match req.builder {
            Builder::Dom0 => 1 + 4 + 1,
            Builder::DomU => 1 + 1 + 1,
        };
        let (l2_slots, nr_l1, v_end) = loop {
            let stack_end = pt_start + (nr_pt + 1) * PAGE_SIZE;
            let v_end = region_end(stack_end);
            if v_end > hole {
                return Err(LayoutError::ReachesHypervisorHole { v_end });
            }
            let l2_slots = match req.builder {
                Builder::Dom0 => 0b1111,
                Builder::DomU => domu_l2_slots(virt_base, v_end),
            };
            let nr_l1 = span_count(virt_base, v_end, L1_SPAN_SHIFT);
            let needed = 1 + u64::from(l2_slots.count_ones()) + nr_l1;
            if needed <= nr_pt {
                debug_assert_eq!(needed, nr_pt);
                break (l2_slots, nr_l1, v_end);
            }
            nr_pt = needed;
        };
        let pt_end = pt_start + nr_pt * PAGE_SIZE;
        let stack = (pt_end, pt_end + PAGE_SIZE);

        let needed_pages = (v_end - virt_base) / PAGE_SIZE;
        if needed_pages > nr_pages {
            return Err(LayoutError::DomainTooSmall {
                needed_pages,
                nr_pages: req.nr_pages,
            });
        }

        // Everything is below the hole now, so it fits in 32 bits.
        let element = |(start, end): (u64, u64)| Element {
            va: start as u32,
            pages: ((end - start) / PAGE_SIZE) as u32,
        };
        Ok(BootstrapLayout {
            builder: req.builder,
            virt_base: req.virt_base,
            kernel: element((kernel_start, kernel_end)),
            initrd: (req.initrd_len > 0).then(|| element(initrd)),
            initrd_len: req.initrd_len,
            p2m: element(p2m),
            start_info: element(start_info),
            xenstore: xenstore.map(element),
            console: console.map(element),
            page_tables: element((pt_start, pt_end)),
            l2_slots,
            nr_l1_frames: nr_l1 as u32,
            stack: element(stack),
            v_end: v_end as u32,
            nr_pages: req.nr_pages,
        })
    }

    /// Pages mapped by the region (pfns `0..nr_bootstrap_pages()`).
    pub fn nr_bootstrap_pages(&self) -> u32 {
        (self.v_end - self.virt_base) >> PAGE_SHIFT
    }

    /// The pfn mapped at `va`, if `va` is in the region.
    pub fn pfn_of(&self, va: u32) -> Option<u32> {
        (va >= self.virt_base && va < self.v_end).then(|| (va - self.virt_base) >> PAGE_SHIFT)
    }

    /// The virtual address of pfn `pfn`, if it is in the region.
    pub fn va_of(&self, pfn: u32) -> Option<u32> {
        (pfn < self.nr_bootstrap_pages()).then(|| self.virt_base + (pfn << PAGE_SHIFT))
    }

    /// `start_info.pt_base`: virtual address of the L3.
    pub fn pt_base(&self) -> u32 {
        self.page_tables.va
    }

    /// `start_info.nr_pt_frames`.
    pub fn nr_pt_frames(&self) -> u32 {
        self.page_tables.pages
    }

    /// Number of L2 frames.
    pub fn nr_l2_frames(&self) -> u32 {
        self.l2_slots.count_ones()
    }

    /// `start_info.mfn_list`: virtual address of the P2M.
    pub fn mfn_list(&self) -> u32 {
        self.p2m.va
    }

    /// Virtual address of start_info (`ESI` at entry).
    pub fn start_info_va(&self) -> u32 {
        self.start_info.va
    }

    /// Initial `ESP`: the end of the stack page.
    pub fn stack_top(&self) -> u32 {
        self.stack.end()
    }

    /// `start_info.mod_start`: virtual address of the initrd (0 if none).
    pub fn mod_start(&self) -> u32 {
        self.initrd.map_or(0, |e| e.va)
    }

    /// pfn of the L3 (the frame to pin and load into CR3).
    pub fn l3_pfn(&self) -> u32 {
        self.pfn_of(self.page_tables.va).unwrap_or(0)
    }

    /// pfn of the L2 for L3 slot `slot` (0–3), if there is one.
    pub fn l2_pfn(&self, slot: u32) -> Option<u32> {
        if slot >= 4 || self.l2_slots & (1 << slot) == 0 {
            return None;
        }
        let before = (self.l2_slots & ((1u8 << slot) - 1)).count_ones();
        Some(self.l3_pfn() + 1 + before)
    }

    /// pfn of the L1 that maps `va`, if `va` is in the region.
    pub fn l1_pfn(&self, va: u32) -> Option<u32> {
        self.pfn_of(va)?;
        let first = self.virt_base >> L1_SPAN_SHIFT;
        Some(self.l3_pfn() + 1 + self.nr_l2_frames() + (va >> L1_SPAN_SHIFT) - first)
    }

    /// Whether pfn `pfn` is one of the bootstrap page-table frames (mapped read-only).
    pub fn is_page_table_pfn(&self, pfn: u32) -> bool {
        self.va_of(pfn)
            .is_some_and(|va| self.page_tables.contains(va))
    }

    /// Calls `emit` for every entry of the bootstrap page tables: the L3 entries, then
    /// the L2 entries, then the L1 entries, each in address order. Entries not emitted
    /// are zero, except that in the L2 for slot 3 the hypervisor's own slots
    /// (428–511, §3.2) are the hypervisor's to fill.
    pub fn for_each_bootstrap_pte(&self, mut emit: impl FnMut(BootstrapPte)) {
        let l3_pfn = self.l3_pfn();
        for slot in 0..4 {
            if let Some(l2_pfn) = self.l2_pfn(slot) {
                emit(BootstrapPte {
                    level: 3,
                    table_pfn: l3_pfn,
                    index: slot,
                    target_pfn: l2_pfn,
                    flags: BOOTSTRAP_L3_FLAGS,
                });
            }
        }
        let first_chunk = self.virt_base >> L1_SPAN_SHIFT;
        let last_chunk = (self.v_end - 1) >> L1_SPAN_SHIFT;
        for chunk in first_chunk..=last_chunk {
            let va = chunk << L1_SPAN_SHIFT;
            let slot = va >> L2_SPAN_SHIFT;
            if let Some(l2_pfn) = self.l2_pfn(slot) {
                emit(BootstrapPte {
                    level: 2,
                    table_pfn: l2_pfn,
                    index: chunk % PT_ENTRIES,
                    target_pfn: l3_pfn + 1 + self.nr_l2_frames() + (chunk - first_chunk),
                    flags: BOOTSTRAP_L2_FLAGS,
                });
            }
        }
        for pfn in 0..self.nr_bootstrap_pages() {
            let va = self.virt_base + (pfn << PAGE_SHIFT);
            let flags = if self.page_tables.contains(va) {
                BOOTSTRAP_L1_FLAGS & !PTE_RW
            } else {
                BOOTSTRAP_L1_FLAGS
            };
            emit(BootstrapPte {
                level: 1,
                table_pfn: l3_pfn + 1 + self.nr_l2_frames() + ((va >> L1_SPAN_SHIFT) - first_chunk),
                index: (va >> PAGE_SHIFT) % PT_ENTRIES,
                target_pfn: pfn,
                flags,
            });
        }
    }
}

fn round_up(x: u64) -> u64 {
    x.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

fn round_down(x: u64) -> u64 {
    x / PAGE_SIZE * PAGE_SIZE
}

/// End of a region whose last element ends at `last_end`: the next 4 MiB boundary,
/// plus 4 MiB if that leaves less than 512 KiB of padding (§4.3).
pub(crate) fn region_end(last_end: u64) -> u64 {
    let v_end = last_end.div_ceil(REGION_ALIGN) * REGION_ALIGN;
    if v_end - last_end < MIN_PADDING {
        v_end + REGION_ALIGN
    } else {
        v_end
    }
}

/// Number of `1 << shift`-byte slots that `[start, end)` touches (`end > start`).
fn span_count(start: u64, end: u64, shift: u32) -> u64 {
    ((end - 1) >> shift) - (start >> shift) + 1
}

/// DomU L2s: one per 1 GiB slot touched by `[virt_base, v_end)`, plus slot 3 (§4.3).
fn domu_l2_slots(virt_base: u64, v_end: u64) -> u8 {
    let first = virt_base >> L2_SPAN_SHIFT;
    let last = ((v_end - 1) >> L2_SPAN_SHIFT).min(3);
    let mut slots = 1u8 << 3;
    for slot in first..=last {
        slots |= 1 << slot;
    }
    slots
}
