//! A finding's detail as text: "version_no is 2, expected 1". Written into
//! bytes without `core::fmt`, because JSON records carry a detail with most
//! findings and the formatter's machinery cost more per record than all the
//! other fields' values together. `Display` for `Detail` is made from this
//! writer, so the text has one definition.

use std::fmt;
use std::io::Write as _;

use crate::expert::{Detail, MacAddr};

use super::numbers::{write_fixed, write_integer, write_ip};

/// Appends the detail's text to `out` (nothing for `Detail::None`).
pub fn write_detail(out: &mut Vec<u8>, detail: &Detail) {
    match *detail {
        Detail::None => {}
        Detail::Expected { field, got, want } => {
            words(out, &[field, " is "]);
            write_integer(out, got);
            out.extend_from_slice(b", expected ");
            write_integer(out, want);
        }
        Detail::Checksum { got, want } => {
            // Writing to a Vec cannot fail.
            let _ = write!(out, "checksum is {got:#06x}, expected {want:#06x}");
        }
        Detail::Hex { field, got } => {
            words(out, &[field, " is 0x"]);
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{got:x}");
        }
        Detail::Value { field, got } => {
            words(out, &[field, " is "]);
            write_integer(out, got);
        }
        Detail::Length { got, want } => {
            write_integer(out, got);
            out.extend_from_slice(b" bytes, expected ");
            write_integer(out, want);
        }
        Detail::Field(field) => words(out, &["in ", field]),
        Detail::AddrMismatch { field, said, header } => {
            words(out, &[field, " says "]);
            write_ip(out, said);
            out.extend_from_slice(b", IP source is ");
            write_ip(out, header);
        }
        Detail::Addr(addr) => write_ip(out, addr),
        Detail::Mac(mac) => out.extend_from_slice(&MacAddr(mac).text()),
        Detail::Ttl(ttl) => {
            out.extend_from_slice(b"TTL ");
            write_integer(out, ttl);
        }
        Detail::Cut { caplen, len } => {
            write_integer(out, caplen);
            out.extend_from_slice(b" of ");
            write_integer(out, len);
            out.extend_from_slice(b" bytes captured");
        }
        Detail::Fragments { count, first_frame, last_frame } => {
            write_integer(out, count);
            out.extend_from_slice(b" fragments, frames ");
            write_integer(out, first_frame);
            out.push(b'-');
            write_integer(out, last_frame);
        }
        Detail::FragmentsMissing { have, of: Some(total) } => {
            write_integer(out, have);
            out.extend_from_slice(b" of ");
            write_integer(out, total);
            out.extend_from_slice(b" bytes arrived");
        }
        Detail::FragmentsMissing { have, of: None } => {
            write_integer(out, have);
            out.extend_from_slice(b" bytes arrived, last fragment never seen");
        }
        Detail::After { what, frame, secs } => {
            write_fixed(out, secs, 3, 0);
            words(out, &[" s after the ", what, " in frame "]);
            write_integer(out, frame);
        }
        Detail::AlsoSeen { what, addr, frame } => {
            words(out, &[what, " also seen from "]);
            write_ip(out, addr);
            out.extend_from_slice(b" in frame ");
            write_integer(out, frame);
        }
        Detail::AlsoFrom { mac, frame } => {
            out.extend_from_slice(b"also sent from ");
            out.extend_from_slice(&MacAddr(mac).text());
            out.extend_from_slice(b" in frame ");
            write_integer(out, frame);
        }
        Detail::Chain { lookups, secs, first_frame } => {
            out.extend_from_slice(b"lookup ");
            write_integer(out, lookups);
            out.extend_from_slice(b" of a retry chain begun ");
            write_fixed(out, secs, 1, 0);
            out.extend_from_slice(b" s ago in frame ");
            write_integer(out, first_frame);
        }
        Detail::Burst { lookups, distinct, secs } => {
            write_integer(out, lookups);
            out.extend_from_slice(b" lookups of ");
            write_integer(out, distinct);
            out.extend_from_slice(b" distinct MACs in ");
            write_fixed(out, secs, 3, 0);
            out.extend_from_slice(b" s");
        }
        Detail::LongBurst { lookups, secs, most } => {
            write_integer(out, lookups);
            out.extend_from_slice(b" lookups in ");
            write_fixed(out, secs, 3, 0);
            out.extend_from_slice(b" s, more than the ");
            write_integer(out, most);
            out.extend_from_slice(b" MACs of a start-up check");
        }
        Detail::Backwards { secs } => {
            write_fixed(out, secs, 6, 0);
            out.extend_from_slice(b" s before the previous frame");
        }
        Detail::Bytes(bytes) => {
            write_integer(out, bytes);
            out.extend_from_slice(b" bytes");
        }
        Detail::Serial { serial, frame } => {
            out.extend_from_slice(b"serial ");
            write_integer(out, serial);
            out.extend_from_slice(b", frame ");
            write_integer(out, frame);
        }
        Detail::LibvirtError { code, domain } => {
            out.extend_from_slice(b"code ");
            write_integer(out, code);
            out.extend_from_slice(b", domain ");
            write_integer(out, domain);
        }
        Detail::StreamGap { from, len, after_frame } => {
            out.extend_from_slice(b"relative sequence ");
            write_integer(out, from);
            out.push(b'-');
            write_integer(out, u64::from(from).saturating_add(len).saturating_sub(1));
            out.extend_from_slice(b" (");
            write_integer(out, len);
            out.extend_from_slice(b" bytes) never captured");
            if let Some(frame) = after_frame {
                out.extend_from_slice(b", after frame ");
                write_integer(out, frame);
            }
        }
        Detail::NotLibvirt { bytes, tls } => {
            out.extend_from_slice(b"no message header in ");
            write_integer(out, bytes);
            out.extend_from_slice(b" bytes");
            if tls {
                out.extend_from_slice(TLS_HINT);
            }
        }
        Detail::LooksLikeTls => out.extend_from_slice(&TLS_HINT[2..]),
        Detail::RawTime { units, tsresol, offset_secs } => {
            out.extend_from_slice(b"the file says ");
            write_integer(out, units);
            out.extend_from_slice(if tsresol & 0x80 == 0 { b" units of 10^-" } else { b" units of 2^-" });
            write_integer(out, tsresol & 0x7f);
            out.extend_from_slice(b" s, offset ");
            let _ = write!(out, "{offset_secs}");
            out.extend_from_slice(b" s");
        }
        Detail::FragmentOverlap { first_frame, frame, from, to, linux_discards } => {
            out.extend_from_slice(b"frames ");
            write_integer(out, first_frame);
            out.extend_from_slice(b" and ");
            write_integer(out, frame);
            out.extend_from_slice(b" both carry datagram bytes ");
            write_integer(out, from);
            out.push(b'-');
            write_integer(out, to.saturating_sub(1));
            out.extend_from_slice(b"; frame ");
            write_integer(out, first_frame);
            out.extend_from_slice(if linux_discards { LINUX_DISCARDS } else { LINUX_KEEPS });
        }
    }
}

