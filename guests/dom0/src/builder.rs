//! The domain builder: what `xm create` asks of the hypervisor to turn a
//! config and a kernel into a paused PV domU ready to run, in the order of
//! XEN-PV-ABI.md §15.7 (libxc/libxl 4.1):
//!
//! createdomain (the config's uuid, or a generated one, as handle) →
//! max_vcpus 1 → max_mem (memory MiB × 1024 KiB) → populate_physmap of every
//! page, in batches of [`POPULATE_BATCH`] → getdomaininfo (the shared-info
//! frame) → alloc_unbound ports in the new domain for xenstore and the
//! console (remote dom0) → `pv_builder::build` over [`ForeignMemory`] (each
//! frame mapped in turn with `update_va_mapping_otherdomain`) → the last
//! mapping removed → pin the bootstrap L3 (foreigndom = new domain) →
//! hypercall_init if the kernel has a hypercall page → setvcpucontext.
//!
//! Invariants: when [`build_domain`] returns `Ok`, the domain exists, is
//! paused and dom0 maps none of its frames; when it returns `Err`, every
//! mapping it made is gone and the half-built domain was destroyed (the error
//! says if even that was refused). Each failure names its step and errno.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use pv_builder::{BuildRequest, GuestMemory};
use xen_abi::domctl::{
    XEN_DOMCTL_CREATEDOMAIN, XEN_DOMCTL_DESTROYDOMAIN, XEN_DOMCTL_GETDOMAININFO,
    XEN_DOMCTL_HYPERCALL_INIT, XEN_DOMCTL_MAX_MEM, XEN_DOMCTL_MAX_VCPUS, XenDomctl,
    XenDomctlCreatedomain, XenDomctlGetdomaininfo, XenDomctlHypercallInit, XenDomctlMaxMem,
    XenDomctlMaxVcpus,
};
use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::types::{EvtchnPort, PAGE_SIZE, XenPfn};

use crate::hv::{Hypervisor, Mapping, Refused};

/// Pages asked of `populate_physmap` per call.
pub const POPULATE_BATCH: usize = 512;
/// VCPUs a domU gets (Oxen runs one per domain).
pub const MAX_VCPUS: u32 = 1;

/// What to build.
#[derive(Clone, Copy, Debug)]
pub struct BuildPlan<'a> {
    /// The domain's UUID (`createdomain` handle).
    pub handle: [u8; 16],
    /// Memory in MiB.
    pub memory_mib: u32,
    pub kernel: &'a [u8],
    pub ramdisk: Option<&'a [u8]>,
    pub cmdline: &'a str,
}

/// A built, paused domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDomain {
    pub domid: DomId,
    pub nr_pages: u32,
    /// The domain's xenstore port (allocated unbound for dom0).
    pub store_port: EvtchnPort,
    /// The domain's console port.
    pub console_port: EvtchnPort,
    pub store_mfn: XenPfn,
    pub console_mfn: XenPfn,
    /// Whether the command line had to be cut to fit start_info.
    pub cmdline_truncated: bool,
}

/// Why a step failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The hypervisor refused a hypercall.
    Refused(Refused),
    /// The image could not be built (the builder's own words).
    Build(String),
}

/// A failed build: the cause, the domain (if it was created) and whether
/// tearing it down worked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildFailure {
    pub cause: Cause,
    pub domid: Option<DomId>,
    /// The refusal of the teardown, if the half-built domain could not be destroyed.
    pub teardown: Option<Refused>,
}

impl fmt::Display for BuildFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Cause::Refused(r) => write!(f, "{r}")?,
            Cause::Build(why) => write!(f, "building the domain failed: {why}")?,
        }
        match (self.domid, &self.teardown) {
            (None, _) => Ok(()),
            (Some(d), None) => write!(f, "; domain {d} destroyed"),
            (Some(d), Some(t)) => write!(f, "; domain {d} left behind: {t}"),
        }
    }
}

fn domctl<T: zerocopy::IntoBytes + zerocopy::Immutable>(
    hv: &mut dyn Hypervisor,
    cmd: u32,
    domid: DomId,
    payload: &T,
    what: &'static str,
) -> Result<XenDomctl, Refused> {
    let mut op = XenDomctl::new(cmd, domid, payload);
    hv.domctl(&mut op)
        .map(|_| op)
        .map_err(|errno| Refused { what, errno })
}

/// `domctl destroydomain`.
pub fn destroy(hv: &mut dyn Hypervisor, domid: DomId) -> Result<(), Refused> {
    domctl(
        hv,
        XEN_DOMCTL_DESTROYDOMAIN,
        domid,
        &[0u8; 0],
        "domctl destroydomain",
    )
    .map(|_| ())
}

