//! The xenstore daemon's logic (XEN-PV-ABI.md §13, §11.3), host-tested; dom0
//! binds it to the store rings and event channels of the domains it serves.
//!
//! - [`error`]: the §13 errno names ([`XsError`]).
//! - [`path`]: path validation and resolution (relative paths, `@` watch paths).
//! - [`perms`]: permission strings and access decisions.
//! - [`store`]: the node tree, transactions (optimistic, generation-checked) and
//!   the tree operations.
//! - [`watch`]: which change a watch sees and how its path is reported.
//! - [`wire`]: messages, the incremental decoder, payload arguments.
//! - [`ring`]: index math of the byte rings over a [`ring::RingPage`].
//! - [`daemon`]: [`Xenstored`], connections, the dispatcher, quotas.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod daemon;
pub mod error;
pub mod path;
pub mod perms;
pub mod ring;
pub mod store;
pub mod watch;
pub mod wire;

#[cfg(test)]
mod tests;

pub use daemon::{Connection, Quota, RingActivity, Xenstored};
pub use error::XsError;
pub use perms::{Access, Perms, Principal};
pub use ring::RingPage;
pub use wire::{Decoder, Message, ProtocolError};
