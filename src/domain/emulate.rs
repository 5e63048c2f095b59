//! Emulation of the privileged instructions a ring-1 kernel may use
//! (XEN-PV-ABI.md §3.1, decoding in `hv_core::privop`), and of the
//! forced-emulation CPUID (§17). What is not emulated stays a #GP (or #UD)
//! for the guest.
//!
//! - `clts`, `mov` to/from CR0 (only TS may change), CR2, CR3 (a new base
//!   pointer, in Xen's rotated encoding; preemptible: a long one leaves EIP
//!   on the instruction, which the guest executes again to go on), CR4
//!   (writes ignored);
//! - `rdmsr` of the TSC; `wrmsr` is ignored (Xen logs and drops such writes);
//!   any other `rdmsr` faults;
//! - `wbinvd` (performed only with I/O privilege), `hlt` (blocks, as
//!   `SCHEDOP_block`);
//! - `in`/`out` for a domain with I/O privilege whose virtual IOPL admits
//!   ring 1 or whose I/O bitmap allows the ports (`physdev_op`), except
//!   Oxen's own ports (PICs, PIT, its serial console: `privop::OXEN_PORTS`),
//!   which stay a #GP as Xen denies them to dom0.
//!
//! With `VMASST_TYPE_4gb_segments` it also emulates the data moves that need
//! the 4 GiB limit Oxen truncated (decoding and rules in `hv_core::seg4gb`).

use hv_core::privop::{self, DecodeError, Port, PrivOp};
use xen_abi::cpuid::*;
use xen_abi::mm::{xen_cr3_to_pfn, xen_pfn_to_cr3};

use super::Domain;
use crate::arch::x86::cpu;
use crate::arch::x86::traps::TrapFrame;
use crate::arch::x86::uaccess::{copy_from_guest, copy_to_guest};

/// CR0.TS.
const CR0_TS: u32 = 1 << 3;
/// The TSC's MSR.
const MSR_IA32_TSC: u32 = 0x10;

/// Reads up to 15 instruction bytes at the guest's CS:EIP: from the code
/// segment's base, and only the bytes inside its limit (none when EIP is
/// past it), so nothing beyond the segment is ever emulated.
fn fetch(frame: &TrapFrame, dom: &Domain) -> ([u8; 15], usize) {
    use hv_core::descriptor::{Descriptor, code_fetch_window};
    let mut buf = [0u8; 15];
    let window = crate::arch::x86::gdt::descriptor_for(frame.cs as u16, dom.vcpu.ldt_ents as usize)
        .map(Descriptor::from_u64)
        .and_then(|d| code_fetch_window(d, frame.eip, buf.len()));
    let Some((linear, max)) = window else {
        return (buf, 0);
    };
    let n = (1..=max)
        .rev()
        .find(|&n| copy_from_guest(&mut buf[..n], linear).is_ok())
        .unwrap_or(0);
    (buf, n)
}

fn virtual_cr0(dom: &Domain) -> u32 {
    (cpu::read_cr0() & !CR0_TS) | if dom.vcpu.fpu_ts { CR0_TS } else { 0 }
}

fn port_allowed(dom: &Domain, port: u16, size: u8) -> bool {
    if !dom.iomem_access {
        return false;
    }
    // Oxen's own devices stay Oxen's (as Xen denies them to dom0).
    let uart = crate::console::serial_port()
        .map(|base| [(base, base.saturating_add(7))])
        .unwrap_or_default();
    if privop::touches_ports(port, size, &privop::OXEN_PORTS)
        || privop::touches_ports(port, size, &uart)
    {
        return false;
    }
    if dom.vcpu.iopl >= 1 {
        return true;
    }
    let (bitmap, nr_ports) = dom.vcpu.iobitmap;
    if bitmap == 0 || u32::from(port) + u32::from(size) > nr_ports {
        return false;
    }
    let mut bytes = [0u8; 4];
    let first = u32::from(port) / 8;
    let last = (u32::from(port) + u32::from(size) - 1) / 8;
    let n = (last - first + 1) as usize;
    if copy_from_guest(&mut bytes[..n], bitmap.wrapping_add(first)).is_err() {
        return false;
    }
    // Re-base the port on the copied bytes.
    privop::iobitmap_allows(&bytes[..n], port - (first as u16) * 8, size)
}

