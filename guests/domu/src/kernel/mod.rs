//! The domU kernel: boot, then one idle loop.
//!
//! Boot (XEN-PV-ABI.md §4–§6, §8, §13, §14): exception handlers; shared_info
//! mapped from `start_info.shared_info` and events through pvrt; the periodic
//! tick stopped and VIRQ_TIMER bound (xenstore requests time out with a
//! one-shot timer); the console ring (`console.domU.mfn`, a machine frame)
//! and the xenstore ring (`store_mfn`) mapped with `update_va_mapping` in the
//! padding after the boot stack (§4.3 guarantees it is mapped); from
//! xenstore `domid`, `name` and `memory/target`; the banner and a greeting on
//! the console ring, `domU <name>: up` on the hypervisor console;
//! `data/hello = "world"`; a watch on `control/shutdown`.
//!
//! The loop sleeps (`SCHEDOP_block`, through `pvrt::xenbus::wait_until`) until
//! console input or xenstore traffic arrives; input is echoed and collected
//! into lines, and a line naming a console command (`domu::command`) is acted
//! on: `crash` shuts the domain down as crashed, the one way it crashes on
//! purpose; `xs-flood` runs `domu::flood` over the store connection and
//! prints what each step got; `console-flood` floods the hypervisor console; a `control/shutdown` request is read and cleared in a transaction
//! and acted on. A xenstore failure is reported on both consoles and the
//! kernel goes on with the console alone.

mod blk;
mod traps;

use core::fmt::{self, Write};

use domu::command::{BlkCommand, Command, HELP, LineBuffer, fill_pattern, fnv1a};
use domu::control::ShutdownRequest;
use domu::echo::echo;
use pvrt::xenbus::{self, Tx, XenBus, XsError};
use pvrt::xencons::XenCons;
use pvrt::{StartInfo, println};
use xen_abi::evtchn::VIRQ_TIMER;
use xen_abi::hypercall::VCPU_OP;
use xen_abi::types::PAGE_SIZE;
use xen_abi::vcpu::VCPUOP_STOP_PERIODIC_TIMER;

pvrt::guest_main!(main);

const PAGE: u32 = PAGE_SIZE as u32;
/// How long a xenstore request may go unanswered.
const XENSTORE_TIMEOUT_NS: u64 = 10_000_000_000;
/// The watch token for `control/shutdown`.
const SHUTDOWN_TOKEN: &str = "shutdown";

/// A short value kept from xenstore (longer ones are cut).
struct Text {
    buf: [u8; 64],
    len: usize,
}

