//! ldm-sniff: decode, validate and analyse Oracle VM Server for SPARC (ldmd)
//! multicast traffic.
//!
//! Data flows one way: `capture` (frames from files) -> `dissect` (layers,
//! the ldm message, per-packet findings) -> `output`. `wire` holds the message
//! format itself, `expert` the one catalogue of anomaly keys, and `synth` the
//! packet builders that generate the test captures.

pub mod analyze;
pub mod capture;
pub mod cli;
pub mod conform;
pub mod dissect;
pub mod emulate;
pub mod expert;
pub mod filter;
pub mod output;
pub mod pipeline;
pub mod prefetch;
pub mod privilege;
pub mod probe;
pub mod synth;
pub mod wire;
