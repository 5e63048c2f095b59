//! Test fixtures: a writer of small Xen PAE kernels, a guest memory of pages that
//! remembers which were never written, a scrambled P2M, and an MMU-style walker of
//! the built page tables.

use std::collections::HashMap;
use std::fmt;

use xen_abi::elfnote::{
    XEN_ELFNOTE_ENTRY, XEN_ELFNOTE_FEATURES, XEN_ELFNOTE_GUEST_OS, XEN_ELFNOTE_HYPERCALL_PAGE,
    XEN_ELFNOTE_LOADER, XEN_ELFNOTE_PADDR_OFFSET, XEN_ELFNOTE_PAE_MODE, XEN_ELFNOTE_VIRT_BASE,
    XEN_ELFNOTE_XEN_VERSION,
};
use xen_abi::mm::{
    PAGE_ACCESSED, PAGE_DIRTY, PAGE_PRESENT, PAGE_RW, PAGE_USER, PTE_FRAME_MASK, pte_mfn,
};
use xen_abi::types::PAGE_SIZE;

use crate::{BuildError, BuildRequest, Built, GuestMemory, build};

pub const PAGE: usize = PAGE_SIZE;
/// What a frame holds before the builder writes it.
pub const GARBAGE: u8 = 0xA5;

// ---------------------------------------------------------------- kernels

/// One `PT_LOAD` segment: loaded at `paddr + VIRT_BASE − PADDR_OFFSET`.
#[derive(Clone, Debug)]
pub struct Segment {
    pub paddr: u32,
    pub bytes: Vec<u8>,
    pub memsz: u32,
}

/// How the kernel declares itself.
#[derive(Clone, Debug)]
pub enum Declarations {
    /// Xen ELF notes in a `PT_NOTE` segment.
    Notes {
        pae: Option<&'static str>,
        features: Option<&'static str>,
    },
    /// A `__xen_guest` section (no notes).
    Legacy(String),
}

/// A small kernel, written byte by byte.
#[derive(Clone, Debug)]
pub struct TestKernel {
    pub virt_base: u32,
    pub paddr_offset: u32,
    pub entry: u32,
    pub hypercall_page: Option<u32>,
    pub segments: Vec<Segment>,
    pub decl: Declarations,
}

/// Deterministic bytes for a segment or ramdisk.
pub fn pattern(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Never 0 and never GARBAGE, so loaded bytes are told apart from both.
            match x as u8 {
                0 | GARBAGE => 1,
                b => b,
            }
        })
        .collect()
}

impl TestKernel {
    /// A Linux-like kernel: VIRT_BASE 0xC0000000, PADDR_OFFSET 0, text at
    /// 0xC0100000 (3.5 pages, hypercall page at its second page), data at
    /// 0xC0105000 after a one-page gap, with 0x2345 bytes of bss.
    pub fn linux_like() -> Self {
        TestKernel {
            virt_base: 0xC000_0000,
            paddr_offset: 0,
            entry: 0xC010_0010,
            hypercall_page: Some(0xC010_1000),
            segments: vec![
                Segment {
                    paddr: 0x0010_0000,
                    bytes: pattern(1, 0x3800),
                    memsz: 0x3800,
                },
                Segment {
                    paddr: 0x0010_5000,
                    bytes: pattern(2, 0x1234),
                    memsz: 0x1234 + 0x2345,
                },
            ],
            decl: Declarations::Notes {
                pae: Some("yes"),
                features: None,
            },
        }
    }

    /// A Mini-OS-like kernel at VIRT_BASE 0 with a legacy `__xen_guest` string that
    /// declares plain `PAE=yes` (no extended-cr3).
    pub fn legacy_low() -> Self {
        TestKernel {
            virt_base: 0,
            paddr_offset: 0,
            entry: 0,
            hypercall_page: None,
            segments: vec![Segment {
                paddr: 0,
                bytes: pattern(3, 0x2100),
                memsz: 0x5000,
            }],
            decl: Declarations::Legacy(
                "GUEST_OS=Mini-OS,XEN_VER=xen-3.0,VIRT_BASE=0x0,ELF_PADDR_OFFSET=0x0,\
                 HYPERCALL_PAGE=0x1,PAE=yes,LOADER=generic"
                    .into(),
            ),
        }
    }

    /// Guest virtual address of segment `i`.
    pub fn segment_va(&self, i: usize) -> u32 {
        self.segments[i].paddr + self.virt_base - self.paddr_offset
    }

