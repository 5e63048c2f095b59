//! `set_gdt` (#2), `update_descriptor` (#10) and `MMUEXT_SET_LDT`
//! (XEN-PV-ABI.md §6.8–6.9).
//!
//! The guest's GDT frames take the `seg_desc` type (so nothing can map them
//! writable, and every descriptor in them passed `check_descriptor`); Oxen's
//! own GDT holds a shadow of their entries below `FIRST_RESERVED_GDT_ENTRY`,
//! kept in step by `update_descriptor`, the only way the frames change. (One
//! vcpu per domain makes a shadow copy enough; Xen maps the frames instead.)
//! The LDT works the same way: the frames behind its linear range take the
//! `seg_desc` type when it is set (Xen does this lazily, on first use), and
//! Oxen loads a shadow of their descriptors.

use hv_core::addr::Mfn;
use hv_core::descriptor::{set_gdt_frames, update_descriptor_args};
use hv_core::hypercall::Outcome;
use pv_mm::PageType;
use xen_abi::errno::Errno;
use xen_abi::selectors::FIRST_RESERVED_GDT_ENTRY;

use super::Ctx;
use crate::arch::x86::{gdt, uaccess::read_guest};
use crate::domain::Domain;
use crate::mm::frame_table::MM;
use crate::mm::mapcache;

/// Descriptors per page.
const PER_PAGE: usize = 512;

/// Fills the guest part of Oxen's GDT from the vcpu's GDT frames (and clears
/// the entries beyond them).
pub fn load_shadow(dom: &Domain) {
    let mut index = 0usize;
    for &mfn in &dom.vcpu.gdt_frames {
        let m = mapcache::map_frame(mfn);
        for slot in 0..PER_PAGE {
            if index >= dom.vcpu.gdt_ents as usize {
                break;
            }
            // SAFETY: slot < 512 inside the mapped frame.
            let d = unsafe { (m.as_mut_ptr() as *const u64).add(slot).read_volatile() };
            gdt::set_guest_entry(index, d);
            index += 1;
        }
    }
    for i in index..FIRST_RESERVED_GDT_ENTRY {
        gdt::set_guest_entry(i, 0);
    }
}

fn set_gdt(dom: &mut Domain, frame_list: u32, entries: u32) -> Result<i32, Errno> {
    let nr = set_gdt_frames(entries)?;
    let mut frames: heapless::Vec<Mfn, 14> = heapless::Vec::new();
    for i in 0..nr {
        let mfn = read_guest::<u32>(frame_list.wrapping_add(4 * i as u32))?;
        let _ = frames.push(Mfn(u64::from(mfn)));
    }
    let mut guard = MM.lock();
    let mm = guard.as_mut().expect("frame table initialised");
    for (i, &mfn) in frames.iter().enumerate() {
        if let Err(e) = mm.get_page_and_type(mfn, dom.domid, PageType::SegDesc) {
            for &taken in &frames[..i] {
                mm.put_page_and_type(taken);
            }
            return Err(e);
        }
    }
    for &old in &dom.vcpu.gdt_frames {
        mm.put_page_and_type(old);
    }
    drop(guard);
    dom.vcpu.gdt_frames = frames;
    dom.vcpu.gdt_ents = entries;
    load_shadow(dom);
    Ok(0)
}