impl Text {
    fn new(v: &[u8]) -> Text {
        let mut t = Text {
            buf: [0; 64],
            len: v.len().min(64),
        };
        t.buf[..t.len].copy_from_slice(&v[..t.len]);
        t
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where shared_info is mapped (for the PV clock).
static SHARED_VA: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// The console ring, if it could be mapped. Lines end in CR LF.
struct Console {
    ring: Option<XenCons>,
    /// The line being typed.
    typed: LineBuffer,
}

impl Console {
    fn line(&mut self, args: fmt::Arguments<'_>) {
        if let Some(ring) = &mut self.ring {
            let _ = ring.write_fmt(args);
            ring.write(b"\r\n");
        }
    }

    /// On the console ring and the hypervisor console.
    fn both(&mut self, args: fmt::Arguments<'_>) {
        self.line(args);
        println!("{args}");
    }
}

/// What the domU learnt from xenstore.
struct Identity {
    domid: Text,
    name: Text,
    memory: Text,
}

fn read_text(xs: &mut XenBus, path: &str) -> Result<Text, (&'static str, XsError)> {
    xs.read(Tx::NONE, path).map(Text::new).map_err(|e| {
        // `path` is one of the constants below.
        let step = match path {
            "domid" => "read domid",
            "name" => "read name",
            _ => "read memory/target",
        };
        (step, e)
    })
}

fn identify(xs: &mut XenBus) -> Result<Identity, (&'static str, XsError)> {
    Ok(Identity {
        domid: read_text(xs, "domid")?,
        name: read_text(xs, "name")?,
        memory: read_text(xs, "memory/target")?,
    })
}

fn main(si: &'static StartInfo) -> ! {
    // The first pages of the padding after the boot stack (§4.3).
    let scratch = si.pt_base + si.nr_pt_frames * PAGE + PAGE;
    let (shared_va, console_va, store_va) = (scratch, scratch + PAGE, scratch + 2 * PAGE);
    SHARED_VA.store(shared_va, core::sync::atomic::Ordering::Relaxed);
    if let Err(e) = traps::install(0) {
        println!("domU: set_trap_table failed: {e}");
    }
    if let Err(e) = xenbus::map_frame(shared_va, si.shared_info >> 12) {
        println!("domU: cannot map shared_info: {e}; stopping");
        halt_forever();
    }
    let _ = traps::install(shared_va);
    if let Err(e) = pvrt::events::init(shared_va) {
        println!("domU: cannot register the event callback: {e}; stopping");
        halt_forever();
    }
    // Nothing needs the periodic tick; the one-shot timer ends xenstore waits.
    // SAFETY: VCPUOP_stop_periodic_timer takes no argument.
    let _ = pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(VCPU_OP, [VCPUOP_STOP_PERIODIC_TIMER, 0, 0, 0, 0])
    });
    let timer = pvrt::events::bind_virq(VIRQ_TIMER);
    if let Err(e) = timer {
        println!("domU: cannot bind VIRQ_TIMER ({e}): xenstore requests will not time out");
    }

    let mut con = Console {
        ring: match XenCons::map(si, console_va) {
            Ok(c) => Some(c),
            Err(e) => {
                println!("domU: cannot map the console ring: {e}");
                None
            }
        },
        typed: LineBuffer::new(),
    };

    let version = env!("CARGO_PKG_VERSION");
    let mut xs = match xenbus::connect(si, store_va) {
        Ok(mut xs) => {
            if timer.is_ok() {
                xs.transport_mut()
                    .set_timeout(shared_va, Some(XENSTORE_TIMEOUT_NS));
            }
            Some(xs)
        }
        Err(e) => {
            con.line(format_args!("Oxen domU {version}: booted as domain ?"));
            con.both(format_args!("domU: cannot connect to xenstore: {e}"));
            None
        }
    };
    let mut name = Text::new(b"?");
    if let Some(x) = &mut xs {
        match identify(x) {
            Ok(id) => {
                con.line(format_args!(
                    "Oxen domU {version}: booted as domain {}",
                    id.domid
                ));
                con.line(format_args!(
                    "Hello from {} (domain {}), {} KiB",
                    id.name, id.domid, id.memory
                ));
                name = id.name;
            }
            Err((step, e)) => {
                con.line(format_args!("Oxen domU {version}: booted as domain ?"));
                con.both(format_args!("domU: xenstore {step} failed: {e}"));
                xs = None;
            }
        }
    }
    println!("domU {name}: up");
    if let Some(x) = &mut xs {
        if let Err(e) = x.write(Tx::NONE, "data/hello", b"world") {
            con.both(format_args!("domU: xenstore write data/hello failed: {e}"));
        }
        if let Err(e) = x.watch("control/shutdown", SHUTDOWN_TOKEN) {
            con.both(format_args!(
                "domU: xenstore watch control/shutdown failed: {e}"
            ));
            xs = None;
        }
    }
    let mut vbd = None;
    if let Some(x) = &mut xs {
        match blk::connect(si, x, scratch + 3 * PAGE, shared_va) {
            Ok(b) => {
                con.both(format_args!(
                    "domU {name}: blkfront: vbd {} connected, {} sectors ({} KiB), {}{}",
                    b.devid,
                    b.info.sectors,
                    b.info.sectors / 2,
                    if b.info.readonly() {
                        "read-only"
                    } else {
                        "read-write"
                    },
                    if b.info.flush { ", flush" } else { "" }
                ));
                vbd = Some(b);
            }
            Err(blk::BlkError::NoVbd) => {}
            Err(e) => con.both(format_args!("domU {name}: blkfront: {e}")),
        }
    }
    run(&mut con, xs, &name, vbd)
}

