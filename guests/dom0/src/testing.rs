//! A recording fake of the hypervisor for the host tests: it checks the
//! interface version of every sysctl/domctl, records what was asked, and
//! answers either with a fixed errno or with the data a test gave it (written
//! into the caller's buffer the way the hypervisor would).
//!
//! For domain building it keeps a small machine: frames with owners
//! (populate_physmap hands out fresh mfns), foreign mappings (refused for a
//! frame the named domain does not own), pins refused while any frame of
//! the domain is still mapped by dom0 (as Oxen refuses a page table with a
//! writable mapping), `hypercall_init` of a frame the domain does not own
//! refused, destroy refused with `EAGAIN` while dom0
//! maps the domain's frames, event channels, and failure injection by step
//! name ([`FakeXen::fail`]). [`tiny_kernel`] writes a small Xen PAE kernel.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use xen_abi::context::VcpuGuestContext;
use xen_abi::domctl::{
    XEN_DOMCTL_CREATEDOMAIN, XEN_DOMCTL_DESTROYDOMAIN, XEN_DOMCTL_GETDOMAININFO,
    XEN_DOMCTL_HYPERCALL_INIT, XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_MAX_MEM,
    XEN_DOMCTL_MAX_VCPUS, XEN_DOMCTL_PAUSEDOMAIN, XEN_DOMCTL_UNPAUSEDOMAIN, XEN_DOMINF_PAUSED,
    XenDomctl, XenDomctlCreatedomain, XenDomctlGetdomaininfo, XenDomctlHypercallInit,
    XenDomctlMaxMem,
};
use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::mm::MmuextOp;
use xen_abi::sysctl::{
    XEN_SYSCTL_GETDOMAININFOLIST, XEN_SYSCTL_INTERFACE_VERSION, XEN_SYSCTL_PHYSINFO,
    XEN_SYSCTL_READCONSOLE, XenSysctl, XenSysctlGetdomaininfolist, XenSysctlPhysinfo,
    XenSysctlReadconsole,
};
use xen_abi::types::{EvtchnPort, XenPfn};
use zerocopy::IntoBytes;

use crate::hv::{Hypervisor, Mapping, SharedPage, VersionInfo};

/// A 4 KiB page in host memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakePage(pub Vec<u8>);

impl Default for FakePage {
    fn default() -> Self {
        FakePage(vec![0; 4096])
    }
}

