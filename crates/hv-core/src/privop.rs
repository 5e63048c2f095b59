//! Decoding the privileged instructions Oxen emulates for a ring-1 guest
//! kernel (XEN-PV-ABI.md §3.1): they fault (#GP) in ring 1, and Oxen performs
//! the few that make sense for a paravirtualized kernel, or bounces the #GP.
//! Also the forced-emulation prefix `ud2a; .ascii "xen"; cpuid` (§17), which
//! arrives as #UD.
//!
//! Accepted: `clts`, `mov %crN,%reg` / `mov %reg,%crN` (N = 0, 2, 3, 4),
//! `rdmsr`, `wrmsr`, `wbinvd`, `hlt`, and `in`/`out` of 1, 2 or 4 bytes with
//! an immediate or DX port. Segment and LOCK prefixes are skipped (they change
//! nothing for these instructions); an operand-size prefix selects 16-bit I/O.

use core::fmt;

use xen_abi::cpuid::{CPUID_OPCODE, XEN_EMULATE_PREFIX};

/// Where an `in`/`out` takes its port from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// An 8-bit immediate.
    Imm(u8),
    /// The DX register.
    Dx,
}

/// A decoded privileged instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrivOp {
    /// `clts`.
    Clts,
    /// `mov %cr<cr>, %<reg>` (reg in x86 encoding order).
    MovFromCr { cr: u8, reg: usize },
    /// `mov %<reg>, %cr<cr>`.
    MovToCr { cr: u8, reg: usize },
    /// `rdmsr` (ECX → EDX:EAX).
    Rdmsr,
    /// `wrmsr` (EDX:EAX → MSR ECX).
    Wrmsr,
    /// `wbinvd`.
    Wbinvd,
    /// `hlt`.
    Hlt,
    /// `in` of `size` bytes into AL/AX/EAX.
    In { size: u8, port: Port },
    /// `out` of `size` bytes from AL/AX/EAX.
    Out { size: u8, port: Port },
}

/// A decoded instruction and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub op: PrivOp,
    pub len: u8,
}

/// Why an instruction is not emulated (the guest gets its #GP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Ran out of bytes.
    Truncated,
    /// Not one of the emulated instructions.
    Unsupported,
    /// A control register Oxen does not emulate (CR1, CR5–CR7, CR8+).
    BadControlRegister(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("instruction truncated"),
            Self::Unsupported => f.write_str("not an emulated privileged instruction"),
            Self::BadControlRegister(n) => write!(f, "control register cr{n} is not emulated"),
        }
    }
}

/// Decodes the privileged instruction at the start of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let mut pos = 0usize;
    let mut next = || {
        let b = *bytes.get(pos).ok_or(DecodeError::Truncated)?;
        pos += 1;
        Ok::<u8, DecodeError>(b)
    };
    let mut opsize16 = false;
    let mut op = next()?;
    loop {
        match op {
            0x26 | 0x2E | 0x36 | 0x3E | 0x64 | 0x65 | 0xF0 => op = next()?,
            0x66 => {
                opsize16 = true;
                op = next()?;
            }
            _ => break,
        }
    }
    let wide = if opsize16 { 2 } else { 4 };
    let decoded = match op {
        0xF4 => PrivOp::Hlt,
        0xE4 => PrivOp::In {
            size: 1,
            port: Port::Imm(next()?),
        },
        0xE5 => PrivOp::In {
            size: wide,
            port: Port::Imm(next()?),
        },
        0xEC => PrivOp::In {
            size: 1,
            port: Port::Dx,
        },
        0xED => PrivOp::In {
            size: wide,
            port: Port::Dx,
        },
        0xE6 => PrivOp::Out {
            size: 1,
            port: Port::Imm(next()?),
        },
        0xE7 => PrivOp::Out {
            size: wide,
            port: Port::Imm(next()?),
        },
        0xEE => PrivOp::Out {
            size: 1,
            port: Port::Dx,
        },
        0xEF => PrivOp::Out {
            size: wide,
            port: Port::Dx,
        },
        0x0F => match next()? {
            0x06 => PrivOp::Clts,
            0x09 => PrivOp::Wbinvd,
            0x30 => PrivOp::Wrmsr,
            0x32 => PrivOp::Rdmsr,
            op2 @ (0x20 | 0x22) => {
                // The ModRM's mod field is ignored: these are always register forms.
                let modrm = next()?;
                let cr = (modrm >> 3) & 7;
                let reg = usize::from(modrm & 7);
                if !matches!(cr, 0 | 2 | 3 | 4) {
                    return Err(DecodeError::BadControlRegister(cr));
                }
                if op2 == 0x20 {
                    PrivOp::MovFromCr { cr, reg }
                } else {
                    PrivOp::MovToCr { cr, reg }
                }
            }
            _ => return Err(DecodeError::Unsupported),
        },
        _ => return Err(DecodeError::Unsupported),
    };
    Ok(Decoded {
        op: decoded,
        len: pos as u8,
    })
}

