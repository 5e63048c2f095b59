//! Console echo: what the guest sends back for each byte typed on its
//! console ring. A terminal sends CR for Enter, so CR echoes as CR LF;
//! backspace and DEL erase the previous character on screen; anything else
//! is echoed as it came.
#![forbid(unsafe_code)]

/// The bytes to echo for input byte `b`, written into `out`.
pub fn echo(b: u8, out: &mut [u8; 3]) -> &[u8] {
    match b {
        b'\r' => {
            out[..2].copy_from_slice(b"\r\n");
            &out[..2]
        }
        0x08 | 0x7f => {
            out.copy_from_slice(b"\x08 \x08");
            &out[..]
        }
        _ => {
            out[0] = b;
            &out[..1]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes() {
        let mut o = [0; 3];
        assert_eq!(echo(b'a', &mut o), b"a");
        assert_eq!(echo(b'\r', &mut o), b"\r\n");
        assert_eq!(echo(b'\n', &mut o), b"\n");
        assert_eq!(echo(0x7f, &mut o), b"\x08 \x08");
        assert_eq!(echo(0x08, &mut o), b"\x08 \x08");
    }
}
