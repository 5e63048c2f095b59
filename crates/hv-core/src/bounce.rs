//! Delivering exceptions, event upcalls and the failsafe callback to a guest
//! kernel ("bouncing"), and the `iret` hypercall (XEN-PV-ABI.md §6.2, §6.3, §6.6).
//!
//! Both are pure: [`bounce`] computes the words Oxen writes on the guest kernel
//! stack and the context to resume with; [`decode_iret`] reads the guest's iret
//! frame through a callback and computes the context to return to. The kernel
//! performs the memory accesses (through the checked guest accessor) and the
//! register updates, and crashes the domain on every [`Fatal`].
//!
//! The bounce frame, from the new ESP upward (Xen's `create_bounce_frame`):
//!
//! ```text
//! [DS ES FS GS]            failsafe callback only
//! [error code]             exceptions delivered with one
//! EIP
//! CS | saved upcall mask << 16
//! EFLAGS, IF = !saved mask, IOPL 0
//! [ESP SS]                 interrupted context in ring 2/3
//! ```
//!
//! It goes on the interrupted ring-1 stack (`ss:esp`) when the guest kernel was
//! interrupted, and on `kernel_ss:kernel_sp` (from `stack_switch`) when user
//! space was. Oxen never runs a guest in VM86 mode: an `iret` to VM86 is
//! refused the way today's Xen refuses it to 32-bit guests, with a #GP
//! delivered to the kernel ([`Vm86Iret::refuse`]).

use core::fmt;

use xen_abi::errno::Errno;
use xen_abi::traps::FRAME_SAVED_UPCALL_MASK_SHIFT;

// ---- EFLAGS bits (Intel SDM vol. 1, §3.4.3) ----

/// Trap flag.
pub const EFLAGS_TF: u32 = 1 << 8;
/// Interrupt enable.
pub const EFLAGS_IF: u32 = 1 << 9;
/// I/O privilege level (two bits).
pub const EFLAGS_IOPL: u32 = 3 << 12;
/// Nested task.
pub const EFLAGS_NT: u32 = 1 << 14;
/// Resume flag.
pub const EFLAGS_RF: u32 = 1 << 16;
/// Virtual-8086 mode.
pub const EFLAGS_VM: u32 = 1 << 17;

/// Flags the CPU clears when it takes a trap through a gate; a bounce does too.
const TRAP_CLEARED_FLAGS: u32 = EFLAGS_TF | EFLAGS_VM | EFLAGS_RF | EFLAGS_NT;

/// The longest frame Oxen writes (the #GP frame that refuses an iret to VM86).
pub const MAX_FRAME_WORDS: usize = 10;

/// Words of an `iret` hypercall frame, at most: EAX, EIP, CS, EFLAGS, ESP, SS,
/// ES, DS, FS, GS.
pub const IRET_FRAME_MAX_WORDS: usize = 10;

/// Whether a selector is null (index 0 of the GDT, any RPL).
const fn is_null_selector(sel: u16) -> bool {
    sel & !3 == 0
}

/// A handler entry point: a code selector and an EIP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Handler {
    /// Code selector (RPL already raised to ≥ 1 when it was registered).
    pub cs: u16,
    /// Entry point.
    pub eip: u32,
}

/// The guest context that was interrupted (what the CPU or Oxen saved).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Interrupted {
    pub eip: u32,
    /// CS; its RPL is the ring the guest was in (1 = kernel, 2/3 = user).
    pub cs: u16,
    pub eflags: u32,
    pub esp: u32,
    pub ss: u16,
    pub ds: u16,
    pub es: u16,
    pub fs: u16,
    pub gs: u16,
}

/// The vcpu's ring-1 stack for traps from ring 3, as set by `stack_switch`
/// (`kernel_ss`/`kernel_sp` of the vcpu context).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStack {
    pub ss: u16,
    pub esp: u32,
}

