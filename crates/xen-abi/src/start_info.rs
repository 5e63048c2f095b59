//! `start_info`, its flags and the dom0 VGA console description
//! (XEN-PV-ABI.md §4.1).
//!
//! The domain builder places a `start_info` page in the bootstrap region and passes
//! its virtual address in `%esi` at entry.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::types::{EvtchnPort, XenPfn};

/// The magic string of this ABI, stored NUL-terminated in `start_info.magic`.
pub const XEN_START_INFO_MAGIC: &str = "xen-3.0-x86_32p";
/// Length of `start_info.magic`.
pub const START_INFO_MAGIC_LEN: usize = 32;
/// Length of `start_info.cmd_line` (`MAX_GUEST_CMDLINE`).
pub const MAX_GUEST_CMDLINE: usize = 1024;
/// Size of `start_info` on i386 (3.4+, with the P2M frame fields).
pub const START_INFO_SIZE: usize = 1112;
/// Size of Xen 3.0.0's `start_info`, which ended at `cmd_line`.
pub const START_INFO_SIZE_3_0_0: usize = 1104;

/// `SIF_PRIVILEGED`: the domain is privileged.
pub const SIF_PRIVILEGED: u32 = 1 << 0;
/// `SIF_INITDOMAIN`: the domain is the initial control domain (dom0).
pub const SIF_INITDOMAIN: u32 = 1 << 1;
/// `SIF_MULTIBOOT_MOD`: the module is a multiboot-style package.
pub const SIF_MULTIBOOT_MOD: u32 = 1 << 2;
/// `SIF_MOD_START_PFN` (4.1+): `mod_start` is a PFN, not a virtual address.
pub const SIF_MOD_START_PFN: u32 = 1 << 3;
/// `SIF_VIRT_P2M_4TOOLS` (later Xen).
pub const SIF_VIRT_P2M_4TOOLS: u32 = 1 << 4;
/// `SIF_PM_MASK`: dom0 power-management options.
pub const SIF_PM_MASK: u32 = 0xFF << 8;

// ---- initial domain state (§4.2, §4.3; hypervisor/builder behaviour) ----

/// EFLAGS at entry: IF set, IOPL 0.
pub const ENTRY_EFLAGS: u32 = 1 << 9;
/// The bootstrap region ends on this boundary.
pub const BOOTSTRAP_ALIGN: u32 = 4 << 20;
/// Minimum free mapped padding after the last bootstrap element.
pub const BOOTSTRAP_MIN_PADDING: u32 = 512 << 10;
/// Bootstrap L1 entry flags (P|RW|A; RW cleared for page-table frames).
pub const BOOTSTRAP_L1_FLAGS: u64 =
    crate::mm::PAGE_PRESENT | crate::mm::PAGE_RW | crate::mm::PAGE_ACCESSED;
/// Bootstrap L2 entry flags (P|RW|A|D|US).
pub const BOOTSTRAP_L2_FLAGS: u64 = crate::mm::PAGE_PRESENT
    | crate::mm::PAGE_RW
    | crate::mm::PAGE_ACCESSED
    | crate::mm::PAGE_DIRTY
    | crate::mm::PAGE_USER;
/// Bootstrap L3 entry flags (P only).
pub const BOOTSTRAP_L3_FLAGS: u64 = crate::mm::PAGE_PRESENT;

/// End of the bootstrap region for elements ending at `end`: the next 4 MiB
/// boundary that leaves at least 512 KiB of padding. `None` if that passes 4 GiB.
pub const fn bootstrap_region_end(end: u32) -> Option<u32> {
    let Some(up) = end.checked_add(BOOTSTRAP_ALIGN - 1) else {
        return None;
    };
    let aligned = up & !(BOOTSTRAP_ALIGN - 1);
    if aligned - end < BOOTSTRAP_MIN_PADDING {
        aligned.checked_add(BOOTSTRAP_ALIGN)
    } else {
        Some(aligned)
    }
}

