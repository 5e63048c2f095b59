//! The custom checks of the scenario files (`custom = "NAME"` in a
//! `[[check]]` of `tests/scenarios/*.toml`): the checks a plain `has` or
//! `lacks` cannot say, such as parsing `xm list` tables or adding up the
//! frame-table census.
//!
//! This module owns [`CUSTOM_CHECKS`], the one table a scenario file's
//! `custom` name is looked up in (the loader refuses an unknown name, so a
//! check is never silently skipped). A check takes the serial transcript
//! (`\r` removed) and, if its entry is [`CustomFn::Counted`], the `count` of
//! its `[[check]]`, which is then required; a plain check refuses a `count`.

/// A custom check's function.
#[derive(Clone, Copy)]
pub enum CustomFn {
    /// Judges the transcript alone.
    Plain(fn(&str) -> Result<(), String>),
    /// Judges the transcript against the `count` of its `[[check]]`.
    Counted(fn(&str, u64) -> Result<(), String>),
    /// Judges the transcript against the scenario's disk image (`disk_mib`),
    /// as it is after QEMU exited.
    Disk(fn(&str, &[u8]) -> Result<(), String>),
}

/// Every custom check, by the name scenario files give it.
pub const CUSTOM_CHECKS: &[(&str, CustomFn)] = &[
    // Boot reports (grub-iso-boot-report, kernel-boot-report).
    (
        "frame_table_census",
        CustomFn::Plain(check_frame_table_census),
    ),
    // test-dom0 printed its summary with `count` checks passed, none failed.
    ("test_dom0_passed", CustomFn::Counted(check_dom0_passed)),
    // Oxen's mm_audit recounted the frame table at least `count` times.
    ("mm_audit_recounted", CustomFn::Counted(check_audits)),
    (
        "continuations_at_least",
        CustomFn::Counted(check_continuations),
    ),
    // kernel-phys-width-probe: the probed width and the memory kept agree.
    (
        "phys_width_fits_memory",
        CustomFn::Plain(check_phys_width_fits_memory),
    ),
    (
        "dom0_mem_all_but_128m",
        CustomFn::Plain(check_dom0_all_but_128m),
    ),
    // dom0's shell and xm.
    ("xm_list_answers", CustomFn::Plain(check_xm_list)),
    ("no_xm_error", CustomFn::Plain(check_no_xm_error)),
    (
        "brun_listed_then_gone",
        CustomFn::Plain(check_brun_listed_then_gone),
    ),
    (
        "console_shows_buffered_banner",
        CustomFn::Plain(check_console_banner),
    ),
    ("pause_state_shown", CustomFn::Plain(check_pause_state)),
    (
        "cpu_time_stops_while_paused",
        CustomFn::Plain(check_cpu_time),
    ),
    ("restarts_get_new_ids", CustomFn::Plain(check_restarts)),
    (
        "gone_after_destroy",
        CustomFn::Plain(check_gone_after_destroy),
    ),
    ("dmesg_shows_boot_log", CustomFn::Plain(check_dmesg)),
    (
        "eight_listed_then_none",
        CustomFn::Plain(check_eight_listed_then_none),
    ),
    ("eight_domus_up", CustomFn::Plain(check_eight_up)),
    (
        "free_memory_returns",
        CustomFn::Plain(check_free_memory_returns),
    ),
    (
        "fill_memory_then_enomem",
        CustomFn::Plain(check_filled_then_enomem),
    ),
    // Idle time is the idle vcpu's (xm-create-domu, debug-keys).
    (
        "dom0_idle_time_not_charged",
        CustomFn::Plain(check_dom0_idle_time),
    ),
    ("q_dump_current_vcpu", CustomFn::Plain(check_q_current_vcpu)),
    // Block I/O: what the domU saw written is on dom0's disk image.
    (
        "blk_writes_on_disk",
        CustomFn::Disk(check_blk_writes_on_disk),
    ),
    // Every xm scenario: no line glued to another writer's.
    ("console_lines_whole", CustomFn::Plain(check_console_lines)),
];

