//! Active probing, as ldmd itself asks: `discover` (which ldmd hosts answer on
//! this segment?) and `check-mac` (is this MAC in use?). Both join the group
//! on one interface and speak UDP 239.129.9.27:64535; the socket shares the
//! port with a local ldmd (SO_REUSEADDR/SO_REUSEPORT).

use std::collections::HashSet;
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};

use crate::dissect::checks;
use crate::dissect::fields::escaped;
use crate::dissect::Findings;
use crate::expert::{Finding, MacAddr};
use crate::wire::ldm::{self, Message, MsgType, Payload, Repr};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no interface named {0}: `ldm-sniff -D` lists them")]
    NoSuchInterface(String),
    #[error("{0} has no IPv4 address: ldmd speaks IPv4 multicast only; pick another with -i")]
    NoAddress(String),
    #[error("no default route to pick an interface from: name one with -i")]
    NoDefaultRoute,
    #[error("cannot {what} on {iface}: {source}; check that the interface is up and has an IPv4 address (ip addr show {iface})")]
    Socket { iface: String, what: &'static str, source: io::Error },
}

/// The interface of the default route (from /proc/net/route).
pub fn default_interface() -> Result<String, ProbeError> {
    let routes = std::fs::read_to_string("/proc/net/route").map_err(|_| ProbeError::NoDefaultRoute)?;
    routes
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.get(1) == Some(&"00000000") && cols.get(7) == Some(&"00000000"))
        .and_then(|cols| cols.first().map(|s| s.to_string()))
        .ok_or(ProbeError::NoDefaultRoute)
}

pub fn interface_address(iface: &str) -> Result<Ipv4Addr, ProbeError> {
    let interfaces = crate::capture::live::list_interfaces().map_err(|source| ProbeError::Socket {
        iface: iface.to_string(),
        what: "list interfaces",
        source,
    })?;
    let Some((_, addresses)) = interfaces.iter().find(|(name, _)| name == iface) else {
        return Err(ProbeError::NoSuchInterface(iface.to_string()));
    };
    addresses.iter().find_map(|a| a.parse().ok()).ok_or_else(|| ProbeError::NoAddress(iface.to_string()))
}

/// A UDP socket joined to the ldm group on one interface.
pub struct Probe {
    socket: Socket,
    /// Our address on the interface: the source of what we send.
    pub local: Ipv4Addr,
    pub iface: String,
}

impl Probe {
    pub fn open(iface: &str, ttl: u32) -> Result<Probe, ProbeError> {
        let local = interface_address(iface)?;
        let socket = group_socket(Ipv4Addr::UNSPECIFIED, ldm::PORT, Some(local), ttl).map_err(|source| {
            ProbeError::Socket { iface: iface.to_string(), what: "open UDP port 64535 joined to 239.129.9.27", source }
        })?;
        Ok(Probe { socket, local, iface: iface.to_string() })
    }

    pub fn send(&self, repr: &Repr) -> Result<(), ProbeError> {
        let group = SocketAddr::V4(SocketAddrV4::new(ldm::GROUP, ldm::PORT));
        self.socket.send_to(&repr.to_bytes(), &SockAddr::from(group)).map(|_| ()).map_err(|source| ProbeError::Socket {
            iface: self.iface.clone(),
            what: "send to 239.129.9.27",
            source,
        })
    }

    /// The next datagram before `deadline`, with its sender.
    pub fn receive(&self, deadline: Instant, buf: &mut [MaybeUninit<u8>]) -> Option<(usize, Ipv4Addr)> {
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let _ = self.socket.set_read_timeout(Some(left.max(Duration::from_millis(1))));
            match self.socket.recv_from(buf) {
                Ok((n, from)) => {
                    if let Some(SocketAddr::V4(from)) = from.as_socket() {
                        return Some((n, *from.ip()));
                    }
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }
}

/// The socket every active command speaks ldm on: bound to `bind:port`,
/// sharing the port with a local ldmd (SO_REUSEADDR/SO_REUSEPORT), and with
/// `join_on`, joined to the group on that interface address and sending
/// multicast from it with `ttl`.
pub fn group_socket(bind: Ipv4Addr, port: u16, join_on: Option<Ipv4Addr>, ttl: u32) -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&SocketAddr::V4(SocketAddrV4::new(bind, port)).into())?;
    if let Some(local) = join_on {
        socket.join_multicast_v4_n(&ldm::GROUP, &InterfaceIndexOrAddress::Address(local))?;
        socket.set_multicast_if_v4(&local)?;
        socket.set_multicast_ttl_v4(ttl)?;
    }
    Ok(socket)
}

/// The first `n` bytes of a receive buffer, as `recv_from` filled them.
pub fn received(buf: &[MaybeUninit<u8>], n: usize) -> Vec<u8> {
    // SAFETY: recv_from initialised the first `n` bytes.
    buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect()
}

/// One discovery response.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Responder {
    pub hostname: String,
    pub ip_address: Option<Ipv4Addr>,
    pub port: Option<i32>,
    pub ldmd_version: String,
    pub rtt_ms: f64,
    /// The IP source of the response.
    pub from: Ipv4Addr,
    pub anomalies: Vec<String>,
}

