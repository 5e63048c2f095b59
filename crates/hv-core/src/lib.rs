//! Oxen's pure logic, kept free of the CPU so that it is tested on the host.
//!
//! Everything here is `no_std` outside of tests; `src/` in the hypervisor binds it
//! to the machine (page tables, port I/O, the serial line).
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
pub mod addr;
pub mod bootinfo;
pub mod bounce;
pub mod cmdline;
pub mod conline;
pub mod conring;
pub mod descriptor;
pub mod evtchn;
pub mod frame_alloc;
pub mod gnttab;
pub mod guest_access;
pub mod hypercall;
pub mod mapcache;
pub mod pirq;
pub mod privop;
pub mod ptwr;
pub mod ratelimit;
pub mod rtc;
pub mod sanitise;
pub mod sched;
pub mod seg4gb;
pub mod tsc;
pub mod vidt;