/// FNV-1a (32 bits), as the domU's `blk` commands print it.
fn fnv1a(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Every `blk write S+N: ok, fnv1a H` a domU printed: the image holds N
/// sectors at sector S whose checksum is H. At least one write is required.
fn check_blk_writes_on_disk(t: &str, image: &[u8]) -> Result<(), String> {
    let mut seen = 0;
    for line in t.lines() {
        let Some(at) = line.find("blk write ") else {
            continue;
        };
        let rest = &line[at + "blk write ".len()..];
        let Some((range, tail)) = rest.split_once(": ok, fnv1a ") else {
            continue;
        };
        let Some((s, n)) = range.split_once('+') else {
            continue;
        };
        let (Ok(s), Ok(n)) = (s.parse::<usize>(), n.parse::<usize>()) else {
            continue;
        };
        let want = tail.get(..8).and_then(|h| u32::from_str_radix(h, 16).ok());
        let Some(want) = want else {
            return Err(format!("no checksum in {line:?}"));
        };
        let bytes = image
            .get(s * 512..(s + n) * 512)
            .ok_or_else(|| format!("sectors {s}+{n} are past the image's end"))?;
        let got = fnv1a(bytes);
        if got != want {
            return Err(format!(
                "sectors {s}+{n} of the image have fnv1a {got:08x}, the domU wrote {want:08x}"
            ));
        }
        seen += 1;
    }
    if seen == 0 {
        return Err("no successful `blk write` in the transcript".into());
    }
    Ok(())
}

/// The custom check named `name`, if there is one.
pub fn find(name: &str) -> Option<CustomFn> {
    CUSTOM_CHECKS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

/// The `xm list` tables of the transcript: the lines after each echoed
/// `xm list` (at a prompt, or on a line of its own when a domain's message
/// came first) up to the next prompt.
fn xm_lists(t: &str) -> Vec<Vec<&str>> {
    let lines: Vec<&str> = t.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == "xm list" || l.ends_with("# xm list"))
        .map(|(i, _)| {
            lines[i + 1..]
                .iter()
                .copied()
                .take_while(|l| !l.starts_with("oxen-dom0:"))
                .collect()
        })
        .collect()
}

/// xm-create-domu: brun (id 1) is listed first, gone from the last list.
fn check_brun_listed_then_gone(t: &str) -> Result<(), String> {
    let lists = xm_lists(t);
    let [first, .., last] = lists.as_slice() else {
        return Err(format!("{} xm list tables, expected 2", lists.len()));
    };
    let brun = |l: &&str| l.starts_with("brun ") && l.split_whitespace().nth(1) == Some("1");
    if !first.iter().any(brun) {
        return Err(format!("brun (id 1) not in the first list: {first:?}"));
    }
    if !last.iter().any(|l| l.starts_with("Domain-0 "))
        || last.iter().any(|l| l.starts_with("brun "))
    {
        return Err(format!("the last list should have Domain-0 only: {last:?}"));
    }
    Ok(())
}

/// The rows of an `xm list` table naming `name`.
fn rows_named<'t>(table: &[&'t str], name: &str) -> Vec<&'t str> {
    table
        .iter()
        .copied()
        .filter(|l| l.split_whitespace().next() == Some(name))
        .collect()
}

/// The state column (5th) of an `xm list` row.
fn state_of(row: &str) -> &str {
    row.split_whitespace().nth(4).unwrap_or("")
}

/// No line starts with `xm <sub>:` (xm's error form) after the boot.
fn check_no_xm_error(t: &str) -> Result<(), String> {
    match t.lines().find(|l| {
        l.strip_prefix("xm ")
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|sub| sub.ends_with(':'))
            || l.starts_with("xm:")
    }) {
        Some(l) => Err(format!("{l:?}")),
        None => Ok(()),
    }
}

/// xm-lifecycle: `xm console brun` prints what brun wrote before (its banner
/// and greeting, from the console daemon's buffer).
fn check_console_banner(t: &str) -> Result<(), String> {
    let after = &t[t
        .find("xm console brun\n")
        .ok_or("'xm console brun' not typed")?..];
    let banner = after
        .find("Oxen domU ")
        .ok_or("no banner after xm console")?;
    let hello = after
        .find("Hello from brun (domain ")
        .ok_or("no greeting after xm console")?;
    if banner < hello && after[banner..].contains(": booted as domain ") {
        Ok(())
    } else {
        Err(format!(
            "unexpected console output {:?}",
            &after[..after.len().min(300)]
        ))
    }
}

