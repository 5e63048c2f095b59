//! Two-level event delivery over the shared-info page (XEN-PV-ABI.md §8.3).
//!
//! The state lives in guest-writable memory: `evtchn_pending[32]` and
//! `evtchn_mask[32]` (bit *p* = port *p*) and, per VCPU, `evtchn_pending_sel`
//! (bit *i* = word *i* may hold pending unmasked ports), `evtchn_upcall_pending`
//! and `evtchn_upcall_mask`. Both sides change it concurrently, so every step
//! below is one atomic read-modify-write of [`EventWords`], done in Xen's order:
//!
//! ```text
//! raise(v, p):  if test_and_set(pending[p])           -> already recorded, stop
//!               if !mask[p] && !test_and_set(sel[v] bit p/32)
//!                   && !test_and_set(upcall_pending[v]) -> kick v
//! unmask(v, p): if test_and_clear(mask[p]) && pending[p]
//!                   && !test_and_set(sel[v] bit p/32)
//!                   && !test_and_set(upcall_pending[v]) -> kick v
//! ```
//!
//! Invariant kept by both sides (and checked by the property test): a port that
//! is pending and unmasked has its word's bit set in the selector of the VCPU it
//! notifies, and that VCPU's `upcall_pending` is set — unless the guest is in the
//! middle of its scan on that VCPU. So no raise is lost and none is delivered
//! while masked.

use xen_abi::shared_info::{EVTCHN_WORD_BITS, SharedInfo, evtchn_word_bit};
use xen_abi::types::EvtchnPort;

/// An event-channel port number (`evtchn_port_t`).
pub type Port = EvtchnPort;
/// A VCPU number within its domain (the ABI carries it as a `u32`).
pub type VcpuId = u32;

/// Access to the event fields of one shared-info page.
///
/// Callers guarantee `port < NR_EVENT_CHANNELS` (1024), `word < 32` and
/// `vcpu < XEN_LEGACY_MAX_VCPUS` (32); [`PortTable`](super::PortTable) never
/// passes anything else. Implementations over the real page must make each
/// mutating method a single atomic operation (x86: `lock bts`/`lock btr` on the
/// 32-bit word, `xchg` for [`take_sel`](Self::take_sel) and the byte flags): the
/// guest changes the same words at the same time on other CPUs.
pub trait EventWords {
    /// `evtchn_pending[word]`.
    fn pending_word(&self, word: usize) -> u32;
    /// `evtchn_mask[word]`.
    fn mask_word(&self, word: usize) -> u32;
    /// Atomically sets `port`'s pending bit; returns whether it was already set.
    fn test_and_set_pending(&mut self, port: Port) -> bool;
    /// Atomically clears `port`'s pending bit; returns whether it was set.
    fn test_and_clear_pending(&mut self, port: Port) -> bool;
    /// Atomically sets `port`'s mask bit; returns whether it was already set.
    fn test_and_set_mask(&mut self, port: Port) -> bool;
    /// Atomically clears `port`'s mask bit; returns whether it was set.
    fn test_and_clear_mask(&mut self, port: Port) -> bool;
    /// `vcpu_info[vcpu].evtchn_pending_sel`.
    fn sel(&self, vcpu: VcpuId) -> u32;
    /// Atomically sets bit `word` of `vcpu`'s selector; returns whether it was set.
    fn test_and_set_sel(&mut self, vcpu: VcpuId, word: usize) -> bool;
    /// Atomically exchanges `vcpu`'s selector with 0 and returns the old value.
    fn take_sel(&mut self, vcpu: VcpuId) -> u32;
    /// `vcpu_info[vcpu].evtchn_upcall_pending != 0`.
    fn upcall_pending(&self, vcpu: VcpuId) -> bool;
    /// Atomically sets `evtchn_upcall_pending` to 1; returns whether it was set.
    fn test_and_set_upcall_pending(&mut self, vcpu: VcpuId) -> bool;
    /// Clears `evtchn_upcall_pending` (a plain byte store is atomic).
    fn clear_upcall_pending(&mut self, vcpu: VcpuId);
    /// `vcpu_info[vcpu].evtchn_upcall_mask != 0` (the guest's "interrupts off").
    fn upcall_mask(&self, vcpu: VcpuId) -> bool;
    /// Sets or clears `evtchn_upcall_mask` (Xen sets it when it enters the event
    /// callback; the guest clears it to re-enable events).
    fn set_upcall_mask(&mut self, vcpu: VcpuId, masked: bool);