/// `struct start_info` (1112 bytes on i386).
///
/// Fields up to `console_evtchn` are rewritten on resume; the rest are valid on
/// initial boot only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct StartInfo {
    /// NUL-terminated `"xen-3.0-x86_32p"`.
    pub magic: [u8; START_INFO_MAGIC_LEN],
    /// Total pages owned by the domain.
    pub nr_pages: u32,
    /// Machine (byte) address of the shared-info page.
    pub shared_info: u32,
    /// `SIF_*` flags.
    pub flags: u32,
    /// MFN of the xenstore ring page (0 for dom0).
    pub store_mfn: XenPfn,
    /// Local event-channel port of xenstore.
    pub store_evtchn: EvtchnPort,
    /// Union word 0: domU `console.domU.mfn` (MFN of the console ring);
    /// dom0 `console.dom0.info_off` (see [`StartInfo::dom0_console_info_off`]).
    pub console_mfn: u32,
    /// Union word 1: domU `console.domU.evtchn`;
    /// dom0 `console.dom0.info_size` (see [`StartInfo::dom0_console_info_size`]).
    pub console_evtchn: u32,
    /// Virtual address of the bootstrap top-level table (the PAE L3 page).
    pub pt_base: u32,
    /// Number of bootstrap page-table frames.
    pub nr_pt_frames: u32,
    /// Virtual address of the initial P2M array (`unsigned long[nr_pages]`).
    pub mfn_list: u32,
    /// Virtual address of the initial module, or its PFN with `SIF_MOD_START_PFN`.
    pub mod_start: u32,
    /// Module length in bytes (0 = none).
    pub mod_len: u32,
    /// NUL-terminated kernel command line.
    pub cmd_line: [u8; MAX_GUEST_CMDLINE],
    /// (3.4+) First PFN of the frames holding page tables and the P2M.
    pub first_p2m_pfn: u32,
    /// (3.4+) Number of such frames.
    pub nr_p2m_frames: u32,
}
assert_layout!(
    StartInfo,
    size = START_INFO_SIZE,
    align = 4,
    magic = 0,
    nr_pages = 32,
    shared_info = 36,
    flags = 40,
    store_mfn = 44,
    store_evtchn = 48,
    console_mfn = 52,
    console_evtchn = 56,
    pt_base = 60,
    nr_pt_frames = 64,
    mfn_list = 68,
    mod_start = 72,
    mod_len = 76,
    cmd_line = 80,
    first_p2m_pfn = 1104,
    nr_p2m_frames = 1108,
);
zeroed_default!(StartInfo);

/// Returns the bytes of a NUL-terminated field up to (not including) the NUL.
fn c_str(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// Stores `s` NUL-terminated (and NUL-padded) in `field`, truncating to fit.
/// Returns false if `s` had to be truncated.
fn set_c_str(field: &mut [u8], s: &[u8]) -> bool {
    let n = s.len().min(field.len() - 1);
    field.fill(0);
    field[..n].copy_from_slice(&s[..n]);
    n == s.len()
}

impl StartInfo {
    /// The magic string without its NUL terminator.
    pub fn magic(&self) -> &[u8] {
        c_str(&self.magic)
    }

    /// Whether `magic` is exactly this ABI's `"xen-3.0-x86_32p"`.
    pub fn magic_is_valid(&self) -> bool {
        self.magic() == XEN_START_INFO_MAGIC.as_bytes()
    }

    /// Writes this ABI's magic string.
    pub fn set_magic(&mut self) {
        set_c_str(&mut self.magic, XEN_START_INFO_MAGIC.as_bytes());
    }

    /// The command line without its NUL terminator.
    pub fn cmd_line(&self) -> &[u8] {
        c_str(&self.cmd_line)
    }

    /// Writes the command line, truncated to 1023 bytes; returns false if truncated.
    pub fn set_cmd_line(&mut self, s: &[u8]) -> bool {
        set_c_str(&mut self.cmd_line, s)
    }

    /// dom0: offset of the `dom0_vga_console_info` from the start of `start_info`.
    pub const fn dom0_console_info_off(&self) -> u32 {
        self.console_mfn
    }

    /// dom0: size of the `dom0_vga_console_info` (0 = none).
    pub const fn dom0_console_info_size(&self) -> u32 {
        self.console_evtchn
    }

    /// dom0: records where the VGA console description lies.
    pub const fn set_dom0_console_info(&mut self, off: u32, size: u32) {
        self.console_mfn = off;
        self.console_evtchn = size;
    }
}

/// `dom0_vga_console_info.video_type`: VGA text mode 3.
pub const XEN_VGATYPE_TEXT_MODE_3: u8 = 0x03;
/// `dom0_vga_console_info.video_type`: VESA linear frame buffer.
pub const XEN_VGATYPE_VESA_LFB: u8 = 0x23;
/// Size of `dom0_vga_console_info`.
pub const DOM0_VGA_CONSOLE_INFO_SIZE: usize = 36;

/// Text-mode member of the `dom0_vga_console_info` union (at offset 4).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VgaTextModeInfo {
    /// Character height in scan lines.
    pub font_height: u16,
    /// Cursor column.
    pub cursor_x: u16,
    /// Cursor row.
    pub cursor_y: u16,
    /// Number of rows.
    pub rows: u16,
    /// Number of columns.
    pub columns: u16,
}
assert_layout!(
    VgaTextModeInfo,
    size = 10,
    align = 2,
    font_height = 0,
    cursor_x = 2,
    cursor_y = 4,
    rows = 6,
    columns = 8,
);

