//! Wire formats: pure functions of bytes, no I/O and no policy.

pub mod ldm;
pub mod libvirt;
mod libvirt_procs;
pub mod tls;
