//! A domU built from the Linux-like fixture over a scrambled P2M, checked the way
//! the guest and the hypervisor would see it.

use super::fixtures::*;
use crate::{PtLevel, context::EFLAGS_RESERVED_ONE};
use xen_abi::context::{VGCF_IN_KERNEL, VGCF_ONLINE};
use xen_abi::mm::MMUEXT_PIN_L3_TABLE;
use zerocopy::IntoBytes;

const NR_PAGES: u32 = 2048;

fn linux_setup() -> Setup {
    let mut s = Setup::new(TestKernel::linux_like(), NR_PAGES);
    s.ramdisk = Some(pattern(9, 5000));
    s
}

#[test]
fn layout_follows_the_libxc_element_order() {
    let (b, _) = linux_setup().built();
    let l = &b.layout;
    // kernel [0xC0100000, 0xC0108579) → 9 pages; ramdisk 2; P2M 2; start_info;
    // xenstore; console; L3 + L2(slot 3) + 2 L1s; stack; end at 4 MiB.
    assert_eq!(l.kernel.va, 0xC010_0000);
    assert_eq!(l.mod_start(), 0xC010_9000);
    assert_eq!(l.mfn_list(), 0xC010_B000);
    assert_eq!(l.start_info_va(), 0xC010_D000);
    assert_eq!(l.xenstore.unwrap().va, 0xC010_E000);
    assert_eq!(l.console.unwrap().va, 0xC010_F000);
    assert_eq!(l.pt_base(), 0xC011_0000);
    assert_eq!(l.nr_pt_frames(), 4);
    assert_eq!(l.stack_top(), 0xC011_5000);
    assert_eq!(l.v_end, 0xC040_0000);
    assert_eq!(b.start_info.pfn, 0x10D);
    assert_eq!(b.xenstore.pfn, 0x10E);
    assert_eq!(b.console.pfn, 0x10F);
    assert_eq!(b.l3.pfn, 0x110);
}

#[test]
fn every_bootstrap_page_maps_its_pfn_and_only_page_tables_are_read_only() {
    let s = linux_setup();
    let (b, mem) = s.built();
    let m2p = s.m2p();
    let pt: Vec<u32> = b.pt_frames.iter().map(|f| f.pfn).collect();
    let mut read_only = 0;
    for pfn in 0..b.layout.nr_bootstrap_pages() {
        let va = 0xC000_0000 + pfn * 4096;
        let w = walk(&mem, &m2p, b.l3.mfn, va).unwrap_or_else(|| panic!("{va:#x} unmapped"));
        assert_eq!(w.pfn, pfn, "va {va:#x}");
        assert_eq!(w.l3_flags, P, "L3 entries are P only");
        assert_eq!(w.l2_flags, P | RW | A | D | US);
        if pt.contains(&pfn) {
            assert_eq!(
                w.l1_flags,
                P | A,
                "page-table frame {pfn:#x} must be read-only"
            );
            read_only += 1;
        } else {
            assert_eq!(w.l1_flags, P | RW | A, "pfn {pfn:#x} must be writable");
        }
    }
    assert_eq!(read_only, 4);
    // Past the region, nothing is mapped.
    assert_eq!(walk(&mem, &m2p, b.l3.mfn, b.layout.v_end), None);
    assert_eq!(walk(&mem, &m2p, b.l3.mfn, 0xBFFF_F000), None);
    assert_eq!(walk(&mem, &m2p, b.l3.mfn, 0), None);
}

