//! The call generator: each call's number and arguments, and the structures
//! they point at (built in the arena), drawn from the seed, following the
//! policy of the module docs in mod.rs.

use fuzz::{Mode, Rng};
use xen_abi::domctl as dc;
use xen_abi::hypercall as nr;
use xen_abi::layout::HYPERVISOR_VIRT_START;
use xen_abi::mm::*;

use super::{ARENA, ARENA_SIZE, PAGE, WINDOW, World};

/// One hypercall: its number and the five argument registers.
pub(crate) struct Call {
    pub(crate) nr: u32,
    pub(crate) args: [u32; 5],
}

/// A machine frame of Oxen's own image (machine address 1 MiB).
const OXEN_MFN: u32 = 0x100;

pub(crate) struct Gen<'w> {
    w: &'w World,
    rng: Rng,
    /// The arena's allocation cursor (reset for each call).
    used: usize,
    /// dom0 mode: domains this kernel created (ids; 0 = free slot) and
    /// frames it gave the newest.
    created: [u16; 4],
    foreign: [u32; 16],
    n_foreign: usize,
}

/// A pointer argument: where it points and how many bytes behind it the
/// call may use (`None`: not the arena, any count is safe).
#[derive(Clone, Copy)]
struct Ptr {
    va: u32,
    room: Option<usize>,
}

impl Ptr {
    /// The most `size`-byte elements the call may use at this pointer.
    fn cap(self, size: usize) -> Option<u32> {
        self.room.map(|r| (r / size) as u32)
    }
}

