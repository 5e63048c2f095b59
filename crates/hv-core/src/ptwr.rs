//! Decoding the guest instruction behind a write to a read-only L1 page table,
//! for `VMASST_TYPE_writable_pagetables` (XEN-PV-ABI.md §6.10).
//!
//! With that assist a guest kernel writes L1 entries with ordinary stores; the
//! L1 is mapped read-only, so the store faults, and Oxen emulates it: it decodes
//! the faulting instruction here, validates the resulting entry with the MMU
//! engine, and skips the instruction. Only the stores a kernel uses for page
//! table entries are accepted; anything else stays a page fault for the guest.
//!
//! Accepted (with optional LOCK and segment-override prefixes, 32-bit operands):
//! `mov r/m32, r32` (89), `mov r/m32, imm32` (C7 /0), `xchg r/m32, r32` (87),
//! `cmpxchg r/m32, r32` (0F B1), `cmpxchg8b m64` (0F C7 /1). The operand must
//! be in memory (the faulting address, CR2, is where it goes).

use core::fmt;

/// General registers in x86 encoding order (eax, ecx, edx, ebx, esp, ebp, esi, edi).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs(pub [u32; 8]);

/// Register numbers of the x86 encoding.
pub const EAX: usize = 0;
pub const ECX: usize = 1;
pub const EDX: usize = 2;
pub const EBX: usize = 3;

/// What the faulting instruction does to the memory operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtWrite {
    /// Store `value` (`width` bytes: 4).
    Store { width: u8, value: u64 },
    /// Store `value` (4 bytes) and load the old contents into register `reg`.
    Xchg { reg: usize, value: u32 },
    /// Compare `width` bytes (4 or 8) with `expected`; if equal store `new`
    /// and set ZF, else load the old contents into EAX (EDX:EAX) and clear ZF.
    CmpXchg { width: u8, expected: u64, new: u64 },
}

/// A decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub write: PtWrite,
    /// Instruction length in bytes (EIP advances by this much).
    pub len: u8,
}

/// Why an instruction is not emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Ran out of bytes (fewer than the instruction needs).
    Truncated,
    /// An opcode that is not a page-table store.
    Unsupported(u8),
    /// The operand-size or address-size prefix (16-bit forms).
    SizePrefix,
    /// The operand is a register, not memory.
    RegisterOperand,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("instruction truncated"),
            Self::Unsupported(op) => {
                write!(f, "opcode {op:#04x} is not an emulated page-table write")
            }
            Self::SizePrefix => f.write_str("16-bit operand or address size"),
            Self::RegisterOperand => f.write_str("register operand, not memory"),
        }
    }
}

/// The longest x86 instruction.
pub const MAX_INSN_LEN: usize = 15;

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.bytes.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut v = [0u8; 4];
        for b in &mut v {
            *b = self.byte()?;
        }
        Ok(u32::from_le_bytes(v))
    }

    fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        if self.pos + n > self.bytes.len() {
            return Err(DecodeError::Truncated);
        }
        self.pos += n;
        Ok(())
    }

    /// Consumes a ModRM byte with its SIB and displacement; returns the reg field.
    fn modrm_memory(&mut self) -> Result<usize, DecodeError> {
        let modrm = self.byte()?;
        let mode = modrm >> 6;
        let reg = usize::from((modrm >> 3) & 7);
        let rm = modrm & 7;
        if mode == 3 {
            return Err(DecodeError::RegisterOperand);
        }
        let mut disp = match mode {
            1 => 1,
            2 => 4,
            _ => 0,
        };
        if rm == 4 {
            let sib = self.byte()?;
            if mode == 0 && sib & 7 == 5 {
                disp = 4;
            }
        } else if mode == 0 && rm == 5 {
            disp = 4;
        }
        self.skip(disp)?;
        Ok(reg)
    }
}

