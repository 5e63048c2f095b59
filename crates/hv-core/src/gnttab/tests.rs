//! Host tests of the grant-table state machine: every rule with a passing and a
//! failing case, and a property test of random map/unmap/copy/revoke sequences.

use super::*;
use crate::addr::Mfn;
use proptest::prelude::*;
use std::boxed::Box;
use std::vec;
use std::vec::Vec;
use xen_abi::domid::{DOMID_SELF, DomId};
use xen_abi::errno::Errno;
use xen_abi::grant::*;
use xen_abi::types::GrantRef;

// ---------------------------------------------------------------- fixtures

/// Domain `d` owns frames `(d + 1) * 0x1000 .. (d + 2) * 0x1000` (no domain
/// owns frame 0, whose bus address 0 would mean "no device part" at unmap).
struct Owners;

impl FrameOwnership for Owners {
    fn owns(&self, dom: DomId, mfn: Mfn) -> bool {
        mfn.0 >> 12 == u64::from(dom) + 1
    }
}

fn frame_of(dom: DomId, n: u32) -> u32 {
    (u32::from(dom) + 1) * 0x1000 + n
}

fn mfn_of(dom: DomId, n: u32) -> Mfn {
    Mfn(u64::from(frame_of(dom, n)))
}

struct Dom<const F: usize, const N: usize> {
    table: GrantTable<F>,
    shared: Vec<GrantEntryV1>,
    maptrack: Maptrack<N>,
}

/// Domains 0..n, indexed by domid.
struct World<const F: usize = 2, const N: usize = 8> {
    doms: Vec<Dom<F, N>>,
}

impl<const F: usize, const N: usize> World<F, N> {
    fn new(n: usize) -> Self {
        World {
            doms: (0..n)
                .map(|d| Dom {
                    table: GrantTable::new(d as DomId),
                    shared: vec![GrantEntryV1::default(); F * 512],
                    maptrack: Maptrack::new(),
                })
                .collect(),
        }
    }

    /// The granting guest publishes an access grant: domid and frame, then flags.
    fn grant(&mut self, granter: DomId, gref: GrantRef, to: DomId, frame: u32, readonly: bool) {
        let e = &mut self.doms[granter as usize].shared[gref as usize];
        e.domid = to;
        e.frame = frame;
        e.flags = GTF_PERMIT_ACCESS | if readonly { GTF_READONLY } else { 0 };
    }

    fn entry(&self, dom: DomId, gref: GrantRef) -> GrantEntryV1 {
        self.doms[dom as usize].shared[gref as usize]
    }

    fn flags(&self, dom: DomId, gref: GrantRef) -> u16 {
        self.entry(dom, gref).flags
    }

    fn table(&self, dom: DomId) -> &GrantTable<F> {
        &self.doms[dom as usize].table
    }

    fn maptrack(&self, dom: DomId) -> &Maptrack<N> {
        &self.doms[dom as usize].maptrack
    }

    fn revoke(&mut self, dom: DomId, gref: GrantRef) -> Result<(), u16> {
        guest_end_access(&mut self.doms[dom as usize].shared[..], gref)
    }

    /// The grantee's maptrack and the granter's table (the same domain allowed).
    fn parts(
        &mut self,
        grantee: DomId,
        granter: DomId,
    ) -> (&mut Maptrack<N>, Option<Granter<'_, [GrantEntryV1], F>>) {
        let (a, b) = (grantee as usize, granter as usize);
        if b >= self.doms.len() {
            return (&mut self.doms[a].maptrack, None);
        }
        if a == b {
            let d = &mut self.doms[a];
            return (
                &mut d.maptrack,
                Some(Granter {
                    table: &mut d.table,
                    shared: &mut d.shared[..],
                }),
            );
        }
        let (lo, hi) = self.doms.split_at_mut(a.max(b));
        let (ga, gb) = if a < b {
            (&mut lo[a], &mut hi[0])
        } else {
            (&mut hi[0], &mut lo[b])
        };
        (
            &mut ga.maptrack,
            Some(Granter {
                table: &mut gb.table,
                shared: &mut gb.shared[..],
            }),
        )
    }

    fn map(
        &mut self,
        grantee: DomId,
        granter: DomId,
        gref: GrantRef,
        flags: u32,
        host_addr: u64,
    ) -> Result<MapGrant, GntError> {
        let (mt, g) = self.parts(grantee, granter);
        map_grant_ref(
            mt,
            grantee,
            g,
            &Owners,
            &MapRequest {
                host_addr,
                flags,
                gref,
            },
        )
    }

    fn unmap(&mut self, grantee: DomId, req: UnmapRequest) -> Result<Unmapped, GntError> {
        let granter = self.maptrack(grantee).granter_of(req.handle)?;
        let (mt, g) = self.parts(grantee, granter);
        unmap_grant_ref(mt, g.expect("granter exists"), &req)
    }

    /// Unmaps the host part of `m` the way a well-behaved grantee does.
    fn unmap_host(&mut self, grantee: DomId, m: &MapGrant, host_addr: u64) -> Unmapped {
        self.unmap(
            grantee,
            UnmapRequest {
                handle: m.handle,
                host_addr,
                dev_bus_addr: 0,
                pte_frame: Some(m.frame),
            },
        )
        .expect("unmap")
    }

    fn copy(
        &mut self,
        ldom: DomId,
        privileged: bool,
        op: &GnttabCopy,
    ) -> Result<CopyGrant, GntError> {
        gnttab_copy(self, &Owners, ldom, privileged, op)
    }
}

impl<const F: usize, const N: usize> GrantDomains<F> for World<F, N> {
    type Shared = [GrantEntryV1];

    fn granter(&mut self, dom: DomId) -> Option<Granter<'_, [GrantEntryV1], F>> {
        let d = self.doms.get_mut(dom as usize)?;
        Some(Granter {
            table: &mut d.table,
            shared: &mut d.shared[..],
        })
    }
}

const GRANTER: DomId = 1;
const GRANTEE: DomId = 2;
const OTHER: DomId = 3;
const VA: u64 = 0xB000_0000;
const RW_HOST: u32 = GNTMAP_HOST_MAP;
const RO_HOST: u32 = GNTMAP_HOST_MAP | GNTMAP_READONLY;
const RW_BOTH: u32 = GNTMAP_HOST_MAP | GNTMAP_DEVICE_MAP;

fn world() -> World {
    World::new(4)
}

fn pins(hr: u8, hw: u8, dr: u8, dw: u8) -> Pins {
    Pins {
        host_read: hr,
        host_write: hw,
        dev_read: dr,
        dev_write: dw,
    }
}

/// Asserts that `r` failed with `want`, reported to the guest as `status`.
#[track_caller]
fn assert_fails<T: core::fmt::Debug>(r: Result<T, GntError>, want: GntError, status: i16) {
    let e = r.unwrap_err();
    assert_eq!(e, want);
    assert_eq!(e.status(), status);
}

// ---------------------------------------------------------------- errors

#[test]
fn every_error_has_xens_status() {
    let table = [
        (GntError::BadMapFlags, GNTST_BAD_GNTREF),
        (GntError::BadDomain, GNTST_BAD_DOMAIN),
        (GntError::NoMaptrack, GNTST_NO_DEVICE_SPACE),
        (GntError::BadGntref, GNTST_BAD_GNTREF),
        (GntError::PinConflict, GNTST_GENERAL_ERROR),
        (GntError::NotGranted, GNTST_GENERAL_ERROR),
        (GntError::ReadonlyGrant, GNTST_GENERAL_ERROR),
        (GntError::Unstable, GNTST_GENERAL_ERROR),
        (GntError::FrameNotOwned, GNTST_GENERAL_ERROR),
        (GntError::BadHandle, GNTST_BAD_HANDLE),
        (GntError::FrameMismatch, GNTST_GENERAL_ERROR),
        (GntError::HostAddrMismatch, GNTST_GENERAL_ERROR),
        (GntError::BadCopyArg, GNTST_BAD_COPY_ARG),
        (GntError::CopyNotPermitted, GNTST_PERMISSION_DENIED),
        (GntError::TooManyFrames, GNTST_GENERAL_ERROR),
        (GntError::NoMemory, GNTST_GENERAL_ERROR),
    ];
    for (e, st) in table {
        assert_eq!(e.status(), st, "{e:?}");
    }
    assert_eq!(GntError::BadCopyArg.status(), -10);
    assert_eq!(GntError::NoMaptrack.status(), -7);
}

// ---------------------------------------------------------------- table size

#[test]
fn new_table_has_one_frame_of_512_entries() {
    let t = GrantTable::<4>::new(7);
    assert_eq!(t.dom(), 7);
    assert_eq!(t.nr_frames(), 1);
    assert_eq!(t.nr_entries(), 512);
    assert_eq!(t.query_size(), (1, 4));
    assert!(!t.has_active_pins());
    assert_eq!(t.pins(511), Some(Pins::NONE));
    assert_eq!(t.pins(512), None);
}