    /// Whether `port`'s pending bit is set.
    fn is_pending(&self, port: Port) -> bool {
        let (w, b) = evtchn_word_bit(port);
        self.pending_word(w) & (1 << b) != 0
    }

    /// Whether `port`'s mask bit is set.
    fn is_masked(&self, port: Port) -> bool {
        let (w, b) = evtchn_word_bit(port);
        self.mask_word(w) & (1 << b) != 0
    }
}

/// What raising or unmasking a port requires of the hypervisor.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// Nothing changed: the port was already pending (the edge is already
    /// recorded), or an unmask found nothing to re-raise.
    None,
    /// The port became pending but no new upcall is due (masked, or the VCPU
    /// already has one pending). A VCPU blocked in `SCHEDOP_poll` on this port
    /// must still be woken.
    Pending,
    /// `evtchn_upcall_pending` went from 0 to 1: kick the VCPU (wake it if
    /// blocked, IPI its CPU if it runs elsewhere). Pollers too.
    Kick,
}

impl Notify {
    /// Whether the VCPU must be kicked.
    pub const fn kick(self) -> bool {
        matches!(self, Notify::Kick)
    }

    /// Whether a pending bit was newly set or an upcall newly raised (wake
    /// pollers).
    pub const fn changed(self) -> bool {
        !matches!(self, Notify::None)
    }
}

/// A port raised on a VCPU, for the hypervisor to act on ([`Notify`]).
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raised {
    /// The port.
    pub port: Port,
    /// The VCPU notified.
    pub vcpu: VcpuId,
    /// What it needs.
    pub notify: Notify,
}

/// Raises `port` with `vcpu` as the VCPU to notify (Xen's
/// `evtchn_set_pending`).
pub fn set_pending<W: EventWords + ?Sized>(words: &mut W, vcpu: VcpuId, port: Port) -> Notify {
    if words.test_and_set_pending(port) {
        return Notify::None;
    }
    let (word, _) = evtchn_word_bit(port);
    if !words.is_masked(port)
        && !words.test_and_set_sel(vcpu, word)
        && !words.test_and_set_upcall_pending(vcpu)
    {
        Notify::Kick
    } else {
        Notify::Pending
    }
}

/// `EVTCHNOP_unmask` on the hypervisor side: clears `port`'s mask and, if it was
/// masked and is pending, re-raises it on `vcpu` (the port's notified VCPU) as
/// [`set_pending`] would have. Returns [`Notify::Kick`] or [`Notify::None`].
pub fn unmask<W: EventWords + ?Sized>(words: &mut W, vcpu: VcpuId, port: Port) -> Notify {
    let (word, _) = evtchn_word_bit(port);
    if words.test_and_clear_mask(port)
        && words.is_pending(port)
        && !words.test_and_set_sel(vcpu, word)
        && !words.test_and_set_upcall_pending(vcpu)
    {
        Notify::Kick
    } else {
        Notify::None
    }
}

/// Whether `vcpu` must enter its event callback on the next exit to guest mode
/// (`upcall_pending && !upcall_mask`; also the wake-up test of `SCHEDOP_block`).
pub fn upcall_needed<W: EventWords + ?Sized>(words: &W, vcpu: VcpuId) -> bool {
    words.upcall_pending(vcpu) && !words.upcall_mask(vcpu)
}

