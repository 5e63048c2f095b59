//! `console-flood`: what a hostile domain does to the hypervisor console —
//! numbered lines through `console_io` as fast as it can. Oxen prints a
//! domU's console lines under its rate limit (10, then one per 5 s), so the
//! flood shows as a few lines and a `dN: K messages suppressed` note. Here:
//! the lines, packed into one write's buffer.
#![forbid(unsafe_code)]

/// How long the kernel floods (milliseconds of system time).
pub const FLOOD_MS: u64 = 6_000;

/// The text of line `n`.
pub fn line(n: u64, out: &mut [u8; 40]) -> usize {
    const HEAD: &[u8] = b"console-flood line ";
    out[..HEAD.len()].copy_from_slice(HEAD);
    let mut digits = [0u8; 20];
    let (mut v, mut k) = (n, 0);
    loop {
        digits[k] = b'0' + (v % 10) as u8;
        k += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut len = HEAD.len();
    for &d in digits[..k].iter().rev() {
        out[len] = d;
        len += 1;
    }
    out[len] = b'\n';
    len + 1
}

/// Fills `buf` with whole lines numbered from `*next` on (advancing it);
/// returns the bytes used.
pub fn fill(buf: &mut [u8], next: &mut u64) -> usize {
    let mut used = 0;
    let mut one = [0u8; 40];
    loop {
        let n = line(*next, &mut one);
        if used + n > buf.len() {
            return used;
        }
        buf[used..used + n].copy_from_slice(&one[..n]);
        used += n;
        *next += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_and_whole() {
        let mut one = [0u8; 40];
        let n = line(0, &mut one);
        assert_eq!(&one[..n], b"console-flood line 0\n");
        let n = line(u64::MAX, &mut one);
        assert_eq!(&one[..n], b"console-flood line 18446744073709551615\n");
        let mut buf = [0u8; 512];
        let mut next = 7;
        let used = fill(&mut buf, &mut next);
        let text = core::str::from_utf8(&buf[..used]).unwrap();
        assert!(text.starts_with("console-flood line 7\nconsole-flood line 8\n"));
        assert!(text.ends_with('\n'));
        assert_eq!(text.lines().count() as u64, next - 7);
        // The next line would not have fitted.
        assert!(used + line(next, &mut one) > buf.len());
        // A buffer too small for one line takes none.
        assert_eq!(fill(&mut [0u8; 5], &mut next), 0);
    }
}
