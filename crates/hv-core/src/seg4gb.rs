//! `VMASST_TYPE_4gb_segments` (XEN-PV-ABI.md §6.10): accesses that need the
//! 4 GiB limit the guest asked for.
//!
//! [`crate::descriptor::check_descriptor`] truncates every guest segment at
//! `0xF6800000`, so a segment with a base B and a "4 GiB" limit no longer
//! reaches the offsets that wrap around to linear addresses below B — the
//! negative offsets of thread-local storage (`movl %gs:-4, %eax`). Such an
//! access raises #GP(0). With the assist enabled Oxen emulates it: the
//! faulting instruction is decoded here, [`linear_if_4gb`] decides whether a
//! 4 GiB limit would have allowed it (it wraps to below the hypervisor hole
//! through a segment whose limit was truncated), and the hypervisor performs
//! the access at that linear address through its checked guest accessor,
//! then skips the instruction. With `4gb_segments_notify` the guest also gets
//! vector 15 after each emulation.
//!
//! Xen re-executes the instruction after flipping the segment between
//! expand-up and expand-down forms; Oxen emulates the data moves instead,
//! which never changes a descriptor the guest can see. Emulated (32-bit
//! addressing, optional segment-override, LOCK and operand-size prefixes):
//! `mov r, m` (8A, 8B), `mov m, r` (88, 89), `mov` with a direct offset (A0–A3),
//! `mov m, imm` (C6 /0, C7 /0), `movzx`/`movsx` (0F B6, B7, BE, BF). Any
//! other instruction stays a #GP for the guest.

use core::fmt;

use crate::descriptor::{Descriptor, GUEST_SEGMENT_MAX_ADDR};
use crate::ptwr::{MAX_INSN_LEN, Regs};
use xen_abi::types::PAGE_SIZE;

/// A segment register, numbered as in the x86 encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegReg {
    Es = 0,
    Cs = 1,
    Ss = 2,
    Ds = 3,
    Fs = 4,
    Gs = 5,
}

/// How a load fills its destination register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extend {
    /// The loaded bytes replace the low `dst_width` bytes (8-bit registers
    /// AH..BH replace bits 8–15).
    Merge,
    /// Zero-extended to 32 bits (`movzx`).
    Zero,
    /// Sign-extended to 32 bits (`movsx`).
    Sign,
}

/// What the instruction does with the memory operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read `width` bytes into register `reg` (x86 number, for 8-bit merges
    /// 4..8 are AH..BH) as `extend` says.
    Load { reg: usize, extend: Extend },
    /// Write the low `width` bytes of `value`.
    Store { value: u32 },
}

/// A decoded memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// The segment the offset is relative to.
    pub seg: SegReg,
    /// The effective address (offset into the segment), modulo 2^32.
    pub offset: u32,
    /// Bytes accessed: 1, 2 or 4.
    pub width: u8,
    pub op: Op,
    /// Instruction length (EIP advances by it).
    pub len: u8,
}

/// Why an instruction is not emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    Truncated,
    /// An opcode outside the emulated set.
    Unsupported(u8),
    /// The address-size prefix (16-bit addressing).
    AddressSizePrefix,
    /// The operand is a register, not memory.
    RegisterOperand,
    /// Longer than an x86 instruction may be.
    TooLong,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("instruction truncated"),
            Self::Unsupported(op) => write!(f, "opcode {op:#04x} is not an emulated move"),
            Self::AddressSizePrefix => f.write_str("16-bit addressing"),
            Self::RegisterOperand => f.write_str("register operand, not memory"),
            Self::TooLong => f.write_str("longer than 15 bytes"),
        }
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        if self.pos >= MAX_INSN_LEN {
            return Err(DecodeError::TooLong);
        }
        let b = *self.bytes.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn imm(&mut self, width: u8) -> Result<u32, DecodeError> {
        let mut v = 0u32;
        for i in 0..width {
            v |= u32::from(self.byte()?) << (8 * i);
        }
        Ok(v)
    }

    /// A ModRM memory operand: (reg field, default segment, effective address).
    fn modrm(&mut self, regs: &Regs) -> Result<(usize, SegReg, u32), DecodeError> {
        let modrm = self.byte()?;
        let (mode, reg, rm) = (modrm >> 6, usize::from((modrm >> 3) & 7), modrm & 7);
        if mode == 3 {
            return Err(DecodeError::RegisterOperand);
        }
        let r = |n: u8| regs.0[usize::from(n)];
        // EBP or ESP as the base register makes SS the default segment.
        let (mut ea, mut seg) = (0u32, SegReg::Ds);
        let mut base_is_disp32 = false;
        if rm == 4 {
            let sib = self.byte()?;
            let (scale, index, base) = (sib >> 6, (sib >> 3) & 7, sib & 7);
            if index != 4 {
                ea = r(index) << scale;
            }
            if base == 5 && mode == 0 {
                base_is_disp32 = true;
            } else {
                ea = ea.wrapping_add(r(base));
                if base == 4 || base == 5 {
                    seg = SegReg::Ss;
                }
            }
        } else if rm == 5 && mode == 0 {
            base_is_disp32 = true;
        } else {
            ea = r(rm);
            if rm == 5 {
                seg = SegReg::Ss;
            }
        }
        let disp = match mode {
            1 => self.byte()? as i8 as u32,
            2 => self.imm(4)?,
            _ if base_is_disp32 => self.imm(4)?,
            _ => 0,
        };
        Ok((reg, seg, ea.wrapping_add(disp)))
    }
}

