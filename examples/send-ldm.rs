//! Sends one of each ldm message over UDP, for recording captures with real
//! tools (captures/recorded/record.sh) and for live tests:
//! `cargo run --example send-ldm -- SRC_IP DST_IP [COUNT]`.
//! Use it only inside a test network namespace or on loopback.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use ldm_sniff::wire::ldm::{self, MsgType, Repr};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(src), Some(dst)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: send-ldm SRC_IP DST_IP [ROUNDS]");
        std::process::exit(2);
    };
    let src: Ipv4Addr = src.parse().map_err(std::io::Error::other)?;
    let dst: Ipv4Addr = dst.parse().map_err(std::io::Error::other)?;
    let rounds: u32 = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(1);
    let socket = UdpSocket::bind(SocketAddrV4::new(src, ldm::PORT))?;
    socket.set_multicast_ttl_v4(1)?;
    socket.set_multicast_loop_v4(false)?;
    let mac = [0x00, 0x14, 0x4f, 0xf8, 0x00, 0x2a];
    let mut short = Repr::lookup(MsgType::SendMsg, mac, src);
    short.len = ldm::SHORT_LOOKUP_LEN;
    let messages = [
        Repr::discovery_request(),
        Repr::discovery_response("3.6.1.0.11", "ns-a", src),
        Repr::lookup(MsgType::SendMsg, mac, src),
        Repr::lookup(MsgType::ResponseMsg, mac, src),
        short,
    ];
    for _ in 0..rounds {
        for message in &messages {
            socket.send_to(&message.to_bytes(), SocketAddrV4::new(dst, ldm::PORT))?;
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(())
}
