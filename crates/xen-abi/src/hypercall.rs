//! Hypercall numbers, the hypercall page and `multicall_entry`
//! (XEN-PV-ABI.md §1 calling convention, §2 numbers, §2.1 multicall).
//!
//! A 32-bit PV guest issues `int $0x82` with the number in `%eax` and up to five
//! arguments in `%ebx, %ecx, %edx, %esi, %edi`; the result comes back in `%eax`
//! (negative = −errno). Normally it calls stub *n* of the hypercall page instead.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Software-interrupt vector of the hypercall trap (a DPL-1 interrupt gate).
pub const HYPERCALL_VECTOR: u8 = 0x82;
/// Number of hypercall slots on x86 (`NR_hypercalls`); numbers ≥ this return −ENOSYS.
pub const NR_HYPERCALLS: u32 = 64;
/// Maximum number of register arguments of a hypercall.
pub const MAX_HYPERCALL_ARGS: usize = 5;

/// Bit 31 of the `count` argument of `mmu_update`/`mmuext_op`: set by Xen when it
/// restarts a preempted call. Guests pass it as 0.
pub const MMU_UPDATE_PREEMPTED: u32 = 0x8000_0000;
/// `memory_op`: bits at and above this shift of `cmd` hold the restart extent.
pub const MEMOP_EXTENT_SHIFT: u32 = 6;
/// `memory_op`: the sub-command bits of `cmd` (below [`MEMOP_EXTENT_SHIFT`]).
pub const MEMOP_CMD_MASK: u32 = (1 << MEMOP_EXTENT_SHIFT) - 1;

// ---- hypercall numbers (`__HYPERVISOR_*`) ----

/// `set_trap_table(trap_info *table)`.
pub const SET_TRAP_TABLE: u32 = 0;
/// `mmu_update(mmu_update *reqs, u32 count, u32 *done, u32 foreigndom)`.
pub const MMU_UPDATE: u32 = 1;
/// `set_gdt(ulong *frame_list, u32 entries)`.
pub const SET_GDT: u32 = 2;
/// `stack_switch(ss, esp)`.
pub const STACK_SWITCH: u32 = 3;
/// `set_callbacks(event_cs, event_eip, failsafe_cs, failsafe_eip)`.
pub const SET_CALLBACKS: u32 = 4;
/// `fpu_taskswitch(int set)`.
pub const FPU_TASKSWITCH: u32 = 5;
/// `sched_op_compat(int cmd, ulong arg)` (named `sched_op` before 0x00030101).
pub const SCHED_OP_COMPAT: u32 = 6;
/// `platform_op(xen_platform_op *op)`.
pub const PLATFORM_OP: u32 = 7;
/// Xen 3.0.0–3.0.2 name of hypercall 7.
pub const DOM0_OP: u32 = 7;
/// `set_debugreg(int reg, ulong value)`.
pub const SET_DEBUGREG: u32 = 8;
/// `get_debugreg(int reg)`.
pub const GET_DEBUGREG: u32 = 9;
/// `update_descriptor(ma_lo, ma_hi, desc_lo, desc_hi)`.
pub const UPDATE_DESCRIPTOR: u32 = 10;
/// `memory_op(ulong cmd, void *arg)`.
pub const MEMORY_OP: u32 = 12;
/// `multicall(multicall_entry *list, u32 nr)`.
pub const MULTICALL: u32 = 13;
/// `update_va_mapping(va, pte_lo, pte_hi, flags)`.
pub const UPDATE_VA_MAPPING: u32 = 14;
/// `set_timer_op(timeout_lo, timeout_hi)` (absolute system time, ns).
pub const SET_TIMER_OP: u32 = 15;
/// `event_channel_op_compat(evtchn_op *op)` (the only form before 0x00030202).
pub const EVENT_CHANNEL_OP_COMPAT: u32 = 16;
/// `xen_version(int cmd, void *arg)`.
pub const XEN_VERSION: u32 = 17;
/// `console_io(int cmd, int count, char *buf)`.
pub const CONSOLE_IO: u32 = 18;
/// `physdev_op_compat(physdev_op *op)`.
pub const PHYSDEV_OP_COMPAT: u32 = 19;
/// `grant_table_op(u32 cmd, void *uops, u32 count)`.
pub const GRANT_TABLE_OP: u32 = 20;
/// `vm_assist(u32 cmd, u32 type)`.
pub const VM_ASSIST: u32 = 21;
/// `update_va_mapping_otherdomain(va, pte_lo, pte_hi, flags, domid)`.
pub const UPDATE_VA_MAPPING_OTHERDOMAIN: u32 = 22;
/// `iret`: no register arguments; the frame is on the guest stack (§6.6).
pub const IRET: u32 = 23;
/// Xen 3.0.0 name of hypercall 23.
pub const SWITCH_VM86: u32 = 23;
/// `vcpu_op(int cmd, int vcpuid, void *arg)`.
pub const VCPU_OP: u32 = 24;
/// `set_segment_base`: x86-64 only; −ENOSYS for 32-bit guests.
pub const SET_SEGMENT_BASE: u32 = 25;
/// `mmuext_op(mmuext_op *ops, u32 count, u32 *done, u32 foreigndom)`.
pub const MMUEXT_OP: u32 = 26;
/// `xsm_op(void *op)`.
pub const XSM_OP: u32 = 27;
/// Xen 3.0 name of hypercall 27.
pub const ACM_OP: u32 = 27;
/// `nmi_op(u32 cmd, void *arg)`.
pub const NMI_OP: u32 = 28;
/// `sched_op(int cmd, void *arg)`.
pub const SCHED_OP: u32 = 29;
/// `callback_op(int cmd, void *arg)`.
pub const CALLBACK_OP: u32 = 30;
/// `xenoprof_op(int op, void *arg)`.
pub const XENOPROF_OP: u32 = 31;
/// `event_channel_op(int cmd, void *arg)`.
pub const EVENT_CHANNEL_OP: u32 = 32;
/// `physdev_op(int cmd, void *arg)`.
pub const PHYSDEV_OP: u32 = 33;
/// `hvm_op(ulong op, void *arg)`.
pub const HVM_OP: u32 = 34;
/// `sysctl(xen_sysctl *op)`.
pub const SYSCTL: u32 = 35;
/// `domctl(xen_domctl *op)`.
pub const DOMCTL: u32 = 36;
/// `kexec_op(ulong op, int arg1, void *arg)`.
pub const KEXEC_OP: u32 = 37;
/// `tmem_op(void *op)`.
pub const TMEM_OP: u32 = 38;
/// Reserved in 4.x (`xc_reserved_op`).
pub const XC_RESERVED_OP: u32 = 39;
/// Later Xen's name of 39.
pub const ARGO_OP: u32 = 39;
/// `xenpmu_op` (later Xen).
pub const XENPMU_OP: u32 = 40;
/// `dm_op` (later Xen).
pub const DM_OP: u32 = 41;
/// `hypfs_op` (later Xen).
pub const HYPFS_OP: u32 = 42;
/// First architecture-specific hypercall (`arch_0`).
pub const ARCH_0: u32 = 48;
/// On x86 `arch_0` is the machine-check hypercall (`mca`).
pub const MCA: u32 = ARCH_0;
/// Last architecture-specific hypercall (`arch_7`).
pub const ARCH_7: u32 = 55;

