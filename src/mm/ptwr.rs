//! Writable page tables (`VMASST_TYPE_writable_pagetables`): a guest kernel's
//! store to one of its L1 tables, which are always mapped read-only, faults;
//! Oxen decodes the store (`hv_core::ptwr`), validates the resulting entry
//! through the engine exactly as `mmu_update` would, performs it, and skips the
//! instruction. A store that would break the page-table rules is not done and
//! stays a page fault for the guest.

use core::fmt;

use hv_core::addr::Mfn;
use hv_core::ptwr::{self, EAX, MAX_INSN_LEN, PtWrite, Regs, merge_write};
use pv_mm::{Machine, PageType};
use xen_abi::errno::Errno;
use xen_abi::mm::{PAGE_PRESENT, PAGE_RW, pte_mfn};

use super::frame_table::MM;
use crate::arch::x86::cpu;
use crate::arch::x86::traps::TrapFrame;
use crate::arch::x86::uaccess::copy_from_guest;
use crate::domain::Domain;

/// EFLAGS.ZF.
const EFLAGS_ZF: u32 = 1 << 6;

/// Why a fault was not emulated.
#[derive(Debug)]
pub enum PtwrError {
    /// The faulting address is not mapped read-only onto one of the domain's L1s.
    NotAPageTableWrite,
    /// The instruction could not be read or is not an emulated store.
    Decode(Option<ptwr::DecodeError>),
    /// A store that straddles two entries.
    Misaligned,
    /// The engine refused the new entry.
    Refused(Errno),
}

impl fmt::Display for PtwrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAPageTableWrite => f.write_str("not a write to one of the domain's L1 tables"),
            Self::Decode(Some(e)) => write!(f, "{e}"),
            Self::Decode(None) => f.write_str("instruction bytes unreadable"),
            Self::Misaligned => f.write_str("store straddles two entries"),
            Self::Refused(e) => write!(f, "entry refused ({e})"),
        }
    }
}

fn fetch_insn(eip: u32) -> Option<([u8; MAX_INSN_LEN], usize)> {
    let mut buf = [0u8; MAX_INSN_LEN];
    // The instruction may end just before an unmapped page: try shorter reads.
    (1..=MAX_INSN_LEN)
        .rev()
        .find(|&n| copy_from_guest(&mut buf[..n], eip).is_ok())
        .map(|n| (buf, n))
}

/// Emulates the store that faulted at `cr2` with `frame`'s registers.
pub fn emulate(frame: &mut TrapFrame, dom: &mut Domain, cr2: u32) -> Result<(), PtwrError> {
    let caller = dom.caller();
    let mut guard = MM.lock();
    let mm = guard.as_mut().expect("frame table initialised");
    // Which frame does the faulting address hit, and is it one of our L1s?
    let (l1, idx) = mm
        .l1_slot_for_va(dom.vcpu.cr3, cr2)
        .map_err(|_| PtwrError::NotAPageTableWrite)?;
    let pte = mm.machine.read_pte(l1, idx);
    if pte & PAGE_PRESENT == 0 || pte & PAGE_RW != 0 {
        return Err(PtwrError::NotAPageTableWrite);
    }
    let table = Mfn(pte_mfn(pte));
    let info = mm.page_info(table).ok_or(PtwrError::NotAPageTableWrite)?;
    if info.owner() != dom.domid || info.page_type() != Some(PageType::L1) || info.type_count() == 0
    {
        return Err(PtwrError::NotAPageTableWrite);
    }

    let (bytes, n) = fetch_insn(frame.eip).ok_or(PtwrError::Decode(None))?;
    let regs = Regs([
        frame.eax, frame.ecx, frame.edx, frame.ebx, frame.esp, frame.ebp, frame.esi, frame.edi,
    ]);
    let insn = ptwr::decode(&bytes[..n], &regs).map_err(|e| PtwrError::Decode(Some(e)))?;
    let index = ((cr2 & 0xFFF) / 8) as usize;
    let offset = cr2 & 7;
    let old = mm.machine.read_pte(table, index);
    crate::guest_log!(
        dom,
        Debug,
        "ptwr: d{} eip {:#010x} cr2 {:#010x} {:?} len {} entry {}:{} old {:#x}",
        dom.domid,
        frame.eip,
        cr2,
        insn.write,
        insn.len,
        table,
        index,
        old
    );
    let half = |v: u64| {
        if offset == 4 {
            (v >> 32) as u32
        } else {
            v as u32
        }
    };

    let mut zf = None;
    let mut load = None;
    let new = match insn.write {
        PtWrite::Store { width, value } => {
            Some(merge_write(old, offset, width, value).ok_or(PtwrError::Misaligned)?)
        }
        PtWrite::Xchg { reg, value } => {
            load = Some((reg, half(old)));
            Some(merge_write(old, offset, 4, u64::from(value)).ok_or(PtwrError::Misaligned)?)
        }
        PtWrite::CmpXchg {
            width: 8,
            expected,
            new,
        } => {
            if offset != 0 {
                return Err(PtwrError::Misaligned);
            }
            if old == expected {
                zf = Some(true);
                Some(new)
            } else {
                zf = Some(false);
                load = Some((EAX, old as u32));
                frame.edx = (old >> 32) as u32;
                None
            }
        }
        PtWrite::CmpXchg { expected, new, .. } => {
            if u64::from(half(old)) == expected {
                zf = Some(true);
                Some(merge_write(old, offset, 4, new).ok_or(PtwrError::Misaligned)?)
            } else {
                zf = Some(false);
                load = Some((EAX, half(old)));
                None
            }
        }
    };
    // Everything that can fail is above this line: the entry is committed only
    // when the whole instruction can complete.
    if let Some(new) = new {
        mm.mod_l1_entry(table, index, new, &caller, dom.domid, false)
            .map_err(PtwrError::Refused)?;
    }
    drop(guard);
    if let Some((reg, v)) = load {
        *frame.reg_mut(reg) = v;
    }
    if let Some(z) = zf {
        frame.eflags = if z {
            frame.eflags | EFLAGS_ZF
        } else {
            frame.eflags & !EFLAGS_ZF
        };
    }
    frame.eip = frame.eip.wrapping_add(u32::from(insn.len));
    cpu::flush_tlb_local();
    Ok(())
}