impl SharedPage for FakePage {
    fn read(&self, offset: usize, out: &mut [u8]) {
        out.copy_from_slice(&self.0[offset..offset + out.len()]);
    }
    fn write(&mut self, offset: usize, data: &[u8]) {
        self.0[offset..offset + data.len()].copy_from_slice(data);
    }
    fn read_u32(&self, offset: usize) -> u32 {
        u32::from_le_bytes(self.0[offset..offset + 4].try_into().unwrap())
    }
    fn write_u32(&mut self, offset: usize, v: u32) {
        self.0[offset..offset + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn barrier(&self) {}
}

/// The first mfn the fake hands out.
pub const FIRST_FAKE_MFN: XenPfn = 0x1_0000;

/// An ELF32 Xen PAE kernel like pvrt's: `VIRT_BASE` 0xC0000000, one
/// segment of `text` at 0xC0000000 with `bss` more bytes (at least up to
/// 0xC0002000 with a hypercall page), entry at its start, a hypercall page
/// at 0xC0001000 if `hypercall_page`.
pub fn tiny_kernel(text: &[u8], bss: u32, hypercall_page: bool) -> Vec<u8> {
    use xen_abi::elfnote::*;
    fn note(out: &mut Vec<u8>, ty: u32, desc: &[u8]) {
        out.extend_from_slice(&4u32.to_le_bytes());
        out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(b"Xen\0");
        out.extend_from_slice(desc);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }
    let base = 0xC000_0000u32;
    let mut notes = Vec::new();
    for (ty, s) in [
        (XEN_ELFNOTE_XEN_VERSION, "xen-3.0"),
        (XEN_ELFNOTE_GUEST_OS, "test"),
        (XEN_ELFNOTE_LOADER, "generic"),
        (XEN_ELFNOTE_PAE_MODE, "yes"),
    ] {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        note(&mut notes, ty, &d);
    }
    note(&mut notes, XEN_ELFNOTE_VIRT_BASE, &base.to_le_bytes());
    note(&mut notes, XEN_ELFNOTE_PADDR_OFFSET, &0u32.to_le_bytes());
    note(&mut notes, XEN_ELFNOTE_ENTRY, &base.to_le_bytes());
    if hypercall_page {
        note(
            &mut notes,
            XEN_ELFNOTE_HYPERCALL_PAGE,
            &(base + 0x1000).to_le_bytes(),
        );
    }
    let text_off = 52 + 2 * 32;
    let notes_off = text_off + text.len().next_multiple_of(4);
    let mut out = vec![0u8; notes_off];
    out[text_off..text_off + text.len()].copy_from_slice(text);
    out.extend_from_slice(&notes);
    let put16 =
        |v: &mut Vec<u8>, at: usize, x: u16| v[at..at + 2].copy_from_slice(&x.to_le_bytes());
    let put32 =
        |v: &mut Vec<u8>, at: usize, x: u32| v[at..at + 4].copy_from_slice(&x.to_le_bytes());
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 1;
    out[5] = 1;
    out[6] = 1;
    put16(&mut out, 16, 2);
    put16(&mut out, 18, 3);
    put32(&mut out, 20, 1);
    put32(&mut out, 24, base);
    put32(&mut out, 28, 52);
    put16(&mut out, 40, 52);
    put16(&mut out, 42, 32);
    put16(&mut out, 44, 2);
    put16(&mut out, 46, 40);
    let len = text.len() as u32;
    let memsz = if hypercall_page {
        (len + bss).max(0x2000)
    } else {
        len + bss
    };
    let phdrs = [
        [1, text_off as u32, base, 0, len, memsz, 7, 4096],
        [
            4,
            notes_off as u32,
            0,
            0,
            notes.len() as u32,
            notes.len() as u32,
            4,
            4,
        ],
    ];
    for (i, ph) in phdrs.iter().enumerate() {
        for (j, w) in ph.iter().enumerate() {
            put32(&mut out, 52 + 32 * i + 4 * j, *w);
        }
    }
    out
}

/// The tutorial's domain config, as shipped in dom0's initrd.
pub const BRUN: &str = include_str!("../initrd/etc/xen/brun.cfg");
/// xend's config, as shipped in dom0's initrd.
pub const XEND_CONFIG: &str = include_str!("../initrd/etc/xen/xend-config.sxp");

/// Which hypercall a test saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Sysctl(u32),
    Domctl(u32),
    Shutdown(u32),
}

pub struct FakeXen {
    /// The errno for anything the fake has no data for.
    pub errno: Errno,
    pub calls: Vec<Call>,
    /// (cmd, interface_version) of each sysctl.
    pub sysctls: Vec<(u32, u32)>,
    /// (cmd, interface_version, domain) of each domctl.
    pub domctls: Vec<(u32, u32, DomId)>,
    /// `clear` of each readconsole.
    pub cleared: Vec<bool>,
    /// Domains for getdomaininfolist/getdomaininfo.
    pub domains: Option<Vec<XenDomctlGetdomaininfo>>,
    pub physinfo: Option<XenSysctlPhysinfo>,
    pub console: Option<Vec<u8>>,
    /// createdomain succeeds with this id.
    pub created_domid: Option<DomId>,
    /// Pause/unpause/destroy and getdomaininfo succeed.
    pub domctl_ok: bool,
    pub time_ns: u64,
    pub wallclock: u64,