/// xm-lifecycle: the list after `xm pause` shows brun paused ('p'), the one
/// after `xm unpause` shows it without 'p'.
fn check_pause_state(t: &str) -> Result<(), String> {
    let lists = xm_lists(t);
    let (Some(paused), Some(later), Some(unpaused)) = (lists.first(), lists.get(1), lists.get(2))
    else {
        return Err(format!(
            "{} xm list tables, expected 3 or more",
            lists.len()
        ));
    };
    let p = rows_named(paused, "brun");
    let l = rows_named(later, "brun");
    let u = rows_named(unpaused, "brun");
    match (p.as_slice(), l.as_slice(), u.as_slice()) {
        ([p], [l], [u])
            if state_of(p).contains('p')
                && state_of(l).contains('p')
                && !state_of(u).contains('p') =>
        {
            Ok(())
        }
        _ => Err(format!(
            "after pause {p:?}, a second later {l:?}, after unpause {u:?}"
        )),
    }
}

/// The Time(s) column (last) of an `xm list` row.
fn cpu_time_of(row: &str) -> Option<f64> {
    row.split_whitespace().last()?.parse().ok()
}

/// xm-lifecycle: after `spin 500` brun has used at least half a second of
/// CPU, and while paused its CPU time stands still.
fn check_cpu_time(t: &str) -> Result<(), String> {
    let lists = xm_lists(t);
    let time = |i: usize| {
        lists
            .get(i)
            .and_then(|l| rows_named(l, "brun").first().copied())
            .and_then(cpu_time_of)
    };
    match (time(0), time(1)) {
        (Some(a), Some(b)) if a >= 0.5 && a == b => Ok(()),
        other => Err(format!("brun's Time(s) while paused: {other:?}")),
    }
}

/// The ids of the `Started domain <name> (id=N)` lines, in order.
fn started_ids(t: &str, name: &str) -> Vec<u64> {
    let prefix = format!("Started domain {name} (id=");
    t.lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .filter_map(|rest| rest.trim_end_matches(')').parse().ok())
        .collect()
}

/// xm-lifecycle: brun started three times (create, reboot, crash) with
/// increasing ids; dom0 reported each restart of the previous id; the domU
/// came up each time.
fn check_restarts(t: &str) -> Result<(), String> {
    // `xm dmesg` repeats dom0's output (it went through Oxen's console).
    let t = &t[..t.find("xm dmesg\n").unwrap_or(t.len())];
    let brun = started_ids(t, "brun");
    let crashy = started_ids(t, "crashy");
    let ([a, b], [c, d]) = (brun.as_slice(), crashy.as_slice()) else {
        return Err(format!(
            "brun started with ids {brun:?}, crashy with {crashy:?}, expected 2 starts each"
        ));
    };
    if !(a < b && b < c && c < d) {
        return Err(format!("ids {brun:?} then {crashy:?} do not increase"));
    }
    for want in [
        format!("dom0: domain brun (id={a}) shut down (reboot); on_reboot = restart: destroyed\n"),
        format!("dom0: domain crashy (id={c}) shut down (crash); on_crash = restart: destroyed\n"),
    ] {
        if !t.contains(&want) {
            return Err(format!("missing {want:?}"));
        }
    }
    for (name, n) in [("brun", 2), ("crashy", 2)] {
        let ups = t.matches(&format!("domU {name}: up")).count();
        if ups != n {
            return Err(format!("'domU {name}: up' {ups} times, expected {n}"));
        }
    }
    Ok(())
}

/// xm-lifecycle: the list before `xm destroy` has brun, the last one has
/// Domain-0 only.
fn check_gone_after_destroy(t: &str) -> Result<(), String> {
    let lists = xm_lists(t);
    let [.., before, last] = lists.as_slice() else {
        return Err(format!("{} xm list tables", lists.len()));
    };
    if rows_named(before, "brun").len() != 1 || rows_named(before, "crashy").len() != 1 {
        return Err(format!(
            "brun and crashy not in the list before xm destroy: {before:?}"
        ));
    }
    if rows_named(last, "Domain-0").len() != 1 || last.len() != 2 {
        return Err(format!("the last list should have Domain-0 only: {last:?}"));
    }
    Ok(())
}

