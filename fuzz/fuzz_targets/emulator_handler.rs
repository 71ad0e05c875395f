//! The emulator's request handler, with every fault, on any datagram: an
//! action, never a panic; replies only to requests.
#![no_main]

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use ldm_sniff::emulate::{Action, Fault, Identity, Responder};
use ldm_sniff::wire::ldm::{Message, MsgType};
use libfuzzer_sys::fuzz_target;

const FAULTS: [Fault; 8] = [
    Fault::Delay(Duration::from_millis(5)),
    Fault::Drop,
    Fault::Duplicate,
    Fault::LittleEndian,
    Fault::BadVersion,
    Fault::BadMagic,
    Fault::Truncate,
    Fault::WrongPort,
];

fuzz_target!(|data: &[u8]| {
    let Some((&mask, datagram)) = data.split_first() else { return };
    let faults = FAULTS.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, f)| *f).collect();
    let responder = Responder {
        identity: Identity {
            hostname: "fuzz".into(),
            ip: Ipv4Addr::new(10, 0, 0, 2),
            ldmd_version: "3.6.1.0.11".into(),
            port_no: 6482,
        },
        owns: HashSet::from([[0x00, 0x14, 0x4f, 0xf8, 0x00, 0x2a]]),
        faults,
    };
    if let Action::Reply { .. } = responder.handle(datagram) {
        let msg = Message::parse(datagram);
        assert!(matches!(msg.msg_type, Some(MsgType::SendMsg | MsgType::DiscSend)));
    }
});
