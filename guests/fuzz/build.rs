//! Links the guest kernel with pvrt's guest.ld (only when building for the
//! bare-metal target; host builds of the library and its tests link normally).

fn main() {
    println!("cargo:rerun-if-changed=../pvrt/guest.ld");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{dir}/../pvrt/guest.ld");
    println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    println!("cargo:rustc-link-arg-bins=--no-pie");
}