fn update_descriptor(dom: &mut Domain, args: [u32; 4]) -> Result<i32, Errno> {
    let [ma_lo, ma_hi, lo, hi] = args;
    let u = update_descriptor_args(ma_lo, ma_hi, lo, hi)?;
    let mut guard = MM.lock();
    let mm = guard.as_mut().expect("frame table initialised");
    let info = mm.page_info(u.mfn).ok_or(Errno::EINVAL)?;
    if info.owner() != dom.domid {
        return Err(Errno::EINVAL);
    }
    let is_descriptor_page = info.page_type() == Some(PageType::SegDesc) && info.type_count() > 0;
    if !is_descriptor_page {
        // An ordinary page of the caller's: it must be able to be writable.
        mm.get_page_and_type(u.mfn, dom.domid, PageType::Writable)?;
    }
    let m = mapcache::map_frame(u.mfn);
    // SAFETY: slot < 512 inside the mapped frame; descriptor pages are written
    // only here (nobody can map them writable).
    unsafe {
        (m.as_mut_ptr() as *mut u64)
            .add(u.slot)
            .write_volatile(u.desc.to_u64())
    };
    drop(m);
    if !is_descriptor_page {
        mm.put_page_and_type(u.mfn);
    }
    drop(guard);
    if let Some(k) = dom.vcpu.gdt_frames.iter().position(|&f| f == u.mfn) {
        let index = k * PER_PAGE + u.slot;
        if index < dom.vcpu.gdt_ents as usize {
            gdt::set_guest_entry(index, u.desc.to_u64());
        }
    }
    if let Some(k) = dom.vcpu.ldt_frames.iter().position(|&f| f == u.mfn) {
        let index = k * PER_PAGE + u.slot;
        if index < dom.vcpu.ldt_ents as usize {
            gdt::set_ldt_entry(index, u.desc.to_u64());
        }
    }
    Ok(0)
}

/// `MMUEXT_SET_LDT(base, ents)` (arguments already checked): takes the
/// `seg_desc` type on the frames mapped at `[base, base + ents * 8)` in the
/// current address space, drops the previous LDT's, and loads the shadow.
pub fn set_ldt(dom: &mut Domain, base: u32, ents: u32) -> Result<(), Errno> {
    use pv_mm::Machine;
    let pages = (ents as usize * 8).div_ceil(4096);
    let mut frames: heapless::Vec<Mfn, 16> = heapless::Vec::new();
    let mut guard = MM.lock();
    let mm = guard.as_mut().expect("frame table initialised");
    let mut failed = None;
    for i in 0..pages {
        let va = base + (i * 4096) as u32;
        let mfn = mm.l1_slot_for_va(dom.vcpu.cr3, va).and_then(|(l1, idx)| {
            let pte = mm.machine.read_pte(l1, idx);
            if pte & xen_abi::mm::PAGE_PRESENT == 0 {
                return Err(Errno::EINVAL);
            }
            Ok(Mfn(xen_abi::mm::pte_mfn(pte)))
        });
        match mfn.and_then(|m| {
            mm.get_page_and_type(m, dom.domid, PageType::SegDesc)
                .map(|()| m)
        }) {
            Ok(m) => {
                let _ = frames.push(m);
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if let Some(e) = failed {
        for &m in &frames {
            mm.put_page_and_type(m);
        }
        return Err(e);
    }
    for &old in &dom.vcpu.ldt_frames {
        mm.put_page_and_type(old);
    }
    drop(guard);
    dom.vcpu.ldt_frames = frames;
    dom.vcpu.ldt_base = base;
    dom.vcpu.ldt_ents = ents;
    load_shadow_ldt(dom);
    Ok(())
}

/// Fills the shadow LDT from the vcpu's LDT frames and loads it (none when
/// the vcpu has no LDT).
pub fn load_shadow_ldt(dom: &Domain) {
    let ents = dom.vcpu.ldt_ents as usize;
    let mut index = 0usize;
    for &mfn in &dom.vcpu.ldt_frames {
        let m = mapcache::map_frame(mfn);
        for slot in 0..PER_PAGE {
            if index >= ents {
                break;
            }
            // SAFETY: slot < 512 inside the mapped frame.
            let d = unsafe { (m.as_mut_ptr() as *const u64).add(slot).read_volatile() };
            gdt::set_ldt_entry(index, d);
            index += 1;
        }
    }
    gdt::load_ldt(ents);
}

pub fn do_set_gdt(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    set_gdt(ctx.dom(), args[0], args[1]).into()
}

pub fn do_update_descriptor(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    update_descriptor(ctx.dom(), [args[0], args[1], args[2], args[3]]).into()
}