impl<'w> Gen<'w> {
    pub(crate) fn new(w: &'w World, rng: Rng) -> Gen<'w> {
        Gen {
            w,
            rng,
            used: 0,
            created: [0; 4],
            foreign: [0; 16],
            n_foreign: 0,
        }
    }

    // ---- the arena -------------------------------------------------------

    fn arena_base() -> u32 {
        // SAFETY: only the address is taken.
        core::ptr::addr_of_mut!(ARENA) as u32
    }

    /// `size` bytes of the arena (8-aligned), filled with random words.
    fn alloc(&mut self, size: usize) -> Option<u32> {
        let start = self.used.next_multiple_of(8);
        if start + size > ARENA_SIZE {
            return None;
        }
        self.used = start + size;
        let va = Self::arena_base() + start as u32;
        for i in 0..size / 4 {
            let v = self.word();
            self.put(va + 4 * i as u32, v);
        }
        Some(va)
    }

    fn put(&mut self, va: u32, v: u32) {
        assert!(in_arena(va, 4));
        // SAFETY: inside the arena (checked), which only the generator and
        // Oxen (during a call) touch.
        unsafe { (va as *mut u32).write_unaligned(v) }
    }

    fn put64(&mut self, va: u32, v: u64) {
        self.put(va, v as u32);
        self.put(va + 4, (v >> 32) as u32);
    }

    fn put16(&mut self, va: u32, v: u16) {
        assert!(in_arena(va, 2));
        // SAFETY: as in `put`.
        unsafe { (va as *mut u16).write_unaligned(v) }
    }

    // ---- values ----------------------------------------------------------

    /// A word for a structure field with no safety meaning.
    fn word(&mut self) -> u32 {
        match self.rng.below(8) {
            0..=2 => self.rng.below(8),
            3 | 4 => self.rng.boundary_u32(),
            5 => u32::from(self.domid()),
            6 => self.rng.next_u32(),
            _ => self.rng.below(0x1000),
        }
    }

    /// A domain id: DOMID_SELF, 0, small ids, the reserved ids, ones that
    /// do not exist, a domain this kernel created.
    pub(crate) fn domid(&mut self) -> u16 {
        match self.rng.below(10) {
            0 | 1 => 0x7FF0,
            2 => 0,
            3 => self.rng.below(4) as u16,
            4 => 0x7FF0 + self.rng.below(16) as u16,
            5 => self.rng.pick(&[0x7FEF, 0x8000, 0xFFFF, 1000, 0x7FFF]),
            6 => self.rng.next_u32() as u16,
            _ => {
                let c = self.created[self.rng.below(4) as usize];
                if c != 0 { c } else { 0x7FF0 }
            }
        }
    }

    fn pick_data(&mut self) -> u32 {
        self.w.data[self.rng.below(self.w.n_data as u32) as usize]
    }

    fn pick_pt(&mut self) -> u32 {
        self.w.pt[self.rng.below(self.w.n_pt as u32) as usize]
    }

    fn pick_live_pt(&mut self) -> u32 {
        match self.rng.below(3) {
            0 => self.w.l3,
            1 => self.w.live_l2[self.rng.below(self.w.n_l2 as u32) as usize],
            _ => self.w.live_l1[self.rng.below(self.w.n_l1.max(1) as u32) as usize],
        }
    }

    /// A frame that is not the kernel's: Oxen's, another domain's, beyond
    /// RAM (a random one that is protected is drawn again).
    fn other_mfn(&mut self) -> u32 {
        loop {
            let m = self.any_mfn();
            if !self.w.protected(m) {
                return m;
            }
        }
    }

    fn any_mfn(&mut self) -> u32 {
        match self.rng.below(6) {
            0 => OXEN_MFN + self.rng.below(64),
            1 => self.rng.below(0x100),
            2 if self.n_foreign > 0 => self.foreign[self.rng.below(self.n_foreign as u32) as usize],
            3 => self.rng.below(self.w.max_mfn.max(1)),
            4 => self.w.max_mfn + self.rng.below(3),
            _ => self.rng.boundary_u32(),
        }
    }

    /// A frame a call may write, free, pin or give away (never protected).
    fn mfn(&mut self) -> u32 {
        match self.rng.below(8) {
            0..=2 => self.pick_data(),
            3 | 4 => self.pick_pt(),
            5 => self.pick_live_pt(),
            _ => self.other_mfn(),
        }
    }

    /// [`Self::mfn`] or, for calls that only read it, a protected frame.
    fn mfn_read(&mut self) -> u32 {
        if self.rng.one_in(6) {
            self.rng.pick(&self.w.image)
        } else {
            self.mfn()
        }
    }

    /// A PTE: a frame of any class with random flags; a protected frame is
    /// never mapped writable.
    fn pte(&mut self) -> u64 {
        if self.rng.one_in(10) {
            let raw = match self.rng.below(3) {
                0 => 0,
                1 => u64::from(self.rng.next_u32()) << 32 | u64::from(self.rng.next_u32()),
                _ => u64::from(self.rng.boundary_u32()),
            };
            return self.never_writable(raw);
        }
        let image = self.rng.one_in(8);
        let mfn = if image {
            self.rng.pick(&self.w.image)
        } else {
            self.mfn()
        };
        let mut flags = u64::from(self.rng.pick(&[0x63u32, 0x61, 0x67, 0x23, 0x1, 0x0, 0xE3]));
        if self.rng.one_in(4) {
            flags = u64::from(self.rng.below(0x1000));
        }
        if self.rng.one_in(16) {
            flags |= 1 << 63 | u64::from(self.rng.below(0x80)) << 52;
        }
        let pte = u64::from(mfn) << 12 | flags;
        self.never_writable(pte)
    }

    /// `pte` without RW if it maps a protected frame.
    fn never_writable(&self, pte: u64) -> u64 {
        if self
            .w
            .protected(((pte & 0x000F_FFFF_FFFF_F000) >> 12) as u32)
        {
            pte & !2
        } else {
            pte
        }
    }

    /// The machine address of a page-table entry a write may target: the
    /// fuzz window's L1 entries, scratch frames, the unused L2 slots and
    /// the hole's, L3 slots 0–2, other frames. Never a protected frame:
    /// Oxen, as Xen, stores into any frame of the caller's that can take a
    /// writable type.
    fn pt_maddr(&mut self) -> u64 {
        let entry = u64::from(self.rng.below(512)) * 8;
        let page = |m: u32| u64::from(m) << 12;
        let a = match self.rng.below(12) {
            0..=3 => self.w.window_l1e[1 + self.rng.below(WINDOW - 1) as usize],
            4 | 5 => page(self.pick_pt()) + entry,
            6 => page(self.pick_data()) + entry,
            7 => {
                let idx = if self.rng.one_in(2) {
                    self.w.l2_free_index + self.rng.below(8)
                } else {
                    428 + self.rng.below(84)
                };
                page(self.w.l2_top) + u64::from(idx) * 8
            }
            8 => page(self.w.l3) + u64::from(self.rng.below(3)) * 8,
            _ => page(self.other_mfn()) + entry,
        };
        if self.rng.one_in(16) {
            a + u64::from(self.rng.below(8))
        } else {
            a
        }
    }

    /// A VA an `update_va_mapping` may change: the fuzz window, the hole,
    /// the unmapped slot, the read-only page-table mappings, 0, or the last
    /// page below the hole.
    fn map_va(&mut self) -> u32 {
        match self.rng.below(10) {
            0..=4 => self.w.window + (1 + self.rng.below(WINDOW - 1)) * PAGE,
            5 => HYPERVISOR_VIRT_START + self.rng.below(0x0A80_0000),
            6 => self.w.unmapped & !0xFFF,
            7 => self.w.pt_va + self.rng.below(self.w.nr_pt_frames) * PAGE,
            8 => self
                .rng
                .pick(&[0u32, 0x1000, HYPERVISOR_VIRT_START - PAGE, 0xFFFF_F000]),
            _ => (self.w.window + self.rng.below(WINDOW * PAGE)) | self.rng.below(2),
        }
    }

    /// A pointer that is not the arena: null, small, the hole, the unmapped
    /// slot, the read-only page tables, the fuzz window, page-boundary and
    /// sign-boundary addresses.
    fn bad_ptr(&mut self) -> u32 {
        match self.rng.below(8) {
            0 => 0,
            1 => self.rng.below(0x2000),
            2 => HYPERVISOR_VIRT_START + self.rng.below(0x0A80_0000),
            3 => self.w.unmapped,
            4 => self.w.pt_va + self.rng.below(self.w.nr_pt_frames * PAGE),
            5 => self.w.window + PAGE + self.rng.below((WINDOW - 1) * PAGE),
            6 => self.rng.pick(&[
                0xFFFF_FFFF,
                0xFFFF_FFF0,
                0x7FFF_FFFF,
                0x8000_0000,
                HYPERVISOR_VIRT_START - 4,
                HYPERVISOR_VIRT_START - 1,
            ]),
            _ => (self.w.unmapped & !0xFFF) - 2,
        }
    }

    /// A pointer no access through can succeed: Oxen's part of the hole
    /// (above the read-only M2P), the unmapped slot.
    fn fault_ptr(&mut self) -> u32 {
        match self.rng.below(3) {
            0 => 0xF680_0000 + self.rng.below(0x0980_0000),
            1 => self.w.unmapped,
            _ => 0xFFFF_FFFE,
        }
    }

    /// A pointer argument to a structure of `size` bytes: mostly an arena
    /// block (random contents), else [`Self::bad_ptr`]; sometimes near the
    /// arena block's end so that a longer read runs past it (still inside
    /// the arena's room, which bounds the counts).
    fn ptr(&mut self, size: usize) -> Ptr {
        if self.rng.one_in(6) {
            return Ptr {
                va: self.bad_ptr(),
                room: None,
            };
        }
        match self.alloc(size) {
            Some(va) => Ptr {
                va,
                room: Some(size),
            },
            None => Ptr { va: 0, room: None },
        }
    }

    /// A count for `p` of `size`-byte elements: any count for a pointer
    /// outside the arena, else at most what it holds (0 too).
    fn count_for(&mut self, p: Ptr, size: usize) -> u32 {
        let c = self.rng.count();
        match p.cap(size) {
            None => c,
            Some(cap) => {
                if cap == 0 {
                    0
                } else if c <= cap {
                    c
                } else {
                    self.rng.below(cap + 1)
                }
            }
        }
    }

    /// A pointer to a structure that holds a guest handle (a pointer Oxen
    /// writes through) or an address Oxen maps or writes: an arena block,
    /// else a pointer no access through can succeed ([`Self::fault_ptr`]).
    /// Never the readable memory [`Self::bad_ptr`] also names (the
    /// read-only page tables, the fuzz window, low addresses): the kernel
    /// does not choose what those bytes hold, so the handle read from them
    /// could point anywhere in its own memory, and Oxen, as Xen, writes
    /// through it. Seed 8 as a domU died so: call 1 430 286,
    /// `memory_op(XENMEM_machphys_mfn_list)` on a pointer into its
    /// read-only page tables, had the M2P's frame numbers written through
    /// the "extent_start" its page-table entries spelled.
    fn handle_ptr(&mut self, size: usize) -> Ptr {
        if self.rng.one_in(6) {
            return Ptr {
                va: self.fault_ptr(),
                room: None,
            };
        }
        match self.alloc(size) {
            Some(va) => Ptr {
                va,
                room: Some(size),
            },
            None => Ptr { va: 0, room: None },
        }
    }

    /// An array of up to `max` elements of `size` bytes, each filled by
    /// `fill` (after random words); returns the pointer and the count.
    fn array(&mut self, size: usize, max: u32, fill: fn(&mut Gen<'w>, u32)) -> (u32, u32) {
        if self.rng.one_in(8) {
            return (self.bad_ptr(), self.rng.count());
        }
        self.array_in_arena(size, max, fill)
    }

    /// [`Self::array`] of structures holding handles or addresses Oxen
    /// writes or maps (see [`Self::handle_ptr`]), or machine frames it
    /// writes, frees or retypes (`mmu_update` requests, `mmuext_op`s,
    /// extents given back, frames transferred): outside the arena only at a
    /// pointer no access through can succeed. Seed 8 (domU, with the
    /// handles fixed) changed its own code at call 859 626, `mmu_update`
    /// of 128 requests read from a fuzz-window page: one was a plain write
    /// by machine address into an image frame, which Oxen, as Xen, makes
    /// for any frame of the caller's that can be writable.
    fn handle_array(&mut self, size: usize, max: u32, fill: fn(&mut Gen<'w>, u32)) -> (u32, u32) {
        if self.rng.one_in(8) {
            return (self.fault_ptr(), self.rng.count());
        }
        self.array_in_arena(size, max, fill)
    }

    fn array_in_arena(&mut self, size: usize, max: u32, fill: fn(&mut Gen<'w>, u32)) -> (u32, u32) {
        let n = 1 + self.rng.below(max);
        let Some(va) = self.alloc(size * n as usize) else {
            return (0, self.rng.count());
        };
        for i in 0..n {
            fill(self, va + i * size as u32);
        }
        let p = Ptr {
            va,
            room: Some(size * n as usize),
        };
        (va, self.count_for(p, size))
    }

    // ---- calls -----------------------------------------------------------

    pub(crate) fn next_call(&mut self) -> Call {
        self.used = 0;
        self.call(0)
    }

    fn call(&mut self, depth: u32) -> Call {
        let pick = self.rng.below(100);
        let (r1, r2) = (self.rng.next_u32(), self.rng.below(128));
        let n = if pick < 4 {
            // Out of range, unassigned and random numbers.
            self.rng.pick(&[
                nr::NR_HYPERCALLS,
                nr::NR_HYPERCALLS - 1,
                0xFFFF_FFFF,
                0x8000_0000,
                nr::ARCH_0,
                nr::ARCH_7,
                nr::XENOPROF_OP,
                nr::HVM_OP,
                nr::KEXEC_OP,
                11,
                r1,
                r2,
            ])
        } else {
            self.rng.pick(&WEIGHTED)
        };
        let mut a = [0u32; 5];
        match n {
            nr::SET_TRAP_TABLE => {
                let (va, _) = self.array(8, 64, |g, e| {
                    if g.rng.one_in(3) {
                        g.put(e + 4, 0);
                    }
                });
                a[0] = va;
            }
            nr::MMU_UPDATE => {
                let (va, count) = self.handle_array(16, 600, |g, e| {
                    let kind = g.rng.below(10);
                    let ptr = match kind {
                        0 => u64::from(g.mfn_read()) << 12 | 1,
                        1 => g.pt_maddr() | u64::from(g.rng.below(4)),
                        2 => g.pt_maddr() | 2,
                        _ => g.pt_maddr(),
                    };
                    let val = if kind == 0 {
                        u64::from(g.word())
                    } else {
                        g.pte()
                    };
                    g.put64(e, ptr);
                    g.put64(e + 8, val);
                });
                a = [
                    va,
                    self.continued(count),
                    self.out_word(),
                    self.foreigndom(),
                    0,
                ];
                if self.rng.one_in(20) {
                    // A huge batch of one repeated entry: the preemption path.
                    if let Some(big) = self.alloc(16 * 2048) {
                        let (ptr, val) = (self.pt_maddr(), self.pte());
                        for i in 0..2048 {
                            self.put64(big + 16 * i, ptr);
                            self.put64(big + 16 * i + 8, val);
                        }
                        a[0] = big;
                        a[1] = 1 + self.rng.below(2048);
                    }
                }
            }
            nr::SET_GDT => {
                let (va, _) = self.array(4, 16, |g, e| {
                    let m = g.mfn();
                    g.put(e, m);
                });
                a = [va, self.rng.count(), 0, 0, 0];
            }
            nr::UPDATE_DESCRIPTOR => {
                let ma = self.pt_maddr();
                let (lo, hi) = self.descriptor();
                a = [ma as u32, (ma >> 32) as u32, lo, hi, 0];
            }
            nr::MEMORY_OP => a = self.memory_op(),
            nr::MULTICALL if depth == 0 => {
                let n = 1 + self.rng.below(16);
                if let Some(va) = self.alloc(32 * n as usize) {
                    for i in 0..n {
                        let c = self.call(1);
                        let e = va + 32 * i;
                        self.put(e, c.nr);
                        let r = self.rng.next_u32();
                        self.put(e + 4, r);
                        for (j, &arg) in c.args.iter().enumerate() {
                            self.put(e + 8 + 4 * j as u32, arg);
                        }
                        let r = self.rng.boundary_u32();
                        self.put(e + 28, r);
                    }
                    let p = Ptr {
                        va,
                        room: Some(32 * n as usize),
                    };
                    a = [va, self.count_for(p, 32), 0, 0, 0];
                } else {
                    a = [self.fault_ptr(), self.rng.count(), 0, 0, 0];
                }
            }
            nr::UPDATE_VA_MAPPING | nr::UPDATE_VA_MAPPING_OTHERDOMAIN => {
                let va = self.map_va();
                let pte = self.pte();
                a = [va, pte as u32, (pte >> 32) as u32, self.uvmf(), 0];
                if n == nr::UPDATE_VA_MAPPING_OTHERDOMAIN {
                    a[4] = u32::from(self.domid());
                }
            }
            nr::SET_TIMER_OP => {
                let t = self.u64_boundary();
                a = [t as u32, (t >> 32) as u32, 0, 0, 0];
            }
            nr::XEN_VERSION => {
                let p = self.ptr(1040);
                a = [self.rng.below(12) | self.bigger(), p.va, 0, 0, 0];
            }
            nr::CONSOLE_IO => {
                // Writes are short and printable, so the transcript stays readable.
                let cmd = self.rng.pick(&[0u32, 1, 2, 0xFFFF_FFFF]);
                let p = self.ptr(64);
                if let Some(room) = p.room {
                    for i in 0..room / 4 {
                        self.put(p.va + 4 * i as u32, 0x2e2e_2e2e);
                    }
                    self.put(p.va + 60, 0x0a2e_2e2e);
                }
                // A long write must fault at once: else it prints whatever
                // is mapped there (megabytes of it).
                let (count, va) = match (cmd, p.room) {
                    (0, Some(_)) => (self.rng.pick(&[0, 1, 4, 64]), p.va),
                    (0, None) if self.rng.one_in(2) => (self.rng.count(), self.fault_ptr()),
                    (0, None) => (self.rng.below(65), p.va),
                    _ => (self.count_for(p, 1), p.va),
                };
                a = [cmd, count, va, 0, 0];
            }
            nr::GRANT_TABLE_OP => a = self.grant_table_op(),
            nr::VM_ASSIST => {
                a = [
                    self.rng.below(3),
                    self.rng.below(8) | self.bigger(),
                    0,
                    0,
                    0,
                ]
            }
            nr::VCPU_OP => a = self.vcpu_op(),
            nr::MMUEXT_OP => {
                let (va, count) = self.handle_array(12, 64, |g, e| {
                    let cmd = g.mmuext_cmd();
                    let (a1, a2) = g.mmuext_args(cmd);
                    g.put(e, cmd);
                    g.put(e + 4, a1);
                    g.put(e + 8, a2);
                });
                a = [
                    va,
                    self.continued(count),
                    self.out_word(),
                    self.foreigndom(),
                    0,
                ];
            }
            nr::SCHED_OP => a = self.sched_op(),
            nr::SCHED_OP_COMPAT => {
                // Not block (1) nor shutdown (2).
                let cmd = self.rng.pick(&[0u32, 0, 3, 4, 5, 6, 7, 0xFFFF_FFFF]);
                a = [cmd, self.word(), 0, 0, 0];
            }
            nr::EVENT_CHANNEL_OP => {
                let p = self.ptr(24);
                a = [self.evtchn_cmd(), p.va, 0, 0, 0];
            }
            nr::EVENT_CHANNEL_OP_COMPAT => {
                let p = self.ptr(28);
                if p.room.is_some() {
                    let cmd = self.evtchn_cmd();
                    self.put(p.va, cmd);
                }
                a[0] = p.va;
            }
            nr::PHYSDEV_OP => {
                let cmd = self.physdev_cmd();
                let p = self.ptr(16);
                self.physdev_fix(cmd, p);
                a = [cmd, p.va, 0, 0, 0];
            }
            nr::PHYSDEV_OP_COMPAT => {
                let cmd = self.physdev_cmd();
                let p = self.ptr(20);
                if p.room.is_some() {
                    self.put(p.va, cmd);
                    self.physdev_fix(
                        cmd,
                        Ptr {
                            va: p.va + 4,
                            room: Some(16),
                        },
                    );
                }
                a[0] = p.va;
            }
            nr::SET_DEBUGREG => {
                let reg = self
                    .rng
                    .pick(&[0u32, 1, 2, 3, 4, 5, 6, 7, 7, 8, 0xFFFF_FFFF]);
                let mut v = self.rng.boundary_u32();
                if reg == 7 || reg == 5 {
                    // No breakpoint enabled (L0-3, G0-3) and no general detect.
                    v &= !0x20FF;
                }
                a = [reg, v, 0, 0, 0];
            }
            nr::GET_DEBUGREG => a = [self.rng.below(10) | self.bigger(), 0, 0, 0, 0],
            nr::CALLBACK_OP => {
                let p = self.ptr(16);
                a = [self.rng.below(3) | self.bigger(), p.va, 0, 0, 0];
            }
            nr::NMI_OP => {
                let p = self.ptr(8);
                a = [self.rng.below(3) | self.bigger(), p.va, 0, 0, 0];
            }
            nr::SYSCTL => a[0] = self.sysctl(),
            nr::DOMCTL => a[0] = self.domctl(),
            nr::IRET => {
                // Never: it would pop a frame off the kernel's own stack.
                a = [0; 5];
                return Call {
                    nr: nr::XEN_VERSION,
                    args: a,
                };
            }
            _ => {
                // Stack switch, callbacks, FPU, segment base, and numbers
                // Oxen does not serve: words, and pointers that are safe.
                for x in a.iter_mut() {
                    *x = if self.rng.one_in(3) {
                        self.ptr(256).va
                    } else {
                        self.word()
                    };
                }
                if n == nr::FPU_TASKSWITCH {
                    a[0] = self.rng.below(3);
                }
            }
        }
        Call { nr: n, args: a }
    }

    /// Now and then a value above the small ones a command number takes.
    fn bigger(&mut self) -> u32 {
        if self.rng.one_in(10) {
            self.rng.boundary_u32() & !0x3F
        } else {
            0
        }
    }

    fn u64_boundary(&mut self) -> u64 {
        match self.rng.below(4) {
            0 => u64::from(self.rng.boundary_u32()),
            1 => u64::from(self.rng.boundary_u32()) << 32 | u64::from(self.rng.boundary_u32()),
            2 => self
                .rng
                .pick(&[0, 1, u64::MAX, i64::MAX as u64, 1 << 63, 1 << 50, 1 << 51]),
            _ => self.rng.next_u64() >> self.rng.below(64),
        }
    }

    /// A batch count, sometimes with the continuation bit of mmu_update
    /// and mmuext_op set.
    fn continued(&mut self, count: u32) -> u32 {
        if self.rng.one_in(10) {
            count | MMU_UPDATE_PREEMPTED_BIT
        } else {
            count
        }
    }

    /// A `done` out-pointer: a word of the arena or a bad pointer.
    fn out_word(&mut self) -> u32 {
        self.ptr(4).va
    }

    fn foreigndom(&mut self) -> u32 {
        if self.rng.one_in(2) {
            0x7FF0
        } else {
            u32::from(self.domid()) | if self.rng.one_in(8) { 0xFFFF_0000 } else { 0 }
        }
    }

    fn uvmf(&mut self) -> u32 {
        match self.rng.below(6) {
            0..=2 => self.rng.below(8),
            3 => self.ptr(8).va | self.rng.below(3),
            4 => self.rng.boundary_u32(),
            _ => UVMF_INVLPG,
        }
    }

    /// A segment descriptor: random, or a code/data/system one with random
    /// DPL, base and limit.
    fn descriptor(&mut self) -> (u32, u32) {
        if self.rng.one_in(3) {
            return (self.rng.next_u32(), self.rng.next_u32());
        }
        let base = self.rng.boundary_u32();
        let any = self.rng.below(0x10_0000);
        let limit = self.rng.pick(&[0xFFFFF, 0, 0xF57FF, 0xF5800, any]);
        let ty = self.rng.below(16) | if self.rng.one_in(4) { 0 } else { 0x10 };
        let dpl = self.rng.below(4);
        let flags = self.rng.pick(&[0xC0u32, 0x40, 0x80, 0, 0xE0]);
        let lo = (base << 16) | (limit & 0xFFFF);
        let hi = (base & 0xFF00_0000)
            | ((base >> 16) & 0xFF)
            | (1 << 15)
            | (dpl << 13)
            | (ty << 8)
            | (flags << 16)
            | (limit & 0xF_0000);
        (lo, hi)
    }

    fn mmuext_cmd(&mut self) -> u32 {
        if self.rng.one_in(12) {
            return self.rng.boundary_u32();
        }
        self.rng.below(22)
    }

    fn mmuext_args(&mut self, cmd: u32) -> (u32, u32) {
        match cmd {
            MMUEXT_PIN_L1_TABLE..=MMUEXT_UNPIN_TABLE => (self.mfn_read(), self.word()),
            MMUEXT_NEW_BASEPTR | MMUEXT_NEW_USER_BASEPTR => {
                // Only its own L3, a live table of another level or a frame
                // it cannot own: a scratch frame might validate and be switched to.
                let m = match self.rng.below(4) {
                    0 => self.w.l3,
                    1 => self.pick_live_pt(),
                    2 => self.other_mfn(),
                    _ => self.rng.pick(&self.w.image),
                };
                (m, self.word())
            }
            MMUEXT_INVLPG_LOCAL | MMUEXT_INVLPG_ALL => (self.map_va(), 0),
            MMUEXT_TLB_FLUSH_MULTI | MMUEXT_INVLPG_MULTI => (self.map_va(), self.ptr(8).va),
            MMUEXT_SET_LDT => {
                let va = if self.rng.one_in(2) {
                    self.map_va()
                } else {
                    self.rng.boundary_u32()
                };
                (va, self.rng.count())
            }
            MMUEXT_CLEAR_PAGE => (self.mfn(), self.word()),
            MMUEXT_COPY_PAGE => (self.mfn(), self.mfn_read()),
            _ => (self.mfn_read(), self.word()),
        }
    }

    fn memory_op(&mut self) -> [u32; 5] {
        use xen_abi::memory::*;
        let cmd = self.rng.below(16);
        let start = if self.rng.one_in(6) {
            self.rng.boundary_u32() >> 6
        } else {
            0
        };
        let mut full = cmd | (start << 6);
        let arg = match cmd {
            XENMEM_INCREASE_RESERVATION | XENMEM_POPULATE_PHYSMAP | XENMEM_DECREASE_RESERVATION => {
                let give = cmd == XENMEM_DECREASE_RESERVATION;
                let r = self.handle_ptr(20);
                if r.room.is_some() {
                    let (list, n) = self.extent_list(give);
                    self.reservation(r.va, list, n);
                }
                r.va
            }
            XENMEM_EXCHANGE => {
                let x = self.handle_ptr(44);
                if x.room.is_some() {
                    let (list, n) = self.extent_list(true);
                    self.reservation(x.va, list, n);
                    let (list, n) = self.extent_list(false);
                    self.reservation(x.va + 20, list, n);
                    let done = self.rng.pick(&[0, 0, 1, 0xFFFF_FFFF]);
                    self.put(x.va + 40, done);
                }
                x.va
            }
            XENMEM_MACHPHYS_MFN_LIST | XENMEM_MEMORY_MAP | XENMEM_MACHINE_MEMORY_MAP => {
                // {max/nr, buffer[, nr out]}: the buffer bounded by the count.
                let s = self.handle_ptr(12);
                if s.room.is_some() {
                    let size = if cmd == XENMEM_MACHPHYS_MFN_LIST {
                        4
                    } else {
                        20
                    };
                    let buf = self.ptr(512);
                    let n = self.count_for(buf, size);
                    self.put(s.va, n);
                    self.put(s.va + 4, buf.va);
                }
                s.va
            }
            XENMEM_SET_MEMORY_MAP => {
                let s = self.handle_ptr(12);
                if s.room.is_some() {
                    let buf = self.ptr(400);
                    let n = self.count_for(buf, 20);
                    let d = self.domid();
                    self.put16(s.va, d);
                    self.put(s.va + 4, n);
                    self.put(s.va + 8, buf.va);
                }
                s.va
            }
            XENMEM_CURRENT_RESERVATION | XENMEM_MAXIMUM_RESERVATION | XENMEM_MAXIMUM_GPFN => {
                let p = self.ptr(4);
                if p.room.is_some() {
                    let d = self.domid();
                    self.put16(p.va, d);
                }
                p.va
            }
            XENMEM_ADD_TO_PHYSMAP => {
                let p = self.ptr(16);
                if p.room.is_some() {
                    let d = self.domid();
                    self.put16(p.va, d);
                }
                p.va
            }
            XENMEM_MAXIMUM_RAM_PAGE => self.word(),
            // Commands Oxen does not serve (yet): their structures may hold handles.
            _ => self.handle_ptr(64).va,
        };
        if self.rng.one_in(40) {
            full = self.rng.boundary_u32();
        }
        [full, arg, 0, 0, 0]
    }

    /// An extent list: frames to give away (`give`: never protected ones)
    /// or room for frames Oxen writes back; (pointer, count).
    fn extent_list(&mut self, give: bool) -> (u32, u32) {
        if give {
            self.handle_array(4, 32, |g, e| {
                let m = g.mfn();
                g.put(e, m);
            })
        } else {
            let p = self.ptr(4 * 64);
            (p.va, self.count_for(p, 4))
        }
    }

    fn reservation(&mut self, at: u32, list: u32, n: u32) {
        let order = match self.rng.below(6) {
            0..=3 => 0,
            4 => self.rng.below(10),
            _ => self.rng.boundary_u32(),
        };
        let flags = match self.rng.below(4) {
            0 | 1 => 0,
            2 => self.rng.below(64),
            _ => self.rng.boundary_u32(),
        };
        let d = self.domid();
        self.put(at, list);
        self.put(at + 4, n);
        self.put(at + 8, order);
        self.put(at + 12, flags);
        self.put16(at + 16, d);
    }

    fn grant_table_op(&mut self) -> [u32; 5] {
        use xen_abi::grant::*;
        let cmd = if self.rng.one_in(12) {
            self.rng.boundary_u32()
        } else {
            // No dump_table: it prints the table (privileged, rate-limited
            // elsewhere in issue 10).
            self.rng
                .pick(&[0u32, 1, 2, 4, 5, 5, 6, 7, 8, 9, 10, 11, 12])
        };
        let (va, count) = match cmd {
            GNTTABOP_MAP_GRANT_REF => self.handle_array(32, 16, |g, e| {
                let flags = g.word() | if g.rng.one_in(2) { GNTMAP_HOST_MAP } else { 0 };
                let addr = if flags & GNTMAP_CONTAINS_PTE != 0 {
                    g.pt_maddr()
                } else {
                    u64::from(g.map_va())
                };
                let (r, d) = (g.rng.below(16), g.domid());
                g.put64(e, addr);
                g.put(e + 8, flags);
                g.put(e + 12, r);
                g.put16(e + 16, d);
            }),
            GNTTABOP_UNMAP_GRANT_REF | GNTTABOP_UNMAP_AND_REPLACE => self.array(24, 16, |g, e| {
                let (a, b) = (g.map_va(), g.map_va());
                g.put64(e, u64::from(a));
                g.put64(e + 8, u64::from(b));
            }),
            GNTTABOP_SETUP_TABLE => self.handle_array(16, 4, |g, e| {
                // {dom, nr_frames, status, frame_list}: frames written back.
                let out = g.ptr(64 * 4);
                let n = g.count_for(out, 4);
                let d = g.domid();
                g.put16(e, d);
                g.put(e + 4, n);
                g.put(e + 12, out.va);
            }),
            GNTTABOP_GET_STATUS_FRAMES => self.handle_array(16, 4, |g, e| {
                // {nr_frames, dom, status, frame_list (64-bit)}.
                let out = g.ptr(64 * 8);
                let n = g.count_for(out, 8);
                let d = g.domid();
                g.put(e, n);
                g.put16(e + 4, d);
                g.put64(e + 8, u64::from(out.va));
            }),
            GNTTABOP_TRANSFER => self.handle_array(16, 8, |g, e| {
                let m = g.mfn();
                g.put(e, m);
            }),
            GNTTABOP_COPY => self.handle_array(24, 16, |g, e| {
                // The frame fields (without GNTCOPY_*_gref): the source may
                // be read anywhere, the destination is never protected.
                let (src, dst) = (g.mfn_read(), g.mfn());
                let flags = g.rng.below(8) as u16;
                let any = g.rng.below(4097) as u16;
                let len = g.rng.pick(&[0u16, 1, 8, 4096, 4097, 0xFFFF, any]);
                if flags & GNTCOPY_SOURCE_GREF == 0 {
                    g.put(e, src);
                }
                if flags & GNTCOPY_DEST_GREF == 0 {
                    g.put(e + 8, dst);
                }
                g.put16(e + 16, len);
                g.put16(e + 18, flags);
            }),
            _ => {
                let p = self.ptr(64);
                (p.va, self.count_for(p, 16))
            }
        };
        [cmd, va, count, 0, 0]
    }

    fn vcpu_op(&mut self) -> [u32; 5] {
        use xen_abi::vcpu::*;
        let cmd = if self.rng.one_in(10) {
            self.rng.boundary_u32()
        } else {
            self.rng.below(15)
        };
        let mut vcpu = self
            .rng
            .pick(&[0u32, 0, 0, 1, 2, 31, 32, 0xFFFF_FFFF, 0x8000_0000]);
        if matches!(cmd, VCPUOP_DOWN | VCPUOP_SEND_NMI) && vcpu == 0 {
            vcpu = 1;
        }
        // The area registrations hold an address Oxen writes at every switch.
        let p = self.handle_ptr(if cmd == VCPUOP_INITIALISE { 2800 } else { 32 });
        if p.room.is_some() {
            match cmd {
                VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA | VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA => {
                    // Written at every switch: the fuzz window or a bad address.
                    let area = if self.rng.one_in(2) {
                        self.w.window + PAGE + self.rng.below((WINDOW - 2) * PAGE)
                    } else {
                        self.bad_ptr()
                    };
                    self.put64(p.va, u64::from(area));
                }
                VCPUOP_REGISTER_VCPU_INFO => {
                    // Never a frame it owns: vcpu_info holds the event mask.
                    let m = match self.rng.below(3) {
                        0 => self.other_mfn(),
                        1 => self.pick_live_pt(),
                        _ => self.rng.boundary_u32(),
                    };
                    self.put64(p.va, u64::from(m));
                }
                VCPUOP_SET_PERIODIC_TIMER | VCPUOP_SET_SINGLESHOT_TIMER => {
                    let t = self.u64_boundary();
                    self.put64(p.va, t);
                }
                _ => {}
            }
        }
        [cmd, vcpu, p.va, 0, 0]
    }

    fn sched_op(&mut self) -> [u32; 5] {
        use xen_abi::sched::*;
        // Not block (1) nor shutdown (2).
        let cmd = self.rng.pick(&[
            SCHEDOP_YIELD,
            SCHEDOP_POLL,
            SCHEDOP_POLL,
            SCHEDOP_REMOTE_SHUTDOWN,
            SCHEDOP_SHUTDOWN_CODE,
            SCHEDOP_WATCHDOG,
            7,
            0xFFFF_FFFF,
        ]);
        let p = self.ptr(16);
        if p.room.is_some() {
            match cmd {
                SCHEDOP_POLL => {
                    // The timeout is in the past: poll returns at once.
                    let ports = self.ptr(64);
                    let n = self.count_for(ports, 4);
                    self.put(p.va, ports.va);
                    self.put(p.va + 4, n);
                    let t = self.rng.pick(&[1u64, 2, 1000]);
                    self.put64(p.va + 8, t);
                }
                SCHEDOP_REMOTE_SHUTDOWN => {
                    let d = self.other_domid();
                    self.put16(p.va, d);
                }
                SCHEDOP_WATCHDOG => {
                    // Only deleting a watchdog that is not there.
                    let id = 1 + self.rng.below(8);
                    self.put(p.va, id);
                    self.put(p.va + 4, 0);
                }
                _ => {}
            }
        } else if cmd == SCHEDOP_REMOTE_SHUTDOWN {
            // Not memory that reads as {0, 0}: dom0 shutting itself down is
            // what Xen does with that.
            return [cmd, self.fault_ptr(), 0, 0, 0];
        } else if cmd == SCHEDOP_POLL {
            // A bad pointer poll must not block either: keep the call, not the wait.
            return [SCHEDOP_YIELD, 0, 0, 0, 0];
        }
        [cmd, p.va, 0, 0, 0]
    }

    /// A domain id that is not the caller itself (for the calls that act on
    /// a domain's life): in dom0 mode not 0 or DOMID_SELF.
    fn other_domid(&mut self) -> u16 {
        let d = self.domid();
        if self.w.mode == Mode::Dom0 && (d == 0 || d == 0x7FF0) {
            1000
        } else {
            d
        }
    }

    fn evtchn_cmd(&mut self) -> u32 {
        if self.rng.one_in(10) {
            self.rng.boundary_u32()
        } else {
            self.rng.below(16)
        }
    }

    fn physdev_cmd(&mut self) -> u32 {
        use xen_abi::physdev::*;
        let c = if self.rng.one_in(10) {
            self.rng.boundary_u32()
        } else {
            self.rng.below(26)
        };
        // No APIC writes: an I/O APIC reprogrammed from dom0 stops the machine's timer.
        if c == PHYSDEVOP_APIC_WRITE {
            PHYSDEVOP_APIC_READ
        } else {
            c
        }
    }

    fn physdev_fix(&mut self, cmd: u32, p: Ptr) {
        use xen_abi::physdev::*;
        if p.room.is_none() {
            return;
        }
        match cmd {
            PHYSDEVOP_SET_IOBITMAP => {
                let bitmap = self.ptr(128).va;
                self.put(p.va, bitmap);
            }
            PHYSDEVOP_PIRQ_EOI_GMFN => {
                let m = self.mfn();
                self.put(p.va, m);
            }
            _ => {}
        }
    }

    // ---- the privileged calls (dom0 mode) --------------------------------

    /// A `xen_sysctl` (no debug keys: 'R' would reboot the machine).
    fn sysctl(&mut self) -> u32 {
        use xen_abi::sysctl::*;
        let p = self.ptr(136);
        if p.room.is_none() {
            return p.va;
        }
        let cmd = if self.rng.one_in(10) {
            self.rng.boundary_u32()
        } else {
            self.rng.pick(&[1u32, 2, 3, 4, 6, 6, 8, 9, 10])
        };
        let cmd = if cmd == XEN_SYSCTL_DEBUG_KEYS { 0 } else { cmd };
        self.put(p.va, cmd);
        let v = if self.rng.one_in(10) {
            self.word()
        } else {
            XEN_SYSCTL_INTERFACE_VERSION
        };
        self.put(p.va + 4, v);
        let u = p.va + 8;
        match cmd {
            XEN_SYSCTL_READCONSOLE => {
                let buf = self.ptr(1024);
                let n = self.count_for(buf, 1);
                self.put(u + 8, buf.va);
                self.put(u + 12, 0);
                self.put(u + 16, n);
            }
            XEN_SYSCTL_GETDOMAININFOLIST => {
                let buf = self.ptr(4096);
                let n = self.count_for(buf, 128);
                let d = self.domid();
                self.put16(u, d);
                self.put(u + 4, n);
                self.put(u + 8, buf.va);
                self.put(u + 12, 0);
            }
            XEN_SYSCTL_GETCPUINFO => {
                let buf = self.ptr(256);
                let n = self.count_for(buf, 8);
                self.put(u, n);
                self.put(u + 8, buf.va);
                self.put(u + 12, 0);
            }
            _ => {
                // Any handle-looking field: safe.
                for i in 0..4 {
                    let b = self.ptr(256).va;
                    self.put(u + 8 * i, b);
                    self.put(u + 8 * i + 4, 0);
                }
                for i in 0..8 {
                    let w = self.word();
                    self.put(u + 32 + 4 * i, w);
                }
            }
        }
        p.va
    }

    /// A `xen_domctl` on an id of any class (its own 0 and DOMID_SELF too:
    /// Oxen must refuse to destroy or pause the caller).
    fn domctl(&mut self) -> u32 {
        let p = self.ptr(144);
        if p.room.is_none() {
            return p.va;
        }
        let cmd = if self.rng.one_in(12) {
            self.rng.boundary_u32()
        } else {
            self.rng.below(40)
        };
        self.put(p.va, cmd);
        let v = if self.rng.one_in(10) {
            self.word()
        } else {
            dc::XEN_DOMCTL_INTERFACE_VERSION
        };
        self.put(p.va + 4, v);
        let d = self.domid();
        self.put16(p.va + 8, d);
        let u = p.va + 16;
        // Handle fields get arena room, counts what fits.
        match cmd {
            dc::XEN_DOMCTL_GETMEMLIST
            | dc::XEN_DOMCTL_GETPAGEFRAMEINFO2
            | dc::XEN_DOMCTL_GETPAGEFRAMEINFO3 => {
                let buf = self.ptr(512);
                let n = self.count_for(buf, 8);
                self.put64(u, u64::from(n));
                self.put64(u + 8, u64::from(buf.va));
                let n = self.rng.pick(&[0, 1, u64::MAX]);
                self.put64(u + 16, n);
            }
            dc::XEN_DOMCTL_SETVCPUCONTEXT | dc::XEN_DOMCTL_GETVCPUCONTEXT => {
                let ctx = if self.rng.one_in(8) {
                    0
                } else {
                    self.ptr(2800).va
                };
                let vcpu = self.rng.pick(&[0u32, 0, 0, 1, 0xFFFF_FFFF]);
                self.put(u, vcpu);
                self.put64(u + 8, u64::from(ctx));
            }
            dc::XEN_DOMCTL_SETVCPUAFFINITY | dc::XEN_DOMCTL_GETVCPUAFFINITY => {
                let map = self.ptr(16);
                let bits = self.count_for(map, 1).saturating_mul(8);
                let vcpu = self.rng.below(2);
                self.put(u, vcpu);
                self.put64(u + 8, u64::from(map.va));
                self.put(u + 16, bits);
            }
            dc::XEN_DOMCTL_HYPERCALL_INIT => {
                // Oxen writes a hypercall page there: never a protected frame.
                let m = self.mfn();
                self.put64(u, u64::from(m));
            }
            dc::XEN_DOMCTL_GETHVMCONTEXT | dc::XEN_DOMCTL_SETHVMCONTEXT => {
                let buf = self.ptr(512);
                let n = self.count_for(buf, 1);
                self.put(u, n);
                self.put64(u + 8, u64::from(buf.va));
            }
            dc::XEN_DOMCTL_MAX_MEM => {
                let kb = self.u64_boundary();
                self.put64(u, kb);
            }
            dc::XEN_DOMCTL_IOMEM_PERMISSION => {
                let m = self.other_mfn();
                self.put64(u, u64::from(m));
            }
            _ => {
                // Unknown to Oxen or without handles: the random words stay,
                // but no field may look like a handle into the kernel.
            }
        }
        p.va
    }

    /// After a call: dom0 mode records the domains a `createdomain` made
    /// (destroying the oldest beyond four, so Oxen's memory is not exhausted
    /// by design: the id goes on being fuzzed as a stale one).
    pub(crate) fn after(&mut self, call: &Call, ret: i32) {
        if self.w.mode != Mode::Dom0 || call.nr != nr::DOMCTL || ret < 0 {
            return;
        }
        let va = call.args[0];
        if !in_arena(va, 144) {
            return;
        }
        // SAFETY: inside the arena (checked); Oxen wrote the result there.
        let (cmd, dom) = unsafe {
            (
                (va as *const u32).read_volatile(),
                ((va + 8) as *const u16).read_volatile(),
            )
        };
        if cmd == dc::XEN_DOMCTL_CREATEDOMAIN && dom != 0 && dom < 0x7FF0 {
            if self.created.iter().all(|&c| c != 0) {
                let oldest = self.created[0];
                destroy(oldest);
                self.created.rotate_left(1);
                self.created[3] = 0;
            }
            if let Some(slot) = self.created.iter_mut().find(|c| **c == 0) {
                *slot = dom;
            }
        }
    }

    /// dom0 mode: a domain of its own to aim the privileged calls at, with
    /// 16 frames populated (their machine frames become "foreign" frames).
    pub(crate) fn create_domain(&mut self) {
        let mut d = dc::XenDomctl::new(
            dc::XEN_DOMCTL_CREATEDOMAIN,
            0,
            &dc::XenDomctlCreatedomain::default(),
        );
        if hcall(nr::DOMCTL, [&mut d as *mut _ as u32, 0, 0, 0, 0]).is_err() {
            pvrt::println!("fuzz: createdomain failed");
            return;
        }
        let id = d.domain;
        self.created[0] = id;
        let mut mm = dc::XenDomctl::new(
            dc::XEN_DOMCTL_MAX_MEM,
            id,
            &dc::XenDomctlMaxMem { max_memkb: 1024 },
        );
        let _ = hcall(nr::DOMCTL, [&mut mm as *mut _ as u32, 0, 0, 0, 0]);
        let mut frames = [0u32; 16];
        for (i, f) in frames.iter_mut().enumerate() {
            *f = i as u32;
        }
        let res = xen_abi::memory::XenMemoryReservation {
            extent_start: frames.as_mut_ptr() as u32,
            nr_extents: 16,
            extent_order: 0,
            mem_flags: 0,
            domid: id,
            _pad: 0,
        };
        let n = hcall(
            nr::MEMORY_OP,
            [
                xen_abi::memory::XENMEM_POPULATE_PHYSMAP,
                &res as *const _ as u32,
                0,
                0,
                0,
            ],
        )
        .unwrap_or(0);
        self.foreign[..n as usize].copy_from_slice(&frames[..n as usize]);
        self.n_foreign = n as usize;
        pvrt::println!("fuzz: created domain {id} with {n} frames");
    }

    /// dom0 mode, at the end: destroys what it created.
    pub(crate) fn destroy_domains(&mut self) {
        for c in self.created {
            if c != 0 {
                destroy(c);
            }
        }
    }
}

/// Whether `len` bytes at `va` lie inside the arena (no wrap-around).
fn in_arena(va: u32, len: u32) -> bool {
    let base = Gen::arena_base();
    va >= base
        && va
            .checked_add(len)
            .is_some_and(|end| end <= base + ARENA_SIZE as u32)
}

/// Prints the first 48 bytes of each argument that points into the arena
/// (the structure the call reads), for a traced call.
pub(crate) fn dump_arena_args(call: &Call) {
    if call.nr == nr::MMU_UPDATE && in_arena(call.args[0], 16) {
        for i in 0..(call.args[1] & 0xFFFF).min(2048) {
            let e = call.args[0] + 16 * i;
            if !in_arena(e, 16) {
                break;
            }
            // SAFETY: inside the arena (checked).
            let w: [u32; 4] = unsafe { core::ptr::read_unaligned(e as *const [u32; 4]) };
            pvrt::println!(
                "fuzz:    req {i}: ptr {:#x}{:08x} val {:#x}{:08x}",
                w[1],
                w[0],
                w[3],
                w[2]
            );
        }
    }
    for (i, &a) in call.args.iter().enumerate() {
        if in_arena(a, 48) {
            // SAFETY: inside the arena (checked).
            let w: [u32; 12] = unsafe { core::ptr::read_unaligned(a as *const [u32; 12]) };
            pvrt::println!("fuzz:    arg{i} -> {w:08x?}");
        }
    }
}

fn destroy(id: u16) {
    let mut d = dc::XenDomctl::new(dc::XEN_DOMCTL_DESTROYDOMAIN, id, &0u32);
    let _ = hcall(nr::DOMCTL, [&mut d as *mut _ as u32, 0, 0, 0, 0]);
}

fn hcall(n: u32, args: [u32; 5]) -> Result<u32, xen_abi::errno::Errno> {
    // SAFETY: callers pass pointers to their own live structures.
    pvrt::hypercall::result(unsafe { pvrt::hypercall::raw(n, args) })
}

const MMU_UPDATE_PREEMPTED_BIT: u32 = nr::MMU_UPDATE_PREEMPTED;

/// The hypercalls Oxen serves, weighted: the MMU and memory families most.
const WEIGHTED: [u32; 48] = [
    nr::MMU_UPDATE,
    nr::MMU_UPDATE,
    nr::MMU_UPDATE,
    nr::MMU_UPDATE,
    nr::MMUEXT_OP,
    nr::MMUEXT_OP,
    nr::MMUEXT_OP,
    nr::MMUEXT_OP,
    nr::UPDATE_VA_MAPPING,
    nr::UPDATE_VA_MAPPING,
    nr::UPDATE_VA_MAPPING,
    nr::UPDATE_VA_MAPPING_OTHERDOMAIN,
    nr::MEMORY_OP,
    nr::MEMORY_OP,
    nr::MEMORY_OP,
    nr::GRANT_TABLE_OP,
    nr::GRANT_TABLE_OP,
    nr::GRANT_TABLE_OP,
    nr::MULTICALL,
    nr::MULTICALL,
    nr::EVENT_CHANNEL_OP,
    nr::EVENT_CHANNEL_OP,
    nr::EVENT_CHANNEL_OP_COMPAT,
    nr::VCPU_OP,
    nr::VCPU_OP,
    nr::SCHED_OP,
    nr::SCHED_OP_COMPAT,
    nr::SET_GDT,
    nr::UPDATE_DESCRIPTOR,
    nr::UPDATE_DESCRIPTOR,
    nr::SET_TRAP_TABLE,
    nr::STACK_SWITCH,
    nr::SET_CALLBACKS,
    nr::CALLBACK_OP,
    nr::NMI_OP,
    nr::FPU_TASKSWITCH,
    nr::SET_TIMER_OP,
    nr::XEN_VERSION,
    nr::CONSOLE_IO,
    nr::PHYSDEV_OP,
    nr::PHYSDEV_OP_COMPAT,
    nr::VM_ASSIST,
    nr::SET_DEBUGREG,
    nr::GET_DEBUGREG,
    nr::SET_SEGMENT_BASE,
    nr::DOMCTL,
    nr::DOMCTL,
    nr::SYSCTL,
];