    pub fn build(&self) -> Vec<u8> {
        let notes = match &self.decl {
            Declarations::Notes { pae, features } => {
                let mut n = Vec::new();
                note_str(&mut n, XEN_ELFNOTE_XEN_VERSION, "xen-3.0");
                note_str(&mut n, XEN_ELFNOTE_GUEST_OS, "linux");
                note_str(&mut n, XEN_ELFNOTE_LOADER, "generic");
                if let Some(p) = pae {
                    note_str(&mut n, XEN_ELFNOTE_PAE_MODE, p);
                }
                if let Some(f) = features {
                    note_str(&mut n, XEN_ELFNOTE_FEATURES, f);
                }
                note_num(&mut n, XEN_ELFNOTE_VIRT_BASE, self.virt_base);
                note_num(&mut n, XEN_ELFNOTE_PADDR_OFFSET, self.paddr_offset);
                note_num(&mut n, XEN_ELFNOTE_ENTRY, self.entry);
                if let Some(h) = self.hypercall_page {
                    note_num(&mut n, XEN_ELFNOTE_HYPERCALL_PAGE, h);
                }
                Some(n)
            }
            Declarations::Legacy(_) => None,
        };
        let phnum = self.segments.len() + usize::from(notes.is_some());
        let mut out = vec![0u8; 52 + 32 * phnum];
        let mut phdrs = Vec::new();
        for s in &self.segments {
            align4(&mut out);
            let offset = out.len() as u32;
            out.extend_from_slice(&s.bytes);
            phdrs.push([
                1, // PT_LOAD
                offset,
                s.paddr + self.virt_base - self.paddr_offset,
                s.paddr,
                s.bytes.len() as u32,
                s.memsz,
                7,
                PAGE as u32,
            ]);
        }
        if let Some(n) = &notes {
            align4(&mut out);
            let offset = out.len() as u32;
            out.extend_from_slice(n);
            phdrs.push([4, offset, 0, 0, n.len() as u32, n.len() as u32, 4, 4]); // PT_NOTE
        }
        let mut shoff = 0u32;
        let mut shnum = 0u16;
        if let Declarations::Legacy(text) = &self.decl {
            let info_off = out.len() as u32;
            out.extend_from_slice(text.as_bytes());
            out.push(0);
            let info_len = out.len() as u32 - info_off;
            let names = b"\0__xen_guest\0.shstrtab\0";
            let names_off = out.len() as u32;
            out.extend_from_slice(names);
            align4(&mut out);
            shoff = out.len() as u32;
            shnum = 3;
            out.extend_from_slice(&[0u8; 40]);
            // name, type, flags, addr, offset, size, link, info, addralign, entsize
            for sh in [
                [1, 1, 0, 0, info_off, info_len, 0, 0, 1, 0],
                [13, 3, 0, 0, names_off, names.len() as u32, 0, 0, 1, 0],
            ] {
                for w in sh {
                    out.extend_from_slice(&w.to_le_bytes());
                }
            }
        }
        // ELF header.
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 1; // ELFCLASS32
        out[5] = 1; // ELFDATA2LSB
        out[6] = 1; // EV_CURRENT
        put16(&mut out, 16, 2); // ET_EXEC
        put16(&mut out, 18, 3); // EM_386
        put32(&mut out, 20, 1);
        put32(&mut out, 24, self.entry);
        put32(&mut out, 28, 52);
        put32(&mut out, 32, shoff);
        put16(&mut out, 40, 52);
        put16(&mut out, 42, 32);
        put16(&mut out, 44, phnum as u16);
        put16(&mut out, 46, 40);
        put16(&mut out, 48, shnum);
        put16(&mut out, 50, if shnum > 0 { 2 } else { 0 });
        for (i, ph) in phdrs.iter().enumerate() {
            for (j, w) in ph.iter().enumerate() {
                put32(&mut out, 52 + 32 * i + 4 * j, *w);
            }
        }
        out
    }
}

fn align4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

fn put16(v: &mut [u8], at: usize, x: u16) {
    v[at..at + 2].copy_from_slice(&x.to_le_bytes());
}

fn put32(v: &mut [u8], at: usize, x: u32) {
    v[at..at + 4].copy_from_slice(&x.to_le_bytes());
}

