//! Grant tables (v1) between dom0 and a stopped domU: `setup_table` and
//! `query_size` for another domain, `map_grant_ref` and `unmap_grant_ref`
//! (read-write and read-only), `copy` (one, and 600 continued), the errors
//! on the way, and a granter that cannot be reaped while its grant is
//! mapped.

use pvrt::mm::update_va_mapping_otherdomain;
use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::mm::UVMF_INVLPG;

use crate::domains::domctl;
use crate::helpers::{A, Checks, D, Mem, P, RW, hcall, pte, read_u32, write_u32};

pub(crate) fn gnttab<T>(cmd: u32, op: &mut T) -> Result<u32, Errno> {
    hcall(
        xen_abi::hypercall::GRANT_TABLE_OP,
        [cmd, op as *mut T as u32, 1, 0, 0],
    )
}

/// Grant tables between the (stopped) domU `id` and dom0: dom0 sets up the
/// domU's table and writes its entries as the domU would (granting its data
/// page `data` to dom0), then maps, copies and unmaps, with the errors on the
/// way; a granter cannot go while its grant is mapped.
pub(crate) fn grants(c: &mut Checks, mem: &Mem<'_>, id: DomId, data: u32) {
    use xen_abi::domctl::*;
    use xen_abi::grant::*;
    let mut frames = [0u32; 1];
    let mut st = GnttabSetupTable {
        dom: id,
        nr_frames: 1,
        frame_list: frames.as_mut_ptr() as u32,
        ..Default::default()
    };
    let r = gnttab(GNTTABOP_SETUP_TABLE, &mut st);
    c.check(
        "gnttab_setup_table_other_domain",
        r.is_ok() && st.status == GNTST_OKAY && frames[0] != 0,
        format_args!("{r:?} status {} frame {:#x}", st.status, frames[0]),
    );
    let mut big = GnttabSetupTable {
        dom: id,
        nr_frames: 64,
        frame_list: frames.as_mut_ptr() as u32,
        ..Default::default()
    };
    let _ = gnttab(GNTTABOP_SETUP_TABLE, &mut big);
    c.check(
        "gnttab_setup_table_too_big",
        big.status == GNTST_GENERAL_ERROR,
        format_args!("status {}", big.status),
    );
    let mut q = GnttabQuerySize {
        dom: id,
        ..Default::default()
    };
    let r = gnttab(GNTTABOP_QUERY_SIZE, &mut q);
    c.check(
        "gnttab_query_size",
        r.is_ok() && q.status == GNTST_OKAY && q.nr_frames == 1 && q.max_nr_frames >= 4,
        format_args!("{r:?} {} of {}", q.nr_frames, q.max_nr_frames),
    );
    // The domU's entries (written by dom0 through a foreign mapping).
    let gva = mem.scratch_va(54);
    let entries = gva as *mut GrantEntryV1;
    let mapped =
        update_va_mapping_otherdomain(gva, pte(frames[0], P | RW | A | D), UVMF_INVLPG, id);
    c.ok("gnttab_frame_mapped_writable", mapped);
    let entry = |i: usize| {
        // SAFETY: the grant frame is mapped at `gva`; i < 512.
        unsafe { entries.add(i).read_volatile() }
    };
    // SAFETY: as above.
    unsafe {
        entries.add(8).write_volatile(GrantEntryV1 {
            flags: GTF_PERMIT_ACCESS,
            domid: 0,
            frame: data,
        });
        entries.add(9).write_volatile(GrantEntryV1 {
            flags: GTF_PERMIT_ACCESS | GTF_READONLY,
            domid: 0,
            frame: data,
        });
        entries.add(10).write_volatile(GrantEntryV1 {
            flags: GTF_PERMIT_ACCESS,
            domid: 5,
            frame: data,
        });
    }
    let hva = mem.scratch_va(55);
    // Read-only mappings go one page up (a map replaces what the PTE held).
    let map = |gref: u32, flags: u32| {
        let mut m = GnttabMapGrantRef {
            host_addr: u64::from(if flags & GNTMAP_READONLY != 0 {
                hva + 4096
            } else {
                hva
            }),
            flags,
            gref,
            dom: id,
            ..Default::default()
        };
        let _ = gnttab(GNTTABOP_MAP_GRANT_REF, &mut m);
        m
    };
    let m = map(8, GNTMAP_HOST_MAP);
    // SAFETY: mapped by the grant at `hva` if the status is okay.
    let seen = if m.status == GNTST_OKAY {
        unsafe { (hva as *const u32).read_volatile() }
    } else {
        0
    };
    c.check(
        "gnttab_map_grant_ref",
        m.status == GNTST_OKAY && seen == 2 && m.dev_bus_addr == u64::from(data) << 12,
        format_args!("status {} word {seen}", m.status),
    );
    c.check(
        "gnttab_mapped_entry_in_use",
        entry(8).flags & (GTF_READING | GTF_WRITING) == GTF_READING | GTF_WRITING,
        format_args!("flags {:#x}", entry(8).flags),
    );
    let other = map(10, GNTMAP_HOST_MAP);
    c.check(
        "gnttab_map_grant_for_another_domain",
        other.status == GNTST_GENERAL_ERROR,
        format_args!("status {}", other.status),
    );
    let beyond = map(100_000, GNTMAP_HOST_MAP);
    c.check(
        "gnttab_map_bad_gntref",
        beyond.status == GNTST_BAD_GNTREF,
        format_args!("status {}", beyond.status),
    );
    let noflags = map(8, 0);
    c.check(
        "gnttab_map_without_host_or_device",
        noflags.status == GNTST_BAD_GNTREF,
        format_args!("status {}", noflags.status),
    );
    let unmap = |host: u32, handle: u32| {
        let mut u = GnttabUnmapGrantRef {
            host_addr: u64::from(host),
            handle,
            ..Default::default()
        };
        let _ = gnttab(GNTTABOP_UNMAP_GRANT_REF, &mut u);
        u.status
    };
    let ro = map(9, GNTMAP_HOST_MAP | GNTMAP_READONLY);
    let ro_done = unmap(hva + 4096, ro.handle);
    c.check(
        "gnttab_readonly_map_and_unmap",
        ro.status == GNTST_OKAY
            && ro_done == GNTST_OKAY
            && entry(9).flags == GTF_PERMIT_ACCESS | GTF_READONLY,
        format_args!(
            "map {} unmap {} flags {:#x}",
            ro.status,
            ro_done,
            entry(9).flags
        ),
    );
    let ro_rw = map(9, GNTMAP_HOST_MAP);
    c.check(
        "gnttab_readonly_grant_mapped_writable",
        ro_rw.status == GNTST_GENERAL_ERROR,
        format_args!("status {}", ro_rw.status),
    );
    // A copy out of the grant into a page of dom0's.
    let own = mem.mfn(mem.first_free_pfn + 59);
    let mut cp = GnttabCopy {
        source: GnttabCopyPtr {
            u: 8,
            domid: id,
            offset: 0,
        },
        dest: GnttabCopyPtr {
            u: own,
            domid: xen_abi::domid::DOMID_SELF,
            offset: 100,
        },
        len: 4,
        flags: GNTCOPY_SOURCE_GREF,
        ..Default::default()
    };
    let r = gnttab(GNTTABOP_COPY, &mut cp);
    let ova = mem.scratch_va(53);
    let _ = mem.map(ova, own, false);
    // SAFETY: dom0's own frame, mapped read-only at `ova`.
    let copied = unsafe { ((ova + 100) as *const u32).read_volatile() };
    let _ = mem.unmap(ova);
    c.check(
        "gnttab_copy_from_grant",
        r.is_ok() && cp.status == GNTST_OKAY && copied == 2,
        format_args!("{r:?} status {} copied {copied}", cp.status),
    );
    // A long array is continued by Oxen and every operation is served.
    static mut MANY: [GnttabCopy; 600] = [GnttabCopy {
        source: GnttabCopyPtr {
            u: 0,
            domid: 0,
            offset: 0,
        },
        dest: GnttabCopyPtr {
            u: 0,
            domid: 0,
            offset: 0,
        },
        len: 0,
        flags: 0,
        status: 0,
        _pad: 0,
    }; 600];
    // SAFETY: only this function uses MANY.
    let many = unsafe { &mut *core::ptr::addr_of_mut!(MANY) };
    for (i, op) in many.iter_mut().enumerate() {
        *op = cp;
        op.dest.offset = ((i * 4) % 4000) as u16;
        op.status = -99;
    }
    let r = hcall(
        xen_abi::hypercall::GRANT_TABLE_OP,
        [GNTTABOP_COPY, many.as_mut_ptr() as u32, 600, 0, 0],
    );
    c.check(
        "gnttab_copy_600_continued",
        r.is_ok() && many.iter().all(|op| op.status == GNTST_OKAY),
        format_args!(
            "{r:?} {} not okay",
            many.iter().filter(|op| op.status != GNTST_OKAY).count()
        ),
    );
    cp.dest.offset = 4094;
    let _ = gnttab(GNTTABOP_COPY, &mut cp);
    c.check(
        "gnttab_copy_past_page_end",
        cp.status == GNTST_BAD_COPY_ARG,
        format_args!("status {}", cp.status),
    );
    // While dom0 maps the domU's page, the domU cannot be reaped (it stays
    // dying; its grants can still be unmapped, no longer mapped).
    let mut k = XenDomctl::new(XEN_DOMCTL_DESTROYDOMAIN, id, &0u32);
    c.err(
        "destroy_while_granted_page_mapped",
        domctl(&mut k),
        Errno::EAGAIN,
    );
    let dying = map(8, GNTMAP_HOST_MAP);
    c.check(
        "gnttab_map_from_dying_domain",
        dying.status == GNTST_BAD_DOMAIN,
        format_args!("status {}", dying.status),
    );
    let wrong = unmap(hva + 4096, m.handle);
    c.check(
        "gnttab_unmap_wrong_address",
        wrong == GNTST_GENERAL_ERROR,
        format_args!("status {wrong}"),
    );
    let ok = unmap(hva, m.handle);
    c.check(
        "gnttab_unmap",
        ok == GNTST_OKAY && entry(8).flags == GTF_PERMIT_ACCESS,
        format_args!("status {ok} flags {:#x}", entry(8).flags),
    );
    let stale = unmap(hva, m.handle);
    c.check(
        "gnttab_unmap_stale_handle",
        stale == GNTST_BAD_HANDLE,
        format_args!("status {stale}"),
    );
    let _ = mem.unmap(gva);
}