#[test]
fn default_table_maximum_is_xens_32_frames() {
    let t: Box<GrantTable> = Box::new(GrantTable::new(1));
    assert_eq!(t.max_nr_frames(), DEFAULT_MAX_NR_GRANT_FRAMES);
    assert_eq!(t.query_size(), (1, 32));
}

#[test]
fn setup_table_grows_and_reports_the_frames_asked() {
    let mut t = GrantTable::<4>::new(1);
    let mut asked = None;
    assert_eq!(
        t.setup_table(3, |r| {
            asked = Some(r);
            true
        }),
        Ok(3)
    );
    assert_eq!(asked, Some(1..3));
    assert_eq!(t.nr_frames(), 3);
    assert_eq!(t.nr_entries(), 3 * 512);
    assert_eq!(t.query_size(), (3, 4));
    // Asking for fewer reports fewer and never shrinks; no growth requested.
    assert_eq!(t.setup_table(1, |_| panic!("no growth")), Ok(1));
    assert_eq!(t.nr_frames(), 3);
    // Up to the maximum.
    assert_eq!(t.setup_table(4, |r| r == (3..4)), Ok(4));
    assert_eq!(t.nr_frames(), 4);
}

#[test]
fn setup_table_beyond_maximum_is_general_error() {
    let mut t = GrantTable::<4>::new(1);
    assert_fails(
        t.setup_table(5, |_| panic!("not called")),
        GntError::TooManyFrames,
        GNTST_GENERAL_ERROR,
    );
    assert_eq!(t.nr_frames(), 1);
}

#[test]
fn setup_table_allocation_failure_keeps_the_size() {
    let mut t = GrantTable::<4>::new(1);
    assert_eq!(t.setup_table(2, |_| false), Err(GntError::NoMemory));
    assert_eq!(t.nr_frames(), 1);
    assert_eq!(t.nr_entries(), 512);
}

#[test]
fn only_version_1() {
    let t = GrantTable::<1>::new(1);
    assert_eq!(t.set_version(1), Ok(()));
    assert_eq!(t.set_version(2), Err(Errno::ENOSYS));
    assert_eq!(t.set_version(0), Err(Errno::EINVAL));
    assert_eq!(t.set_version(3), Err(Errno::EINVAL));
    assert_eq!(t.get_version(), 1);
}

#[test]
fn reset_returns_to_a_fresh_table() {
    let mut w = world();
    w.doms[1].table.setup_table(2, |_| true).unwrap();
    w.grant(GRANTER, 5, GRANTEE, frame_of(GRANTER, 5), false);
    w.map(GRANTEE, GRANTER, 5, RW_HOST, VA).unwrap();
    let t = &mut w.doms[1].table;
    t.reset(9);
    assert_eq!(t.dom(), 9);
    assert_eq!(t.nr_frames(), 1);
    assert!(!t.has_active_pins());
    assert_eq!(t.pins(5), Some(Pins::NONE));
}

// ---------------------------------------------------------------- map

#[test]
fn map_pins_sets_flags_and_returns_frame() {
    let mut w = world();
    w.grant(GRANTER, 10, GRANTEE, frame_of(GRANTER, 0x42), false);
    let m = w.map(GRANTEE, GRANTER, 10, RW_HOST, VA).unwrap();
    assert_eq!(m.frame, mfn_of(GRANTER, 0x42));
    assert!(!m.readonly);
    assert!(m.host_map && !m.device_map);
    assert_eq!(m.dev_bus_addr, u64::from(frame_of(GRANTER, 0x42)) << 12);
    assert_eq!(
        m.refs,
        Refs {
            page: 1,
            writable_type: 0
        }
    );
    assert_eq!(
        w.flags(GRANTER, 10),
        GTF_PERMIT_ACCESS | GTF_READING | GTF_WRITING
    );
    let t = w.table(GRANTER);
    assert_eq!(t.pins(10), Some(pins(0, 1, 0, 0)));
    assert_eq!(t.active(10), Some((GRANTEE, m.frame)));
    assert!(t.has_active_pins());
    assert_eq!(t.nr_pinned(), 1);
    let e = *w.maptrack(GRANTEE).get(m.handle).unwrap();
    assert_eq!(
        e,
        MapEntry {
            dom: GRANTER,
            gref: 10,
            flags: RW_HOST,
            host_addr: VA,
            frame: m.frame
        }
    );
    // The ABI OUT fields.
    let mut op = GnttabMapGrantRef {
        status: -99,
        ..Default::default()
    };
    m.write_out(&mut op);
    assert_eq!(
        (op.status, op.handle, { op.dev_bus_addr }),
        (GNTST_OKAY, m.handle, m.dev_bus_addr)
    );
}

#[test]
fn map_request_from_abi() {
    let op = GnttabMapGrantRef {
        host_addr: VA,
        flags: RO_HOST,
        gref: 77,
        dom: GRANTER,
        ..Default::default()
    };
    assert_eq!(
        MapRequest::from(&op),
        MapRequest {
            host_addr: VA,
            flags: RO_HOST,
            gref: 77
        }
    );
}

#[test]
fn map_needs_host_or_device_flag() {
    let mut w = world();
    w.grant(GRANTER, 1, GRANTEE, frame_of(GRANTER, 1), false);
    for flags in [
        0,
        GNTMAP_READONLY,
        GNTMAP_CONTAINS_PTE | GNTMAP_APPLICATION_MAP,
    ] {
        assert_fails(
            w.map(GRANTEE, GRANTER, 1, flags, VA),
            GntError::BadMapFlags,
            GNTST_BAD_GNTREF,
        );
    }
    assert_eq!(w.flags(GRANTER, 1), GTF_PERMIT_ACCESS);
    assert_eq!(w.maptrack(GRANTEE).live(), 0);
    // Device only is enough.
    let m = w.map(GRANTEE, GRANTER, 1, GNTMAP_DEVICE_MAP, 0).unwrap();
    assert!(m.device_map && !m.host_map);
    assert_eq!(w.table(GRANTER).pins(1), Some(pins(0, 0, 0, 1)));
}

#[test]
fn map_of_missing_domain_is_bad_domain() {
    let mut w = world();
    let e = w.map(GRANTEE, 9, 1, RW_HOST, VA).unwrap_err();
    assert_eq!(e.status(), GNTST_BAD_DOMAIN);
    assert_eq!(w.maptrack(GRANTEE).live(), 0);
}

#[test]
fn map_ref_beyond_table_is_bad_gntref_until_the_table_grows() {
    let mut w = world();
    w.grant(GRANTER, 600, GRANTEE, frame_of(GRANTER, 6), false);
    assert_fails(
        w.map(GRANTEE, GRANTER, 600, RW_HOST, VA),
        GntError::BadGntref,
        GNTST_BAD_GNTREF,
    );
    assert_eq!(w.flags(GRANTER, 600), GTF_PERMIT_ACCESS);
    w.doms[1].table.setup_table(2, |_| true).unwrap();
    let m = w.map(GRANTEE, GRANTER, 600, RW_HOST, VA).unwrap();
    assert_eq!(m.frame, mfn_of(GRANTER, 6));
    assert_eq!(
        w.map(GRANTEE, GRANTER, 1024, RW_HOST, VA),
        Err(GntError::BadGntref)
    );
}

#[test]
fn map_needs_permit_access_to_the_mapping_domain() {
    let mut w = world();
    // Invalid type.
    assert_fails(
        w.map(GRANTEE, GRANTER, 3, RW_HOST, VA),
        GntError::NotGranted,
        GNTST_GENERAL_ERROR,
    );
    // Granted to another domain.
    w.grant(GRANTER, 3, OTHER, frame_of(GRANTER, 3), false);
    assert_eq!(
        w.map(GRANTEE, GRANTER, 3, RW_HOST, VA),
        Err(GntError::NotGranted)
    );
    // Accept-transfer entries cannot be mapped.
    w.doms[1].shared[4] = GrantEntryV1 {
        flags: GTF_ACCEPT_TRANSFER,
        domid: GRANTEE,
        frame: 0,
    };
    assert_eq!(
        w.map(GRANTEE, GRANTER, 4, RW_HOST, VA),
        Err(GntError::NotGranted)
    );
    // A sub-page entry cannot be mapped.
    w.doms[1].shared[5] = GrantEntryV1 {
        flags: GTF_PERMIT_ACCESS | GTF_SUB_PAGE,
        domid: GRANTEE,
        frame: frame_of(GRANTER, 5),
    };
    assert_eq!(
        w.map(GRANTEE, GRANTER, 5, RW_HOST, VA),
        Err(GntError::NotGranted)
    );
    // Nothing changed on failure.
    assert_eq!(w.flags(GRANTER, 3), GTF_PERMIT_ACCESS);
    assert!(!w.table(GRANTER).has_active_pins());
    assert_eq!(w.maptrack(GRANTEE).live(), 0);
    // The domain it was granted to may map it.
    assert!(w.map(OTHER, GRANTER, 3, RW_HOST, VA).is_ok());
}

