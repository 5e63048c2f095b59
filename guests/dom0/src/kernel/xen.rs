//! The toolstack's [`Hypervisor`] on Oxen: each method is one hypercall
//! through pvrt's hypercall page (or a read of the PV clock in shared_info).
//!
//! Foreign pages are mapped into [`NR_SLOTS`] fixed virtual pages of dom0's
//! bootstrap padding (§4.3 guarantees 512 KiB of mapped padding, so their L1
//! entries exist); a slot is free again once unmapped. [`MappedPage`] is the
//! only code that touches another domain's page, through its slot's address.

use alloc::string::String;
use alloc::vec::Vec;

use oxen_dom0::hv::{Hypervisor, Mapping, SharedPage, VersionInfo};
use pvrt::hypercall::{raw, result};
use pvrt::xenbus::PTE_RW;
use xen_abi::context::VcpuGuestContext;
use xen_abi::domctl::{XEN_DOMCTL_SETVCPUCONTEXT, XenDomctl, XenDomctlVcpucontext};
use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::evtchn::{
    EVTCHNOP_ALLOC_UNBOUND, EVTCHNOP_BIND_INTERDOMAIN, EvtchnAllocUnbound, EvtchnBindInterdomain,
};
use xen_abi::hypercall::{DOMCTL, MEMORY_OP, SYSCTL};
use xen_abi::memory::{XENMEM_POPULATE_PHYSMAP, XenMemoryReservation};
use xen_abi::mm::{MmuextOp, UVMF_INVLPG, pte_from_mfn};
use xen_abi::sysctl::XenSysctl;
use xen_abi::types::{EvtchnPort, PAGE_SIZE, XenPfn};
use xen_abi::version::{
    XEN_CAPABILITIES_INFO_LEN, XEN_EXTRAVERSION_LEN, XENVER_CAPABILITIES, XENVER_EXTRAVERSION,
    XENVER_GET_FEATURES, XENVER_VERSION, XenFeatureInfo, xen_version_split,
};

/// Virtual pages for foreign mappings (256 KiB of the padding).
pub const NR_SLOTS: usize = 64;

/// Another domain's page, mapped at `va` in dom0.
pub struct MappedPage {
    va: u32,
}

impl MappedPage {
    fn at(&self, offset: usize, len: usize) -> *mut u8 {
        assert!(offset + len <= PAGE_SIZE, "access outside the shared page");
        (self.va as usize + offset) as *mut u8
    }
}

impl SharedPage for MappedPage {
    fn read(&self, offset: usize, out: &mut [u8]) {
        let p = self.at(offset, out.len());
        // SAFETY: the slot maps a whole page for as long as this MappedPage
        // lives (it is dropped before the slot is unmapped); the range is
        // inside it (checked).
        unsafe { core::ptr::copy_nonoverlapping(p, out.as_mut_ptr(), out.len()) };
    }
    fn write(&mut self, offset: usize, data: &[u8]) {
        let p = self.at(offset, data.len());
        // SAFETY: as for `read`; the mapping is writable.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
    }
    fn read_u32(&self, offset: usize) -> u32 {
        assert!(offset.is_multiple_of(4));
        let p = self.at(offset, 4).cast::<u32>();
        // SAFETY: as for `read`; aligned.
        unsafe { p.read_volatile() }
    }
    fn write_u32(&mut self, offset: usize, v: u32) {
        assert!(offset.is_multiple_of(4));
        let p = self.at(offset, 4).cast::<u32>();
        // SAFETY: as for `write`; aligned.
        unsafe { p.write_volatile(v) }
    }
    fn barrier(&self) {
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    }
}

/// Oxen, as seen from dom0.
pub struct Xen {
    /// Where shared_info is mapped (for the PV clock).
    pub shared_va: u32,
    /// The first foreign-mapping slot.
    pub slots_va: u32,
    /// Slot i maps at `slots_va + i * 4096` when `Some`.
    pub slots: Vec<Option<MappedPage>>,
    /// The handler given to every port dom0 binds.
    pub on_port: pvrt::events::Handler,
}

