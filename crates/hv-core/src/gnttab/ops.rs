//! The grant operations that involve a grantee and a granter: map, unmap,
//! release at teardown, and copy.
//!
//! Rules and their status values (Xen 4.1 `__gnttab_map_grant_ref`,
//! `__gnttab_unmap_common`, `__gnttab_copy`), in the order they are checked:
//!
//! * **map**: neither `GNTMAP_host_map` nor `GNTMAP_device_map` → `bad_gntref`;
//!   no such granting domain → `bad_domain`; no maptrack handle left →
//!   `no_device_space`; ref beyond the granter's table → `bad_gntref`; then the
//!   pin rules of [`GrantTable`] (`general_error` for each failure). On success
//!   the result names the frame (captured at the first pin), whether the
//!   mapping is read-only, the handle, `dev_bus_addr` (= frame << 12, written
//!   whatever the flags, as Xen does), the entry's cache attributes, and the
//!   page/type references the mapping holds ([`Refs`]: one page reference per
//!   part — host, device — plus a writable-type reference for a writable
//!   device part; a host part's PTE holds its own references besides).
//!   `GNTMAP_contains_pte`, `GNTMAP_application_map`
//!   and the available bits pass through in the maptrack flags for the PTE
//!   code. If taking those references fails, the hypervisor undoes the map with
//!   [`release_mapping`] and reports `general_error` (Xen's "could not pin").
//! * **unmap**: a free or out-of-range handle → `bad_handle`; a non-zero
//!   `dev_bus_addr` that is not the mapped frame → `general_error`; with a
//!   non-zero `host_addr` and a live host part, a `host_addr` other than the
//!   mapped one, or a PTE there that does not map the frame (the hypervisor
//!   passes the frame it found) → `general_error`. Everything is checked before
//!   anything changes. The host part is unmapped when `host_addr != 0`, the
//!   device part when `dev_bus_addr != 0`; the handle is freed once neither part
//!   is live.
//! * **copy**: `offset + len > 4096` on either side → `bad_copy_arg`; a GMFN side
//!   naming a domain other than the caller (after `DOMID_SELF` resolution),
//!   without privilege → `permission_denied`; no such domain → `bad_domain`;
//!   a GMFN not owned by its side's domain → `general_error` (Xen 4.1's failed
//!   `get_page`); a gref side pins like a map (source: read pin, destination:
//!   write pin, so a read-only grant can only be a source) for the duration of
//!   the copy, released by [`copy_complete`]. The frame of a pinned entry is
//!   the one captured at its first pin and its ownership is not checked again
//!   here: the hypervisor takes a page reference on each frame for its side's
//!   domain for the duration of the copy (Xen's `get_page(page, owner)` on
//!   every copy; a source that fails it is `general_error`).
//!
//! # Frame lifetime
//!
//! A pinned entry's frame stays allocated (to its granter) while pinned;
//! otherwise the granter could give it back (`decrease_reservation`) and the
//! pin would reach whatever the frame becomes next. Pins live in maptrack
//! entries, each live part of which holds a page reference ([`Refs`]) that no
//! guest action but the unmap drops, and in copies in flight, for which the
//! hypervisor holds page references. So a frame is never freed while pinned.

use xen_abi::domid::{DOMID_SELF, DomId};
use xen_abi::grant::{
    DEFAULT_MAX_NR_GRANT_FRAMES, GNTCOPY_DEST_GREF, GNTCOPY_SOURCE_GREF, GNTMAP_DEVICE_MAP,
    GNTMAP_HOST_MAP, GNTMAP_READONLY, GTF_PAT, GTF_PCD, GTF_PWT, GnttabCopy, GnttabCopyPtr,
    GnttabMapGrantRef, GnttabUnmapGrantRef,
};
use xen_abi::types::{GrantHandle, GrantRef, PAGE_SIZE};

use super::GntError;
use super::maptrack::{MapEntry, Maptrack};
use super::shared::SharedEntries;
use super::table::{GrantTable, Pins};
use crate::addr::{Mfn, PAGE_SHIFT};

/// Frame ownership, from the hypervisor's frame table.
pub trait FrameOwnership {
    /// Whether machine frame `mfn` belongs to domain `dom`, so that `dom` may
    /// grant it or name it as a GMFN copy side. (The hypervisor may also answer
    /// `true` for I/O memory `dom` is permitted to map.)
    fn owns(&self, dom: DomId, mfn: Mfn) -> bool;
}

