//! Numbers, times and addresses as text without `core::fmt`: per packet,
//! the formatter's machinery (padding, four `u8`s for an address, exact
//! float rounding) cost more than the rest of a line or JSON record. Each
//! writer gives exactly what the `format!` spelling in its comment gives.

use std::io::{self, Write};
use std::net::IpAddr;

use crate::capture::Timestamp;

/// `{n:>width$}`.
pub fn write_number(out: &mut impl Write, n: u64, width: usize) -> io::Result<()> {
    let mut digits = itoa::Buffer::new();
    let text = digits.format(n);
    write_spaces(out, width.saturating_sub(text.len()))?;
    out.write_all(text.as_bytes())
}

/// `{n}` for any integer.
pub fn write_integer(out: &mut impl Write, n: impl itoa::Integer) -> io::Result<()> {
    out.write_all(itoa::Buffer::new().format(n).as_bytes())
}

fn write_spaces(out: &mut impl Write, count: usize) -> io::Result<()> {
    const SPACES: &[u8; 32] = &[b' '; 32];
    if count > SPACES.len() {
        return write!(out, "{:count$}", "");
    }
    out.write_all(&SPACES[..count])
}

/// `{value:>width$.decimals$}`, for decimals up to 9. Done in integers
/// unless the value lies within float error of a rounding tie, or is too
/// large for that to be exact: those go to the formatter.
pub fn write_fixed(out: &mut impl Write, value: f64, decimals: u32, width: usize) -> io::Result<()> {
    let scale = 10u64.pow(decimals.min(9));
    let scaled = value.abs() * scale as f64;
    let tie_distance = (scaled.fract() - 0.5).abs();
    if decimals > 9 || !scaled.is_finite() || scaled >= (1u64 << 40) as f64 || tie_distance < 1e-3 {
        let decimals = decimals as usize;
        return write!(out, "{value:>width$.decimals$}");
    }
    let scaled = scaled.round() as u64;
    let mut whole = itoa::Buffer::new();
    let whole = whole.format(scaled / scale);
    let sign = if value.is_sign_negative() { "-" } else { "" };
    let decimals = decimals as usize;
    let point = usize::from(decimals > 0);
    let len = sign.len() + whole.len() + point + decimals;
    write_spaces(out, width.saturating_sub(len))?;
    out.write_all(sign.as_bytes())?;
    out.write_all(whole.as_bytes())?;
    if decimals > 0 {
        out.write_all(b".")?;
        write_zero_padded(out, scaled % scale, decimals)?;
    }
    Ok(())
}

/// `{n:0width$}`, for widths up to 9 (fractions of a second).
fn write_zero_padded(out: &mut impl Write, n: u64, width: usize) -> io::Result<()> {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    out.write_all(&b"000000000"[..width.min(9).saturating_sub(digits.len())])?;
    out.write_all(digits.as_bytes())
}

/// `{secs}.{nanos:09}`, as a timestamp's `Display` writes it.
pub fn write_epoch(out: &mut impl Write, ts: Timestamp) -> io::Result<()> {
    write_integer(out, ts.secs)?;
    out.write_all(b".")?;
    write_zero_padded(out, u64::from(ts.nanos), 9)
}

/// `{ip}`; IPv4 spelled out by hand, IPv6 left to the formatter.
pub fn write_ip(out: &mut impl Write, ip: IpAddr) -> io::Result<()> {
    let IpAddr::V4(v4) = ip else {
        return write!(out, "{ip}");
    };
    let mut text = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        // Digit by digit: copying a 1-to-3-byte slice is a memcpy call each.
        if octet >= 100 {
            text[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            text[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        text[len] = b'0' + octet % 10;
        len += 1;
    }
    out.write_all(&text[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(write: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_are_written_as_the_formatter_writes_them() {
        for n in [0, 1, 9, 10, 99_999, 100_000, 1 << 40, u64::MAX] {
            assert_eq!(text(|out| write_number(out, n, 5)), format!("{n:>5}"));
            assert_eq!(text(|out| write_number(out, n, 40)), format!("{n:>40}"));
            assert_eq!(text(|out| write_integer(out, n)), n.to_string());
        }
        for n in [i64::MIN, -1, 0, 7, i64::MAX] {
            assert_eq!(text(|out| write_integer(out, n)), n.to_string());
        }
    }

    #[test]
    fn fixed_point_is_written_as_the_formatter_writes_it() {
        let mut values = vec![0.0, -0.0, 1e-7, -1e-7, 5e-7, 1.5e-6, 2.5e-6, 123456.789012, -3.25, 1e12, f64::NAN];
        values.extend([f64::INFINITY, f64::NEG_INFINITY, 5e-10, 1.5e-9, 1099.511627776, 1e-300]);
        let mut x = 1e-10f64;
        while x < 1e7 {
            values.extend([x, -x, x * 1.000_000_7, x + 5e-7, x + 5e-10]);
            x *= 1.37;
        }
        for nanos in [1u64, 499, 500, 501, 999, 1_000, 1_500, 2_500, 999_999_500, 1_000_000_500, 86_400_000_000_500] {
            values.push(nanos as f64 / 1e9);
        }
        for v in values {
            for (decimals, width) in [(6, 11), (9, 0), (0, 3), (3, 1)] {
                let want = format!("{v:>width$.prec$}", prec = decimals as usize);
                assert_eq!(text(|out| write_fixed(out, v, decimals, width)), want, "{v:e} .{decimals}");
            }
        }
    }

    #[test]
    fn epochs_are_written_as_display_writes_them() {
        for (secs, nanos) in [(0, 0), (1_793_611_800, 5), (-1, 999_999_999), (i64::MAX, 123_456_789)] {
            let ts = Timestamp::new(secs, nanos);
            assert_eq!(text(|out| write_epoch(out, ts)), ts.to_string());
        }
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for octet in 0..=255u8 {
            let ips = [[octet, 0, 9, 99], [10, octet, 100, 255], [255, 1, octet, 10], [1, 2, 3, octet]];
            for ip in ips.map(IpAddr::from) {
                assert_eq!(text(|out| write_ip(out, ip)), ip.to_string());
            }
        }
        let v6: IpAddr = "fe80::214:4fff:fef8:1".parse().unwrap();
        assert_eq!(text(|out| write_ip(out, v6)), "fe80::214:4fff:fef8:1");
    }
}