/// Tries to emulate the instruction behind a #GP from ring 1. `Ok(())` means
/// done (EIP advanced); `Err` means the guest gets its #GP.
pub fn emulate_privileged(frame: &mut TrapFrame, dom: &mut Domain) -> Result<(), DecodeError> {
    if frame.cs & 3 != 1 {
        return Err(DecodeError::Unsupported);
    }
    let (bytes, n) = fetch(frame, dom);
    let insn = privop::decode(&bytes[..n])?;
    match insn.op {
        PrivOp::Clts => {
            dom.vcpu.fpu_ts = false;
            super::sched::fpu_sync_ts(dom);
        }
        PrivOp::MovFromCr { cr, reg } => {
            let v = match cr {
                0 => virtual_cr0(dom),
                2 => super::shared::cr2(dom.shared_va),
                3 => xen_pfn_to_cr3(dom.vcpu.cr3.0 as u32),
                _ => cpu::read_cr4(),
            };
            *frame.reg_mut(reg) = v;
        }
        PrivOp::MovToCr { cr, reg } => {
            let v = *frame.reg_mut(reg);
            match cr {
                0 => {
                    if (v ^ virtual_cr0(dom)) & !CR0_TS != 0 {
                        return Err(DecodeError::Unsupported);
                    }
                    dom.vcpu.fpu_ts = v & CR0_TS != 0;
                    super::sched::fpu_sync_ts(dom);
                }
                2 => super::shared::set_cr2(dom.shared_va, v),
                3 => {
                    let mfn = hv_core::addr::Mfn(u64::from(xen_cr3_to_pfn(v)));
                    match crate::hypercall::write_cr3(dom, mfn) {
                        Ok(()) => {}
                        // Preempted (a big L3 to validate or an old one to
                        // take down): EIP stays, so the guest runs, takes
                        // its events and executes it again, which goes on
                        // (Xen's X86EMUL_RETRY).
                        Err(xen_abi::errno::Errno::ERESTART) => return Ok(()),
                        Err(_) => return Err(DecodeError::Unsupported),
                    }
                }
                _ => {}
            }
        }
        PrivOp::Rdmsr if frame.ecx == MSR_IA32_TSC => {
            let tsc = cpu::rdtsc();
            (frame.eax, frame.edx) = (tsc as u32, (tsc >> 32) as u32);
        }
        PrivOp::Rdmsr => return Err(DecodeError::Unsupported),
        PrivOp::Wrmsr => {
            crate::guest_log!(dom, Debug, "d{}: wrmsr {:#x} ignored", dom.domid, frame.ecx)
        }
        PrivOp::Wbinvd => {
            if dom.iomem_access {
                cpu::wbinvd();
            }
        }
        PrivOp::Hlt => {
            frame.eip = frame.eip.wrapping_add(u32::from(insn.len));
            cpu::enable_interrupts();
            crate::hypercall::block_domain(dom);
            cpu::disable_interrupts();
            return Ok(());
        }
        PrivOp::In { size, port } | PrivOp::Out { size, port } => {
            let port = match port {
                Port::Imm(p) => u16::from(p),
                Port::Dx => frame.edx as u16,
            };
            if !port_allowed(dom, port, size) {
                return Err(DecodeError::Unsupported);
            }
            if let PrivOp::In { .. } = insn.op {
                let v = match size {
                    1 => u32::from(cpu::inb(port)),
                    2 => u32::from(cpu::inw(port)),
                    _ => cpu::inl(port),
                };
                let keep = match size {
                    1 => 0xFFFF_FF00,
                    2 => 0xFFFF_0000,
                    _ => 0,
                };
                frame.eax = (frame.eax & keep) | v;
            } else {
                match size {
                    1 => cpu::outb(port, frame.eax as u8),
                    2 => cpu::outw(port, frame.eax as u16),
                    _ => cpu::outl(port, frame.eax),
                }
            }
        }
    }
    frame.eip = frame.eip.wrapping_add(u32::from(insn.len));
    Ok(())
}

/// The forced-emulation CPUID behind a #UD: Xen's leaves 0x40000000.. and
/// the real CPUID with what a PV guest must not use masked (and the
/// hypervisor bit set). Returns whether it was one.
pub fn emulate_cpuid(frame: &mut TrapFrame, dom: &Domain) -> bool {
    let (bytes, n) = fetch(frame, dom);
    if !privop::is_emulated_cpuid(&bytes[..n]) {
        return false;
    }
    let leaf = frame.eax;
    let (a, b, c, d) = match leaf {
        XEN_CPUID_LEAF_BASE => (
            XEN_CPUID_MAX_LEAF,
            XEN_CPUID_SIGNATURE_EBX,
            XEN_CPUID_SIGNATURE_ECX,
            XEN_CPUID_SIGNATURE_EDX,
        ),
        XEN_CPUID_LEAF_VERSION => (
            version_eax(
                crate::hypercall::version::XEN_MAJOR,
                crate::hypercall::version::XEN_MINOR,
            ),
            0,
            0,
            0,
        ),
        XEN_CPUID_LEAF_HYPERCALL => (
            XEN_CPUID_HYPERCALL_PAGES,
            XEN_CPUID_HYPERCALL_MSR,
            XEN_CPUID_FEAT1_MMU_PT_UPDATE_PRESERVE_AD,
            0,
        ),
        XEN_CPUID_LEAF_TIME => (0, 0, 0, 0),
        _ => {
            let r = cpu::cpuid(leaf, frame.ecx);
            if leaf == 1 {
                // EDX: no VME, DE, PSE, PGE, PSE36 for a PV kernel; ECX: no
                // VMX, SMX, x2APIC, OSXSAVE; the hypervisor bit on.
                const EDX_MASK: u32 = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 13) | (1 << 17);
                const ECX_MASK: u32 = (1 << 5) | (1 << 6) | (1 << 21) | (1 << 27);
                (r.0, r.1, (r.2 & !ECX_MASK) | (1 << 31), r.3 & !EDX_MASK)
            } else {
                r
            }
        }
    };
    (frame.eax, frame.ebx, frame.ecx, frame.edx) = (a, b, c, d);
    frame.eip = frame.eip.wrapping_add(privop::EMULATED_CPUID_LEN as u32);
    true
}