/// Length of the forced-emulation CPUID: `ud2a` "xen" (the prefix), `cpuid`.
pub const EMULATED_CPUID_LEN: usize = XEN_EMULATE_PREFIX.len() + CPUID_OPCODE.len();

/// Whether `bytes` (at a #UD's EIP) is the forced-emulation CPUID.
pub fn is_emulated_cpuid(bytes: &[u8]) -> bool {
    bytes.len() >= EMULATED_CPUID_LEN
        && bytes[..XEN_EMULATE_PREFIX.len()] == XEN_EMULATE_PREFIX
        && bytes[XEN_EMULATE_PREFIX.len()..EMULATED_CPUID_LEN] == CPUID_OPCODE
}

/// Whether the I/O bitmap `bitmap` (one bit per port, set = denied, as the
/// CPU's) allows `size` bytes at `port`; ports past its end are denied.
pub fn iobitmap_allows(bitmap: &[u8], port: u16, size: u8) -> bool {
    (u32::from(port)..u32::from(port) + u32::from(size)).all(|p| {
        let (byte, bit) = ((p / 8) as usize, p % 8);
        bitmap.get(byte).is_some_and(|b| b & (1 << bit) == 0)
    })
}

/// The I/O ports Oxen keeps for itself whatever a domain's I/O privilege
/// (Xen's `ioports_deny_access` for dom0): the PICs (0x20–0x21, 0xA0–0xA1),
/// the PIT (0x40–0x43), which drives Oxen's tick and calibrated its TSC, and
/// the PIT channel 2 gate / speaker port 0x61. Oxen's serial console is
/// added at run time (its base and the 7 ports after it). Inclusive ranges.
pub const OXEN_PORTS: [(u16, u16); 4] = [(0x20, 0x21), (0xA0, 0xA1), (0x40, 0x43), (0x61, 0x61)];