/// The new domain's frames as the builder writes them: one frame mapped at a
/// time into dom0, remapped when the builder moves to another pfn.
pub struct ForeignMemory<'h> {
    hv: &'h mut dyn Hypervisor,
    domid: DomId,
    mfns: &'h [XenPfn],
    current: Option<(u32, Mapping)>,
}

impl<'h> ForeignMemory<'h> {
    pub fn new(hv: &'h mut dyn Hypervisor, domid: DomId, mfns: &'h [XenPfn]) -> Self {
        Self {
            hv,
            domid,
            mfns,
            current: None,
        }
    }

    fn map(&mut self, pfn: u32) -> Result<Mapping, Refused> {
        if let Some((p, m)) = self.current
            && p == pfn
        {
            return Ok(m);
        }
        self.unmap()?;
        let mfn = *self.mfns.get(pfn as usize).ok_or(Refused {
            what: "update_va_mapping_otherdomain",
            errno: Errno::EINVAL,
        })?;
        let m = self
            .hv
            .map_foreign(self.domid, mfn)
            .map_err(|errno| Refused {
                what: "update_va_mapping_otherdomain",
                errno,
            })?;
        self.current = Some((pfn, m));
        Ok(m)
    }

    /// Removes the mapping in place, if any.
    pub fn unmap(&mut self) -> Result<(), Refused> {
        if let Some((_, m)) = self.current.take() {
            self.hv.unmap_foreign(m).map_err(|errno| Refused {
                what: "update_va_mapping (unmap)",
                errno,
            })?;
        }
        Ok(())
    }
}

impl GuestMemory for ForeignMemory<'_> {
    type Error = Refused;

    fn write(&mut self, pfn: u32, offset: u32, bytes: &[u8]) -> Result<(), Refused> {
        let m = self.map(pfn)?;
        let page = self.hv.page(m).ok_or(Refused {
            what: "update_va_mapping_otherdomain",
            errno: Errno::EFAULT,
        })?;
        page.write(offset as usize, bytes);
        Ok(())
    }

    fn zero(&mut self, pfn: u32) -> Result<(), Refused> {
        self.write(pfn, 0, &[0u8; PAGE_SIZE])
    }
}

/// Builds a domain from `plan`. See the module documentation.
pub fn build_domain(
    hv: &mut dyn Hypervisor,
    plan: &BuildPlan<'_>,
) -> Result<NewDomain, BuildFailure> {
    let create = XenDomctlCreatedomain {
        ssidref: 0,
        handle: plan.handle,
        flags: 0, // PV
    };
    let op = domctl(
        hv,
        XEN_DOMCTL_CREATEDOMAIN,
        0,
        &create,
        "domctl createdomain",
    )
    .map_err(|r| BuildFailure {
        cause: Cause::Refused(r),
        domid: None,
        teardown: None,
    })?;
    let domid = op.domain;
    build_into(hv, domid, plan).map_err(|cause| BuildFailure {
        cause,
        domid: Some(domid),
        teardown: destroy(hv, domid).err(),
    })
}