#[test]
fn the_tables_hold_nothing_but_the_region_and_leave_xen_slots_empty() {
    let s = linux_setup();
    let (b, mem) = s.built();
    let l3 = b.l3.pfn;
    // L3: only slot 3 (the region lies in the top GiB).
    let l3e = present_entries(&mem, l3);
    assert_eq!(l3e.len(), 1);
    assert_eq!(l3e[0].0, 3);
    assert_eq!(mem.page(l3)[32..], [0u8; 4096 - 32], "L3 slots 4-511 zero");
    let l2_pfn = s.m2p()[&((l3e[0].1 >> 12) as u32)];
    // L2 of slot 3: entries 0 and 1 (0xC0000000-0xC03FFFFF), none in 428-511.
    let l2e = present_entries(&mem, l2_pfn);
    assert_eq!(l2e.iter().map(|e| e.0).collect::<Vec<_>>(), vec![0, 1]);
    assert!((428..512).all(|i| mem.u64_at(l2_pfn, 8 * i) == 0));
    // L1s: exactly the region's pages present.
    let l1_total: usize = b
        .pt_frames
        .iter()
        .filter(|f| f.level == PtLevel::L1)
        .map(|f| present_entries(&mem, f.pfn).len())
        .sum();
    assert_eq!(l1_total, b.layout.nr_bootstrap_pages() as usize);
}

#[test]
fn page_table_frames_are_listed_l1s_then_l2s_then_the_l3() {
    let s = linux_setup();
    let (b, mem) = s.built();
    let levels: Vec<PtLevel> = b.pt_frames.iter().map(|f| f.level).collect();
    assert_eq!(
        levels,
        vec![PtLevel::L1, PtLevel::L1, PtLevel::L2, PtLevel::L3]
    );
    for f in &b.pt_frames {
        assert_eq!(f.mfn, s.mfns[f.pfn as usize]);
    }
    assert_eq!(
        *b.pt_frames.last().unwrap(),
        crate::PtFrame {
            level: PtLevel::L3,
            pfn: b.l3.pfn,
            mfn: b.l3.mfn,
        }
    );
    // The L3 points at the listed L2, the L2 at the listed L1s, in order.
    let l2 = b.pt_frames[2];
    assert_eq!(mem.u64_at(b.l3.pfn, 8 * 3) >> 12, u64::from(l2.mfn));
    assert_eq!(mem.u64_at(l2.pfn, 0) >> 12, u64::from(b.pt_frames[0].mfn));
    assert_eq!(mem.u64_at(l2.pfn, 8) >> 12, u64::from(b.pt_frames[1].mfn));
    // pfns are the pt element's pages, all of them.
    let mut pfns: Vec<u32> = b.pt_frames.iter().map(|f| f.pfn).collect();
    pfns.sort();
    assert_eq!(pfns, (0x110..0x114).collect::<Vec<_>>());
}

#[test]
fn start_info_fields_sit_at_their_abi_offsets() {
    let s = linux_setup();
    let (b, mem) = s.built();
    let si = b.start_info.pfn;
    assert_eq!(mem.read(si, 0, 16), b"xen-3.0-x86_32p\0");
    assert_eq!(mem.read(si, 16, 16), [0u8; 16]);
    assert_eq!(mem.u32_at(si, 32), NR_PAGES, "nr_pages");
    assert_eq!(
        mem.u32_at(si, 36),
        0x7_1234 << 12,
        "shared_info machine address"
    );
    assert_eq!(mem.u32_at(si, 40), 0, "flags");
    assert_eq!(mem.u32_at(si, 44), s.mfns[0x10E], "store_mfn");
    assert_eq!(mem.u32_at(si, 48), 3, "store_evtchn");
    assert_eq!(mem.u32_at(si, 52), s.mfns[0x10F], "console.domU.mfn");
    assert_eq!(mem.u32_at(si, 56), 4, "console.domU.evtchn");
    assert_eq!(mem.u32_at(si, 60), 0xC011_0000, "pt_base");
    assert_eq!(mem.u32_at(si, 64), 4, "nr_pt_frames");
    assert_eq!(mem.u32_at(si, 68), 0xC010_B000, "mfn_list");
    assert_eq!(mem.u32_at(si, 72), 0xC010_9000, "mod_start");
    assert_eq!(mem.u32_at(si, 76), 5000, "mod_len: exact bytes");
    let cmd = b"root=/dev/xvda1 ro console=hvc0";
    assert_eq!(mem.read(si, 80, cmd.len() + 1), [&cmd[..], b"\0"].concat());
    assert_eq!(mem.u32_at(si, 1104), 0, "first_p2m_pfn");
    assert_eq!(mem.u32_at(si, 1108), 0, "nr_p2m_frames");
    assert_eq!(mem.read(si, 1112, 4096 - 1112), vec![0u8; 4096 - 1112]);
    assert!(!b.cmdline_truncated);
    assert_eq!(b.xenstore.mfn, s.mfns[0x10E]);
    assert_eq!(b.console.mfn, s.mfns[0x10F]);
}