/// What woke the loop.
enum Work {
    Input,
    Xenstore,
}

fn run(
    con: &mut Console,
    mut xs: Option<XenBus>,
    name: &Text,
    mut vbd: Option<blk::Blkfront>,
) -> ! {
    loop {
        let work = xenbus::wait_until(|| {
            if con.ring.as_ref().is_some_and(XenCons::has_input) {
                Some(Work::Input)
            } else if xs
                .as_mut()
                .is_some_and(|x| x.has_event() || x.transport_mut().has_input())
            {
                Some(Work::Xenstore)
            } else {
                None
            }
        });
        match work {
            Work::Input => console_input(con, name, xs.as_mut(), vbd.as_mut()),
            Work::Xenstore => {
                if let Some(x) = &mut xs
                    && let Err(e) = serve_xenstore(con, x, name)
                {
                    con.both(format_args!("domU: xenstore failed: {e}"));
                    if x.is_broken() {
                        con.both(format_args!("domU: xenstore connection lost"));
                        xs = None;
                    }
                }
            }
        }
    }
}

/// Echoes what was typed and acts on the commands among the lines.
fn console_input(
    con: &mut Console,
    name: &Text,
    mut xs: Option<&mut XenBus>,
    mut vbd: Option<&mut blk::Blkfront>,
) {
    let Some(ring) = &mut con.ring else { return };
    let mut input = [0u8; 64];
    let n = ring.read(&mut input);
    for &b in &input[..n] {
        let mut e = [0u8; 3];
        if let Some(ring) = &mut con.ring {
            ring.write(echo(b, &mut e));
        }
        match con.typed.feed(b) {
            None => {}
            Some(Command::Help) => {
                for (cmd, what) in HELP {
                    con.line(format_args!("  {cmd:<6} {what}"));
                }
            }
            Some(Command::XsRead { path, len }) => {
                let path = core::str::from_utf8(&path[..len]).unwrap_or("?");
                match xs
                    .as_deref_mut()
                    .map(|x| x.read(Tx::NONE, path).map(Text::new))
                {
                    Some(Ok(v)) => con.line(format_args!("xs-read {path}: '{v}'")),
                    Some(Err(e)) => con.line(format_args!("xs-read {path}: {e}")),
                    None => con.line(format_args!("xs-read {path}: no xenstore connection")),
                }
            }
            Some(Command::XsFlood) => match xs.as_deref_mut() {
                Some(x) => xs_flood(con, x),
                None => con.line(format_args!("xs-flood: no xenstore connection")),
            },
            Some(Command::ConsoleFlood) => console_flood(con),
            Some(Command::Blk(BlkCommand::Hostile)) => {
                match (vbd.as_deref_mut(), xs.as_deref_mut()) {
                    (Some(b), Some(x)) => blk_hostile(con, b, x),
                    _ => con.line(format_args!("blk: no vbd")),
                }
            }
            Some(Command::Blk(c)) => match vbd.as_deref_mut() {
                Some(b) => blk_command(con, b, c),
                None => con.line(format_args!("blk: no vbd")),
            },
            Some(Command::Spin { ms }) => {
                let va = SHARED_VA.load(core::sync::atomic::Ordering::Relaxed);
                let start = pvrt::time::now(va);
                let until = start + u64::from(ms) * 1_000_000;
                while pvrt::time::now(va) < until {
                    core::hint::spin_loop();
                }
                con.line(format_args!("spun {ms} ms"));
            }
            Some(Command::Crash) => {
                con.line(format_args!("domU {name}: crashing (asked on its console)"));
                // Its last words on the hypervisor console end without a
                // newline, as a dying kernel's often do: Oxen prints the
                // partial line when the domain shuts down.
                pvrt::print!("domU {name}: crashing (asked on its console)");
                let e = pvrt::hypercall::shutdown(xen_abi::sched::SHUTDOWN_CRASH);
                con.both(format_args!("domU {name}: shutdown (crash) refused: {e}"));
            }
        }
    }
}

