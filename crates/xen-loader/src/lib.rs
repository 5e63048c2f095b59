//! Loading Xen PV guest kernels for 32-bit PAE (`xen-3.0-x86_32p`).
//!
//! Shared by Oxen's dom0 builder and dom0's domU builder, so both accept exactly the
//! same kernels and lay out exactly the same bootstrap region. Pure logic, tested on
//! the host; no heap and no `unsafe`.
//!
//! - [`elf`]: the ELF32 container (read in place with `object`), `PT_LOAD` segments,
//!   where the Xen notes and the legacy `__xen_guest` string sit.
//! - [`notes`]: the syntax of the notes and of the legacy string ([`XenNotes`]).
//! - [`image`]: the §16 sanity rules and load addresses ([`GuestImage`]).
//! - [`load`]: copying the image into guest memory through a [`LoadTarget`].
//! - [`layout`]: the §4.3 bootstrap region ([`BootstrapLayout`]) and its page tables.
//! - [`error`]: [`LoadError`], one variant per rule.
//!
//! A builder does, in order: [`GuestImage::parse`] the kernel;
//! [`GuestImage::check_required_features`]; [`BootstrapLayout::compute`] for the
//! domain's size and initrd; allocate `nr_pages` frames and fill the P2M; map the
//! region; [`GuestImage::load`]; write the hypercall page at
//! [`GuestImage::hypercall_page`]; copy the initrd to `mod_start`; fill the P2M,
//! start_info and page tables ([`BootstrapLayout::for_each_bootstrap_pte`]); pin the
//! L3; start the vcpu at [`GuestImage::entry`] with `ESP` =
//! [`BootstrapLayout::stack_top`] and `ESI` = [`BootstrapLayout::start_info_va`].
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]

pub mod elf;
pub mod error;
pub mod image;
pub mod layout;
pub mod load;
pub mod notes;

pub use elf::{ElfSegment, MAX_LOAD_SEGMENTS, NotesSource};
pub use error::{ElfPart, LoadError, ShortName};
pub use image::{GuestImage, LoadSegment};
pub use layout::{BootstrapLayout, BootstrapPte, Builder, Element, LayoutError, LayoutRequest};
pub use load::LoadTarget;
pub use notes::{FeatureSet, NoteStr, PaeMode, XenNotes};

#[cfg(test)]
mod tests;
