//! Host tests of the engine against an emulated physical memory.

#[macro_use]
mod fake;

mod accounting;
mod audit;
mod l1;
mod l2;
mod l3;
mod mmu_update;
mod mmuext;
mod partial;
mod prop;
mod refcount;
mod teardown;
