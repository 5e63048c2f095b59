//! Who a CPU's time belongs to (Xen's runstate accounting and idle vcpu).
//!
//! Every vcpu has a [`Runstate`]: the state it is in (`RUNSTATE_*`), since
//! when, and the time it spent in each state so far. A CPU always has a
//! current vcpu ([`Cpu`]): a guest's, or — when no guest vcpu may run — its
//! idle vcpu. Time is charged to the current vcpu, so the time a CPU spends
//! halted belongs to the idle vcpu; the guest vcpus waiting meanwhile count
//! it as blocked (or runnable, or offline) time, never as running time. A
//! domain's CPU time is its vcpus' running time.
//!
//! The idle vcpu has no context of its own: it runs on the context of the
//! last guest vcpu that ran (Xen's lazy context switch). The CPU keeps that
//! vcpu's registers, page tables and descriptor tables loaded, so when the
//! same vcpu comes back nothing is reloaded ([`Switch::Resume`]), and only a
//! different vcpu costs a full switch ([`Switch::Load`]).
//!
//! Invariants: a guest vcpu is `RUNSTATE_running` exactly while it is the
//! CPU's current vcpu; while a guest vcpu is current its context is the
//! loaded one; the idle vcpu is running exactly while no guest vcpu is.

use xen_abi::vcpu::{
    RUNSTATE_BLOCKED, RUNSTATE_OFFLINE, RUNSTATE_RUNNABLE, RUNSTATE_RUNNING, VcpuRunstateInfo,
};

/// A vcpu's runstate (`RUNSTATE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum State {
    /// On a CPU.
    Running = RUNSTATE_RUNNING,
    /// Could run, waiting for a CPU.
    Runnable = RUNSTATE_RUNNABLE,
    /// Waiting for an event (`SCHEDOP_block`, `SCHEDOP_poll`).
    Blocked = RUNSTATE_BLOCKED,
    /// Neither: paused, shut down, down, or never given a context.
    Offline = RUNSTATE_OFFLINE,
}

impl State {
    /// The state's name, as debug output prints it.
    pub fn name(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Runnable => "runnable",
            State::Blocked => "blocked",
            State::Offline => "offline",
        }
    }
}

/// The state of a vcpu off the CPU: blocked while it waits for an event
/// (even if also paused, as in Xen), else runnable if it may run, else
/// offline.
pub fn off_cpu_state(waiting: bool, runnable: bool) -> State {
    if waiting {
        State::Blocked
    } else if runnable {
        State::Runnable
    } else {
        State::Offline
    }
}

/// One vcpu's runstate record (`struct vcpu_runstate_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Runstate {
    state: State,
    /// System time (ns) when `state` was entered.
    entry: u64,
    /// Time (ns) spent in each state before `entry`, by `RUNSTATE_*`.
    time: [u64; 4],
}