#[test]
fn readonly_grant_refuses_write_maps_and_allows_read_maps() {
    let mut w = world();
    w.grant(GRANTER, 8, GRANTEE, frame_of(GRANTER, 8), true);
    assert_fails(
        w.map(GRANTEE, GRANTER, 8, RW_HOST, VA),
        GntError::ReadonlyGrant,
        GNTST_GENERAL_ERROR,
    );
    assert_eq!(w.flags(GRANTER, 8), GTF_PERMIT_ACCESS | GTF_READONLY);
    let m = w.map(GRANTEE, GRANTER, 8, RO_HOST, VA).unwrap();
    assert!(m.readonly);
    assert_eq!(
        m.refs,
        Refs {
            page: 1,
            writable_type: 0
        }
    );
    assert_eq!(
        w.flags(GRANTER, 8),
        GTF_PERMIT_ACCESS | GTF_READONLY | GTF_READING
    );
    // A write map of the now-pinned read-only entry is still refused.
    assert_eq!(
        w.map(GRANTEE, GRANTER, 8, RW_HOST, VA + 0x1000),
        Err(GntError::ReadonlyGrant)
    );
    assert_eq!(w.table(GRANTER).pins(8), Some(pins(1, 0, 0, 0)));
    assert_eq!(
        w.flags(GRANTER, 8),
        GTF_PERMIT_ACCESS | GTF_READONLY | GTF_READING
    );
}

#[test]
fn several_maps_of_one_ref_count_pins_and_clear_flags_at_the_last_unmap() {
    let mut w = world();
    w.grant(GRANTER, 2, GRANTEE, frame_of(GRANTER, 2), false);
    let r1 = w.map(GRANTEE, GRANTER, 2, RO_HOST, VA).unwrap();
    assert_eq!(w.flags(GRANTER, 2), GTF_PERMIT_ACCESS | GTF_READING);
    let w1 = w.map(GRANTEE, GRANTER, 2, RW_HOST, VA + 0x1000).unwrap();
    let w2 = w.map(GRANTEE, GRANTER, 2, RW_BOTH, VA + 0x2000).unwrap();
    assert_ne!(r1.handle, w1.handle);
    assert_ne!(w1.handle, w2.handle);
    assert_eq!(
        w2.refs,
        Refs {
            page: 2,
            writable_type: 1
        }
    );
    assert_eq!(w.table(GRANTER).pins(2), Some(pins(1, 2, 0, 1)));
    assert_eq!(w.table(GRANTER).nr_pinned(), 1);
    let all = GTF_PERMIT_ACCESS | GTF_READING | GTF_WRITING;
    assert_eq!(w.flags(GRANTER, 2), all);

    w.unmap_host(GRANTEE, &w1, VA + 0x1000);
    assert_eq!(w.flags(GRANTER, 2), all, "a write pin remains");
    // Host part of w2: the device write pin still holds GTF_writing.
    let u = w.unmap_host(GRANTEE, &w2, VA + 0x2000);
    assert!(!u.handle_freed);
    assert_eq!(w.flags(GRANTER, 2), all);
    let u = w
        .unmap(
            GRANTEE,
            UnmapRequest {
                handle: w2.handle,
                host_addr: 0,
                dev_bus_addr: w2.dev_bus_addr,
                pte_frame: None,
            },
        )
        .unwrap();
    assert!(u.device && u.handle_freed && u.host.is_none());
    assert_eq!(
        u.refs,
        Refs {
            page: 1,
            writable_type: 1
        }
    );
    assert_eq!(
        w.flags(GRANTER, 2),
        GTF_PERMIT_ACCESS | GTF_READING,
        "last write pin gone"
    );
    assert_eq!(w.table(GRANTER).pins(2), Some(pins(1, 0, 0, 0)));
    w.unmap_host(GRANTEE, &r1, VA);
    assert_eq!(w.flags(GRANTER, 2), GTF_PERMIT_ACCESS, "last pin gone");
    assert!(!w.table(GRANTER).has_active_pins());
    assert_eq!(w.table(GRANTER).active(2), None);
    assert_eq!(w.maptrack(GRANTEE).live(), 0);
}

#[test]
fn write_map_after_read_map_sets_writing() {
    let mut w = world();
    w.grant(GRANTER, 2, GRANTEE, frame_of(GRANTER, 2), false);
    w.map(GRANTEE, GRANTER, 2, RO_HOST, VA).unwrap();
    assert_eq!(w.flags(GRANTER, 2) & GTF_WRITING, 0);
    w.map(GRANTEE, GRANTER, 2, RW_HOST, VA + 0x1000).unwrap();
    assert_ne!(w.flags(GRANTER, 2) & GTF_WRITING, 0);
}

#[test]
fn guest_changing_frame_after_map_does_not_move_the_mapping() {
    let mut w = world();
    w.grant(GRANTER, 4, GRANTEE, frame_of(GRANTER, 0x10), false);
    let m1 = w.map(GRANTEE, GRANTER, 4, RW_HOST, VA).unwrap();
    w.doms[1].shared[4].frame = frame_of(GRANTER, 0x20);
    let m2 = w.map(GRANTEE, GRANTER, 4, RO_HOST, VA + 0x1000).unwrap();
    assert_eq!(m1.frame, mfn_of(GRANTER, 0x10));
    assert_eq!(m2.frame, mfn_of(GRANTER, 0x10));
    assert_eq!(
        w.table(GRANTER).active(4),
        Some((GRANTEE, mfn_of(GRANTER, 0x10)))
    );
    // The unmap checks against the pinned frame, not the guest's new one.
    let bad = w.unmap(
        GRANTEE,
        UnmapRequest {
            handle: m1.handle,
            host_addr: VA,
            dev_bus_addr: 0,
            pte_frame: Some(mfn_of(GRANTER, 0x20)),
        },
    );
    assert_eq!(bad, Err(GntError::FrameMismatch));
    let u = w.unmap_host(GRANTEE, &m1, VA);
    assert_eq!(u.frame, mfn_of(GRANTER, 0x10));
    w.unmap_host(GRANTEE, &m2, VA + 0x1000);
    // Once idle, the next first pin captures the new frame.
    let m3 = w.map(GRANTEE, GRANTER, 4, RW_HOST, VA).unwrap();
    assert_eq!(m3.frame, mfn_of(GRANTER, 0x20));
}

#[test]
fn pinned_entry_refuses_another_domain_even_if_the_guest_regrants_it() {
    let mut w = world();
    w.grant(GRANTER, 6, GRANTEE, frame_of(GRANTER, 6), false);
    w.map(GRANTEE, GRANTER, 6, RW_HOST, VA).unwrap();
    // Misbehaving granter rewrites domid under the pin.
    w.doms[1].shared[6].domid = OTHER;
    assert_fails(
        w.map(OTHER, GRANTER, 6, RW_HOST, VA),
        GntError::PinConflict,
        GNTST_GENERAL_ERROR,
    );
    // The pinning domain may still add pins.
    assert!(w.map(GRANTEE, GRANTER, 6, RO_HOST, VA + 0x1000).is_ok());
}

#[test]
fn pin_counters_stop_before_overflow() {
    let mut w = World::<1, 256>::new(3);
    w.grant(GRANTER, 0, GRANTEE, frame_of(GRANTER, 0), false);
    for i in 0..128u64 {
        w.map(GRANTEE, GRANTER, 0, RO_HOST, VA + i * 0x1000)
            .unwrap();
    }
    assert_eq!(w.table(GRANTER).pins(0), Some(pins(128, 0, 0, 0)));
    assert_fails(
        w.map(GRANTEE, GRANTER, 0, RO_HOST, VA),
        GntError::PinConflict,
        GNTST_GENERAL_ERROR,
    );
    assert_eq!(w.maptrack(GRANTEE).live(), 128);
}

#[test]
fn frame_not_owned_by_the_granter_is_refused_and_flags_restored() {
    let mut w = world();
    w.grant(GRANTER, 7, GRANTEE, frame_of(OTHER, 7), false);
    assert_fails(
        w.map(GRANTEE, GRANTER, 7, RW_HOST, VA),
        GntError::FrameNotOwned,
        GNTST_GENERAL_ERROR,
    );
    assert_eq!(w.flags(GRANTER, 7), GTF_PERMIT_ACCESS);
    assert!(!w.table(GRANTER).has_active_pins());
    assert_eq!(w.maptrack(GRANTEE).live(), 0);
}

