//! Every refusal of the builder, each beside the closest request that passes.

use super::fixtures::*;
use crate::BuildError;
use crate::memory::RegionWriter;
use xen_loader::{LayoutError, LoadError};

type Error = BuildError<WriteRefused>;

fn linux_setup(nr_pages: u32) -> Setup {
    let mut s = Setup::new(TestKernel::linux_like(), nr_pages);
    s.ramdisk = Some(pattern(9, 5000));
    s
}

/// Runs `s`, expecting a refusal made before anything was written.
fn refusal(s: &Setup) -> Error {
    let (r, mem) = s.run();
    let e = r.expect_err("the build should be refused");
    assert!(mem.calls.is_empty(), "refused after writing: {e}");
    e
}

#[test]
fn the_p2m_must_have_one_mfn_per_page() {
    let mut s = linux_setup(2048);
    s.run().0.expect("equal lengths build");
    s.mfns.pop();
    assert_eq!(
        refusal(&s),
        Error::P2mLengthMismatch {
            nr_pages: 2048,
            mfns: 2047
        }
    );
    s.mfns.extend([1, 2]);
    let e = refusal(&s);
    assert_eq!(
        e,
        Error::P2mLengthMismatch {
            nr_pages: 2048,
            mfns: 2049
        }
    );
    assert_eq!(
        e.to_string(),
        "the P2M has 2049 MFNs but the domain has 2048 pages"
    );
}

#[test]
fn an_invalid_kernel_is_refused_with_the_loaders_reason() {
    let mut s = linux_setup(2048);
    s.image = b"#!/bin/sh\necho not a kernel\n".repeat(4);
    let e = refusal(&s);
    assert_eq!(e, Error::Image(LoadError::NotElf));
    assert_eq!(
        e.to_string(),
        "kernel refused: kernel image is not an ELF file"
    );

    let mut k = TestKernel::linux_like();
    k.decl = Declarations::Notes {
        pae: None,
        features: None,
    };
    let s = Setup::new(k, 2048);
    let e = refusal(&s);
    assert_eq!(e, Error::Image(LoadError::NotPae));
    assert!(e.to_string().contains("does not declare PAE"), "{e}");
}

#[test]
fn a_required_feature_must_be_offered() {
    let mut k = TestKernel::linux_like();
    k.decl = Declarations::Notes {
        pae: Some("yes"),
        features: Some("writable_page_tables|!pae_pgdir_above_4gb"),
    };
    let mut s = Setup::new(k, 2048);
    let e = refusal(&s);
    assert_eq!(
        e,
        Error::Image(LoadError::RequiredFeatureUnsupported { bit: 4 })
    );
    assert!(e.to_string().contains("pae_pgdir_above_4gb"), "{e}");
    s.offered_features = 1 << 4;
    s.run().0.expect("offered feature builds");
}

#[test]
fn the_domain_must_hold_the_bootstrap_region() {
    // With 1024 pages the region (1024 pages, ending at 0xC0400000) just fits.
    let s = linux_setup(1024);
    let (b, _) = s.built();
    assert_eq!(b.layout.nr_bootstrap_pages(), 1024);
    let s = linux_setup(1023);
    let e = refusal(&s);
    assert_eq!(
        e,
        Error::Layout(LayoutError::DomainTooSmall {
            needed_pages: 1024,
            nr_pages: 1023
        })
    );
    assert!(
        e.to_string()
            .starts_with("bootstrap region needs 1024 pages"),
        "{e}"
    );
    // An empty domain is too small as well, not a panic.
    let s = linux_setup(0);
    assert!(matches!(
        refusal(&s),
        Error::Layout(LayoutError::DomainTooSmall { nr_pages: 0, .. })
    ));
}

#[test]
fn the_region_must_end_below_the_hypervisor_hole() {
    let at = |virt_base: u32| {
        let mut k = TestKernel::linux_like();
        k.virt_base = virt_base;
        k.entry = virt_base + 0x10_0010;
        k.hypercall_page = None;
        Setup::new(k, 2048)
    };
    // Region ends exactly at 0xF5800000: allowed.
    let (b, _) = at(0xF560_0000).built();
    assert_eq!(b.layout.v_end, 0xF580_0000);
    // Kernel still below the hole, but padding pushes the region past it.
    let e = refusal(&at(0xF568_0000));
    assert_eq!(
        e,
        Error::Layout(LayoutError::ReachesHypervisorHole { v_end: 0xF5C0_0000 })
    );
    assert!(e.to_string().contains("hypervisor hole"), "{e}");
}

#[test]
fn shared_info_must_be_below_4gib() {
    let mut s = linux_setup(2048);
    s.shared_info_mfn = 0xF_FFFF;
    let (b, mem) = s.built();
    assert_eq!(mem.u32_at(b.start_info.pfn, 36), 0xFFFF_F000);
    s.shared_info_mfn = 0x10_0000;
    let e = refusal(&s);
    assert_eq!(e, Error::SharedInfoAbove4G { mfn: 0x10_0000 });
    assert!(e.to_string().contains("32-bit machine address"), "{e}");
}

