//! `memory_op(cmd, arg)` (#12, XEN-PV-ABI.md §15.5): a domain's reservation
//! (increase/decrease/populate), its size and limits, the M2P's placement,
//! and the memory maps. The sizes are the engine's page account
//! (`tot_pages` moves where frames are assigned and really freed, not here);
//! a populate at `max_pages` stops, returning the extents done, as Xen.
//! Long requests yield with Xen's continuation: the
//! extent to resume at rides in the bits of `cmd` above `MEMOP_EXTENT_SHIFT`.

use hv_core::addr::Mfn;
use hv_core::hypercall::Outcome;
use hv_core::sanitise::{AddressLimit, address_limit, reservation_fits};
use spin::Once;
use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::hypercall::{MEMOP_CMD_MASK, MEMOP_EXTENT_SHIFT};
use xen_abi::layout::{MACH2PHYS_NR_ENTRIES, MACH2PHYS_VIRT_END, MACH2PHYS_VIRT_START};
use xen_abi::memory::*;
use zerocopy::FromZeros;

use super::Ctx;
use crate::arch::x86::uaccess::{read_guest, write_guest};
use crate::domain::Domain;
use crate::mm::frame_table::{MM, alloc_domain_frame_below, max_pages, tot_pages};
use crate::mm::{m2p, mapcache};

/// Extents served per invocation before a reservation call yields.
const EXTENTS_PER_CALL: u32 = 512;
/// Most entries a memory map holds.
const MAX_E820: usize = 128;

static MACHINE_MAP: Once<heapless::Vec<E820Entry, MAX_E820>> = Once::new();

/// Records the machine's memory map (from the boot loader) for dom0's
/// `XENMEM_machine_memory_map`.
pub fn set_machine_memory_map(entries: impl Iterator<Item = (u64, u64, u32)>) {
    MACHINE_MAP.call_once(|| {
        let mut v = heapless::Vec::new();
        for (addr, size, type_) in entries {
            let _ = v.push(E820Entry { addr, size, type_ });
        }
        v
    });
}

fn write_map(arg: u32, entries: &[E820Entry]) -> Result<i32, Errno> {
    let mut map: XenMemoryMap = read_guest(arg)?;
    let n = entries.len().min(map.nr_entries as usize);
    for (i, e) in entries.iter().take(n).enumerate() {
        write_guest(
            map.buffer
                .wrapping_add((i * core::mem::size_of::<E820Entry>()) as u32),
            e,
        )?;
    }
    map.nr_entries = n as u32;
    write_guest(arg, &map)?;
    Ok(0)
}

/// increase_reservation, decrease_reservation and populate_physmap.
fn reservation(dom: &mut Domain, op: u32, start: u32, arg: u32) -> Result<Outcome, Errno> {
    let r: XenMemoryReservation = read_guest(arg)?;
    if r.extent_order != 0 {
        // Only single pages for now (a PV kernel balloons page by page).
        return Err(Errno::EINVAL);
    }
    // As Xen: a call whose extents cannot all be encoded in a continuation,
    // or that asks for frames below 4 KiB, does nothing.
    if !reservation_fits(r.nr_extents, MEMOP_EXTENT_SHIFT) {
        return Ok(Outcome::Done(start as i32));
    }
    let limit = match address_limit(r.mem_flags & XENMEMF_ADDRESS_BITS_MASK) {
        AddressLimit::Any => None,
        AddressLimit::Below(mfn) => Some(mfn),
        AddressLimit::Nothing => return Ok(Outcome::Done(start as i32)),
    };
    let mut i = start;
    while i < r.nr_extents {
        if i - start == EXTENTS_PER_CALL {
            return Ok(Outcome::Continue([
                op | (i << MEMOP_EXTENT_SHIFT),
                arg,
                0,
                0,
                0,
            ]));
        }
        let slot = r.extent_start.wrapping_add(i * 4);
        match op {
            XENMEM_DECREASE_RESERVATION => {
                // Only the allocation reference goes: a frame still
                // referenced (pinned, mapped, held by a grant) stays the
                // domain's, and counted in its tot_pages, until its last
                // reference goes (the engine uncounts it there).
                let mfn = Mfn(u64::from(read_guest::<u32>(slot)?));
                let freed = MM
                    .lock()
                    .as_mut()
                    .expect("frame table")
                    .release(mfn, dom.domid);
                if freed.is_err() {
                    break;
                }
                m2p::set(mfn, m2p::INVALID_M2P_ENTRY);
            }
            _ => {
                let gpfn = if op == XENMEM_POPULATE_PHYSMAP {
                    Some(read_guest::<u32>(slot)?)
                } else {
                    None
                };
                // None at max_pages (Xen's over-allocation) or out of memory:
                // the call returns the extents done so far.
                let Some(mfn) = alloc_domain_frame_below(dom.domid, limit) else {
                    break;
                };
                mapcache::clear_frame(mfn);
                if let Some(pfn) = gpfn {
                    m2p::set(mfn, pfn);
                }
                if write_guest(slot, &(mfn.0 as u32)).is_err() {
                    let _ = MM
                        .lock()
                        .as_mut()
                        .expect("frame table")
                        .release(mfn, dom.domid);
                    m2p::set(mfn, m2p::INVALID_M2P_ENTRY);
                    return Err(Errno::EFAULT);
                }
            }
        }
        i += 1;
    }
    Ok(Outcome::Done(i as i32))
}