#[test]
fn maptrack_exhaustion_is_no_device_space_and_frees_on_unmap() {
    let mut w = World::<1, 4>::new(3);
    w.grant(GRANTER, 0, GRANTEE, frame_of(GRANTER, 0), false);
    let maps: Vec<_> = (0..4u64)
        .map(|i| {
            w.map(GRANTEE, GRANTER, 0, RW_HOST, VA + i * 0x1000)
                .unwrap()
        })
        .collect();
    assert!(w.maptrack(GRANTEE).is_full());
    assert_fails(
        w.map(GRANTEE, GRANTER, 0, RW_HOST, VA),
        GntError::NoMaptrack,
        GNTST_NO_DEVICE_SPACE,
    );
    assert_eq!(w.table(GRANTER).pins(0), Some(pins(0, 4, 0, 0)));
    // The exhaustion check comes before the ref check, as in Xen.
    assert_eq!(
        w.map(GRANTEE, GRANTER, 9999, RW_HOST, VA),
        Err(GntError::NoMaptrack)
    );
    w.unmap_host(GRANTEE, &maps[2], VA + 0x2000);
    let again = w.map(GRANTEE, GRANTER, 0, RW_HOST, VA).unwrap();
    assert_eq!(again.handle, maps[2].handle, "LIFO reuse");
}

/// Flips `GTF_PWT` on every compare-and-swap: a guest racing forever.
struct RacingShared {
    entries: Vec<GrantEntryV1>,
    races_left: usize,
    cmpxchgs: usize,
}

impl SharedEntries for RacingShared {
    fn read(&self, gref: GrantRef) -> GrantEntryV1 {
        self.entries[..].read(gref)
    }

    fn cmpxchg_flags(
        &mut self,
        gref: GrantRef,
        old: EntryHeader,
        new_flags: u16,
    ) -> Result<(), EntryHeader> {
        self.cmpxchgs += 1;
        if self.races_left > 0 {
            self.races_left -= 1;
            let e = &mut self.entries[gref as usize];
            e.flags ^= GTF_PWT;
            return Err(EntryHeader::of(e));
        }
        self.entries[..].cmpxchg_flags(gref, old, new_flags)
    }

    fn clear_flags(&mut self, gref: GrantRef, bits: u16) {
        self.entries[..].clear_flags(gref, bits);
    }
}

fn racing(races: usize) -> RacingShared {
    let mut entries = vec![GrantEntryV1::default(); 512];
    entries[3] = GrantEntryV1 {
        flags: GTF_PERMIT_ACCESS,
        domid: GRANTEE,
        frame: frame_of(GRANTER, 3),
    };
    RacingShared {
        entries,
        races_left: races,
        cmpxchgs: 0,
    }
}

/// GRANTEE maps gref 3 read-write while the guest races the flags `races` times.
fn map_racing(
    races: usize,
) -> (
    Result<MapGrant, GntError>,
    RacingShared,
    GrantTable<1>,
    Maptrack<4>,
) {
    let mut table = GrantTable::<1>::new(GRANTER);
    let mut shared = racing(races);
    let mut mt = Maptrack::<4>::new();
    let req = MapRequest {
        host_addr: VA,
        flags: RW_HOST,
        gref: 3,
    };
    let g = Granter {
        table: &mut table,
        shared: &mut shared,
    };
    let r = map_grant_ref(&mut mt, GRANTEE, Some(g), &Owners, &req);
    (r, shared, table, mt)
}

#[test]
fn guest_racing_the_flags_forever_gets_general_error() {
    let (r, shared, table, mt) = map_racing(usize::MAX);
    assert_fails(r, GntError::Unstable, GNTST_GENERAL_ERROR);
    assert_eq!(shared.cmpxchgs, CMPXCHG_ATTEMPTS);
    assert_eq!(shared.entries[3].flags & (GTF_READING | GTF_WRITING), 0);
    assert!(!table.has_active_pins());
    assert_eq!(mt.live(), 0);
}

#[test]
fn a_few_races_are_retried_and_succeed() {
    let (r, shared, _, _) = map_racing(CMPXCHG_ATTEMPTS - 1);
    let m = r.unwrap();
    assert_eq!(m.frame, mfn_of(GRANTER, 3));
    assert_eq!(shared.cmpxchgs, CMPXCHG_ATTEMPTS);
    assert_ne!(shared.entries[3].flags & GTF_WRITING, 0);
    // The guest's racing changes of a cache bit were kept (toggled once per race).
    let want = if (CMPXCHG_ATTEMPTS - 1) % 2 == 1 {
        GTF_PWT
    } else {
        0
    };
    assert_eq!(m.cache_flags, want);
}

#[test]
fn a_domain_may_map_its_own_grant() {
    let mut w = world();
    w.grant(GRANTER, 1, GRANTER, frame_of(GRANTER, 1), false);
    let m = w.map(GRANTER, GRANTER, 1, RW_HOST, VA).unwrap();
    assert_eq!(w.table(GRANTER).active(1), Some((GRANTER, m.frame)));
    w.unmap_host(GRANTER, &m, VA);
    assert!(!w.table(GRANTER).has_active_pins());
}

/// Issue 10 finding 2: a domain grants itself a frame read-only and maps it.
/// The mapping holds a page reference of its own (not the PTE's, which the
/// guest can clear behind the grant code's back), so the frame cannot be freed
/// while pinned; and a copy from the pinned entry names the frame captured at
/// the first pin, with the granter as the domain the hypervisor's per-copy
/// `get_page` must check, however the guest rewrites the entry meanwhile.
#[test]
fn a_mapping_holds_its_frame_and_a_copy_names_the_pinned_frame_for_get_page() {
    let mut w = world();
    w.grant(GRANTER, 1, GRANTER, frame_of(GRANTER, 1), true);
    let m = w.map(GRANTER, GRANTER, 1, RO_HOST, VA).unwrap();
    assert_eq!(
        m.refs,
        Refs {
            page: 1,
            writable_type: 0
        },
        "a read-only host part still holds a page reference"
    );
    w.doms[GRANTER as usize].shared[1].frame = frame_of(GRANTER, 2);
    let op = copy_op(
        gref_ptr(DOMID_SELF, 1, 0),
        gmfn_ptr(DOMID_SELF, frame_of(GRANTER, 3), 0),
        8,
        GNTCOPY_SOURCE_GREF,
    );
    let cp = w.copy(GRANTER, false, &op).unwrap();
    assert_eq!((cp.src.dom, cp.src.mfn), (GRANTER, m.frame));
    copy_complete(&mut w, &cp);
    let u = w.unmap_host(GRANTER, &m, VA);
    assert_eq!(u.refs, m.refs, "the unmap drops exactly what the map took");
}

// ---------------------------------------------------------------- unmap

#[test]
fn unmap_of_bad_handle() {
    let mut w = world();
    for h in [0, 7, 8, u32::MAX] {
        let req = UnmapRequest {
            handle: h,
            host_addr: VA,
            ..Default::default()
        };
        assert_fails(w.unmap(GRANTEE, req), GntError::BadHandle, GNTST_BAD_HANDLE);
    }
    w.grant(GRANTER, 1, GRANTEE, frame_of(GRANTER, 1), false);
    let m = w.map(GRANTEE, GRANTER, 1, RW_HOST, VA).unwrap();
    w.unmap_host(GRANTEE, &m, VA);
    // Unmapped twice.
    let req = UnmapRequest {
        handle: m.handle,
        host_addr: VA,
        dev_bus_addr: 0,
        pte_frame: Some(m.frame),
    };
    assert_eq!(w.unmap(GRANTEE, req), Err(GntError::BadHandle));
    // Another domain's table passed in: refused as a bad handle.
    let m = w.map(GRANTEE, GRANTER, 1, RW_HOST, VA).unwrap();
    let (mt, g) = w.parts(GRANTEE, OTHER);
    let req = UnmapRequest {
        handle: m.handle,
        ..req
    };
    assert_eq!(
        unmap_grant_ref(mt, g.unwrap(), &req),
        Err(GntError::BadHandle)
    );
}

#[test]
fn unmap_checks_host_addr_pte_frame_and_bus_address() {
    let mut w = world();
    w.grant(GRANTER, 1, GRANTEE, frame_of(GRANTER, 1), false);
    let m = w.map(GRANTEE, GRANTER, 1, RW_BOTH, VA).unwrap();
    let good = UnmapRequest {
        handle: m.handle,
        host_addr: VA,
        dev_bus_addr: m.dev_bus_addr,
        pte_frame: Some(m.frame),
    };
    let cases = [
        (
            UnmapRequest {
                host_addr: VA + 0x1000,
                ..good
            },
            GntError::HostAddrMismatch,
        ),
        (
            UnmapRequest {
                pte_frame: None,
                ..good
            },
            GntError::FrameMismatch,
        ),
        (
            UnmapRequest {
                pte_frame: Some(mfn_of(GRANTER, 2)),
                ..good
            },
            GntError::FrameMismatch,
        ),
        (
            UnmapRequest {
                dev_bus_addr: m.dev_bus_addr + 0x1000,
                ..good
            },
            GntError::FrameMismatch,
        ),
    ];
    for (req, want) in cases {
        assert_fails(w.unmap(GRANTEE, req), want, GNTST_GENERAL_ERROR);
        // Nothing changed.
        assert_eq!(w.table(GRANTER).pins(1), Some(pins(0, 1, 0, 1)));
        assert!(w.maptrack(GRANTEE).get(m.handle).is_some());
    }
    let u = w.unmap(GRANTEE, good).unwrap();
    assert_eq!(u.host, Some(VA));
    assert!(u.device && u.handle_freed && !u.contains_pte);
    assert_eq!((u.dom, u.gref, u.frame), (GRANTER, 1, m.frame));
    assert_eq!(
        u.refs,
        Refs {
            page: 2,
            writable_type: 1
        }
    );
    assert_eq!(w.flags(GRANTER, 1), GTF_PERMIT_ACCESS);
}