    /// Steps to refuse (by the names of [`step_of_domctl`] and the trait
    /// methods: "populate_physmap", "map_foreign", "alloc_unbound", ...).
    pub fail: Vec<(&'static str, Errno)>,
    /// Every step asked, in order (domctls by name).
    pub steps: Vec<String>,
    pub next_mfn: XenPfn,
    /// Owner of each frame handed out.
    pub owner: BTreeMap<XenPfn, DomId>,
    /// Contents of frames written through mappings.
    pub frames: BTreeMap<XenPfn, FakePage>,
    /// Live mappings: handle -> (domid, mfn).
    pub mappings: BTreeMap<u32, (DomId, XenPfn)>,
    pub next_handle: u32,
    /// Pages mapped so far (a count of map_foreign calls).
    pub maps: u32,
    /// (op, foreigndom) of each mmuext_op.
    pub mmuext: Vec<(MmuextOp, u32)>,
    /// Contexts set.
    pub contexts: Vec<(DomId, u32, VcpuGuestContext)>,
    /// gmfns given to hypercall_init.
    pub hypercall_pages: Vec<(DomId, u64)>,
    /// max_memkb per domain.
    pub max_mem: Vec<(DomId, u64)>,
    pub next_port: EvtchnPort,
    /// (dom, remote_dom, port) of each alloc_unbound.
    pub unbound: Vec<(DomId, DomId, EvtchnPort)>,
    /// (local, remote_dom, remote_port) of each bind_interdomain.
    pub bound: Vec<(EvtchnPort, DomId, EvtchnPort)>,
    pub virqs: Vec<(u32, EvtchnPort)>,
    pub sent: Vec<EvtchnPort>,
    pub closed: Vec<EvtchnPort>,
}

/// The step name of a domctl (as the toolstack reports it).
pub fn step_of_domctl(cmd: u32) -> &'static str {
    match cmd {
        XEN_DOMCTL_CREATEDOMAIN => "createdomain",
        XEN_DOMCTL_DESTROYDOMAIN => "destroydomain",
        XEN_DOMCTL_PAUSEDOMAIN => "pausedomain",
        XEN_DOMCTL_UNPAUSEDOMAIN => "unpausedomain",
        XEN_DOMCTL_GETDOMAININFO => "getdomaininfo",
        XEN_DOMCTL_MAX_MEM => "max_mem",
        XEN_DOMCTL_MAX_VCPUS => "max_vcpus",
        XEN_DOMCTL_HYPERCALL_INIT => "hypercall_init",
        _ => "domctl",
    }
}

impl FakeXen {
    pub fn refusing(errno: Errno) -> Self {
        Self {
            errno,
            calls: Vec::new(),
            sysctls: Vec::new(),
            domctls: Vec::new(),
            cleared: Vec::new(),
            domains: None,
            physinfo: None,
            console: None,
            created_domid: None,
            domctl_ok: false,
            time_ns: 0,
            wallclock: 0,
            fail: Vec::new(),
            steps: Vec::new(),
            next_mfn: FIRST_FAKE_MFN,
            owner: BTreeMap::new(),
            frames: BTreeMap::new(),
            mappings: BTreeMap::new(),
            next_handle: 1,
            maps: 0,
            mmuext: Vec::new(),
            contexts: Vec::new(),
            hypercall_pages: Vec::new(),
            max_mem: Vec::new(),
            next_port: 10,
            unbound: Vec::new(),
            bound: Vec::new(),
            virqs: Vec::new(),
            sent: Vec::new(),
            closed: Vec::new(),
        }
    }

    /// A hypervisor where building works: domain ids from `first_domid`,
    /// dom0 listed, everything else refused with ENOSYS.
    pub fn machine(first_domid: DomId) -> Self {
        let mut x = Self::refusing(Errno::ENOSYS);
        x.created_domid = Some(first_domid);
        x.domains = Some(vec![XenDomctlGetdomaininfo {
            domain: 0,
            tot_pages: 16384,
            max_pages: 16384,
            nr_online_vcpus: 1,
            ..Default::default()
        }]);
        x
    }