#[test]
fn the_p2m_array_is_the_request_at_mfn_list() {
    let s = linux_setup();
    let (b, mem) = s.built();
    let bytes = mem.read_va(0xC000_0000, b.layout.mfn_list(), NR_PAGES as usize * 4);
    let words: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(words, s.mfns);
    assert!(
        s.mfns
            .iter()
            .enumerate()
            .all(|(pfn, &mfn)| mfn != pfn as u32)
    );
}

#[test]
fn segments_are_copied_bss_and_gaps_zeroed() {
    let s = linux_setup();
    let (b, mem) = s.built();
    let k = &s.kernel;
    let base = k.virt_base;
    for (i, seg) in k.segments.iter().enumerate() {
        let va = k.segment_va(i);
        assert_eq!(
            mem.read_va(base, va, seg.bytes.len()),
            seg.bytes,
            "segment {i}"
        );
        let bss = (seg.memsz as usize) - seg.bytes.len();
        let at = va + seg.bytes.len() as u32;
        assert_eq!(
            mem.read_va(base, at, bss),
            vec![0; bss],
            "bss of segment {i}"
        );
    }
    // The gap between the segments, the pages before the kernel and the rest of
    // its last page are zero.
    assert_eq!(mem.read_va(base, 0xC010_3800, 0x1800), vec![0; 0x1800]);
    assert_eq!(mem.read_va(base, base, 0x10_0000), vec![0; 0x10_0000]);
    let end = k.segment_va(1) + k.segments[1].memsz;
    assert_eq!(
        mem.read_va(base, end, (0xC010_9000 - end) as usize),
        vec![0; (0xC010_9000 - end) as usize]
    );
    // The hypercall page is reported for XEN_DOMCTL_hypercall_init.
    let hc = b.hypercall_page.unwrap();
    assert_eq!(hc.pfn, 0x101);
    assert_eq!(hc.mfn, s.mfns[0x101]);
    assert_eq!(b.entry, 0xC010_0010);
}

#[test]
fn the_ramdisk_is_at_mod_start_with_its_tail_zeroed() {
    let s = linux_setup();
    let (_, mem) = s.built();
    let rd = s.ramdisk.as_ref().unwrap();
    assert_eq!(&mem.read_va(0xC000_0000, 0xC010_9000, rd.len()), rd);
    assert_eq!(
        mem.read_va(0xC000_0000, 0xC010_9000 + 5000, 8192 - 5000),
        vec![0; 8192 - 5000]
    );
}

#[test]
fn every_region_page_is_written_and_no_other_page_is_touched() {
    let s = linux_setup();
    let (b, mem) = s.built();
    let n = b.layout.nr_bootstrap_pages();
    for pfn in 0..NR_PAGES {
        let touched = mem.pages[pfn as usize] != Page::Untouched;
        assert_eq!(touched, pfn < n, "pfn {pfn:#x}");
    }
    // Pages with nothing to hold are all zero, not stale.
    for pfn in [b.xenstore.pfn, b.console.pfn, 0x114, n - 1, 0] {
        assert_eq!(mem.page(pfn), [0u8; 4096], "pfn {pfn:#x}");
    }
    // And no write crossed a page (TestMemory asserts it) or went past the region.
    assert!(mem.calls.iter().all(|&(pfn, _, _)| pfn < n));
}