/// A granting domain's table together with its shared entries.
#[derive(Debug)]
pub struct Granter<'a, S: ?Sized, const F: usize = { DEFAULT_MAX_NR_GRANT_FRAMES as usize }> {
    /// Xen's side of the table.
    pub table: &'a mut GrantTable<F>,
    /// The guest-writable entries.
    pub shared: &'a mut S,
}

/// The domains an operation may touch (copy and teardown reach more than one
/// granter, one after the other).
pub trait GrantDomains<const F: usize = { DEFAULT_MAX_NR_GRANT_FRAMES as usize }> {
    /// How each domain's shared entries are reached.
    type Shared: SharedEntries + ?Sized;
    /// The grant table of domain `dom` (already resolved from `DOMID_SELF`), or
    /// `None` if there is no such domain.
    fn granter(&mut self, dom: DomId) -> Option<Granter<'_, Self::Shared, F>>;
}

/// Page and writable-type references a grant mapping holds on the granted
/// frame (owner: the granting domain) for as long as its parts are live: the
/// hypervisor takes them at a map (Xen's `get_page(page, granter)`, which
/// fails for a frame the granter no longer owns) and drops them when the part
/// is unmapped or released.
///
/// * Each live part (host, device) holds one page reference, so the frame
///   stays allocated while the entry is pinned, whatever the guests do with
///   their page tables or their reservations.
/// * A writable device part also holds a writable-type reference (a device
///   may write the frame at any time).
/// * A host part's PTE is an ordinary L1 entry: it holds its own page (and,
///   when writable, writable-type) reference, taken and dropped with the entry
///   by the PV MMU engine. Those are not counted here: a guest may clear the
///   PTE behind the grant code's back (`update_va_mapping(va, 0)`), which
///   drops the PTE's references and never the mapping's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refs {
    /// General (page) references.
    pub page: u8,
    /// Writable-type references.
    pub writable_type: u8,
}

impl Refs {
    /// One page reference per live part, plus a writable-type reference for
    /// a device part unless read-only.
    pub const fn for_parts(host: bool, device: bool, readonly: bool) -> Refs {
        Refs {
            page: host as u8 + device as u8,
            writable_type: (device && !readonly) as u8,
        }
    }
}

/// The inputs of `GNTTABOP_map_grant_ref` (the granting domain is resolved by
/// the caller into a [`Granter`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapRequest {
    /// Virtual address, or PTE machine address with `GNTMAP_contains_pte`.
    pub host_addr: u64,
    /// `GNTMAP_*`.
    pub flags: u32,
    /// Grant ref in the granter's table.
    pub gref: GrantRef,
}

impl From<&GnttabMapGrantRef> for MapRequest {
    fn from(op: &GnttabMapGrantRef) -> Self {
        MapRequest {
            host_addr: op.host_addr,
            flags: op.flags,
            gref: op.gref,
        }
    }
}

/// A successful map: what the hypervisor must do and tell the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapGrant {
    /// The maptrack handle (OUT `handle`).
    pub handle: GrantHandle,
    /// The granted frame.
    pub frame: Mfn,
    /// The mapping must be read-only.
    pub readonly: bool,
    /// Create the CPU mapping at `host_addr`.
    pub host_map: bool,
    /// A device (bus) mapping was asked for.
    pub device_map: bool,
    /// OUT `dev_bus_addr`: the frame's machine address.
    pub dev_bus_addr: u64,
    /// `GTF_PWT | GTF_PCD | GTF_PAT` of the entry (Xen applies them to I/O
    /// memory grants only).
    pub cache_flags: u16,
    /// References the mapping holds on `frame` (owner: the granter): the
    /// hypervisor takes them, and undoes the map with [`release_mapping`] if
    /// it cannot.
    pub refs: Refs,
}

impl MapGrant {
    /// Writes the OUT fields of a successful map.
    pub fn write_out(&self, op: &mut GnttabMapGrantRef) {
        op.status = xen_abi::grant::GNTST_OKAY;
        op.handle = self.handle;
        op.dev_bus_addr = self.dev_bus_addr;
    }
}

