//! A vcpu's virtual IDT and callbacks: `set_trap_table`, `set_callbacks`,
//! `callback_op`, the NMI callback, and the direct `int $0x80` gate
//! (XEN-PV-ABI.md §3.1, §6.1, §6.3, §18).
//!
//! Selector rule, as Xen: every handler code selector the guest supplies has
//! its RPL raised to 1 if it was 0 (`fixup_guest_code_selector`) and is stored
//! otherwise unchecked. Xen does not refuse a selector that names a hypervisor
//! descriptor here: a bounce to it loads CS through `iret`, where the CPU
//! checks the descriptor (DPL must equal the RPL ≥ 1, so Oxen's ring-0
//! segments fault) and the domain gets its failsafe callback or crashes. The
//! only place where the RPL does not protect is a gate, whose target RPL the
//! CPU ignores: the direct `int $0x80` gate is installed only when its
//! selector passes [`guest_gate_selector_okay`] (guest GDT/LDT or
//! `FLAT_KERNEL_CS`).

use xen_abi::errno::Errno;
use xen_abi::selectors::FLAT_KERNEL_CS;
use xen_abi::traps::{
    CALLBACKF_MASK_EVENTS, CALLBACKTYPE_EVENT, CALLBACKTYPE_FAILSAFE, CALLBACKTYPE_NMI,
    CALLBACKTYPE_SYSCALL32, CALLBACKTYPE_SYSENTER, CallbackRegister, CallbackUnregister,
    NR_VECTORS, TI_DPL_MASK, TI_IF_FLAG, TRAP_INT80_VECTOR, TrapInfo,
};

use crate::bounce::{Delivery, Handler};
use crate::descriptor::{fixup_guest_selector, guest_gate_selector_okay};

/// The NMI vector; the NMI callback lives in its virtual IDT slot.
pub const NMI_VECTOR: u8 = 2;

/// IDT gate bits for the direct `int $0x80` gate: present, 32-bit trap gate.
const GATE_PRESENT_TRAP32: u32 = 0x8F00;
const GATE_DPL_SHIFT: u32 = 13;

/// One virtual IDT slot. Empty = `cs` 0 and `address` 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapEntry {
    /// Handler code selector, RPL ≥ 1 unless the slot is empty.
    pub cs: u16,
    /// Handler EIP.
    pub address: u32,
    /// Lowest privilege allowed to raise the vector with `int n` (0–3).
    pub dpl: u8,
    /// Set `evtchn_upcall_mask` on entry (interrupt-gate semantics).
    pub mask_events: bool,
}

impl TrapEntry {
    /// The empty slot.
    pub const EMPTY: Self = Self {
        cs: 0,
        address: 0,
        dpl: 0,
        mask_events: false,
    };

    /// A slot from a guest's `trap_info`, with the CS RPL raised to 1.
    pub const fn from_trap_info(ti: &TrapInfo) -> Self {
        Self {
            cs: fixup_guest_selector(ti.cs),
            address: ti.address,
            dpl: ti.dpl(),
            mask_events: ti.masks_events(),
        }
    }

    /// The slot as a `trap_info` for `vector` (for `vcpu_guest_context`).
    pub const fn to_trap_info(&self, vector: u8) -> TrapInfo {
        TrapInfo {
            vector,
            flags: (self.dpl & TI_DPL_MASK) | if self.mask_events { TI_IF_FLAG } else { 0 },
            cs: self.cs,
            address: self.address,
        }
    }

    /// Whether nothing is registered.
    pub const fn is_empty(&self) -> bool {
        self.cs == 0 && self.address == 0
    }

    /// The entry point, for [`crate::bounce::bounce`]. A null selector there
    /// (an empty slot) crashes the domain.
    pub const fn handler(&self) -> Handler {
        Handler {
            cs: self.cs,
            eip: self.address,
        }
    }

    /// The delivery of this vector as an exception, with or without an error
    /// code.
    pub const fn delivery(&self, error_code: Option<u32>) -> Delivery {
        Delivery::Exception {
            error_code,
            mask_events: self.mask_events,
        }
    }
}