/// Whether the `size` bytes at `port` touch any of the inclusive `ranges`.
pub fn touches_ports(port: u16, size: u8, ranges: &[(u16, u16)]) -> bool {
    let (first, last) = (
        u32::from(port),
        u32::from(port) + u32::from(size.max(1)) - 1,
    );
    ranges
        .iter()
        .any(|&(lo, hi)| first <= u32::from(hi) && last >= u32::from(lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oxen_ports_are_touched_by_any_overlapping_access() {
        for (port, size) in [
            (0x20, 1),
            (0x21, 1),
            (0x1F, 2),
            (0x1E, 4),
            (0x40, 4),
            (0x43, 1),
        ] {
            assert!(touches_ports(port, size, &OXEN_PORTS), "{port:#x}/{size}");
        }
        for (port, size) in [(0xA1, 1), (0x9E, 4), (0x61, 1), (0x60, 2), (0x5E, 4)] {
            assert!(touches_ports(port, size, &OXEN_PORTS), "{port:#x}/{size}");
        }
        for (port, size) in [
            (0x22, 1),
            (0x1C, 4),
            (0x44, 4),
            (0x60, 1),
            (0x62, 2),
            (0x70, 1),
        ] {
            assert!(!touches_ports(port, size, &OXEN_PORTS), "{port:#x}/{size}");
        }
        let uart = [(0x3F8, 0x3FF)];
        assert!(touches_ports(0x3F8, 1, &uart) && touches_ports(0x3FF, 1, &uart));
        assert!(touches_ports(0x3F6, 4, &uart));
        assert!(!touches_ports(0x3F4, 4, &uart) && !touches_ports(0x400, 1, &uart));
        assert!(!touches_ports(0xFFFF, 4, &uart), "no wrap at the top");
        assert!(!touches_ports(0x3F8, 1, &[]));
    }

    fn d(bytes: &[u8]) -> Result<Decoded, DecodeError> {
        decode(bytes)
    }

    #[test]
    fn control_registers() {
        assert_eq!(
            d(&[0x0F, 0x06]),
            Ok(Decoded {
                op: PrivOp::Clts,
                len: 2
            })
        );
        // mov %cr0,%eax ; mov %eax,%cr3 ; mov %cr2,%edx ; mov %ecx,%cr4
        assert_eq!(
            d(&[0x0F, 0x20, 0xC0]).unwrap().op,
            PrivOp::MovFromCr { cr: 0, reg: 0 }
        );
        assert_eq!(
            d(&[0x0F, 0x22, 0xD8]).unwrap().op,
            PrivOp::MovToCr { cr: 3, reg: 0 }
        );
        assert_eq!(
            d(&[0x0F, 0x20, 0xD2]).unwrap().op,
            PrivOp::MovFromCr { cr: 2, reg: 2 }
        );
        assert_eq!(
            d(&[0x0F, 0x22, 0xE1]),
            Ok(Decoded {
                op: PrivOp::MovToCr { cr: 4, reg: 1 },
                len: 3
            })
        );
        assert_eq!(
            d(&[0x0F, 0x20, 0xC8]),
            Err(DecodeError::BadControlRegister(1))
        );
        assert_eq!(
            d(&[0x0F, 0x22, 0xF8]),
            Err(DecodeError::BadControlRegister(7))
        );
    }

    #[test]
    fn msrs_caches_halt() {
        assert_eq!(d(&[0x0F, 0x32]).unwrap().op, PrivOp::Rdmsr);
        assert_eq!(d(&[0x0F, 0x30]).unwrap().op, PrivOp::Wrmsr);
        assert_eq!(d(&[0x0F, 0x09]).unwrap().op, PrivOp::Wbinvd);
        assert_eq!(
            d(&[0xF4]),
            Ok(Decoded {
                op: PrivOp::Hlt,
                len: 1
            })
        );
    }

    #[test]
    fn port_io() {
        assert_eq!(
            d(&[0xE4, 0x71]),
            Ok(Decoded {
                op: PrivOp::In {
                    size: 1,
                    port: Port::Imm(0x71)
                },
                len: 2
            })
        );
        assert_eq!(
            d(&[0xED]).unwrap().op,
            PrivOp::In {
                size: 4,
                port: Port::Dx
            }
        );
        assert_eq!(
            d(&[0x66, 0xED]),
            Ok(Decoded {
                op: PrivOp::In {
                    size: 2,
                    port: Port::Dx
                },
                len: 2
            })
        );
        assert_eq!(
            d(&[0xEE]).unwrap().op,
            PrivOp::Out {
                size: 1,
                port: Port::Dx
            }
        );
        assert_eq!(
            d(&[0x66, 0xE7, 0x80]).unwrap().op,
            PrivOp::Out {
                size: 2,
                port: Port::Imm(0x80)
            }
        );
        assert_eq!(d(&[0x3E, 0xE6, 0x80]).unwrap().len, 3);
    }

    #[test]
    fn refused_and_truncated() {
        assert_eq!(d(&[0xFA]), Err(DecodeError::Unsupported)); // cli: #GP to the guest
        assert_eq!(d(&[0xFB]), Err(DecodeError::Unsupported)); // sti
        assert_eq!(d(&[0x0F, 0x01, 0xF8]), Err(DecodeError::Unsupported)); // swapgs
        assert_eq!(d(&[0x6C]), Err(DecodeError::Unsupported)); // insb: not emulated
        assert_eq!(d(&[0x0F]), Err(DecodeError::Truncated));
        assert_eq!(d(&[0xE4]), Err(DecodeError::Truncated));
        assert_eq!(d(&[0x0F, 0x22]), Err(DecodeError::Truncated));
        assert_eq!(d(&[]), Err(DecodeError::Truncated));
        assert_eq!(d(&[0x66; 20]), Err(DecodeError::Truncated));
    }

    #[test]
    fn forced_emulation_prefix() {
        assert!(is_emulated_cpuid(&[
            0x0F, 0x0B, 0x78, 0x65, 0x6E, 0x0F, 0xA2, 0x90
        ]));
        assert!(!is_emulated_cpuid(&[0x0F, 0x0B, 0x78, 0x65, 0x6E, 0x0F]));
        assert!(!is_emulated_cpuid(&[0x0F, 0x0B, 0x90]));
    }

    #[test]
    fn io_bitmap() {
        let mut bm = [0xFFu8; 8]; // ports 0..64, all denied
        bm[1] = 0b1111_0000; // ports 8..12 allowed
        assert!(iobitmap_allows(&bm, 8, 4));
        assert!(iobitmap_allows(&bm, 10, 2));
        assert!(!iobitmap_allows(&bm, 10, 4));
        assert!(!iobitmap_allows(&bm, 7, 1));
        assert!(!iobitmap_allows(&bm, 200, 1));
        assert!(!iobitmap_allows(&[], 0, 1));
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..20)) {
            if let Ok(d) = decode(&bytes) {
                proptest::prop_assert!(usize::from(d.len) <= bytes.len());
            }
        }
    }
}