/// VESA-LFB member of the `dom0_vga_console_info` union (at offset 4).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VesaLfbInfo {
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Bytes per scan line.
    pub bytes_per_line: u16,
    /// Bits per pixel.
    pub bits_per_pixel: u16,
    /// Physical base of the frame buffer.
    pub lfb_base: u32,
    /// Frame-buffer size in 64 KiB units.
    pub lfb_size: u32,
    /// Red field position.
    pub red_pos: u8,
    /// Red field size.
    pub red_size: u8,
    /// Green field position.
    pub green_pos: u8,
    /// Green field size.
    pub green_size: u8,
    /// Blue field position.
    pub blue_pos: u8,
    /// Blue field size.
    pub blue_size: u8,
    /// Reserved field position.
    pub rsvd_pos: u8,
    /// Reserved field size.
    pub rsvd_size: u8,
    /// VESA capabilities (interface ≥ 0x00030206).
    pub gbl_caps: u32,
    /// VESA mode attributes (interface ≥ 0x00030206).
    pub mode_attrs: u16,
    /// Tail padding of the union.
    pub _pad: u16,
}
assert_layout!(
    VesaLfbInfo,
    size = 32,
    align = 4,
    width = 0,
    height = 2,
    bytes_per_line = 4,
    bits_per_pixel = 6,
    lfb_base = 8,
    lfb_size = 12,
    red_pos = 16,
    red_size = 17,
    green_pos = 18,
    green_size = 19,
    blue_pos = 20,
    blue_size = 21,
    rsvd_pos = 22,
    rsvd_size = 23,
    gbl_caps = 24,
    mode_attrs = 28,
);

/// `struct dom0_vga_console_info` (36 bytes), normally right after dom0's
/// `start_info` (offset 1112). The union at offset 4 is read and written through
/// [`Self::text_mode`] / [`Self::vesa_lfb`] according to `video_type`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Dom0VgaConsoleInfo {
    /// `XEN_VGATYPE_*`.
    pub video_type: u8,
    /// Padding before the union.
    pub _pad: [u8; 3],
    /// The union `u { text_mode_3, vesa_lfb }`.
    pub u: [u8; 32],
}
assert_layout!(
    Dom0VgaConsoleInfo,
    size = DOM0_VGA_CONSOLE_INFO_SIZE,
    align = 1,
    video_type = 0,
    u = 4
);

impl Dom0VgaConsoleInfo {
    /// The text-mode view of the union.
    pub fn text_mode(&self) -> VgaTextModeInfo {
        crate::types::read_union(&self.u)
    }

    /// The VESA-LFB view of the union.
    pub fn vesa_lfb(&self) -> VesaLfbInfo {
        crate::types::read_union(&self.u)
    }

