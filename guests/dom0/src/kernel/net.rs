//! dom0's network stack: smoltcp on the virtio NIC (DESIGN.md §8), as the
//! shell's [`NetStack`].
//!
//! The NIC's PCI interrupt line comes to dom0 as a pirq event channel
//! (`EVTCHNOP_bind_pirq`): a command waiting for the network (`ping`)
//! sleeps in `SCHEDOP_block` until the NIC's event or its deadline, and the
//! event loop serves the NIC on its event between commands (answering ARP
//! and echo requests); each service acknowledges the device, then sends
//! `PHYSDEVOP_eoi`. Without a pirq (binding refused) the stack is polled,
//! yielding the CPU between polls. Receive buffers are 2 KiB and 2 KiB-aligned, so none crosses a
//! page and the device writes them in place; what is sent goes through the
//! HAL's `share` (a bounce page when the frame crosses a page boundary).
//!
//! Invariant: every posted receive buffer is in `rx` under the token the
//! device gave it, and is reposted as soon as its packet is copied out.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use oxen_dom0::net::{EchoReply, IfaceConfig, IfaceInfo, Ipv4, NetStack};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::raw;
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, Icmpv4Packet, Icmpv4Repr, IpCidr, IpProtocol, IpVersion,
    Ipv4Address, Ipv4Packet, Ipv4Repr,
};
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::pci::PciTransport;

use super::disk::OxenHal;

/// Descriptors per virtqueue.
const QUEUE: usize = 16;
/// Receive buffers posted to the device.
const RX_BUFFERS: usize = 8;
/// The ICMP identifier of dom0's pings.
const PING_IDENT: u16 = 0x0d0e;

/// A receive buffer: 2 KiB-aligned, so it never crosses a page.
#[repr(C, align(2048))]
struct RxBuf([u8; 2048]);

/// The virtio NIC as a smoltcp device, with the counters `ifconfig` shows.
struct Nic {
    raw: VirtIONetRaw<OxenHal, PciTransport, QUEUE>,
    rx: Vec<(u16, Box<RxBuf>)>,
    rx_packets: u64,
    rx_bytes: u64,
    rx_dropped: u64,
    tx_packets: u64,
    tx_bytes: u64,
}

impl Nic {
    fn new(raw: VirtIONetRaw<OxenHal, PciTransport, QUEUE>) -> Self {
        let mut nic = Nic {
            raw,
            rx: Vec::new(),
            rx_packets: 0,
            rx_bytes: 0,
            rx_dropped: 0,
            tx_packets: 0,
            tx_bytes: 0,
        };
        for _ in 0..RX_BUFFERS {
            nic.post(Box::new(RxBuf([0; 2048])));
        }
        nic
    }

    /// Gives `buf` to the device for a packet.
    fn post(&mut self, mut buf: Box<RxBuf>) {
        // SAFETY: the buffer stays in `self.rx`, untouched, until the device
        // hands it back (receive_complete with the same token).
        match unsafe { self.raw.receive_begin(&mut buf.0) } {
            Ok(token) => self.rx.push((token, buf)),
            Err(e) => pvrt::println!("dom0: eth0: cannot post a receive buffer: {e}"),
        }
    }

    /// The next received frame, if any.
    fn take_frame(&mut self) -> Option<Vec<u8>> {
        let token = self.raw.poll_receive()?;
        let i = self.rx.iter().position(|(t, _)| *t == token)?;
        let (_, mut buf) = self.rx.swap_remove(i);
        // SAFETY: `buf` is the buffer posted under `token`.
        let done = unsafe { self.raw.receive_complete(token, &mut buf.0) };
        let frame = match done {
            Ok((hdr, len)) if hdr + len <= buf.0.len() => {
                self.rx_packets += 1;
                self.rx_bytes += len as u64;
                Some(buf.0[hdr..hdr + len].to_vec())
            }
            _ => {
                self.rx_dropped += 1;
                None
            }
        };
        self.post(buf);
        frame
    }
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut Nic);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; len];
        let r = f(&mut frame);
        if self.0.raw.send(&frame).is_ok() {
            self.0.tx_packets += 1;
            self.0.tx_bytes += len as u64;
        }
        r
    }
}