#[test]
fn unmap_with_no_address_does_nothing() {
    let mut w = world();
    w.grant(GRANTER, 1, GRANTEE, frame_of(GRANTER, 1), true);
    let m = w
        .map(
            GRANTEE,
            GRANTER,
            1,
            RO_HOST | GNTMAP_CONTAINS_PTE,
            0x1234_5678,
        )
        .unwrap();
    let u = w
        .unmap(
            GRANTEE,
            UnmapRequest {
                handle: m.handle,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(u.host.is_none() && !u.device && !u.handle_freed);
    assert_eq!(u.refs, Refs::default());
    assert_eq!(w.table(GRANTER).pins(1), Some(pins(1, 0, 0, 0)));
    // The real unmap of a contains_pte mapping names the PTE address.
    let u = w.unmap_host(GRANTEE, &m, 0x1234_5678);
    assert_eq!(u.host, Some(0x1234_5678));
    assert!(u.contains_pte && u.handle_freed);
    assert_eq!(
        u.refs,
        Refs {
            page: 1,
            writable_type: 0
        }
    );
}

#[test]
fn unmap_request_from_abi() {
    let op = GnttabUnmapGrantRef {
        host_addr: VA,
        dev_bus_addr: 0x5000,
        handle: 3,
        ..Default::default()
    };
    assert_eq!(
        UnmapRequest::from_abi(&op, Some(Mfn(5))),
        UnmapRequest {
            handle: 3,
            host_addr: VA,
            dev_bus_addr: 0x5000,
            pte_frame: Some(Mfn(5))
        }
    );
}

// ---------------------------------------------------------------- revoke

#[test]
fn revoking_a_mapped_grant_fails_until_it_is_unmapped() {
    let mut w = world();
    w.grant(GRANTER, 9, GRANTEE, frame_of(GRANTER, 9), false);
    let m = w.map(GRANTEE, GRANTER, 9, RW_HOST, VA).unwrap();
    let busy = w.revoke(GRANTER, 9).unwrap_err();
    assert_eq!(busy, GTF_PERMIT_ACCESS | GTF_READING | GTF_WRITING);
    assert_eq!(w.flags(GRANTER, 9), busy, "entry untouched");
    w.unmap_host(GRANTEE, &m, VA);
    assert_eq!(w.revoke(GRANTER, 9), Ok(()));
    assert_eq!(w.flags(GRANTER, 9), 0);
    // Revoked: no longer mappable.
    assert_eq!(
        w.map(GRANTEE, GRANTER, 9, RW_HOST, VA),
        Err(GntError::NotGranted)
    );
}

#[test]
fn revoking_a_read_only_mapped_grant_fails_too() {
    let mut w = world();
    w.grant(GRANTER, 9, GRANTEE, frame_of(GRANTER, 9), true);
    let m = w.map(GRANTEE, GRANTER, 9, RO_HOST, VA).unwrap();
    assert!(w.revoke(GRANTER, 9).is_err());
    w.unmap_host(GRANTEE, &m, VA);
    assert_eq!(w.revoke(GRANTER, 9), Ok(()));
}

#[test]
fn revoke_against_a_racing_entry_is_bounded() {
    let mut s = racing(usize::MAX);
    assert!(guest_end_access(&mut s, 3).is_err());
    assert_eq!(s.cmpxchgs, CMPXCHG_ATTEMPTS);
    let mut s = racing(1);
    assert_eq!(guest_end_access(&mut s, 3), Ok(()));
    assert_eq!(s.entries[3].flags, 0);
}

// ---------------------------------------------------------------- teardown

#[test]
fn release_all_tears_down_every_mapping_of_a_dying_grantee() {
    let mut w = world();
    w.grant(GRANTER, 1, GRANTEE, frame_of(GRANTER, 1), false);
    w.grant(GRANTER, 2, GRANTEE, frame_of(GRANTER, 2), true);
    w.grant(OTHER, 5, GRANTEE, frame_of(OTHER, 5), false);
    let a = w.map(GRANTEE, GRANTER, 1, RW_BOTH, VA).unwrap();
    let b = w.map(GRANTEE, GRANTER, 2, RO_HOST, VA + 0x1000).unwrap();
    let c = w.map(GRANTEE, OTHER, 5, RW_HOST, VA + 0x2000).unwrap();
    // A partially unmapped mapping only reports its live part.
    w.unmap_host(GRANTEE, &a, VA);
    assert!(w.table(GRANTER).has_active_pins());
    assert!(w.table(OTHER).has_active_pins());

    let mut mt = core::mem::take(&mut w.doms[GRANTEE as usize].maptrack);
    let mut released = Vec::new();
    release_all(&mut mt, &mut w, |r| released.push(r));
    assert_eq!(mt.live(), 0);
    assert_eq!(released.len(), 3);
    let by = |h| released.iter().find(|r| r.handle == h).unwrap();
    let ra = by(a.handle);
    assert!(ra.entry.device_mapped() && !ra.entry.host_mapped());
    assert_eq!(
        ra.refs,
        Refs {
            page: 1,
            writable_type: 1
        }
    );
    let rb = by(b.handle);
    assert_eq!((rb.entry.host_addr, rb.entry.frame), (VA + 0x1000, b.frame));
    assert_eq!(
        rb.refs,
        Refs {
            page: 1,
            writable_type: 0
        }
    );
    assert_eq!(by(c.handle).entry.dom, OTHER);
    for (d, g) in [(GRANTER, 1), (GRANTER, 2), (OTHER, 5)] {
        assert!(!w.table(d).has_active_pins());
        assert_eq!(w.flags(d, g) & (GTF_READING | GTF_WRITING), 0);
        assert_eq!(w.revoke(d, g), Ok(()));
    }
}

#[test]
fn release_granter_forces_only_that_granters_mappings() {
    let mut w = world();
    w.grant(GRANTER, 1, GRANTEE, frame_of(GRANTER, 1), false);
    w.grant(OTHER, 5, GRANTEE, frame_of(OTHER, 5), false);
    w.map(GRANTEE, GRANTER, 1, RW_HOST, VA).unwrap();
    w.map(GRANTEE, GRANTER, 1, RO_HOST, VA + 0x1000).unwrap();
    let c = w.map(GRANTEE, OTHER, 5, RW_HOST, VA + 0x2000).unwrap();
    let (mt, g) = w.parts(GRANTEE, GRANTER);
    let mut n = 0;
    release_granter(mt, g.unwrap(), |r| {
        assert_eq!(r.entry.dom, GRANTER);
        n += 1;
    });
    assert_eq!(n, 2);
    assert!(!w.table(GRANTER).has_active_pins());
    assert_eq!(w.maptrack(GRANTEE).live(), 1);
    assert!(w.maptrack(GRANTEE).get(c.handle).is_some());
    assert!(w.table(OTHER).has_active_pins());
}

#[test]
fn release_mapping_undoes_a_map_whose_references_failed() {
    let mut w = world();
    w.grant(GRANTER, 1, GRANTEE, frame_of(GRANTER, 1), false);
    let m = w.map(GRANTEE, GRANTER, 1, RW_HOST, VA).unwrap();
    let (mt, g) = w.parts(GRANTEE, GRANTER);
    let r = release_mapping(mt, g, m.handle).unwrap();
    assert_eq!(r.handle, m.handle);
    assert_eq!(w.flags(GRANTER, 1), GTF_PERMIT_ACCESS);
    assert_eq!(w.maptrack(GRANTEE).live(), 0);
    // Not live any more.
    let (mt, g) = w.parts(GRANTEE, GRANTER);
    assert_eq!(release_mapping(mt, g, m.handle), None);
}

#[test]
fn granter_active_pins_query_follows_maps_and_copies() {
    let mut w = world();
    assert!(!w.table(GRANTER).has_active_pins());
    w.grant(GRANTER, 1, GRANTEE, frame_of(GRANTER, 1), false);
    let cp = w
        .copy(
            GRANTEE,
            false,
            &copy_op(
                gref_ptr(GRANTER, 1, 0),
                gmfn_ptr(DOMID_SELF, frame_of(GRANTEE, 0), 0),
                16,
                GNTCOPY_SOURCE_GREF,
            ),
        )
        .unwrap();
    assert!(w.table(GRANTER).has_active_pins());
    copy_complete(&mut w, &cp);
    assert!(!w.table(GRANTER).has_active_pins());
}

// ---------------------------------------------------------------- copy

fn gref_ptr(dom: DomId, gref: GrantRef, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr {
        u: gref,
        domid: dom,
        offset,
    }
}

fn gmfn_ptr(dom: DomId, frame: u32, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr {
        u: frame,
        domid: dom,
        offset,
    }
}

fn copy_op(source: GnttabCopyPtr, dest: GnttabCopyPtr, len: u16, flags: u16) -> GnttabCopy {
    GnttabCopy {
        source,
        dest,
        len,
        flags,
        ..Default::default()
    }
}

#[test]
fn copy_from_a_grant_to_own_frame_pins_for_the_duration() {
    let mut w = world();
    w.grant(GRANTER, 3, GRANTEE, frame_of(GRANTER, 0x33), true);
    let op = copy_op(
        gref_ptr(GRANTER, 3, 100),
        gmfn_ptr(DOMID_SELF, frame_of(GRANTEE, 7), 200),
        64,
        GNTCOPY_SOURCE_GREF,
    );
    let cp = w.copy(GRANTEE, false, &op).unwrap();
    assert_eq!(
        cp.src,
        CopyEnd {
            dom: GRANTER,
            mfn: mfn_of(GRANTER, 0x33),
            offset: 100,
            gref: Some(3)
        }
    );
    assert_eq!(
        cp.dst,
        CopyEnd {
            dom: GRANTEE,
            mfn: mfn_of(GRANTEE, 7),
            offset: 200,
            gref: None
        }
    );
    assert_eq!(cp.len, 64);
    assert_eq!(w.table(GRANTER).pins(3), Some(pins(1, 0, 0, 0)));
    assert_eq!(
        w.flags(GRANTER, 3),
        GTF_PERMIT_ACCESS | GTF_READONLY | GTF_READING
    );
    assert!(w.revoke(GRANTER, 3).is_err(), "in use during the copy");
    copy_complete(&mut w, &cp);
    assert_eq!(w.table(GRANTER).pins(3), Some(Pins::NONE));
    assert_eq!(w.flags(GRANTER, 3), GTF_PERMIT_ACCESS | GTF_READONLY);
}

#[test]
fn copy_into_a_writable_grant_sets_writing_then_clears_it() {
    let mut w = world();
    w.grant(GRANTER, 3, GRANTEE, frame_of(GRANTER, 3), false);
    let op = copy_op(
        gmfn_ptr(GRANTEE, frame_of(GRANTEE, 1), 0),
        gref_ptr(GRANTER, 3, 0),
        4096,
        GNTCOPY_DEST_GREF,
    );
    let cp = w.copy(GRANTEE, false, &op).unwrap();
    assert_eq!(cp.dst.mfn, mfn_of(GRANTER, 3));
    assert_eq!(
        w.flags(GRANTER, 3),
        GTF_PERMIT_ACCESS | GTF_READING | GTF_WRITING
    );
    assert_eq!(w.table(GRANTER).pins(3), Some(pins(0, 1, 0, 0)));
    copy_complete(&mut w, &cp);
    assert_eq!(w.flags(GRANTER, 3), GTF_PERMIT_ACCESS);
}

#[test]
fn copy_while_mapped_keeps_the_mapping_pins() {
    let mut w = world();
    w.grant(GRANTER, 3, GRANTEE, frame_of(GRANTER, 3), false);
    let m = w.map(GRANTEE, GRANTER, 3, RO_HOST, VA).unwrap();
    let op = copy_op(
        gmfn_ptr(GRANTEE, frame_of(GRANTEE, 1), 0),
        gref_ptr(GRANTER, 3, 0),
        8,
        GNTCOPY_DEST_GREF,
    );
    let cp = w.copy(GRANTEE, false, &op).unwrap();
    assert_eq!(cp.dst.mfn, m.frame);
    copy_complete(&mut w, &cp);
    assert_eq!(w.table(GRANTER).pins(3), Some(pins(1, 0, 0, 0)));
    assert_eq!(w.flags(GRANTER, 3), GTF_PERMIT_ACCESS | GTF_READING);
}

#[test]
fn copy_bounds() {
    let mut w = world();
    let own = |n, off| gmfn_ptr(DOMID_SELF, frame_of(GRANTEE, n), off);
    for (so, dof, len) in [(0, 0, 4096), (4095, 0, 1), (0, 4000, 96), (10, 10, 0)] {
        let cp = w.copy(GRANTEE, false, &copy_op(own(1, so), own(2, dof), len, 0));
        assert!(cp.is_ok(), "{so} {dof} {len}");
    }
    for (so, dof, len) in [(0, 0, 4097), (4095, 0, 2), (0, 4000, 97), (0xFFFF, 0, 1)] {
        let e = w
            .copy(GRANTEE, false, &copy_op(own(1, so), own(2, dof), len, 0))
            .unwrap_err();
        assert_eq!(e, GntError::BadCopyArg, "{so} {dof} {len}");
        assert_eq!(e.status(), GNTST_BAD_COPY_ARG);
    }
    // Bounds are checked first, before anything is pinned.
    w.grant(GRANTER, 3, GRANTEE, frame_of(GRANTER, 3), false);
    let e = w
        .copy(
            GRANTEE,
            false,
            &copy_op(
                gref_ptr(GRANTER, 3, 4000),
                own(1, 0),
                200,
                GNTCOPY_SOURCE_GREF,
            ),
        )
        .unwrap_err();
    assert_eq!(e, GntError::BadCopyArg);
    assert!(!w.table(GRANTER).has_active_pins());
}

#[test]
fn copy_into_a_readonly_grant_is_refused_and_releases_the_source() {
    let mut w = world();
    w.grant(GRANTER, 3, GRANTEE, frame_of(GRANTER, 3), false);
    w.grant(GRANTER, 4, GRANTEE, frame_of(GRANTER, 4), true);
    let op = copy_op(
        gref_ptr(GRANTER, 3, 0),
        gref_ptr(GRANTER, 4, 0),
        8,
        GNTCOPY_SOURCE_GREF | GNTCOPY_DEST_GREF,
    );
    assert_fails(
        w.copy(GRANTEE, false, &op),
        GntError::ReadonlyGrant,
        GNTST_GENERAL_ERROR,
    );
    assert!(!w.table(GRANTER).has_active_pins());
    assert_eq!(w.flags(GRANTER, 3), GTF_PERMIT_ACCESS);
    assert_eq!(w.flags(GRANTER, 4), GTF_PERMIT_ACCESS | GTF_READONLY);
    // The other way round works: a read-only grant may be the source.
    let op = copy_op(
        gref_ptr(GRANTER, 4, 0),
        gref_ptr(GRANTER, 3, 0),
        8,
        GNTCOPY_SOURCE_GREF | GNTCOPY_DEST_GREF,
    );
    let cp = w.copy(GRANTEE, false, &op).unwrap();
    assert_eq!(w.table(GRANTER).nr_pinned(), 2);
    copy_complete(&mut w, &cp);
    assert!(!w.table(GRANTER).has_active_pins());
}

#[test]
fn copy_of_a_grant_not_given_to_the_copier_is_refused() {
    let mut w = world();
    w.grant(GRANTER, 3, OTHER, frame_of(GRANTER, 3), false);
    let op = copy_op(
        gref_ptr(GRANTER, 3, 0),
        gmfn_ptr(DOMID_SELF, frame_of(GRANTEE, 1), 0),
        8,
        GNTCOPY_SOURCE_GREF,
    );
    assert_eq!(w.copy(GRANTEE, false, &op), Err(GntError::NotGranted));
    assert!(w.copy(OTHER, false, &op).is_err(), "gmfn not OTHER's");
    let op = copy_op(
        gref_ptr(GRANTER, 3, 0),
        gmfn_ptr(DOMID_SELF, frame_of(OTHER, 1), 0),
        8,
        GNTCOPY_SOURCE_GREF,
    );
    let cp = w.copy(OTHER, false, &op).unwrap();
    copy_complete(&mut w, &cp);
    // A ref beyond the table.
    let op = copy_op(
        gref_ptr(GRANTER, 512, 0),
        gmfn_ptr(DOMID_SELF, frame_of(OTHER, 1), 0),
        8,
        GNTCOPY_SOURCE_GREF,
    );
    assert_eq!(w.copy(OTHER, false, &op), Err(GntError::BadGntref));
}

#[test]
fn copy_by_gmfn_of_another_domain_needs_privilege() {
    let mut w = world();
    let op = copy_op(
        gmfn_ptr(OTHER, frame_of(OTHER, 1), 0),
        gmfn_ptr(DOMID_SELF, frame_of(GRANTEE, 1), 0),
        8,
        0,
    );
    assert_fails(
        w.copy(GRANTEE, false, &op),
        GntError::CopyNotPermitted,
        GNTST_PERMISSION_DENIED,
    );
    // Same check on the destination.
    let op2 = copy_op(
        gmfn_ptr(DOMID_SELF, frame_of(GRANTEE, 1), 0),
        gmfn_ptr(OTHER, frame_of(OTHER, 1), 0),
        8,
        0,
    );
    assert_eq!(
        w.copy(GRANTEE, false, &op2),
        Err(GntError::CopyNotPermitted)
    );
    // Naming oneself by id is as good as DOMID_SELF.
    let own = copy_op(
        gmfn_ptr(GRANTEE, frame_of(GRANTEE, 1), 0),
        gmfn_ptr(DOMID_SELF, frame_of(GRANTEE, 2), 0),
        8,
        0,
    );
    assert!(w.copy(GRANTEE, false, &own).is_ok());
    // A privileged domain may, for frames the named domain owns.
    let op = copy_op(
        gmfn_ptr(OTHER, frame_of(OTHER, 1), 0),
        gmfn_ptr(DOMID_SELF, frame_of(0, 1), 0),
        8,
        0,
    );
    let cp = w.copy(0, true, &op).unwrap();
    assert_eq!(cp.src.mfn, mfn_of(OTHER, 1));
    assert_eq!(cp.dst.dom, 0);
    let wrong_owner = copy_op(
        gmfn_ptr(OTHER, frame_of(GRANTER, 1), 0),
        gmfn_ptr(DOMID_SELF, frame_of(0, 2), 0),
        8,
        0,
    );
    assert_fails(
        w.copy(0, true, &wrong_owner),
        GntError::FrameNotOwned,
        GNTST_GENERAL_ERROR,
    );
}

#[test]
fn copy_of_own_gmfn_needs_ownership() {
    let mut w = world();
    let op = copy_op(
        gmfn_ptr(DOMID_SELF, frame_of(GRANTER, 1), 0),
        gmfn_ptr(DOMID_SELF, frame_of(GRANTEE, 2), 0),
        8,
        0,
    );
    assert_eq!(w.copy(GRANTEE, false, &op), Err(GntError::FrameNotOwned));
}

#[test]
fn copy_with_missing_domain_is_bad_domain() {
    let mut w = world();
    let op = copy_op(
        gref_ptr(9, 1, 0),
        gmfn_ptr(DOMID_SELF, frame_of(GRANTEE, 2), 0),
        8,
        GNTCOPY_SOURCE_GREF,
    );
    assert_fails(
        w.copy(GRANTEE, false, &op),
        GntError::BadDomain,
        GNTST_BAD_DOMAIN,
    );
    let op = copy_op(
        gmfn_ptr(DOMID_SELF, frame_of(GRANTEE, 2), 0),
        gref_ptr(9, 1, 0),
        8,
        GNTCOPY_DEST_GREF,
    );
    assert_eq!(w.copy(GRANTEE, false, &op), Err(GntError::BadDomain));
}

// ---------------------------------------------------------------- dump

#[test]
fn dump_lists_granted_and_pinned_entries() {
    let mut w = world();
    w.grant(GRANTER, 1, GRANTEE, frame_of(GRANTER, 1), false);
    w.grant(GRANTER, 7, OTHER, frame_of(GRANTER, 7), true);
    let m = w.map(GRANTEE, GRANTER, 1, RW_HOST, VA).unwrap();
    let d = &w.doms[GRANTER as usize];
    let lines: Vec<DumpEntry> = d.table.dump(&d.shared[..]).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].gref, 1);
    assert_eq!(lines[0].active, Some((GRANTEE, m.frame)));
    assert_eq!(lines[0].pins, pins(0, 1, 0, 0));
    assert_eq!(lines[1].gref, 7);
    assert_eq!(lines[1].active, None);
    let text = std::format!("{}", lines[0]);
    assert!(text.contains("flags 0x0019"), "{text}");
    assert!(text.contains("active dom     2"), "{text}");
    assert!(text.contains("hw 1"), "{text}");
    assert!(std::format!("{}", lines[1]).ends_with("idle"));
    // Empty table: nothing.
    let e = &w.doms[OTHER as usize];
    assert_eq!(e.table.dump(&e.shared[..]).count(), 0);
}

