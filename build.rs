//! Links the hypervisor with linker.ld and rebuilds when the assembly changes.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
    println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    println!("cargo:rustc-link-arg-bins=--no-pie");
    // XENVER_compile_info's date: SOURCE_DATE_EPOCH when set (reproducible
    // builds), else the build's own date.
    let mut date = std::process::Command::new("date");
    date.args(["-u", "+%a %b %e %H:%M:%S UTC %Y"]);
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        date.arg(format!("--date=@{epoch}"));
    }
    let date = date
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    println!("cargo:rustc-env=OXEN_BUILD_DATE={}", date.trim());
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    for f in [
        "linker.ld",
        "boot/header.S",
        "boot/entry.S",
        "src/arch/x86/traps.S",
        "src/arch/x86/uaccess.S",
        "src/arch/x86/fpu.S",
    ] {
        println!("cargo:rerun-if-changed={f}");
    }
}
