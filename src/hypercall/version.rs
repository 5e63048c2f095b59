//! `xen_version` (XEN-PV-ABI.md §15.4): Oxen implements the Xen 4.1 interface
//! and says so, lists `xen-3.0-x86_32p` as its only capability, and reports
//! the features it really provides.

use hv_core::hypercall::Outcome;
use spin::Once;
use xen_abi::errno::Errno;
use xen_abi::layout::HYPERVISOR_VIRT_START;
use xen_abi::traps::VMASST_TYPE_PAE_EXTENDED_CR3;
use xen_abi::version::*;
use zerocopy::FromZeros;

use super::Ctx;
use crate::arch::x86::uaccess::{copy_to_guest, read_guest, write_guest};

/// The Xen interface version Oxen implements.
pub const XEN_MAJOR: u16 = 4;
pub const XEN_MINOR: u16 = 1;
/// `XENVER_extraversion`.
pub const EXTRAVERSION: &str = concat!(".0-oxen-", env!("CARGO_PKG_VERSION"));

static COMMAND_LINE: Once<heapless::String<1024>> = Once::new();

/// Records Oxen's command line for `XENVER_commandline`.
pub fn set_command_line(cmdline: &str) {
    COMMAND_LINE.call_once(|| {
        let mut s = heapless::String::new();
        for c in cmdline.chars() {
            if s.push(c).is_err() {
                break;
            }
        }
        s
    });
}

/// Copies `s` NUL-padded into a guest buffer of `N` bytes (always terminated).
fn put_string<const N: usize>(va: u32, s: &str) -> Result<i32, Errno> {
    let mut buf = [0u8; N];
    let n = s.len().min(N - 1);
    buf[..n].copy_from_slice(&s.as_bytes()[..n]);
    copy_to_guest(va, &buf)?;
    Ok(0)
}

fn fill(dst: &mut [u8], s: &str) {
    let n = s.len().min(dst.len() - 1);
    dst[..n].copy_from_slice(&s.as_bytes()[..n]);
}

pub fn do_xen_version(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [cmd, arg, ..] = args;
    let dom = ctx.dom();
    let r = match cmd {
        XENVER_VERSION => Ok(xen_version(XEN_MAJOR, XEN_MINOR) as i32),
        XENVER_EXTRAVERSION => put_string::<XEN_EXTRAVERSION_LEN>(arg, EXTRAVERSION),
        XENVER_COMPILE_INFO => {
            let mut info = XenCompileInfo::new_zeroed();
            fill(&mut info.compiler, "rustc (nightly), x86_32-hv.json");
            fill(&mut info.compile_by, "oxen");
            fill(&mut info.compile_domain, "oxen");
            fill(&mut info.compile_date, env!("OXEN_BUILD_DATE"));
            write_guest(arg, &info).map(|()| 0)
        }
        XENVER_CAPABILITIES => put_string::<XEN_CAPABILITIES_INFO_LEN>(arg, XEN_CAPABILITY_X86_32P),
        XENVER_CHANGESET => {
            put_string::<XEN_CHANGESET_INFO_LEN>(arg, concat!("oxen ", env!("CARGO_PKG_VERSION")))
        }
        XENVER_PLATFORM_PARAMETERS => write_guest(
            arg,
            &XenPlatformParameters {
                virt_start: HYPERVISOR_VIRT_START,
            },
        )
        .map(|()| 0),
        XENVER_GET_FEATURES => read_guest::<XenFeatureInfo>(arg).and_then(|mut fi| {
            fi.submap = match fi.submap_idx {
                // What Xen 4.1 reports to a PV guest (pae_pgdir_above_4gb
                // when the domain runs with pae_extended_cr3: its L3s may
                // lie anywhere, CR3 holds Oxen's low copy), less
                // gnttab_map_avail_bits (grant maps do not put the
                // GNTMAP_guest_avail bits into the PTE).
                0 => {
                    pv_features_submap0(dom.has_assist(VMASST_TYPE_PAE_EXTENDED_CR3))
                        & !(1 << XENFEAT_GNTTAB_MAP_AVAIL_BITS)
                }
                _ => 0,
            };
            write_guest(arg, &fi).map(|()| 0)
        }),
        XENVER_PAGESIZE => Ok(4096),
        XENVER_GUEST_HANDLE => copy_to_guest(arg, &[0u8; XEN_DOMAIN_HANDLE_LEN]).map(|()| 0),
        XENVER_COMMANDLINE if dom.privileged => {
            put_string::<XEN_COMMANDLINE_LEN>(arg, COMMAND_LINE.get().map_or("", |s| s.as_str()))
        }
        XENVER_COMMANDLINE => Err(Errno::EPERM),
        _ => Err(Errno::ENOSYS),
    };
    r.into()
}