fn note(out: &mut Vec<u8>, n_type: u32, desc: &[u8]) {
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&n_type.to_le_bytes());
    out.extend_from_slice(b"Xen\0");
    out.extend_from_slice(desc);
    align4(out);
}

fn note_str(out: &mut Vec<u8>, n_type: u32, s: &str) {
    let mut d = s.as_bytes().to_vec();
    d.push(0);
    note(out, n_type, &d);
}

fn note_num(out: &mut Vec<u8>, n_type: u32, v: u32) {
    note(out, n_type, &v.to_le_bytes());
}

// ---------------------------------------------------------------- memory

/// A frame of [`TestMemory`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Page {
    /// Never written: reads as [`GARBAGE`].
    Untouched,
    /// Zeroed as a whole.
    Zero,
    Data(Box<[u8; PAGE]>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteRefused {
    pub pfn: u32,
}

impl fmt::Display for WriteRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mapping of pfn {} failed", self.pfn)
    }
}

/// The domain's frames, by pfn. Checks the [`GuestMemory`] contract on every call.
pub struct TestMemory {
    pub pages: Vec<Page>,
    /// Writes to this pfn fail.
    pub fail_at: Option<u32>,
    /// Calls made, in order: (pfn, offset, len); `zero` is (pfn, 0, 4096).
    pub calls: Vec<(u32, u32, usize)>,
}

impl TestMemory {
    pub fn new(nr_pages: u32) -> Self {
        TestMemory {
            pages: vec![Page::Untouched; nr_pages as usize],
            fail_at: None,
            calls: Vec::new(),
        }
    }

    pub fn page(&self, pfn: u32) -> [u8; PAGE] {
        match &self.pages[pfn as usize] {
            Page::Untouched => [GARBAGE; PAGE],
            Page::Zero => [0; PAGE],
            Page::Data(d) => **d,
        }
    }

    pub fn read(&self, pfn: u32, offset: usize, len: usize) -> Vec<u8> {
        self.page(pfn)[offset..offset + len].to_vec()
    }

    pub fn u32_at(&self, pfn: u32, offset: usize) -> u32 {
        u32::from_le_bytes(self.read(pfn, offset, 4).try_into().unwrap())
    }

    pub fn u64_at(&self, pfn: u32, offset: usize) -> u64 {
        u64::from_le_bytes(self.read(pfn, offset, 8).try_into().unwrap())
    }

    /// `len` bytes from guest virtual address `va` of a region based at `virt_base`.
    pub fn read_va(&self, virt_base: u32, va: u32, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| {
                let off = (va - virt_base) as usize + i;
                self.page((off / PAGE) as u32)[off % PAGE]
            })
            .collect()
    }
}

impl GuestMemory for TestMemory {
    type Error = WriteRefused;

    fn write(&mut self, pfn: u32, offset: u32, bytes: &[u8]) -> Result<(), WriteRefused> {
        assert!(
            offset as usize + bytes.len() <= PAGE,
            "write crosses a page: pfn {pfn} offset {offset} len {}",
            bytes.len()
        );
        assert!((pfn as usize) < self.pages.len(), "write beyond nr_pages");
        if self.fail_at == Some(pfn) {
            return Err(WriteRefused { pfn });
        }
        self.calls.push((pfn, offset, bytes.len()));
        let mut page = self.page(pfn);
        page[offset as usize..offset as usize + bytes.len()].copy_from_slice(bytes);
        self.pages[pfn as usize] = Page::Data(Box::new(page));
        Ok(())
    }

    fn zero(&mut self, pfn: u32) -> Result<(), WriteRefused> {
        assert!((pfn as usize) < self.pages.len(), "zero beyond nr_pages");
        if self.fail_at == Some(pfn) {
            return Err(WriteRefused { pfn });
        }
        self.calls.push((pfn, 0, PAGE));
        self.pages[pfn as usize] = Page::Zero;
        Ok(())
    }
}

// ---------------------------------------------------------------- requests

/// A scrambled P2M: a permutation of distinct MFNs, half of them above 4 GiB, so
/// that mfn != pfn everywhere and CR3 rotation matters.
pub fn scrambled_p2m(nr_pages: u32) -> Vec<u32> {
    let n = nr_pages as u64;
    // Multiplying by an odd constant modulo a power of two ≥ n permutes.
    let size = n.next_power_of_two().max(1);
    let mut out = Vec::with_capacity(nr_pages as usize);
    let mut i = 0u64;
    while (out.len() as u64) < n {
        let j = (i.wrapping_mul(0x9E37_79B1) + 12345) % size;
        i += 1;
        if j < n {
            let base = if j.is_multiple_of(2) {
                0x0004_0000
            } else {
                0x0020_0000
            };
            out.push(base + (j as u32) * 3);
        }
    }
    out
}