impl Device for Nic {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_>)> {
        let frame = self.take_frame()?;
        Some((Rx(frame), Tx(self)))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps.max_burst_size = Some(1);
        caps
    }
}

/// eth0: the NIC, its interface and dom0's ICMP raw socket.
pub struct Net {
    nic: Nic,
    iface: Interface,
    sockets: SocketSet<'static>,
    icmp: SocketHandle,
    config: IfaceConfig,
    shared_va: u32,
    /// The NIC's pirq, when its interrupt is bound.
    pirq: Option<u32>,
    /// The NIC's PCI interrupt line.
    line: u8,
}

impl Net {
    /// Brings eth0 up with `config` on the virtio NIC.
    pub fn new(
        raw: VirtIONetRaw<OxenHal, PciTransport, QUEUE>,
        config: IfaceConfig,
        shared_va: u32,
        line: u8,
        pirq: Option<u32>,
    ) -> Result<Self, String> {
        let mac = raw.mac_address();
        let mut nic = Nic::new(raw);
        let now = Instant::from_micros((pvrt::time::now(shared_va) / 1000) as i64);
        let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        cfg.random_seed = pvrt::time::rdtsc();
        let mut iface = Interface::new(cfg, &mut nic, now);
        let [a, b, c, d] = config.address;
        let mut ok = true;
        iface.update_ip_addrs(|addrs| {
            ok = addrs
                .push(IpCidr::new(
                    Ipv4Address::new(a, b, c, d).into(),
                    config.prefix_len,
                ))
                .is_ok();
        });
        if !ok {
            return Err("cannot add the address".into());
        }
        if let Some([a, b, c, d]) = config.gateway {
            iface
                .routes_mut()
                .add_default_ipv4_route(Ipv4Address::new(a, b, c, d))
                .map_err(|e| e.to_string())?;
        }
        let buffer =
            || raw::PacketBuffer::new(vec![raw::PacketMetadata::EMPTY; 4], vec![0u8; 4096]);
        let mut sockets = SocketSet::new(Vec::new());
        let icmp = sockets.add(raw::Socket::new(
            Some(IpVersion::Ipv4),
            Some(IpProtocol::Icmp),
            buffer(),
            buffer(),
        ));
        Ok(Net {
            nic,
            iface,
            sockets,
            icmp,
            config,
            shared_va,
            pirq,
            line,
        })
    }

    fn now_us(&self) -> u64 {
        pvrt::time::now(self.shared_va) / 1000
    }

    /// Runs the stack once: takes what arrived, sends what is due.
    fn poll(&mut self) {
        let now = Instant::from_micros(self.now_us() as i64);
        self.iface.poll(now, &mut self.nic, &mut self.sockets);
    }

