//! Wire formats: pure functions of bytes, no I/O and no policy.

pub mod ldm;
