//! The hypercall table's shape and its dispatch rules, independent of the CPU.
//!
//! The hypervisor declares its table once as a list of `Hypercall<C>` (number,
//! who may call it, handler); the name and argument count come from the ABI's
//! own table (`xen_abi::hypercall::HYPERCALLS`), so they cannot disagree.
//! Dispatch and tracing derive from the table, and `Table::new` rejects a
//! declaration the ABI does not know.
//!
//! Dispatch rules (XEN-PV-ABI.md §1.1, §2): a number at or above 64, or one
//! without a handler, returns `-ENOSYS`; a privileged hypercall from a domain
//! without privilege returns `-EPERM`; otherwise the handler's `Result` becomes
//! the return value (`Ok(n)` → `n`, `Err(e)` → `-e`). A handler may instead ask
//! for a continuation: the guest re-executes the hypercall with new arguments
//! (Xen rewinds EIP onto the `int $0x82`), which is how long batches yield.

use xen_abi::errno::Errno;
pub use xen_abi::hypercall::MMU_UPDATE_PREEMPTED;
use xen_abi::hypercall::{HypercallInfo, NR_HYPERCALLS as ABI_NR_HYPERCALLS};

/// Number of hypercall slots on x86 (`NR_hypercalls`).
pub const NR_HYPERCALLS: usize = ABI_NR_HYPERCALLS as usize;

/// Who may make a hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Any domain.
    Any,
    /// Only a privileged domain (dom0).
    Privileged,
}

/// What a handler produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Return this value in EAX.
    Done(i32),
    /// Re-execute the hypercall with these argument registers (preemption).
    Continue([u32; 5]),
}

impl From<Result<i32, Errno>> for Outcome {
    fn from(r: Result<i32, Errno>) -> Self {
        match r {
            Ok(v) => Outcome::Done(v),
            Err(e) => Outcome::Done(e.to_ret()),
        }
    }
}

/// A handler: the context (the calling vcpu) and the argument registers
/// (EBX, ECX, EDX, ESI, EDI).
pub type Handler<C> = fn(&mut C, [u32; 5]) -> Outcome;

/// One declared hypercall.
pub struct Hypercall<C> {
    pub nr: u32,
    pub access: Access,
    pub handler: Handler<C>,
}

/// A declared hypercall with its ABI facts.
pub struct Entry<C: 'static> {
    pub decl: &'static Hypercall<C>,
    /// Name and argument count from the ABI table.
    pub info: &'static HypercallInfo,
}

impl<C> Clone for Entry<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C> Copy for Entry<C> {}

impl<C> Entry<C> {
    /// Xen's name of the hypercall.
    pub fn name(&self) -> &'static str {
        self.info.name
    }

    /// Register arguments it takes.
    pub fn nargs(&self) -> u8 {
        self.info.nargs
    }
}

/// The table: slot `n` holds hypercall `n` or nothing.
pub struct Table<C: 'static> {
    slots: [Option<Entry<C>>; NR_HYPERCALLS],
}

/// Why a table is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// A hypercall number is 64 or more.
    OutOfRange(u32),
    /// Two entries claim the same number.
    Duplicate(u32),
    /// The ABI has no hypercall with this number.
    NotInAbi(u32),
}

impl<C> Table<C> {
    /// Builds the table from the declarations, rejecting a malformed one.
    pub fn new(decls: &'static [Hypercall<C>]) -> Result<Self, TableError> {
        let mut slots: [Option<Entry<C>>; NR_HYPERCALLS] = [None; NR_HYPERCALLS];
        for decl in decls {
            let slot = slots
                .get_mut(decl.nr as usize)
                .ok_or(TableError::OutOfRange(decl.nr))?;
            if slot.is_some() {
                return Err(TableError::Duplicate(decl.nr));
            }
            let info = xen_abi::hypercall::lookup(decl.nr).ok_or(TableError::NotInAbi(decl.nr))?;
            *slot = Some(Entry { decl, info });
        }
        Ok(Self { slots })
    }

    /// The entry of hypercall `nr`, if declared.
    pub fn get(&self, nr: u32) -> Option<Entry<C>> {
        self.slots.get(nr as usize).copied().flatten()
    }

    /// Runs hypercall `nr` for a caller (`privileged` says whether it is).
    pub fn dispatch(&self, ctx: &mut C, privileged: bool, nr: u32, args: [u32; 5]) -> Outcome {
        let Some(h) = self.get(nr) else {
            return Outcome::Done(Errno::ENOSYS.to_ret());
        };
        if h.decl.access == Access::Privileged && !privileged {
            return Outcome::Done(Errno::EPERM.to_ret());
        }
        match (h.decl.handler)(ctx, args) {
            // The registers past the hypercall's own arguments are the
            // guest's (a classic i386 wrapper of three arguments tells its
            // compiler that ESI and EDI survive): a continuation rewrites
            // only the arguments, as Xen's does, whatever the handler put
            // in the other slots.
            Outcome::Continue(mut resumed) => {
                let own = usize::from(h.nargs()).min(resumed.len());
                resumed[own..].copy_from_slice(&args[own..]);
                Outcome::Continue(resumed)
            }
            done => done,
        }
    }