/// What is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// An exception or software interrupt through the virtual IDT.
    /// `error_code` is pushed when `Some` (hardware exceptions 8, 10–14 and
    /// 17; never for `int n` re-delivered from a #GP); `mask_events` is the
    /// trap entry's flag bit 2.
    Exception {
        error_code: Option<u32>,
        mask_events: bool,
    },
    /// The event upcall (`event_callback`); always masks events.
    Event,
    /// The failsafe callback; `mask_events` = registered with
    /// `CALLBACKF_mask_events` (`VGCF_failsafe_disables_events`).
    Failsafe { mask_events: bool },
}

/// Why a delivery or an `iret` cannot be completed. Each one crashes the domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fatal {
    /// The handler's code selector is null: no handler is registered.
    NullHandler,
    /// A trap from ring 2/3 while `stack_switch` registered no kernel stack
    /// (null `kernel_ss`).
    NoKernelStack,
    /// The interrupted context is not a guest context (RPL 0 or VM86).
    NotGuestContext,
    /// `iret` to ring 0.
    IretToRing0,
    /// Reading the `iret` frame at this linear address failed.
    IretFrameFault(u32),
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NullHandler => f.write_str("no handler registered (null code selector)"),
            Self::NoKernelStack => f.write_str("trap from user mode without a kernel stack"),
            Self::NotGuestContext => f.write_str("interrupted context is ring 0 or VM86"),
            Self::IretToRing0 => f.write_str("iret to ring 0"),
            Self::IretFrameFault(va) => write!(f, "iret frame unreadable at {va:#010x}"),
        }
    }
}

/// Words to write on a guest stack, lowest address first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    words: [u32; MAX_FRAME_WORDS],
    len: usize,
}

impl Frame {
    /// The words, `words()[i]` at `esp + 4 * i`.
    pub fn words(&self) -> &[u32] {
        &self.words[..self.len]
    }

    /// The frame's size in bytes.
    pub fn bytes(&self) -> u32 {
        (self.len * 4) as u32
    }

    /// Builds a frame from words pushed the way a CPU pushes them: highest
    /// address first.
    fn from_pushes(pushed: &[u32]) -> Self {
        let mut words = [0; MAX_FRAME_WORDS];
        for (dst, src) in words.iter_mut().zip(pushed.iter().rev()) {
            *dst = *src;
        }
        Self {
            words,
            len: pushed.len(),
        }
    }
}

/// A context to resume the guest in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    pub cs: u16,
    pub eip: u32,
    pub eflags: u32,
    pub ss: u16,
    pub esp: u32,
}

/// The outcome of [`bounce`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounce {
    /// Written at `resume.ss:resume.esp` (linear address = that segment's base
    /// + `resume.esp`, i.e. `resume.esp` for the flat selectors).
    pub frame: Frame,
    /// The handler's context: CS:EIP = handler, SS:ESP = below the frame,
    /// EFLAGS with TF/VM/RF/NT/IOPL cleared and the real IF set.
    pub resume: Resume,
    /// OR 1 into `vcpu_info.evtchn_upcall_mask` (after the frame captured its
    /// old value).
    pub set_upcall_mask: bool,
    /// Failsafe: resume with DS = ES = FS = GS = 0 (the guest reloads them
    /// from the frame; the values that failed are not loaded again).
    pub clear_data_segments: bool,
}