    /// Waits until `done` returns `Some` or `deadline_us` passes (`None`),
    /// running the stack: asleep between NIC events and the stack's own
    /// timers when the interrupt is bound, else polling.
    fn wait<T>(
        &mut self,
        deadline_us: u64,
        mut done: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<T> {
        if self.pirq.is_none() {
            loop {
                self.poll();
                if let Some(v) = done(self) {
                    return Some(v);
                }
                if self.now_us() >= deadline_us {
                    return None;
                }
                let _ = pvrt::time::yield_now();
            }
        }
        pvrt::xenbus::wait_until(|| {
            self.interrupt();
            if let Some(v) = done(self) {
                return Some(Some(v));
            }
            let now = self.now_us();
            if now >= deadline_us {
                return Some(None);
            }
            // Wake for the stack's next timer (ARP retry...) or the deadline.
            let delay = self
                .iface
                .poll_delay(Instant::from_micros(now as i64), &self.sockets)
                .map_or(u64::MAX, |d| d.total_micros());
            let wake_us = deadline_us.min(now.saturating_add(delay).max(now + 1));
            let _ = pvrt::time::set_timer(wake_us * 1000);
            None
        })
    }

    /// Serves the NIC after its interrupt (or to look for work): acknowledges
    /// the device (lowering its line), runs the stack, and ends the
    /// interrupt at Oxen.
    pub fn interrupt(&mut self) {
        let _ = self.nic.raw.ack_interrupt();
        self.poll();
        if let Some(pirq) = self.pirq {
            let _ = pvrt::io::eoi(pirq);
        }
    }

    /// The echo reply to `seq` in `packet` (an IPv4 packet), with its TTL.
    fn echo_reply(packet: &[u8], from: Ipv4, seq: u16) -> Option<(usize, u8)> {
        let ip = Ipv4Packet::new_checked(packet).ok()?;
        if ip.src_addr().octets() != from {
            return None;
        }
        let icmp = Icmpv4Packet::new_checked(ip.payload()).ok()?;
        match Icmpv4Repr::parse(&icmp, &Default::default()).ok()? {
            Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } if ident == PING_IDENT && seq_no == seq => Some((data.len() + 8, ip.hop_limit())),
            _ => None,
        }
    }
}

impl NetStack for Net {
    fn interfaces(&self) -> Vec<IfaceInfo> {
        vec![IfaceInfo {
            config: self.config.clone(),
            mac: self.nic.raw.mac_address(),
            mtu: 1500,
            rx_packets: self.nic.rx_packets,
            rx_bytes: self.nic.rx_bytes,
            tx_packets: self.nic.tx_packets,
            tx_bytes: self.nic.tx_bytes,
            rx_dropped: self.nic.rx_dropped,
            irq: Some(self.line),
        }]
    }

    fn ping(
        &mut self,
        dst: Ipv4,
        seq: u16,
        payload: usize,
        timeout_ms: u32,
    ) -> Result<Option<EchoReply>, String> {
        let data: Vec<u8> = (0..payload).map(|i| i as u8).collect();
        let icmp = Icmpv4Repr::EchoRequest {
            ident: PING_IDENT,
            seq_no: seq,
            data: &data,
        };
        let [a, b, c, d] = self.config.address;
        let [e, f, g, h] = dst;
        let ip = Ipv4Repr {
            src_addr: Ipv4Address::new(a, b, c, d),
            dst_addr: Ipv4Address::new(e, f, g, h),
            next_header: IpProtocol::Icmp,
            payload_len: icmp.buffer_len(),
            hop_limit: 64,
        };
        let mut packet = vec![0u8; ip.buffer_len() + icmp.buffer_len()];
        let caps = self.nic.capabilities().checksum;
        let mut ipp = Ipv4Packet::new_unchecked(&mut packet[..]);
        ip.emit(&mut ipp, &caps);
        icmp.emit(&mut Icmpv4Packet::new_unchecked(ipp.payload_mut()), &caps);
        let sent_us = self.now_us();
        self.sockets
            .get_mut::<raw::Socket>(self.icmp)
            .send_slice(&packet)
            .map_err(|e| e.to_string())?;
        let deadline = sent_us + u64::from(timeout_ms) * 1000;
        let reply = self.wait(deadline, |net| {
            let sock = net.sockets.get_mut::<raw::Socket>(net.icmp);
            while let Ok(p) = sock.recv() {
                if let Some(r) = Self::echo_reply(p, dst, seq) {
                    return Some(r);
                }
            }
            None
        });
        Ok(reply.map(|(bytes, ttl)| EchoReply {
            bytes,
            ttl,
            rtt_us: self.now_us().saturating_sub(sent_us),
        }))
    }

    fn interrupt(&mut self) {
        Net::interrupt(self);
    }

    fn now_ms(&self) -> u64 {
        self.now_us() / 1000
    }

    fn sleep_ms(&mut self, ms: u32) {
        let until = self.now_us() + u64::from(ms) * 1000;
        let _ = self.wait(until, |_| None::<()>);
    }
}