/// What one `set_trap_table` call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrapTableProgress {
    /// Entries written.
    pub applied: usize,
    /// The terminator (an entry with address 0) was reached. `false`: the
    /// source ran out first (the caller stopped early, e.g. to preempt with a
    /// continuation that resumes at entry `applied`).
    pub terminated: bool,
}

/// A vcpu's virtual IDT (256 slots).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualIdt {
    entries: [TrapEntry; NR_VECTORS],
}

impl Default for VirtualIdt {
    fn default() -> Self {
        Self::new()
    }
}

impl VirtualIdt {
    /// An empty table (as for a new vcpu).
    pub const fn new() -> Self {
        Self {
            entries: [TrapEntry::EMPTY; NR_VECTORS],
        }
    }

    /// `set_trap_table(NULL)`: empties every slot.
    pub fn clear(&mut self) {
        self.entries = [TrapEntry::EMPTY; NR_VECTORS];
    }

    /// Slot `vector`.
    pub fn entry(&self, vector: u8) -> TrapEntry {
        self.entries[usize::from(vector)]
    }

    /// Writes one `trap_info` into its vector's slot (RPL raised), whatever its
    /// address (also 0: only [`Self::set_trap_table`] treats 0 as the end).
    pub fn set(&mut self, ti: &TrapInfo) {
        self.entries[usize::from(ti.vector)] = TrapEntry::from_trap_info(ti);
    }

    /// `set_trap_table(traps)` with a non-NULL pointer: applies the guest's
    /// entries in order until one with address 0, each overwriting its
    /// vector's slot; other slots keep their values. `traps` yields each entry
    /// as copied from the guest (one at a time, so a bad pointer after the
    /// terminator is never read); a copy error is returned after the entries
    /// before it were applied, as in Xen. No entry is ever refused.
    pub fn set_trap_table<I>(&mut self, traps: I) -> Result<TrapTableProgress, Errno>
    where
        I: IntoIterator<Item = Result<TrapInfo, Errno>>,
    {
        let mut applied = 0;
        for ti in traps {
            let ti = ti?;
            if ti.is_terminator() {
                return Ok(TrapTableProgress {
                    applied,
                    terminated: true,
                });
            }
            self.set(&ti);
            applied += 1;
        }
        Ok(TrapTableProgress {
            applied,
            terminated: false,
        })
    }

    /// Whether `int n` executed at privilege `cpl` (the RPL of the interrupted
    /// CS) may raise `vector` (Xen's `permit_softint`): the slot's DPL ≥ CPL.
    /// Oxen re-delivers a permitted `int n` (arriving as #GP with error code
    /// `vector << 3 | 2`) as `vector` with EIP advanced past the 2-byte
    /// instruction and *no* error code; otherwise the #GP itself is delivered.
    pub fn softint_permitted(&self, vector: u8, cpl: u8) -> bool {
        self.entry(vector).dpl >= cpl
    }

    /// The handler `cs:eip` for a direct IDT gate at vector 0x80, when slot
    /// 0x80 qualifies: events not masked on entry (flag bit 2 clear: a gate
    /// cannot set the upcall mask), a non-null selector that passes
    /// [`guest_gate_selector_okay`], and a handler address. Otherwise `int
    /// $0x80` must go through Oxen like any other software interrupt.
    pub fn direct_int80(&self) -> Option<(u16, u32)> {
        let e = self.entry(TRAP_INT80_VECTOR);
        let usable =
            !e.mask_events && e.cs & !3 != 0 && e.address != 0 && guest_gate_selector_okay(e.cs);
        usable.then_some((e.cs, e.address))
    }

    /// The real IDT descriptor for [`Self::direct_int80`]: a present 32-bit
    /// trap gate to the handler with the slot's DPL (3 for `int $0x80` from
    /// user space), as a 64-bit value (low word first in memory).
    pub fn direct_int80_gate(&self) -> Option<u64> {
        let (cs, address) = self.direct_int80()?;
        let dpl = u32::from(self.entry(TRAP_INT80_VECTOR).dpl & TI_DPL_MASK);
        let lo = u32::from(cs) << 16 | (address & 0xFFFF);
        let hi = (address & 0xFFFF_0000) | GATE_PRESENT_TRAP32 | dpl << GATE_DPL_SHIFT;
        Some(u64::from(hi) << 32 | u64::from(lo))
    }