const LINUX_DISCARDS: &[u8] = b"'s bytes are shown; Linux drops the whole datagram (a partial overlap)";
const LINUX_KEEPS: &[u8] = b"'s bytes are shown, as Linux keeps them (a duplicate inside bytes received)";

/// Bytes that start like a TLS record where libvirt RPC was expected.
const TLS_HINT: &[u8] = b"; they start like a TLS record: libvirt over TLS? decode it with --libvirt-tls-port";

fn words(out: &mut Vec<u8>, parts: &[&str]) {
    for part in parts {
        out.extend_from_slice(part.as_bytes());
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::with_capacity(64);
        write_detail(&mut text, self);
        // Only our own names, numbers and addresses go in: always UTF-8.
        f.write_str(&String::from_utf8_lossy(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text each detail had when it was written with `write!`: the
    /// oracle, kept apart from the writer on purpose.
    fn by_formatter(detail: &Detail) -> String {
        match *detail {
            Detail::None => String::new(),
            Detail::Expected { field, got, want } => format!("{field} is {got}, expected {want}"),
            Detail::Checksum { got, want } => format!("checksum is {got:#06x}, expected {want:#06x}"),
            Detail::Hex { field, got } => format!("{field} is {got:#x}"),
            Detail::Value { field, got } => format!("{field} is {got}"),
            Detail::Length { got, want } => format!("{got} bytes, expected {want}"),
            Detail::Field(field) => format!("in {field}"),
            Detail::AddrMismatch { field, said, header } => format!("{field} says {said}, IP source is {header}"),
            Detail::Addr(addr) => format!("{addr}"),
            Detail::Mac(mac) => format!("{}", MacAddr(mac)),
            Detail::Ttl(ttl) => format!("TTL {ttl}"),
            Detail::Cut { caplen, len } => format!("{caplen} of {len} bytes captured"),
            Detail::Fragments { count, first_frame, last_frame } => {
                format!("{count} fragments, frames {first_frame}-{last_frame}")
            }
            Detail::FragmentsMissing { have, of: Some(total) } => format!("{have} of {total} bytes arrived"),
            Detail::FragmentsMissing { have, of: None } => format!("{have} bytes arrived, last fragment never seen"),
            Detail::After { what, frame, secs } => format!("{secs:.3} s after the {what} in frame {frame}"),
            Detail::AlsoSeen { what, addr, frame } => format!("{what} also seen from {addr} in frame {frame}"),
            Detail::AlsoFrom { mac, frame } => format!("also sent from {} in frame {frame}", MacAddr(mac)),
            Detail::Chain { lookups, secs, first_frame } => {
                format!("lookup {lookups} of a retry chain begun {secs:.1} s ago in frame {first_frame}")
            }
            Detail::Burst { lookups, distinct, secs } => {
                format!("{lookups} lookups of {distinct} distinct MACs in {secs:.3} s")
            }
            Detail::LongBurst { lookups, secs, most } => {
                format!("{lookups} lookups in {secs:.3} s, more than the {most} MACs of a start-up check")
            }
            Detail::Backwards { secs } => format!("{secs:.6} s before the previous frame"),
            Detail::Bytes(bytes) => format!("{bytes} bytes"),
            Detail::Serial { serial, frame } => format!("serial {serial}, frame {frame}"),
            Detail::LibvirtError { code, domain } => format!("code {code}, domain {domain}"),
            Detail::StreamGap { from, len, after_frame } => {
                let last = u64::from(from).saturating_add(len).saturating_sub(1);
                let after = after_frame.map(|f| format!(", after frame {f}")).unwrap_or_default();
                format!("relative sequence {from}-{last} ({len} bytes) never captured{after}")
            }
            Detail::NotLibvirt { bytes, tls } => {
                let hint = if tls {
                    "; they start like a TLS record: libvirt over TLS? decode it with --libvirt-tls-port"
                } else {
                    ""
                };
                format!("no message header in {bytes} bytes{hint}")
            }
            Detail::LooksLikeTls => {
                "they start like a TLS record: libvirt over TLS? decode it with --libvirt-tls-port".to_string()
            }
            Detail::RawTime { units, tsresol, offset_secs } => {
                let base = if tsresol & 0x80 == 0 { 10 } else { 2 };
                format!("the file says {units} units of {base}^-{} s, offset {offset_secs} s", tsresol & 0x7f)
            }
            Detail::FragmentOverlap { first_frame, frame, from, to, linux_discards } => {
                let linux = if linux_discards {
                    "'s bytes are shown; Linux drops the whole datagram (a partial overlap)"
                } else {
                    "'s bytes are shown, as Linux keeps them (a duplicate inside bytes received)"
                };
                let last = to.saturating_sub(1);
                format!("frames {first_frame} and {frame} both carry datagram bytes {from}-{last}; frame {first_frame}{linux}")
            }
        }
    }

    fn every_kind_of_detail(n: u64, secs: f64, ip: std::net::IpAddr) -> Vec<Detail> {
        let small = n as u32;
        vec![
            Detail::None,
            Detail::Expected { field: "version_no", got: n, want: 1 },
            Detail::Hex { field: "magic_no", got: n },
            Detail::Checksum { got: n as u16, want: (n as u16).wrapping_mul(7) },
            Detail::Value { field: "msg_type", got: n },
            Detail::Length { got: n as usize, want: 312 },
            Detail::Field("source_ip"),
            Detail::AddrMismatch { field: "source_ip", said: ip, header: std::net::IpAddr::from([10, 0, 0, 1]) },
            Detail::Addr(ip),
            Detail::Mac([0x00, 0x14, 0x4f, n as u8, 0xab, 0xff]),
            Detail::Ttl(n as u8),
            Detail::Cut { caplen: small, len: small.wrapping_add(1) },
            Detail::Fragments { count: n as u32, first_frame: n, last_frame: n.wrapping_add(3) },
            Detail::FragmentOverlap {
                first_frame: n,
                frame: n.wrapping_add(1),
                from: small,
                to: small / 2,
                linux_discards: n % 2 == 0,
            },
            Detail::FragmentsMissing { have: n as usize, of: Some(4096) },
            Detail::FragmentsMissing { have: n as usize, of: None },
            Detail::After { what: "lookup", frame: n, secs },
            Detail::AlsoSeen { what: "this hostname", addr: ip, frame: n },
            Detail::AlsoFrom { mac: [0xfe, 0, 0x5e, 1, n as u8, 0x1b], frame: n },
            Detail::Chain { lookups: small, secs, first_frame: n },
            Detail::Burst { lookups: small, distinct: small / 2, secs },
            Detail::LongBurst { lookups: small, secs, most: small / 2 },
            Detail::Backwards { secs },
            Detail::Bytes(n),
            Detail::Serial { serial: small, frame: n },
            Detail::LibvirtError { code: (small as i32).wrapping_neg(), domain: small as i32 },
            Detail::StreamGap { from: small, len: n, after_frame: Some(n) },
            Detail::StreamGap { from: small.wrapping_add(1), len: n / 2, after_frame: None },
            Detail::NotLibvirt { bytes: n, tls: n % 2 == 0 },
            Detail::LooksLikeTls,
            Detail::RawTime { units: n, tsresol: n as u8, offset_secs: -(small as i64) },
        ]
    }

    #[test]
    fn every_detail_reads_as_the_formatter_wrote_it() {
        let ips: [std::net::IpAddr; 3] =
            [[10, 1, 2, 3].into(), [0, 0, 0, 0].into(), "fe80::214:4fff:fef8:1".parse().unwrap()];
        // Rounding ties and huge values take the formatter's own path in write_fixed.
        let times = [0.0, 0.0005, 0.0015, 0.25, 0.05, 1.2345678, 59.95, 86_400.5, 1e13, -0.004, f64::NAN];
        for n in [0, 1, 9, 10, 255, 256, 65_535, 1 << 31, u64::from(u32::MAX), u64::MAX] {
            for (ip, secs) in ips.iter().cycle().zip(times) {
                for detail in every_kind_of_detail(n, secs, *ip) {
                    assert_eq!(detail.to_string(), by_formatter(&detail), "{detail:?}");
                }
            }
        }
    }
}
