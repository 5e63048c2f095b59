//! Traps taken while a guest ran (XEN-PV-ABI.md §6): stores to read-only L1s
//! under `writable_pagetables` are emulated; a guest's `int n` (arriving as
//! #GP) is re-delivered when its trap table allows it; #NM implements the
//! virtual CR0.TS; everything else is bounced to the handler the guest
//! registered with `set_trap_table`. A trap the guest cannot take (no handler,
//! no kernel stack, a stack Oxen cannot write) crashes the domain.

use core::fmt;

use hv_core::bounce::{Delivery, Handler, Resume, bounce};
use hv_core::descriptor::{Descriptor, code_selector_accepts, stack_range};
use xen_abi::layout::GUEST_SEGMENT_LIMIT_END;
use xen_abi::sched::SHUTDOWN_CRASH;
use xen_abi::selectors::{FLAT_KERNEL_CS, FLAT_KERNEL_SS, FLAT_USER_CS, FLAT_USER_SS};
use xen_abi::traps::{
    VMASST_TYPE_4GB_SEGMENTS, VMASST_TYPE_4GB_SEGMENTS_NOTIFY, VMASST_TYPE_WRITABLE_PAGETABLES,
};
use zerocopy::IntoBytes;

use super::{DOMAINS, Domain, shared};
use crate::arch::x86::traps::{RegisterDump, TrapFrame, vector_name};
use crate::arch::x86::uaccess::copy_to_guest;

/// #PF error code bits.
const PF_PRESENT: u16 = 1 << 0;
const PF_WRITE: u16 = 1 << 1;
const PF_USER: u16 = 1 << 2;
const VECTOR_UD: u16 = 6;
const VECTOR_NM: u16 = 7;
const VECTOR_GP: u16 = 13;
const VECTOR_PF: u16 = 14;
/// The vector `4gb_segments_notify` raises after each emulation.
const VECTOR_4GB_NOTIFY: u8 = 15;

/// Exceptions for which the CPU pushes an error code.
fn has_error_code(vector: u16) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// Whether `setvcpucontext` may start a vcpu at `r`: a context given with
/// no descriptor tables of its own, so only the flat kernel and user
/// selectors, and the EIP inside the flat segments' limit (0xF6800000).
pub fn resume_ok(r: &Resume) -> bool {
    matches!(
        (r.cs, r.ss),
        (FLAT_KERNEL_CS, FLAT_KERNEL_SS) | (FLAT_USER_CS, FLAT_USER_SS)
    ) && r.eip < GUEST_SEGMENT_LIMIT_END
}

/// What selector `sel` names for the running vcpu (`ldt_ents` entries of
/// LDT loaded): Oxen's flat ones, or the guest's own GDT and LDT entries
/// (shadowed, so checked by `check_descriptor`).
fn descriptor(sel: u16, ldt_ents: u32) -> Option<Descriptor> {
    crate::arch::x86::gdt::descriptor_for(sel, ldt_ents as usize).map(Descriptor::from_u64)
}

/// Whether Oxen may return to `r` in the running domain: any code and
/// stack selector, Oxen's flat ones or the guest's own in its GDT or LDT,
/// that the CPU takes for ring 1 or 3 (as Xen accepts them), with EIP
/// inside the code segment's limit. What passes here cannot fault on
/// Oxen's `iret` unless the guest changes its descriptors meanwhile, and
/// that case has the `iret`'s exception-table fixup.
pub fn resume_ok_in(r: &Resume, dom: &Domain) -> bool {
    let ldt = dom.vcpu.ldt_ents;
    code_selector_accepts(r.cs, descriptor(r.cs, ldt), r.eip)
        && stack_range(r.ss, (r.cs & 3) as u8, descriptor(r.ss, ldt), r.esp, 0).is_some()
}

/// The linear address of `len` bytes at `ss:esp` on a guest stack of ring
/// `ss & 3` (the segment's base applied, its limit checked), or `None`.
pub fn guest_stack_linear(ldt_ents: u32, ss: u16, esp: u32, len: u32) -> Option<u32> {
    stack_range(ss, (ss & 3) as u8, descriptor(ss, ldt_ents), esp, len)
}

/// Reports why `dom` cannot go on and shuts it down as crashed.
pub fn crash_domain(dom: &mut Domain, frame: &TrapFrame, why: fmt::Arguments<'_>) {
    crate::printk!(
        "d{}: {why}: crashing the domain\n{}\n",
        dom.domid,
        RegisterDump {
            frame,
            esp: frame.esp
        }
    );
    super::shutdown(dom, SHUTDOWN_CRASH);
}

