//! The oxen-dom0 kernel binary. On the bare-metal target it is the PV kernel
//! of [`kernel`]; a host build (e.g. `cargo clippy --all-targets`) only says
//! how to build and boot it, since a PV kernel cannot run as a host program.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod kernel;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "oxen-dom0 is a PV kernel for Oxen: `cargo xtask build` builds it and \
         `cargo xtask run` boots it"
    );
    std::process::exit(2);
}
