//! Xen's errno values (equal to Linux/x86's). Hypercalls return `-errno`.

use core::fmt;

/// An error a hypercall returns, as its positive errno value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident = $val:expr,)*) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "` (", stringify!($val), ").")]
                pub const $name: Errno = Errno($val);
            )*

            /// The symbolic name, if this is a known errno.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

errnos! {
    EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, E2BIG = 7,
    ENOEXEC = 8, EBADF = 9, ECHILD = 10, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
    EFAULT = 14, EBUSY = 16, EEXIST = 17, EXDEV = 18, ENODEV = 19, ENOTDIR = 20,
    EISDIR = 21, EINVAL = 22, ENFILE = 23, EMFILE = 24, ENOSPC = 28, EROFS = 30,
    EMLINK = 31, EDOM = 33, ERANGE = 34, EDEADLK = 35, ENAMETOOLONG = 36, ENOLCK = 37,
    ENOSYS = 38, ENOTEMPTY = 39, ENODATA = 61, ETIME = 62, EBADMSG = 74,
    EOVERFLOW = 75, EILSEQ = 84, ERESTART = 85, ENOTSOCK = 88, EMSGSIZE = 90,
    EOPNOTSUPP = 95, EADDRINUSE = 98, EADDRNOTAVAIL = 99, ENOBUFS = 105,
    EISCONN = 106, ENOTCONN = 107, ETIMEDOUT = 110, ECONNREFUSED = 111,
}

impl Errno {
    /// The value a hypercall returns in EAX for this error (`-errno`).
    pub const fn to_ret(self) -> i32 {
        -self.0
    }

    /// Decodes a negative hypercall return value.
    pub const fn from_ret(ret: i32) -> Option<Errno> {
        if ret < 0 { Some(Errno(-ret)) } else { None }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "-{n}"),
            None => write!(f, "-errno {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_the_digest() {
        assert_eq!(Errno::EPERM.0, 1);
        assert_eq!(Errno::EFAULT.0, 14);
        assert_eq!(Errno::EINVAL.0, 22);
        assert_eq!(Errno::ENOSYS.0, 38);
        assert_eq!(Errno::ERESTART.0, 85);
        assert_eq!(Errno::ECONNREFUSED.0, 111);
    }

    #[test]
    fn return_value_round_trip() {
        assert_eq!(Errno::EINVAL.to_ret(), -22);
        assert_eq!(Errno::from_ret(-38), Some(Errno::ENOSYS));
        assert_eq!(Errno::from_ret(0), None);
        assert_eq!(Errno::from_ret(5), None);
    }

    #[test]
    fn display_names_known_values() {
        assert_eq!(Errno::ENOSYS.to_string(), "-ENOSYS");
        assert_eq!(Errno(1000).to_string(), "-errno 1000");
    }
}