// ---------------------------------------------------------------- property

const NDOMS: usize = 3;
const NREFS: u32 = 4;

#[derive(Clone, Debug)]
enum Op {
    Grant {
        granter: DomId,
        gref: GrantRef,
        to: DomId,
        frame: u32,
        readonly: bool,
    },
    Revoke {
        granter: DomId,
        gref: GrantRef,
    },
    ChangeFrame {
        granter: DomId,
        gref: GrantRef,
        frame: u32,
    },
    Map {
        grantee: DomId,
        granter: DomId,
        gref: GrantRef,
        host: bool,
        device: bool,
        readonly: bool,
    },
    /// Map an entry that is granted, by the domain it is granted to.
    MapGranted {
        pick: usize,
        host: bool,
        device: bool,
        readonly: bool,
    },
    Unmap {
        pick: usize,
        host: bool,
        device: bool,
    },
    BadUnmap {
        pick: usize,
    },
    Copy {
        copier: DomId,
        src: (DomId, u32, bool),
        dst: (DomId, u32, bool),
    },
    Teardown {
        grantee: DomId,
    },
}

fn dom() -> impl Strategy<Value = DomId> {
    0..NDOMS as DomId
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (dom(), 0..NREFS, dom(), 0..3u32, any::<bool>()).prop_map(
            |(granter, gref, to, frame, readonly)| Op::Grant { granter, gref, to, frame, readonly }
        ),
        2 => (dom(), 0..NREFS).prop_map(|(granter, gref)| Op::Revoke { granter, gref }),
        1 => (dom(), 0..NREFS, 0..3u32)
            .prop_map(|(granter, gref, frame)| Op::ChangeFrame { granter, gref, frame }),
        5 => (dom(), dom(), prop_oneof![9 => 0..NREFS + 1, 1 => Just(512u32)], any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(grantee, granter, gref, host, device, readonly)| Op::Map {
                grantee, granter, gref, host, device, readonly
            }
        ),
        5 => (any::<usize>(), any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(pick, host, device, readonly)| Op::MapGranted { pick, host, device, readonly }),
        6 => (any::<usize>(), any::<bool>(), any::<bool>())
            .prop_map(|(pick, host, device)| Op::Unmap { pick, host, device }),
        1 => any::<usize>().prop_map(|pick| Op::BadUnmap { pick }),
        2 => (dom(), (dom(), 0..NREFS, any::<bool>()), (dom(), 0..NREFS, any::<bool>()))
            .prop_map(|(copier, src, dst)| Op::Copy { copier, src, dst }),
        1 => dom().prop_map(|grantee| Op::Teardown { grantee }),
    ]
}

