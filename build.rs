//! Links the hypervisor with linker.ld and rebuilds when the assembly changes.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
    println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    println!("cargo:rustc-link-arg-bins=--no-pie");
    for f in [
        "linker.ld",
        "boot/header.S",
        "boot/entry.S",
        "src/arch/x86/traps.S",
    ] {
        println!("cargo:rerun-if-changed={f}");
    }
}