/// The value of 8-bit register `reg` (AL, CL, DL, BL, AH, CH, DH, BH).
fn reg8(regs: &Regs, reg: usize) -> u32 {
    if reg < 4 {
        regs.0[reg] & 0xFF
    } else {
        (regs.0[reg - 4] >> 8) & 0xFF
    }
}

/// Decodes the instruction at the start of `bytes` (copied from the guest's
/// EIP) with the general registers `regs`.
pub fn decode(bytes: &[u8], regs: &Regs) -> Result<Access, DecodeError> {
    let mut c = Cursor { bytes, pos: 0 };
    let mut seg_override = None;
    let mut opsize16 = false;
    let opcode = loop {
        match c.byte()? {
            0x26 => seg_override = Some(SegReg::Es),
            0x2E => seg_override = Some(SegReg::Cs),
            0x36 => seg_override = Some(SegReg::Ss),
            0x3E => seg_override = Some(SegReg::Ds),
            0x64 => seg_override = Some(SegReg::Fs),
            0x65 => seg_override = Some(SegReg::Gs),
            0x66 => opsize16 = true,
            0x67 => return Err(DecodeError::AddressSizePrefix),
            0xF0 => {}
            b => break b,
        }
    };
    let wide = if opsize16 { 2 } else { 4 };
    let (seg, offset, width, op) = match opcode {
        0x88..=0x8B => {
            let (reg, seg, ea) = c.modrm(regs)?;
            let width = if opcode & 1 == 0 { 1 } else { wide };
            let op = if opcode & 2 != 0 {
                Op::Load {
                    reg,
                    extend: Extend::Merge,
                }
            } else {
                Op::Store {
                    value: if width == 1 {
                        reg8(regs, reg)
                    } else {
                        regs.0[reg]
                    },
                }
            };
            (seg, ea, width, op)
        }
        0xA0..=0xA3 => {
            let ea = c.imm(4)?;
            let width = if opcode & 1 == 0 { 1 } else { wide };
            let op = if opcode & 2 == 0 {
                Op::Load {
                    reg: 0,
                    extend: Extend::Merge,
                }
            } else {
                Op::Store { value: regs.0[0] }
            };
            (SegReg::Ds, ea, width, op)
        }
        0xC6 | 0xC7 => {
            let (reg, seg, ea) = c.modrm(regs)?;
            if reg != 0 {
                return Err(DecodeError::Unsupported(opcode));
            }
            let width = if opcode == 0xC6 { 1 } else { wide };
            let value = c.imm(width)?;
            (seg, ea, width, Op::Store { value })
        }
        0x0F => {
            let op2 = c.byte()?;
            let extend = match op2 {
                0xB6 | 0xB7 => Extend::Zero,
                0xBE | 0xBF => Extend::Sign,
                _ => return Err(DecodeError::Unsupported(op2)),
            };
            let (reg, seg, ea) = c.modrm(regs)?;
            let width = if op2 & 1 == 0 { 1 } else { 2 };
            (seg, ea, width, Op::Load { reg, extend })
        }
        other => return Err(DecodeError::Unsupported(other)),
    };
    Ok(Access {
        seg: seg_override.unwrap_or(seg),
        offset,
        width,
        op,
        len: c.pos as u8,
    })
}