type PWorld = World<1, 6>;

/// The mappings the "hypervisor" holds: (grantee, handle, host_addr, frame).
type Live = Vec<(DomId, u32, u64, Mfn)>;

/// The references the "hypervisor" holds for grant mappings, per frame, as
/// the operations' [`Refs`] told it to take and drop them.
#[derive(Default)]
struct Ledger(std::collections::BTreeMap<Mfn, (i32, i32)>);

impl Ledger {
    fn take(&mut self, frame: Mfn, r: Refs) {
        let e = self.0.entry(frame).or_default();
        e.0 += i32::from(r.page);
        e.1 += i32::from(r.writable_type);
    }

    fn drop(&mut self, frame: Mfn, r: Refs) {
        let e = self.0.entry(frame).or_default();
        e.0 -= i32::from(r.page);
        e.1 -= i32::from(r.writable_type);
        assert!(
            e.0 >= 0 && e.1 >= 0,
            "{frame}: dropped a reference not held"
        );
    }
}

/// The frame lifetime rule: the references held for mappings are exactly one
/// page reference per live part and a writable-type one per writable device
/// part, so every frame pinned by a mapping has at least one page reference
/// (it cannot be freed, whatever the guests do with their PTEs).
fn check_refs(w: &PWorld, ledger: &Ledger) {
    let mut want: std::collections::BTreeMap<Mfn, (i32, i32)> = Default::default();
    for g in 0..NDOMS as DomId {
        for (_, e) in w.maptrack(g).iter() {
            let r = want.entry(e.frame).or_default();
            r.0 += i32::from(e.host_mapped()) + i32::from(e.device_mapped());
            r.1 += i32::from(e.device_mapped() && !e.readonly());
        }
    }
    for (frame, &held) in &ledger.0 {
        assert_eq!(
            held,
            want.get(frame).copied().unwrap_or_default(),
            "{frame}"
        );
    }
    for d in 0..NDOMS as DomId {
        let t = w.table(d);
        for gref in 0..t.nr_entries() {
            if let Some((_, frame)) = t.active(gref) {
                assert!(
                    ledger.0.get(&frame).is_some_and(|r| r.0 > 0),
                    "d{d} r{gref}: pinned {frame} held by no reference"
                );
            }
        }
    }
}

