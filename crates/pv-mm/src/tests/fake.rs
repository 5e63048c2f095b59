//! The test world: an emulated physical memory, a frame table of [`NR_FRAMES`]
//! frames shared by the hypervisor, a privileged dom0 and an unprivileged domU,
//! and helpers to build page tables the way a guest does (raw writes into its
//! own frames, then pin or link).

use std::collections::{HashMap, HashSet};

use hv_core::addr::Mfn;
use xen_abi::domid::{DOMID_XEN, DomId};

use crate::pte::{PAGE_ACCESSED, PAGE_DIRTY, PAGE_PRESENT, PAGE_RW, PAGE_USER, pte};
use crate::{Caller, DomainPages, Machine, Mm, MmConfig, PageInfo, PageType, PtLevel};

/// Frames in the frame table.
pub const NR_FRAMES: u64 = 256;
/// dom0's id.
pub const DOM0: DomId = 0;
/// domU's id.
pub const DOMU: DomId = 1;
/// Frames assigned to the hypervisor.
pub const XEN_FRAMES: core::ops::Range<u64> = 0..16;
/// Frames assigned to dom0.
pub const DOM0_FRAMES: core::ops::Range<u64> = 16..96;
/// Frames assigned to domU.
pub const DOMU_FRAMES: core::ops::Range<u64> = 96..176;
/// Frames owned by `DOMID_IO`.
pub const IO_FRAMES: core::ops::Range<u64> = 240..248;
/// A machine frame beyond the frame table (MMIO, not RAM).
pub const NON_RAM: Mfn = Mfn(0xFEC00);
/// A free frame.
pub const FREE: Mfn = Mfn(200);
/// Page accounts the world has (domids 0..ACCOUNTS).
pub const ACCOUNTS: usize = 4;
/// How many frames beyond their standard set dom0 and domU may be given.
pub const HEADROOM: u32 = 4;

/// dom0: privileged, with I/O-memory access.
pub const DOM0_CALLER: Caller = Caller {
    domid: DOM0,
    privileged: true,
    iomem_access: true,
};
/// dom0 without I/O-memory access (for flag rules).
pub const DOM0_NO_IO: Caller = Caller {
    domid: DOM0,
    privileged: true,
    iomem_access: false,
};
/// domU: no privileges.
pub const DOMU_CALLER: Caller = Caller {
    domid: DOMU,
    privileged: false,
    iomem_access: false,
};

/// An ordinary writable data mapping.
pub const RW: u64 = PAGE_PRESENT | PAGE_RW | PAGE_USER | PAGE_ACCESSED | PAGE_DIRTY;
/// A read-only mapping.
pub const RO: u64 = PAGE_PRESENT | PAGE_USER | PAGE_ACCESSED;
/// What a guest puts in L2 entries.
pub const L2F: u64 = PAGE_PRESENT | PAGE_RW | PAGE_USER | PAGE_ACCESSED;
/// What a guest puts in L3 entries.
pub const L3F: u64 = PAGE_PRESENT;

/// The hypervisor entry placed at L2 slot `index` (428..512): maps machine
/// frames beyond the table, so it can only be told apart, never counted.
pub fn xen_l2(index: usize) -> u64 {
    pte(
        Mfn(0xF_0000 + index as u64),
        PAGE_PRESENT | PAGE_RW | PAGE_ACCESSED | PAGE_DIRTY,
    )
}

/// Machine memory as a map of frames (absent frames read as zero).
#[derive(Default)]
pub struct FakeMachine {
    pub mem: HashMap<Mfn, Box<[u64; 512]>>,
    pub m2p: HashMap<Mfn, u32>,
    /// Frames the engine reported free, in order.
    pub freed: Vec<Mfn>,
    /// Frames the test gave out with `assign`; `page_freed` must name one.
    pub live: HashSet<Mfn>,
    /// Frames for which a retype flush was requested.
    pub retype_flushes: Vec<Mfn>,
    /// What `check_seg_desc_page` answers.
    pub seg_desc_ok: bool,
    /// Frames in the frame table (the engine must not write beyond).
    pub nr_frames: u64,
    /// Entries read so far.
    pub reads: core::cell::Cell<u64>,
}

impl Machine for FakeMachine {
    fn read_pte(&self, mfn: Mfn, index: usize) -> u64 {
        assert!(index < 512);
        self.reads.set(self.reads.get() + 1);
        self.mem.get(&mfn).map_or(0, |f| f[index])
    }

    fn write_pte(&mut self, mfn: Mfn, index: usize, val: u64) {
        assert!(mfn.0 < self.nr_frames, "engine wrote to non-RAM {mfn}");
        self.mem.entry(mfn).or_insert_with(|| Box::new([0; 512]))[index] = val;
    }

    fn clear_frame(&mut self, mfn: Mfn) {
        self.mem.remove(&mfn);
    }

