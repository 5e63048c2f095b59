//! The domU kernel binary. On the bare-metal target it is the PV kernel of
//! [`kernel`]; a host build (e.g. `cargo clippy --all-targets`) only says how
//! to build it, since a PV kernel cannot run as a host program.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(target_os = "none")]
mod kernel;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "domu is a PV kernel for Oxen: `cargo xtask build` builds it and dom0's \
         `xm create` boots it"
    );
    std::process::exit(2);
}