impl Runstate {
    /// A vcpu in `state` since `now`, with no time spent yet.
    pub const fn new(state: State, now: u64) -> Self {
        Self {
            state,
            entry: now,
            time: [0; 4],
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Moves the vcpu to `to` at `now`: the time since the last change is
    /// charged to the state it leaves. Staying in the same state changes
    /// nothing.
    pub fn change(&mut self, to: State, now: u64) {
        if to == self.state {
            return;
        }
        let now = now.max(self.entry);
        self.time[self.state as usize] += now - self.entry;
        self.state = to;
        self.entry = now;
    }

    /// Time (ns) spent in `state` up to `now`, the current stretch included.
    pub fn time_in(&self, state: State, now: u64) -> u64 {
        let so_far = self.time[state as usize];
        if state == self.state {
            so_far + now.saturating_sub(self.entry)
        } else {
            so_far
        }
    }

    /// Time (ns) spent running up to `now`: the vcpu's CPU time.
    pub fn cpu_time(&self, now: u64) -> u64 {
        self.time_in(State::Running, now)
    }

    /// `VCPUOP_get_runstate_info`: the record as of `now` (the current
    /// stretch counted in its state's time, `state_entry_time` unchanged).
    pub fn info(&self, now: u64) -> VcpuRunstateInfo {
        let mut info = self.record();
        info.time[self.state as usize] = self.time_in(self.state, now);
        info
    }

    /// The record as of the last change: what a registered runstate area
    /// receives (the guest adds the stretch since `state_entry_time`).
    pub fn record(&self) -> VcpuRunstateInfo {
        VcpuRunstateInfo {
            state: self.state as i32,
            state_entry_time: self.entry,
            time: self.time,
        }
    }
}

/// Finds the runstate of vcpu `V` (the scheduler's view of its vcpus).
pub trait Runstates<V> {
    /// The runstate of `v`, if it exists.
    fn runstate_mut(&mut self, v: V) -> Option<&mut Runstate>;
}

/// What a switch asks of the CPU's context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch<V> {
    /// The vcpu asked for is already current: nothing changes.
    Stay,
    /// The idle vcpu took the CPU; the context stays loaded as it is.
    Idle,
    /// The vcpu whose context the CPU still holds came back from idle:
    /// nothing to save or reload.
    Resume,
    /// The vcpu's context must be loaded, after saving the context the CPU
    /// holds: `save`'s (none before the first guest ran).
    Load { save: Option<V> },
}

/// One CPU: its current vcpu (`None`: the idle vcpu), the guest vcpu whose
/// context it holds, and the idle vcpu's runstate.
#[derive(Clone, Debug)]
pub struct Cpu<V> {
    current: Option<V>,
    loaded: Option<V>,
    idle: Runstate,
}

impl<V: Copy + Eq> Cpu<V> {
    /// A CPU running its idle vcpu since `now`, no guest context loaded.
    pub const fn new(now: u64) -> Self {
        Self {
            current: None,
            loaded: None,
            idle: Runstate::new(State::Running, now),
        }
    }

    /// The current vcpu; `None` while the idle vcpu runs.
    pub fn current(&self) -> Option<V> {
        self.current
    }

    /// The guest vcpu whose context the CPU holds: the current one, or the
    /// last to run while the idle vcpu is current.
    pub fn loaded(&self) -> Option<V> {
        self.loaded
    }

    /// The idle vcpu's runstate (running = the CPU's idle time).
    pub fn idle(&self) -> &Runstate {
        &self.idle
    }

