//! Wire formats: pure functions of bytes, no I/O and no policy.

pub mod ldm;
pub mod libvirt;
pub mod tls;
pub mod xdr;
