//! ldm-sniff: decode, validate and analyse Oracle VM Server for SPARC (ldmd)
//! multicast traffic.
//!
//! Data flows one way: `capture` (frames from files and interfaces) ->
//! `dissect` (layers, the ldm and libvirt messages, per-packet findings) ->
//! `analyze` (findings over time, statistics) -> `filter` -> `output` and
//! `report` (the HTML page of `--report`);
//! `pipeline` runs them in that order, and `tests/layers.rs` keeps each from
//! importing a later one. `wire` holds the message formats themselves,
//! `expert` the one catalogue of anomaly keys, `escape` the escaping of text
//! for a terminal, and `synth` the packet builders that generate the test
//! captures.

pub mod analyze;
pub mod capture;
pub mod cli;
pub mod conform;
pub mod dissect;
pub mod emulate;
pub mod escape;
pub mod expert;
pub mod filter;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod prefetch;
pub mod privilege;
pub mod probe;
pub mod report;
pub mod synth;
pub mod wire;
