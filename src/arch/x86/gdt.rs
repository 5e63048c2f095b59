//! The GDT and the task-state segments.
//!
//! Oxen's GDT is laid out as Xen's: 16 pages, of which the first
//! `FIRST_RESERVED_GDT_PAGE` (14) will hold a guest's own descriptors and the rest
//! are the hypervisor's, holding the flat selectors every PV guest relies on
//! (0xE008/0xE010 ring 0, 0xE019/0xE021 ring 1, 0xE02B/0xE033 ring 3) and Oxen's
//! TSS. Guest segments end at `GUEST_SEGMENT_LIMIT_END` (0xF6800000): ring 1 is a
//! supervisor ring for paging, so segmentation is what keeps guests out of Oxen.
//!
//! A second TSS, reached through a task gate on #DF, gives the double-fault
//! handler a known-good stack and page table, so even a kernel stack overflow is
//! reported instead of triple-faulting.

use core::sync::atomic::{AtomicU64, Ordering};

use super::DescriptorTablePointer;

use xen_abi::layout::GUEST_SEGMENT_LIMIT_END;
use xen_abi::selectors::{
    FIRST_RESERVED_GDT_ENTRY, FLAT_RING0_CS, FLAT_RING0_DS, FLAT_RING1_CS, FLAT_RING1_DS,
    FLAT_RING3_CS, FLAT_RING3_DS, selector_index,
};

/// Descriptors in the whole GDT (16 pages).
pub const GDT_ENTRIES: usize = 16 * 512;
/// Oxen's TSS (`__FIRST_TSS_ENTRY` in Xen's numbering).
pub const TSS_SELECTOR: u16 = ((FIRST_RESERVED_GDT_ENTRY + 8) * 8) as u16;
/// The LDT descriptor (the running vcpu's LDT, shadowed in `LDT`).
pub const LDT_SELECTOR: u16 = ((FIRST_RESERVED_GDT_ENTRY + 9) * 8) as u16;
/// The double-fault task's TSS.
pub const DF_TSS_SELECTOR: u16 = ((FIRST_RESERVED_GDT_ENTRY + 10) * 8) as u16;

const ACCESS_PRESENT: u64 = 1 << 7;
const ACCESS_CODE_DATA: u64 = 1 << 4;
const TYPE_CODE_READ: u64 = 0xA;
const TYPE_DATA_WRITE: u64 = 0x2;
const TYPE_TSS_AVAILABLE: u64 = 0x9;
const FLAG_GRANULARITY_4K: u64 = 1 << 3;
const FLAG_SIZE_32: u64 = 1 << 2;

/// Encodes a segment descriptor from base, limit (in its granularity units),
/// access byte and the flags nibble.
const fn descriptor(base: u32, limit: u32, access: u64, flags: u64) -> u64 {
    let base = base as u64;
    let limit = limit as u64;
    (limit & 0xFFFF)
        | ((base & 0xFF_FFFF) << 16)
        | (access << 40)
        | (((limit >> 16) & 0xF) << 48)
        | (flags << 52)
        | (((base >> 24) & 0xFF) << 56)
}

/// A flat 32-bit code or data segment of privilege `dpl` ending at `end` (exclusive,
/// 4 KiB aligned; 0 means 4 GiB).
const fn flat_segment(code: bool, dpl: u64, end: u32) -> u64 {
    let ty = if code {
        TYPE_CODE_READ
    } else {
        TYPE_DATA_WRITE
    };
    let limit_pages = (end.wrapping_sub(1)) >> 12;
    descriptor(
        0,
        limit_pages,
        ACCESS_PRESENT | (dpl << 5) | ACCESS_CODE_DATA | ty,
        FLAG_GRANULARITY_4K | FLAG_SIZE_32,
    )
}

/// The hardware 32-bit task-state segment.
#[repr(C, align(128))]
pub struct Tss {
    pub link: u32,
    pub esp0: u32,
    pub ss0: u32,
    pub esp1: u32,
    pub ss1: u32,
    pub esp2: u32,
    pub ss2: u32,
    pub cr3: u32,
    pub eip: u32,
    pub eflags: u32,
    pub eax: u32,
    pub ecx: u32,
    pub edx: u32,
    pub ebx: u32,
    pub esp: u32,
    pub ebp: u32,
    pub esi: u32,
    pub edi: u32,
    pub es: u32,
    pub cs: u32,
    pub ss: u32,
    pub ds: u32,
    pub fs: u32,
    pub gs: u32,
    pub ldt: u32,
    pub trap: u16,
    pub iomap_base: u16,
}

