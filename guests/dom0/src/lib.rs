//! oxen-dom0: Oxen's control domain (DESIGN.md §1, §4).
//!
//! dom0 is a PV kernel written on `pvrt`, an event loop and not a process OS.
//! This library is everything in it that is pure logic, host-tested with
//! `cargo test -p oxen-dom0`; the kernel (`main.rs`) binds it to the hardware
//! of a PV guest: start_info, shared_info, event channels, `console_io`.
//!
//! - [`line`]: the console line editor (echo, backspace, Ctrl-U, Ctrl-C);
//! - [`words`]: splitting a command line into words (quotes, escapes);
//! - [`shell`]: the prompt and the command table (ls, cd, pwd, cat, echo,
//!   uname, uptime, xm, halt...) over the read-only initrd;
//! - [`xm`]: the toolstack's subcommands;
//! - [`sxp`]: S-expressions and a domain config as `xm create -n` prints it;
//! - [`fs`]: how the initrd is shown (ls layouts, error texts);
//! - [`clock`]: dates and uptimes from the PV clock;
//! - [`net`]: `/etc/network/interfaces`, `ifconfig`, `route -n` and `ping`
//!   over the kernel's network stack;
//! - [`pci`]: the PCI functions dom0 found, named as `lspci` shows them;
//! - [`toolstack`]: the domains dom0 built and serves: xenstored on their
//!   store rings, the console daemon, VIRQ_DOM_EXC and the `on_*` actions;
//! - [`builder`]: building a domU (XEN-PV-ABI.md §15.7) with `pv-builder`;
//! - [`rings`]: the store and console rings on another domain's page;
//! - [`vbd`]: the block back end serving the vbds under `backend/vbd`;
//! - [`hv`]: the [`hv::Hypervisor`] trait the above use for hypercalls and
//!   foreign pages, and how a refusal is reported.
//!
//! Invariant: the initrd is never written (it is an `initrd::Archive`
//! borrowed from the boot module), and every result shown to the user comes
//! from the initrd or from the hypervisor, never invented.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod builder;
pub mod clock;
pub mod fs;
pub mod hv;
pub mod line;
pub mod net;
pub mod pci;
pub mod rings;
pub mod shell;
pub mod sxp;
pub mod toolstack;
pub mod vbd;
pub mod words;
pub mod xm;

#[cfg(test)]
pub(crate) mod testing;