/// Decodes the instruction at the start of `bytes` (copied from the guest's EIP).
pub fn decode(bytes: &[u8], regs: &Regs) -> Result<Decoded, DecodeError> {
    let bytes = &bytes[..bytes.len().min(MAX_INSN_LEN)];
    let mut c = Cursor { bytes, pos: 0 };
    let mut op = c.byte()?;
    loop {
        match op {
            // LOCK, and the segment overrides (all guest segments are flat).
            0xF0 | 0x26 | 0x2E | 0x36 | 0x3E | 0x64 | 0x65 => op = c.byte()?,
            0x66 | 0x67 => return Err(DecodeError::SizePrefix),
            _ => break,
        }
    }
    let write = match op {
        0x89 => {
            let reg = c.modrm_memory()?;
            PtWrite::Store {
                width: 4,
                value: u64::from(regs.0[reg]),
            }
        }
        0xC7 => {
            let sub = c.modrm_memory()?;
            if sub != 0 {
                return Err(DecodeError::Unsupported(op));
            }
            PtWrite::Store {
                width: 4,
                value: u64::from(c.u32()?),
            }
        }
        0x87 => {
            let reg = c.modrm_memory()?;
            PtWrite::Xchg {
                reg,
                value: regs.0[reg],
            }
        }
        0x0F => match c.byte()? {
            0xB1 => {
                let reg = c.modrm_memory()?;
                PtWrite::CmpXchg {
                    width: 4,
                    expected: u64::from(regs.0[EAX]),
                    new: u64::from(regs.0[reg]),
                }
            }
            0xC7 => {
                if c.modrm_memory()? != 1 {
                    return Err(DecodeError::Unsupported(0xC7));
                }
                let pair =
                    |hi: usize, lo: usize| (u64::from(regs.0[hi]) << 32) | u64::from(regs.0[lo]);
                PtWrite::CmpXchg {
                    width: 8,
                    expected: pair(EDX, EAX),
                    new: pair(ECX, EBX),
                }
            }
            other => return Err(DecodeError::Unsupported(other)),
        },
        other => return Err(DecodeError::Unsupported(other)),
    };
    Ok(Decoded {
        write,
        len: c.pos as u8,
    })
}