/// Why an access through a truncated segment is not emulated.
#[derive(Debug)]
pub enum Seg4gbError {
    Decode(hv_core::seg4gb::DecodeError),
    /// A 4 GiB limit would not have allowed it either (or no such segment).
    NotA4gbAccess,
    /// Ring 3 may not access the page (or Oxen could not): the guest's #PF
    /// is not synthesised, the #GP stands.
    Denied,
}

impl core::fmt::Display for Seg4gbError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "{e}"),
            Self::NotA4gbAccess => f.write_str("not an access a 4 GiB limit allows"),
            Self::Denied => f.write_str("memory not accessible"),
        }
    }
}

/// Emulates the data move behind a #GP(0) that a 4 GiB segment limit would
/// have allowed (`VMASST_TYPE_4gb_segments`), from ring 1 or ring 3: the
/// access is made at its linear address, the registers updated and EIP
/// advanced. `Err` leaves the guest its #GP.
pub fn emulate_4gb_access(frame: &mut TrapFrame, dom: &Domain) -> Result<(), Seg4gbError> {
    use hv_core::descriptor::Descriptor;
    use hv_core::ptwr::Regs;
    use hv_core::seg4gb::{self, Op, SegReg};
    let (bytes, n) = fetch(frame, dom);
    let mut regs = Regs([
        frame.eax, frame.ecx, frame.edx, frame.ebx, frame.esp, frame.ebp, frame.esi, frame.edi,
    ]);
    let access = seg4gb::decode(&bytes[..n], &regs).map_err(Seg4gbError::Decode)?;
    let sel = match access.seg {
        SegReg::Es => frame.es,
        SegReg::Cs => frame.cs,
        SegReg::Ss => frame.ss,
        SegReg::Ds => frame.ds,
        SegReg::Fs => frame.fs,
        SegReg::Gs => frame.gs,
    } as u16;
    let desc = crate::arch::x86::gdt::descriptor_for(sel, dom.vcpu.ldt_ents as usize)
        .map(Descriptor::from_u64)
        .ok_or(Seg4gbError::NotA4gbAccess)?;
    let write = matches!(access.op, Op::Store { .. });
    let linear = seg4gb::linear_if_4gb(desc, access.offset, access.width, write)
        .ok_or(Seg4gbError::NotA4gbAccess)?;
    let width = usize::from(access.width);
    if frame.cs & 3 == 3 {
        // Oxen's copy runs in supervisor mode: check what user mode may do.
        let guard = crate::mm::frame_table::MM.lock();
        let mm = guard.as_ref().expect("frame table initialised");
        let last = linear + access.width as u32 - 1;
        if !mm.user_access_ok(dom.vcpu.cr3, linear, write)
            || !mm.user_access_ok(dom.vcpu.cr3, last, write)
        {
            return Err(Seg4gbError::Denied);
        }
    }
    match access.op {
        Op::Load { reg, extend } => {
            let mut v = [0u8; 4];
            copy_from_guest(&mut v[..width], linear).map_err(|_| Seg4gbError::Denied)?;
            seg4gb::apply_load(&mut regs, reg, access.width, extend, u32::from_le_bytes(v));
            let [eax, ecx, edx, ebx, _esp, ebp, esi, edi] = regs.0;
            (frame.eax, frame.ecx, frame.edx, frame.ebx) = (eax, ecx, edx, ebx);
            (frame.ebp, frame.esi, frame.edi) = (ebp, esi, edi);
            // A load into ESP: the interrupted stack pointer.
            frame.esp = regs.0[4];
        }
        Op::Store { value } => {
            copy_to_guest(linear, &value.to_le_bytes()[..width])
                .map_err(|_| Seg4gbError::Denied)?;
        }
    }
    frame.eip = frame.eip.wrapping_add(u32::from(access.len));
    Ok(())
}