/// `blk ...` on the vbd; each result goes on the console ring and the
/// hypervisor console.
fn blk_command(con: &mut Console, b: &mut blk::Blkfront, c: BlkCommand) {
    let va = SHARED_VA.load(core::sync::atomic::Ordering::Relaxed);
    match c {
        BlkCommand::Info => con.both(format_args!(
            "blk info: vbd {}, {} sectors, {}, flush {}, barrier {}, {} stray responses",
            b.devid,
            b.info.sectors,
            if b.info.readonly() {
                "read-only"
            } else {
                "read-write"
            },
            b.info.flush,
            b.info.barrier,
            b.unknown_ids
        )),
        BlkCommand::Hostile => con.line(format_args!("blk hostile: needs xenstore")),
        BlkCommand::Flush => match b.flush() {
            Ok(()) => con.both(format_args!("blk flush: ok")),
            Err(e) => con.both(format_args!("blk flush: error: {e}")),
        },
        BlkCommand::Read { sector, count } => {
            let len = count as usize * 512;
            blk::data()[..len].fill(0);
            let t0 = pvrt::time::now(va);
            let r = b.transfer(false, sector, count);
            let ns = pvrt::time::now(va).saturating_sub(t0).max(1);
            let d = &blk::data()[..len];
            match r {
                Ok(()) => con.both(format_args!(
                    "blk read {sector}+{count}: ok, fnv1a {:08x}, first bytes '{}' ({} sectors/s)",
                    fnv1a(d),
                    Printable(&d[..16]),
                    u64::from(count) * 1_000_000_000 / ns
                )),
                Err(e) => con.both(format_args!("blk read {sector}+{count}: error: {e}")),
            }
        }
        BlkCommand::Write { sector, count, .. } => {
            let len = count as usize * 512;
            fill_pattern(&mut blk::data()[..len], c.pattern());
            let sum = fnv1a(&blk::data()[..len]);
            let t0 = pvrt::time::now(va);
            let r = b.transfer(true, sector, count);
            let ns = pvrt::time::now(va).saturating_sub(t0).max(1);
            match r {
                Ok(()) => con.both(format_args!(
                    "blk write {sector}+{count}: ok, fnv1a {sum:08x} ({} sectors/s)",
                    u64::from(count) * 1_000_000_000 / ns
                )),
                Err(e) => con.both(format_args!("blk write {sector}+{count}: error: {e}")),
            }
        }
    }
}