    /// Refuses `step` with `errno` from now on.
    pub fn failing(mut self, step: &'static str, errno: Errno) -> Self {
        self.fail.push((step, errno));
        self
    }

    fn step(&mut self, name: &str) -> Result<(), Errno> {
        self.steps.push(String::from(name));
        match self.fail.iter().find(|(s, _)| *s == name) {
            Some(&(_, e)) => Err(e),
            None => Ok(()),
        }
    }

    fn alloc_mfn(&mut self, domid: DomId) -> XenPfn {
        let mfn = self.next_mfn;
        self.next_mfn += 1;
        self.owner.insert(mfn, domid);
        mfn
    }

    fn maps_domain(&self, domid: DomId) -> bool {
        self.mappings.values().any(|&(d, _)| d == domid)
    }

    fn info_mut(&mut self, domid: DomId) -> Option<&mut XenDomctlGetdomaininfo> {
        self.domains
            .as_mut()?
            .iter_mut()
            .find(|d| d.domain == domid)
    }

    /// The guest's view of frame `mfn` (created zeroed on first use).
    pub fn frame(&mut self, mfn: XenPfn) -> &mut FakePage {
        self.frames.entry(mfn).or_default()
    }

    /// Marks `domid` shut down for `reason` (as the domain itself would).
    pub fn shut_down(&mut self, domid: DomId, reason: u32) {
        if let Some(d) = self.info_mut(domid) {
            d.flags = xen_abi::domctl::dominf_with_shutdown_reason(
                xen_abi::domctl::XEN_DOMINF_SHUTDOWN,
                reason,
            );
        }
    }

    /// Whether `domid` exists.
    pub fn exists(&self, domid: DomId) -> bool {
        self.domains
            .as_ref()
            .is_some_and(|ds| ds.iter().any(|d| d.domain == domid))
    }
}

impl Hypervisor for FakeXen {
    fn sysctl(&mut self, op: &mut XenSysctl, buf: &mut [u8]) -> Result<(), Errno> {
        self.calls.push(Call::Sysctl(op.cmd));
        self.sysctls.push((op.cmd, op.interface_version));
        if op.interface_version != XEN_SYSCTL_INTERFACE_VERSION {
            return Err(Errno::EACCES);
        }
        match op.cmd {
            XEN_SYSCTL_GETDOMAININFOLIST => {
                let Some(domains) = &self.domains else {
                    return Err(self.errno);
                };
                let mut req: XenSysctlGetdomaininfolist = op.payload();
                assert_eq!(req.buffer, buf.as_ptr() as usize as u64, "handle names buf");
                let mut n = 0;
                for d in domains
                    .iter()
                    .filter(|d| d.domain >= req.first_domain)
                    .take(req.max_domains as usize)
                {
                    let bytes = d.as_bytes();
                    buf[n * bytes.len()..(n + 1) * bytes.len()].copy_from_slice(bytes);
                    n += 1;
                }
                req.num_domains = n as u32;
                op.set_payload(&req);
                Ok(())
            }
            XEN_SYSCTL_READCONSOLE => {
                let mut req: XenSysctlReadconsole = op.payload();
                self.cleared.push(req.clear != 0);
                let Some(text) = &self.console else {
                    return Err(self.errno);
                };
                assert_eq!(req.buffer, buf.as_ptr() as usize as u64, "handle names buf");
                let n = text.len().min(req.count as usize).min(buf.len());
                buf[..n].copy_from_slice(&text[..n]);
                req.count = n as u32;
                op.set_payload(&req);
                Ok(())
            }
            XEN_SYSCTL_PHYSINFO => {
                let p = self.physinfo.ok_or(self.errno)?;
                op.set_payload(&p);
                Ok(())
            }
            _ => Err(self.errno),
        }
    }

