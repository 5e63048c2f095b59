//! Crate-internal helpers: compile-time layout assertions and zeroed defaults.

/// Asserts at compile time the size, the alignment and every listed field offset of
/// an ABI struct. The assertions run in every build (x86_64 host tests and the
/// i686 target), so a layout that differs between the two cannot compile.
macro_rules! assert_layout {
    ($t:ty, size = $size:expr, align = $align:expr $(, $($field:ident).+ = $off:expr)* $(,)?) => {
        const _: () = {
            assert!(
                ::core::mem::size_of::<$t>() == $size,
                concat!("size of ", stringify!($t), " differs from the digest")
            );
            assert!(
                ::core::mem::align_of::<$t>() == $align,
                concat!("alignment of ", stringify!($t), " differs from i386")
            );
            $(
                assert!(
                    ::core::mem::offset_of!($t, $($field).+) == $off,
                    concat!("offset of ", stringify!($t), ".", stringify!($($field).+),
                        " differs from the digest")
                );
            )*
        };
    };
}

/// `Default` for structs whose arrays are too long for `#[derive(Default)]`:
/// the all-zero value, which is what Xen means by an empty structure.
macro_rules! zeroed_default {
    ($($t:ty),+ $(,)?) => {
        $(
            impl Default for $t {
                fn default() -> Self {
                    <Self as ::zerocopy::FromZeros>::new_zeroed()
                }
            }
        )+
    };
}