/// A hypercall as the x86_32 dispatcher knows it: number, name and how many
/// argument registers Xen copies for continuation and clobbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HypercallInfo {
    /// `__HYPERVISOR_*` number (the value in `%eax`).
    pub nr: u32,
    /// Xen's name, without the `__HYPERVISOR_` prefix.
    pub name: &'static str,
    /// Number of register arguments (`hypercall_args_table`).
    pub nargs: u8,
}

const fn hc(nr: u32, name: &'static str, nargs: u8) -> HypercallInfo {
    HypercallInfo { nr, name, nargs }
}

/// Every hypercall a 32-bit Xen dispatches, in number order, with its argument
/// count (XEN-PV-ABI.md §2 "Argument counts"). Numbers not listed return −ENOSYS.
pub const HYPERCALLS: [HypercallInfo; 38] = [
    hc(SET_TRAP_TABLE, "set_trap_table", 1),
    hc(MMU_UPDATE, "mmu_update", 4),
    hc(SET_GDT, "set_gdt", 2),
    hc(STACK_SWITCH, "stack_switch", 2),
    hc(SET_CALLBACKS, "set_callbacks", 4),
    hc(FPU_TASKSWITCH, "fpu_taskswitch", 1),
    hc(SCHED_OP_COMPAT, "sched_op_compat", 2),
    hc(PLATFORM_OP, "platform_op", 1),
    hc(SET_DEBUGREG, "set_debugreg", 2),
    hc(GET_DEBUGREG, "get_debugreg", 1),
    hc(UPDATE_DESCRIPTOR, "update_descriptor", 4),
    hc(MEMORY_OP, "memory_op", 2),
    hc(MULTICALL, "multicall", 2),
    hc(UPDATE_VA_MAPPING, "update_va_mapping", 4),
    hc(SET_TIMER_OP, "set_timer_op", 2),
    hc(EVENT_CHANNEL_OP_COMPAT, "event_channel_op_compat", 1),
    hc(XEN_VERSION, "xen_version", 2),
    hc(CONSOLE_IO, "console_io", 3),
    hc(PHYSDEV_OP_COMPAT, "physdev_op_compat", 1),
    hc(GRANT_TABLE_OP, "grant_table_op", 3),
    hc(VM_ASSIST, "vm_assist", 2),
    hc(
        UPDATE_VA_MAPPING_OTHERDOMAIN,
        "update_va_mapping_otherdomain",
        5,
    ),
    hc(IRET, "iret", 0),
    hc(VCPU_OP, "vcpu_op", 3),
    hc(MMUEXT_OP, "mmuext_op", 4),
    hc(XSM_OP, "xsm_op", 1),
    hc(NMI_OP, "nmi_op", 2),
    hc(SCHED_OP, "sched_op", 2),
    hc(CALLBACK_OP, "callback_op", 2),
    hc(XENOPROF_OP, "xenoprof_op", 2),
    hc(EVENT_CHANNEL_OP, "event_channel_op", 2),
    hc(PHYSDEV_OP, "physdev_op", 2),
    hc(HVM_OP, "hvm_op", 2),
    hc(SYSCTL, "sysctl", 1),
    hc(DOMCTL, "domctl", 1),
    hc(KEXEC_OP, "kexec_op", 2),
    hc(TMEM_OP, "tmem_op", 1),
    hc(MCA, "mca", 1),
];