    fn copy_frame(&mut self, dst: Mfn, src: Mfn) {
        let data = self
            .mem
            .get(&src)
            .cloned()
            .unwrap_or_else(|| Box::new([0; 512]));
        self.mem.insert(dst, data);
    }

    fn set_m2p(&mut self, mfn: Mfn, pfn: u32) {
        self.m2p.insert(mfn, pfn);
    }

    fn xen_l2_entry(&self, index: usize) -> u64 {
        assert!((428..512).contains(&index));
        xen_l2(index)
    }

    fn check_seg_desc_page(&self, _mfn: Mfn) -> bool {
        self.seg_desc_ok
    }

    fn flush_tlb_for_retype(&mut self, mfn: Mfn) {
        self.retype_flushes.push(mfn);
    }

    fn page_freed(&mut self, mfn: Mfn) {
        assert!(
            self.live.remove(&mfn),
            "{mfn} freed twice or never assigned"
        );
        self.freed.push(mfn);
    }
}

/// A page-table hierarchy built by [`World::address_space`].
#[derive(Clone, Copy, Debug)]
pub struct Space {
    pub l3: Mfn,
    /// The L2 under slot 0 (guest) and slot 3 (kernel + hypervisor slots).
    pub l2_0: Mfn,
    pub l2_3: Mfn,
    /// An L1 under `l2_0[0]` (va 0) and under `l2_3[0]` (va 0xC000_0000).
    pub l1_0: Mfn,
    pub l1_3: Mfn,
    /// Data frames: `l1_0[0]` maps `data_rw` RW, `l1_3[0]` maps `data_ro` RO.
    pub data_rw: Mfn,
    pub data_ro: Mfn,
}

/// Frame table, engine and bookkeeping of one test.
pub struct World {
    pub mm: Mm<'static, FakeMachine>,
    /// The VCPUs' base pointers (for the audit).
    pub bases: Vec<Mfn>,
    next: HashMap<DomId, u64>,
}

impl World {
    pub fn new() -> Self {
        Self::with(NR_FRAMES, MmConfig::default())
    }

    pub fn with_config(config: MmConfig) -> Self {
        Self::with(NR_FRAMES, config)
    }

    /// A world of `nr` frames (at least [`NR_FRAMES`]) with the standard layout.
    pub fn with(nr: u64, config: MmConfig) -> Self {
        let table: Vec<PageInfo> = (0..nr)
            .map(|m| {
                if IO_FRAMES.contains(&m) {
                    PageInfo::io()
                } else {
                    PageInfo::free()
                }
            })
            .collect();
        let frames: &'static [PageInfo] = Box::leak(table.into_boxed_slice());
        let machine = FakeMachine {
            nr_frames: nr,
            ..FakeMachine::default()
        };
        let accounts: Vec<DomainPages> = (0..ACCOUNTS).map(|_| DomainPages::new()).collect();
        let accounts: &'static [DomainPages] = Box::leak(accounts.into_boxed_slice());
        let mut mm = Mm::new(frames, accounts, machine, config);
        for (range, dom) in [(DOM0_FRAMES, DOM0), (DOMU_FRAMES, DOMU)] {
            mm.set_max_pages(dom, range.count() as u32 + HEADROOM)
                .unwrap();
        }
        for (range, dom) in [
            (XEN_FRAMES, DOMID_XEN),
            (DOM0_FRAMES, DOM0),
            (DOMU_FRAMES, DOMU),
        ] {
            for m in range {
                mm.assign(Mfn(m), dom).unwrap();
                mm.machine.live.insert(Mfn(m));
            }
        }
        let next = HashMap::from([(DOM0, DOM0_FRAMES.start), (DOMU, DOMU_FRAMES.start)]);
        Self {
            mm,
            bases: Vec::new(),
            next,
        }
    }

    /// A frame of `dom` not used yet by this test (zeroed, only its allocation
    /// reference).
    pub fn fresh(&mut self, dom: DomId) -> Mfn {
        let n = self.next.get_mut(&dom).expect("dom0 or domU");
        let mfn = Mfn(*n);
        *n += 1;
        let end = if dom == DOM0 {
            DOM0_FRAMES.end
        } else {
            DOMU_FRAMES.end
        };
        assert!(mfn.0 < end, "out of frames for dom{dom}");
        mfn
    }

    /// A raw store, as a guest does through a writable mapping of its own frame.
    pub fn poke(&mut self, mfn: Mfn, index: usize, val: u64) {
        let t = self.mm.page_info(mfn).unwrap().type_info();
        assert!(
            t.count() == 0 || t.page_type() == Some(PageType::Writable),
            "test bug: raw write into a typed {mfn}"
        );
        self.mm.machine.write_pte(mfn, index, val);
    }

    pub fn peek(&self, mfn: Mfn, index: usize) -> u64 {
        self.mm.machine.read_pte(mfn, index)
    }

