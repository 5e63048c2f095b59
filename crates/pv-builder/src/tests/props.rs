//! Property: over random domain sizes, image placements and sizes and ramdisks, a
//! build either succeeds with a region that fits the domain and page tables that
//! map it exactly, or is refused with a layout or image reason — never a panic.

use proptest::prelude::*;

use super::fixtures::*;
use crate::{BuildError, PtLevel};
use xen_abi::layout::HYPERVISOR_VIRT_START;
use xen_loader::{LayoutError, LoadError};

#[derive(Debug, Clone)]
struct Params {
    nr_pages: u32,
    virt_base: u32,
    kernel_offset: u32,
    text_len: u32,
    bss_len: u32,
    ramdisk_len: usize,
    seed: u32,
}

fn params() -> impl Strategy<Value = Params> {
    (
        prop_oneof![0u32..3000, 0u32..300_000],
        prop_oneof![
            Just(0xC000_0000u32),
            Just(0u32),
            (0u32..(HYPERVISOR_VIRT_START >> 12)).prop_map(|p| p << 12),
        ],
        0u32..0x20_0000,
        1u32..0x4_0000,
        prop_oneof![Just(0u32), 0u32..0x40_0000],
        prop_oneof![Just(0usize), 0usize..0x20_0000],
        any::<u32>(),
    )
        .prop_map(
            |(nr_pages, virt_base, kernel_offset, text_len, bss_len, ramdisk_len, seed)| Params {
                nr_pages,
                virt_base,
                kernel_offset,
                text_len,
                bss_len,
                ramdisk_len,
                seed,
            },
        )
}

fn setup(p: &Params) -> Setup {
    let kernel = TestKernel {
        virt_base: p.virt_base,
        paddr_offset: 0,
        entry: p.virt_base.wrapping_add(p.kernel_offset),
        hypercall_page: None,
        segments: vec![Segment {
            paddr: p.kernel_offset,
            bytes: pattern(p.seed, p.text_len as usize),
            memsz: p.text_len + p.bss_len,
        }],
        decl: Declarations::Notes {
            pae: Some("yes"),
            features: None,
        },
    };
    let mut s = Setup::new(kernel, p.nr_pages);
    s.ramdisk = Some(pattern(p.seed ^ 0x5555, p.ramdisk_len));
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_build_fits_and_maps_exactly_or_is_refused_cleanly(p in params()) {
        let s = setup(&p);
        let (r, mem) = s.run();
        match r {
            Ok(b) => {
                let l = &b.layout;
                let n = l.nr_bootstrap_pages();
                prop_assert!(n <= p.nr_pages);
                prop_assert!(l.v_end <= HYPERVISOR_VIRT_START);
                prop_assert_eq!(l.v_end % (4 << 20), 0);
                prop_assert!(l.v_end - l.stack_top() >= 512 << 10);
                let m2p = s.m2p();
                let pt: Vec<u32> = b.pt_frames.iter().map(|f| f.pfn).collect();
                for pfn in 0..n {
                    let va = p.virt_base + pfn * 4096;
                    let w = walk(&mem, &m2p, b.l3.mfn, va);
                    prop_assert!(w.is_some(), "va {:#x} unmapped", va);
                    let w = w.unwrap();
                    prop_assert_eq!(w.pfn, pfn);
                    prop_assert_eq!(w.l1_flags & RW == 0, pt.contains(&pfn));
                }
                prop_assert_eq!(walk(&mem, &m2p, b.l3.mfn, l.v_end), None);
                for pfn in n..p.nr_pages {
                    prop_assert_eq!(&mem.pages[pfn as usize], &Page::Untouched);
                }
                // Frames listed bottom-up, as many as start_info says.
                prop_assert_eq!(pt.len() as u32, l.nr_pt_frames());
                let levels: Vec<PtLevel> = b.pt_frames.iter().map(|f| f.level).collect();
                let mut sorted = levels.clone();
                sorted.sort_by_key(|l| *l as u8);
                prop_assert_eq!(&levels, &sorted);
                prop_assert_eq!(levels.last(), Some(&PtLevel::L3));
                // start_info and the ends of the P2M.
                prop_assert_eq!(mem.u32_at(b.start_info.pfn, 32), p.nr_pages);
                prop_assert_eq!(mem.u32_at(b.start_info.pfn, 76), p.ramdisk_len as u32);
                let last = p.nr_pages - 1;
                let p2m = mem.read_va(p.virt_base, l.mfn_list() + last * 4, 4);
                prop_assert_eq!(u32::from_le_bytes(p2m.try_into().unwrap()), s.mfns[last as usize]);
            }
            Err(BuildError::Layout(LayoutError::DomainTooSmall { needed_pages, nr_pages })) => {
                prop_assert_eq!(nr_pages, p.nr_pages);
                prop_assert!(needed_pages > u64::from(p.nr_pages));
                prop_assert!(mem.calls.is_empty());
            }
            Err(BuildError::Layout(LayoutError::ReachesHypervisorHole { v_end })) => {
                prop_assert!(v_end > u64::from(HYPERVISOR_VIRT_START));
                prop_assert!(mem.calls.is_empty());
            }
            Err(BuildError::Image(
                LoadError::ImageInHypervisorHole { .. } | LoadError::AddressOverflow { .. },
            )) => {
                let end = u64::from(p.virt_base) + u64::from(p.kernel_offset)
                    + u64::from(p.text_len + p.bss_len);
                prop_assert!(end > u64::from(HYPERVISOR_VIRT_START));
            }
            Err(e) => prop_assert!(false, "unexpected refusal: {}", e),
        }
    }
}