/// The table entry for hypercall `nr`, if a 32-bit Xen dispatches it.
pub const fn lookup(nr: u32) -> Option<&'static HypercallInfo> {
    let mut i = 0;
    while i < HYPERCALLS.len() {
        if HYPERCALLS[i].nr == nr {
            return Some(&HYPERCALLS[i]);
        }
        i += 1;
    }
    None
}

/// Xen's name of hypercall `nr`, if dispatched.
pub const fn name(nr: u32) -> Option<&'static str> {
    match lookup(nr) {
        Some(h) => Some(h.name),
        None => None,
    }
}

// ---- hypercall page (§1.2) ----

/// Size of one stub in the hypercall page.
pub const HYPERCALL_STUB_SIZE: usize = 32;
/// Number of stubs in the (4 KiB) hypercall page.
pub const HYPERCALL_PAGE_STUBS: usize = 128;
/// The stub guests `jmp` to (never `call`) for the `iret` hypercall.
pub const HYPERCALL_IRET_STUB: u32 = IRET;
/// Filler byte of the hypercall page (`int3`).
pub const HYPERCALL_PAGE_FILL: u8 = 0xCC;
/// MSR a guest may write with `(gmfn << 12) | page_index` to get a hypercall page
/// (advertised in CPUID leaf 0x40000002, §17).
pub const HYPERCALL_PAGE_MSR: u32 = 0x4000_0000;

const _: () = assert!(HYPERCALL_STUB_SIZE * HYPERCALL_PAGE_STUBS == crate::types::PAGE_SIZE);

/// Byte offset of stub `nr` in the hypercall page.
pub const fn stub_offset(nr: u32) -> usize {
    nr as usize * HYPERCALL_STUB_SIZE
}

/// The 32 bytes of stub `nr`: `mov $nr,%eax; int $0x82; ret` then `int3` filler,
/// or for `iret` (23) `push %eax; mov $23,%eax; int $0x82` with no `ret`.
pub const fn stub_bytes(nr: u32) -> [u8; HYPERCALL_STUB_SIZE] {
    let mut s = [HYPERCALL_PAGE_FILL; HYPERCALL_STUB_SIZE];
    let n = nr.to_le_bytes();
    if nr == HYPERCALL_IRET_STUB {
        s[0] = 0x50; // push %eax
        s[1] = 0xB8; // mov $imm32,%eax
        s[2] = n[0];
        s[3] = n[1];
        s[4] = n[2];
        s[5] = n[3];
        s[6] = 0xCD; // int $0x82
        s[7] = HYPERCALL_VECTOR;
    } else {
        s[0] = 0xB8; // mov $imm32,%eax
        s[1] = n[0];
        s[2] = n[1];
        s[3] = n[2];
        s[4] = n[3];
        s[5] = 0xCD; // int $0x82
        s[6] = HYPERCALL_VECTOR;
        s[7] = 0xC3; // ret
    }
    s
}

/// The complete hypercall page a domain builder writes: all 128 stubs.
pub const fn hypercall_page() -> [u8; crate::types::PAGE_SIZE] {
    let mut page = [HYPERCALL_PAGE_FILL; crate::types::PAGE_SIZE];
    let mut nr = 0;
    while nr < HYPERCALL_PAGE_STUBS {
        let stub = stub_bytes(nr as u32);
        let mut i = 0;
        while i < HYPERCALL_STUB_SIZE {
            page[nr * HYPERCALL_STUB_SIZE + i] = stub[i];
            i += 1;
        }
        nr += 1;
    }
    page
}

