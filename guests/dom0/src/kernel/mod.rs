//! The dom0 kernel: boot, then one event loop.
//!
//! Boot (XEN-PV-ABI.md §4, §5, §8, §14.2): the heap; shared_info mapped from
//! `start_info.shared_info` at the first page of the padding after the boot
//! stack (§4.3 guarantees it is mapped); the initrd (module 2, `mod_start`/
//! `mod_len`) parsed and mounted read-only; events through pvrt with
//! VIRQ_CONSOLE bound; the default periodic timer stopped (nothing here needs
//! ticks); the banner, /etc/motd and the first prompt.
//!
//! The loop: with events masked, take the set of ports whose handler fired;
//! if none, `SCHEDOP_block` (which unmasks atomically and returns at once if
//! an event is already pending, so no wake-up is lost); otherwise unmask and
//! dispatch each port to the service bound to it: console input here, every
//! other port (VIRQ_DOM_EXC, the store and console rings of the domains dom0
//! built) to the toolstack (`oxen_dom0::toolstack`). Services never block:
//! they read what is there (`console_io` read until it returns 0) and return.
//!
//! While `xm console` is attached, typed bytes go to the domain's console
//! (up to Ctrl-]) instead of the line editor, and no prompt is shown; what
//! the daemons print while the prompt is up starts on a new line and is
//! followed by the prompt and the line being typed.

mod blk;
mod disk;
mod heap;
mod net;
mod xen;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use initrd::Archive;
use oxen_dom0::line::{Event, LineEditor};
use oxen_dom0::shell::{Env, Shell, banner};
use pvrt::{StartInfo, println};
use xen_abi::console::CONSOLEIO_READ;
use xen_abi::evtchn::{VIRQ_CONSOLE, VIRQ_TIMER};
use xen_abi::hypercall::{CONSOLE_IO, VCPU_OP};
use xen_abi::shared_info::NR_EVENT_CHANNELS;
use xen_abi::start_info::SIF_MOD_START_PFN;
use xen_abi::types::PAGE_SIZE;
use xen_abi::vcpu::VCPUOP_STOP_PERIODIC_TIMER;

use xen::Xen;

pvrt::guest_main!(main);

const PAGE: u32 = PAGE_SIZE as u32;

/// Ports whose handler ran since the loop last looked (bit p = port p).
static FIRED: [AtomicU32; NR_EVENT_CHANNELS / 32] =
    [const { AtomicU32::new(0) }; NR_EVENT_CHANNELS / 32];

/// pvrt's handler for every port dom0 binds: notes the port for the loop.
fn note_event(port: u32) {
    if let Some(w) = FIRED.get((port / 32) as usize) {
        w.fetch_or(1 << (port % 32), Ordering::SeqCst);
    }
}

/// Takes the noted ports.
fn take_fired() -> Vec<u32> {
    let mut ports = Vec::new();
    for (i, w) in FIRED.iter().enumerate() {
        let bits = w.swap(0, Ordering::SeqCst);
        ports.extend(
            (0..32)
                .filter(|b| bits & (1 << b) != 0)
                .map(|b| i as u32 * 32 + b),
        );
    }
    ports
}

/// What an event-channel port is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// VIRQ_CONSOLE: bytes typed on the hypervisor console.
    ConsoleInput,
    /// VIRQ_TIMER: a deadline of `set_timer_op` (a wait's timeout).
    Timer,
    /// The NIC's pirq.
    Nic,
}

/// Console output, flushed at each newline (so that what a command printed
/// is out before, say, a shutdown) and when asked.
struct Out {
    buf: Vec<u8>,
}

impl Out {
    fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
        if b.contains(&b'\n') || self.buf.len() >= 1024 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() {
            pvrt::console::write_bytes(&self.buf);
            self.buf.clear();
        }
    }
}

impl fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

/// Everything the loop serves.
struct Dom0 {
    xen: Xen,
    shell: Shell<'static>,
    editor: LineEditor,
    out: Out,
    sources: Vec<(u32, Source)>,
    blk: blk::Shared,
}

impl Dom0 {
    /// Routes `port` to `source`.
    fn bind(&mut self, port: u32, source: Source) {
        pvrt::events::on(port, note_event);
        self.sources.push((port, source));
    }

    fn prompt(&mut self) {
        let p = self.shell.prompt();
        self.out.bytes(p.as_bytes());
        self.out.flush();
    }

    /// Reprints the prompt and the line being typed.
    fn prompt_again(&mut self) {
        self.prompt();
        let pending = self.editor.pending().to_vec();
        self.out.bytes(&pending);
        self.out.flush();
    }