pub fn do_memory_op(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [cmd, arg, ..] = args;
    let (op, start) = (cmd & MEMOP_CMD_MASK, cmd >> MEMOP_EXTENT_SHIFT);
    match op {
        XENMEM_INCREASE_RESERVATION | XENMEM_DECREASE_RESERVATION | XENMEM_POPULATE_PHYSMAP => {
            // The toolstack populates a new domain's memory (`domid` = it).
            let dom = read_guest::<XenMemoryReservation>(arg).and_then(|r| ctx.target(r.domid));
            let outcome = match dom {
                Ok(dom) => reservation(dom, op, start, arg).unwrap_or_else(|e| Err(e).into()),
                Err(e) => Err(e).into(),
            };
            super::audit_if_asked(ctx.table());
            return outcome;
        }
        XENMEM_CURRENT_RESERVATION | XENMEM_MAXIMUM_RESERVATION | XENMEM_MAXIMUM_GPFN
            if start == 0 =>
        {
            let r = read_guest::<DomId>(arg)
                .and_then(|id| ctx.target(id))
                .map(|dom| {
                    let (tot, max) = (tot_pages(dom.domid), max_pages(dom.domid));
                    match op {
                        XENMEM_CURRENT_RESERVATION => tot.min(i32::MAX as u64) as i32,
                        XENMEM_MAXIMUM_RESERVATION => max.min(i32::MAX as u64) as i32,
                        _ => tot.saturating_sub(1).min(i32::MAX as u64) as i32,
                    }
                });
            return r.into();
        }
        _ => {}
    }
    let dom = ctx.dom();
    let r = match op {
        _ if start != 0 => Err(Errno::ENOSYS),
        XENMEM_MAXIMUM_RAM_PAGE => Ok(crate::mm::frame_table::nr_frames() as i32),
        XENMEM_MACHPHYS_MAPPING => {
            let mut m = XenMachphysMapping::new_zeroed();
            m.v_start = MACH2PHYS_VIRT_START;
            m.v_end = MACH2PHYS_VIRT_END;
            m.max_mfn = MACH2PHYS_NR_ENTRIES - 1;
            write_guest(arg, &m).map(|()| 0)
        }
        XENMEM_MEMORY_MAP => {
            // A PV domain's pseudo-physical map: RAM from pfn 0 up.
            let ram = E820Entry {
                addr: 0,
                size: tot_pages(dom.domid) * 4096,
                type_: E820_RAM,
            };
            write_map(arg, &[ram])
        }
        XENMEM_MACHINE_MEMORY_MAP if dom.privileged => {
            write_map(arg, MACHINE_MAP.get().map_or(&[], |v| v.as_slice()))
        }
        XENMEM_MACHINE_MEMORY_MAP => Err(Errno::EPERM),
        XENMEM_MACHPHYS_MFN_LIST => read_guest::<XenMachphysMfnList>(arg).and_then(|mut l| {
            let chunks = m2p::chunk_mfns();
            let n = chunks.len().min(l.max_extents as usize);
            for (i, mfn) in chunks.iter().take(n).enumerate() {
                write_guest(l.extent_start.wrapping_add(4 * i as u32), &(mfn.0 as u32))?;
            }
            l.nr_extents = n as u32;
            write_guest(arg, &l).map(|()| 0)
        }),
        // add_to_physmap is for translated guests; exchange and set_memory_map
        // come with the toolstack.
        _ => Err(Errno::ENOSYS),
    };
    r.into()
}
