//! `cargo xtask bench`: boot times, domain creation and test-dom0's
//! micro-benchmarks, printed as JSON. The boot and domain-creation figures
//! boot the way the scenario files `grub-iso-boot-report`,
//! `kernel-boot-report`, `grub-dom0-hello` and `xm-lifecycle`
//! (tests/scenarios/) say, with their own input; nothing here is asserted as
//! a time.

use std::path::Path;
use std::time::Duration;

use crate::checks::number_after;
use crate::qemu::{self, Boot};
use crate::scenarios::{self, BootPath};

/// dom0's shell prompt.
const PROMPT: &str = "oxen-dom0:/# ";

/// Boot-time figures: wall time from QEMU start to the end of the boot report
/// ("Modules:" line), for the GRUB and the `-kernel` paths, as JSON.
pub fn bench_cmd(_args: &[String]) -> Result<(), String> {
    crate::deps::ensure_packages()?;
    let kernel = crate::build_kernel(true)?;
    let dir = scenarios::fixtures()?;
    let mut results = Vec::new();
    for name in ["grub-iso-boot-report", "kernel-boot-report"] {
        let s = scenarios::load_named(name)?;
        let boot = scenarios::boot_for(&s, &kernel, &dir)?;
        let mut samples = Vec::new();
        for _ in 0..3 {
            let run =
                qemu::run_captured(&boot, s.mem_mib, Duration::from_secs(60), Some("Modules: "))?;
            let at = run
                .mark_at
                .ok_or_else(|| format!("{}: no boot report", s.name))?;
            samples.push(at.as_secs_f64() * 1000.0);
        }
        samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
        results.push(format!(
            "{{\"name\":\"boot_to_report_{}\",\"unit\":\"ms\",\"median\":{:.0},\"min\":{:.0},\"max\":{:.0},\"samples\":{}}}",
            if s.boot == BootPath::Iso { "grub_iso" } else { "qemu_kernel" },
            samples[1],
            samples[0],
            samples[2],
            samples.len()
        ));
    }
    results.push(boot_to_dom0_result_bench(&kernel, &dir)?);
    results.push(domain_create_bench(&kernel, &dir)?);
    results.extend(guest_benches(&kernel, &dir)?);
    println!("[{}]", results.join(",\n "));
    Ok(())
}

/// Xen 4.17's `boot_to_dom0_result_grub_iso` on this machine, under the same
/// QEMU, GRUB and guest: a fixed reference printed beside Oxen's figure.
const XEN_4_17_BOOT_TO_DOM0_RESULT_MS: u32 = 1240;

/// Boot as a user waits for it: wall time from QEMU start to a PV dom0's first
/// result, through SeaBIOS, GRUB (from the ISO), Oxen's bring-up and the dom0
/// build. The boot is the scenario `grub-dom0-hello` (test-dom0 in
/// `test=hello` mode, one line, then power off); seven boots.
fn boot_to_dom0_result_bench(kernel: &Path, dir: &Path) -> Result<String, String> {
    const HELLO: &str = "test-dom0: hello";
    let s = scenarios::load_named("grub-dom0-hello")?;
    let boot = scenarios::boot_for(&s, kernel, dir)?;
    let mut samples = Vec::new();
    for _ in 0..7 {
        let run = qemu::run_captured(&boot, s.mem_mib, Duration::from_secs(60), Some(HELLO))?;
        let at = run.mark_at.ok_or_else(|| {
            format!(
                "boot-to-dom0-result bench: no {HELLO:?} line:\n{}",
                run.transcript
            )
        })?;
        samples.push(at.as_secs_f64() * 1000.0);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok(format!(
        "{{\"name\":\"boot_to_dom0_result_grub_iso\",\"unit\":\"ms\",\"median\":{:.0},\"min\":{:.0},\"max\":{:.0},\"samples\":{},\"reference_ms\":{XEN_4_17_BOOT_TO_DOM0_RESULT_MS},\"reference\":\"Xen 4.17 PV32, measured under the same QEMU, GRUB and guest\"}}",
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
        samples.len()
    ))
}

/// Domain creation as a user sees it: wall time from typing `xm create
/// brun.cfg` at dom0's prompt to the domU's `domU brun: up` (build, start,
/// and the domU's boot through its xenstore reads), five boots.
fn domain_create_bench(kernel: &Path, dir: &Path) -> Result<String, String> {
    let s = scenarios::load_named("xm-lifecycle")?;
    let boot = scenarios::boot_for(&s, kernel, dir)?;
    let steps = [
        (PROMPT, Duration::ZERO, "xm create brun.cfg\n"),
        ("domU brun: up", Duration::ZERO, "halt\n"),
    ];
    let mut samples = Vec::new();
    for _ in 0..5 {
        let run =
            qemu::run_captured_paced(&boot, s.mem_mib, Duration::from_secs(60), None, &[], &steps)?;
        let [typed, up] = run.step_at.as_slice() else {
            return Err(format!(
                "xm create bench: the domU did not come up:\n{}",
                run.transcript
            ));
        };
        samples.push((*up - *typed).as_secs_f64() * 1000.0);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok(format!(
        "{{\"name\":\"xm_create_to_domu_up\",\"unit\":\"ms\",\"median\":{:.0},\"min\":{:.0},\"max\":{:.0},\"samples\":{}}}",
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
        samples.len()
    ))
}

/// test-dom0's micro-benchmarks (`bench` on its command line), run twice: under
/// `-icount` (the guest's TSC counts instructions: stable figures) and under
/// plain TCG (TSC cycles converted to ns with the TSC rate Oxen measured).
fn guest_benches(kernel: &Path, dir: &Path) -> Result<Vec<String>, String> {
    let boot = Boot::Kernel {
        kernel: kernel.to_path_buf(),
        cmdline: format!("dom0_mem=64M {}", scenarios::TEST_OPTS),
        modules: vec![scenarios::module_arg(
            dir,
            "test-dom0.elf",
            "console=hvc0 bench",
        )],
    };
    let parse = |t: &str| -> Vec<(String, u64, u64)> {
        t.lines()
            .filter_map(|l| l.strip_prefix("bench "))
            .filter_map(|l| {
                let name = l.split_whitespace().next()?.to_string();
                Some((
                    name,
                    number_after(l, "ops=")?,
                    number_after(l, "tsc_per_op=")?,
                ))
            })
            .collect()
    };
    let icount = qemu::run_captured_with(
        &boot,
        256,
        Duration::from_secs(300),
        None,
        &["-icount", "shift=0,sleep=off"],
    )?;
    let tcg = qemu::run_captured(&boot, 256, Duration::from_secs(300), None)?;
    let mhz = number_after(&tcg.transcript, "TSC: ").ok_or("no TSC line in the bench run")?;
    let (a, b) = (parse(&icount.transcript), parse(&tcg.transcript));
    if a.is_empty() || a.len() != b.len() {
        return Err(format!(
            "bench runs printed {} and {} results",
            a.len(),
            b.len()
        ));
    }
    Ok(a.iter()
        .zip(&b)
        .map(|((name, ops, icount_tsc), (_, _, tcg_tsc))| {
            format!(
                "{{\"name\":\"{name}\",\"ops\":{ops},\"icount_tsc_per_op\":{icount_tsc},\"tcg_ns_per_op\":{}}}",
                tcg_tsc * 1000 / mhz.max(1)
            )
        })
        .collect())
}
