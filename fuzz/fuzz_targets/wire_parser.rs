//! The ldm message parser and its round trip: any bytes parse without a
//! panic, and a message that parses completely emits back to the same meaning.
#![no_main]

use ldm_sniff::wire::ldm::{Message, Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let msg = Message::parse(data);
    let _ = msg.mac();
    let _ = msg.magic_ok();
    if let Ok(repr) = Repr::parse(&msg) {
        let bytes = repr.to_bytes();
        let again = Repr::parse(&Message::parse(&bytes)).expect("emitted bytes parse");
        assert_eq!(again.msg_type, repr.msg_type);
        assert_eq!(again.byte_order, repr.byte_order);
        assert_eq!(again.payload, repr.payload);
    }
});