/// The guest's upcall handler loop (§8.3) on `vcpu`, handling every port pending
/// and unmasked in the words its selector names. Returns how many ports were
/// handled.
///
/// For a guest with several VCPUs use [`scan_with`] so that a VCPU only takes
/// the ports bound to it.
pub fn scan<W: EventWords + ?Sized>(
    words: &mut W,
    vcpu: VcpuId,
    handle: impl FnMut(Port),
) -> usize {
    scan_with(words, vcpu, |_| u32::MAX, handle)
}

/// [`scan`] restricted to the ports for which `bound(word)` has a bit set (the
/// ports of that word bound to this VCPU, like Linux's `cpu_evtchn_mask`).
///
/// Each round clears `upcall_pending`, takes the selector with an exchange, and
/// for each named word clears (atomically) and handles each port that is pending,
/// unmasked and bound; it repeats while `upcall_pending` was set again meanwhile.
/// A port is handled only if this scan cleared its pending bit, so one raise is
/// handled once even if two VCPUs race on the same word.
pub fn scan_with<W: EventWords + ?Sized>(
    words: &mut W,
    vcpu: VcpuId,
    mut bound: impl FnMut(usize) -> u32,
    mut handle: impl FnMut(Port),
) -> usize {
    let mut handled = 0;
    loop {
        words.clear_upcall_pending(vcpu);
        let mut sel = words.take_sel(vcpu);
        while sel != 0 {
            let word = sel.trailing_zeros() as usize;
            sel &= sel - 1;
            let mut bits = words.pending_word(word) & !words.mask_word(word) & bound(word);
            while bits != 0 {
                let bit = bits.trailing_zeros();
                bits &= bits - 1;
                let port = (word * EVTCHN_WORD_BITS) as Port + bit;
                if words.test_and_clear_pending(port) {
                    handle(port);
                    handled += 1;
                }
            }
        }
        if !words.upcall_pending(vcpu) {
            return handled;
        }
    }
}

/// Guest-side unmask without a hypercall, valid only for a port bound to the
/// VCPU doing it (`vcpu`): clears the mask bit and, if the port is pending,
/// re-raises the selector bit and `upcall_pending`. Returns whether the guest
/// must now force delivery (an upcall is pending and `vcpu` has events
/// enabled): any cheap hypercall returns through the event check.
///
/// For a port bound to another VCPU the guest must use `EVTCHNOP_unmask`.
pub fn guest_unmask<W: EventWords + ?Sized>(words: &mut W, vcpu: VcpuId, port: Port) -> bool {
    let (word, _) = evtchn_word_bit(port);
    words.test_and_clear_mask(port);
    if words.is_pending(port) && !words.test_and_set_sel(vcpu, word) {
        let _ = words.test_and_set_upcall_pending(vcpu);
    }
    upcall_needed(words, vcpu)
}

// [`EventWords`] over a plain [`SharedInfo`] value with ordinary (non-atomic)
// memory operations: see the impl's documentation.

fn test_and_set_bit(word: &mut u32, bit: u32) -> bool {
    let was = *word & (1 << bit) != 0;
    *word |= 1 << bit;
    was
}

fn test_and_clear_bit(word: &mut u32, bit: u32) -> bool {
    let was = *word & (1 << bit) != 0;
    *word &= !(1 << bit);
    was
}

impl EventWords for SharedInfo {
    fn pending_word(&self, word: usize) -> u32 {
        self.evtchn_pending[word]
    }

    fn mask_word(&self, word: usize) -> u32 {
        self.evtchn_mask[word]
    }

    fn test_and_set_pending(&mut self, port: Port) -> bool {
        let (w, b) = evtchn_word_bit(port);
        test_and_set_bit(&mut self.evtchn_pending[w], b)
    }

    fn test_and_clear_pending(&mut self, port: Port) -> bool {
        let (w, b) = evtchn_word_bit(port);
        test_and_clear_bit(&mut self.evtchn_pending[w], b)
    }

    fn test_and_set_mask(&mut self, port: Port) -> bool {
        let (w, b) = evtchn_word_bit(port);
        test_and_set_bit(&mut self.evtchn_mask[w], b)
    }

    fn test_and_clear_mask(&mut self, port: Port) -> bool {
        let (w, b) = evtchn_word_bit(port);
        test_and_clear_bit(&mut self.evtchn_mask[w], b)
    }