    /// Puts `next` (`None`: the idle vcpu) on the CPU at `now` in place of
    /// the current vcpu, which leaves for `prev_to` (not `Running`; ignored
    /// when the idle vcpu leaves, which stays runnable). The time since the
    /// last switch was the current vcpu's; it now becomes `next`'s.
    pub fn switch(
        &mut self,
        vcpus: &mut impl Runstates<V>,
        next: Option<V>,
        prev_to: State,
        now: u64,
    ) -> Switch<V> {
        assert_ne!(prev_to, State::Running, "a vcpu leaves the CPU");
        if next == self.current {
            return Switch::Stay;
        }
        match self.current.and_then(|p| vcpus.runstate_mut(p)) {
            Some(rs) => rs.change(prev_to, now),
            None if self.current.is_none() => self.idle.change(State::Runnable, now),
            None => {}
        }
        self.current = next;
        let Some(n) = next else {
            self.idle.change(State::Running, now);
            return Switch::Idle;
        };
        if let Some(rs) = vcpus.runstate_mut(n) {
            rs.change(State::Running, now);
        }
        if self.loaded == Some(n) {
            return Switch::Resume;
        }
        let save = self.loaded.replace(n);
        Switch::Load { save }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;

    /// Two guest vcpus (0: dom0's, 1: a domU's), created offline at 0.
    struct Vcpus([Runstate; 2]);

    impl Runstates<u8> for Vcpus {
        fn runstate_mut(&mut self, v: u8) -> Option<&mut Runstate> {
            self.0.get_mut(usize::from(v))
        }
    }

    fn machine() -> (Cpu<u8>, Vcpus) {
        (Cpu::new(0), Vcpus([Runstate::new(State::Offline, 0); 2]))
    }

    #[test]
    fn change_charges_the_state_left() {
        let mut r = Runstate::new(State::Offline, 100);
        r.change(State::Runnable, 150);
        r.change(State::Running, 200);
        r.change(State::Blocked, 1_200);
        assert_eq!(r.state(), State::Blocked);
        assert_eq!(r.time_in(State::Offline, 5_000), 50);
        assert_eq!(r.time_in(State::Runnable, 5_000), 50);
        assert_eq!(r.cpu_time(5_000), 1_000);
        // The current stretch counts in time_in, not in the record.
        assert_eq!(r.time_in(State::Blocked, 5_000), 3_800);
        assert_eq!({ r.record().time }[RUNSTATE_BLOCKED as usize], 0);
    }

    #[test]
    fn staying_in_a_state_keeps_its_entry_time() {
        let mut r = Runstate::new(State::Blocked, 10);
        r.change(State::Blocked, 500);
        assert_eq!({ r.record().state_entry_time }, 10);
        assert_eq!(r.time_in(State::Blocked, 600), 590);
    }

    #[test]
    fn a_clock_behind_the_entry_charges_nothing() {
        let mut r = Runstate::new(State::Running, 1_000);
        r.change(State::Blocked, 900);
        assert_eq!(r.cpu_time(900), 0);
        assert_eq!({ r.record().state_entry_time }, 1_000);
        assert_eq!(r.time_in(State::Blocked, 900), 0);
    }

    #[test]
    fn info_counts_the_current_stretch_and_record_does_not() {
        let mut r = Runstate::new(State::Offline, 0);
        r.change(State::Running, 40);
        let info = r.info(100);
        assert_eq!(
            (info.state, { info.state_entry_time }, { info.time }),
            (RUNSTATE_RUNNING, 40, [60, 0, 0, 40])
        );
        let rec = r.record();
        assert_eq!({ rec.time }, [0, 0, 0, 40]);
        // Every nanosecond since creation is in exactly one state.
        assert_eq!({ info.time }.iter().sum::<u64>(), 100);
    }

    #[test]
    fn off_cpu_states() {
        assert_eq!(off_cpu_state(true, false), State::Blocked);
        assert_eq!(off_cpu_state(true, true), State::Blocked);
        assert_eq!(off_cpu_state(false, true), State::Runnable);
        assert_eq!(off_cpu_state(false, false), State::Offline);
    }

    /// The reported bug: a vcpu that blocks and sleeps two seconds used to
    /// be charged the halted time. With the idle vcpu current meanwhile, its
    /// CPU time is what it ran, its blocked time the sleep.
    #[test]
    fn halted_time_is_the_idle_vcpus() {
        let (mut cpu, mut v) = machine();
        assert_eq!(
            cpu.switch(&mut v, Some(0), State::Runnable, 0),
            Switch::Load { save: None }
        );
        // dom0 runs 10 ms, then blocks: nothing else may run.
        assert_eq!(
            cpu.switch(&mut v, None, State::Blocked, 10 * MS),
            Switch::Idle
        );
        assert_eq!(cpu.current(), None);
        assert_eq!(cpu.loaded(), Some(0));
        // Two seconds later its timer wakes it.
        let wake = 10 * MS + 2 * S;
        v.0[0].change(State::Runnable, wake);
        assert_eq!(
            cpu.switch(&mut v, Some(0), State::Runnable, wake),
            Switch::Resume
        );
        let now = wake + MS;
        assert_eq!(v.0[0].cpu_time(now), 11 * MS);
        assert_eq!(v.0[0].time_in(State::Blocked, now), 2 * S);
        assert_ne!(v.0[0].cpu_time(now), now, "the sleep was charged to dom0");
        assert_eq!(cpu.idle().cpu_time(now), 2 * S);
        assert_eq!(cpu.idle().state(), State::Runnable);
    }

    /// A domU that ticks once a second and spends the rest halted (the
    /// other report: 74 s of CPU after 75 s) has almost no CPU time.
    #[test]
    fn a_mostly_idle_domu_is_charged_its_ticks_only() {
        let (mut cpu, mut v) = machine();
        cpu.switch(&mut v, Some(0), State::Runnable, 0);
        cpu.switch(&mut v, None, State::Blocked, MS);
        v.0[1].change(State::Runnable, MS);
        let mut now = MS;
        for _ in 0..75 {
            cpu.switch(&mut v, Some(1), State::Runnable, now);
            now += 100_000; // 0.1 ms of work per tick
            cpu.switch(&mut v, None, State::Blocked, now);
            now += S - 100_000;
            v.0[1].change(State::Runnable, now);
        }
        assert_eq!(v.0[1].cpu_time(now), 75 * 100_000);
        assert_eq!(v.0[0].cpu_time(now), MS);
        let total: u64 = [
            v.0[0].cpu_time(now),
            v.0[1].cpu_time(now),
            cpu.idle().cpu_time(now),
        ]
        .iter()
        .sum();
        assert_eq!(total, now, "every nanosecond is someone's, once");
    }

    #[test]
    fn resume_reloads_nothing_and_another_vcpu_saves_the_loaded_one() {
        let (mut cpu, mut v) = machine();
        cpu.switch(&mut v, Some(0), State::Runnable, 0);
        cpu.switch(&mut v, None, State::Blocked, 5);
        // A different vcpu after idle: the context still loaded is dom0's,
        // so dom0's is saved, not the idle vcpu's (it has none).
        assert_eq!(
            cpu.switch(&mut v, Some(1), State::Runnable, 7),
            Switch::Load { save: Some(0) }
        );
        assert_eq!(cpu.loaded(), Some(1));
        // Guest to guest directly.
        assert_eq!(
            cpu.switch(&mut v, Some(0), State::Runnable, 9),
            Switch::Load { save: Some(1) }
        );
        assert_eq!(v.0[1].state(), State::Runnable);
        assert_eq!(
            cpu.switch(&mut v, Some(0), State::Runnable, 11),
            Switch::Stay
        );
        assert_eq!(v.0[0].state(), State::Running);
    }

    #[test]
    fn the_leaving_vcpu_takes_the_state_it_is_given() {
        let (mut cpu, mut v) = machine();
        cpu.switch(&mut v, Some(1), State::Runnable, 0);
        cpu.switch(&mut v, Some(0), State::Offline, 30);
        assert_eq!(v.0[1].state(), State::Offline);
        assert_eq!(v.0[1].cpu_time(100), 30);
        assert_eq!(v.0[0].cpu_time(100), 70);
        assert_eq!(v.0[0].time_in(State::Offline, 100), 30);
        // The idle vcpu never ran since the first guest took the CPU at 0.
        assert_eq!(cpu.idle().cpu_time(100), 0);
    }

    #[test]
    fn idle_to_idle_is_no_switch() {
        let (mut cpu, mut v) = machine();
        assert_eq!(cpu.switch(&mut v, None, State::Blocked, 50), Switch::Stay);
        assert_eq!(cpu.idle().cpu_time(80), 80);
        assert_eq!(cpu.loaded(), None);
    }

    #[test]
    fn a_vcpu_gone_from_the_table_is_not_charged() {
        // The current vcpu's runstate cannot be found (its domain went):
        // the switch still happens.
        let mut cpu = Cpu::new(0);
        let mut v = Vcpus([Runstate::new(State::Offline, 0); 2]);
        cpu.switch(&mut v, Some(7u8), State::Runnable, 0);
        assert_eq!(
            cpu.switch(&mut v, Some(0), State::Offline, 5),
            Switch::Load { save: Some(7) }
        );
        assert_eq!(v.0[0].state(), State::Running);
    }

    #[test]
    #[should_panic(expected = "a vcpu leaves the CPU")]
    fn leaving_for_running_is_refused() {
        let (mut cpu, mut v) = machine();
        cpu.switch(&mut v, Some(0), State::Runnable, 0);
        cpu.switch(&mut v, Some(1), State::Running, 1);
    }
}