const TSS_SIZE: usize = 104;
const _: () = assert!(core::mem::offset_of!(Tss, iomap_base) == 102);

impl Tss {
    const fn empty() -> Self {
        Self {
            link: 0,
            esp0: 0,
            ss0: 0,
            esp1: 0,
            ss1: 0,
            esp2: 0,
            ss2: 0,
            cr3: 0,
            eip: 0,
            eflags: 0,
            eax: 0,
            ecx: 0,
            edx: 0,
            ebx: 0,
            esp: 0,
            ebp: 0,
            esi: 0,
            edi: 0,
            es: 0,
            cs: 0,
            ss: 0,
            ds: 0,
            fs: 0,
            gs: 0,
            ldt: 0,
            trap: 0,
            // No I/O bitmap: the offset lies beyond the segment limit.
            iomap_base: TSS_SIZE as u16,
        }
    }
}

/// A TSS the CPU reads and writes behind Rust's back.
pub struct TssCell(core::cell::UnsafeCell<Tss>);
// SAFETY: Oxen runs on one CPU; the TSS is written only during bring-up (before
// any task switch) and afterwards by the CPU itself or read in the #DF report.
unsafe impl Sync for TssCell {}

impl TssCell {
    pub fn get(&self) -> *mut Tss {
        self.0.get()
    }
}

static GDT: [AtomicU64; GDT_ENTRIES] = [const { AtomicU64::new(0) }; GDT_ENTRIES];
/// The TSS of the (only) CPU: ring-0 stack for traps from rings 1 and 3.
pub static TSS: TssCell = TssCell(core::cell::UnsafeCell::new(Tss::empty()));
/// The TSS of the double-fault task.
pub static DF_TSS: TssCell = TssCell(core::cell::UnsafeCell::new(Tss::empty()));

#[repr(C, align(16))]
struct DfStack([u8; 16 * 1024]);
static mut DF_STACK: DfStack = DfStack([0; 16 * 1024]);

fn set(index: usize, desc: u64) {
    GDT[index].store(desc, Ordering::Relaxed);
}

fn tss_descriptor(tss: &TssCell) -> u64 {
    let base = tss.get() as u32;
    descriptor(
        base,
        (TSS_SIZE - 1) as u32,
        ACCESS_PRESENT | TYPE_TSS_AVAILABLE,
        0,
    )
}

/// Builds the GDT and both TSSs, loads GDTR and TR, and reloads every segment
/// register with Oxen's flat ring-0 selectors.
///
/// `df_entry` is the double-fault task's entry point, `idle_cr3` the page table
/// it runs on, `ring0_stack_top` the stack used for traps from guest rings.
pub fn init(df_entry: u32, idle_cr3: u32, ring0_stack_top: u32) {
    let end = GUEST_SEGMENT_LIMIT_END;
    set(selector_index(FLAT_RING0_CS), flat_segment(true, 0, 0));
    set(selector_index(FLAT_RING0_DS), flat_segment(false, 0, 0));
    set(selector_index(FLAT_RING1_CS), flat_segment(true, 1, end));
    set(selector_index(FLAT_RING1_DS), flat_segment(false, 1, end));
    set(selector_index(FLAT_RING3_CS), flat_segment(true, 3, end));
    set(selector_index(FLAT_RING3_DS), flat_segment(false, 3, end));

    // SAFETY: single CPU, interrupts off, no task switch has happened yet: nobody
    // else reads or writes either TSS while we fill them in.
    unsafe {
        let tss = &mut *TSS.get();
        tss.ss0 = u32::from(FLAT_RING0_DS);
        tss.esp0 = ring0_stack_top;

        let df = &mut *DF_TSS.get();
        let df_stack = core::ptr::addr_of_mut!(DF_STACK) as u32;
        df.esp = df_stack + core::mem::size_of::<DfStack>() as u32 - 16;
        df.esp0 = df.esp;
        df.ss0 = u32::from(FLAT_RING0_DS);
        df.eip = df_entry;
        df.eflags = 0x2; // interrupts off
        df.cr3 = idle_cr3;
        df.cs = u32::from(FLAT_RING0_CS);
        df.ss = u32::from(FLAT_RING0_DS);
        df.ds = u32::from(FLAT_RING0_DS);
        df.es = u32::from(FLAT_RING0_DS);
    }
    set(selector_index(TSS_SELECTOR), tss_descriptor(&TSS));
    set(selector_index(DF_TSS_SELECTOR), tss_descriptor(&DF_TSS));

    let ptr = DescriptorTablePointer {
        limit: (GDT_ENTRIES * 8 - 1) as u16,
        base: GDT.as_ptr() as u32,
    };
    // SAFETY: the GDT is a static that lives forever and holds valid flat
    // descriptors at the selectors loaded here; the far return reloads CS with the
    // ring-0 code segment, which covers all of Oxen's code.
    unsafe {
        core::arch::asm!(
            "lgdt [{ptr}]",
            "push {cs}",
            "lea {tmp}, [2f]",
            "push {tmp}",
            "retf",
            "2:",
            "mov ds, {ds:x}",
            "mov es, {ds:x}",
            "mov ss, {ds:x}",
            "xor {tmp}, {tmp}",
            "mov fs, {tmp:x}",
            "mov gs, {tmp:x}",
            "ltr {tr:x}",
            ptr = in(reg) &ptr,
            cs = in(reg) u32::from(FLAT_RING0_CS),
            ds = in(reg) u32::from(FLAT_RING0_DS),
            tr = in(reg) u32::from(TSS_SELECTOR),
            tmp = out(reg) _,
        );
    }
}