/// Builds the frame for delivering `delivery` to `handler`, interrupting `ctx`.
/// `upcall_mask` is `vcpu_info.evtchn_upcall_mask` now (saved in the frame's
/// CS word and shown as EFLAGS.IF); `kernel` is the `stack_switch` stack.
///
/// Errors (crash the domain): a null handler selector, a trap from ring 2/3
/// with no kernel stack registered, and a context that is not the guest's.
/// The frame's memory is not checked here: when writing it fails (a range
/// outside the guest's part of the address space, an unmapped or read-only
/// page) the domain crashes too, as in Xen.
pub fn bounce(
    ctx: &Interrupted,
    upcall_mask: u8,
    kernel: KernelStack,
    delivery: Delivery,
    handler: Handler,
) -> Result<Bounce, Fatal> {
    if is_null_selector(handler.cs) {
        return Err(Fatal::NullHandler);
    }
    let ring = ctx.cs & 3;
    if ring == 0 || ctx.eflags & EFLAGS_VM != 0 {
        return Err(Fatal::NotGuestContext);
    }

    let mut pushed = [0u32; MAX_FRAME_WORDS];
    let mut n = 0;
    let mut push = |w: u32| {
        pushed[n] = w;
        n += 1;
    };

    // Ring 2/3: switch to the kernel stack and save the user stack.
    let (ss, top) = if ring & 2 != 0 {
        if is_null_selector(kernel.ss) {
            return Err(Fatal::NoKernelStack);
        }
        push(u32::from(ctx.ss));
        push(ctx.esp);
        (kernel.ss, kernel.esp)
    } else {
        (ctx.ss, ctx.esp)
    };

    let virtual_if = if upcall_mask == 0 { EFLAGS_IF } else { 0 };
    push((ctx.eflags & !(EFLAGS_IF | EFLAGS_IOPL)) | virtual_if);
    push(u32::from(ctx.cs) | u32::from(upcall_mask) << FRAME_SAVED_UPCALL_MASK_SHIFT);
    push(ctx.eip);

    let (set_upcall_mask, failsafe) = match delivery {
        Delivery::Exception {
            error_code,
            mask_events,
        } => {
            if let Some(code) = error_code {
                push(code);
            }
            (mask_events, false)
        }
        Delivery::Event => (true, false),
        Delivery::Failsafe { mask_events } => {
            push(u32::from(ctx.gs));
            push(u32::from(ctx.fs));
            push(u32::from(ctx.es));
            push(u32::from(ctx.ds));
            (mask_events, true)
        }
    };

    let frame = Frame::from_pushes(&pushed[..n]);
    Ok(Bounce {
        frame,
        resume: Resume {
            cs: handler.cs,
            eip: handler.eip,
            eflags: (ctx.eflags & !(TRAP_CLEARED_FLAGS | EFLAGS_IOPL)) | EFLAGS_IF,
            ss,
            esp: top.wrapping_sub(frame.bytes()),
        },
        set_upcall_mask,
        clear_data_segments: failsafe,
    })
}

/// Whether the event upcall is due now (`evtchn_upcall_pending` set and
/// `evtchn_upcall_mask` clear); checked on every return to the guest.
pub const fn upcall_due(upcall_pending: u8, upcall_mask: u8) -> bool {
    upcall_pending != 0 && upcall_mask == 0
}

// ---- the iret hypercall (§6.6) ----

/// An `iret` that returns to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IretReturn {
    /// EAX to restore (the hypercall "returns" it).
    pub eax: u32,
    /// The context to return to.
    pub resume: Resume,
    /// The new `evtchn_upcall_mask` (0 or 1), assigned, not ORed. When it is 0
    /// and an upcall is pending, the upcall is delivered on this return.
    pub upcall_mask: u8,
    /// A frame to write at `resume.ss:resume.esp` first (only when an iret to
    /// VM86 is refused).
    pub frame: Option<Frame>,
}

/// The result of [`decode_iret`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Iret {
    /// Return to `resume`.
    Return(IretReturn),
    /// The frame asks for VM86 mode, which Oxen does not run; finish with
    /// [`Vm86Iret::refuse`].
    Vm86(Vm86Iret),
}

/// An iret frame with EFLAGS.VM set (all ten words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vm86Iret {
    /// EAX, EIP, CS, EFLAGS, ESP, SS, ES, DS, FS, GS.
    pub words: [u32; IRET_FRAME_MAX_WORDS],
}

/// How many words of the iret frame are needed, given its CS (word 2) and
/// EFLAGS (word 3): 10 for VM86, 4 for a return to ring 0/1, 6 for ring 2/3.
pub const fn iret_frame_words(cs: u32, eflags: u32) -> usize {
    if eflags & EFLAGS_VM != 0 {
        10
    } else if cs & 2 == 0 {
        4
    } else {
        6
    }
}

