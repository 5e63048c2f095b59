//! The trap hypercalls (XEN-PV-ABI.md §6): `set_trap_table`, `stack_switch`,
//! `set_callbacks`, `callback_op`, `fpu_taskswitch` and `iret`. The rules live
//! in `hv_core::{vidt, bounce}`; here are the guest copies and the vcpu state.

use hv_core::bounce::{Iret, KernelStack, decode_iret};
use hv_core::descriptor::fixup_guest_selector;
use hv_core::hypercall::Outcome;
use xen_abi::errno::Errno;
use xen_abi::traps::{
    CALLBACKOP_REGISTER, CALLBACKOP_UNREGISTER, CallbackRegister, CallbackUnregister, TrapInfo,
};

use super::Ctx;
use crate::arch::x86::uaccess::read_guest;
use crate::domain::{fault, shared};

/// Trap-table entries applied per invocation before `set_trap_table` yields.
const TRAP_TABLE_CHUNK: u32 = 256;

pub fn do_set_trap_table(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let table = args[0];
    let vcpu = &mut ctx.dom().vcpu;
    if table == 0 {
        vcpu.idt.clear();
        vcpu.load_direct_entry();
        return Ok(0).into();
    }
    let size = core::mem::size_of::<TrapInfo>() as u32;
    let entries =
        (0..TRAP_TABLE_CHUNK).map(|i| read_guest::<TrapInfo>(table.wrapping_add(i * size)));
    let r = vcpu.idt.set_trap_table(entries);
    // Entries written before a fault stay written (as in Xen): the gate
    // follows whatever slot 0x80 holds now.
    vcpu.load_direct_entry();
    match r {
        Ok(p) if p.terminated => Ok(0).into(),
        Ok(_) => Outcome::Continue([table.wrapping_add(TRAP_TABLE_CHUNK * size), 0, 0, 0, 0]),
        Err(e) => Err(e).into(),
    }
}

pub fn do_stack_switch(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [ss, esp, ..] = args;
    let vcpu = &mut ctx.dom().vcpu;
    vcpu.kernel_stack = KernelStack {
        ss: fixup_guest_selector(ss as u16),
        esp,
    };
    vcpu.load_direct_entry();
    Ok(0).into()
}

pub fn do_set_callbacks(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [ev_cs, ev_eip, fs_cs, fs_eip, _] = args;
    ctx.dom()
        .vcpu
        .callbacks
        .set_callbacks(ev_cs, ev_eip, fs_cs, fs_eip);
    Ok(0).into()
}

pub fn do_callback_op(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [cmd, arg, ..] = args;
    let vcpu = &mut ctx.dom().vcpu;
    let r = match cmd {
        CALLBACKOP_REGISTER => read_guest::<CallbackRegister>(arg)
            .and_then(|reg| vcpu.callbacks.register(&mut vcpu.idt, &reg)),
        CALLBACKOP_UNREGISTER => read_guest::<CallbackUnregister>(arg)
            .and_then(|u| vcpu.callbacks.unregister(&mut vcpu.idt, &u)),
        _ => Err(Errno::ENOSYS),
    };
    r.map(|()| 0).into()
}

/// `fpu_taskswitch(set)`: sets or clears the virtual CR0.TS; the real TS
/// follows it, so the guest's next FPU instruction traps (#NM) while it is set.
pub fn do_fpu_taskswitch(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let set = args[0] != 0;
    ctx.dom().vcpu.fpu_ts = set;
    crate::domain::sched::fpu_sync_ts(ctx.dom());
    Ok(0).into()
}

/// The `iret` hypercall (§6.6): returns to the context in the frame at the
/// guest's ESP. Never "returns" to the stub; a bad frame crashes the domain.
pub fn do_iret(ctx: &mut Ctx, _args: [u32; 5]) -> Outcome {
    let (esp, ss) = (ctx.frame.esp, ctx.frame.ss as u16);
    let ldt_ents = ctx.dom().vcpu.ldt_ents;
    // The frame lies on the guest's current stack segment (base applied,
    // limit checked).
    let decoded = decode_iret(esp, ss, |offset| {
        fault::guest_stack_linear(ldt_ents, ss, offset, 4)
            .ok_or(Errno::EFAULT)
            .and_then(read_guest::<u32>)
    });
    match decoded {
        Ok(Iret::Return(r)) if fault::resume_ok_in(&r.resume, ctx.dom()) => {
            ctx.frame.resume(&r.resume);
            let dom = ctx.dom();
            shared::set_upcall_mask(dom.shared_va, r.upcall_mask);
            Outcome::Done(r.eax as i32)
        }
        Ok(Iret::Return(r)) => crash(
            ctx,
            format_args!(
                "iret to {:#x}:{:#x} (ss {:#x})",
                r.resume.cs, r.resume.eip, r.resume.ss
            ),
        ),
        Ok(Iret::Vm86(_)) => crash(
            ctx,
            format_args!("iret to VM86 mode, which Oxen does not run"),
        ),
        Err(e) => crash(ctx, format_args!("iret: {e}")),
    }
}

/// Crashes the calling domain for a bad `iret` (the hypercall then never returns).
fn crash(ctx: &mut Ctx, why: core::fmt::Arguments<'_>) -> Outcome {
    let frame = ctx.frame;
    fault::crash_domain(ctx.dom(), &frame, why);
    Outcome::Done(Errno::EINVAL.to_ret())
}

/// `nmi_op(cmd, arg)` (#28): the NMI callback (§6.3), kept in slot 2 of the
/// virtual IDT. Only the privileged domain gets NMIs (Xen's rule); the
/// registration works for any domain.
pub fn do_nmi_op(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    use xen_abi::traps::{XENNMI_REGISTER_CALLBACK, XENNMI_UNREGISTER_CALLBACK, XennmiCallback};
    let [cmd, arg, ..] = args;
    let idt = &mut ctx.dom().vcpu.idt;
    let r = match cmd {
        XENNMI_REGISTER_CALLBACK => read_guest::<XennmiCallback>(arg).map(|cb| {
            idt.set_nmi_callback(cb.handler_address);
            0
        }),
        XENNMI_UNREGISTER_CALLBACK => {
            idt.clear_nmi_callback();
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    };
    r.into()
}