/// `GNTTABOP_map_grant_ref` by domain `ldom` of `req.gref` in `granter` (`None`
/// when the named domain does not exist). See the module rules.
pub fn map_grant_ref<S, O, const F: usize, const N: usize>(
    maptrack: &mut Maptrack<N>,
    ldom: DomId,
    granter: Option<Granter<'_, S, F>>,
    owners: &O,
    req: &MapRequest,
) -> Result<MapGrant, GntError>
where
    S: SharedEntries + ?Sized,
    O: FrameOwnership + ?Sized,
{
    let host = req.flags & GNTMAP_HOST_MAP != 0;
    let device = req.flags & GNTMAP_DEVICE_MAP != 0;
    if !host && !device {
        return Err(GntError::BadMapFlags);
    }
    let g = granter.ok_or(GntError::BadDomain)?;
    if maptrack.is_full() {
        return Err(GntError::NoMaptrack);
    }
    let readonly = req.flags & GNTMAP_READONLY != 0;
    let add = Pins::for_access(host, device, readonly);
    let frame = g.table.pin(g.shared, owners, req.gref, ldom, add, true)?;
    let cache_flags = g.shared.read(req.gref).flags & (GTF_PWT | GTF_PCD | GTF_PAT);
    let entry = MapEntry {
        dom: g.table.dom(),
        gref: req.gref,
        flags: req.flags,
        host_addr: req.host_addr,
        frame,
    };
    let handle = match maptrack.alloc(entry) {
        Ok(h) => h,
        Err(e) => {
            g.table.unpin(g.shared, req.gref, add);
            return Err(e);
        }
    };
    Ok(MapGrant {
        handle,
        frame,
        readonly,
        host_map: host,
        device_map: device,
        dev_bus_addr: frame.0 << PAGE_SHIFT,
        cache_flags,
        refs: Refs::for_parts(host, device, readonly),
    })
}

/// The inputs of `GNTTABOP_unmap_grant_ref`, plus what the hypervisor found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnmapRequest {
    /// The handle from the map.
    pub handle: GrantHandle,
    /// Non-zero: unmap the host part mapped at this address.
    pub host_addr: u64,
    /// Non-zero: unmap the device part; must be the frame's address.
    pub dev_bus_addr: u64,
    /// The frame the PTE at `host_addr` currently maps (`None` if not present);
    /// consulted only when the host part is unmapped.
    pub pte_frame: Option<Mfn>,
}

impl UnmapRequest {
    /// From the guest's operation and the frame found at its `host_addr`.
    pub fn from_abi(op: &GnttabUnmapGrantRef, pte_frame: Option<Mfn>) -> Self {
        UnmapRequest {
            handle: op.handle,
            host_addr: op.host_addr,
            dev_bus_addr: op.dev_bus_addr,
            pte_frame,
        }
    }
}

/// A successful unmap: what the hypervisor must undo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unmapped {
    /// The granting domain.
    pub dom: DomId,
    /// The grant ref.
    pub gref: GrantRef,
    /// The frame.
    pub frame: Mfn,
    /// `Some(host_addr)`: clear this mapping (a PTE machine address if
    /// `contains_pte`) and flush the TLB.
    pub host: Option<u64>,
    /// `host` is a PTE machine address.
    pub contains_pte: bool,
    /// The device part was unmapped.
    pub device: bool,
    /// References to drop on `frame` (owner: the granter).
    pub refs: Refs,
    /// The handle is now free.
    pub handle_freed: bool,
}

/// `GNTTABOP_unmap_grant_ref` of `req.handle` from `maptrack`, whose granter is
/// `granter` (found with [`Maptrack::granter_of`]). See the module rules.
pub fn unmap_grant_ref<S, const F: usize, const N: usize>(
    maptrack: &mut Maptrack<N>,
    granter: Granter<'_, S, F>,
    req: &UnmapRequest,
) -> Result<Unmapped, GntError>
where
    S: SharedEntries + ?Sized,
{
    let e = *maptrack.get(req.handle).ok_or(GntError::BadHandle)?;
    if granter.table.dom() != e.dom {
        // The caller fetched another domain's table: Xen's "unstable handle".
        return Err(GntError::BadHandle);
    }
    debug_assert_eq!(
        granter.table.active(e.gref).map(|a| a.1),
        Some(e.frame),
        "a live handle refers to a pinned entry"
    );
    if req.dev_bus_addr != 0 && req.dev_bus_addr >> PAGE_SHIFT != e.frame.0 {
        return Err(GntError::FrameMismatch);
    }
    let device = req.dev_bus_addr != 0 && e.device_mapped();
    let host = req.host_addr != 0 && e.host_mapped();
    if host {
        if req.host_addr != e.host_addr {
            return Err(GntError::HostAddrMismatch);
        }
        if req.pte_frame != Some(e.frame) {
            return Err(GntError::FrameMismatch);
        }
    }
    let readonly = e.readonly();
    let drop = Pins::for_access(host, device, readonly);
    if drop.is_pinned() {
        granter.table.unpin(granter.shared, e.gref, drop);
    }
    let mut live = e;
    if host {
        live.flags &= !GNTMAP_HOST_MAP;
    }
    if device {
        live.flags &= !GNTMAP_DEVICE_MAP;
    }
    let handle_freed = !live.host_mapped() && !live.device_mapped();
    if handle_freed {
        maptrack.free(req.handle);
    } else if let Some(slot) = maptrack.get_mut(req.handle) {
        *slot = live;
    }
    Ok(Unmapped {
        dom: e.dom,
        gref: e.gref,
        frame: e.frame,
        host: host.then_some(e.host_addr),
        contains_pte: e.contains_pte(),
        device,
        refs: Refs::for_parts(host, device, readonly),
        handle_freed,
    })
}

