//! The vocabulary of the engine: page types, table levels, who is calling, and
//! the machine-wide settings.

use xen_abi::domid::DomId;

/// The type of a machine frame (XEN-PV-ABI.md §7.6). A frame has one type while
/// its type count is non-zero.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[repr(u32)]
pub enum PageType {
    /// No type (never requested; the type of a fresh frame).
    None = 0,
    /// A level-1 page table (512 × 4 KiB mappings).
    L1 = 1,
    /// A level-2 page table (512 × 2 MiB).
    L2 = 2,
    /// A level-3 page table (the PAE top level; 4 entries used).
    L3 = 3,
    /// A GDT or LDT page.
    SegDesc = 4,
    /// A frame with writable mappings.
    Writable = 5,
}

impl PageType {
    /// Decodes the type field of `type_info`.
    pub const fn from_bits(bits: u32) -> Option<Self> {
        Some(match bits {
            0 => Self::None,
            1 => Self::L1,
            2 => Self::L2,
            3 => Self::L3,
            4 => Self::SegDesc,
            5 => Self::Writable,
            _ => return None,
        })
    }

    /// Whether this is a page-table type.
    pub const fn is_page_table(self) -> bool {
        matches!(self, Self::L1 | Self::L2 | Self::L3)
    }

    /// Whether the contents are checked when the type count goes from 0 to 1
    /// (page tables and descriptor pages).
    pub const fn needs_validation(self) -> bool {
        matches!(self, Self::L1 | Self::L2 | Self::L3 | Self::SegDesc)
    }
}

/// The level named by `MMUEXT_PIN_L*_TABLE`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum PtLevel {
    /// `MMUEXT_PIN_L1_TABLE`.
    L1,
    /// `MMUEXT_PIN_L2_TABLE`.
    L2,
    /// `MMUEXT_PIN_L3_TABLE`.
    L3,
    /// `MMUEXT_PIN_L4_TABLE`: refused for 32-bit guests.
    L4,
}

impl PtLevel {
    /// The page type a pin of this level takes, if the level exists for PAE guests.
    pub const fn page_type(self) -> Option<PageType> {
        match self {
            Self::L1 => Some(PageType::L1),
            Self::L2 => Some(PageType::L2),
            Self::L3 => Some(PageType::L3),
            Self::L4 => None,
        }
    }
}

/// The domain on whose behalf an operation runs, with what the hypervisor knows
/// of its privileges.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Caller {
    /// The calling domain.
    pub domid: DomId,
    /// Whether it may act on other domains' memory (dom0).
    pub privileged: bool,
    /// Whether it may map frames that are not RAM or are owned by `DOMID_IO`, and
    /// choose cache attributes (PWT/PCD/PAT) in L1 entries.
    pub iomem_access: bool,
}

/// Machine-wide settings of the engine.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct MmConfig {
    /// The CPU supports NX (EFER.NXE is on): guests may set bit 63 in L1/L2 entries.
    pub nx_supported: bool,
}