    /// Feeds typed bytes to the attached console up to and including a
    /// Ctrl-]; returns how many it took (0 if not attached).
    fn feed_console(&mut self, bytes: &[u8]) -> usize {
        if self.shell.toolstack().attached().is_none() {
            return 0;
        }
        let n = bytes
            .iter()
            .position(|&b| b == oxen_dom0::toolstack::DETACH)
            .map_or(bytes.len(), |i| i + 1);
        let still = self
            .shell
            .toolstack()
            .console_input(&mut self.xen, &mut self.out, &bytes[..n]);
        if !still {
            self.prompt_again();
        }
        n
    }

    /// Reads and handles every byte typed so far.
    fn console_input(&mut self) {
        let mut chunk = [0u8; 256];
        loop {
            // SAFETY: `chunk` is writable for its length across the call.
            let r = pvrt::hypercall::result(unsafe {
                pvrt::hypercall::raw(
                    CONSOLE_IO,
                    [
                        CONSOLEIO_READ,
                        chunk.len() as u32,
                        chunk.as_mut_ptr() as u32,
                        0,
                        0,
                    ],
                )
            });
            let n = match r {
                Ok(0) => break,
                Ok(n) => (n as usize).min(chunk.len()),
                Err(e) => {
                    println!("dom0: console_io read failed: {e}");
                    break;
                }
            };
            let mut at = 0;
            while at < n {
                let taken = self.feed_console(&chunk[at..n]);
                if taken > 0 {
                    at += taken;
                    continue;
                }
                let b = chunk[at];
                at += 1;
                let mut echo = Vec::new();
                let event = self.editor.feed(b, &mut echo);
                self.out.bytes(&echo);
                match event {
                    Event::None => {}
                    Event::Line(line) => {
                        self.out.flush();
                        let mut env = Env {
                            hv: &mut self.xen,
                            out: &mut self.out,
                        };
                        self.shell.execute(&line, &mut env);
                        self.blk_poll();
                        if self.shell.toolstack().attached().is_none() {
                            self.prompt();
                        }
                    }
                    Event::Cancelled => self.prompt(),
                }
            }
            self.out.flush();
        }
    }

    fn dispatch(&mut self, port: u32) {
        let source = self
            .sources
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, s)| *s);
        match source {
            Some(Source::ConsoleInput) => self.console_input(),
            Some(Source::Timer) => {}
            Some(Source::Nic) => {
                if let Some(net) = self.shell.net_mut() {
                    net.interrupt();
                }
            }
            None if self.blk_event(port) => {}
            None => {
                self.toolstack_event(port);
                self.blk_poll();
            }
        }
    }

    /// The vbds look at xenstore after it may have changed.
    fn blk_poll(&mut self) {
        let mut text = String::new();
        self.blk
            .0
            .borrow_mut()
            .poll(self.shell.toolstack(), &mut self.xen, &mut text);
        self.print_above_prompt(&text);
    }

    /// A vbd's ring event: one batch; if more is waiting, the port is noted
    /// again so the loop comes back after serving the others.
    fn blk_event(&mut self, port: u32) -> bool {
        let mut text = String::new();
        let served = self.blk.0.borrow_mut().on_event(
            self.shell.toolstack(),
            &mut self.xen,
            port,
            &mut text,
        );
        self.print_above_prompt(&text);
        if served == Some(true) {
            note_event(port);
        }
        served.is_some()
    }

    fn print_above_prompt(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.shell.toolstack().attached().is_some() {
            self.out.bytes(text.as_bytes());
            self.out.flush();
        } else {
            self.out.bytes(b"\n");
            self.out.bytes(text.as_bytes());
            self.prompt_again();
        }
    }

    /// An event for the toolstack: what it prints goes out directly while a
    /// console is attached, else on lines of its own above a fresh prompt.
    fn toolstack_event(&mut self, port: u32) {
        let was_attached = self.shell.toolstack().attached();
        let mut text = String::new();
        let ts = self.shell.toolstack();
        ts.on_event(&mut self.xen, &mut text, port);
        if was_attached.is_some() {
            self.out.bytes(text.as_bytes());
            self.out.flush();
            if self.shell.toolstack().attached().is_none() {
                self.out.bytes(b"\n");
                self.prompt_again();
            }
        } else if !text.is_empty() {
            self.out.bytes(b"\n");
            self.out.bytes(text.as_bytes());
            self.prompt_again();
        }
    }

    fn run(&mut self) -> ! {
        loop {
            pvrt::events::disable();
            let fired = take_fired();
            if fired.is_empty() {
                // Unmasks and sleeps unless an event is already pending.
                let _ = pvrt::time::block();
                continue;
            }
            pvrt::events::enable();
            for port in fired {
                self.dispatch(port);
            }
        }
    }
}