/// A mapping torn down without the grantee asking (undo of a map whose
/// references could not be taken, or domain teardown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Released {
    /// The freed handle.
    pub handle: GrantHandle,
    /// The mapping as it was: its live parts (`host_mapped`, `device_mapped`),
    /// `host_addr`, frame and granter.
    pub entry: MapEntry,
    /// References to drop for the live parts (none after an undo of a map whose
    /// references were not taken).
    pub refs: Refs,
}

/// Releases mapping `handle`: drops its pins in `granter` (`None` if the
/// granter's table is gone: the pins went with it) and frees the handle. `None`
/// (nothing changed) if the handle is not live or `granter` is another domain's
/// table.
pub fn release_mapping<S, const F: usize, const N: usize>(
    maptrack: &mut Maptrack<N>,
    granter: Option<Granter<'_, S, F>>,
    handle: GrantHandle,
) -> Option<Released>
where
    S: SharedEntries + ?Sized,
{
    let e = *maptrack.get(handle)?;
    if let Some(g) = granter {
        if g.table.dom() != e.dom {
            return None;
        }
        let drop = e.pins();
        if drop.is_pinned() {
            g.table.unpin(g.shared, e.gref, drop);
        }
    }
    maptrack.free(handle);
    Some(Released {
        handle,
        entry: e,
        refs: Refs::for_parts(e.host_mapped(), e.device_mapped(), e.readonly()),
    })
}

/// Domain teardown of a grantee (Xen's `gnttab_release_mappings`): releases
/// every mapping in `maptrack`, handing each to `sink` so the hypervisor clears
/// the PTE / bus mapping and drops the references. Afterwards the maptrack is
/// empty.
pub fn release_all<E, const F: usize, const N: usize>(
    maptrack: &mut Maptrack<N>,
    domains: &mut E,
    mut sink: impl FnMut(Released),
) where
    E: GrantDomains<F> + ?Sized,
{
    for h in 0..maptrack.capacity() as GrantHandle {
        let Some(dom) = maptrack.get(h).map(|e| e.dom) else {
            continue;
        };
        if let Some(r) = release_mapping(maptrack, domains.granter(dom), h) {
            sink(r);
        }
    }
}

/// Forced revocation: releases the mappings in `maptrack` of grants of
/// `granter` only (used when a dying granter must not wait for its grantees).
pub fn release_granter<S, const F: usize, const N: usize>(
    maptrack: &mut Maptrack<N>,
    granter: Granter<'_, S, F>,
    mut sink: impl FnMut(Released),
) where
    S: SharedEntries + ?Sized,
{
    let dom = granter.table.dom();
    for h in 0..maptrack.capacity() as GrantHandle {
        if maptrack.get(h).is_some_and(|e| e.dom == dom) {
            let g = Granter {
                table: &mut *granter.table,
                shared: &mut *granter.shared,
            };
            if let Some(r) = release_mapping(maptrack, Some(g), h) {
                sink(r);
            }
        }
    }
}

/// One resolved side of a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyEnd {
    /// The domain owning the frame (`DOMID_SELF` resolved).
    pub dom: DomId,
    /// The frame to read or write.
    pub mfn: Mfn,
    /// Byte offset in the frame.
    pub offset: u16,
    /// The grant ref pinned for the copy, if the side is a grant.
    pub gref: Option<GrantRef>,
}

