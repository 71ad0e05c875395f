//! The display filter compiler on any text: a filter or an error with a
//! position inside the text, never a panic or a stack overflow.
#![no_main]

use ldm_sniff::filter::Filter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = Filter::compile(text) {
        let _ = e.render(text);
    }
});