/// Sets guest descriptor `index` (below `FIRST_RESERVED_GDT_ENTRY`) of the
/// GDT, a shadow of the guest's own GDT frames; the caller checked `desc`.
pub fn set_guest_entry(index: usize, desc: u64) {
    assert!(index < FIRST_RESERVED_GDT_ENTRY);
    set(index, desc);
}

/// Entries an LDT may have.
pub const LDT_ENTRIES: usize = 8192;

/// The shadow of the running vcpu's LDT (checked guest descriptors).
static LDT: [AtomicU64; LDT_ENTRIES] = [const { AtomicU64::new(0) }; LDT_ENTRIES];

/// Sets entry `index` of the shadow LDT; the caller checked `desc`.
pub fn set_ldt_entry(index: usize, desc: u64) {
    LDT[index].store(desc, Ordering::Relaxed);
}

/// Loads an LDT of `entries` descriptors (0 = none) from the shadow.
pub fn load_ldt(entries: usize) {
    const TYPE_LDT: u64 = 0x2;
    let sel = if entries == 0 {
        0
    } else {
        let base = LDT.as_ptr() as u32;
        set(
            selector_index(LDT_SELECTOR),
            descriptor(base, (entries * 8 - 1) as u32, ACCESS_PRESENT | TYPE_LDT, 0),
        );
        LDT_SELECTOR
    };
    // SAFETY: the selector is null or names the LDT descriptor just written,
    // whose table is a static of checked guest descriptors.
    unsafe { core::arch::asm!("lldt {:x}", in(reg) sel, options(nostack, preserves_flags)) };
}

/// Sets the ring-0 stack the CPU switches to on a trap from a guest ring.
pub fn set_ring0_stack(top: u32) {
    // SAFETY: a single aligned store to a field the CPU reads only on a ring
    // transition, which cannot happen while Oxen runs on this one CPU.
    unsafe { (*TSS.get()).esp0 = top };
}

/// Sets the ring-1 stack the CPU switches to when ring 3 enters the guest
/// kernel through a direct gate (`int $0x80`): the vcpu's `stack_switch`
/// stack. Only the direct gate uses it; every other trap enters Oxen.
pub fn set_ring1_stack(ss: u16, top: u32) {
    // SAFETY: aligned stores to fields the CPU reads only on a ring
    // transition, which cannot happen while Oxen runs on this one CPU.
    unsafe {
        (*TSS.get()).ss1 = u32::from(ss);
        (*TSS.get()).esp1 = top;
    }
}

/// The descriptor selector `sel` names for the running vcpu: an entry of
/// the GDT (guest entries are the checked shadow of its own GDT, the
/// reserved ones Oxen's) or, for a TI=1 selector, of the shadow LDT when
/// `ldt_ents` entries are loaded. `None` for the null selector or an index
/// beyond the table.
pub fn descriptor_for(sel: u16, ldt_ents: usize) -> Option<u64> {
    let index = usize::from(sel >> 3);
    if sel & 4 != 0 {
        (index < ldt_ents.min(LDT_ENTRIES)).then(|| LDT[index].load(Ordering::Relaxed))
    } else {
        (index != 0 && index < GDT_ENTRIES).then(|| GDT[index].load(Ordering::Relaxed))
    }
}