/// Bounces `vector` (with `error_code`, if any) to the guest's handler.
fn deliver(
    frame: &mut TrapFrame,
    dom: &Domain,
    vector: u8,
    error_code: Option<u32>,
) -> Result<(), fmt::Arguments<'static>> {
    let entry = dom.vcpu.idt.entry(vector);
    deliver_to(frame, dom, entry.delivery(error_code), entry.handler())
}

/// Builds the frame for `delivery` on the guest's stack and resumes the
/// guest at `handler`.
fn deliver_to(
    frame: &mut TrapFrame,
    dom: &Domain,
    delivery: Delivery,
    handler: Handler,
) -> Result<(), fmt::Arguments<'static>> {
    let ctx = frame.interrupted();
    let mask = shared::upcall_mask(dom.shared_va);
    let b = bounce(&ctx, mask, dom.vcpu.kernel_stack, delivery, handler)
        .map_err(|_| format_args!("no way to deliver the trap (no handler, or no kernel stack)"))?;
    if !resume_ok_in(&b.resume, dom) {
        return Err(format_args!(
            "trap handler or kernel stack is not one Oxen can return to"
        ));
    }
    guest_stack_linear(
        dom.vcpu.ldt_ents,
        b.resume.ss,
        b.resume.esp,
        b.frame.bytes(),
    )
    .and_then(|linear| copy_to_guest(linear, b.frame.words().as_bytes()).ok())
    .ok_or(format_args!(
        "cannot write the trap frame on the guest's kernel stack"
    ))?;
    frame.resume(&b.resume);
    if b.set_upcall_mask {
        shared::set_upcall_mask(dom.shared_va, 1);
    }
    if b.clear_data_segments {
        (frame.ds, frame.es, frame.fs, frame.gs) = (0, 0, 0, 0);
    }
    Ok(())
}

/// Handles exception `frame.entry_vector` from a guest ring; `cr2` was read
/// on entry.
pub fn guest_trap(frame: &mut TrapFrame, cr2: u32) {
    let mut table = DOMAINS.lock();
    let vector = frame.entry_vector;
    if vector == VECTOR_NM {
        // The FPU follows the vcpus lazily: this is the first FPU use since
        // the vcpu came on the CPU (or since its guest set TS).
        super::sched::fpu_take(&mut table);
    }
    let dom = table
        .current_mut()
        .expect("a guest trap always has a current domain");
    let ptwr_candidate = vector == VECTOR_PF
        && dom.has_assist(VMASST_TYPE_WRITABLE_PAGETABLES)
        && frame.error_code & (PF_PRESENT | PF_WRITE | PF_USER) == (PF_PRESENT | PF_WRITE);
    if ptwr_candidate {
        match crate::mm::ptwr::emulate(frame, dom, cr2) {
            Ok(()) => {
                crate::hypercall::audit_if_asked(&table);
                return;
            }
            // Xen's MEM_LOG: a guest message at debug level.
            Err(e) => crate::guest_log!(
                dom,
                Debug,
                "d{}: page-table write at {:#010x} not emulated: {e}",
                dom.domid,
                cr2
            ),
        }
    }
    // A privileged instruction in ring 1 (#GP with error code 0), or the
    // forced-emulation CPUID (#UD): emulated where Xen does.
    if vector == VECTOR_GP
        && frame.error_code == 0
        && super::emulate::emulate_privileged(frame, dom).is_ok()
    {
        // A CR3 write changes references.
        crate::hypercall::audit_if_asked(&table);
        return;
    }
    if vector == VECTOR_UD && super::emulate::emulate_cpuid(frame, dom) {
        return;
    }
    // A move through a segment whose 4 GiB limit Oxen truncated.
    let four_gb = dom.has_assist(VMASST_TYPE_4GB_SEGMENTS);
    let notify = dom.has_assist(VMASST_TYPE_4GB_SEGMENTS_NOTIFY);
    if vector == VECTOR_GP && frame.error_code == 0 && (four_gb || notify) {
        match super::emulate::emulate_4gb_access(frame, dom) {
            Ok(()) if notify => {
                // `4gb_segments_notify`: the guest hears of each emulation
                // through vector 15, delivered after the access.
                if let Err(why) = deliver(frame, dom, VECTOR_4GB_NOTIFY, None) {
                    let frame_copy = *frame;
                    crash_domain(
                        dom,
                        &frame_copy,
                        format_args!("4gb_segments_notify: vector 15 cannot be delivered: {why}"),
                    );
                }
                return;
            }
            Ok(()) => return,
            Err(e) => crate::guest_log!(
                dom,
                Debug,
                "d{}: #GP at {:#010x} not a 4 GiB-segment access: {e}",
                dom.domid,
                frame.eip
            ),
        }
    }
    if vector == VECTOR_NM {
        // The registers hold the vcpu's state now; the trap is the guest's
        // own only if its virtual TS is set.
        if !dom.vcpu.fpu_ts {
            return;
        }
        dom.vcpu.fpu_ts = false;
    }
    // `int n` from the guest arrives as #GP with error code (n << 3) | 2.
    let (deliver_vector, error_code) = if vector == VECTOR_GP && frame.error_code & 3 == 2 {
        let n = (frame.error_code >> 3) as u8;
        if dom.vcpu.idt.softint_permitted(n, (frame.cs & 3) as u8) {
            frame.eip = frame.eip.wrapping_add(2);
            (n, None)
        } else {
            (vector as u8, Some(u32::from(frame.error_code)))
        }
    } else {
        (
            vector as u8,
            has_error_code(vector).then_some(u32::from(frame.error_code)),
        )
    };
    match deliver(frame, dom, deliver_vector, error_code) {
        Ok(()) => {
            if vector == VECTOR_PF {
                shared::set_cr2(dom.shared_va, cr2);
            }
        }
        Err(why) => {
            let frame_copy = *frame;
            crash_domain(
                dom,
                &frame_copy,
                format_args!(
                    "unhandled trap {} ({}) error code {:#06x}, cr2 {:#010x}, {}",
                    vector,
                    vector_name(vector),
                    frame.error_code,
                    cr2,
                    why
                ),
            );
        }
    }
}