/// The linear address of an access of `width` bytes at `offset` through
/// `desc`, if it is one the assist emulates: `desc` is a present, expand-up,
/// page-granular code or data segment whose limit was truncated at the
/// hypervisor hole (it ends in the last page below `0xF6800000`, where
/// truncating a page-granular limit leaves a segment of any base), writable for a store
/// (readable for a load from a code segment), the offset lies beyond the
/// limit, and with a 4 GiB limit the access would wrap around to linear
/// addresses wholly below the hole. Anything else is a genuine #GP.
pub fn linear_if_4gb(desc: Descriptor, offset: u32, width: u8, write: bool) -> Option<u32> {
    const TYPE_WRITABLE_OR_READABLE: u8 = 0x2;
    let ty = desc.type_field();
    let usable = desc.present()
        && !desc.is_system()
        && !desc.is_expand_down()
        && desc.granular()
        && desc.segment_end() > u64::from(GUEST_SEGMENT_MAX_ADDR) - PAGE_SIZE as u64
        && desc.segment_end() <= u64::from(GUEST_SEGMENT_MAX_ADDR)
        && if desc.is_code() {
            !write && ty & TYPE_WRITABLE_OR_READABLE != 0
        } else {
            !write || ty & TYPE_WRITABLE_OR_READABLE != 0
        };
    if !usable || u64::from(offset) < desc.limit_bytes() {
        return None;
    }
    let linear = u64::from(desc.base()) + u64::from(offset);
    // Only a wrap past 4 GiB reaches memory the truncated limit hid.
    let linear = linear.checked_sub(1 << 32)?;
    (linear + u64::from(width) <= u64::from(desc.base()).min(u64::from(GUEST_SEGMENT_MAX_ADDR)))
        .then_some(linear as u32)
}