    /// Registers the NMI callback as Xen does: slot 2 becomes
    /// `FLAT_KERNEL_CS:address` with events masked and DPL 0.
    pub fn set_nmi_callback(&mut self, address: u32) {
        self.entries[usize::from(NMI_VECTOR)] = TrapEntry {
            cs: FLAT_KERNEL_CS,
            address,
            dpl: 0,
            mask_events: true,
        };
    }

    /// Unregisters the NMI callback (empties slot 2).
    pub fn clear_nmi_callback(&mut self) {
        self.entries[usize::from(NMI_VECTOR)] = TrapEntry::EMPTY;
    }

    /// The table from a `vcpu_guest_context.trap_ctxt` (domctl
    /// `setvcpucontext`, the initial vcpu state): slot `i` from element `i`,
    /// RPL raised; the elements' `vector` fields are ignored. An element with
    /// selector 0 and address 0 stays an empty slot (Xen would store selector
    /// 1 there, which is just as null).
    pub fn from_trap_ctxt(ctxt: &[TrapInfo; NR_VECTORS]) -> Self {
        let mut idt = Self::new();
        for (slot, ti) in idt.entries.iter_mut().zip(ctxt.iter()) {
            if ti.cs != 0 || ti.address != 0 {
                *slot = TrapEntry::from_trap_info(ti);
            }
        }
        idt
    }

    /// The table as a `vcpu_guest_context.trap_ctxt` (getvcpucontext).
    pub fn to_trap_ctxt(&self) -> [TrapInfo; NR_VECTORS] {
        let mut out = [TrapInfo::default(); NR_VECTORS];
        for (i, (ti, e)) in out.iter_mut().zip(self.entries.iter()).enumerate() {
            *ti = e.to_trap_info(i as u8);
        }
        out
    }
}

/// A vcpu's callbacks (§6.3). `syscall32` and `sysenter` are recorded for
/// compatibility (§18: guests register them and treat an error as fatal) but
/// Oxen has no SYSCALL/SYSENTER path that uses them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Callbacks {
    /// The event upcall (always masks events).
    pub event: Handler,
    /// The failsafe callback.
    pub failsafe: Handler,
    /// `VGCF_failsafe_disables_events`.
    pub failsafe_masks_events: bool,
    pub syscall32: Handler,
    pub syscall32_masks_events: bool,
    pub sysenter: Handler,
    pub sysenter_masks_events: bool,
}

impl Callbacks {
    /// `set_callbacks(event_selector, event_address, failsafe_selector,
    /// failsafe_address)` (#4): both selectors get RPL ≥ 1; the failsafe
    /// callback no longer masks events (flags 0, as Xen). Always succeeds.
    pub fn set_callbacks(
        &mut self,
        event_selector: u32,
        event_address: u32,
        failsafe_selector: u32,
        failsafe_address: u32,
    ) {
        self.event = callback_handler(event_selector, event_address);
        self.failsafe = callback_handler(failsafe_selector, failsafe_address);
        self.failsafe_masks_events = false;
    }

    /// `callback_op(CALLBACKOP_register)`: event, failsafe, syscall32,
    /// sysenter (stored, `CALLBACKF_mask_events` honoured where it means
    /// something) and NMI (slot 2 of `idt`, see
    /// [`VirtualIdt::set_nmi_callback`]); any other type is `ENOSYS`
    /// (including `sysenter_deprecated` and the 64-bit `syscall`).
    pub fn register(&mut self, idt: &mut VirtualIdt, reg: &CallbackRegister) -> Result<(), Errno> {
        let h = callback_handler(reg.address.cs, reg.address.eip);
        let mask = reg.flags & CALLBACKF_MASK_EVENTS != 0;
        match reg.type_ {
            CALLBACKTYPE_EVENT => self.event = h,
            CALLBACKTYPE_FAILSAFE => {
                self.failsafe = h;
                self.failsafe_masks_events = mask;
            }
            CALLBACKTYPE_SYSCALL32 => {
                self.syscall32 = h;
                self.syscall32_masks_events = mask;
            }
            CALLBACKTYPE_SYSENTER => {
                self.sysenter = h;
                self.sysenter_masks_events = mask;
            }
            CALLBACKTYPE_NMI => idt.set_nmi_callback(reg.address.eip),
            _ => return Err(Errno::ENOSYS),
        }
        Ok(())
    }