/// `blk hostile`: each bad request of issue 12's "Bad input" and the
/// status the back end answered, then a request producer beyond the ring
/// and the back end's state after it (on the console ring only: the
/// hypervisor console's rate limit would drop lines).
fn blk_hostile(con: &mut Console, b: &mut blk::Blkfront, xs: &mut XenBus) {
    use xen_abi::blkif::{BLKIF_OP_READ, BlkifRequest, BlkifRequestSegment};
    let sectors = b.info.sectors;
    let seg = |first: u8, last: u8| BlkifRequestSegment {
        gref: 0,
        first_sect: first,
        last_sect: last,
        _pad: 0,
    };
    let req = |op: u8, nr: u8, sector: u64, s: BlkifRequestSegment| {
        let mut r = BlkifRequest {
            operation: op,
            nr_segments: nr,
            handle: b.devid as u16,
            id: 0,
            sector_number: sector,
            seg: Default::default(),
        };
        r.seg.iter_mut().for_each(|x| *x = s);
        r
    };
    /// What a case is called, its request, the pages granted for it
    /// (data page, read-only).
    type Case<'a> = (&'a str, BlkifRequest, &'a [(usize, bool)]);
    let cases: [Case<'_>; 7] = [
        ("nr_segments 0", req(BLKIF_OP_READ, 0, 0, seg(0, 7)), &[]),
        (
            "nr_segments 12",
            req(BLKIF_OP_READ, 12, 0, seg(0, 7)),
            &[(0, false)],
        ),
        (
            "sectors past the end",
            req(BLKIF_OP_READ, 1, sectors - 4, seg(0, 7)),
            &[(0, false)],
        ),
        (
            "first_sect > last_sect",
            req(BLKIF_OP_READ, 1, 0, seg(5, 2)),
            &[(0, false)],
        ),
        // gref 0 of the segment stays: never granted to the back end.
        ("ungranted gref", req(BLKIF_OP_READ, 1, 0, seg(0, 7)), &[]),
        (
            "read into a read-only grant",
            req(BLKIF_OP_READ, 1, 0, seg(0, 7)),
            &[(0, true)],
        ),
        (
            "unknown operation 9",
            req(9, 1, 0, seg(0, 7)),
            &[(0, false)],
        ),
    ];
    for (what, r, grants) in cases {
        // A request naming no grant keeps the gref it was built with.
        let mut r = r;
        if grants.is_empty() {
            r.seg[0].gref = 511;
        }
        match b.raw(r, grants) {
            Ok(st) => con.line(format_args!("blk hostile: {what}: status {st}")),
            Err(e) => con.line(format_args!("blk hostile: {what}: {e}")),
        }
    }
    b.corrupt_req_prod(100);
    let va = SHARED_VA.load(core::sync::atomic::Ordering::Relaxed);
    let deadline = pvrt::time::now(va) + 3_000_000_000;
    let state = loop {
        let st = b.backend_state(xs);
        if st.is_some_and(|s| s as u32 >= 5) || pvrt::time::now(va) > deadline {
            break st;
        }
        let _ = pvrt::time::set_timer(pvrt::time::now(va) + 20_000_000);
        let _ = pvrt::time::block();
    };
    con.line(format_args!(
        "blk hostile: request producer 100 beyond the ring: back end state {}",
        state.map_or("?", |s| s.as_str())
    ));
}

/// Bytes shown as text, `.` for the unprintable.
struct Printable<'a>(&'a [u8]);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            let c = if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            };
            f.write_char(c)?;
        }
        Ok(())
    }
}

/// `console-flood`: numbered lines through `console_io` for
/// `domu::conflood::FLOOD_MS`, then one write of 2^31 - 1 bytes from the
/// kernel's first page (Oxen continues it until it reaches the end of the
/// mapped memory and fails there); the figures go on the console ring.
fn console_flood(con: &mut Console) {
    use domu::conflood::{FLOOD_MS, fill};
    con.line(format_args!("console-flood: flooding for {FLOOD_MS} ms"));
    let va = SHARED_VA.load(core::sync::atomic::Ordering::Relaxed);
    let until = pvrt::time::now(va) + FLOOD_MS * 1_000_000;
    let (mut next, mut writes) = (0u64, 0u64);
    let mut buf = [0u8; 512];
    while pvrt::time::now(va) < until {
        let n = fill(&mut buf, &mut next);
        pvrt::console::write_bytes(&buf[..n]);
        writes += 1;
    }
    // SAFETY: Oxen only reads from the buffer, and checks every page of it.
    let huge = pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(
            xen_abi::hypercall::CONSOLE_IO,
            [
                xen_abi::console::CONSOLEIO_WRITE,
                0x7fff_ffff,
                pvrt::VIRT_BASE,
                0,
                0,
            ],
        )
    });
    con.line(format_args!(
        "console-flood: done, {next} lines in {writes} writes; a write of 2^31 - 1 bytes: {huge:?}"
    ));
}

/// `domu::flood` over the kernel's store connection.
struct FloodConn<'a>(&'a mut XenBus);