#[test]
// The rotation is spelled out as the ABI (§7.5) states it.
#[allow(clippy::manual_rotate)]
fn the_vcpu_context_is_libxcs_for_x86_32_pae() {
    let s = linux_setup();
    let (b, _) = s.built();
    let c = &b.vcpu_context;
    let r = &c.user_regs;
    assert_eq!(
        (r.cs, r.ds, r.es, r.fs, r.gs, r.ss),
        (0xE019, 0xE021, 0xE021, 0xE021, 0xE021, 0xE021)
    );
    assert_eq!(r.eip, 0xC010_0010);
    assert_eq!(r.esp, 0xC011_5000, "end of the boot-stack page");
    assert_eq!(r.esi, 0xC010_D000, "start_info");
    assert_eq!(
        (r.eax, r.ebx, r.ecx, r.edx, r.edi, r.ebp),
        (0, 0, 0, 0, 0, 0)
    );
    assert_eq!(r.eflags, (1 << 9) | (1 << 1));
    assert_eq!(EFLAGS_RESERVED_ONE, 2);
    assert_eq!((c.kernel_ss, c.kernel_sp), (0xE021, 0xC011_5000));
    assert_eq!(c.flags, VGCF_IN_KERNEL | VGCF_ONLINE);
    assert_eq!(c.flags, (1 << 2) | (1 << 5));
    // CR3 in rotated form: mfn << 12 | mfn >> 20.
    let l3 = b.l3.mfn;
    assert!(l3 >= 0x20_0000, "fixture puts this L3 above 4 GiB");
    assert_eq!(c.ctrlreg[3], (l3 << 12) | (l3 >> 20));
    assert_eq!(c.vm_assist, 1 << 3, "extended-cr3 kernel");
    assert!(b.extended_cr3);
    assert_eq!((c.event_callback_cs, c.event_callback_eip), (0, 0));
    assert_eq!((c.failsafe_callback_cs, c.failsafe_callback_eip), (0, 0));
    assert_eq!((c.ldt_ents, c.gdt_ents), (0, 0));
    assert!(c.trap_ctxt.iter().all(|t| t.address == 0));
    // At the §15.8 offsets of the 2800-byte struct.
    let raw = c.as_bytes();
    assert_eq!(raw.len(), 2800);
    let at = |o: usize| u32::from_le_bytes(raw[o..o + 4].try_into().unwrap());
    assert_eq!(at(512), (1 << 2) | (1 << 5));
    assert_eq!(at(516 + 12), 0xC010_D000);
    assert_eq!(at(516 + 32), 0xC010_0010);
    assert_eq!(at(516 + 36) & 0xFFFF, 0xE019);
    assert_eq!(at(516 + 44), 0xC011_5000);
    assert_eq!(at(2708), 0xE021);
    assert_eq!(at(2716 + 12), (l3 << 12) | (l3 >> 20));
    assert_eq!(at(2796), 1 << 3);
}

#[test]
fn pinning_is_an_l3_pin_of_the_l3_mfn_on_behalf_of_the_new_domain() {
    let (b, _) = linux_setup().built();
    let op = b.pin_l3_op();
    assert_eq!(op.cmd, MMUEXT_PIN_L3_TABLE);
    assert_eq!(op.mfn(), b.l3.mfn);
    assert_eq!(b.pin_foreigndom(), 7);
}

#[test]
fn a_long_command_line_is_truncated_to_1023_bytes_and_terminated() {
    let mut s = linux_setup();
    s.cmdline = "x".repeat(1023);
    let (b, mem) = s.built();
    assert!(!b.cmdline_truncated, "1023 bytes fit");
    assert_eq!(
        mem.read(b.start_info.pfn, 80, 1024),
        [vec![b'x'; 1023], vec![0]].concat()
    );
    s.cmdline = "y".repeat(1024) + " more";
    let (b, mem) = s.built();
    assert!(b.cmdline_truncated);
    assert_eq!(
        mem.read(b.start_info.pfn, 80, 1024),
        [vec![b'y'; 1023], vec![0]].concat()
    );
    assert_eq!(
        mem.u32_at(b.start_info.pfn, 1104),
        0,
        "nothing spilled past cmd_line"
    );
}

#[test]
fn without_a_ramdisk_mod_start_and_mod_len_are_zero() {
    for ramdisk in [None, Some(Vec::new())] {
        let mut s = linux_setup();
        s.ramdisk = ramdisk;
        let (b, mem) = s.built();
        assert_eq!(b.layout.initrd, None);
        assert_eq!(mem.u32_at(b.start_info.pfn, 72), 0);
        assert_eq!(mem.u32_at(b.start_info.pfn, 76), 0);
        assert_eq!(
            b.layout.mfn_list(),
            0xC010_9000,
            "the P2M follows the kernel"
        );
    }
}