/// xm-lifecycle: `xm dmesg` prints Oxen's boot log (read back from its
/// console ring), which ends with what happened since.
fn check_dmesg(t: &str) -> Result<(), String> {
    let at = t.find("xm dmesg\n").ok_or("'xm dmesg' not typed")?;
    let after = &t[at..];
    let end = after.find("# halt").unwrap_or(after.len());
    let out = &after[..end];
    for want in ["Starting dom0 (ring 1)", "Modules: 2"] {
        if !out.contains(want) {
            return Err(format!("{want:?} not in xm dmesg's output"));
        }
    }
    Ok(())
}

/// xm-eight-domus: the list shows Domain-0 and s1..s8 (once each), the
/// last list none of s1..s8.
fn check_eight_listed_then_none(t: &str) -> Result<(), String> {
    let lists = xm_lists(t);
    let [full, .., last] = lists.as_slice() else {
        return Err(format!("{} xm list tables, expected 2", lists.len()));
    };
    let names: Vec<String> = (1..=8).map(|i| format!("s{i}")).collect();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| rows_named(full, n).len() != 1)
        .collect();
    if !missing.is_empty() || rows_named(full, "Domain-0").len() != 1 {
        return Err(format!("missing {missing:?}: {full:?}"));
    }
    if rows_named(last, "Domain-0").len() != 1
        || names.iter().any(|n| !rows_named(last, n).is_empty())
    {
        return Err(format!("the last list should have Domain-0 only: {last:?}"));
    }
    Ok(())
}

/// xm-eight-domus: each small domain printed `domU sN: up`.
fn check_eight_up(t: &str) -> Result<(), String> {
    let missing: Vec<u32> = (1..=8)
        .filter(|i| !t.contains(&format!("domU s{i}: up")))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("no 'domU sN: up' for {missing:?}"))
    }
}

/// xm-eight-domus: `free_memory` of the last `xm info` equals the first.
fn check_free_memory_returns(t: &str) -> Result<(), String> {
    let figures: Vec<u64> = t
        .lines()
        .filter_map(|l| l.strip_prefix("free_memory"))
        .filter_map(|rest| rest.trim_start_matches([' ', ':']).trim().parse().ok())
        .collect();
    let [first, last] = figures.as_slice() else {
        return Err(format!("free_memory figures {figures:?}, expected 2"));
    };
    if first == last && *first > 0 {
        Ok(())
    } else {
        Err(format!("free_memory {first} MiB before, {last} MiB after"))
    }
}

/// xm-fill-memory: as many 64 MiB domains started as whole 64 MiB fit in
/// the first `free_memory` figure; the next `xm create` was refused with
/// -ENOMEM by populate_physmap and its half-built domain destroyed; the list
/// shows the ones that fit.
fn check_filled_then_enomem(t: &str) -> Result<(), String> {
    let free = number_after(t, "free_memory            : ").ok_or("no free_memory figure")?;
    let started = (1..=7)
        .filter(|i| t.contains(&format!("Started domain b{i} (id=")))
        .count() as u64;
    if started != free / 64 || started >= 7 {
        return Err(format!(
            "{started} domains of 64 MiB started with {free} MiB free"
        ));
    }
    let refusal = "xm create: the hypervisor refused memory_op populate_physmap: -ENOMEM";
    let line = t
        .lines()
        .find(|l| l.starts_with(refusal))
        .ok_or("no -ENOMEM refusal")?;
    if !line.ends_with(" destroyed") {
        return Err(format!("the refused domain was not destroyed: {line:?}"));
    }
    let lists = xm_lists(t);
    let last = lists.last().ok_or("no xm list")?;
    let listed = (1..=7)
        .filter(|i| !rows_named(last, &format!("b{i}")).is_empty())
        .count() as u64;
    if listed != started {
        return Err(format!("{listed} listed, {started} started: {last:?}"));
    }
    Ok(())
}

