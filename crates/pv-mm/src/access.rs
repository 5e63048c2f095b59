//! Who may act on whose memory: the engine's own check of the domain ids the
//! hypervisor passes in.
//!
//! The hypervisor decides privilege before calling (and resolves `foreigndom`);
//! the engine checks again so that a binding mistake cannot let a domain touch
//! another's frames. Failures are `-ESRCH`, as Xen's `get_pg_owner` refusal.

use xen_abi::domid::{DOMID_FIRST_RESERVED, DOMID_IO, DOMID_SELF, DOMID_XEN, DomId};
use xen_abi::errno::Errno;

use crate::types::Caller;

/// `DOMID_SELF` names the caller.
pub(crate) const fn resolve(caller: &Caller, dom: DomId) -> DomId {
    if dom == DOMID_SELF { caller.domid } else { dom }
}

/// Checks FD, the expected owner of data frames: the caller itself, `DOMID_IO`
/// (I/O frames, subject to the caller's I/O-memory access), or — for a
/// privileged caller — another domain or `DOMID_XEN`. Returns the resolved id.
pub(crate) fn check_pg_owner(caller: &Caller, pg_owner: DomId) -> Result<DomId, Errno> {
    let d = resolve(caller, pg_owner);
    if d == caller.domid || d == DOMID_IO {
        return Ok(d);
    }
    if caller.privileged && (d < DOMID_FIRST_RESERVED || d == DOMID_XEN) {
        return Ok(d);
    }
    Err(Errno::ESRCH)
}

/// Checks a domain whose page tables (or pinned frames) the caller names: an
/// ordinary domain (`-EINVAL` otherwise), the caller itself or — for a
/// privileged caller — any other. Returns the resolved id.
pub(crate) fn check_pt_owner(caller: &Caller, pt_owner: DomId) -> Result<DomId, Errno> {
    let d = resolve(caller, pt_owner);
    if d >= DOMID_FIRST_RESERVED {
        return Err(Errno::EINVAL);
    }
    if d != caller.domid && !caller.privileged {
        return Err(Errno::ESRCH);
    }
    Ok(d)
}

/// Whether the caller may change tables owned by `owner`.
pub(crate) const fn may_modify(caller: &Caller, owner: DomId) -> bool {
    owner < DOMID_FIRST_RESERVED && (owner == caller.domid || caller.privileged)
}