    /// A fresh frame of `dom` holding `entries`.
    pub fn table(&mut self, dom: DomId, entries: &[(usize, u64)]) -> Mfn {
        let mfn = self.fresh(dom);
        for &(i, e) in entries {
            self.poke(mfn, i, e);
        }
        mfn
    }

    /// A complete, not yet validated, address space of `dom`.
    pub fn address_space(&mut self, dom: DomId) -> Space {
        let data_rw = self.fresh(dom);
        let data_ro = self.fresh(dom);
        let l1_0 = self.table(dom, &[(0, pte(data_rw, RW))]);
        let l1_3 = self.table(dom, &[(0, pte(data_ro, RO))]);
        let l2_0 = self.table(dom, &[(0, pte(l1_0, L2F))]);
        let l2_3 = self.table(dom, &[(0, pte(l1_3, L2F))]);
        let l3 = self.table(dom, &[(0, pte(l2_0, L3F)), (3, pte(l2_3, L3F))]);
        Space {
            l3,
            l2_0,
            l2_3,
            l1_0,
            l1_3,
            data_rw,
            data_ro,
        }
    }

    /// An address space of `dom`, pinned.
    pub fn pinned_space(&mut self, dom: DomId) -> Space {
        let s = self.address_space(dom);
        let caller = caller_of(dom);
        self.mm.pin(s.l3, PtLevel::L3, &caller, dom).unwrap();
        self.audit();
        s
    }

    /// (total count, type count, type, pinned, validated) of `mfn`.
    pub fn state(&self, mfn: Mfn) -> (u32, u32, Option<PageType>, bool, bool) {
        let pi = self.mm.page_info(mfn).unwrap();
        let t = pi.type_info();
        (
            pi.count(),
            t.count(),
            t.page_type(),
            t.pinned(),
            t.validated(),
        )
    }

    pub fn count(&self, mfn: Mfn) -> u32 {
        self.mm.page_info(mfn).unwrap().count()
    }

    pub fn type_count(&self, mfn: Mfn) -> u32 {
        self.mm.page_info(mfn).unwrap().type_count()
    }

    /// Whether `mfn` is a validated table (or typed frame) of `ty` in use.
    pub fn is(&self, mfn: Mfn, ty: PageType) -> bool {
        let t = self.mm.page_info(mfn).unwrap().type_info();
        t.count() > 0 && t.page_type() == Some(ty)
    }

    /// The frame table, with the type of unreferenced frames left out (it is
    /// only a TLB-flush hint).
    pub fn snapshot(&self) -> Vec<(u32, u32, u32)> {
        self.mm
            .frames()
            .iter()
            .map(|pi| {
                let t = pi.type_info();
                let t = if t.count() == 0 {
                    t.0 & !crate::page_info::PGT_TYPE_MASK
                } else {
                    t.0
                };
                (pi.count_info().0, t, u32::from(pi.owner()))
            })
            .chain(self.mm.frames().iter().map(|pi| {
                (
                    pi.extra.load(core::sync::atomic::Ordering::Relaxed),
                    0,
                    u32::MAX - 1,
                )
            }))
            .chain(
                (0..ACCOUNTS as DomId)
                    .map(|d| (self.mm.tot_pages(d), self.mm.max_pages(d), u32::MAX)),
            )
            .collect()
    }

    /// The audit must pass.
    pub fn audit(&self) -> crate::AuditReport {
        match self.mm.audit(&self.bases) {
            Ok(r) => r,
            Err(e) => panic!("audit failed: {e}"),
        }
    }

    /// `new_baseptr` for VCPU `vcpu` (its slot in `bases`, created on first use).
    pub fn set_base(
        &mut self,
        vcpu: usize,
        l3: Mfn,
        caller: &Caller,
    ) -> Result<(), xen_abi::errno::Errno> {
        let old = self.bases.get(vcpu).copied();
        self.mm.new_baseptr(l3, old, caller, false)?;
        if vcpu < self.bases.len() {
            self.bases[vcpu] = l3;
        } else {
            assert_eq!(vcpu, self.bases.len());
            self.bases.push(l3);
        }
        Ok(())
    }
}

/// The caller structure of `dom`.
pub fn caller_of(dom: DomId) -> Caller {
    if dom == DOM0 {
        DOM0_CALLER
    } else {
        DOMU_CALLER
    }
}

/// The `mmu_update` pointer of entry `index` of `mfn`.
pub fn ptr(mfn: Mfn, index: usize) -> u64 {
    (mfn.0 << 12) | (index as u64 * 8)
}

/// Runs a failing operation and checks the error, that the frame table did not
/// change and that the audit still passes.
macro_rules! assert_fails {
    ($w:expr, $op:expr, $err:expr) => {{
        let before = $w.snapshot();
        let r = $op;
        assert_eq!(r, Err($err), "{}", stringify!($op));
        assert!(
            $w.snapshot() == before,
            "frame table changed by failing {}",
            stringify!($op)
        );
        $w.audit();
    }};
}
