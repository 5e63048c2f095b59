//! Event channels on the guest side (XEN-PV-ABI.md §5, §8): the upcall entry,
//! the two-level scan, a per-port handler table, and the `event_channel_op`
//! wrappers. The guest maps its shared_info page and calls `init` with its
//! address; from then on `enable`/`disable` play the role of `sti`/`cli`.

use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicU32, Ordering};

use xen_abi::errno::Errno;
use xen_abi::evtchn::*;
use xen_abi::hypercall::{CALLBACK_OP, EVENT_CHANNEL_OP};
use xen_abi::selectors::FLAT_KERNEL_CS;
use xen_abi::shared_info::NR_EVENT_CHANNELS;
use xen_abi::traps::{CALLBACKOP_REGISTER, CALLBACKTYPE_EVENT, CallbackRegister, XenCallback};

use crate::hypercall::{raw, result};

/// A handler for events on one port.
pub type Handler = fn(port: u32);

static SHARED: AtomicU32 = AtomicU32::new(0);
static HANDLERS: [AtomicPtr<()>; NR_EVENT_CHANNELS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; NR_EVENT_CHANNELS];
/// Upcalls taken so far.
pub static UPCALLS: AtomicU32 = AtomicU32::new(0);

const PENDING: u32 = 2048;
const MASKS: u32 = 2176;

fn word(offset: u32) -> &'static AtomicU32 {
    // SAFETY: `init` recorded where shared_info is mapped (for the guest's
    // life); every offset used is an aligned u32 inside the page.
    unsafe { &*((SHARED.load(Ordering::SeqCst) + offset) as *const AtomicU32) }
}

fn byte(offset: u32) -> &'static AtomicU8 {
    // SAFETY: as for `word`.
    unsafe { &*((SHARED.load(Ordering::SeqCst) + offset) as *const AtomicU8) }
}

core::arch::global_asm!(
    r#"
    .text
    .global pvrt_event_upcall
pvrt_event_upcall:      /* [eip][cs|mask<<16][eflags] */
    pushal
    call    pvrt_event_dispatch
    popal
    jmp     hypercall_page + 23 * 32    /* iret: restores the upcall mask */
    "#,
    options(att_syntax)
);

unsafe extern "C" {
    fn pvrt_event_upcall();
}

/// The guest's half of two-level delivery (vcpu 0): clear upcall_pending,
/// take the selector, run the handler of each pending unmasked port once.
#[unsafe(no_mangle)]
extern "C" fn pvrt_event_dispatch() {
    UPCALLS.fetch_add(1, Ordering::SeqCst);
    byte(0).store(0, Ordering::SeqCst);
    let sel = word(4).swap(0, Ordering::SeqCst);
    for w in (0..32).filter(|w| sel & (1 << w) != 0) {
        let ready = word(PENDING + 4 * w).load(Ordering::SeqCst)
            & !word(MASKS + 4 * w).load(Ordering::SeqCst);
        for b in (0..32).filter(|b| ready & (1 << b) != 0) {
            word(PENDING + 4 * w).fetch_and(!(1 << b), Ordering::SeqCst);
            let port = w * 32 + b;
            let h = HANDLERS[port as usize].load(Ordering::SeqCst);
            if !h.is_null() {
                // SAFETY: only `on` stores into HANDLERS, and it stores `Handler`s.
                let h: Handler = unsafe { core::mem::transmute::<*mut (), Handler>(h) };
                h(port);
            }
        }
    }
}

/// Starts event delivery: records where shared_info is mapped and registers
/// the upcall entry. Events stay masked until `enable`.
pub fn init(shared_info_va: u32) -> Result<u32, Errno> {
    SHARED.store(shared_info_va, Ordering::SeqCst);
    let reg = CallbackRegister {
        type_: CALLBACKTYPE_EVENT,
        flags: 0,
        address: XenCallback {
            cs: u32::from(FLAT_KERNEL_CS),
            eip: pvrt_event_upcall as *const () as u32,
        },
    };
    // SAFETY: `reg` lives across the call.
    result(unsafe {
        raw(
            CALLBACK_OP,
            [CALLBACKOP_REGISTER, &reg as *const _ as u32, 0, 0, 0],
        )
    })
}

/// Routes events on `port` to `handler`.
pub fn on(port: u32, handler: Handler) {
    if let Some(slot) = HANDLERS.get(port as usize) {
        slot.store(handler as *mut (), Ordering::SeqCst);
    }
}

/// Unmasks event delivery on vcpu 0 (the guest's `sti`). Pending events are
/// delivered on the next return from Oxen.
pub fn enable() {
    byte(1).store(0, Ordering::SeqCst);
}

/// Masks event delivery on vcpu 0 (the guest's `cli`).
pub fn disable() {
    byte(1).store(1, Ordering::SeqCst);
}

/// Whether `port` is pending.
pub fn is_pending(port: u32) -> bool {
    word(PENDING + 4 * (port / 32)).load(Ordering::SeqCst) & (1 << (port % 32)) != 0
}

/// `event_channel_op(cmd, arg)`.
pub fn op<T>(cmd: u32, arg: &mut T) -> Result<u32, Errno> {
    // SAFETY: `arg` is the ABI struct the command reads and writes.
    result(unsafe { raw(EVENT_CHANNEL_OP, [cmd, arg as *mut T as u32, 0, 0, 0]) })
}

/// Binds VIRQ `virq` on vcpu 0 and returns its port.
pub fn bind_virq(virq: u32) -> Result<u32, Errno> {
    let mut b = EvtchnBindVirq {
        virq,
        vcpu: 0,
        port: 0,
    };
    op(EVTCHNOP_BIND_VIRQ, &mut b).map(|_| b.port)
}

/// Binds an IPI port to vcpu 0.
pub fn bind_ipi() -> Result<u32, Errno> {
    let mut b = EvtchnBindIpi { vcpu: 0, port: 0 };
    op(EVTCHNOP_BIND_IPI, &mut b).map(|_| b.port)
}

/// Raises `port` (its other end, or itself for IPI ports).
pub fn send(port: u32) -> Result<u32, Errno> {
    op(EVTCHNOP_SEND, &mut EvtchnSend { port })
}

/// Closes `port`.
pub fn close(port: u32) -> Result<u32, Errno> {
    op(EVTCHNOP_CLOSE, &mut EvtchnClose { port })
}