    fn domctl(&mut self, op: &mut XenDomctl) -> Result<(), Errno> {
        self.calls.push(Call::Domctl(op.cmd));
        self.domctls.push((op.cmd, op.interface_version, op.domain));
        if op.interface_version != XEN_DOMCTL_INTERFACE_VERSION {
            return Err(Errno::EACCES);
        }
        let building = self.created_domid.is_some();
        if building {
            self.step(step_of_domctl(op.cmd))?;
        }
        match op.cmd {
            XEN_DOMCTL_CREATEDOMAIN => {
                let id = self.created_domid.ok_or(self.errno)?;
                let req: XenDomctlCreatedomain = op.payload();
                self.created_domid = Some(id + 1);
                op.domain = id;
                let shared = self.alloc_mfn(id);
                if let Some(ds) = self.domains.as_mut() {
                    ds.push(XenDomctlGetdomaininfo {
                        domain: id,
                        flags: XEN_DOMINF_PAUSED,
                        shared_info_frame: u64::from(shared),
                        nr_online_vcpus: 1,
                        handle: req.handle,
                        ..Default::default()
                    });
                }
                Ok(())
            }
            XEN_DOMCTL_DESTROYDOMAIN if building => {
                if !self.exists(op.domain) {
                    return Err(Errno::ESRCH);
                }
                if self.maps_domain(op.domain) {
                    return Err(Errno::EAGAIN);
                }
                let id = op.domain;
                if let Some(ds) = self.domains.as_mut() {
                    ds.retain(|d| d.domain != id);
                }
                self.owner.retain(|_, d| *d != id);
                Ok(())
            }
            XEN_DOMCTL_UNPAUSEDOMAIN | XEN_DOMCTL_PAUSEDOMAIN if building => {
                let pause = op.cmd == XEN_DOMCTL_PAUSEDOMAIN;
                let d = self.info_mut(op.domain).ok_or(Errno::ESRCH)?;
                if pause {
                    d.flags |= XEN_DOMINF_PAUSED;
                } else {
                    d.flags &= !XEN_DOMINF_PAUSED;
                }
                Ok(())
            }
            XEN_DOMCTL_MAX_MEM if building => {
                let m: XenDomctlMaxMem = op.payload();
                self.max_mem.push((op.domain, m.max_memkb));
                Ok(())
            }
            XEN_DOMCTL_HYPERCALL_INIT if building => {
                let h: XenDomctlHypercallInit = op.payload();
                // Oxen (as Xen): a frame of the domain that can be writable
                // memory (the fake has no page-table types to refuse).
                if self.owner.get(&(h.gmfn as u32)) != Some(&op.domain) {
                    return Err(Errno::EINVAL);
                }
                self.hypercall_pages.push((op.domain, h.gmfn));
                Ok(())
            }
            XEN_DOMCTL_GETDOMAININFO if self.domctl_ok || building => {
                let d = self
                    .domains
                    .as_ref()
                    .and_then(|ds| ds.iter().find(|d| d.domain >= op.domain).copied())
                    .ok_or(Errno::ESRCH)?;
                op.set_payload(&d);
                Ok(())
            }
            _ if self.domctl_ok || self.created_domid.is_some() => Ok(()),
            _ => Err(self.errno),
        }
    }

    fn shutdown(&mut self, reason: u32) -> Errno {
        self.calls.push(Call::Shutdown(reason));
        self.errno
    }

    fn system_time_ns(&self) -> u64 {
        self.time_ns
    }

    fn wallclock_base(&self) -> u64 {
        self.wallclock
    }

    fn version(&self) -> VersionInfo {
        VersionInfo {
            major: 4,
            minor: 1,
            extra: String::from(".0-oxen"),
            capabilities: String::from("xen-3.0-x86_32p"),
        }
    }

    fn features(&self) -> u32 {
        0x1f
    }

    fn populate_physmap(&mut self, domid: DomId, extents: &mut [XenPfn]) -> Result<u32, Errno> {
        self.step("populate_physmap")?;
        if !self.exists(domid) {
            return Err(Errno::ESRCH);
        }
        for e in extents.iter_mut() {
            *e = self.alloc_mfn(domid);
        }
        if let Some(d) = self.info_mut(domid) {
            d.tot_pages += extents.len() as u64;
        }
        Ok(extents.len() as u32)
    }