/// A tree with nothing in it, for when there is no usable initrd.
fn empty_archive() -> Archive<'static> {
    let bytes: &'static [u8] = initrd::write_newc(&[]).unwrap_or_default().leak();
    Archive::parse(bytes).expect("an archive of no entries parses")
}

/// Module 2, parsed and mounted read-only.
fn mount_initrd(si: &StartInfo) -> Archive<'static> {
    if si.mod_len == 0 || si.mod_start == 0 {
        println!("dom0: no initrd (module 2); / is empty");
        return empty_archive();
    }
    if si.flags & SIF_MOD_START_PFN != 0 {
        // Not asked for (no MOD_START_PFN note): the module is not mapped.
        println!(
            "dom0: initrd passed by frame number, which this kernel does not accept; / is empty"
        );
        return empty_archive();
    }
    // SAFETY: the domain builder maps the initrd at `mod_start` for `mod_len`
    // bytes in the bootstrap region (§4.3), for the domain's whole life, and
    // nothing in dom0 writes to it.
    let bytes: &'static [u8] =
        unsafe { core::slice::from_raw_parts(si.mod_start as *const u8, si.mod_len as usize) };
    match Archive::parse(bytes) {
        Ok(a) => {
            println!(
                "dom0: initrd {} bytes at {:#x}: {} entries, mounted read-only on /",
                si.mod_len,
                si.mod_start,
                a.entries().len()
            );
            a
        }
        Err(e) => {
            println!("dom0: initrd refused ({e}); / is empty");
            empty_archive()
        }
    }
}

/// Reports dom0's disk: its size, and the filesystem its superblock names
/// (read from the device: byte 1024, magic 0xEF53 at offset 56, the volume
/// name at offset 120); keeps the device for blkback.
fn report_disk(
    disk: Option<(
        oxen_dom0::pci::PciFunction,
        virtio_drivers::device::blk::VirtIOBlk<
            disk::OxenHal,
            virtio_drivers::transport::pci::PciTransport,
        >,
    )>,
) -> Option<blk::Device> {
    let Some((f, mut blk)) = disk else {
        println!("dom0: no virtio block device");
        return None;
    };
    let sectors = blk.capacity();
    let mut sb = [0u8; 1024];
    let fs = match blk.read_blocks(2, &mut sb) {
        Err(e) => alloc::format!("cannot read the superblock: {e}"),
        Ok(()) if u16::from_le_bytes([sb[56], sb[57]]) == 0xEF53 => {
            let name = &sb[120..136];
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            alloc::format!(
                "ext2/3/4 filesystem, volume name '{}'",
                String::from_utf8_lossy(&name[..end])
            )
        }
        Ok(()) => "no ext2/3/4 filesystem".into(),
    };
    println!(
        "dom0: vda: virtio-blk at {}, {sectors} sectors ({} MiB){}, {fs}",
        f.slot(),
        sectors / 2048,
        if blk.readonly() { ", read-only" } else { "" }
    );
    Some(alloc::rc::Rc::new(core::cell::RefCell::new(blk)))
}

/// eth0 on the virtio NIC, configured from the initrd's
/// `/etc/network/interfaces`.
fn bring_up_network(
    shell: &Shell<'_>,
    nic: Option<(oxen_dom0::pci::PciFunction, disk::NetRaw, u8)>,
    shared_va: u32,
) -> Option<(net::Net, Option<u32>)> {
    const FILE: &str = "/etc/network/interfaces";
    let (f, raw, line) = nic?;
    let text = match shell.archive().open(FILE) {
        Ok(b) => String::from_utf8_lossy(b).into_owned(),
        Err(_) => {
            println!("dom0: eth0: no {FILE}; the interface stays down");
            return None;
        }
    };
    let config = match oxen_dom0::net::parse_interfaces(FILE, &text) {
        Ok(c) => c.into_iter().find(|i| i.name == "eth0"),
        Err(e) => {
            println!("dom0: {e}; eth0 stays down");
            return None;
        }
    };
    let Some(config) = config else {
        println!("dom0: eth0: not configured in {FILE}; the interface stays down");
        return None;
    };
    let m = raw.mac_address();
    let addr = oxen_dom0::net::ip_text(config.address);
    // pirq N is legacy line N; its port wakes dom0 when the NIC signals.
    let (pirq, port, how) = match pvrt::io::bind_pirq(u32::from(line)) {
        Ok(port) => (
            Some(u32::from(line)),
            Some(port),
            alloc::format!("pirq {line}, port {port}"),
        ),
        Err(e) => (
            None,
            None,
            alloc::format!("line {line} not bound ({e}): polled"),
        ),
    };
    match net::Net::new(raw, config, shared_va, line, pirq) {
        Ok(n) => {
            println!(
                "dom0: eth0: virtio-net at {}, HWaddr {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, inet {addr}, {how}",
                f.slot(),
                m[0],
                m[1],
                m[2],
                m[3],
                m[4],
                m[5]
            );
            Some((n, port))
        }
        Err(e) => {
            println!("dom0: eth0: {e}");
            None
        }
    }
}