/// Issue 10 finding 2, the attack played by dom0 on itself: it grants itself
/// a frame read-only, maps the grant, clears the PTE behind the grant code's
/// back (`update_va_mapping(va, 0)`: the pin stays), gives the frame back
/// with `decrease_reservation`, takes every free frame below the frame's
/// address-size limit (the frame would be among them if it were free again:
/// increase_reservation with `address_bits` takes any free frame below),
/// then copies from the still-pinned grant. The frame must stay alive while
/// pinned (free pages unchanged, never handed out again) and the copy must
/// read its old contents or fail with `GNTST_general_error`; the unmap then
/// frees it.
pub(crate) fn pinned_frame_outlives_its_reservation(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::domid::DOMID_SELF;
    use xen_abi::grant::*;
    use xen_abi::hypercall::MEMORY_OP;
    use xen_abi::memory::{XENMEM_DECREASE_RESERVATION, XENMEM_INCREASE_RESERVATION};
    const MARKER: u32 = 0x5EC2_E7ED;
    const GREF: usize = 20;
    const HOG_MAX: usize = 16384;
    static mut HOG: [u32; HOG_MAX] = [0; HOG_MAX];
    let reserve = |cmd: u32, frames: *mut u32, n: u32, bits: u32| -> u32 {
        let r = [frames as u32, n, 0, bits, u32::from(DOMID_SELF)];
        hcall(MEMORY_OP, [cmd, r.as_ptr() as u32, 0, 0, 0]).unwrap_or(0)
    };
    // A frame of dom0's that nothing else uses, low in memory (all the free
    // frames below its power-of-two limit can then be taken), with a marker.
    let mut x = mem.mfn(mem.first_free_pfn + 100);
    let bits = 44 - x.leading_zeros();
    let (dva, gva, hva) = (mem.scratch_va(24), mem.scratch_va(25), mem.scratch_va(26));
    let _ = mem.map(dva, x, true);
    write_u32(dva, MARKER);
    let _ = mem.unmap(dva);
    // dom0's own table: entry GREF grants the frame to dom0, read-only.
    let mut frames = [0u32; 1];
    let mut st = GnttabSetupTable {
        dom: DOMID_SELF,
        nr_frames: 1,
        frame_list: frames.as_mut_ptr() as u32,
        ..Default::default()
    };
    let _ = gnttab(GNTTABOP_SETUP_TABLE, &mut st);
    let _ = mem.map(gva, frames[0], true);
    let entry = (gva as *mut GrantEntryV1).wrapping_add(GREF);
    // SAFETY: dom0's grant frame, mapped writable at `gva`; GREF < 512.
    unsafe {
        entry.write_volatile(GrantEntryV1 {
            flags: GTF_PERMIT_ACCESS | GTF_READONLY,
            domid: 0,
            frame: x,
        })
    };
    let mut m = GnttabMapGrantRef {
        host_addr: u64::from(hva),
        flags: GNTMAP_HOST_MAP | GNTMAP_READONLY,
        gref: GREF as u32,
        dom: DOMID_SELF,
        ..Default::default()
    };
    let _ = gnttab(GNTTABOP_MAP_GRANT_REF, &mut m);
    let seen = if m.status == GNTST_OKAY {
        read_u32(hva)
    } else {
        0
    };
    let cleared = mem.unmap(hva);
    c.check(
        "gnttab_self_grant_mapped",
        m.status == GNTST_OKAY && seen == MARKER && cleared.is_ok(),
        format_args!(
            "frame {x:#x} (address bits {bits}) map {} word {seen:#x} PTE cleared {cleared:?}",
            m.status
        ),
    );
    // Given back while pinned: Oxen drops the allocation reference, as Xen
    // does, but the mapping's own reference keeps the frame out of the
    // allocator.
    let free_before = crate::domains::free_pages();
    let given = reserve(XENMEM_DECREASE_RESERVATION, &mut x, 1, 0);
    let free_after = crate::domains::free_pages();
    c.check(
        "decrease_reservation_pinned_frame_kept",
        given == 1 && free_after == free_before,
        format_args!("given back {given}, free pages {free_before} -> {free_after}"),
    );
    // SAFETY: only this function uses HOG.
    let hog = unsafe { &mut *core::ptr::addr_of_mut!(HOG) };
    let cap = (1usize << (bits - 12)).min(HOG_MAX) as u32;
    let taken = reserve(XENMEM_INCREASE_RESERVATION, hog.as_mut_ptr(), cap, bits) as usize;
    let reused = hog[..taken].contains(&x);
    c.check(
        "decrease_reservation_pinned_frame_not_reallocated",
        taken < cap as usize && !reused,
        format_args!("took {taken} frames below {cap:#x}, the pinned one among them: {reused}"),
    );
    // The copy from the pinned grant reads what the frame held, or fails.
    let own = mem.mfn(mem.first_free_pfn + 59);
    let ova = mem.scratch_va(53);
    let _ = mem.map(ova, own, true);
    write_u32(ova + 300, 0);
    let mut cp = GnttabCopy {
        source: GnttabCopyPtr {
            u: GREF as u32,
            domid: DOMID_SELF,
            offset: 0,
        },
        dest: GnttabCopyPtr {
            u: own,
            domid: DOMID_SELF,
            offset: 300,
        },
        len: 4,
        flags: GNTCOPY_SOURCE_GREF,
        ..Default::default()
    };
    let r = gnttab(GNTTABOP_COPY, &mut cp);
    let copied = read_u32(ova + 300);
    let _ = mem.unmap(ova);
    c.check(
        "gnttab_copy_from_given_back_frame",
        r.is_ok()
            && ((cp.status == GNTST_OKAY && copied == MARKER)
                || (cp.status == GNTST_GENERAL_ERROR && copied == 0)),
        format_args!("{r:?} status {} copied {copied:#x}", cp.status),
    );
    let back = reserve(
        XENMEM_DECREASE_RESERVATION,
        hog.as_mut_ptr(),
        taken as u32,
        0,
    ) as usize;
    // The unmap needs the PTE back (the frame is still dom0's while
    // referenced); it drops the last references and frees the frame.
    let remapped = mem.map(hva, x, false);
    let free_before = crate::domains::free_pages();
    let mut u = GnttabUnmapGrantRef {
        host_addr: u64::from(hva),
        handle: m.handle,
        ..Default::default()
    };
    let _ = gnttab(GNTTABOP_UNMAP_GRANT_REF, &mut u);
    let free_after = crate::domains::free_pages();
    // dom0's reservation back to its size (the domU checks compare free pages
    // around this test).
    let mut again = 0u32;
    let regained = reserve(XENMEM_INCREASE_RESERVATION, &mut again, 1, 0);
    c.check(
        "gnttab_unmap_frees_given_back_frame",
        back == taken
            && remapped.is_ok()
            && u.status == GNTST_OKAY
            && free_after == free_before + 1
            && regained == 1,
        format_args!(
            "{back} of {taken} back, remap {remapped:?}, unmap {}, free pages {free_before} -> {free_after}, regained {regained}",
            u.status
        ),
    );
    // SAFETY: as above.
    unsafe { entry.write_volatile(GrantEntryV1::default()) };
    let _ = mem.unmap(gva);
}
