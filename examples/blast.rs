//! Sends UDP as fast as it can, for capture benchmarks (bench/live.sh):
//! `blast SRC_IP DST_IP COUNT LDM_PERCENT`. LDM_PERCENT of the datagrams are
//! ldm lookups to port 64535, the rest 300-byte datagrams to port 5000.
//! Use it only inside a test network namespace.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Instant;

use ldm_sniff::wire::ldm::{self, MsgType, Repr};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let parse = |i: usize| args.get(i).and_then(|a| a.parse::<u64>().ok());
    let (Some(src), Some(dst), Some(count), Some(percent)) = (
        args.get(1).and_then(|a| a.parse::<Ipv4Addr>().ok()),
        args.get(2).and_then(|a| a.parse::<Ipv4Addr>().ok()),
        parse(3),
        parse(4),
    ) else {
        eprintln!("usage: blast SRC_IP DST_IP COUNT LDM_PERCENT");
        std::process::exit(2);
    };
    let ldm_socket = UdpSocket::bind(SocketAddrV4::new(src, ldm::PORT))?;
    let other_socket = UdpSocket::bind(SocketAddrV4::new(src, 5000))?;
    for socket in [&ldm_socket, &other_socket] {
        socket.set_multicast_ttl_v4(1)?;
    }
    let lookup = Repr::lookup(MsgType::SendMsg, [0x00, 0x14, 0x4f, 0xf8, 0x00, 0x01], src).to_bytes();
    let other = vec![0u8; 300];
    let started = Instant::now();
    let mut sent_ldm = 0u64;
    for i in 0..count {
        if i % 100 < percent {
            ldm_socket.send_to(&lookup, SocketAddrV4::new(dst, ldm::PORT))?;
            sent_ldm += 1;
        } else {
            other_socket.send_to(&other, SocketAddrV4::new(dst, 5000))?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("sent {count} datagrams ({sent_ldm} ldm) in {secs:.2} s: {:.0} per second", count as f64 / secs);
    Ok(())
}