    /// Declared hypercalls in number order.
    pub fn iter(&self) -> impl Iterator<Item = Entry<C>> + '_ {
        self.slots.iter().flatten().copied()
    }
}

/// Splits a batch `count` argument into (entries, resumed): Xen's long-batch
/// continuation marks the remaining `count` with bit 31 (`MMU_UPDATE_PREEMPTED`).
pub fn batch_count(count: u32) -> (u32, bool) {
    (
        count & !MMU_UPDATE_PREEMPTED,
        count & MMU_UPDATE_PREEMPTED != 0,
    )
}

/// How long a hypercall runs before a long one yields: Xen's
/// `hypercall_preempt_check()` turns true at the next timer softirq; Oxen
/// looks at the clock between the entries of a batch.
pub const PREEMPT_AFTER_NS: u64 = 1_000_000;

/// Whether a hypercall that started at `started_ns` and has served `done`
/// entries in this invocation should yield at `now_ns`. Never before the
/// first entry, so that every invocation makes progress however slow one
/// entry is.
pub fn preempt_due(started_ns: u64, now_ns: u64, done: u32) -> bool {
    done > 0 && now_ns.saturating_sub(started_ns) >= PREEMPT_AFTER_NS
}

/// The argument registers of a batch's continuation (`mmu_update`,
/// `mmuext_op`: `array, count, pdone, foreigndom`): the array advanced past
/// the `done` entries of `size` bytes served in this invocation, the
/// remaining entries marked `MMU_UPDATE_PREEMPTED` (so the next invocation
/// adds to what `pdone` holds), `pdone` and `foreigndom` unchanged. `count`
/// is the invocation's entry count without the mark; `done <= count` (with
/// every entry served, a continuation of none carries work the last one
/// left behind, such as an old base pointer still being taken down).
pub fn batch_continuation(
    array: u32,
    size: u32,
    done: u32,
    count: u32,
    pdone: u32,
    foreigndom: u32,
) -> [u32; 5] {
    debug_assert!(done <= count);
    [
        array.wrapping_add(done.wrapping_mul(size)),
        (count - done) | MMU_UPDATE_PREEMPTED,
        pdone,
        foreigndom,
        0,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ctx {
        calls: u32,
    }

    fn echo(c: &mut Ctx, a: [u32; 5]) -> Outcome {
        c.calls += 1;
        Outcome::Done(a[0] as i32)
    }

    fn fails(_: &mut Ctx, _: [u32; 5]) -> Outcome {
        Err(Errno::EFAULT).into()
    }

    fn resumes(_: &mut Ctx, a: [u32; 5]) -> Outcome {
        Outcome::Continue([
            a[0] + 16,
            (a[1] - 1) | MMU_UPDATE_PREEMPTED,
            a[2],
            a[3],
            a[4],
        ])
    }

    /// A handler that writes every slot of its continuation (as Oxen's
    /// console_io and mmu_update once did, zeroing ESI and EDI).
    fn resumes_clobbering(_: &mut Ctx, a: [u32; 5]) -> Outcome {
        Outcome::Continue([a[0], a[1] - 1, a[2] + 1, 0, 0])
    }

    static DECLS: [Hypercall<Ctx>; 4] = [
        Hypercall {
            nr: 17,
            access: Access::Any,
            handler: echo,
        },
        Hypercall {
            nr: 36,
            access: Access::Privileged,
            handler: fails,
        },
        Hypercall {
            nr: 1,
            access: Access::Any,
            handler: resumes,
        },
        // console_io: three arguments.
        Hypercall {
            nr: 18,
            access: Access::Any,
            handler: resumes_clobbering,
        },
    ];

    #[test]
    fn dispatches_declared_numbers() {
        let t = Table::new(&DECLS).unwrap();
        let mut c = Ctx { calls: 0 };
        assert_eq!(
            t.dispatch(&mut c, false, 17, [7, 0, 0, 0, 0]),
            Outcome::Done(7)
        );
        assert_eq!(c.calls, 1);
        assert_eq!(t.get(17).unwrap().name(), "xen_version");
        assert_eq!(t.get(1).unwrap().nargs(), 4);
        assert_eq!(t.get(36).unwrap().nargs(), 1);
        assert_eq!(
            t.iter().map(|h| h.decl.nr).collect::<Vec<_>>(),
            [1, 17, 18, 36]
        );
    }

    #[test]
    fn unknown_and_out_of_range_numbers_are_enosys() {
        let t = Table::new(&DECLS).unwrap();
        let mut c = Ctx { calls: 0 };
        for nr in [0, 11, 63, 64, 1000, u32::MAX] {
            assert_eq!(t.dispatch(&mut c, true, nr, [0; 5]), Outcome::Done(-38));
        }
        assert_eq!(c.calls, 0);
    }

    #[test]
    fn privileged_calls_need_privilege() {
        let t = Table::new(&DECLS).unwrap();
        let mut c = Ctx { calls: 0 };
        assert_eq!(t.dispatch(&mut c, false, 36, [0; 5]), Outcome::Done(-1));
        assert_eq!(t.dispatch(&mut c, true, 36, [0; 5]), Outcome::Done(-14));
    }

    #[test]
    fn continuations_pass_through() {
        let t = Table::new(&DECLS).unwrap();
        let mut c = Ctx { calls: 0 };
        let out = t.dispatch(&mut c, false, 1, [0x1000, 10, 0, 0, 0]);
        assert_eq!(
            out,
            Outcome::Continue([0x1010, 9 | MMU_UPDATE_PREEMPTED, 0, 0, 0])
        );
        assert_eq!(batch_count(9 | MMU_UPDATE_PREEMPTED), (9, true));
        // mmu_update takes four arguments: EDI is the guest's.
        assert_eq!(
            t.dispatch(&mut c, false, 1, [0x1000, 10, 0, 0, 0xEDED]),
            Outcome::Continue([0x1010, 9 | MMU_UPDATE_PREEMPTED, 0, 0, 0xEDED])
        );
        assert_eq!(batch_count(9), (9, false));
    }

    #[test]
    fn continuations_keep_the_registers_past_the_arguments() {
        let t = Table::new(&DECLS).unwrap();
        let mut c = Ctx { calls: 0 };
        assert_eq!(t.get(18).unwrap().nargs(), 3);
        assert_eq!(
            t.dispatch(&mut c, false, 18, [0, 2048, 0x8000, 0x5151, 0xD1D1]),
            Outcome::Continue([0, 2047, 0x8001, 0x5151, 0xD1D1])
        );
    }

    #[test]
    fn preemption_waits_for_progress_and_time() {
        assert!(!preempt_due(0, 10 * PREEMPT_AFTER_NS, 0));
        assert!(!preempt_due(5, 5 + PREEMPT_AFTER_NS - 1, 100));
        assert!(preempt_due(5, 5 + PREEMPT_AFTER_NS, 1));
        // A clock read before the start (another CPU's TSC) is no time.
        assert!(!preempt_due(1 << 40, 0, 1000));
    }

    #[test]
    fn a_batch_continuation_of_no_entries() {
        let a = batch_continuation(0x8000, 12, 5, 5, 0x9000, 0x7ff0);
        assert_eq!(a, [0x8000 + 60, MMU_UPDATE_PREEMPTED, 0x9000, 0x7ff0, 0]);
        assert_eq!(batch_count(a[1]), (0, true));
    }

    #[test]
    fn batch_continuations_round_trip() {
        // mmuext_op entries are 12 bytes: 1000 of 3000 served from 0x8000.
        let a = batch_continuation(0x8000, 12, 1000, 3000, 0x9000, 0x7ff0);
        assert_eq!(
            a,
            [
                0x8000 + 12_000,
                2000 | MMU_UPDATE_PREEMPTED,
                0x9000,
                0x7ff0,
                0
            ]
        );
        assert_eq!(batch_count(a[1]), (2000, true));
        // The array address wraps as the guest's would (it is checked when read).
        let b = batch_continuation(0xffff_fff0, 16, 2, 5, 0, 0);
        assert_eq!(b[0], 0x10);
        assert_eq!(batch_count(b[1]), (3, true));
    }

    #[test]
    fn malformed_tables_are_rejected() {
        static DUP: [Hypercall<Ctx>; 2] = [
            Hypercall {
                nr: 3,
                access: Access::Any,
                handler: echo,
            },
            Hypercall {
                nr: 3,
                access: Access::Any,
                handler: echo,
            },
        ];
        static BIG: [Hypercall<Ctx>; 1] = [Hypercall {
            nr: 64,
            access: Access::Any,
            handler: echo,
        }];
        static UNKNOWN: [Hypercall<Ctx>; 1] = [Hypercall {
            nr: 11,
            access: Access::Any,
            handler: echo,
        }];
        assert!(matches!(Table::new(&DUP), Err(TableError::Duplicate(3))));
        assert!(matches!(Table::new(&BIG), Err(TableError::OutOfRange(64))));
        assert!(matches!(
            Table::new(&UNKNOWN),
            Err(TableError::NotInAbi(11))
        ));
    }
}
