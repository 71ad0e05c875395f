//! `conform --raw`: sends recorded Ethernet frames as they are, on a packet
//! socket, for targets that must see the original source addresses. The
//! default replay sends at UDP level from our own address instead.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::capture::live::if_index;

/// A packet socket bound to one interface, for sending whole frames.
pub struct Injector {
    fd: OwnedFd,
}

impl Injector {
    pub fn open(iface: &str) -> io::Result<Injector> {
        let index = if_index(iface).map_err(|e| io::Error::new(io::ErrorKind::NotFound, e.to_string()))?;
        if index == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "--raw needs one interface, not 'any'"));
        }
        // Protocol 0: this socket only sends, it receives nothing.
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid start.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = index;
        // SAFETY: `addr` is a valid sockaddr_ll of the size given.
        let bound = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if bound < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Injector { fd })
    }

    /// Sends one complete Ethernet frame.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: `frame` is a valid buffer of the given length.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// A frame captured on its sender often carries only the pseudo-header
/// sum in its UDP checksum (the NIC would have finished it). Sent as it is,
/// the receiver drops it; so the caller completes it here when the dissection
/// said "partial", and nothing else changes. Returns false when the frame is
/// not Ethernet/IPv4/UDP.
pub fn complete_udp_checksum(frame: &mut [u8]) -> bool {
    let Some((at, sum)) = udp_checksum(frame) else { return false };
    frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    true
}

/// Where the UDP checksum field is, and its correct value.
fn udp_checksum(frame: &[u8]) -> Option<(usize, u16)> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let sliced = SlicedPacket::from_ethernet(frame).ok()?;
    let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Udp(udp))) = (&sliced.net, &sliced.transport) else {
        return None;
    };
    let sum = udp.to_header().calc_checksum_ipv4(&ip.header().to_header(), udp.payload()).ok()?;
    // The checksum field is the last two bytes of the 8-byte UDP header.
    let at = udp.slice().as_ptr() as usize - frame.as_ptr() as usize + 6;
    Some((at, sum))
}
