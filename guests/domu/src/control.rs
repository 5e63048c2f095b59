//! `control/shutdown` (XEN-PV-ABI.md §13.3): the toolstack writes `poweroff`,
//! `reboot`, `suspend` or `halt`; the guest clears the node (writes "", as
//! Linux does) and acts. This module decides what a value asks for.
#![forbid(unsafe_code)]

use xen_abi::sched::{SHUTDOWN_POWEROFF, SHUTDOWN_REBOOT};

/// What a `control/shutdown` value asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownRequest {
    /// Empty (or absent): nothing asked, or a request already handled.
    Nothing,
    /// `poweroff`.
    Poweroff,
    /// `halt` (treated as `poweroff`, as Linux does).
    Halt,
    /// `reboot`.
    Reboot,
    /// `suspend` (not supported by this kernel).
    Suspend,
    /// Any other value.
    Unknown,
}

impl ShutdownRequest {
    /// Parses a node value (a trailing NUL is tolerated).
    pub fn parse(value: &[u8]) -> ShutdownRequest {
        match value.strip_suffix(b"\0").unwrap_or(value) {
            b"" => ShutdownRequest::Nothing,
            b"poweroff" => ShutdownRequest::Poweroff,
            b"halt" => ShutdownRequest::Halt,
            b"reboot" => ShutdownRequest::Reboot,
            b"suspend" => ShutdownRequest::Suspend,
            _ => ShutdownRequest::Unknown,
        }
    }

    /// Whether the guest must clear the node (anything but empty).
    pub fn must_clear(self) -> bool {
        self != ShutdownRequest::Nothing
    }

    /// The `SCHEDOP_shutdown` reason to act with, if this kernel acts on it.
    pub fn reason(self) -> Option<u32> {
        match self {
            ShutdownRequest::Poweroff | ShutdownRequest::Halt => Some(SHUTDOWN_POWEROFF),
            ShutdownRequest::Reboot => Some(SHUTDOWN_REBOOT),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_requests() {
        assert_eq!(
            ShutdownRequest::parse(b"poweroff").reason(),
            Some(SHUTDOWN_POWEROFF)
        );
        assert_eq!(
            ShutdownRequest::parse(b"halt").reason(),
            Some(SHUTDOWN_POWEROFF)
        );
        assert_eq!(
            ShutdownRequest::parse(b"reboot\0").reason(),
            Some(SHUTDOWN_REBOOT)
        );
        assert_eq!(ShutdownRequest::parse(b"suspend"), ShutdownRequest::Suspend);
        assert_eq!(ShutdownRequest::parse(b"suspend").reason(), None);
    }

    #[test]
    fn empty_and_unknown_values() {
        assert_eq!(ShutdownRequest::parse(b""), ShutdownRequest::Nothing);
        assert!(!ShutdownRequest::parse(b"").must_clear());
        assert_eq!(
            ShutdownRequest::parse(b"Poweroff"),
            ShutdownRequest::Unknown
        );
        assert_eq!(
            ShutdownRequest::parse(b"poweroff "),
            ShutdownRequest::Unknown
        );
        assert!(ShutdownRequest::parse(b"bogus").must_clear());
        assert_eq!(ShutdownRequest::parse(b"bogus").reason(), None);
    }
}
