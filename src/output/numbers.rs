//! Numbers, times and addresses as text without `core::fmt`: per packet,
//! the formatter's machinery (padding, four `u8`s for an address, exact
//! float rounding) cost more than the rest of a line or JSON record. Each
//! writer gives exactly what the `format!` spelling in its comment gives.
//!
//! Text is built in a small array and appended by copying the whole array
//! and cutting it to length: a copy of known size is done in place, while
//! one of a length known only at run time is a call to `memcpy`, which cost
//! more than the digits themselves.

use std::io::Write as _;
use std::net::IpAddr;

use crate::dissect::fields::DIGIT_PAIRS;

/// Appends the first `len` bytes of `text`.
#[inline(always)]
fn put<const N: usize>(out: &mut Vec<u8>, text: &[u8; N], len: usize) {
    let start = out.len();
    out.extend_from_slice(text);
    out.truncate(start + len);
}

/// 10^0 to 10^19.
const POWERS_OF_TEN: [u64; 20] = {
    let mut powers = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        powers[i] = powers[i - 1] * 10;
        i += 1;
    }
    powers
};

/// How many decimal digits `n` has: log10 from log2 (1233 / 4096 is just
/// above log10 2), corrected by one compare.
#[inline(always)]
fn decimal_len(n: u64) -> usize {
    let log2 = 63 - (n | 1).leading_zeros();
    let guess = (((log2 + 1) * 1233) >> 12) as usize;
    (guess + 1 - usize::from(n < POWERS_OF_TEN[guess])).max(1)
}

/// The decimal digits of `n`, left-aligned, and how many there are.
#[inline]
fn digits(n: u64) -> ([u8; 20], usize) {
    let len = decimal_len(n);
    let mut text = [0u8; 20];
    fill_digits(&mut text, len, n);
    (text, len)
}

