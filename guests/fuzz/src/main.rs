//! The fuzzer binary. On the bare-metal target it is the PV kernel of
//! [`kernel`]; a host build only says how to build and boot it.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(target_os = "none")]
mod kernel;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "fuzz is a PV kernel for Oxen: `cargo xtask fuzz` builds it and boots it \
         as a domU (dom0's `xm create fuzz.cfg`) or as dom0"
    );
    std::process::exit(2);
}
