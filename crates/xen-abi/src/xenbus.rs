//! XenBus device states (`enum xenbus_state`, XEN-PV-ABI.md §11.2). Each end
//! stores its state as a decimal string in its `state` xenstore key.

/// A XenBus state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum XenbusState {
    /// `XenbusStateUnknown`.
    Unknown = 0,
    /// `XenbusStateInitialising`.
    Initialising = 1,
    /// `XenbusStateInitWait`: back end ready, waiting for the front end.
    InitWait = 2,
    /// `XenbusStateInitialised`: front end published its ring.
    Initialised = 3,
    /// `XenbusStateConnected`.
    Connected = 4,
    /// `XenbusStateClosing`.
    Closing = 5,
    /// `XenbusStateClosed`.
    Closed = 6,
    /// `XenbusStateReconfiguring`.
    Reconfiguring = 7,
    /// `XenbusStateReconfigured`.
    Reconfigured = 8,
}

impl XenbusState {
    /// Every state, in number order.
    pub const ALL: [XenbusState; 9] = [
        Self::Unknown,
        Self::Initialising,
        Self::InitWait,
        Self::Initialised,
        Self::Connected,
        Self::Closing,
        Self::Closed,
        Self::Reconfiguring,
        Self::Reconfigured,
    ];

    /// The state with number `v`.
    pub const fn from_u32(v: u32) -> Option<Self> {
        if (v as usize) < Self::ALL.len() {
            Some(Self::ALL[v as usize])
        } else {
            None
        }
    }

    /// Parses the decimal string stored in a `state` key.
    pub fn parse(s: &[u8]) -> Option<Self> {
        let s = s.strip_suffix(b"\0").unwrap_or(s);
        match s {
            [d] if d.is_ascii_digit() => Self::from_u32(u32::from(d - b'0')),
            _ => None,
        }
    }

    /// The decimal string written to a `state` key.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "0",
            Self::Initialising => "1",
            Self::InitWait => "2",
            Self::Initialised => "3",
            Self::Connected => "4",
            Self::Closing => "5",
            Self::Closed => "6",
            Self::Reconfiguring => "7",
            Self::Reconfigured => "8",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for (i, s) in XenbusState::ALL.iter().enumerate() {
            assert_eq!(*s as u32, i as u32);
            assert_eq!(XenbusState::from_u32(i as u32), Some(*s));
            assert_eq!(XenbusState::parse(s.as_str().as_bytes()), Some(*s));
        }
        assert_eq!(XenbusState::parse(b"4\0"), Some(XenbusState::Connected));
        assert_eq!(XenbusState::parse(b"9"), None);
        assert_eq!(XenbusState::parse(b"10"), None);
        assert_eq!(XenbusState::parse(b""), None);
    }
}