/// On the way back to the guest, one of the data selectors in `frame` could
/// not be loaded (its descriptor changed or went away while the guest was in
/// Oxen). As in Xen, the guest's failsafe callback gets a frame holding all
/// four selectors and resumes with DS = ES = FS = GS = 0; with no failsafe
/// callback the domain cannot go on.
pub fn segment_reload_failed(frame: &mut TrapFrame) {
    let f = *frame;
    failsafe(
        frame,
        format_args!(
            "data selectors ds={:#06x} es={:#06x} fs={:#06x} gs={:#06x} cannot be reloaded",
            f.ds, f.es, f.fs, f.gs
        ),
    );
}

/// On the way back to the guest, Oxen's `iret` to `frame` faulted with
/// `vector` (#GP, #NP or #SS) and `error_code`: its code or stack selector
/// went bad while the guest was in Oxen (the guest removed or changed the
/// descriptor it was running on), or its EIP lies beyond the code segment's
/// limit. As 32-bit Xen does (the `iret` fixup of its return path), the
/// guest's failsafe callback gets the frame it could not return to, with
/// its four data selectors; when that callback cannot be delivered (none
/// registered, or the stack to deliver it on is the selector that went bad)
/// the domain crashes. Either way only the guest pays.
pub fn iret_failed(frame: &mut TrapFrame, vector: u16, error_code: u16) {
    let f = *frame;
    failsafe(
        frame,
        format_args!(
            "iret to {:#06x}:{:#010x} (ss:esp {:#06x}:{:#010x}) faulted: {} error code {:#06x}",
            f.cs,
            f.eip,
            f.ss,
            f.esp,
            vector_name(vector),
            error_code
        ),
    );
}

/// Bounces the failsafe callback for `what`, a part of `frame` that Oxen
/// could not load on the way back to the guest, or crashes the domain.
fn failsafe(frame: &mut TrapFrame, what: fmt::Arguments<'_>) {
    let mut table = DOMAINS.lock();
    let dom = table
        .current_mut()
        .expect("only a guest frame is returned to through the fixups");
    let (delivery, handler) = dom.vcpu.callbacks.failsafe_delivery();
    crate::guest_log!(dom, Debug, "d{}: {what}: failsafe callback", dom.domid);
    if let Err(why) = deliver_to(frame, dom, delivery, handler) {
        let frame_copy = *frame;
        crash_domain(
            dom,
            &frame_copy,
            format_args!("{what} and the failsafe callback cannot be delivered: {why}"),
        );
        // Nothing of the guest's is reloaded any more.
        (frame.ds, frame.es, frame.fs, frame.gs) = (0, 0, 0, 0);
    }
}