fn findings_of(msg: &Message<'_>, from: Ipv4Addr) -> Vec<String> {
    let mut findings = Findings::new();
    checks::message(msg, Some(from), false, &mut findings);
    findings.iter().map(Finding::to_string).collect()
}

/// The documented discovery: send LDMD_DISC_SEND, collect LDMD_DISC_RESP
/// until `timeout`, ignore MAC-lookup traffic and our own request.
/// Responders a probe keeps, at most: a segment has far fewer ldmd hosts.
/// A flood from spoofed senders past it is counted, not kept.
pub const MAX_RESPONDERS: usize = 4096;

/// What a discovery heard.
#[derive(Debug, Default)]
pub struct Discovery {
    /// The first response of each sender, in arrival order.
    pub responders: Vec<Responder>,
    /// Further responses from senders already listed.
    pub repeated: u64,
    /// Senders past `MAX_RESPONDERS`, not listed.
    pub not_kept: u64,
}

pub fn discover(probe: &Probe, timeout: Duration) -> Result<Discovery, ProbeError> {
    let sent = Instant::now();
    probe.send(&Repr::discovery_request())?;
    let deadline = sent + timeout;
    let mut buf = vec![MaybeUninit::new(0u8); 2048];
    let mut found = Discovery::default();
    let mut senders: HashSet<Ipv4Addr> = HashSet::new();
    while let Some((n, from)) = probe.receive(deadline, &mut buf) {
        let data = received(&buf, n);
        let msg = Message::parse(&data);
        if msg.msg_type != Some(MsgType::DiscResp) || !msg.magic_ok() {
            continue;
        }
        let Payload::Discovery(disc) = msg.payload else { continue };
        if senders.contains(&from) {
            found.repeated += 1;
            continue;
        }
        if senders.len() >= MAX_RESPONDERS {
            found.not_kept += 1;
            continue;
        }
        senders.insert(from);
        found.responders.push(Responder {
            hostname: disc.hostname.map(|h| escaped(h.text())).unwrap_or_default(),
            ip_address: disc.ip_address,
            port: disc.port_no,
            ldmd_version: disc.ldmd_version.map(|v| escaped(v.text())).unwrap_or_default(),
            rtt_ms: sent.elapsed().as_secs_f64() * 1000.0,
            from,
            anomalies: findings_of(&msg, from),
        });
    }
    Ok(found)
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MacCheck {
    pub mac: String,
    pub in_use: bool,
    pub lookups: u32,
    pub owners: Vec<Owner>,
    /// The MAC lies in the automatic range (ldmd assigns those itself).
    pub automatic_range: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Owner {
    pub ip: IpAddr,
    pub rtt_ms: f64,
}

pub fn in_automatic_range(mac: [u8; 6]) -> bool {
    mac[..3] == [0x00, 0x14, 0x4f] && (0xf8..=0xfb).contains(&mac[3])
}

/// Asks as ldmd does: SEND_MSG with our address as source_ip, wait `window`
/// for RESPONSE_MSG carrying the MAC; up to `retries` more times if nobody
/// answered (a lost datagram is not a free MAC).
pub fn check_mac(probe: &Probe, mac: [u8; 6], window: Duration, retries: u32) -> Result<MacCheck, ProbeError> {
    let mut buf = vec![MaybeUninit::new(0u8); 2048];
    let mut owners: Vec<Owner> = Vec::new();
    let mut seen: HashSet<Ipv4Addr> = HashSet::new();
    let mut lookups = 0;
    for _ in 0..=retries {
        lookups += 1;
        let sent = Instant::now();
        probe.send(&Repr::lookup(MsgType::SendMsg, mac, probe.local))?;
        while let Some((n, from)) = probe.receive(sent + window, &mut buf) {
            let data = received(&buf, n);
            let msg = Message::parse(&data);
            let answers = msg.msg_type == Some(MsgType::ResponseMsg) && msg.mac() == Some(mac);
            // Each owner once; a flood of spoofed owners is capped like responders.
            if answers && seen.len() < MAX_RESPONDERS && seen.insert(from) {
                owners.push(Owner { ip: IpAddr::V4(from), rtt_ms: sent.elapsed().as_secs_f64() * 1000.0 });
            }
        }
        if !owners.is_empty() {
            break;
        }
    }
    Ok(MacCheck {
        mac: MacAddr(mac).to_string(),
        in_use: !owners.is_empty(),
        lookups,
        owners,
        automatic_range: in_automatic_range(mac),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_and_ranges() {
        assert_eq!(crate::expert::parse_mac("00:14:4F:f8:12:34"), Some([0, 0x14, 0x4f, 0xf8, 0x12, 0x34]));
        assert_eq!(crate::expert::parse_mac("00:14:4f:f8:12"), None);
        assert!(in_automatic_range([0, 0x14, 0x4f, 0xfb, 0xff, 0xff]));
        assert!(!in_automatic_range([0, 0x14, 0x4f, 0xfc, 0, 0]));
    }
}