impl domu::flood::Store for FloodConn<'_> {
    type Error = XsError;
    fn start(&mut self) -> Result<u32, XsError> {
        self.0.transaction_start().map(|t| t.0)
    }
    fn end(&mut self, tx: u32, commit: bool) -> Result<(), XsError> {
        self.0.transaction_end(Tx(tx), commit)
    }
    fn read(&mut self, tx: u32, path: &str) -> Result<(), XsError> {
        self.0.read(Tx(tx), path).map(drop)
    }
    fn write(&mut self, path: &str, value: &[u8]) -> Result<(), XsError> {
        self.0.write(Tx::NONE, path, value)
    }
    fn rm(&mut self, path: &str) -> Result<(), XsError> {
        self.0.rm(Tx::NONE, path)
    }
}

/// A step's outcome as printed: `ok` or the error.
struct Outcome<'a>(&'a Result<(), XsError>);

impl fmt::Display for Outcome<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(()) => f.write_str("ok"),
            Err(e) => write!(f, "{e}"),
        }
    }
}

/// Runs `xs-flood` and prints one line per step.
fn xs_flood(con: &mut Console, xs: &mut XenBus) {
    let r = domu::flood::run(&mut FloodConn(xs));
    con.line(format_args!(
        "xs-flood: transaction start: {}",
        Outcome(&r.tx_started)
    ));
    con.line(format_args!(
        "xs-flood: two 3070-byte paths read in the transaction: {}, {}",
        Outcome(&r.attack[0]),
        Outcome(&r.attack[1])
    ));
    con.line(format_args!(
        "xs-flood: four 2048-byte paths read in the transaction: {}, {}, {}, {}",
        Outcome(&r.longest[0]),
        Outcome(&r.longest[1]),
        Outcome(&r.longest[2]),
        Outcome(&r.longest[3])
    ));
    match r.write_error {
        Some(e) => con.line(format_args!(
            "xs-flood: {} writes of {} bytes, then {e}",
            r.writes,
            domu::flood::VALUE_LEN
        )),
        None => con.line(format_args!(
            "xs-flood: {} writes of {} bytes, none refused",
            r.writes,
            domu::flood::VALUE_LEN
        )),
    }
    con.line(format_args!(
        "xs-flood: removed data/flood: {}; a write after it: {}",
        Outcome(&r.removed),
        Outcome(&r.after)
    ));
}

/// Handles the watch events that arrived.
fn serve_xenstore(con: &mut Console, xs: &mut XenBus, name: &Text) -> Result<(), XsError> {
    let mut buf = [0u8; 256];
    let mut shutdown = xs.take_lost_events();
    while let Some(ev) = xs.next_event(&mut buf)? {
        shutdown |= ev.token == SHUTDOWN_TOKEN;
    }
    if shutdown {
        control_shutdown(con, xs, name)?;
    }
    Ok(())
}

/// Reads and clears `control/shutdown` in one transaction, then acts on it.
fn control_shutdown(con: &mut Console, xs: &mut XenBus, name: &Text) -> Result<(), XsError> {
    let request = xs.transaction(|xs, tx| {
        let request = match xs.read(tx, "control/shutdown") {
            Ok(v) => ShutdownRequest::parse(v),
            Err(e) if e.is_enoent() => ShutdownRequest::Nothing,
            Err(e) => return Err(e),
        };
        if request.must_clear() {
            xs.write(tx, "control/shutdown", b"")?;
        }
        Ok(request)
    })?;
    match request.reason() {
        Some(reason) => {
            let what = if reason == xen_abi::sched::SHUTDOWN_REBOOT {
                "reboot"
            } else {
                "poweroff"
            };
            con.both(format_args!("domU {name}: {what}"));
            let e = pvrt::hypercall::shutdown(reason);
            con.both(format_args!("domU {name}: shutdown refused: {e}"));
        }
        None if request.must_clear() => {
            con.both(format_args!(
                "domU {name}: ignoring shutdown request {request:?}"
            ));
        }
        None => {}
    }
    Ok(())
}

/// Sleeps for good (nothing is bound, or events could not be set up).
fn halt_forever() -> ! {
    loop {
        let _ = pvrt::time::block();
    }
}