fn main(si: &'static StartInfo) -> ! {
    heap::init();
    // The first page of the padding after the boot stack (§4.3).
    let scratch = si.pt_base + si.nr_pt_frames * PAGE + PAGE;
    // shared_info (§5) at the first of those pages.
    let shared_va = match pvrt::xenbus::map_frame(scratch, si.shared_info >> 12) {
        Ok(_) => scratch,
        Err(e) => panic!("dom0: cannot map shared_info: {e}"),
    };
    let xen = Xen {
        shared_va,
        slots_va: scratch + PAGE,
        slots: (0..xen::NR_SLOTS).map(|_| None).collect(),
        on_port: note_event,
    };
    use oxen_dom0::hv::Hypervisor;
    println!("{}", banner(&xen.version()));
    let cmdline = String::from_utf8_lossy(si.cmd_line()).into_owned();
    println!("dom0: {} pages, command line '{cmdline}'", si.nr_pages);
    let archive = mount_initrd(si);

    if let Err(e) = pvrt::events::init(shared_va) {
        panic!("dom0: cannot register the event callback: {e}");
    }
    // Nothing needs the 10 ms tick: let the vcpu sleep until there is work.
    // SAFETY: VCPUOP_stop_periodic_timer takes no argument.
    let _ = pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(VCPU_OP, [VCPUOP_STOP_PERIODIC_TIMER, 0, 0, 0, 0])
    });
    let console_port = match pvrt::events::bind_virq(VIRQ_CONSOLE) {
        Ok(p) => p,
        Err(e) => panic!("dom0: cannot bind VIRQ_CONSOLE: {e}"),
    };
    println!("dom0: console input on VIRQ_CONSOLE (port {console_port})");

    let mut shell = Shell::new(archive);
    // Device MMIO goes to the padding pages past the foreign-mapping slots.
    let hw = disk::probe(si, scratch + PAGE * (1 + xen::NR_SLOTS as u32));
    let vda = report_disk(hw.disk);
    let ring_va = scratch + PAGE * (1 + xen::NR_SLOTS as u32 + disk::MMIO_PAGES);
    shell.set_pci(hw.functions);
    let nic_port = match bring_up_network(&shell, hw.nic, shared_va) {
        Some((net, port)) => {
            shell.set_net(alloc::boxed::Box::new(net));
            port
        }
        None => None,
    };
    if let Ok(motd) = shell.archive().open("/etc/motd") {
        pvrt::console::write_bytes(motd);
    }
    let mut xen = xen;
    match shell.toolstack().bind_dom_exc(&mut xen) {
        Ok(p) => println!("dom0: domain exceptions on VIRQ_DOM_EXC (port {p})"),
        Err(e) => println!("dom0: {e}; shut-down domains will not be noticed"),
    }
    let mut dom0 = Dom0 {
        xen,
        shell,
        editor: LineEditor::new(),
        out: Out { buf: Vec::new() },
        sources: Vec::new(),
        blk: blk::Shared(alloc::rc::Rc::new(core::cell::RefCell::new(
            blk::Backend::new(vda, ring_va, note_event),
        ))),
    };
    let backends = dom0.blk.clone();
    dom0.shell
        .toolstack()
        .set_backends(alloc::boxed::Box::new(backends));
    dom0.bind(console_port, Source::ConsoleInput);
    // Waits with a timeout (ping) sleep until their set_timer_op deadline.
    match pvrt::events::bind_virq(VIRQ_TIMER) {
        Ok(p) => dom0.bind(p, Source::Timer),
        Err(e) => println!("dom0: cannot bind VIRQ_TIMER: {e}"),
    }
    if let Some(p) = nic_port {
        dom0.bind(p, Source::Nic);
        // What arrived before the port was bound.
        dom0.dispatch(p);
    }
    dom0.prompt();
    // Anything typed before the port was bound.
    dom0.console_input();
    dom0.run()
}