    fn mmuext_op(&mut self, op: &MmuextOp, foreigndom: u32) -> Result<(), Errno> {
        self.step("mmuext_op")?;
        let dom = xen_abi::mm::foreigndom_fd(foreigndom);
        if self.owner.get(&op.arg1) != Some(&dom) || self.maps_domain(dom) {
            return Err(Errno::EINVAL);
        }
        self.mmuext.push((*op, foreigndom));
        Ok(())
    }

    fn set_vcpu_context(
        &mut self,
        domid: DomId,
        vcpu: u32,
        ctx: &VcpuGuestContext,
    ) -> Result<(), Errno> {
        self.step("setvcpucontext")?;
        self.contexts.push((domid, vcpu, *ctx));
        Ok(())
    }

    fn evtchn_alloc_unbound(&mut self, dom: DomId, remote_dom: DomId) -> Result<EvtchnPort, Errno> {
        self.step("alloc_unbound")?;
        let p = self.next_port;
        self.next_port += 1;
        self.unbound.push((dom, remote_dom, p));
        Ok(p)
    }

    fn evtchn_bind_interdomain(
        &mut self,
        remote_dom: DomId,
        remote_port: EvtchnPort,
    ) -> Result<EvtchnPort, Errno> {
        self.step("bind_interdomain")?;
        if !self
            .unbound
            .iter()
            .any(|&(d, r, p)| d == remote_dom && r == 0 && p == remote_port)
        {
            return Err(Errno::EINVAL);
        }
        let p = self.next_port;
        self.next_port += 1;
        self.bound.push((p, remote_dom, remote_port));
        Ok(p)
    }

    fn evtchn_bind_virq(&mut self, virq: u32) -> Result<EvtchnPort, Errno> {
        self.step("bind_virq")?;
        let p = self.next_port;
        self.next_port += 1;
        self.virqs.push((virq, p));
        Ok(p)
    }

    fn evtchn_send(&mut self, port: EvtchnPort) -> Result<(), Errno> {
        self.sent.push(port);
        Ok(())
    }

    fn evtchn_close(&mut self, port: EvtchnPort) -> Result<(), Errno> {
        self.step("close")?;
        self.closed.push(port);
        Ok(())
    }

    fn map_foreign(&mut self, domid: DomId, mfn: XenPfn) -> Result<Mapping, Errno> {
        self.step("map_foreign")?;
        if self.owner.get(&mfn) != Some(&domid) {
            return Err(Errno::EINVAL);
        }
        let h = self.next_handle;
        self.next_handle += 1;
        self.maps += 1;
        self.mappings.insert(h, (domid, mfn));
        Ok(Mapping(h))
    }

    fn unmap_foreign(&mut self, m: Mapping) -> Result<(), Errno> {
        self.mappings.remove(&m.0).map(|_| ()).ok_or(Errno::EINVAL)
    }

    fn page(&mut self, m: Mapping) -> Option<&mut dyn SharedPage> {
        let &(_, mfn) = self.mappings.get(&m.0)?;
        Some(self.frames.entry(mfn).or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_configs_parse_cleanly() {
        let (cfg, warnings) = xm_config::parse("/etc/xen/brun.cfg", BRUN).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cfg.name, "brun");
        assert_eq!(cfg.kernel, "/boot/vmlinuz-2.6.18-4-xen-686");
        assert_eq!(cfg.memory_mib, 64);
        let (xend, warnings) =
            xm_config::parse_xend_config("/etc/xen/xend-config.sxp", XEND_CONFIG).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            xend.network_mode(),
            Some(xm_config::NetworkMode::Bridge {
                bridge: String::from("xenbr0")
            })
        );
        assert_eq!(xend.dom0_min_mem, Some(196));
    }
}