fn evtchn<T>(cmd: u32, arg: &mut T) -> Result<u32, Errno> {
    pvrt::events::op(cmd, arg)
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl Hypervisor for Xen {
    fn sysctl(&mut self, op: &mut XenSysctl, _buf: &mut [u8]) -> Result<(), Errno> {
        // SAFETY: `op` is a live xen_sysctl the hypervisor reads and writes;
        // the only buffer its payload names is `_buf`, borrowed across the call.
        result(unsafe { raw(SYSCTL, [op as *mut XenSysctl as u32, 0, 0, 0, 0]) }).map(|_| ())
    }

    fn domctl(&mut self, op: &mut XenDomctl) -> Result<(), Errno> {
        // SAFETY: `op` is a live xen_domctl; the commands dom0 issues name no
        // other buffer.
        result(unsafe { raw(DOMCTL, [op as *mut XenDomctl as u32, 0, 0, 0, 0]) }).map(|_| ())
    }

    fn shutdown(&mut self, reason: u32) -> Errno {
        pvrt::hypercall::shutdown(reason)
    }

    fn system_time_ns(&self) -> u64 {
        pvrt::time::now(self.shared_va)
    }

    fn wallclock_base(&self) -> u64 {
        u64::from(pvrt::time::wallclock(self.shared_va))
    }

    fn features(&self) -> u32 {
        let mut f = XenFeatureInfo {
            submap_idx: 0,
            submap: 0,
        };
        // SAFETY: XENVER_get_features writes one xen_feature_info.
        let r = unsafe {
            pvrt::hypercall::xen_version(
                XENVER_GET_FEATURES,
                (&mut f as *mut XenFeatureInfo).cast(),
            )
        };
        r.map(|_| f.submap).unwrap_or(0)
    }

    fn populate_physmap(&mut self, domid: DomId, extents: &mut [XenPfn]) -> Result<u32, Errno> {
        let res = XenMemoryReservation {
            extent_start: extents.as_mut_ptr() as u32,
            nr_extents: extents.len() as u32,
            extent_order: 0,
            mem_flags: 0,
            domid,
            _pad: 0,
        };
        // SAFETY: `res` and the extent array it names live across the call.
        result(unsafe {
            raw(
                MEMORY_OP,
                [XENMEM_POPULATE_PHYSMAP, &res as *const _ as u32, 0, 0, 0],
            )
        })
    }

    fn mmuext_op(&mut self, op: &MmuextOp, foreigndom: u32) -> Result<(), Errno> {
        pvrt::mm::mmuext_op(core::slice::from_ref(op), foreigndom)
            .0
            .map(|_| ())
    }

    fn set_vcpu_context(
        &mut self,
        domid: DomId,
        vcpu: u32,
        ctx: &VcpuGuestContext,
    ) -> Result<(), Errno> {
        let mut op = XenDomctl::new(
            XEN_DOMCTL_SETVCPUCONTEXT,
            domid,
            &XenDomctlVcpucontext {
                vcpu,
                _pad: 0,
                ctxt: ctx as *const VcpuGuestContext as u32 as u64,
            },
        );
        // SAFETY: `op` and the context it names live across the call; the
        // context is only read.
        result(unsafe { raw(DOMCTL, [&mut op as *mut XenDomctl as u32, 0, 0, 0, 0]) }).map(|_| ())
    }

    fn evtchn_alloc_unbound(&mut self, dom: DomId, remote_dom: DomId) -> Result<EvtchnPort, Errno> {
        let mut a = EvtchnAllocUnbound {
            dom,
            remote_dom,
            port: 0,
        };
        evtchn(EVTCHNOP_ALLOC_UNBOUND, &mut a).map(|_| a.port)
    }

    fn evtchn_bind_interdomain(
        &mut self,
        remote_dom: DomId,
        remote_port: EvtchnPort,
    ) -> Result<EvtchnPort, Errno> {
        let mut b = EvtchnBindInterdomain {
            remote_dom,
            _pad: 0,
            remote_port,
            local_port: 0,
        };
        evtchn(EVTCHNOP_BIND_INTERDOMAIN, &mut b)?;
        pvrt::events::on(b.local_port, self.on_port);
        Ok(b.local_port)
    }

    fn evtchn_bind_virq(&mut self, virq: u32) -> Result<EvtchnPort, Errno> {
        let port = pvrt::events::bind_virq(virq)?;
        pvrt::events::on(port, self.on_port);
        Ok(port)
    }

    fn evtchn_send(&mut self, port: EvtchnPort) -> Result<(), Errno> {
        pvrt::events::send(port).map(|_| ())
    }

    fn evtchn_close(&mut self, port: EvtchnPort) -> Result<(), Errno> {
        pvrt::events::close(port).map(|_| ())
    }

    fn map_foreign(&mut self, domid: DomId, mfn: XenPfn) -> Result<Mapping, Errno> {
        let i = self
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or(Errno::ENOMEM)?;
        let va = self.slots_va + (i * PAGE_SIZE) as u32;
        let pte = pte_from_mfn(u64::from(mfn), PTE_RW);
        pvrt::mm::update_va_mapping_otherdomain(va, pte, UVMF_INVLPG, domid)?;
        self.slots[i] = Some(MappedPage { va });
        Ok(Mapping(i as u32))
    }

    fn unmap_foreign(&mut self, m: Mapping) -> Result<(), Errno> {
        let slot = self.slots.get_mut(m.0 as usize).ok_or(Errno::EINVAL)?;
        let page = slot.take().ok_or(Errno::EINVAL)?;
        pvrt::mm::update_va_mapping(page.va, 0, UVMF_INVLPG).map(|_| ())
    }

    fn page(&mut self, m: Mapping) -> Option<&mut dyn SharedPage> {
        self.slots
            .get_mut(m.0 as usize)?
            .as_mut()
            .map(|p| p as &mut dyn SharedPage)
    }

    fn version(&self) -> VersionInfo {
        // SAFETY: XENVER_version takes no buffer.
        let v = unsafe { pvrt::hypercall::xen_version(XENVER_VERSION, core::ptr::null_mut()) };
        let (major, minor) = xen_version_split(v.unwrap_or(0));
        let mut extra = [0u8; XEN_EXTRAVERSION_LEN];
        // SAFETY: the buffer has the size XENVER_extraversion writes.
        let extra_ok =
            unsafe { pvrt::hypercall::xen_version(XENVER_EXTRAVERSION, extra.as_mut_ptr()) };
        let mut caps = [0u8; XEN_CAPABILITIES_INFO_LEN];
        // SAFETY: the buffer has the size XENVER_capabilities writes.
        let caps_ok =
            unsafe { pvrt::hypercall::xen_version(XENVER_CAPABILITIES, caps.as_mut_ptr()) };
        VersionInfo {
            major,
            minor,
            extra: extra_ok.map(|_| c_string(&extra)).unwrap_or_default(),
            capabilities: caps_ok.map(|_| c_string(&caps)).unwrap_or_default(),
        }
    }
}