/// Fills `text[..len]` with the last `len` decimal digits of `n`, two at a
/// time from the right.
#[inline(always)]
fn fill_digits<const N: usize>(text: &mut [u8; N], len: usize, mut n: u64) {
    let mut end = len;
    while end >= 2 {
        let pair = 2 * (n % 100) as usize;
        n /= 100;
        end -= 2;
        text[end..end + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if end == 1 {
        text[0] = b'0' + (n % 10) as u8;
    }
}

/// The integers the writers take, as sign and magnitude.
pub trait Integer: Copy {
    fn sign_and_magnitude(self) -> (bool, u64);
}

macro_rules! unsigned_integer {
    ($($t:ty),*) => {$(
        impl Integer for $t {
            fn sign_and_magnitude(self) -> (bool, u64) {
                (false, self as u64)
            }
        }
    )*};
}
macro_rules! signed_integer {
    ($($t:ty),*) => {$(
        impl Integer for $t {
            fn sign_and_magnitude(self) -> (bool, u64) {
                (self < 0, self.unsigned_abs() as u64)
            }
        }
    )*};
}
unsigned_integer!(u8, u16, u32, u64, usize);
signed_integer!(i32, i64);

/// `{n:>width$}`.
pub fn write_number(out: &mut Vec<u8>, n: u64, width: usize) {
    let (text, len) = digits(n);
    write_spaces(out, width.saturating_sub(len));
    put(out, &text, len);
}

/// `{n}` for any integer.
#[inline]
pub fn write_integer(out: &mut Vec<u8>, n: impl Integer) {
    let (negative, magnitude) = n.sign_and_magnitude();
    if negative {
        out.push(b'-');
    }
    let (text, len) = digits(magnitude);
    put(out, &text, len);
}

fn write_spaces(out: &mut Vec<u8>, count: usize) {
    const SPACES: &[u8; 32] = &[b' '; 32];
    if count > SPACES.len() {
        out.resize(out.len() + count, b' ');
        return;
    }
    put(out, SPACES, count);
}

/// `{value:>width$.decimals$}`, for decimals up to 9. Done in integers
/// unless the value lies within float error of a rounding tie, or is too
/// large for that to be exact: those go to the formatter.
pub fn write_fixed(out: &mut Vec<u8>, value: f64, decimals: u32, width: usize) {
    let scale = POWERS_OF_TEN[decimals.min(9) as usize];
    let scaled = value.abs() * scale as f64;
    // Not a number, infinite, or too large for the cast to be exact (the
    // comparison is false for NaN).
    let exact = scaled < (1u64 << 40) as f64;
    // Truncated by the cast, not by `fract` or `round`: without SSE4.1
    // those are calls into libm, and cost more than the rest.
    let truncated = if exact { scaled as u64 } else { 0 };
    let fraction = scaled - truncated as f64;
    if decimals > 9 || !exact || (fraction - 0.5).abs() < 1e-3 {
        let decimals = decimals as usize;
        let _ = write!(out, "{value:>width$.decimals$}");
        return;
    }
    // Ties went to the formatter, so this rounds as `round` would.
    let scaled = truncated + u64::from(fraction > 0.5);
    let (whole, whole_len) = digits(scaled / scale);
    let negative = value.is_sign_negative();
    let decimals = decimals as usize;
    let point = usize::from(decimals > 0);
    let len = usize::from(negative) + whole_len + point + decimals;
    write_spaces(out, width.saturating_sub(len));
    if negative {
        out.push(b'-');
    }
    put(out, &whole, whole_len);
    if decimals > 0 {
        out.push(b'.');
        write_zero_padded(out, scaled % scale, decimals);
    }
}

/// `{n:0width$}`, for widths up to 9 (fractions of a second).
fn write_zero_padded(out: &mut Vec<u8>, n: u64, width: usize) {
    let width = width.min(9);
    if n >= POWERS_OF_TEN[width] {
        // More digits than the width (a damaged timestamp's nanoseconds).
        let (text, len) = digits(n);
        put(out, &text, len);
        return;
    }
    // Exactly `width` digits, leading zeros included.
    let mut text = [b'0'; 9];
    fill_digits(&mut text, width, n);
    put(out, &text, width);
}

/// `{nanos:09}`.
pub fn write_nanos(out: &mut Vec<u8>, nanos: u32) {
    write_zero_padded(out, u64::from(nanos), 9);
}

/// `{ip}`; IPv4 spelled out by hand, IPv6 left to the formatter.
pub fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    let IpAddr::V4(v4) = ip else {
        let _ = write!(out, "{ip}");
        return;
    };
    let mut text = [0u8; 16];
    let mut len = 0;
    for octet in v4.octets() {
        let (digits, count) = OCTETS[usize::from(octet)];
        text[len..len + 4].copy_from_slice(&digits);
        len += usize::from(count) + 1;
    }
    // The last octet's dot is cut off.
    put(out, &text, len - 1);
}

/// Each octet's digits followed by a dot, and how many digits.
const OCTETS: [([u8; 4], u8); 256] = {
    let mut octets = [([0u8; 4], 0u8); 256];
    let mut n = 0;
    while n < 256 {
        let (hundreds, tens, ones) = ((n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8);
        octets[n] = if n >= 100 {
            ([b'0' + hundreds, b'0' + tens, b'0' + ones, b'.'], 3)
        } else if n >= 10 {
            ([b'0' + tens, b'0' + ones, b'.', 0], 2)
        } else {
            ([b'0' + ones, b'.', 0, 0], 1)
        };
        n += 1;
    }
    octets
};

#[cfg(test)]
mod tests {
    use super::*;

    fn text(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
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
        // Every count of digits, at its edges, and every small number.
        let edges = (0..20).map(|e| 10u64.pow(e)).flat_map(|p| [p - 1, p, p + 1, p.saturating_mul(5)]);
        for n in edges.chain(0..=100_000).chain([u64::MAX - 1]) {
            assert_eq!(text(|out| write_integer(out, n)), n.to_string());
            assert_eq!(text(|out| write_integer(out, n as i64)), (n as i64).to_string());
            assert_eq!(text(|out| write_integer(out, n as i32)), (n as i32).to_string());
            assert_eq!(text(|out| write_integer(out, n as u16)), (n as u16).to_string());
        }
        for n in [i32::MIN, -1, i32::MAX] {
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