#[test]
fn without_extended_cr3_the_l3_must_be_below_4gib() {
    let mut s = Setup::new(TestKernel::legacy_low(), 1500);
    s.mfns = s.mfns.iter().map(|m| m & 0xF_FFFF).collect();
    let (b, _) = s.built();
    let l3 = b.l3.pfn;
    s.mfns[l3 as usize] = 0xF_FFFF;
    s.run().0.expect("highest MFN below 4 GiB is fine");
    s.mfns[l3 as usize] = 0x10_0000;
    let e = refusal(&s);
    assert_eq!(
        e,
        Error::L3Above4G {
            pfn: l3,
            mfn: 0x10_0000
        }
    );
    assert!(e.to_string().contains("extended-cr3"), "{e}");
    // Other frames above 4 GiB are fine for the same kernel.
    s.mfns[l3 as usize] = 0x5_0000;
    s.mfns[0] = 0x30_0000;
    s.run().0.expect("only the L3 is constrained");
}

#[cfg(target_pointer_width = "64")]
#[test]
fn a_ramdisk_of_4gib_is_refused() {
    let mut s = linux_setup(2048);
    // Zero-initialised, so the allocator maps it lazily and nothing is touched.
    s.ramdisk = Some(vec![0u8; 1 << 32]);
    let e = refusal(&s);
    assert_eq!(e, Error::RamdiskTooLarge { len: 1 << 32 });
    assert!(e.to_string().contains("4 GiB"), "{e}");
    // One far smaller than that but too big for the region is a layout refusal.
    s.ramdisk = Some(vec![0u8; 0x4000_0000]);
    assert!(matches!(
        refusal(&s),
        Error::Layout(LayoutError::ReachesHypervisorHole { .. })
    ));
}

#[test]
fn a_write_failure_stops_the_build_and_names_the_frame() {
    let s = linux_setup(2048);
    // One frame of each element: before the kernel, kernel, hypercall page,
    // ramdisk, P2M, start_info, xenstore, console, L3, L2, L1, stack, padding.
    for pfn in [
        0, 0x100, 0x101, 0x108, 0x109, 0x10B, 0x10D, 0x10E, 0x10F, 0x110, 0x111, 0x113, 0x114,
        0x3FF,
    ] {
        let mut mem = TestMemory::new(2048);
        mem.fail_at = Some(pfn);
        let e = crate::build(&s.request(), &mut mem).expect_err("write failure");
        assert_eq!(
            e,
            Error::Memory {
                pfn,
                error: WriteRefused { pfn }
            }
        );
        assert_eq!(
            e.to_string(),
            format!("writing the new domain's pfn {pfn:#x} failed: mapping of pfn {pfn} failed")
        );
    }
    // A frame outside the region is never written, so its failure does not matter.
    let mut mem = TestMemory::new(2048);
    mem.fail_at = Some(0x400);
    crate::build(&s.request(), &mut mem).expect("frame beyond the region untouched");
}

#[test]
fn the_region_writer_refuses_addresses_outside_the_domain() {
    let mut mem = TestMemory::new(4);
    let mut w = RegionWriter::new(&mut mem, 0xC000_0000, 4);
    w.write_bytes(0xC000_0FFE, &[1, 2, 3, 4])
        .expect("inside, across a page");
    assert_eq!(
        w.write_bytes(0xBFFF_FFFF, &[1]),
        Err(Error::OutsideDomain { va: 0xBFFF_FFFF })
    );
    assert_eq!(
        w.zero_bytes(0xC000_3000, 0x1001),
        Err(Error::OutsideDomain { va: 0xC000_4000 })
    );
    let e = w.write_bytes(0xC000_4000, &[1]).unwrap_err();
    assert!(e.to_string().contains("builder bug"), "{e}");
    // Whole pages are zeroed with `zero`, partial ones with writes of zeros.
    let n = mem.calls.len();
    let mut w = RegionWriter::new(&mut mem, 0xC000_0000, 4);
    w.zero_bytes(0xC000_0800, 0x1000).unwrap();
    assert_eq!(mem.read(0, 0x7FE, 4), [GARBAGE, GARBAGE, 0, 0]);
    assert_eq!(mem.read(0, 0xFFE, 2), [0, 0], "was written, now zeroed");
    assert_eq!(mem.read(1, 0, 2), [0, 0], "was written, now zeroed");
    assert_eq!(mem.read(1, 0x800, 1), [GARBAGE]);
    assert_eq!(mem.calls[n..], [(0, 0x800, 0x800), (1, 0, 0x800)]);
    let n = mem.calls.len();
    let mut w = RegionWriter::new(&mut mem, 0xC000_0000, 4);
    w.zero_bytes(0xC000_1000, 0x2000).unwrap();
    assert_eq!(mem.calls[n..], [(1, 0, 4096), (2, 0, 4096)]);
}