/// dom0_mem=-128M gave dom0 all free memory less 128 MiB.
fn check_dom0_all_but_128m(t: &str) -> Result<(), String> {
    let free = number_after(t, "Free memory: ").ok_or("no 'Free memory:' line")?;
    let dom0 = number_after(t, "dom0_mem: -128M resolved to ")
        .ok_or("no 'dom0_mem: -128M resolved to' line")?;
    // MiB are rounded down on both lines, so allow one MiB of slack.
    if dom0 + 128 == free || dom0 + 129 == free {
        Ok(())
    } else {
        Err(format!(
            "free {free} MiB but dom0 got {dom0} MiB; expected free - 128"
        ))
    }
}

/// kernel-phys-width-probe (a 4.5 GiB machine whose CPU has PAE but neither
/// PSE-36 nor CPUID 0x80000008): Oxen probed the width, took it, and kept
/// the memory above 4 GiB exactly when the width reaches it (QEMU 10's
/// qemu32 walks 36 bits, QEMU 7.2's 32).
fn check_phys_width_fits_memory(t: &str) -> Result<(), String> {
    let probed = number_after(t, "CPUID 0x80000008: probed ").ok_or("no probe line")?;
    let taken = number_after(t, "Physical address width: ").ok_or("no width line")?;
    if probed != taken {
        return Err(format!("probed {probed} bits but took {taken}"));
    }
    if !(32..=36).contains(&probed) {
        return Err(format!("probed {probed} bits, not 32..=36"));
    }
    let free = number_after(t, "Free memory: ").ok_or("no 'Free memory:' line")?;
    let ignored = t.contains("ignoring memory above 4096 MiB: the CPU addresses 32 bits");
    match (probed, ignored, free >= 4096) {
        (32, true, false) | (33..=36, false, true) => Ok(()),
        _ => Err(format!(
            "{probed} bits, memory above 4 GiB {}, {free} MiB free",
            if ignored { "ignored" } else { "kept" }
        )),
    }
}

/// The boot report's frame-table census adds up to the frame count, and
/// counts no more free frames than the allocator reported.
fn check_frame_table_census(t: &str) -> Result<(), String> {
    let line = t
        .lines()
        .find(|l| l.contains("frame table for "))
        .ok_or("no frame table line")?;
    let frames = number_after(line, "frame table for ").ok_or("no frame count")?;
    let oxen = number_after(line, "frames (").ok_or("no Oxen count")?;
    let free = number_after(line, "Oxen's, ").ok_or("no free count")?;
    let io = number_after(line, "free, ").ok_or("no I/O count")?;
    if oxen + free + io != frames {
        return Err(format!("census {oxen}+{free}+{io} != {frames} frames"));
    }
    let free_line = number_after(t, "Free memory: ").ok_or("no Free memory line")?;
    let free_pages =
        number_after(t, &format!("Free memory: {free_line} MiB (")).ok_or("no free pages")?;
    // The frame table is filled after the heap: everything allocated later is
    // Oxen's too, so the table can only count fewer free frames than the allocator.
    if free < free_pages {
        return Err(format!(
            "frame table says {free} free, allocator {free_pages}"
        ));
    }
    Ok(())
}

/// test-dom0's summary line says `checks` passed and none failed, and no
/// check line says FAILED. The scenario file holds how many checks test-dom0
/// runs: a section that silently stopped running shows up as a different
/// count.
fn check_dom0_passed(t: &str, checks: u64) -> Result<(), String> {
    let line = t
        .lines()
        .find(|l| l.starts_with("test-dom0: ") && l.contains(" passed, "))
        .ok_or("no test-dom0 summary line")?;
    let passed = number_after(line, "test-dom0: ").ok_or("no pass count")?;
    let failed = number_after(line, "passed, ").ok_or("no fail count")?;
    if failed != 0 || passed != checks {
        return Err(format!("{line:?}"));
    }
    match t.lines().find(|l| l.contains(": FAILED")) {
        Some(l) => Err(format!("{l:?}")),
        None => Ok(()),
    }
}