/// Applies a load of `width` bytes with value `loaded` to register `reg` of
/// `regs`.
pub fn apply_load(regs: &mut Regs, reg: usize, width: u8, extend: Extend, loaded: u32) {
    let mask = if width == 4 {
        u32::MAX
    } else {
        (1u32 << (8 * u32::from(width))) - 1
    };
    let v = loaded & mask;
    match extend {
        Extend::Zero => regs.0[reg] = v,
        Extend::Sign => {
            let shift = 32 - 8 * u32::from(width);
            regs.0[reg] = (((v << shift) as i32) >> shift) as u32;
        }
        Extend::Merge if width == 1 && reg >= 4 => {
            let r = &mut regs.0[reg - 4];
            *r = (*r & !0xFF00) | (v << 8);
        }
        Extend::Merge => {
            let r = &mut regs.0[reg];
            *r = (*r & !mask) | v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs() -> Regs {
        // eax, ecx, edx, ebx, esp, ebp, esi, edi
        Regs([
            0x1111_2233,
            0x0000_0010,
            0x8000_0000,
            0x0000_0100,
            0xC000_F000,
            0xC000_E000,
            0x0000_0004,
            0xFFFF_FFF0,
        ])
    }

    /// A data segment at `base` with a 4 GiB limit, as check_descriptor
    /// leaves it (truncated at the hole).
    fn truncated(base: u32) -> Descriptor {
        let four_gib = Descriptor::new(
            (base << 16) | 0xFFFF,
            (base & 0xFF00_0000) | 0x000F_0000 | 0x00C0_F200 | ((base >> 16) & 0xFF),
        );
        let d = crate::descriptor::check_descriptor(four_gib).unwrap();
        assert_ne!(d, four_gib, "the limit was truncated");
        d
    }

    #[test]
    fn tls_negative_offset_moffs_load() {
        // movl %gs:0xfffffffc, %eax
        let a = decode(&[0x65, 0xA1, 0xFC, 0xFF, 0xFF, 0xFF], &regs()).unwrap();
        assert_eq!(
            a,
            Access {
                seg: SegReg::Gs,
                offset: 0xFFFF_FFFC,
                width: 4,
                op: Op::Load {
                    reg: 0,
                    extend: Extend::Merge
                },
                len: 6
            }
        );
        let d = truncated(0x0804_0000);
        assert_eq!(linear_if_4gb(d, a.offset, 4, false), Some(0x0803_FFFC));
    }

    #[test]
    fn modrm_forms_and_default_segments() {
        let r = regs();
        // mov -8(%ebx), %ecx  (8B 4B F8)
        let a = decode(&[0x65, 0x8B, 0x4B, 0xF8], &r).unwrap();
        assert_eq!((a.seg, a.offset, a.len), (SegReg::Gs, 0x100 - 8, 4));
        assert_eq!(
            a.op,
            Op::Load {
                reg: 1,
                extend: Extend::Merge
            }
        );
        // mov %edx, 4(%ebp) (89 55 04): SS by default
        let a = decode(&[0x89, 0x55, 0x04], &r).unwrap();
        assert_eq!((a.seg, a.offset), (SegReg::Ss, 0xC000_E004));
        assert_eq!(a.op, Op::Store { value: 0x8000_0000 });
        // mov (%esi,%ecx,4), %eax with SIB (8B 04 8E): DS
        let a = decode(&[0x8B, 0x04, 0x8E], &r).unwrap();
        assert_eq!((a.seg, a.offset, a.len), (SegReg::Ds, 0x4 + 0x10 * 4, 3));
        // mov 0x10(%esp), %eax (8B 44 24 10): SS
        let a = decode(&[0x8B, 0x44, 0x24, 0x10], &r).unwrap();
        assert_eq!((a.seg, a.offset), (SegReg::Ss, 0xC000_F010));
        // mov disp32(,%ecx,2), %eax (8B 04 4D 00 10 00 00): no base
        let a = decode(&[0x8B, 0x04, 0x4D, 0x00, 0x10, 0x00, 0x00], &r).unwrap();
        assert_eq!((a.seg, a.offset, a.len), (SegReg::Ds, 0x1000 + 0x20, 7));
        // mov disp32, %eax (8B 05 ...)
        let a = decode(&[0x64, 0x8B, 0x05, 0xF0, 0xFF, 0xFF, 0xFF], &r).unwrap();
        assert_eq!((a.seg, a.offset, a.len), (SegReg::Fs, 0xFFFF_FFF0, 7));
        // mov -0x20(%edi), %eax wraps modulo 2^32 (8B 47 E0)
        let a = decode(&[0x8B, 0x47, 0xE0], &r).unwrap();
        assert_eq!(a.offset, 0xFFFF_FFD0);
    }

    #[test]
    fn widths_immediates_and_extensions() {
        let r = regs();
        // movb %ah, (%ebx) (88 23): AH = 0x22
        let a = decode(&[0x88, 0x23], &r).unwrap();
        assert_eq!((a.width, a.op), (1, Op::Store { value: 0x22 }));
        // movw %ax, (%ebx) (66 89 03)
        let a = decode(&[0x66, 0x89, 0x03], &r).unwrap();
        assert_eq!((a.width, a.len), (2, 3));
        // movl $0x12345678, %gs:-4 (65 C7 05 FC FF FF FF 78 56 34 12)
        let a = decode(
            &[
                0x65, 0xC7, 0x05, 0xFC, 0xFF, 0xFF, 0xFF, 0x78, 0x56, 0x34, 0x12,
            ],
            &r,
        )
        .unwrap();
        assert_eq!(
            (a.offset, a.width, a.op, a.len),
            (0xFFFF_FFFC, 4, Op::Store { value: 0x1234_5678 }, 11)
        );
        // movb $0x7f, (%ebx) (C6 03 7F)
        let a = decode(&[0xC6, 0x03, 0x7F], &r).unwrap();
        assert_eq!((a.width, a.op, a.len), (1, Op::Store { value: 0x7F }, 3));
        // movw $0xbeef, (%ebx) (66 C7 03 EF BE)
        let a = decode(&[0x66, 0xC7, 0x03, 0xEF, 0xBE], &r).unwrap();
        assert_eq!((a.width, a.op, a.len), (2, Op::Store { value: 0xBEEF }, 5));
        // movzbl (%ebx), %ecx; movswl (%ebx), %ecx
        let a = decode(&[0x0F, 0xB6, 0x0B], &r).unwrap();
        assert_eq!(
            (a.width, a.op),
            (
                1,
                Op::Load {
                    reg: 1,
                    extend: Extend::Zero
                }
            )
        );
        let a = decode(&[0x0F, 0xBF, 0x0B], &r).unwrap();
        assert_eq!(
            (a.width, a.op),
            (
                2,
                Op::Load {
                    reg: 1,
                    extend: Extend::Sign
                }
            )
        );
    }

    #[test]
    fn refused_instructions() {
        let r = regs();
        assert_eq!(
            decode(&[0x01, 0x03], &r),
            Err(DecodeError::Unsupported(0x01))
        );
        assert_eq!(decode(&[0x8B, 0xC1], &r), Err(DecodeError::RegisterOperand));
        assert_eq!(
            decode(&[0x67, 0x8B, 0x07], &r),
            Err(DecodeError::AddressSizePrefix)
        );
        assert_eq!(decode(&[0x65, 0x8B], &r), Err(DecodeError::Truncated));
        assert_eq!(
            decode(&[0xC7, 0x0B, 0, 0, 0, 0], &r),
            Err(DecodeError::Unsupported(0xC7))
        );
        assert_eq!(
            decode(&[0x0F, 0xB1, 0x0B], &r),
            Err(DecodeError::Unsupported(0xB1))
        );
        assert_eq!(decode(&[0x65; 20], &r), Err(DecodeError::TooLong));
        assert_eq!(decode(&[], &r), Err(DecodeError::Truncated));
    }

    #[test]
    fn only_wrapping_accesses_through_truncated_segments() {
        let d = truncated(0x0804_0000);
        // Within the limit: the CPU would not have faulted; not ours.
        assert_eq!(linear_if_4gb(d, 0x10, 4, false), None);
        // Beyond the limit without wrapping: the hypervisor hole itself.
        assert_eq!(linear_if_4gb(d, 0xEF00_0000, 4, true), None);
        // Wrapping: below the base.
        assert_eq!(linear_if_4gb(d, 0xFFFF_FFF0, 4, true), Some(0x0803_FFF0));
        // An access straddling the base is refused (its tail would be inside
        // the segment, its head below: not a 4 GiB-limit access pattern we
        // split).
        assert_eq!(linear_if_4gb(d, 0xFFFF_FFFE, 4, false), None);
        // A TLS base is rarely page-aligned: truncation ends its segment
        // somewhere in the last page below the hole.
        let tls = truncated(0x0804_1234);
        assert!(tls.segment_end() < u64::from(GUEST_SEGMENT_MAX_ADDR));
        assert_eq!(linear_if_4gb(tls, 0xFFFF_FFFC, 4, false), Some(0x0804_1230));
        // A segment at base 0 never wraps below its base.
        assert_eq!(linear_if_4gb(truncated(0), 0xFFFF_FFFC, 4, false), None);
        // A segment whose limit was not truncated: a genuine #GP.
        let small = Descriptor::new(0x0000_00FF, 0x00C0_F200);
        assert_eq!(linear_if_4gb(small, 0xFFFF_FFFC, 4, false), None);
        // Not present, read-only data on a store, expand-down.
        let np = Descriptor::new(d.lo, d.hi & !(1 << 15));
        assert_eq!(linear_if_4gb(np, 0xFFFF_FFFC, 4, false), None);
        let ro = Descriptor::new(d.lo, d.hi & !(0x2 << 8));
        assert_eq!(linear_if_4gb(ro, 0xFFFF_FFFC, 4, true), None);
        assert_eq!(linear_if_4gb(ro, 0xFFFF_FFFC, 4, false), Some(0x0803_FFFC));
        let down = Descriptor::new(d.lo, d.hi | (0x4 << 8));
        assert_eq!(linear_if_4gb(down, 0xFFFF_FFFC, 4, false), None);
    }

    #[test]
    fn loads_fill_registers() {
        let mut r = regs();
        apply_load(&mut r, 0, 4, Extend::Merge, 0xDEAD_BEEF);
        assert_eq!(r.0[0], 0xDEAD_BEEF);
        apply_load(&mut r, 1, 2, Extend::Merge, 0xFFFF_ABCD);
        assert_eq!(r.0[1], 0x0000_ABCD);
        apply_load(&mut r, 4, 1, Extend::Merge, 0x99); // AH
        assert_eq!(r.0[0], 0xDEAD_99EF);
        apply_load(&mut r, 2, 1, Extend::Merge, 0x77); // DL
        assert_eq!(r.0[2], 0x8000_0077);
        apply_load(&mut r, 3, 1, Extend::Sign, 0x80);
        assert_eq!(r.0[3], 0xFFFF_FF80);
        apply_load(&mut r, 3, 2, Extend::Zero, 0x8001);
        assert_eq!(r.0[3], 0x0000_8001);
    }
}