fn build_into(
    hv: &mut dyn Hypervisor,
    domid: DomId,
    plan: &BuildPlan<'_>,
) -> Result<NewDomain, Cause> {
    let r = Cause::Refused;
    domctl(
        hv,
        XEN_DOMCTL_MAX_VCPUS,
        domid,
        &XenDomctlMaxVcpus { max: MAX_VCPUS },
        "domctl max_vcpus",
    )
    .map_err(r)?;
    let max_memkb = u64::from(plan.memory_mib) * 1024;
    domctl(
        hv,
        XEN_DOMCTL_MAX_MEM,
        domid,
        &XenDomctlMaxMem { max_memkb },
        "domctl max_mem",
    )
    .map_err(r)?;
    let nr_pages = plan.memory_mib * (1024 * 1024 / PAGE_SIZE as u32);
    let mut mfns: Vec<XenPfn> = (0..nr_pages).collect();
    for chunk in mfns.chunks_mut(POPULATE_BATCH) {
        let done = hv.populate_physmap(domid, chunk).map_err(|errno| {
            r(Refused {
                what: "memory_op populate_physmap",
                errno,
            })
        })?;
        if done as usize != chunk.len() {
            return Err(r(Refused {
                what: "memory_op populate_physmap",
                errno: Errno::ENOMEM,
            }));
        }
    }
    let info: XenDomctlGetdomaininfo = domctl(
        hv,
        XEN_DOMCTL_GETDOMAININFO,
        domid,
        &XenDomctlGetdomaininfo::default(),
        "domctl getdomaininfo",
    )
    .map_err(r)?
    .payload();
    if info.domain != domid {
        return Err(r(Refused {
            what: "domctl getdomaininfo",
            errno: Errno::ESRCH,
        }));
    }
    let mut ports = [0; 2];
    for p in &mut ports {
        *p = hv.evtchn_alloc_unbound(domid, 0).map_err(|errno| {
            r(Refused {
                what: "event_channel_op alloc_unbound",
                errno,
            })
        })?;
    }
    let [store_port, console_port] = ports;
    let request = BuildRequest {
        domid,
        kernel: plan.kernel,
        ramdisk: plan.ramdisk,
        cmdline: plan.cmdline,
        nr_pages,
        mfns: &mfns,
        shared_info_mfn: info.shared_info_frame as XenPfn,
        store_evtchn: store_port,
        console_evtchn: console_port,
        offered_features: hv.features(),
    };
    let mut mem = ForeignMemory::new(hv, domid, &mfns);
    let built = pv_builder::build(&request, &mut mem);
    // Whatever happened, dom0 keeps no mapping of the new domain's frames:
    // the page tables could not be pinned while one is writable here.
    let unmapped = mem.unmap();
    let built = match built {
        Ok(b) => b,
        Err(pv_builder::BuildError::Memory { error, .. }) => return Err(r(error)),
        Err(e) => return Err(Cause::Build(format!("{e}"))),
    };
    unmapped.map_err(r)?;
    hv.mmuext_op(&built.pin_l3_op(), built.pin_foreigndom())
        .map_err(|errno| {
            r(Refused {
                what: "mmuext_op pin_l3_table",
                errno,
            })
        })?;
    if let Some(page) = built.hypercall_page {
        domctl(
            hv,
            XEN_DOMCTL_HYPERCALL_INIT,
            domid,
            &XenDomctlHypercallInit {
                gmfn: u64::from(page.mfn),
            },
            "domctl hypercall_init",
        )
        .map_err(r)?;
    }
    hv.set_vcpu_context(domid, 0, &built.vcpu_context)
        .map_err(|errno| {
            r(Refused {
                what: "domctl setvcpucontext",
                errno,
            })
        })?;
    Ok(NewDomain {
        domid,
        nr_pages,
        store_port,
        console_port,
        store_mfn: built.xenstore.mfn,
        console_mfn: built.console.mfn,
        cmdline_truncated: built.cmdline_truncated,
    })
}

