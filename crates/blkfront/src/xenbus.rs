//! The vbd front end's XenBus side (XEN-PV-ABI.md §11.3), as pure functions,
//! after Linux's xen-blkfront `backend_changed`.
//!
//! The front directory is `device/vbd/<devid>/` in the guest's home. When the
//! back end is in InitWait (or already Connected), the front end grants its
//! ring page, allocates an unbound port for the back end, writes `ring-ref`,
//! `event-channel` and `protocol = x86_32-abi` in one transaction and goes to
//! Initialised; when the back end is Connected, it reads [`BackendInfo`] and
//! goes to Connected. When the back end closes, the front end fails what is in
//! flight, revokes its grants and goes to Closed; a detach started by the
//! guest goes through Closing first.

use xen_abi::blkif::{BLKIF_SECTOR_SIZE, VDISK_CDROM, VDISK_READONLY, VDISK_REMOVABLE};
use xen_abi::xenbus::XenbusState;

/// What the back end published when connecting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendInfo {
    /// `sectors`: size in 512-byte sectors.
    pub sectors: u64,
    /// `info`: `VDISK_*` bits.
    pub info: u32,
    /// `feature-flush-cache`.
    pub flush: bool,
    /// `feature-barrier`.
    pub barrier: bool,
}

impl BackendInfo {
    /// The disk is read-only.
    pub const fn readonly(&self) -> bool {
        self.info & VDISK_READONLY != 0
    }

    /// The disk is a CD-ROM.
    pub const fn cdrom(&self) -> bool {
        self.info & VDISK_CDROM != 0
    }

    /// The medium is removable.
    pub const fn removable(&self) -> bool {
        self.info & VDISK_REMOVABLE != 0
    }

    /// Size in bytes.
    pub const fn bytes(&self) -> u64 {
        self.sectors.saturating_mul(BLKIF_SECTOR_SIZE as u64)
    }
}

/// Why the back end's nodes were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// A required node is missing.
    Missing(&'static str),
    /// A node is not a decimal number.
    NotANumber(&'static str),
    /// `sector-size` other than 512 (this front end does not offer
    /// `feature-large-sector-size`).
    SectorSize(u64),
}

/// The back end's nodes as read (`None` = absent).
#[derive(Clone, Copy, Debug, Default)]
pub struct BackendNodes<'a> {
    /// `sectors`.
    pub sectors: Option<&'a [u8]>,
    /// `info`.
    pub info: Option<&'a [u8]>,
    /// `sector-size`.
    pub sector_size: Option<&'a [u8]>,
    /// `feature-flush-cache`.
    pub feature_flush_cache: Option<&'a [u8]>,
    /// `feature-barrier`.
    pub feature_barrier: Option<&'a [u8]>,
}

/// A strict decimal `u64`, one trailing NUL allowed.
fn decimal(v: &[u8]) -> Option<u64> {
    let v = v.strip_suffix(b"\0").unwrap_or(v);
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

impl BackendNodes<'_> {
    /// Reads the nodes: `sectors` is required; `info` defaults to 0,
    /// `sector-size` to 512, features to 0.
    pub fn parse(&self) -> Result<BackendInfo, BackendError> {
        let num = |v: Option<&[u8]>, name, default: Option<u64>| match v {
            None => default.ok_or(BackendError::Missing(name)),
            Some(v) => decimal(v).ok_or(BackendError::NotANumber(name)),
        };
        let sectors = num(self.sectors, "sectors", None)?;
        let info = num(self.info, "info", Some(0))?;
        let info = u32::try_from(info).map_err(|_| BackendError::NotANumber("info"))?;
        let sector_size = num(self.sector_size, "sector-size", Some(512))?;
        if sector_size != BLKIF_SECTOR_SIZE as u64 {
            return Err(BackendError::SectorSize(sector_size));
        }
        let flush = num(self.feature_flush_cache, "feature-flush-cache", Some(0))? != 0;
        let barrier = num(self.feature_barrier, "feature-barrier", Some(0))? != 0;
        Ok(BackendInfo {
            sectors,
            info,
            flush,
            barrier,
        })
    }
}

/// The back end's `state` node as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendState {
    /// Absent (not written yet, or the back end is gone).
    Absent,
    /// Not a state number.
    Invalid,
    /// A state.
    State(XenbusState),
}

impl BackendState {
    /// Parses a `state` node (`None` = absent).
    pub fn parse(v: Option<&[u8]>) -> Self {
        match v {
            None => BackendState::Absent,
            Some(v) => XenbusState::parse(v).map_or(BackendState::Invalid, BackendState::State),
        }
    }
}

/// The step to take; the caller does it and asks again when a watch fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do now.
    Wait,
    /// Grant the ring, allocate the port, write `ring-ref`, `event-channel`,
    /// `protocol` in one transaction, then `state = Initialised`.
    Publish,
    /// Read [`BackendNodes`]; on success `state = Connected` and the disk is
    /// usable; on a [`BackendError`], close ([`Step::Close`]).
    Connect,
    /// Write `state = Closing` (a detach asked by the guest).
    Closing,
    /// Fail requests in flight, revoke the ring and data grants, close the
    /// port, `state = Closed`.
    Close,
}

/// What the front end knows when a watch fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Situation {
    /// Our `state` as last written.
    pub frontend: XenbusState,
    /// The back end's `state`.
    pub backend: BackendState,
    /// The guest wants the device gone (detach, shutdown).
    pub detach: bool,
}

/// The next step for `s`.
pub fn next_step(s: &Situation) -> Step {
    use XenbusState as X;
    let fe = s.frontend;
    if fe == X::Closed {
        return Step::Wait;
    }
    let be = match s.backend {
        BackendState::State(be) => be,
        // The back end vanished or talks nonsense: nothing can be trusted.
        BackendState::Invalid => return Step::Close,
        BackendState::Absent => {
            return if fe == X::Initialising && !s.detach {
                Step::Wait
            } else {
                Step::Close
            };
        }
    };
    if s.detach {
        return match (fe, be) {
            (_, X::Closing | X::Closed) | (X::Initialising, _) => Step::Close,
            (X::Closing, _) => Step::Wait,
            _ => Step::Closing,
        };
    }
    match be {
        X::InitWait if fe == X::Initialising => Step::Publish,
        X::Connected => match fe {
            X::Initialising => Step::Publish,
            X::Initialised => Step::Connect,
            _ => Step::Wait,
        },
        X::Closing | X::Closed => Step::Close,
        _ => Step::Wait,
    }
}