fn check_invariants(w: &PWorld, extra: &[(DomId, GrantRef, Pins)]) {
    for d in 0..NDOMS as DomId {
        let t = w.table(d);
        let mut pinned = 0;
        for gref in 0..t.nr_entries() {
            let p = t.pins(gref).unwrap();
            let f = w.flags(d, gref);
            assert_eq!(f & GTF_READING != 0, p.is_pinned(), "reading d{d} r{gref}");
            assert_eq!(
                f & GTF_WRITING != 0,
                p.has_writers(),
                "writing d{d} r{gref}"
            );
            pinned += u32::from(p.is_pinned());
            // Pins are exactly the live maptrack parts plus copies in flight.
            let mut want = Pins::NONE;
            let mut add = |q: Pins| {
                want.host_read += q.host_read;
                want.host_write += q.host_write;
                want.dev_read += q.dev_read;
                want.dev_write += q.dev_write;
            };
            for g in 0..NDOMS as DomId {
                for (_, e) in w.maptrack(g).iter() {
                    if e.dom == d && e.gref == gref {
                        add(e.pins());
                    }
                }
            }
            for &(xd, xg, q) in extra {
                if xd == d && xg == gref {
                    add(q);
                }
            }
            assert_eq!(p, want, "pins d{d} r{gref}");
        }
        assert_eq!(t.nr_pinned(), pinned);
        assert_eq!(t.has_active_pins(), pinned != 0);
        // Every live handle refers to an active entry pinned by its owner.
        for (_, e) in w.maptrack(d).iter() {
            assert!(e.host_mapped() || e.device_mapped());
            assert_eq!(w.table(e.dom).active(e.gref), Some((d, e.frame)));
        }
    }
}

fn run(ops: Vec<Op>) {
    let mut w = PWorld::new(NDOMS);
    let mut live: Live = Vec::new();
    let mut ledger = Ledger::default();
    let mut next_va = VA;
    for op in ops {
        let op = match op {
            Op::MapGranted {
                pick,
                host,
                device,
                readonly,
            } => {
                let granted: Vec<(DomId, GrantRef)> = (0..NDOMS as DomId)
                    .flat_map(|d| (0..NREFS).map(move |g| (d, g)))
                    .filter(|&(d, g)| w.flags(d, g) & GTF_TYPE_MASK == GTF_PERMIT_ACCESS)
                    .collect();
                if granted.is_empty() {
                    continue;
                }
                let (granter, gref) = granted[pick % granted.len()];
                Op::Map {
                    grantee: w.entry(granter, gref).domid,
                    granter,
                    gref,
                    host,
                    device,
                    readonly,
                }
            }
            other => other,
        };
        match op {
            Op::Grant {
                granter,
                gref,
                to,
                frame,
                readonly,
            } => {
                // A well-behaved guest only grants a free entry.
                if w.flags(granter, gref) & GTF_TYPE_MASK == GTF_INVALID {
                    w.grant(granter, gref, to, frame_of(granter, frame), readonly);
                }
            }
            Op::Revoke { granter, gref } => {
                let busy = w.table(granter).pins(gref).unwrap().is_pinned();
                let before = w.flags(granter, gref);
                let r = w.revoke(granter, gref);
                assert_eq!(r.is_err(), busy);
                if busy {
                    assert_eq!(w.flags(granter, gref), before);
                } else {
                    assert_eq!(w.flags(granter, gref), 0);
                }
            }
            Op::ChangeFrame {
                granter,
                gref,
                frame,
            } => {
                w.doms[granter as usize].shared[gref as usize].frame = frame_of(granter, frame);
            }
            Op::Map {
                grantee,
                granter,
                gref,
                host,
                device,
                readonly,
            } => {
                let mut flags = 0;
                if host {
                    flags |= GNTMAP_HOST_MAP;
                }
                if device {
                    flags |= GNTMAP_DEVICE_MAP;
                }
                if readonly {
                    flags |= GNTMAP_READONLY;
                }
                let before = w.table(granter).active(gref);
                let full = w.maptrack(grantee).is_full();
                let entry = w.doms[granter as usize]
                    .shared
                    .get(gref as usize)
                    .copied()
                    .unwrap_or_default();
                next_va += 0x1000;
                match w.map(grantee, granter, gref, flags, next_va) {
                    Ok(m) => {
                        assert!(host || device);
                        assert_eq!(entry.domid, grantee);
                        assert!(readonly || entry.flags & GTF_READONLY == 0);
                        // An already pinned entry keeps its frame.
                        if let Some((_, f)) = before {
                            assert_eq!(m.frame, f);
                        } else {
                            assert_eq!(m.frame, Mfn(u64::from(entry.frame)));
                        }
                        ledger.take(m.frame, m.refs);
                        live.push((grantee, m.handle, next_va, m.frame));
                    }
                    Err(e) => {
                        assert_eq!(w.table(granter).active(gref), before);
                        if !host && !device {
                            assert_eq!(e, GntError::BadMapFlags);
                        } else if full {
                            assert_eq!(e, GntError::NoMaptrack);
                        } else if gref >= 512 {
                            assert_eq!(e, GntError::BadGntref);
                        } else if entry.domid != grantee
                            || entry.flags & GTF_TYPE_MASK != GTF_PERMIT_ACCESS
                        {
                            // Not granted to us (or pinned by someone else).
                            assert!(matches!(e, GntError::NotGranted | GntError::PinConflict));
                        }
                    }
                }
            }
            Op::Unmap { pick, host, device } => {
                if live.is_empty() {
                    continue;
                }
                let i = pick % live.len();
                let (grantee, handle, va, frame) = live[i];
                let e = *w.maptrack(grantee).get(handle).unwrap();
                let req = UnmapRequest {
                    handle,
                    host_addr: if host { va } else { 0 },
                    dev_bus_addr: if device { frame.0 << 12 } else { 0 },
                    pte_frame: Some(frame),
                };
                let u = w.unmap(grantee, req).unwrap();
                assert_eq!(u.frame, frame);
                ledger.drop(u.frame, u.refs);
                assert_eq!(u.host.is_some(), host && e.host_mapped());
                assert_eq!(u.device, device && e.device_mapped());
                if u.handle_freed {
                    live.swap_remove(i);
                }
            }
            Op::MapGranted { .. } => unreachable!("translated above"),
            Op::BadUnmap { pick } => {
                if live.is_empty() {
                    continue;
                }
                let (grantee, handle, va, frame) = live[pick % live.len()];
                let e = *w.maptrack(grantee).get(handle).unwrap();
                let r = w.unmap(
                    grantee,
                    UnmapRequest {
                        handle,
                        host_addr: va + 1,
                        dev_bus_addr: (frame.0 + 1) << 12,
                        pte_frame: Some(frame),
                    },
                );
                assert_eq!(r, Err(GntError::FrameMismatch));
                assert_eq!(*w.maptrack(grantee).get(handle).unwrap(), e);
            }
            Op::Copy { copier, src, dst } => {
                let ptr = |(d, n, is_gref): (DomId, u32, bool)| {
                    if is_gref {
                        gref_ptr(d, n, 0)
                    } else {
                        gmfn_ptr(d, frame_of(d, n), 0)
                    }
                };
                let mut flags = 0;
                if src.2 {
                    flags |= GNTCOPY_SOURCE_GREF;
                }
                if dst.2 {
                    flags |= GNTCOPY_DEST_GREF;
                }
                let op = copy_op(ptr(src), ptr(dst), 16, flags);
                if let Ok(cp) = w.copy(copier, false, &op) {
                    let mut extra = Vec::new();
                    if let Some(g) = cp.src.gref {
                        extra.push((cp.src.dom, g, pins(1, 0, 0, 0)));
                    }
                    if let Some(g) = cp.dst.gref {
                        extra.push((cp.dst.dom, g, pins(0, 1, 0, 0)));
                    }
                    check_invariants(&w, &extra);
                    copy_complete(&mut w, &cp);
                }
            }
            Op::Teardown { grantee } => {
                let mut mt = core::mem::take(&mut w.doms[grantee as usize].maptrack);
                let mut n = 0;
                release_all(&mut mt, &mut w, |r| {
                    ledger.drop(r.entry.frame, r.refs);
                    n += 1;
                });
                assert_eq!(mt.live(), 0);
                let before = live.len();
                live.retain(|l| l.0 != grantee);
                assert_eq!(before - live.len(), n);
            }
        }
        check_invariants(&w, &[]);
        check_refs(&w, &ledger);
    }
    // Unmap everything: no pin remains and every grant can be revoked.
    for (grantee, handle, va, frame) in live.drain(..) {
        let u = w
            .unmap(
                grantee,
                UnmapRequest {
                    handle,
                    host_addr: va,
                    dev_bus_addr: frame.0 << 12,
                    pte_frame: Some(frame),
                },
            )
            .unwrap();
        assert!(u.handle_freed);
        ledger.drop(u.frame, u.refs);
    }
    check_invariants(&w, &[]);
    check_refs(&w, &ledger);
    assert!(ledger.0.values().all(|&r| r == (0, 0)), "references leaked");
    for d in 0..NDOMS as DomId {
        assert!(!w.table(d).has_active_pins());
        assert_eq!(w.maptrack(d).live(), 0);
        for gref in 0..NREFS {
            assert_eq!(w.flags(d, gref) & (GTF_READING | GTF_WRITING), 0);
            assert_eq!(w.revoke(d, gref), Ok(()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(256)
    })]

    #[test]
    fn random_sequences_keep_flags_pins_and_handles_consistent(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        run(ops);
    }
}