/// A version-4 UUID from a seed (dom0 has no entropy source but the clock):
/// the seed is mixed with xorshift, and the version and variant bits set.
pub fn generated_uuid(seed: u64) -> [u8; 16] {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut out = [0u8; 16];
    for chunk in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    out[6] = (out[6] & 0x0F) | 0x40;
    out[8] = (out[8] & 0x3F) | 0x80;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeXen, tiny_kernel};
    use alloc::string::ToString;
    use xen_abi::mm::MMUEXT_PIN_L3_TABLE;

    fn plan(kernel: &[u8]) -> BuildPlan<'_> {
        BuildPlan {
            handle: [7; 16],
            memory_mib: 8,
            kernel,
            ramdisk: None,
            cmdline: "root=/dev/sda1 ro",
        }
    }

    #[test]
    fn a_build_follows_the_libxc_order() {
        let kernel = tiny_kernel(b"\x90\x90\xf4", 0x3000, true);
        let mut xen = FakeXen::machine(1);
        let d = build_domain(&mut xen, &plan(&kernel)).unwrap();
        assert_eq!(d.domid, 1);
        assert_eq!(d.nr_pages, 2048);
        let steps: Vec<&str> = xen.steps.iter().map(String::as_str).collect();
        let first_map = steps.iter().position(|s| *s == "map_foreign").unwrap();
        let mut order: Vec<&str> = steps[..first_map].to_vec();
        order.dedup();
        assert_eq!(
            order,
            [
                "createdomain",
                "max_vcpus",
                "max_mem",
                "populate_physmap",
                "getdomaininfo",
                "alloc_unbound"
            ]
        );
        assert_eq!(
            steps.iter().filter(|s| **s == "populate_physmap").count(),
            4
        );
        let tail: Vec<&str> = steps[first_map..]
            .iter()
            .copied()
            .filter(|s| *s != "map_foreign")
            .collect();
        assert_eq!(tail, ["mmuext_op", "hypercall_init", "setvcpucontext"]);
        assert_eq!(xen.max_mem, [(1, 8192)]);
        assert_eq!(xen.domains.as_ref().unwrap()[1].handle, [7; 16]);
        // The domain's two ports, each offered to dom0.
        assert_eq!(xen.unbound, [(1, 0, d.store_port), (1, 0, d.console_port)]);
        assert!(xen.mappings.is_empty(), "no mapping left behind");
    }

    #[test]
    fn the_built_image_is_in_the_new_domains_frames() {
        let kernel = tiny_kernel(b"OXEN-KERNEL", 0, true);
        let mut xen = FakeXen::machine(3);
        let d = build_domain(&mut xen, &plan(&kernel)).unwrap();
        // pfn 0 holds the kernel's first bytes (VIRT_BASE maps pfn 0).
        let first = crate::testing::FIRST_FAKE_MFN + 1; // after shared_info
        assert_eq!(&xen.frame(first).0[..11], b"OXEN-KERNEL");
        // The L3 pinned is a frame of the domain, on its behalf.
        let (op, fd) = xen.mmuext[0];
        assert_eq!(op.cmd, MMUEXT_PIN_L3_TABLE);
        assert_eq!(xen.owner[&op.arg1], 3);
        assert_eq!(fd, 3);
        // vcpu 0 starts at the entry with CR3 = that L3.
        let (dom, vcpu, ctx) = &xen.contexts[0];
        assert_eq!((*dom, *vcpu), (3, 0));
        assert_eq!(ctx.user_regs.eip, 0xC000_0000);
        assert_eq!(xen_abi::mm::xen_cr3_to_pfn(ctx.ctrlreg[3]), op.arg1);
        // Store and console pages are the domain's, and zeroed.
        for mfn in [d.store_mfn, d.console_mfn] {
            assert_eq!(xen.owner[&mfn], 3);
            assert!(xen.frame(mfn).0.iter().all(|&b| b == 0));
        }
        assert_eq!(xen.hypercall_pages.len(), 1);
    }

    #[test]
    fn no_hypercall_page_no_hypercall_init() {
        let kernel = tiny_kernel(b"\xf4", 0, false);
        let mut xen = FakeXen::machine(1);
        build_domain(&mut xen, &plan(&kernel)).unwrap();
        assert!(xen.hypercall_pages.is_empty());
        assert!(!xen.steps.iter().any(|s| s == "hypercall_init"));
    }

    #[test]
    fn each_failing_step_is_named_and_the_domain_destroyed() {
        let kernel = tiny_kernel(b"\xf4", 0, true);
        for (step, what) in [
            ("max_vcpus", "domctl max_vcpus"),
            ("max_mem", "domctl max_mem"),
            ("populate_physmap", "memory_op populate_physmap"),
            ("getdomaininfo", "domctl getdomaininfo"),
            ("alloc_unbound", "event_channel_op alloc_unbound"),
            ("map_foreign", "update_va_mapping_otherdomain"),
            ("mmuext_op", "mmuext_op pin_l3_table"),
            ("hypercall_init", "domctl hypercall_init"),
            ("setvcpucontext", "domctl setvcpucontext"),
        ] {
            let mut xen = FakeXen::machine(1).failing(step, Errno::ENOMEM);
            let e = build_domain(&mut xen, &plan(&kernel)).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "the hypervisor refused {what}: -ENOMEM (cannot allocate memory); domain 1 destroyed"
                ),
                "{step}"
            );
            assert!(!xen.exists(1), "{step}: destroyed");
            assert!(xen.mappings.is_empty());
            assert_eq!(xen.steps.last().unwrap(), "destroydomain");
        }
    }

    #[test]
    fn a_refused_create_leaves_nothing_to_destroy() {
        let kernel = tiny_kernel(b"\xf4", 0, true);
        let mut xen = FakeXen::machine(1).failing("createdomain", Errno::ENOSPC);
        let e = build_domain(&mut xen, &plan(&kernel)).unwrap_err();
        assert_eq!(e.domid, None);
        assert_eq!(
            e.to_string(),
            "the hypervisor refused domctl createdomain: -ENOSPC (no space left on device)"
        );
        assert_eq!(xen.steps, ["createdomain"]);
    }

    #[test]
    fn a_bad_kernel_is_a_build_failure_and_a_failed_teardown_is_said() {
        let mut xen = FakeXen::machine(2).failing("destroydomain", Errno::EAGAIN);
        let e = build_domain(&mut xen, &plan(b"\x7fELF not really")).unwrap_err();
        assert!(matches!(e.cause, Cause::Build(_)), "{e:?}");
        let text = e.to_string();
        assert!(
            text.starts_with("building the domain failed: kernel refused: "),
            "{text}"
        );
        assert!(text.ends_with(
            "; domain 2 left behind: the hypervisor refused domctl destroydomain: -EAGAIN (resource temporarily unavailable)"
        ), "{text}");
    }

    #[test]
    fn generated_uuids_are_version_4_and_differ_by_seed() {
        let a = generated_uuid(1);
        let b = generated_uuid(2);
        assert_ne!(a, b);
        for u in [a, b] {
            assert_eq!(u[6] >> 4, 4);
            assert_eq!(u[8] >> 6, 0b10);
        }
        assert_eq!(generated_uuid(1), a, "deterministic");
    }
}
