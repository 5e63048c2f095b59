//! Network front/back protocol messages (XEN-PV-ABI.md §12). Layouts are the
//! same on i386 and x86-64. Each device has a TX ring and an RX ring, one page each.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::types::GrantRef;

/// `NETTXF_csum_blank`: checksum not yet computed.
pub const NETTXF_CSUM_BLANK: u16 = 1 << 0;
/// `NETTXF_data_validated`.
pub const NETTXF_DATA_VALIDATED: u16 = 1 << 1;
/// `NETTXF_more_data`: the packet continues in the next slot.
pub const NETTXF_MORE_DATA: u16 = 1 << 2;
/// `NETTXF_extra_info`: the next slot is a `netif_extra_info`.
pub const NETTXF_EXTRA_INFO: u16 = 1 << 3;

/// `NETRXF_data_validated`.
pub const NETRXF_DATA_VALIDATED: u16 = 1 << 0;
/// `NETRXF_csum_blank`.
pub const NETRXF_CSUM_BLANK: u16 = 1 << 1;
/// `NETRXF_more_data`.
pub const NETRXF_MORE_DATA: u16 = 1 << 2;
/// `NETRXF_extra_info`.
pub const NETRXF_EXTRA_INFO: u16 = 1 << 3;
/// (later) `NETRXF_gso_prefix`.
pub const NETRXF_GSO_PREFIX: u16 = 1 << 4;

/// Extra-info type: none.
pub const XEN_NETIF_EXTRA_TYPE_NONE: u8 = 0;
/// Extra-info type: GSO.
pub const XEN_NETIF_EXTRA_TYPE_GSO: u8 = 1;
/// Extra-info type: add a multicast address.
pub const XEN_NETIF_EXTRA_TYPE_MCAST_ADD: u8 = 2;
/// Extra-info type: remove a multicast address.
pub const XEN_NETIF_EXTRA_TYPE_MCAST_DEL: u8 = 3;
/// One above the highest extra-info type.
pub const XEN_NETIF_EXTRA_TYPE_MAX: u8 = 4;
/// Extra-info flag: another extra-info slot follows.
pub const XEN_NETIF_EXTRA_FLAG_MORE: u8 = 1 << 0;
/// GSO type: none.
pub const XEN_NETIF_GSO_TYPE_NONE: u8 = 0;
/// GSO type: TCP over IPv4.
pub const XEN_NETIF_GSO_TYPE_TCPV4: u8 = 1;

/// Response status: packet dropped.
pub const NETIF_RSP_DROPPED: i16 = -2;
/// Response status: error.
pub const NETIF_RSP_ERROR: i16 = -1;
/// Response status: success.
pub const NETIF_RSP_OKAY: i16 = 0;
/// Response status: no real response (e.g. for an extra-info slot).
pub const NETIF_RSP_NULL: i16 = 1;

/// `struct netif_tx_request` (12 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct NetifTxRequest {
    /// Grant of the page holding the data.
    pub gref: GrantRef,
    /// Offset of the data in the page.
    pub offset: u16,
    /// `NETTXF_*`.
    pub flags: u16,
    /// Echoed in the response.
    pub id: u16,
    /// First slot: total packet length; later slots: fragment length.
    pub size: u16,
}
assert_layout!(
    NetifTxRequest,
    size = 12,
    align = 4,
    gref = 0,
    offset = 4,
    flags = 6,
    id = 8,
    size = 10,
);

/// The GSO member of the `netif_extra_info` union (6 bytes at offset 2).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct NetifExtraGso {
    /// Maximum payload size of each segment.
    pub size: u16,
    /// `XEN_NETIF_GSO_TYPE_*`.
    pub type_: u8,
    /// Padding.
    pub pad: u8,
    /// GSO features.
    pub features: u16,
}
assert_layout!(
    NetifExtraGso,
    size = 6,
    align = 2,
    size = 0,
    type_ = 2,
    pad = 3,
    features = 4
);

/// `struct netif_extra_info` (8 bytes): occupies a TX request or RX response slot.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct NetifExtraInfo {
    /// `XEN_NETIF_EXTRA_TYPE_*`.
    pub type_: u8,
    /// `XEN_NETIF_EXTRA_FLAG_*`.
    pub flags: u8,
    /// Union `{gso, mcast.addr[6]}`.
    pub u: [u8; 6],
}
assert_layout!(
    NetifExtraInfo,
    size = 8,
    align = 1,
    type_ = 0,
    flags = 1,
    u = 2
);

impl NetifExtraInfo {
    /// The GSO view of the union.
    pub fn gso(&self) -> NetifExtraGso {
        crate::types::read_union(&self.u)
    }

    /// Sets the GSO view of the union.
    pub fn set_gso(&mut self, gso: &NetifExtraGso) {
        crate::types::write_union(&mut self.u, gso);
    }

    /// The multicast view of the union (`mcast.addr`).
    pub const fn mcast_addr(&self) -> [u8; 6] {
        self.u
    }
}

/// `struct netif_tx_response` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct NetifTxResponse {
    /// The request's `id`.
    pub id: u16,
    /// `NETIF_RSP_*`.
    pub status: i16,
}
assert_layout!(NetifTxResponse, size = 4, align = 2, id = 0, status = 2);

/// `struct netif_rx_request` (8 bytes): an empty buffer page for the back end.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct NetifRxRequest {
    /// Echoed in the response.
    pub id: u16,
    /// Padding.
    pub _pad: u16,
    /// Grant of the buffer page.
    pub gref: GrantRef,
}
assert_layout!(NetifRxRequest, size = 8, align = 4, id = 0, gref = 4);

/// `struct netif_rx_response` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct NetifRxResponse {
    /// The request's `id`.
    pub id: u16,
    /// Offset of the data in the page.
    pub offset: u16,
    /// `NETRXF_*`.
    pub flags: u16,
    /// > 0: byte count; ≤ 0: `NETIF_RSP_*`.
    pub status: i16,
}
assert_layout!(
    NetifRxResponse,
    size = 8,
    align = 2,
    id = 0,
    offset = 2,
    flags = 4,
    status = 6
);

/// Entries in the TX ring (12-byte slots).
pub const NET_TX_RING_SIZE: usize =
    crate::ring::page_ring_size(core::mem::size_of::<NetifTxRequest>());
/// Entries in the RX ring (8-byte slots).
pub const NET_RX_RING_SIZE: usize =
    crate::ring::page_ring_size(core::mem::size_of::<NetifRxResponse>());
const _: () = assert!(NET_TX_RING_SIZE == 256 && NET_RX_RING_SIZE == 256);

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    #[test]
    fn extra_info_gso() {
        let mut e = NetifExtraInfo {
            type_: XEN_NETIF_EXTRA_TYPE_GSO,
            ..Default::default()
        };
        let g = NetifExtraGso {
            size: 1448,
            type_: XEN_NETIF_GSO_TYPE_TCPV4,
            pad: 0,
            features: 0,
        };
        e.set_gso(&g);
        assert_eq!(e.gso(), g);
        assert_eq!(&e.as_bytes()[2..5], &[0xA8, 0x05, 1]);
    }
}
