//! Host tests of the loader. Every validation rule has a passing and a failing case,
//! built from the fixtures of [`elf_writer`] with one field changed.

mod container;
mod elf_writer;
mod errors;
mod layout;
mod legacy;
mod load;
mod notes;
mod placement;
mod props;

use crate::{GuestImage, LoadError};
use elf_writer::TestElf;

/// Builds and parses `elf`, expecting success; hands the image to `check`.
fn with_image<R>(elf: &TestElf, check: impl FnOnce(&GuestImage<'_>) -> R) -> R {
    let bytes = elf.build();
    match GuestImage::parse(&bytes) {
        Ok(image) => check(&image),
        Err(e) => panic!("fixture refused: {e}"),
    }
}

/// Builds and parses `elf`, expecting a refusal.
fn refusal(elf: &TestElf) -> LoadError {
    refusal_of(&elf.build())
}

fn refusal_of(bytes: &[u8]) -> LoadError {
    match GuestImage::parse(bytes) {
        Ok(image) => panic!("accepted an image that should be refused: {image:?}"),
        Err(e) => e,
    }
}