    fn sel(&self, vcpu: VcpuId) -> u32 {
        self.vcpu_info[vcpu as usize].evtchn_pending_sel
    }

    fn test_and_set_sel(&mut self, vcpu: VcpuId, word: usize) -> bool {
        test_and_set_bit(
            &mut self.vcpu_info[vcpu as usize].evtchn_pending_sel,
            word as u32,
        )
    }

    fn take_sel(&mut self, vcpu: VcpuId) -> u32 {
        core::mem::take(&mut self.vcpu_info[vcpu as usize].evtchn_pending_sel)
    }

    fn upcall_pending(&self, vcpu: VcpuId) -> bool {
        self.vcpu_info[vcpu as usize].evtchn_upcall_pending != 0
    }

    fn test_and_set_upcall_pending(&mut self, vcpu: VcpuId) -> bool {
        let flag = &mut self.vcpu_info[vcpu as usize].evtchn_upcall_pending;
        core::mem::replace(flag, 1) != 0
    }

    fn clear_upcall_pending(&mut self, vcpu: VcpuId) {
        self.vcpu_info[vcpu as usize].evtchn_upcall_pending = 0;
    }

    fn upcall_mask(&self, vcpu: VcpuId) -> bool {
        self.vcpu_info[vcpu as usize].evtchn_upcall_mask != 0
    }