/// A validated copy: take a page reference on each frame for its side's
/// domain (`dom`) — `GNTST_general_error` if the source's fails — and a
/// writable-type reference on the destination (Xen's `get_page` /
/// `get_page_type` on every copy), copy `len` bytes from `src` to `dst`, drop
/// those references, then call [`copy_complete`]. A gref side's frame is the
/// one captured at the entry's first pin, not re-checked here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyGrant {
    /// Source.
    pub src: CopyEnd,
    /// Destination.
    pub dst: CopyEnd,
    /// Bytes.
    pub len: u16,
}

const READ_PIN: Pins = Pins::for_access(true, false, true);
const WRITE_PIN: Pins = Pins::for_access(true, false, false);

fn resolve(dom: DomId, ldom: DomId) -> DomId {
    if dom == DOMID_SELF { ldom } else { dom }
}

/// `GNTTABOP_copy` by domain `ldom` (`privileged` for a control domain): checks
/// and pins both sides and returns the frames. See the module rules.
pub fn gnttab_copy<E, O, const F: usize>(
    domains: &mut E,
    owners: &O,
    ldom: DomId,
    privileged: bool,
    op: &GnttabCopy,
) -> Result<CopyGrant, GntError>
where
    E: GrantDomains<F> + ?Sized,
    O: FrameOwnership + ?Sized,
{
    let (src, dst, len, flags) = (op.source, op.dest, op.len, op.flags);
    let page = PAGE_SIZE as u32;
    if u32::from(src.offset) + u32::from(len) > page
        || u32::from(dst.offset) + u32::from(len) > page
    {
        return Err(GntError::BadCopyArg);
    }
    let src_gref = flags & GNTCOPY_SOURCE_GREF != 0;
    let dst_gref = flags & GNTCOPY_DEST_GREF != 0;
    let sdom = resolve(src.domid, ldom);
    let ddom = resolve(dst.domid, ldom);
    if (!src_gref && sdom != ldom && !privileged) || (!dst_gref && ddom != ldom && !privileged) {
        return Err(GntError::CopyNotPermitted);
    }
    if domains.granter(sdom).is_none() || domains.granter(ddom).is_none() {
        return Err(GntError::BadDomain);
    }
    let s = acquire_side(domains, owners, &src, sdom, src_gref, ldom, READ_PIN)?;
    let d = match acquire_side(domains, owners, &dst, ddom, dst_gref, ldom, WRITE_PIN) {
        Ok(d) => d,
        Err(e) => {
            release_side(domains, &s, READ_PIN);
            return Err(e);
        }
    };
    Ok(CopyGrant {
        src: s,
        dst: d,
        len,
    })
}

/// Ends a copy: releases the temporary pins of its grant sides.
pub fn copy_complete<E, const F: usize>(domains: &mut E, copy: &CopyGrant)
where
    E: GrantDomains<F> + ?Sized,
{
    release_side(domains, &copy.src, READ_PIN);
    release_side(domains, &copy.dst, WRITE_PIN);
}

fn acquire_side<E, O, const F: usize>(
    domains: &mut E,
    owners: &O,
    side: &GnttabCopyPtr,
    dom: DomId,
    is_gref: bool,
    ldom: DomId,
    pin: Pins,
) -> Result<CopyEnd, GntError>
where
    E: GrantDomains<F> + ?Sized,
    O: FrameOwnership + ?Sized,
{
    let (u, offset) = (side.u, side.offset);
    if is_gref {
        let g = domains.granter(dom).ok_or(GntError::BadDomain)?;
        let mfn = g.table.pin(g.shared, owners, u, ldom, pin, false)?;
        Ok(CopyEnd {
            dom,
            mfn,
            offset,
            gref: Some(u),
        })
    } else {
        // A PV guest's GMFN is a machine frame number.
        let mfn = Mfn(u64::from(u));
        if !owners.owns(dom, mfn) {
            return Err(GntError::FrameNotOwned);
        }
        Ok(CopyEnd {
            dom,
            mfn,
            offset,
            gref: None,
        })
    }
}

fn release_side<E, const F: usize>(domains: &mut E, end: &CopyEnd, pin: Pins)
where
    E: GrantDomains<F> + ?Sized,
{
    if let Some(gref) = end.gref
        && let Some(g) = domains.granter(end.dom)
    {
        g.table.unpin(g.shared, gref, pin);
    }
}