/// Owns what a [`BuildRequest`] borrows.
pub struct Setup {
    pub kernel: TestKernel,
    pub image: Vec<u8>,
    pub ramdisk: Option<Vec<u8>>,
    pub cmdline: String,
    pub nr_pages: u32,
    pub mfns: Vec<u32>,
    pub shared_info_mfn: u32,
    pub offered_features: u32,
}

impl Setup {
    pub fn new(kernel: TestKernel, nr_pages: u32) -> Self {
        Setup {
            image: kernel.build(),
            kernel,
            ramdisk: None,
            cmdline: "root=/dev/xvda1 ro console=hvc0".into(),
            nr_pages,
            mfns: scrambled_p2m(nr_pages),
            shared_info_mfn: 0x7_1234,
            offered_features: 0,
        }
    }

    pub fn request(&self) -> BuildRequest<'_> {
        BuildRequest {
            domid: 7,
            kernel: &self.image,
            ramdisk: self.ramdisk.as_deref(),
            cmdline: &self.cmdline,
            nr_pages: self.nr_pages,
            mfns: &self.mfns,
            shared_info_mfn: self.shared_info_mfn,
            store_evtchn: 3,
            console_evtchn: 4,
            offered_features: self.offered_features,
        }
    }

    pub fn run(&self) -> (Result<Built, BuildError<WriteRefused>>, TestMemory) {
        let mut mem = TestMemory::new(self.nr_pages);
        let r = build(&self.request(), &mut mem);
        (r, mem)
    }

    pub fn built(&self) -> (Built, TestMemory) {
        let (r, mem) = self.run();
        match r {
            Ok(b) => (b, mem),
            Err(e) => panic!("build failed: {e}"),
        }
    }

    pub fn m2p(&self) -> HashMap<u32, u32> {
        self.mfns
            .iter()
            .enumerate()
            .map(|(pfn, &mfn)| (mfn, pfn as u32))
            .collect()
    }
}

// ---------------------------------------------------------------- MMU walk

// Short names for the PAE entry bits the assertions spell out.
pub const P: u64 = PAGE_PRESENT;
pub const RW: u64 = PAGE_RW;
pub const US: u64 = PAGE_USER;
pub const A: u64 = PAGE_ACCESSED;
pub const D: u64 = PAGE_DIRTY;

/// A translation of one virtual address, with the entry flags met on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walk {
    pub pfn: u32,
    pub l3_flags: u64,
    pub l2_flags: u64,
    pub l1_flags: u64,
}

/// Walks `va` from the L3 at machine frame `l3_mfn` as the MMU would, turning each
/// MFN back into a pfn through `m2p`. `None` if some level is not present.
pub fn walk(mem: &TestMemory, m2p: &HashMap<u32, u32>, l3_mfn: u32, va: u32) -> Option<Walk> {
    let table = |mfn: u64| -> u32 {
        *m2p.get(&(mfn as u32))
            .expect("entry points at a frame of the domain")
    };
    let l3_pfn = table(u64::from(l3_mfn));
    let l3e = mem.u64_at(l3_pfn, 8 * (va >> 30) as usize);
    if l3e & P == 0 {
        return None;
    }
    let l2e = mem.u64_at(table(pte_mfn(l3e)), 8 * ((va >> 21) & 0x1FF) as usize);
    if l2e & P == 0 {
        return None;
    }
    let l1e = mem.u64_at(table(pte_mfn(l2e)), 8 * ((va >> 12) & 0x1FF) as usize);
    if l1e & P == 0 {
        return None;
    }
    Some(Walk {
        pfn: table(pte_mfn(l1e)),
        l3_flags: l3e & !PTE_FRAME_MASK,
        l2_flags: l2e & !PTE_FRAME_MASK,
        l1_flags: l1e & !PTE_FRAME_MASK,
    })
}

/// Every present entry of a table frame: (index, entry).
pub fn present_entries(mem: &TestMemory, pfn: u32) -> Vec<(usize, u64)> {
    (0..512)
        .map(|i| (i, mem.u64_at(pfn, 8 * i)))
        .filter(|&(_, e)| e & P != 0)
        .collect()
}
