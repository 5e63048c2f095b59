//! Xen domain configuration files for Oxen's dom0 toolstack.
//!
//! This crate owns the two configuration formats an xm user writes:
//!
//! * **Domain configs** (`/etc/xen/brun.cfg`), the Python-syntax subset xm
//!   accepted: [`parse_assignments`] gives the raw `key -> value` map (strings in
//!   any Python quoting, integers, lists over several lines, `#` comments), and
//!   [`parse`] types it into a [`DomainConfig`] with xm's defaults and rules
//!   (disks, vifs, shutdown actions, the kernel command line).
//! * **`xend-config.sxp`**, the S-expression file that chooses dom0's networking
//!   mode: [`parse_xend_config`] returns the network mode (bridge / route / nat).
//!
//! Every error ([`ConfigError`]) and warning ([`Warning`]) names the file, the
//! 1-based line, the column when it points inside a line, and the key when known;
//! `Display` renders `file:line[:col]: key 'k': message`. Unknown keys and
//! re-assigned keys are warnings, never errors. The parsers never panic on any
//! input (property-tested) and bound their nesting depth.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod disk;
pub mod domain;
pub mod error;
mod lexer;
pub mod parser;
pub mod sxp;
pub mod value;
pub mod vif;

pub use disk::{DeviceType, DiskBackend, DiskMode, DiskSpec};
pub use domain::{Builder, CpuSet, DomainConfig, ShutdownAction, Uuid, parse};
pub use error::{ConfigError, ErrorKind, Location, Warning, WarningKind};
pub use parser::parse_assignments;
pub use sxp::{
    NetworkMode, ScriptCall, ScriptKind, Sexp, XendConfig, parse_sxp, parse_xend_config,
};
pub use value::{Assignment, Assignments, Item, Value};
pub use vif::{MacAddr, Rate, VifSpec};