    /// `callback_op(CALLBACKOP_unregister)`: only the NMI callback may be
    /// unregistered; the other known types are `EINVAL`, unknown ones `ENOSYS`.
    pub fn unregister(
        &mut self,
        idt: &mut VirtualIdt,
        unreg: &CallbackUnregister,
    ) -> Result<(), Errno> {
        match unreg.type_ {
            CALLBACKTYPE_NMI => {
                idt.clear_nmi_callback();
                Ok(())
            }
            CALLBACKTYPE_EVENT
            | CALLBACKTYPE_FAILSAFE
            | CALLBACKTYPE_SYSCALL32
            | CALLBACKTYPE_SYSENTER => Err(Errno::EINVAL),
            _ => Err(Errno::ENOSYS),
        }
    }

    /// The event upcall's delivery and handler for [`crate::bounce::bounce`].
    pub const fn event_delivery(&self) -> (Delivery, Handler) {
        (Delivery::Event, self.event)
    }

    /// The failsafe callback's delivery and handler for [`crate::bounce::bounce`].
    pub const fn failsafe_delivery(&self) -> (Delivery, Handler) {
        (
            Delivery::Failsafe {
                mask_events: self.failsafe_masks_events,
            },
            self.failsafe,
        )
    }
}

/// A callback entry point from the ABI's 32-bit selector (only the low 16 bits
/// are a selector) with the RPL raised.
const fn callback_handler(cs: u32, eip: u32) -> Handler {
    Handler {
        cs: fixup_guest_selector(cs as u16),
        eip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_abi::selectors::{FLAT_RING0_CS, FLAT_RING3_CS};
    use xen_abi::traps::{CALLBACKTYPE_SYSCALL, CALLBACKTYPE_SYSENTER_DEPRECATED, XenCallback};

    fn ti(vector: u8, flags: u8, cs: u16, address: u32) -> TrapInfo {
        TrapInfo {
            vector,
            flags,
            cs,
            address,
        }
    }

    fn table(entries: &[TrapInfo]) -> impl Iterator<Item = Result<TrapInfo, Errno>> + '_ {
        entries.iter().copied().map(Ok)
    }

    const END: TrapInfo = TrapInfo {
        vector: 0,
        flags: 0,
        cs: 0,
        address: 0,
    };

    #[test]
    fn set_trap_table_applies_until_the_terminator() {
        let mut idt = VirtualIdt::new();
        let p = idt
            .set_trap_table(table(&[
                ti(0, 0, FLAT_KERNEL_CS, 0xC010_0000),
                ti(14, TI_IF_FLAG, FLAT_KERNEL_CS, 0xC010_0E00),
                ti(0x80, 3, FLAT_KERNEL_CS, 0xC010_8000),
                END,
                ti(1, 0, FLAT_KERNEL_CS, 0xDEAD_0000),
            ]))
            .unwrap();
        assert_eq!(
            p,
            TrapTableProgress {
                applied: 3,
                terminated: true
            }
        );
        assert_eq!(
            idt.entry(14),
            TrapEntry {
                cs: FLAT_KERNEL_CS,
                address: 0xC010_0E00,
                dpl: 0,
                mask_events: true
            }
        );
        assert_eq!(idt.entry(0x80).dpl, 3);
        assert!(!idt.entry(0x80).mask_events);
        // Past the terminator: not applied.
        assert!(idt.entry(1).is_empty());
    }

    #[test]
    fn set_trap_table_overwrites_and_keeps_other_slots() {
        let mut idt = VirtualIdt::new();
        idt.set_trap_table(table(&[
            ti(3, 3, FLAT_KERNEL_CS, 0xC000_0300),
            ti(13, 0, FLAT_KERNEL_CS, 0xC000_0D00),
            END,
        ]))
        .unwrap();
        idt.set_trap_table(table(&[
            ti(13, TI_IF_FLAG, FLAT_KERNEL_CS, 0xC000_1D00),
            END,
        ]))
        .unwrap();
        assert_eq!(idt.entry(3).address, 0xC000_0300);
        assert_eq!(idt.entry(13).address, 0xC000_1D00);
        assert!(idt.entry(13).mask_events);
        // An empty array (just the terminator) changes nothing.
        let before = idt.clone();
        let p = idt.set_trap_table(table(&[END])).unwrap();
        assert_eq!(p.applied, 0);
        assert_eq!(idt, before);
    }

    #[test]
    fn set_trap_table_null_clears_everything() {
        let mut idt = VirtualIdt::new();
        idt.set_trap_table(table(&[ti(6, 0, FLAT_KERNEL_CS, 0xC000_0600), END]))
            .unwrap();
        idt.clear();
        assert_eq!(idt, VirtualIdt::new());
        assert!((0..=255).all(|v| idt.entry(v).is_empty()));
    }

    #[test]
    fn set_trap_table_copy_error_keeps_earlier_entries() {
        let mut idt = VirtualIdt::new();
        let src = [
            Ok(ti(5, 0, FLAT_KERNEL_CS, 0xC000_0500)),
            Err(Errno::EFAULT),
            Ok(ti(6, 0, FLAT_KERNEL_CS, 0xC000_0600)),
        ];
        assert_eq!(idt.set_trap_table(src), Err(Errno::EFAULT));
        assert_eq!(idt.entry(5).address, 0xC000_0500);
        assert!(idt.entry(6).is_empty());
        // A source that stops early (preemption) reports it.
        let p = idt
            .set_trap_table(table(&[ti(7, 0, FLAT_KERNEL_CS, 0xC000_0700)]))
            .unwrap();
        assert_eq!(
            p,
            TrapTableProgress {
                applied: 1,
                terminated: false
            }
        );
    }

    #[test]
    fn handler_cs_rpl0_is_raised_to_1() {
        let mut idt = VirtualIdt::new();
        idt.set_trap_table(table(&[
            ti(0, 0, FLAT_KERNEL_CS & !3, 0xC000_0000),
            ti(1, 0, 0x0010, 0xC000_0100),
            ti(2, 0, FLAT_RING3_CS, 0xC000_0200),
            ti(4, 0, 0, 0xC000_0400),
            END,
        ]))
        .unwrap();
        assert_eq!(idt.entry(0).cs, FLAT_KERNEL_CS);
        assert_eq!(idt.entry(1).cs, 0x0011);
        // RPL 3 is kept.
        assert_eq!(idt.entry(2).cs, FLAT_RING3_CS);
        // A null selector stays null (RPL 1): delivering it crashes the domain.
        assert_eq!(idt.entry(4).cs, 1);
        assert_eq!(idt.entry(4).handler().cs & !3, 0);
    }

    #[test]
    fn hypervisor_selectors_are_stored_but_never_gated() {
        // As in Xen: not refused (RPL raised; the CPU refuses it at iret).
        let mut idt = VirtualIdt::new();
        idt.set_trap_table(table(&[ti(0x80, 3, FLAT_RING0_CS, 0xC000_8000), END]))
            .unwrap();
        assert_eq!(idt.entry(0x80).cs, FLAT_RING0_CS | 1);
        assert_eq!(idt.direct_int80(), None);
    }

    #[test]
    fn direct_int80_qualifies() {
        let mut idt = VirtualIdt::new();
        assert_eq!(idt.direct_int80(), None, "empty slot");
        idt.set(&ti(0x80, 3, FLAT_KERNEL_CS, 0xC010_8ABC));
        assert_eq!(idt.direct_int80(), Some((FLAT_KERNEL_CS, 0xC010_8ABC)));
        assert_eq!(
            idt.direct_int80_gate(),
            Some(0xC010_EF00_u64 << 32 | u64::from(FLAT_KERNEL_CS) << 16 | 0x8ABC)
        );
        // A guest GDT and an LDT selector qualify too.
        idt.set(&ti(0x80, 3, 0x0061, 0xC010_8000));
        assert_eq!(idt.direct_int80(), Some((0x0061, 0xC010_8000)));
        idt.set(&ti(0x80, 1, 0x0007, 0xC010_8000));
        assert_eq!(idt.direct_int80(), Some((0x0007, 0xC010_8000)));
        // DPL 1 gate.
        assert_eq!(idt.direct_int80_gate().unwrap() >> 32 & 0xFFFF, 0xAF00);
    }

    #[test]
    fn direct_int80_does_not_qualify() {
        let mut idt = VirtualIdt::new();
        // Events masked on entry: a gate cannot set the upcall mask.
        idt.set(&ti(0x80, 3 | TI_IF_FLAG, FLAT_KERNEL_CS, 0xC010_8000));
        assert_eq!(idt.direct_int80(), None);
        assert_eq!(idt.direct_int80_gate(), None);
        // Reserved (hypervisor) selectors other than FLAT_KERNEL_CS.
        for cs in [FLAT_RING3_CS, FLAT_RING0_CS, 0xE010, FLAT_KERNEL_CS | 2] {
            idt.set(&ti(0x80, 3, cs, 0xC010_8000));
            assert_eq!(idt.direct_int80(), None, "cs {cs:#x}");
        }
        // Null selector, or no address (only possible through a vcpu context).
        idt.set(&ti(0x80, 3, 0, 0xC010_8000));
        assert_eq!(idt.direct_int80(), None);
        idt.set(&ti(0x80, 3, FLAT_KERNEL_CS, 0));
        assert_eq!(idt.direct_int80(), None);
        // Another vector never gets a direct gate.
        idt.set(&ti(0x81, 3, FLAT_KERNEL_CS, 0xC010_8000));
        assert_eq!(idt.direct_int80(), None);
    }

    #[test]
    fn softint_dpl_rule() {
        let mut idt = VirtualIdt::new();
        idt.set(&ti(0x80, 3, FLAT_KERNEL_CS, 0xC010_8000));
        idt.set(&ti(0x81, 1, FLAT_KERNEL_CS, 0xC010_8100));
        assert!(idt.softint_permitted(0x80, 3));
        assert!(idt.softint_permitted(0x80, 1));
        assert!(idt.softint_permitted(0x81, 1));
        assert!(!idt.softint_permitted(0x81, 3));
        // Empty slot: DPL 0, nobody.
        assert!(!idt.softint_permitted(0x82, 1));
    }

    #[test]
    fn trap_ctxt_round_trip() {
        let mut ctxt = [TrapInfo::default(); NR_VECTORS];
        ctxt[14] = ti(99, TI_IF_FLAG | 1, FLAT_KERNEL_CS & !3, 0xC000_0E00);
        ctxt[0x80] = ti(0x80, 3, FLAT_KERNEL_CS, 0xC000_8000);
        let idt = VirtualIdt::from_trap_ctxt(&ctxt);
        assert_eq!(
            idt.entry(14),
            TrapEntry {
                cs: FLAT_KERNEL_CS,
                address: 0xC000_0E00,
                dpl: 1,
                mask_events: true
            }
        );
        let out = idt.to_trap_ctxt();
        assert_eq!(out[14], ti(14, TI_IF_FLAG | 1, FLAT_KERNEL_CS, 0xC000_0E00));
        assert_eq!(out[0x80], ctxt[0x80]);
        assert_eq!(out[0], TrapInfo::default());
        assert_eq!(out[7].vector, 7);
    }

    #[test]
    fn trap_entry_delivery() {
        let e = TrapEntry::from_trap_info(&ti(14, TI_IF_FLAG, FLAT_KERNEL_CS, 0xC000_0E00));
        assert_eq!(
            e.delivery(Some(2)),
            Delivery::Exception {
                error_code: Some(2),
                mask_events: true
            }
        );
        assert_eq!(
            e.handler(),
            Handler {
                cs: FLAT_KERNEL_CS,
                eip: 0xC000_0E00
            }
        );
    }

    fn reg(type_: u16, flags: u16, cs: u32, eip: u32) -> CallbackRegister {
        CallbackRegister {
            type_,
            flags,
            address: XenCallback { cs, eip },
        }
    }

    #[test]
    fn set_callbacks_raises_rpl_and_clears_failsafe_masking() {
        let mut cb = Callbacks {
            failsafe_masks_events: true,
            ..Default::default()
        };
        cb.set_callbacks(0xE018, 0xC000_1000, u32::from(FLAT_KERNEL_CS), 0xC000_2000);
        assert_eq!(
            cb.event,
            Handler {
                cs: FLAT_KERNEL_CS,
                eip: 0xC000_1000
            }
        );
        assert_eq!(cb.failsafe.eip, 0xC000_2000);
        assert!(!cb.failsafe_masks_events);
        assert_eq!(cb.event_delivery(), (Delivery::Event, cb.event));
    }

    #[test]
    fn callback_register_types() {
        let mut cb = Callbacks::default();
        let mut idt = VirtualIdt::new();
        let k = u32::from(FLAT_KERNEL_CS);
        assert_eq!(
            cb.register(&mut idt, &reg(CALLBACKTYPE_EVENT, 0, k, 0x1000)),
            Ok(())
        );
        assert_eq!(
            cb.register(
                &mut idt,
                &reg(CALLBACKTYPE_FAILSAFE, CALLBACKF_MASK_EVENTS, k & !3, 0x2000)
            ),
            Ok(())
        );
        assert_eq!(
            cb.failsafe_delivery(),
            (
                Delivery::Failsafe { mask_events: true },
                Handler {
                    cs: FLAT_KERNEL_CS,
                    eip: 0x2000
                }
            )
        );
        // §18: syscall32 and sysenter are accepted from 32-bit guests.
        assert_eq!(
            cb.register(
                &mut idt,
                &reg(CALLBACKTYPE_SYSCALL32, CALLBACKF_MASK_EVENTS, k, 0x3000)
            ),
            Ok(())
        );
        assert_eq!(
            cb.register(&mut idt, &reg(CALLBACKTYPE_SYSENTER, 0, k, 0x4000)),
            Ok(())
        );
        assert!(cb.syscall32_masks_events && !cb.sysenter_masks_events);
        assert_eq!(cb.sysenter.eip, 0x4000);
        // NMI: slot 2, FLAT_KERNEL_CS whatever the guest gave, events masked.
        assert_eq!(
            cb.register(&mut idt, &reg(CALLBACKTYPE_NMI, 0, 0x1234, 0x5000)),
            Ok(())
        );
        assert_eq!(
            idt.entry(NMI_VECTOR),
            TrapEntry {
                cs: FLAT_KERNEL_CS,
                address: 0x5000,
                dpl: 0,
                mask_events: true
            }
        );
        // Unknown and 64-bit-only types.
        for t in [
            CALLBACKTYPE_SYSCALL,
            CALLBACKTYPE_SYSENTER_DEPRECATED,
            6,
            8,
            0xFFFF,
        ] {
            assert_eq!(
                cb.register(&mut idt, &reg(t, 0, k, 0x6000)),
                Err(Errno::ENOSYS),
                "type {t}"
            );
        }
        // Failsafe again without the flag clears the masking.
        cb.register(&mut idt, &reg(CALLBACKTYPE_FAILSAFE, 0, k, 0x2000))
            .unwrap();
        assert!(!cb.failsafe_masks_events);
    }

    #[test]
    fn callback_unregister_only_nmi() {
        let mut cb = Callbacks::default();
        let mut idt = VirtualIdt::new();
        idt.set_nmi_callback(0x5000);
        let un = |type_| CallbackUnregister { type_, _unused: 0 };
        assert_eq!(cb.unregister(&mut idt, &un(CALLBACKTYPE_NMI)), Ok(()));
        assert!(idt.entry(NMI_VECTOR).is_empty());
        for t in [
            CALLBACKTYPE_EVENT,
            CALLBACKTYPE_FAILSAFE,
            CALLBACKTYPE_SYSCALL32,
            CALLBACKTYPE_SYSENTER,
        ] {
            assert_eq!(cb.unregister(&mut idt, &un(t)), Err(Errno::EINVAL));
        }
        assert_eq!(cb.unregister(&mut idt, &un(9)), Err(Errno::ENOSYS));
    }
}
