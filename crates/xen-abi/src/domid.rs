//! Domain identifiers (`domid_t`, a `u16`) and the reserved ids (xen.h).

/// A domain identifier as the ABI carries it.
pub type DomId = u16;

/// The first reserved id; ordinary domains are numbered below it.
pub const DOMID_FIRST_RESERVED: DomId = 0x7FF0;
/// "The calling domain" in hypercall arguments.
pub const DOMID_SELF: DomId = 0x7FF0;
/// Owner of I/O memory (MMIO frames that belong to no domain).
pub const DOMID_IO: DomId = 0x7FF1;
/// Owner of the hypervisor's own frames.
pub const DOMID_XEN: DomId = 0x7FF2;
/// Owner of copy-on-write shared frames.
pub const DOMID_COW: DomId = 0x7FF3;
/// "No domain".
pub const DOMID_INVALID: DomId = 0x7FF4;
/// (later Xen) "any domain".
pub const DOMID_ANY: DomId = 0x7FF5;
/// The idle domain (Xen-internal).
pub const DOMID_IDLE: DomId = 0x7FFF;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ids_are_above_ordinary_ones() {
        for id in [
            DOMID_SELF,
            DOMID_IO,
            DOMID_XEN,
            DOMID_COW,
            DOMID_INVALID,
            DOMID_ANY,
            DOMID_IDLE,
        ] {
            assert!(id >= DOMID_FIRST_RESERVED);
        }
        assert_eq!(DOMID_XEN, 32754);
    }
}