    fn set_upcall_mask(&mut self, vcpu: VcpuId, masked: bool) {
        self.vcpu_info[vcpu as usize].evtchn_upcall_mask = u8::from(masked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;
    use xen_abi::shared_info::NR_EVENT_CHANNELS;

    fn collect<W: EventWords>(w: &mut W, vcpu: VcpuId) -> Vec<Port> {
        let mut v = Vec::new();
        scan(w, vcpu, |p| v.push(p));
        v
    }

    #[test]
    fn raise_unmasked_sets_pending_selector_and_upcall() {
        let mut w = SharedInfo::default();
        assert_eq!(set_pending(&mut w, 0, 37), Notify::Kick);
        assert!(w.is_pending(37));
        assert_eq!(w.sel(0), 1 << 1);
        assert!(w.upcall_pending(0));
        assert!(upcall_needed(&w, 0));
        // The raw page agrees with the ABI layout.
        assert_eq!(w.evtchn_pending[1], 1 << 5);
        assert_eq!(w.vcpu_info[0].evtchn_upcall_pending, 1);
    }

    #[test]
    fn raise_twice_before_scan_is_one_upcall_and_one_handling() {
        let mut w = SharedInfo::default();
        assert_eq!(set_pending(&mut w, 0, 3), Notify::Kick);
        assert_eq!(set_pending(&mut w, 0, 3), Notify::None);
        assert_eq!(collect(&mut w, 0), [3]);
        assert!(!w.upcall_pending(0));
        assert_eq!(w.sel(0), 0);
        // After the scan the next raise is a new edge and a new upcall.
        assert_eq!(set_pending(&mut w, 0, 3), Notify::Kick);
        assert_eq!(collect(&mut w, 0), [3]);
    }

    #[test]
    fn second_port_while_upcall_pending_needs_no_kick() {
        let mut w = SharedInfo::default();
        assert_eq!(set_pending(&mut w, 0, 1), Notify::Kick);
        // Same word: selector bit already set.
        assert_eq!(set_pending(&mut w, 0, 2), Notify::Pending);
        // Other word: selector bit new, but upcall already pending.
        assert_eq!(set_pending(&mut w, 0, 100), Notify::Pending);
        assert_eq!(w.sel(0), (1 << 0) | (1 << 3));
        assert_eq!(collect(&mut w, 0), [1, 2, 100]);
    }

    #[test]
    fn masked_raise_is_not_delivered_until_unmask() {
        let mut w = SharedInfo::default();
        assert!(!w.test_and_set_mask(5));
        assert_eq!(set_pending(&mut w, 0, 5), Notify::Pending);
        assert!(w.is_pending(5));
        assert_eq!(w.sel(0), 0);
        assert!(!w.upcall_pending(0));
        assert!(!upcall_needed(&w, 0));
        assert!(collect(&mut w, 0).is_empty());
        assert!(w.is_pending(5), "a masked port stays pending");
        assert_eq!(unmask(&mut w, 0, 5), Notify::Kick);
        assert!(!w.is_masked(5));
        assert_eq!(w.sel(0), 1);
        assert_eq!(collect(&mut w, 0), [5]);
        assert!(!w.is_pending(5));
    }

    #[test]
    fn unmask_without_pending_or_mask_does_nothing() {
        let mut w = SharedInfo::default();
        // Not masked: nothing to re-raise even if pending.
        let _ = set_pending(&mut w, 0, 9);
        let _ = collect(&mut w, 0);
        assert_eq!(unmask(&mut w, 0, 9), Notify::None);
        // Masked but not pending.
        w.test_and_set_mask(9);
        assert_eq!(unmask(&mut w, 0, 9), Notify::None);
        assert!(!w.is_masked(9));
        assert!(!w.upcall_pending(0));
    }

    #[test]
    fn unmask_with_selector_already_set_does_not_kick_again() {
        let mut w = SharedInfo::default();
        w.test_and_set_mask(4);
        let _ = set_pending(&mut w, 0, 4);
        assert_eq!(set_pending(&mut w, 0, 6), Notify::Kick);
        assert_eq!(unmask(&mut w, 0, 4), Notify::None);
        assert_eq!(collect(&mut w, 0), [4, 6]);
    }

    #[test]
    fn upcall_mask_defers_but_keeps_the_upcall() {
        let mut w = SharedInfo::default();
        w.set_upcall_mask(0, true);
        assert_eq!(set_pending(&mut w, 0, 7), Notify::Kick);
        assert!(w.upcall_pending(0));
        assert!(!upcall_needed(&w, 0));
        w.set_upcall_mask(0, false);
        assert!(upcall_needed(&w, 0));
        assert_eq!(collect(&mut w, 0), [7]);
    }

    #[test]
    fn two_vcpus_have_separate_selectors_and_upcalls() {
        let mut w = SharedInfo::default();
        assert_eq!(set_pending(&mut w, 0, 1), Notify::Kick);
        assert_eq!(set_pending(&mut w, 1, 40), Notify::Kick);
        assert_eq!(w.sel(0), 1);
        assert_eq!(w.sel(1), 2);
        assert!(upcall_needed(&w, 0) && upcall_needed(&w, 1));
        assert_eq!(collect(&mut w, 1), [40]);
        assert!(!w.upcall_pending(1));
        assert!(w.upcall_pending(0));
        assert_eq!(collect(&mut w, 0), [1]);
    }

    #[test]
    fn shared_word_on_two_vcpus_with_binding_filter() {
        let mut w = SharedInfo::default();
        // Ports 2 (vcpu 0) and 3 (vcpu 1) share word 0.
        let bound = |vcpu: VcpuId| move |word: usize| if word == 0 { 1 << (2 + vcpu) } else { 0 };
        assert_eq!(set_pending(&mut w, 0, 2), Notify::Kick);
        assert_eq!(set_pending(&mut w, 1, 3), Notify::Kick);
        let mut got = Vec::new();
        scan_with(&mut w, 0, bound(0), |p| got.push(p));
        assert_eq!(got, [2]);
        assert!(w.is_pending(3), "vcpu 0 left vcpu 1's port alone");
        got.clear();
        scan_with(&mut w, 1, bound(1), |p| got.push(p));
        assert_eq!(got, [3]);
    }

    #[test]
    fn scan_clears_exactly_what_it_handles() {
        let mut w = SharedInfo::default();
        for p in [1, 33, 34, 1023] {
            let _ = set_pending(&mut w, 0, p);
        }
        w.test_and_set_mask(34);
        let _ = set_pending(&mut w, 1, 65); // another vcpu's selector
        assert_eq!(collect(&mut w, 0), [1, 33, 1023]);
        assert!(w.is_pending(34), "masked: not handled, not cleared");
        assert!(w.is_pending(65), "word not named by vcpu 0's selector");
        for p in [1, 33, 1023] {
            assert!(!w.is_pending(p));
        }
        assert_eq!(w.sel(0), 0);
        assert_eq!(w.pending_word(1), 1 << 2);
        assert_eq!(w.pending_word(2), 1 << 1);
    }

    #[test]
    fn scan_loops_while_handlers_raise_new_events() {
        let mut w = SharedInfo::default();
        let _ = set_pending(&mut w, 0, 1);
        // A handler that raises the next port (a chain), as another CPU could.
        let mut seen = Vec::new();
        let mut next: Option<Port> = None;
        let n = {
            let mut rounds = 0;
            loop {
                let c = scan(&mut w, 0, |p| {
                    seen.push(p);
                    if p < 4 {
                        next = Some(p + 1);
                    }
                });
                rounds += c;
                match next.take() {
                    Some(p) => {
                        let _ = set_pending(&mut w, 0, p);
                    }
                    None => break rounds,
                }
            }
        };
        assert_eq!(n, 4);
        assert_eq!(seen, [1, 2, 3, 4]);
    }

    #[test]
    fn scan_repeats_when_upcall_pending_is_set_again() {
        // An event arriving between the selector exchange and the end of the
        // scan sets upcall_pending again; the loop must go round once more.
        struct Racy {
            inner: SharedInfo,
            inject: Option<Port>,
        }
        impl EventWords for Racy {
            fn pending_word(&self, w: usize) -> u32 {
                self.inner.pending_word(w)
            }
            fn mask_word(&self, w: usize) -> u32 {
                self.inner.mask_word(w)
            }
            fn test_and_set_pending(&mut self, p: Port) -> bool {
                self.inner.test_and_set_pending(p)
            }
            fn test_and_clear_pending(&mut self, p: Port) -> bool {
                let r = self.inner.test_and_clear_pending(p);
                if let Some(q) = self.inject.take() {
                    let _ = set_pending(&mut self.inner, 0, q);
                }
                r
            }
            fn test_and_set_mask(&mut self, p: Port) -> bool {
                self.inner.test_and_set_mask(p)
            }
            fn test_and_clear_mask(&mut self, p: Port) -> bool {
                self.inner.test_and_clear_mask(p)
            }
            fn sel(&self, v: VcpuId) -> u32 {
                self.inner.sel(v)
            }
            fn test_and_set_sel(&mut self, v: VcpuId, w: usize) -> bool {
                self.inner.test_and_set_sel(v, w)
            }
            fn take_sel(&mut self, v: VcpuId) -> u32 {
                self.inner.take_sel(v)
            }
            fn upcall_pending(&self, v: VcpuId) -> bool {
                self.inner.upcall_pending(v)
            }
            fn test_and_set_upcall_pending(&mut self, v: VcpuId) -> bool {
                self.inner.test_and_set_upcall_pending(v)
            }
            fn clear_upcall_pending(&mut self, v: VcpuId) {
                self.inner.clear_upcall_pending(v)
            }
            fn upcall_mask(&self, v: VcpuId) -> bool {
                self.inner.upcall_mask(v)
            }
            fn set_upcall_mask(&mut self, v: VcpuId, m: bool) {
                self.inner.set_upcall_mask(v, m)
            }
        }
        let mut w = Racy {
            inner: SharedInfo::default(),
            inject: Some(200),
        };
        let _ = set_pending(&mut w, 0, 10);
        let mut got = Vec::new();
        assert_eq!(scan(&mut w, 0, |p| got.push(p)), 2);
        assert_eq!(got, [10, 200]);
        assert!(!w.upcall_pending(0));
        assert_eq!(w.sel(0), 0);
    }

    #[test]
    fn guest_unmask_reraises_and_reports_forced_delivery() {
        let mut w = SharedInfo::default();
        w.test_and_set_mask(12);
        let _ = set_pending(&mut w, 0, 12);
        assert!(guest_unmask(&mut w, 0, 12));
        assert!(w.upcall_pending(0));
        assert_eq!(collect(&mut w, 0), [12]);
        // Events disabled: the upcall waits, no forced delivery.
        w.test_and_set_mask(12);
        let _ = set_pending(&mut w, 0, 12);
        w.set_upcall_mask(0, true);
        assert!(!guest_unmask(&mut w, 0, 12));
        assert!(w.upcall_pending(0));
        // Nothing pending: nothing to force.
        w.set_upcall_mask(0, false);
        let _ = collect(&mut w, 0);
        w.test_and_set_mask(13);
        assert!(!guest_unmask(&mut w, 0, 13));
    }

    #[test]
    fn highest_port_uses_last_word_and_selector_bit() {
        let mut w = SharedInfo::default();
        let last = NR_EVENT_CHANNELS as Port - 1;
        assert_eq!(set_pending(&mut w, 31, last), Notify::Kick);
        assert_eq!(w.sel(31), 1 << 31);
        assert_eq!(collect(&mut w, 31), [last]);
    }

    #[test]
    fn notify_helpers() {
        assert!(Notify::Kick.kick() && Notify::Kick.changed());
        assert!(!Notify::Pending.kick() && Notify::Pending.changed());
        assert!(!Notify::None.kick() && !Notify::None.changed());
    }

    // ---- Property test: no lost event, no masked delivery ----------------

    /// Ports 0..PORTS spread over three words; each bound to one of two VCPUs.
    const PORTS: u32 = 96;
    const VCPUS: u32 = 2;

    #[derive(Clone, Debug)]
    enum Op {
        /// The hypervisor raises a port on its bound VCPU.
        Raise(u32),
        /// The guest masks a port (`lock bts` on the mask word).
        Mask(u32),
        /// `EVTCHNOP_unmask`.
        Unmask(u32),
        /// The guest unmasks a port bound to the VCPU it runs on.
        GuestUnmask(u32),
        /// The guest turns events off/on on a VCPU.
        UpcallMask(u32, bool),
        /// The hypervisor returns to guest mode on a VCPU: upcall if needed.
        Deliver(u32),
        /// The guest re-targets a port (Linux's dance: mask, rebind, unmask).
        Rebind(u32, u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..PORTS).prop_map(Op::Raise),
            2 => (0..PORTS).prop_map(Op::Mask),
            2 => (0..PORTS).prop_map(Op::Unmask),
            1 => (0..PORTS).prop_map(Op::GuestUnmask),
            1 => (0..VCPUS, any::<bool>()).prop_map(|(v, m)| Op::UpcallMask(v, m)),
            4 => (0..VCPUS).prop_map(Op::Deliver),
            1 => (0..PORTS, 0..VCPUS).prop_map(|(p, v)| Op::Rebind(p, v)),
        ]
    }

    struct Model {
        bound: [VcpuId; PORTS as usize],
        masked: [bool; PORTS as usize],
        /// Raised (an edge) and not yet handled.
        outstanding: [bool; PORTS as usize],
        edges: usize,
        handled: usize,
    }

    /// The bits of `word` holding ports bound to `vcpu`.
    fn bound_mask(bound: &[VcpuId], vcpu: VcpuId, word: usize) -> u32 {
        (0..32)
            .filter(|bit| bound.get(word * 32 + bit) == Some(&vcpu))
            .fold(0, |m, bit| m | 1 << bit)
    }

    /// The hypervisor's side of delivery: the guest enters its callback with
    /// events masked, scans the ports bound to it, and re-enables events.
    fn deliver(w: &mut SharedInfo, model: &mut Model, vcpu: VcpuId) -> Result<(), TestCaseError> {
        if !upcall_needed(w, vcpu) {
            return Ok(());
        }
        w.set_upcall_mask(vcpu, true);
        let mut handled = Vec::new();
        let bound = model.bound;
        scan_with(
            w,
            vcpu,
            |word| bound_mask(&bound, vcpu, word),
            |p| handled.push(p),
        );
        w.set_upcall_mask(vcpu, false);
        for p in handled {
            let i = p as usize;
            prop_assert!(!model.masked[i], "masked port {} delivered", p);
            prop_assert!(model.outstanding[i], "port {} handled without a raise", p);
            prop_assert_eq!(model.bound[i], vcpu, "port {} handled on the wrong vcpu", p);
            model.outstanding[i] = false;
            model.handled += 1;
        }
        Ok(())
    }

    fn check_invariant(w: &SharedInfo, model: &Model) -> Result<(), TestCaseError> {
        for v in 0..VCPUS {
            prop_assert!(
                w.sel(v) == 0 || w.upcall_pending(v),
                "selector without upcall"
            );
        }
        for p in 0..PORTS {
            let i = p as usize;
            prop_assert_eq!(w.is_pending(p), model.outstanding[i]);
            prop_assert_eq!(w.is_masked(p), model.masked[i]);
            if model.outstanding[i] && !model.masked[i] {
                let v = model.bound[i];
                prop_assert!(
                    w.sel(v) & (1 << (p / 32)) != 0,
                    "port {} lost its selector",
                    p
                );
                prop_assert!(w.upcall_pending(v), "port {} has no upcall pending", p);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn no_event_lost_and_none_delivered_masked(
            init_bound in prop::collection::vec(0..VCPUS, PORTS as usize),
            ops in prop::collection::vec(op(), 0..300),
        ) {
            let mut w = SharedInfo::default();
            let mut model = Model {
                bound: [0; PORTS as usize],
                masked: [false; PORTS as usize],
                outstanding: [false; PORTS as usize],
                edges: 0,
                handled: 0,
            };
            model.bound.copy_from_slice(&init_bound);
            for op in ops {
                match op {
                    Op::Raise(p) => {
                        let i = p as usize;
                        let n = set_pending(&mut w, model.bound[i], p);
                        prop_assert_eq!(n == Notify::None, model.outstanding[i]);
                        if !model.outstanding[i] {
                            model.outstanding[i] = true;
                            model.edges += 1;
                        }
                    }
                    Op::Mask(p) => {
                        let was = w.test_and_set_mask(p);
                        prop_assert_eq!(was, model.masked[p as usize]);
                        model.masked[p as usize] = true;
                    }
                    Op::Unmask(p) => {
                        let i = p as usize;
                        let n = unmask(&mut w, model.bound[i], p);
                        prop_assert!(n != Notify::Pending);
                        model.masked[i] = false;
                    }
                    Op::GuestUnmask(p) => {
                        let i = p as usize;
                        let _ = guest_unmask(&mut w, model.bound[i], p);
                        model.masked[i] = false;
                    }
                    Op::UpcallMask(v, m) => w.set_upcall_mask(v, m),
                    Op::Deliver(v) => deliver(&mut w, &mut model, v)?,
                    Op::Rebind(p, v) => {
                        let i = p as usize;
                        let was_masked = w.test_and_set_mask(p);
                        model.bound[i] = v;
                        if !was_masked {
                            let _ = unmask(&mut w, v, p);
                        }
                    }
                }
                check_invariant(&w, &model)?;
            }
            // Drain: open everything up and deliver until quiet.
            for p in 0..PORTS {
                let i = p as usize;
                if model.masked[i] {
                    let _ = unmask(&mut w, model.bound[i], p);
                    model.masked[i] = false;
                }
            }
            for v in 0..VCPUS {
                w.set_upcall_mask(v, false);
            }
            check_invariant(&w, &model)?;
            for v in 0..VCPUS {
                deliver(&mut w, &mut model, v)?;
            }
            prop_assert!(model.outstanding.iter().all(|o| !o), "an event was lost");
            prop_assert_eq!(model.handled, model.edges);
            for v in 0..VCPUS {
                prop_assert!(!w.upcall_pending(v));
                prop_assert_eq!(w.sel(v), 0);
            }
        }
    }
}