/// The 64-bit entry that results from writing `width` bytes of `value` at byte
/// `offset` (0 or 4) of the entry `old`; `None` for a write that straddles or
/// misses the entry's halves.
pub fn merge_write(old: u64, offset: u32, width: u8, value: u64) -> Option<u64> {
    match (width, offset) {
        (8, 0) => Some(value),
        (4, 0) => Some((old & 0xFFFF_FFFF_0000_0000) | (value & 0xFFFF_FFFF)),
        (4, 4) => Some((old & 0xFFFF_FFFF) | (value << 32)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs() -> Regs {
        Regs([
            0x1111_1111,
            0x2222_2222,
            0x3333_3333,
            0x4444_4444,
            0xC000_0F00,
            0x6666_6666,
            0x7777_7777,
            0x8888_8888,
        ])
    }

    #[test]
    fn mov_register_to_memory() {
        // mov %edx,(%eax)
        assert_eq!(
            decode(&[0x89, 0x10, 0x90], &regs()),
            Ok(Decoded {
                write: PtWrite::Store {
                    width: 4,
                    value: 0x3333_3333
                },
                len: 2
            })
        );
        // mov %ecx,0x4(%eax) (disp8)
        assert_eq!(decode(&[0x89, 0x48, 0x04], &regs()).unwrap().len, 3);
        // mov %ebx,0x12345678(,%esi,8) (SIB, no base, disp32)
        let d = decode(&[0x89, 0x1C, 0xF5, 0x78, 0x56, 0x34, 0x12], &regs()).unwrap();
        assert_eq!(
            d,
            Decoded {
                write: PtWrite::Store {
                    width: 4,
                    value: 0x4444_4444
                },
                len: 7
            }
        );
        // mov %eax,0x100(%esp) (SIB + disp32)
        assert_eq!(
            decode(&[0x89, 0x84, 0x24, 0, 1, 0, 0], &regs())
                .unwrap()
                .len,
            7
        );
        // mov %eax,0xc0001000 (absolute disp32)
        assert_eq!(
            decode(&[0x89, 0x05, 0, 0x10, 0, 0xC0], &regs())
                .unwrap()
                .len,
            6
        );
    }

    #[test]
    fn mov_immediate_and_prefixes() {
        // lock? no: mov $0x1067,(%edi) with a %ds override
        let d = decode(&[0x3E, 0xC7, 0x07, 0x67, 0x10, 0, 0], &regs()).unwrap();
        assert_eq!(
            d,
            Decoded {
                write: PtWrite::Store {
                    width: 4,
                    value: 0x1067
                },
                len: 7
            }
        );
        // C7 /1 is not a mov
        assert_eq!(
            decode(&[0xC7, 0x0F, 0, 0, 0, 0], &regs()),
            Err(DecodeError::Unsupported(0xC7))
        );
    }

    #[test]
    fn xchg_and_cmpxchg() {
        // xchg %ecx,(%edx)
        assert_eq!(
            decode(&[0x87, 0x0A], &regs()).unwrap().write,
            PtWrite::Xchg {
                reg: ECX,
                value: 0x2222_2222
            }
        );
        // lock cmpxchg %ebx,(%ecx)
        assert_eq!(
            decode(&[0xF0, 0x0F, 0xB1, 0x19], &regs()),
            Ok(Decoded {
                write: PtWrite::CmpXchg {
                    width: 4,
                    expected: 0x1111_1111,
                    new: 0x4444_4444
                },
                len: 4
            })
        );
        // lock cmpxchg8b (%esi)
        assert_eq!(
            decode(&[0xF0, 0x0F, 0xC7, 0x0E], &regs()),
            Ok(Decoded {
                write: PtWrite::CmpXchg {
                    width: 8,
                    expected: 0x3333_3333_1111_1111,
                    new: 0x2222_2222_4444_4444
                },
                len: 4
            })
        );
        // 0F C7 /0 is not cmpxchg8b
        assert_eq!(
            decode(&[0x0F, 0xC7, 0x06], &regs()),
            Err(DecodeError::Unsupported(0xC7))
        );
    }

    #[test]
    fn rejected_forms() {
        assert_eq!(
            decode(&[0x89, 0xC8], &regs()),
            Err(DecodeError::RegisterOperand)
        );
        assert_eq!(
            decode(&[0x66, 0x89, 0x08], &regs()),
            Err(DecodeError::SizePrefix)
        );
        assert_eq!(
            decode(&[0x67, 0x89, 0x08], &regs()),
            Err(DecodeError::SizePrefix)
        );
        assert_eq!(
            decode(&[0x88, 0x08], &regs()),
            Err(DecodeError::Unsupported(0x88))
        );
        assert_eq!(
            decode(&[0x0F, 0x29, 0x08], &regs()),
            Err(DecodeError::Unsupported(0x29))
        );
        assert_eq!(decode(&[0x89], &regs()), Err(DecodeError::Truncated));
        assert_eq!(
            decode(&[0xC7, 0x07, 1, 2], &regs()),
            Err(DecodeError::Truncated)
        );
        assert_eq!(decode(&[], &regs()), Err(DecodeError::Truncated));
        assert_eq!(decode(&[0xF0; 20], &regs()), Err(DecodeError::Truncated));
    }

    #[test]
    fn merging_halves_of_a_pae_entry() {
        let old = 0x0000_0001_2345_6067;
        assert_eq!(
            merge_write(old, 0, 4, 0xAAAA_A063),
            Some(0x0000_0001_AAAA_A063)
        );
        assert_eq!(merge_write(old, 4, 4, 0x2), Some(0x0000_0002_2345_6067));
        assert_eq!(merge_write(old, 0, 8, 0x5), Some(5));
        assert_eq!(merge_write(old, 4, 8, 0x5), None);
        assert_eq!(merge_write(old, 2, 4, 0x5), None);
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics_and_stays_in_bounds(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..20)) {
            if let Ok(d) = decode(&bytes, &regs()) {
                proptest::prop_assert!(usize::from(d.len) <= bytes.len().min(MAX_INSN_LEN));
            }
        }
    }
}
