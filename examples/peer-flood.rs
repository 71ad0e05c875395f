//! Hostile peers for `bench/peer-floods.sh` (issue 23): each mode floods one
//! of ldm-sniff's sending commands the way a broken or malicious host would.
//! Use it only inside a test network namespace or on loopback.
//!
//! ```text
//! peer-flood requests SRC_IP DST_IP SECS   valid discovery requests to DST:64535
//! peer-flood responses SRC_IP SECS         discovery responses to the group, each
//!                                          naming a different host
//! peer-flood answer SRC_IP COUNT           wait for one request on the group, then
//!                                          answer it COUNT times
//! peer-flood libvirt PORT SECS             a "libvirtd" on 127.0.0.1:PORT that sends
//!                                          every connection 28-byte events until SECS
//! ```

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use ldm_sniff::probe::group_socket;
use ldm_sniff::wire::ldm::{Repr, GROUP, PORT};
use ldm_sniff::wire::libvirt;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match words.as_slice() {
        ["requests", src, dst, secs] => requests(ip(src), ip(dst), number(secs)),
        ["responses", src, secs] => responses(ip(src), number(secs)),
        ["answer", src, count] => answer(ip(src), number(count)),
        ["libvirt", port, secs] => libvirt_daemon(number(port) as u16, number(secs)),
        _ => usage(),
    };
    match result {
        Ok(sent) => eprintln!("peer-flood: sent {sent}"),
        Err(e) => {
            eprintln!("peer-flood: {e}");
            std::process::exit(1);
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: peer-flood requests SRC DST SECS | responses SRC SECS | answer SRC COUNT | libvirt PORT SECS");
    std::process::exit(2);
}

fn ip(text: &str) -> Ipv4Addr {
    text.parse().unwrap_or_else(|_| usage())
}

fn number(text: &str) -> u64 {
    text.parse().unwrap_or_else(|_| usage())
}

/// Valid discovery requests, as fast as the socket takes them, for SECS.
fn requests(src: Ipv4Addr, dst: Ipv4Addr, secs: u64) -> std::io::Result<u64> {
    let socket = UdpSocket::bind(SocketAddrV4::new(src, 0))?;
    let request = Repr::discovery_request().to_bytes();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut sent = 0;
    while Instant::now() < deadline {
        for _ in 0..1000 {
            if socket.send_to(&request, SocketAddrV4::new(dst, PORT)).is_ok() {
                sent += 1;
            }
        }
    }
    Ok(sent)
}

/// Discovery responses to the group, each with another ip_address and
/// hostname, for SECS: what `discover` would list as a million hosts.
fn responses(src: Ipv4Addr, secs: u64) -> std::io::Result<u64> {
    let socket = group_socket(src, PORT, Some(src), 1)?;
    let group: SocketAddr = SocketAddrV4::new(GROUP, PORT).into();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut sent: u64 = 0;
    while Instant::now() < deadline {
        for _ in 0..1000 {
            let host = Ipv4Addr::from(0x0a00_0000 | (sent as u32 & 0x00ff_ffff));
            let response = Repr::discovery_response("3.6.1.0.11", &format!("flood-{sent}"), host).to_bytes();
            if socket.send_to(&response, &group.into()).is_ok() {
                sent += 1;
            }
        }
    }
    Ok(sent)
}

/// Waits (at most 30 s) for the first request on the group, then answers
/// it COUNT times: a target that floods one replay with replies.
fn answer(src: Ipv4Addr, count: u64) -> std::io::Result<u64> {
    let socket = group_socket(Ipv4Addr::UNSPECIFIED, PORT, Some(src), 1)?;
    socket.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut buf = [std::mem::MaybeUninit::new(0u8); 2048];
    socket.recv_from(&mut buf)?;
    let response = Repr::discovery_response("3.6.1.0.11", "flood", src).to_bytes();
    let group: SocketAddr = SocketAddrV4::new(GROUP, PORT).into();
    let mut sent = 0;
    for _ in 0..count {
        if socket.send_to(&response, &group.into()).is_ok() {
            sent += 1;
        }
    }
    Ok(sent)
}

/// A libvirt daemon that answers nothing and sends every connection
/// events without end, until SECS have passed.
fn libvirt_daemon(port: u16, secs: u64) -> std::io::Result<u64> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
    listener.set_nonblocking(true)?;
    let event = libvirt::build(libvirt::PROGRAM_REMOTE, 107, libvirt::MsgType::Message, 0, libvirt::Status::Ok, &[]);
    let burst: Vec<u8> = event.iter().copied().cycle().take(event.len() * 4096).collect();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut sent = 0;
    while Instant::now() < deadline {
        let Ok((mut stream, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        stream.set_write_timeout(Some(Duration::from_millis(200)))?;
        while Instant::now() < deadline && stream.write_all(&burst).is_ok() {
            sent += burst.len() as u64;
        }
    }
    Ok(sent)
}
