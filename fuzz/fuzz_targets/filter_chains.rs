//! Display filters built as long flat chains (issue 23): the input picks,
//! for each of up to 20,000 terms, a term and the operator joining it to
//! the next (`and`, `or`, `&&`, `||`, `not`, parentheses), so that inputs
//! reach the lengths a text fuzzer rarely does. The compiled filter is run
//! on a decoded packet: neither compiling nor matching may overflow the
//! stack or panic.
#![no_main]

use ldm_sniff::analyze::Annotation;
use ldm_sniff::capture::{Frame, KernelChecksum, Linktype, Timestamp};
use ldm_sniff::dissect::{Dissector, Options};
use ldm_sniff::filter::Filter;
use ldm_sniff::output::Packet;
use libfuzzer_sys::fuzz_target;

const TERMS: [&str; 8] = [
    "ip",
    "udp",
    "ldm",
    "ldm.msg_type == LDMD_DISC_SEND",
    "ip.src == 10.1.1.0/24",
    "ip.ttl > 1",
    "(ip or udp)",
    "not ldm.mac",
];
const JOINTS: [&str; 6] = [" and ", " or ", " && ", " || ", " and not ", " or ("];

fuzz_target!(|data: &[u8]| {
    let repeat = usize::from(data.first().copied().unwrap_or(1)).max(1) * 80;
    let mut text = String::new();
    let mut open = 0;
    for (i, byte) in data.iter().cycle().skip(1).take(data.len().saturating_sub(1) * repeat).enumerate() {
        if i > 0 {
            let joint = JOINTS[usize::from(byte >> 5) % JOINTS.len()];
            open += usize::from(joint.ends_with('('));
            text.push_str(joint);
        }
        text.push_str(TERMS[usize::from(byte & 7)]);
    }
    text.push_str(&")".repeat(open));
    let Ok(filter) = Filter::compile(&text) else { return };
    let request = ldm_sniff::synth::hostile::discovery_frame();
    let frame = Frame {
        number: 1,
        ts: Timestamp::new(1, 0),
        len: request.len() as u32,
        linktype: Linktype::ETHERNET,
        interface: 0,
        file_offset: 0,
        data: &request,
        kernel_checksum: KernelChecksum::Unknown,
        raw_time: None,
    };
    let mut dissector = Dissector::new(Options::default());
    let d = dissector.dissect(frame);
    let note = Annotation::default();
    let _ = filter.matches(&Packet { d: &d, note: &note }, 0.0);
});