/// The `iret` hypercall: the guest jumped to the stub with an iret frame at
/// ESP, and the stub pushed EAX, so at `esp` (the ESP at `int $0x82`) lie EAX,
/// EIP, CS, EFLAGS, then ESP, SS for a return to ring 2/3.
///
/// `read(va)` reads the word at guest linear address `va` through the checked
/// accessor; only the words the frame needs are read (a frame at the very top
/// of a stack page is fine). `ss` is the current SS, kept for a return to
/// ring 1. EFLAGS is restored with IOPL stripped and the real IF on; the upcall
/// mask becomes `!EFLAGS.IF`. An iret to ring 0 or an unreadable frame crashes
/// the domain.
pub fn decode_iret(
    esp: u32,
    ss: u16,
    mut read: impl FnMut(u32) -> Result<u32, Errno>,
) -> Result<Iret, Fatal> {
    let mut word = |i: u32| {
        let va = esp.wrapping_add(4 * i);
        read(va).map_err(|_| Fatal::IretFrameFault(va))
    };
    let eax = word(0)?;
    let eip = word(1)?;
    let cs_word = word(2)?;
    let eflags = word(3)?;

    if eflags & EFLAGS_VM != 0 {
        let mut words = [eax, eip, cs_word, eflags, 0, 0, 0, 0, 0, 0];
        for (i, w) in words.iter_mut().enumerate().skip(4) {
            *w = word(i as u32)?;
        }
        return Ok(Iret::Vm86(Vm86Iret { words }));
    }

    // The upper half of the CS word is ignored (a bounce frame keeps the saved
    // upcall mask there).
    let cs = cs_word as u16;
    let (ss, new_esp) = match cs & 3 {
        0 => return Err(Fatal::IretToRing0),
        1 => (ss, esp.wrapping_add(16)),
        _ => {
            let user_esp = word(4)?;
            let user_ss = word(5)?;
            (user_ss as u16, user_esp)
        }
    };
    Ok(Iret::Return(IretReturn {
        eax,
        resume: Resume {
            cs,
            eip,
            eflags: (eflags & !EFLAGS_IOPL) | EFLAGS_IF,
            ss,
            esp: new_esp,
        },
        upcall_mask: u8::from(eflags & EFLAGS_IF == 0),
        frame: None,
    }))
}