/// Oxen's `mm audit:` line counts at least `min` frame-table recounts.
fn check_audits(t: &str, min: u64) -> Result<(), String> {
    let n = number_after(t, "mm audit: ").ok_or("no 'mm audit:' line")?;
    if n >= min {
        Ok(())
    } else {
        Err(format!("only {n} recounts"))
    }
}

/// At least `min` hypercall continuations by dom0's shutdown (how many more
/// depends on the clock: a batch also yields after 1 ms).
fn check_continuations(t: &str, min: u64) -> Result<(), String> {
    let n = number_after(t, "Hypercall continuations (preempted batches) so far: ")
        .ok_or("no 'Hypercall continuations' line")?;
    if n >= min {
        Ok(())
    } else {
        Err(format!("only {n} continuations"))
    }
}

/// `xm list` in dom0-shell: the table (once Oxen serves the sysctl) or the
/// hypervisor's refusal, on one line.
fn check_xm_list(t: &str) -> Result<(), String> {
    let after = &t[t.find("# xm list\n").ok_or("'xm list' was not echoed")? + 10..];
    let first = after.lines().next().unwrap_or("");
    if first.starts_with("xm list: the hypervisor refused sysctl getdomaininfolist: -")
        || (first.starts_with("Name ")
            && after
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("Domain-0 ")))
    {
        Ok(())
    } else {
        Err(format!("unexpected answer {first:?}"))
    }
}

/// The decimal number right after the first `prefix` in `t`.
pub fn number_after(t: &str, prefix: &str) -> Option<u64> {
    let rest = &t[t.find(prefix)? + prefix.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// xm-create-domu: over the three idle seconds between the last two lists
/// Domain-0's Time(s) grew by less than 0.3 s (the time the CPU halts is
/// the idle vcpu's, not the last domain's to run).
fn check_dom0_idle_time(t: &str) -> Result<(), String> {
    let lists = xm_lists(t);
    let [.., before, after] = lists.as_slice() else {
        return Err(format!(
            "{} xm list tables, expected 2 or more",
            lists.len()
        ));
    };
    let time = |table: &[&str]| {
        rows_named(table, "Domain-0")
            .first()
            .copied()
            .and_then(cpu_time_of)
    };
    match (time(before), time(after)) {
        (Some(a), Some(b)) if b >= a && b - a < 0.3 => Ok(()),
        other => Err(format!("Domain-0's Time(s) over 3 idle seconds: {other:?}")),
    }
}

/// debug-keys: the 'q' dump names the CPU's current vcpu, and dom0's
/// runstate agrees with it. dom0 waits for console input, so the keys run
/// either in the idle vcpu (on dom0's context, dom0 blocked) or, if they
/// came while dom0 was on its way to block, with dom0 still current and
/// running.
fn check_q_current_vcpu(t: &str) -> Result<(), String> {
    let dump = &t[t.find("'q' pressed").ok_or("no 'q' dump")?..];
    let line_after = |prefix: &str| {
        dump.lines()
            .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest.to_string()))
    };
    let current = line_after("CPU0: current vcpu ").ok_or("no current vcpu line")?;
    let runstate = line_after("    VCPU0: runstate ").ok_or("no runstate line")?;
    let idle = current.starts_with("idle (d0v0's context loaded), idle ");
    let dom0 = current.starts_with("d0v0, idle ");
    if (idle && runstate.starts_with("blocked: running "))
        || (dom0 && runstate.starts_with("running: running "))
    {
        Ok(())
    } else {
        Err(format!(
            "current vcpu {current:?}, dom0's runstate {runstate:?}"
        ))
    }
}