// ---- multicall (§2.1) ----

/// One entry of a `multicall` list (`struct multicall_entry`, 32 bytes): executed
/// like hypercall `op` with `args[i]` as argument *i*; the result lands in `result`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct MulticallEntry {
    /// Hypercall number.
    pub op: u32,
    /// Return value of that hypercall (written by Xen).
    pub result: u32,
    /// Arguments; a 64-bit parameter takes two slots, low half first.
    pub args: [u32; 6],
}
assert_layout!(
    MulticallEntry,
    size = 32,
    align = 4,
    op = 0,
    result = 4,
    args = 8
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest's "Argument counts" list, verbatim.
    const DIGEST_ARG_COUNTS: &[(u32, u8)] = &[
        (0, 1),
        (1, 4),
        (2, 2),
        (3, 2),
        (4, 4),
        (5, 1),
        (6, 2),
        (7, 1),
        (8, 2),
        (9, 1),
        (10, 4),
        (12, 2),
        (13, 2),
        (14, 4),
        (15, 2),
        (16, 1),
        (17, 2),
        (18, 3),
        (19, 1),
        (20, 3),
        (21, 2),
        (22, 5),
        (23, 0),
        (24, 3),
        (26, 4),
        (27, 1),
        (28, 2),
        (29, 2),
        (30, 2),
        (31, 2),
        (32, 2),
        (33, 2),
        (34, 2),
        (35, 1),
        (36, 1),
        (37, 2),
        (38, 1),
        (48, 1),
    ];

    #[test]
    fn table_matches_the_digest_argument_counts() {
        assert_eq!(HYPERCALLS.len(), DIGEST_ARG_COUNTS.len());
        for (h, &(nr, nargs)) in HYPERCALLS.iter().zip(DIGEST_ARG_COUNTS) {
            assert_eq!((h.nr, h.nargs), (nr, nargs), "{}", h.name);
        }
    }

    #[test]
    fn table_is_sorted_unique_named_and_in_range() {
        for w in HYPERCALLS.windows(2) {
            assert!(w[0].nr < w[1].nr, "{} / {}", w[0].name, w[1].name);
        }
        for (i, h) in HYPERCALLS.iter().enumerate() {
            assert!(h.nr < NR_HYPERCALLS);
            assert!(usize::from(h.nargs) <= MAX_HYPERCALL_ARGS);
            assert!(!h.name.is_empty());
            assert!(
                h.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            );
            assert!(HYPERCALLS[i + 1..].iter().all(|o| o.name != h.name));
        }
    }

    #[test]
    fn lookup_finds_dispatched_and_rejects_the_rest() {
        assert_eq!(name(SCHED_OP), Some("sched_op"));
        assert_eq!(
            lookup(UPDATE_VA_MAPPING_OTHERDOMAIN).map(|h| h.nargs),
            Some(5)
        );
        assert_eq!(lookup(IRET).map(|h| h.nargs), Some(0));
        for nr in [
            11,
            SET_SEGMENT_BASE,
            39,
            40,
            41,
            42,
            49,
            55,
            63,
            64,
            u32::MAX,
        ] {
            assert!(lookup(nr).is_none(), "{nr}");
        }
    }

    #[test]
    fn stubs_match_the_digest_bytes() {
        let page = hypercall_page();
        assert_eq!(stub_offset(SCHED_OP), 0x3A0);
        assert_eq!(
            &page[0x3A0..0x3A8],
            &[0xB8, 0x1D, 0x00, 0x00, 0x00, 0xCD, 0x82, 0xC3]
        );
        assert!(page[0x3A8..0x3C0].iter().all(|&b| b == 0xCC));
        assert_eq!(stub_offset(IRET), 0x2E0);
        assert_eq!(
            &page[0x2E0..0x2E8],
            &[0x50, 0xB8, 0x17, 0x00, 0x00, 0x00, 0xCD, 0x82]
        );
        assert!(page[0x2E8..0x300].iter().all(|&b| b == 0xCC));
        assert_eq!(&page[0..8], &[0xB8, 0, 0, 0, 0, 0xCD, 0x82, 0xC3]);
        assert_eq!(&page[4064..4072], &[0xB8, 127, 0, 0, 0, 0xCD, 0x82, 0xC3]);
    }

    #[test]
    fn memop_and_preemption_bits() {
        assert_eq!(MEMOP_CMD_MASK, 0x3F);
        assert_eq!(MMU_UPDATE_PREEMPTED, 1 << 31);
    }
}