#[test]
fn a_low_legacy_kernel_gets_an_empty_slot_3_l2_and_no_extended_cr3() {
    let mut s = Setup::new(TestKernel::legacy_low(), 1500);
    // This kernel's L3 must be below 4 GiB: give the whole domain low frames.
    s.mfns = s.mfns.iter().map(|m| m & 0xF_FFFF).collect();
    let (b, mem) = s.built();
    let m2p = s.m2p();
    assert!(!b.extended_cr3);
    assert_eq!(b.vcpu_context.vm_assist, 0);
    assert_eq!(b.entry, 0);
    for pfn in 0..b.layout.nr_bootstrap_pages() {
        assert_eq!(
            walk(&mem, &m2p, b.l3.mfn, pfn * 4096).map(|w| w.pfn),
            Some(pfn)
        );
    }
    // L3: slot 0 for the region, slot 3 for the hypervisor's L2, which is empty.
    let l3e = present_entries(&mem, b.l3.pfn);
    assert_eq!(l3e.iter().map(|e| e.0).collect::<Vec<_>>(), vec![0, 3]);
    let slot3 = m2p[&((l3e[1].1 >> 12) as u32)];
    assert_eq!(mem.page(slot3), [0u8; 4096]);
    let levels: Vec<PtLevel> = b.pt_frames.iter().map(|f| f.level).collect();
    assert_eq!(
        levels,
        vec![
            PtLevel::L1,
            PtLevel::L1,
            PtLevel::L2,
            PtLevel::L2,
            PtLevel::L3
        ]
    );
    // Legacy HYPERCALL_PAGE=0x1 is a page number from VIRT_BASE.
    assert_eq!(b.hypercall_page.map(|f| f.pfn), Some(1));
    assert_eq!(b.vcpu_context.ctrlreg[3], b.l3.mfn << 12);
}

#[test]
fn a_region_across_a_1gib_boundary_gets_an_l2_per_slot() {
    let mut k = TestKernel::linux_like();
    // VIRT_BASE 0x3FE80000 (not 2 MiB aligned): the kernel starts 1 MiB later at
    // 0x3FF80000, the stack ends less than 512 KiB below 1 GiB, so the region
    // runs on to 0x40400000, into L3 slot 1.
    k.virt_base = 0x3FE8_0000;
    k.entry = 0x3FF8_0010;
    k.hypercall_page = Some(0x3FF8_1000);
    let s = Setup::new(k, 3000);
    let (b, mem) = s.built();
    let m2p = s.m2p();
    assert_eq!(b.layout.l2_slots, 0b1011);
    assert_eq!(b.layout.v_end, 0x4040_0000);
    assert_eq!(b.layout.nr_l1_frames, 3);
    for pfn in 0..b.layout.nr_bootstrap_pages() {
        let va = 0x3FE8_0000 + pfn * 4096;
        let w = walk(&mem, &m2p, b.l3.mfn, va).unwrap();
        assert_eq!(w.pfn, pfn);
        let pt = b.pt_frames.iter().any(|f| f.pfn == pfn);
        assert_eq!(w.l1_flags & RW == 0, pt);
    }
    let levels: Vec<PtLevel> = b.pt_frames.iter().map(|f| f.level).collect();
    let l1s = b.layout.nr_l1_frames as usize;
    assert_eq!(
        &levels[l1s..],
        &[PtLevel::L2, PtLevel::L2, PtLevel::L2, PtLevel::L3]
    );
    assert!(levels[..l1s].iter().all(|&l| l == PtLevel::L1));
}

#[test]
fn a_request_debugs_as_sizes_not_bytes() {
    let s = linux_setup();
    let text = format!("{:?}", s.request());
    assert!(
        text.contains(&format!("kernel_len: {}", s.image.len())),
        "{text}"
    );
    assert!(text.contains("ramdisk_len: Some(5000)"), "{text}");
    assert!(text.contains("mfns_len: 2048"), "{text}");
    assert!(text.len() < 400, "{text}");
}