/// xm scenarios: console lines are whole and each writer's own. A line
/// that holds a domain's prefix `(dN) ` or Oxen's `(XEN) ` starts with it
/// and holds no other (nothing is glued in front or behind); so a dom0
/// prompt line (`oxen-dom0:<cwd># `) holds no prefixed text, and it must
/// not go on with a domU kernel message either (`domU <name>: ...`, which
/// the domU prints on the hypervisor console and which used to land
/// unprefixed after the prompt).
fn check_console_lines(t: &str) -> Result<(), String> {
    /// Where `line` holds a `(dN) ` or a `(XEN) `.
    fn prefixes(line: &str) -> impl Iterator<Item = usize> + '_ {
        let domains = line.match_indices("(d").map(|(i, _)| i).filter(|&i| {
            let rest = &line[i + 2..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            digits > 0 && rest[digits..].starts_with(") ")
        });
        domains.chain(line.match_indices("(XEN) ").map(|(i, _)| i))
    }
    for (n, line) in t.lines().enumerate() {
        if let Some(i) = prefixes(line).find(|&i| i > 0) {
            return Err(format!(
                "line {}: a prefix at column {i}, not at the start: {line:?}",
                n + 1
            ));
        }
        let typed = line
            .strip_prefix("oxen-dom0:")
            .and_then(|rest| rest.split_once("# "))
            .map(|(_, typed)| typed);
        if typed.is_some_and(|typed| typed.starts_with("domU ")) {
            return Err(format!(
                "line {}: a domU's message after dom0's prompt: {line:?}",
                n + 1
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_blk_writes_on_disk, check_console_lines, fnv1a};

    #[test]
    fn blk_writes_must_be_on_the_disk() {
        let mut image = vec![0u8; 8 * 512];
        image[1024..2048].fill(b'x');
        let sum = fnv1a(&image[1024..2048]);
        let t = format!("(d1) blk write 2+2: ok, fnv1a {sum:08x} (900 sectors/s)\n");
        assert_eq!(check_blk_writes_on_disk(&t, &image), Ok(()));
        image[1500] = b'y';
        assert!(check_blk_writes_on_disk(&t, &image).is_err());
        assert!(check_blk_writes_on_disk("blk write 2+2: error: x\n", &image).is_err());
        let past = format!("blk write 7+2: ok, fnv1a {sum:08x}\n");
        assert!(check_blk_writes_on_disk(&past, &image).is_err());
        assert_eq!(fnv1a(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn console_lines_accepts_whole_prefixed_lines() {
        let t = "(XEN) Starting dom0 (ring 1)\n\
                 oxen-dom0:/# xm create brun.cfg\n\
                 Started domain brun (id=1)\n\
                 oxen-dom0:/# \n\
                 (d1) domU brun: up\n\
                 xm list\n\
                 brun 1 64 1 -b---- 0.0\n\
                 (d12) domU s12: up\n\
                 (d1) \n\
                 oxen-dom0:/etc/xen# xm console brun\n\
                 domU brun: crashing (asked on its console)\n";
        assert_eq!(check_console_lines(t), Ok(()));
    }

    #[test]
    fn console_lines_rejects_glued_lines() {
        for bad in [
            // A domU's line after dom0's prompt, unprefixed (the old bug).
            "oxen-dom0:/# domU brun: up\n",
            // The same, prefixed but glued.
            "oxen-dom0:/# (d1) domU brun: up\n",
            "oxen-dom0:/etc/xen# (XEN) Domain 1 destroyed\n",
            // Oxen's line glued to a domU's partial line.
            "(d1) partial(XEN) Domain 1 destroyed\n",
            "ok\nsomething (d3) late\n",
        ] {
            assert!(check_console_lines(bad).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn phys_width_must_fit_the_memory_kept() {
        use super::check_phys_width_fits_memory as check;
        let probe = |bits: u32| {
            format!(
                "(XEN) PAE without PSE-36 or CPUID 0x80000008: probed {bits} address bits\n\
                 (XEN) Physical address width: {bits} bits (machine frames below 0x1)\n"
            )
        };
        let ignored = "(XEN) warning: ignoring memory above 4096 MiB: the CPU addresses 32 bits\n";
        let low = "(XEN) Free memory: 2930 MiB (750000 pages)\n";
        let high = "(XEN) Free memory: 4459 MiB (1141504 pages)\n";
        assert_eq!(check(&(probe(32) + ignored + low)), Ok(()));
        assert_eq!(check(&(probe(36) + high)), Ok(()));
        for bad in [
            probe(32) + low,
            probe(32) + ignored + high,
            probe(36) + ignored + low,
            probe(36) + low,
            probe(40) + high,
            probe(36).replace("width: 36", "width: 32") + high,
            high.to_string(),
        ] {
            assert!(check(&bad).is_err(), "{bad:?} passed");
        }
    }
}