    /// A text-mode description.
    pub fn new_text_mode(info: &VgaTextModeInfo) -> Self {
        let mut v = Self {
            video_type: XEN_VGATYPE_TEXT_MODE_3,
            ..Self::default()
        };
        crate::types::write_union(&mut v.u, info);
        v
    }

    /// A VESA-LFB description.
    pub fn new_vesa_lfb(info: &VesaLfbInfo) -> Self {
        let mut v = Self {
            video_type: XEN_VGATYPE_VESA_LFB,
            ..Self::default()
        };
        crate::types::write_union(&mut v.u, info);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromBytes;

    #[test]
    fn magic_and_cmdline_round_trip() {
        let mut si = StartInfo::default();
        assert!(!si.magic_is_valid());
        si.set_magic();
        assert!(si.magic_is_valid());
        assert_eq!(&si.magic[..16], b"xen-3.0-x86_32p\0");
        assert!(si.set_cmd_line(b"console=hvc0"));
        assert_eq!(si.cmd_line(), b"console=hvc0");
        assert!(!si.set_cmd_line(&[b'x'; 2000]));
        assert_eq!(si.cmd_line().len(), MAX_GUEST_CMDLINE - 1);
    }

    #[test]
    fn reads_from_a_byte_buffer() {
        let mut buf = [0u8; START_INFO_SIZE];
        buf[..15].copy_from_slice(b"xen-3.0-x86_32p");
        buf[32..36].copy_from_slice(&1234u32.to_le_bytes());
        buf[52..56].copy_from_slice(&1112u32.to_le_bytes());
        buf[56..60].copy_from_slice(&36u32.to_le_bytes());
        let si = StartInfo::read_from_bytes(&buf).unwrap();
        assert!(si.magic_is_valid());
        assert_eq!(si.nr_pages, 1234);
        assert_eq!(si.dom0_console_info_off(), 1112);
        assert_eq!(
            si.dom0_console_info_size(),
            DOM0_VGA_CONSOLE_INFO_SIZE as u32
        );
    }

    #[test]
    fn bootstrap_region() {
        assert_eq!(bootstrap_region_end(0xC030_0000), Some(0xC040_0000));
        assert_eq!(bootstrap_region_end(0xC038_0000), Some(0xC040_0000));
        assert_eq!(bootstrap_region_end(0xC038_0001), Some(0xC080_0000));
        assert_eq!(bootstrap_region_end(0xC040_0000), Some(0xC080_0000));
        assert_eq!(bootstrap_region_end(0xFFF0_0000), None);
        assert_eq!(bootstrap_region_end(0xFF80_0000), Some(0xFFC0_0000));
        assert_eq!(bootstrap_region_end(0xFFC0_0000), None);
        assert_eq!(bootstrap_region_end(0xFF40_0000), Some(0xFF80_0000));
        assert_eq!(BOOTSTRAP_L2_FLAGS, 0x67);
        assert_eq!(BOOTSTRAP_L1_FLAGS, 0x23);
    }

    #[test]
    fn vga_union_views() {
        let t = VgaTextModeInfo {
            font_height: 16,
            cursor_x: 1,
            cursor_y: 2,
            rows: 25,
            columns: 80,
        };
        let v = Dom0VgaConsoleInfo::new_text_mode(&t);
        assert_eq!(v.video_type, XEN_VGATYPE_TEXT_MODE_3);
        assert_eq!(v.text_mode(), t);
        // columns @12 of the whole struct
        assert_eq!(zerocopy::IntoBytes::as_bytes(&v)[12], 80);
        let l = VesaLfbInfo {
            width: 1024,
            lfb_base: 0xE000_0000,
            mode_attrs: 7,
            ..Default::default()
        };
        let v = Dom0VgaConsoleInfo::new_vesa_lfb(&l);
        assert_eq!(v.vesa_lfb(), l);
        assert_eq!(
            &zerocopy::IntoBytes::as_bytes(&v)[12..16],
            &0xE000_0000u32.to_le_bytes()
        );
        assert_eq!(zerocopy::IntoBytes::as_bytes(&v)[32], 7);
    }
}
