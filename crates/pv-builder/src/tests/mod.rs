//! Host tests of the builder: a domU built over an in-memory guest memory with a
//! scrambled P2M and checked as the MMU, the guest and the hypervisor would see it
//! (`build`), every refusal with a passing and a failing case (`errors`), and a
//! property test over domain and image sizes (`props`).

mod build;
mod errors;
mod fixtures;
mod props;
