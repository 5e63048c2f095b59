//! The toolstack's [`Hypervisor`] on Oxen: each method is one hypercall
//! through pvrt's hypercall page (or a read of the PV clock in shared_info).

use alloc::string::String;

use oxen_dom0::hv::{Hypervisor, VersionInfo};
use pvrt::hypercall::{raw, result};
use xen_abi::domctl::XenDomctl;
use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::hypercall::{DOMCTL, SCHED_OP, SYSCTL};
use xen_abi::sched::{SCHEDOP_REMOTE_SHUTDOWN, SchedRemoteShutdown};
use xen_abi::sysctl::XenSysctl;
use xen_abi::version::{
    XEN_CAPABILITIES_INFO_LEN, XEN_EXTRAVERSION_LEN, XENVER_CAPABILITIES, XENVER_EXTRAVERSION,
    XENVER_VERSION, xen_version_split,
};

/// Oxen, as seen from dom0.
pub struct Xen {
    /// Where shared_info is mapped (for the PV clock).
    pub shared_va: u32,
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

    fn remote_shutdown(&mut self, domid: DomId, reason: u32) -> Result<(), Errno> {
        let arg = SchedRemoteShutdown {
            domain_id: domid,
            _pad: 0,
            reason,
        };
        // SAFETY: `arg` lives across the call and is only read.
        result(unsafe {
            raw(
                SCHED_OP,
                [SCHEDOP_REMOTE_SHUTDOWN, &arg as *const _ as u32, 0, 0, 0],
            )
        })
        .map(|_| ())
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
