//! domu: Oxen's unprivileged guest kernel (DESIGN.md §4). This library is its
//! pure logic, host-tested with `cargo test -p domu --lib`; the kernel
//! (`main.rs`, `kernel/`) binds it to pvrt: start_info, events, the console
//! ring (`pvrt::xencons`) and xenstore (`pvrt::xenbus`).
//!
//! - [`control`]: what a `control/shutdown` value asks for (XEN-PV-ABI.md §13.3);
//! - [`echo`]: how typed console input is echoed;
//! - [`command`]: the console commands typed lines may name (`crash`, `help`).
//! - [`flood`]: `xs-flood`, a hostile domain's attack on xenstored's memory.
//!
//! pvrt itself cannot be compiled for the host (its entry code is 32-bit
//! assembly), so the host tests of its pure xenstore and ring modules run
//! here: `pvrt_pure` includes those files unchanged, and `xenstored_e2e`
//! drives pvrt's xenstore client against the real `xenstored` daemon.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]

pub mod command;
pub mod conflood;
pub mod control;
pub mod echo;
pub mod flood;

/// pvrt's host-testable modules (`guests/pvrt/src/xenbus/`), compiled here
/// for their `#[cfg(test)]` tests.
#[cfg(test)]
#[path = "../../pvrt/src/xenbus"]
#[allow(dead_code)] // pvrt's API is used by guests, not all of it by these tests
mod pvrt_pure {
    pub mod client;
    pub mod ring;
    pub mod wire;
}

#[cfg(test)]
mod xenstored_e2e;
