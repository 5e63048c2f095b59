//! `sched_op` commands, shutdown reasons and their structs (XEN-PV-ABI.md §15.1).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::domid::DomId;
use crate::types::GuestHandle;

/// Yield the CPU (arg NULL).
pub const SCHEDOP_YIELD: u32 = 0;
/// Clear `upcall_mask` and block until an event is pending (arg NULL).
pub const SCHEDOP_BLOCK: u32 = 1;
/// Shut the caller down ([`SchedShutdown`]).
pub const SCHEDOP_SHUTDOWN: u32 = 2;
/// Wait until one of the listed ports is pending ([`SchedPoll`]).
pub const SCHEDOP_POLL: u32 = 3;
/// Shut another domain down ([`SchedRemoteShutdown`], privileged).
pub const SCHEDOP_REMOTE_SHUTDOWN: u32 = 4;
/// Record a shutdown code for a later shutdown ([`SchedShutdown`]).
pub const SCHEDOP_SHUTDOWN_CODE: u32 = 5;
/// Arm/disarm a watchdog ([`SchedWatchdog`]).
pub const SCHEDOP_WATCHDOG: u32 = 6;

/// Shutdown reason: power off.
pub const SHUTDOWN_POWEROFF: u32 = 0;
/// Shutdown reason: reboot.
pub const SHUTDOWN_REBOOT: u32 = 1;
/// Shutdown reason: suspend (checkpoint).
pub const SHUTDOWN_SUSPEND: u32 = 2;
/// Shutdown reason: crash.
pub const SHUTDOWN_CRASH: u32 = 3;
/// Shutdown reason: watchdog expired.
pub const SHUTDOWN_WATCHDOG: u32 = 4;

/// Name of shutdown reason `r` (as xm/xl print it).
pub const fn shutdown_reason_name(r: u32) -> Option<&'static str> {
    match r {
        SHUTDOWN_POWEROFF => Some("poweroff"),
        SHUTDOWN_REBOOT => Some("reboot"),
        SHUTDOWN_SUSPEND => Some("suspend"),
        SHUTDOWN_CRASH => Some("crash"),
        SHUTDOWN_WATCHDOG => Some("watchdog"),
        _ => None,
    }
}

/// Largest `nr_ports` of `SCHEDOP_poll`.
pub const SCHED_POLL_MAX_PORTS: u32 = 128;

/// `struct sched_shutdown` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SchedShutdown {
    /// `SHUTDOWN_*`.
    pub reason: u32,
}
assert_layout!(SchedShutdown, size = 4, align = 4, reason = 0);

/// `struct sched_poll` (16 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct SchedPoll {
    /// Guest array of `evtchn_port_t`.
    pub ports: GuestHandle,
    /// Number of ports (≤ 128).
    pub nr_ports: u32,
    /// Absolute system time (ns) to give up at; 0 = none.
    pub timeout: u64,
}
assert_layout!(
    SchedPoll,
    size = 16,
    align = 4,
    ports = 0,
    nr_ports = 4,
    timeout = 8
);

/// `struct sched_remote_shutdown` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SchedRemoteShutdown {
    /// Domain to shut down.
    pub domain_id: DomId,
    /// Padding.
    pub _pad: u16,
    /// `SHUTDOWN_*`.
    pub reason: u32,
}
assert_layout!(
    SchedRemoteShutdown,
    size = 8,
    align = 4,
    domain_id = 0,
    reason = 4
);

/// `struct sched_watchdog` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SchedWatchdog {
    /// Watchdog id (0 = allocate a new one).
    pub id: u32,
    /// Timeout in seconds (0 = destroy).
    pub timeout: u32,
}
assert_layout!(SchedWatchdog, size = 8, align = 4, id = 0, timeout = 4);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        assert_eq!(shutdown_reason_name(SHUTDOWN_CRASH), Some("crash"));
        assert_eq!(shutdown_reason_name(5), None);
    }
}
