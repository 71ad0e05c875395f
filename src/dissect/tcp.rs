//! The TCP header, for the streams we reassemble (libvirt).

use etherparse::TcpHeaderSlice;

use super::ip::IpError;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    /// FIN, SYN, RST, PSH, ACK, as in the header's low flag bits.
    pub flags: u8,
    pub window: u16,
    pub header_len: usize,
    /// Payload bytes present in the frame.
    pub payload_len: usize,
}

impl TcpInfo {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// The flags as tcpdump prints them: `S`, `.`, `P`, `F`, `R`.
    pub fn flag_letters(&self) -> String {
        let mut out = String::new();
        for (flag, letter) in [(SYN, 'S'), (FIN, 'F'), (RST, 'R'), (PSH, 'P')] {
            if self.has(flag) {
                out.push(letter);
            }
        }
        if self.has(ACK) {
            out.push('.');
        }
        out
    }
}

/// Decodes a TCP header; returns it with the payload bytes present.
pub fn tcp(ip_payload: &[u8]) -> Result<(TcpInfo, &[u8]), IpError> {
    let header = TcpHeaderSlice::from_slice(ip_payload).map_err(|_| IpError::TruncatedTcpHeader)?;
    let header_len = usize::from(header.data_offset()) * 4;
    let payload = &ip_payload[header_len..];
    let flag_bits =
        [(header.fin(), FIN), (header.syn(), SYN), (header.rst(), RST), (header.psh(), PSH), (header.ack(), ACK)];
    let flags = flag_bits.iter().filter(|(set, _)| *set).fold(0, |acc, (_, bit)| acc | bit);
    let info = TcpInfo {
        src_port: header.source_port(),
        dst_port: header.destination_port(),
        seq: header.sequence_number(),
        ack: header.acknowledgment_number(),
        flags,
        window: header.window_size(),
        header_len,
        payload_len: payload.len(),
    };
    Ok((info, payload))
}
