//! Grant tables v1 (XEN-PV-ABI.md §9): the `grant_table_op` wrapper, a back
//! end's mapping of another domain's grant, and a front end's own table.
//!
//! [`Table`] owns the guest's grant-table frame 0 (from `GNTTABOP_setup_table`,
//! mapped writable at a page the caller gives): entries are published as the
//! ABI says (`domid` and `frame` first, a write barrier, then `flags`) and
//! revoked with a compare-and-exchange of `flags` to 0 that fails while Xen
//! marks the entry in use (`GTF_reading`/`GTF_writing`). Refs below
//! `GNTTAB_NR_RESERVED_ENTRIES` are the toolstack's and never handed out.

use core::sync::atomic::{AtomicU16, AtomicU32, Ordering, fence};

use xen_abi::domid::{DOMID_SELF, DomId};
use xen_abi::errno::Errno;
use xen_abi::grant::{
    GNTMAP_HOST_MAP, GNTMAP_READONLY, GNTST_OKAY, GNTTAB_NR_RESERVED_ENTRIES,
    GNTTABOP_MAP_GRANT_REF, GNTTABOP_SETUP_TABLE, GNTTABOP_UNMAP_GRANT_REF, GTF_PERMIT_ACCESS,
    GTF_READING, GTF_READONLY, GTF_WRITING, GnttabMapGrantRef, GnttabSetupTable,
    GnttabUnmapGrantRef,
};
use xen_abi::hypercall::GRANT_TABLE_OP;
use xen_abi::types::{GrantHandle, GrantRef, PAGE_SIZE};

use crate::hypercall::{raw, result};

/// `grant_table_op(cmd, uops, uops.len())`.
pub fn op<T>(cmd: u32, uops: &mut [T]) -> Result<u32, Errno> {
    // SAFETY: `uops` is an array of the ABI struct `cmd` reads and writes,
    // borrowed across the call.
    result(unsafe {
        raw(
            GRANT_TABLE_OP,
            [cmd, uops.as_mut_ptr() as u32, uops.len() as u32, 0, 0],
        )
    })
}

/// A failed grant operation: the hypercall's errno or the op's `GNTST_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    Hypercall(Errno),
    Status(i16),
}

impl core::fmt::Display for GrantError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GrantError::Hypercall(e) => write!(f, "{e}"),
            GrantError::Status(s) => write!(f, "GNTST {s}"),
        }
    }
}

/// Maps grant `gref` of `dom` at `va` (whose L1 table exists) and returns
/// the handle to unmap it with.
pub fn map_grant(
    va: u32,
    dom: DomId,
    gref: GrantRef,
    readonly: bool,
) -> Result<GrantHandle, GrantError> {
    let mut m = [GnttabMapGrantRef {
        host_addr: u64::from(va),
        flags: GNTMAP_HOST_MAP | if readonly { GNTMAP_READONLY } else { 0 },
        gref,
        dom,
        ..Default::default()
    }];
    op(GNTTABOP_MAP_GRANT_REF, &mut m).map_err(GrantError::Hypercall)?;
    match m[0].status {
        GNTST_OKAY => Ok(m[0].handle),
        s => Err(GrantError::Status(s)),
    }
}

/// Undoes [`map_grant`].
pub fn unmap_grant(va: u32, handle: GrantHandle) -> Result<(), GrantError> {
    let mut u = [GnttabUnmapGrantRef {
        host_addr: u64::from(va),
        dev_bus_addr: 0,
        handle,
        status: 0,
        _pad: 0,
    }];
    op(GNTTABOP_UNMAP_GRANT_REF, &mut u).map_err(GrantError::Hypercall)?;
    match u[0].status {
        GNTST_OKAY => Ok(()),
        s => Err(GrantError::Status(s)),
    }
}

/// Entries in one frame.
pub const ENTRIES: usize = PAGE_SIZE / 8;

/// The guest's own grant table (frame 0).
pub struct Table {
    va: u32,
    /// Bit i: entry i handed out.
    used: [u32; ENTRIES / 32],
}

impl Table {
    /// `GNTTABOP_setup_table` for one frame, mapped writable at `va`.
    pub fn setup(va: u32) -> Result<Table, GrantError> {
        let mut frame: u32 = 0;
        let mut s = [GnttabSetupTable {
            dom: DOMID_SELF,
            _pad0: 0,
            nr_frames: 1,
            status: 0,
            _pad1: 0,
            frame_list: &mut frame as *mut u32 as u32,
        }];
        op(GNTTABOP_SETUP_TABLE, &mut s).map_err(GrantError::Hypercall)?;
        if s[0].status != GNTST_OKAY {
            return Err(GrantError::Status(s[0].status));
        }
        crate::xenbus::map_frame(va, frame).map_err(GrantError::Hypercall)?;
        let mut used = [0u32; ENTRIES / 32];
        for r in 0..GNTTAB_NR_RESERVED_ENTRIES as usize {
            used[r / 32] |= 1 << (r % 32);
        }
        Ok(Table { va, used })
    }

    fn flags(&self, gref: GrantRef) -> &AtomicU16 {
        assert!((gref as usize) < ENTRIES);
        // SAFETY: the table frame is mapped at `va` for the life of `self`;
        // entry `gref` is inside it (checked); `flags` is the entry's first,
        // 2-aligned field, shared with Xen, hence atomic.
        unsafe { &*((self.va as usize + gref as usize * 8) as *const AtomicU16) }
    }

    /// Grants `domid` access to machine frame `mfn` (read-only if asked) on
    /// a free entry; `None` if the table is full.
    pub fn grant(&mut self, domid: DomId, mfn: u32, readonly: bool) -> Option<GrantRef> {
        let i = (0..ENTRIES).find(|&i| self.used[i / 32] & (1 << (i % 32)) == 0)?;
        self.used[i / 32] |= 1 << (i % 32);
        let entry = self.va as usize + i * 8;
        // SAFETY: as in `flags`: `domid` at +2 (u16) and `frame` at +4 (u32)
        // of an entry of the mapped table; no one else writes them while
        // `flags` is 0.
        unsafe {
            (*((entry + 2) as *const AtomicU16)).store(domid, Ordering::Relaxed);
            (*((entry + 4) as *const AtomicU32)).store(mfn, Ordering::Relaxed);
        }
        fence(Ordering::Release);
        let f = GTF_PERMIT_ACCESS | if readonly { GTF_READONLY } else { 0 };
        self.flags(i as GrantRef).store(f, Ordering::SeqCst);
        Some(i as GrantRef)
    }

    /// Revokes `gref`: fails (and leaves it granted) while Xen has it in
    /// use. The entry is free again on success.
    pub fn end(&mut self, gref: GrantRef) -> bool {
        if gref < GNTTAB_NR_RESERVED_ENTRIES || gref as usize >= ENTRIES {
            return false;
        }
        let flags = self.flags(gref);
        let mut old = flags.load(Ordering::SeqCst);
        loop {
            if old & (GTF_READING | GTF_WRITING) != 0 {
                return false;
            }
            match flags.compare_exchange(old, 0, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => break,
                Err(now) => old = now,
            }
        }
        let i = gref as usize;
        self.used[i / 32] &= !(1 << (i % 32));
        true
    }
}