impl Vm86Iret {
    /// Refuses the return to VM86 as today's Xen does for 32-bit guests: the
    /// frame is copied below `kernel_sp` as a #GP frame from VM86 mode (error
    /// code 0 in place of EAX, then EIP, CS, EFLAGS, ESP, SS, ES, DS, FS, GS as
    /// the guest gave them) and the #GP handler (`gp`, vector 13 of the virtual
    /// IDT; `gp_masks_events` its flag bit 2) runs on `kernel_ss`. Errors: a
    /// null #GP handler or no kernel stack (crash the domain).
    pub fn refuse(
        &self,
        kernel: KernelStack,
        gp: Handler,
        gp_masks_events: bool,
    ) -> Result<IretReturn, Fatal> {
        if is_null_selector(gp.cs) {
            return Err(Fatal::NullHandler);
        }
        if is_null_selector(kernel.ss) {
            return Err(Fatal::NoKernelStack);
        }
        let mut words = self.words;
        let eax = words[0];
        words[0] = 0;
        let eflags = words[3];
        let events_off = gp_masks_events || eflags & EFLAGS_IF == 0;
        let frame = Frame {
            words,
            len: IRET_FRAME_MAX_WORDS,
        };
        Ok(IretReturn {
            eax,
            resume: Resume {
                cs: gp.cs,
                eip: gp.eip,
                eflags: ((eflags & !(EFLAGS_IOPL | TRAP_CLEARED_FLAGS)) | EFLAGS_IF),
                ss: kernel.ss,
                esp: kernel.esp.wrapping_sub(frame.bytes()),
            },
            upcall_mask: u8::from(events_off),
            frame: Some(frame),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_abi::selectors::{FLAT_KERNEL_CS, FLAT_KERNEL_SS, FLAT_USER_CS, FLAT_USER_DS};

    const HANDLER: Handler = Handler {
        cs: FLAT_KERNEL_CS,
        eip: 0xC010_2000,
    };
    const KSTACK: KernelStack = KernelStack {
        ss: FLAT_KERNEL_SS,
        esp: 0xC03F_E000,
    };
    /// Reserved bit 1 of EFLAGS is always set.
    const FL: u32 = 0x2;

    fn kernel_ctx() -> Interrupted {
        Interrupted {
            eip: 0xC012_3456,
            cs: FLAT_KERNEL_CS,
            eflags: FL | EFLAGS_IF,
            esp: 0xC03F_DF00,
            ss: FLAT_KERNEL_SS,
            ds: FLAT_USER_DS,
            es: FLAT_USER_DS,
            fs: 0,
            gs: 0x33,
        }
    }

    fn user_ctx() -> Interrupted {
        Interrupted {
            eip: 0x0804_8123,
            cs: FLAT_USER_CS,
            eflags: FL | EFLAGS_IF,
            esp: 0xBFFF_F000,
            ss: FLAT_USER_DS,
            ds: FLAT_USER_DS,
            es: FLAT_USER_DS,
            fs: 0,
            gs: 0x33,
        }
    }

    fn exception(error_code: Option<u32>, mask_events: bool) -> Delivery {
        Delivery::Exception {
            error_code,
            mask_events,
        }
    }

    #[test]
    fn exception_without_error_code_from_ring1() {
        let ctx = kernel_ctx();
        let b = bounce(&ctx, 0, KSTACK, exception(None, false), HANDLER).unwrap();
        // Same stack, three words: EIP, CS (mask 0), EFLAGS (IF = !mask = 1).
        assert_eq!(
            b.frame.words(),
            &[0xC012_3456, FLAT_KERNEL_CS as u32, FL | EFLAGS_IF]
        );
        assert_eq!(
            b.resume,
            Resume {
                cs: FLAT_KERNEL_CS,
                eip: 0xC010_2000,
                eflags: FL | EFLAGS_IF,
                ss: FLAT_KERNEL_SS,
                esp: 0xC03F_DF00 - 12,
            }
        );
        assert!(!b.set_upcall_mask);
        assert!(!b.clear_data_segments);
    }

    #[test]
    fn page_fault_with_error_code_from_ring3_switches_stacks() {
        let ctx = user_ctx();
        let b = bounce(&ctx, 0, KSTACK, exception(Some(0x6), true), HANDLER).unwrap();
        assert_eq!(
            b.frame.words(),
            &[
                0x6,
                0x0804_8123,
                FLAT_USER_CS as u32,
                FL | EFLAGS_IF,
                0xBFFF_F000,
                FLAT_USER_DS as u32
            ]
        );
        assert_eq!(b.resume.ss, FLAT_KERNEL_SS);
        assert_eq!(b.resume.esp, 0xC03F_E000 - 24);
        assert_eq!((b.resume.cs, b.resume.eip), (HANDLER.cs, HANDLER.eip));
        // Interrupt-gate semantics (flag bit 2).
        assert!(b.set_upcall_mask);
        // Ring 2 counts as user mode too.
        let ctx2 = Interrupted {
            cs: 0x0012 | 2,
            ..user_ctx()
        };
        let b = bounce(&ctx2, 0, KSTACK, exception(None, false), HANDLER).unwrap();
        assert_eq!(b.resume.ss, FLAT_KERNEL_SS);
        assert_eq!(b.frame.words().len(), 5);
    }

    #[test]
    fn event_upcall_saves_the_mask_in_the_cs_word() {
        // Normally the upcall is delivered with the mask clear (saved 0,
        // EFLAGS.IF 1); the frame carries whatever byte the mask held.
        let ctx = kernel_ctx();
        let b = bounce(&ctx, 0, KSTACK, Delivery::Event, HANDLER).unwrap();
        assert_eq!(
            b.frame.words(),
            &[0xC012_3456, FLAT_KERNEL_CS as u32, FL | EFLAGS_IF]
        );
        assert!(b.set_upcall_mask);

        let b = bounce(&ctx, 1, KSTACK, Delivery::Event, HANDLER).unwrap();
        assert_eq!(
            b.frame.words(),
            &[0xC012_3456, 0x0001_0000 | FLAT_KERNEL_CS as u32, FL]
        );
        let b = bounce(&user_ctx(), 0xA5, KSTACK, Delivery::Event, HANDLER).unwrap();
        assert_eq!(b.frame.words()[1], 0x00A5_0000 | FLAT_USER_CS as u32);
        assert_eq!(b.frame.words()[2] & EFLAGS_IF, 0);
        assert!(b.set_upcall_mask);
        // The real IF stays on: the virtual IF is the mask.
        assert_ne!(b.resume.eflags & EFLAGS_IF, 0);
    }

    #[test]
    fn failsafe_pushes_data_segments() {
        let ctx = user_ctx();
        let b = bounce(
            &ctx,
            0,
            KSTACK,
            Delivery::Failsafe { mask_events: false },
            HANDLER,
        )
        .unwrap();
        assert_eq!(
            b.frame.words(),
            &[
                FLAT_USER_DS as u32,
                FLAT_USER_DS as u32,
                0,
                0x33,
                0x0804_8123,
                FLAT_USER_CS as u32,
                FL | EFLAGS_IF,
                0xBFFF_F000,
                FLAT_USER_DS as u32,
            ]
        );
        assert_eq!(b.resume.esp, KSTACK.esp - 36);
        assert!(b.clear_data_segments);
        assert!(!b.set_upcall_mask);
        // From ring 1, with the callback registered with CALLBACKF_mask_events.
        let ctx = Interrupted {
            ds: 0x7B,
            es: 0x7B,
            fs: 0xD8,
            gs: 0xE0,
            ..kernel_ctx()
        };
        let b = bounce(
            &ctx,
            0,
            KSTACK,
            Delivery::Failsafe { mask_events: true },
            HANDLER,
        )
        .unwrap();
        assert_eq!(
            b.frame.words(),
            &[
                0x7B,
                0x7B,
                0xD8,
                0xE0,
                0xC012_3456,
                FLAT_KERNEL_CS as u32,
                FL | EFLAGS_IF
            ]
        );
        assert_eq!(b.resume.esp, ctx.esp - 28);
        assert!(b.set_upcall_mask);
    }

    #[test]
    fn resume_flags_are_cleared_and_frame_keeps_them() {
        let ctx = Interrupted {
            eflags: FL | EFLAGS_IF | EFLAGS_TF | EFLAGS_RF | EFLAGS_NT | EFLAGS_IOPL | 0x8D5,
            ..kernel_ctx()
        };
        let b = bounce(&ctx, 0, KSTACK, exception(None, false), HANDLER).unwrap();
        // Arithmetic flags and TF/RF/NT are kept in the frame; IOPL is not shown.
        assert_eq!(
            b.frame.words()[2],
            FL | EFLAGS_IF | EFLAGS_TF | EFLAGS_RF | EFLAGS_NT | 0x8D5
        );
        assert_eq!(b.resume.eflags, FL | EFLAGS_IF | 0x8D5);
        assert_eq!(
            b.resume.eflags & (EFLAGS_TF | EFLAGS_RF | EFLAGS_NT | EFLAGS_VM | EFLAGS_IOPL),
            0
        );
    }

    #[test]
    fn null_handler_crashes() {
        for cs in [0, 1, 2, 3] {
            let h = Handler { cs, eip: 0x1000 };
            assert_eq!(
                bounce(&kernel_ctx(), 0, KSTACK, exception(None, false), h),
                Err(Fatal::NullHandler)
            );
            assert_eq!(
                bounce(&kernel_ctx(), 0, KSTACK, Delivery::Event, h),
                Err(Fatal::NullHandler)
            );
        }
        // A non-null selector at index 0 of the LDT is a selector.
        let h = Handler { cs: 5, eip: 0 };
        assert!(bounce(&kernel_ctx(), 0, KSTACK, Delivery::Event, h).is_ok());
    }

    #[test]
    fn no_kernel_stack_from_ring3_crashes() {
        let none = KernelStack { ss: 0, esp: 0 };
        assert_eq!(
            bounce(&user_ctx(), 0, none, exception(None, false), HANDLER),
            Err(Fatal::NoKernelStack)
        );
        // From ring 1 the kernel stack is not needed.
        assert!(bounce(&kernel_ctx(), 0, none, exception(None, false), HANDLER).is_ok());
    }

    #[test]
    fn non_guest_context_is_refused() {
        let ring0 = Interrupted {
            cs: 0xE008,
            ..kernel_ctx()
        };
        assert_eq!(
            bounce(&ring0, 0, KSTACK, Delivery::Event, HANDLER),
            Err(Fatal::NotGuestContext)
        );
        let vm86 = Interrupted {
            eflags: FL | EFLAGS_IF | EFLAGS_VM,
            ..user_ctx()
        };
        assert_eq!(
            bounce(&vm86, 0, KSTACK, Delivery::Event, HANDLER),
            Err(Fatal::NotGuestContext)
        );
    }

    #[test]
    fn upcall_due_rule() {
        assert!(upcall_due(1, 0));
        assert!(!upcall_due(1, 1));
        assert!(!upcall_due(0, 0));
    }

    /// A guest stack for `decode_iret`: `words` at `base`, anything else faults.
    fn stack(base: u32, words: &[u32]) -> impl FnMut(u32) -> Result<u32, Errno> + '_ {
        move |va| {
            let i = va.wrapping_sub(base) / 4;
            if va % 4 != 0 || va < base {
                return Err(Errno::EFAULT);
            }
            words.get(i as usize).copied().ok_or(Errno::EFAULT)
        }
    }

    #[test]
    fn iret_to_ring1() {
        let esp = 0xC03F_DF00;
        // EAX, EIP, CS with a saved mask in the upper half, EFLAGS with IOPL 3 and IF.
        let frame = [
            0x1234,
            0xC012_3456,
            0x0001_0000 | FLAT_KERNEL_CS as u32,
            FL | EFLAGS_IF | EFLAGS_IOPL,
        ];
        // Only four words are readable: the frame ends the stack.
        let r = decode_iret(esp, FLAT_KERNEL_SS, stack(esp, &frame)).unwrap();
        assert_eq!(
            r,
            Iret::Return(IretReturn {
                eax: 0x1234,
                resume: Resume {
                    cs: FLAT_KERNEL_CS,
                    eip: 0xC012_3456,
                    eflags: FL | EFLAGS_IF,
                    ss: FLAT_KERNEL_SS,
                    esp: esp + 16,
                },
                upcall_mask: 0,
                frame: None,
            })
        );
    }

    #[test]
    fn iret_to_ring3() {
        let esp = 0xC03F_DFE8;
        // IF clear: the return masks events, but the real IF is on.
        let frame = [
            7,
            0x0804_8000,
            FLAT_USER_CS as u32,
            FL | 0x46,
            0xBFFF_E000,
            FLAT_USER_DS as u32,
        ];
        let Iret::Return(r) = decode_iret(esp, FLAT_KERNEL_SS, stack(esp, &frame)).unwrap() else {
            panic!("not a return");
        };
        assert_eq!(r.eax, 7);
        assert_eq!(
            r.resume,
            Resume {
                cs: FLAT_USER_CS,
                eip: 0x0804_8000,
                eflags: FL | 0x46 | EFLAGS_IF,
                ss: FLAT_USER_DS,
                esp: 0xBFFF_E000,
            }
        );
        assert_eq!(r.upcall_mask, 1);
        // Truncated frame: the fifth word is missing.
        assert_eq!(
            decode_iret(esp, FLAT_KERNEL_SS, stack(esp, &frame[..4])),
            Err(Fatal::IretFrameFault(esp + 16))
        );
    }

    #[test]
    fn iret_to_ring0_crashes() {
        for cs in [0xE008u32, 0x0010, 0xE018] {
            let frame = [0, 0xC000_0000, cs, FL | EFLAGS_IF];
            assert_eq!(
                decode_iret(0x1000, FLAT_KERNEL_SS, stack(0x1000, &frame)),
                Err(Fatal::IretToRing0)
            );
        }
    }

    #[test]
    fn iret_frame_fault_crashes() {
        assert_eq!(
            decode_iret(0x1000, FLAT_KERNEL_SS, |_| Err(Errno::EFAULT)),
            Err(Fatal::IretFrameFault(0x1000))
        );
    }

    #[test]
    fn iret_frame_word_counts() {
        assert_eq!(iret_frame_words(FLAT_KERNEL_CS as u32, FL), 4);
        assert_eq!(iret_frame_words(FLAT_USER_CS as u32, FL), 6);
        assert_eq!(iret_frame_words(0x12 | 2, FL), 6);
        assert_eq!(iret_frame_words(FLAT_USER_CS as u32, FL | EFLAGS_VM), 10);
    }

    #[test]
    fn iret_to_vm86_is_refused_with_a_gp() {
        let esp = 0xC03F_DF00;
        let frame = [
            0x55,
            0x0100,
            0x2000,
            FL | EFLAGS_VM | EFLAGS_IF | EFLAGS_TF,
            0xFFFE,
            0x3000,
            0x11,
            0x22,
            0x33,
            0x44,
        ];
        let Iret::Vm86(v) = decode_iret(esp, FLAT_KERNEL_SS, stack(esp, &frame)).unwrap() else {
            panic!("not refused");
        };
        assert_eq!(v.words, frame);
        let gp = Handler {
            cs: FLAT_KERNEL_CS,
            eip: 0xC010_0D00,
        };
        let r = v.refuse(KSTACK, gp, false).unwrap();
        assert_eq!(r.eax, 0x55);
        let f = r.frame.unwrap();
        assert_eq!(f.words()[0], 0, "error code");
        assert_eq!(&f.words()[1..], &frame[1..]);
        assert_eq!(
            r.resume,
            Resume {
                cs: gp.cs,
                eip: gp.eip,
                eflags: FL | EFLAGS_IF,
                ss: KSTACK.ss,
                esp: KSTACK.esp - 40,
            }
        );
        assert_eq!(r.upcall_mask, 0);
        // A #GP entry with interrupt-gate semantics masks events.
        assert_eq!(v.refuse(KSTACK, gp, true).unwrap().upcall_mask, 1);
        // No #GP handler, no kernel stack: crash.
        assert_eq!(
            v.refuse(KSTACK, Handler::default(), false),
            Err(Fatal::NullHandler)
        );
        assert_eq!(
            v.refuse(KernelStack::default(), gp, false),
            Err(Fatal::NoKernelStack)
        );
    }

    #[test]
    fn bounce_then_iret_round_trip() {
        // The frame a bounce writes from ring 3, with EAX pushed below it by the
        // iret stub, decodes back to the interrupted context.
        let ctx = Interrupted {
            eflags: FL | EFLAGS_IF | 0x85,
            ..user_ctx()
        };
        let b = bounce(&ctx, 0, KSTACK, exception(None, true), HANDLER).unwrap();
        let mut stack_words = [0u32; 6];
        stack_words[0] = 0xEAEA;
        stack_words[1..].copy_from_slice(b.frame.words());
        let esp = b.resume.esp - 4;
        let Iret::Return(r) = decode_iret(esp, b.resume.ss, stack(esp, &stack_words)).unwrap()
        else {
            panic!("not a return");
        };
        assert_eq!(r.eax, 0xEAEA);
        assert_eq!(
            (
                r.resume.cs,
                r.resume.eip,
                r.resume.eflags,
                r.resume.ss,
                r.resume.esp
            ),
            (ctx.cs, ctx.eip, ctx.eflags, ctx.ss, ctx.esp)
        );
        assert_eq!(r.upcall_mask, 0);
    }
}
