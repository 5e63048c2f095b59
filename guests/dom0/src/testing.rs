//! A recording fake of the hypervisor for the host tests: it checks the
//! interface version of every sysctl/domctl, records what was asked, and
//! answers either with a fixed errno or with the data a test gave it (written
//! into the caller's buffer the way the hypervisor would).

use alloc::string::String;
use alloc::vec::Vec;

use xen_abi::domctl::{
    XEN_DOMCTL_CREATEDOMAIN, XEN_DOMCTL_GETDOMAININFO, XEN_DOMCTL_INTERFACE_VERSION, XenDomctl,
    XenDomctlGetdomaininfo,
};
use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::sysctl::{
    XEN_SYSCTL_GETDOMAININFOLIST, XEN_SYSCTL_INTERFACE_VERSION, XEN_SYSCTL_PHYSINFO,
    XEN_SYSCTL_READCONSOLE, XenSysctl, XenSysctlGetdomaininfolist, XenSysctlPhysinfo,
    XenSysctlReadconsole,
};
use zerocopy::IntoBytes;

use crate::hv::{Hypervisor, VersionInfo};

/// The tutorial's domain config, as shipped in dom0's initrd.
pub const BRUN: &str = include_str!("../initrd/etc/xen/brun.cfg");
/// xend's config, as shipped in dom0's initrd.
pub const XEND_CONFIG: &str = include_str!("../initrd/etc/xen/xend-config.sxp");

/// Which hypercall a test saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Sysctl(u32),
    Domctl(u32),
    RemoteShutdown,
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
    /// (domid, reason) of each remote shutdown.
    pub remote: Vec<(DomId, u32)>,
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
}

impl FakeXen {
    pub fn refusing(errno: Errno) -> Self {
        Self {
            errno,
            calls: Vec::new(),
            sysctls: Vec::new(),
            domctls: Vec::new(),
            remote: Vec::new(),
            cleared: Vec::new(),
            domains: None,
            physinfo: None,
            console: None,
            created_domid: None,
            domctl_ok: false,
            time_ns: 0,
            wallclock: 0,
        }
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
        match op.cmd {
            XEN_DOMCTL_CREATEDOMAIN => {
                op.domain = self.created_domid.ok_or(self.errno)?;
                Ok(())
            }
            XEN_DOMCTL_GETDOMAININFO if self.domctl_ok => {
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

    fn remote_shutdown(&mut self, domid: DomId, reason: u32) -> Result<(), Errno> {
        self.calls.push(Call::RemoteShutdown);
        self.remote.push((domid, reason));
        Err(self.errno)
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
