//! One run over a capture: source -> dissect -> output, with the summary.

use std::io::{self, Write};

use crate::capture::{CaptureError, CaptureReader};
use crate::dissect::{self, Dissection, Dissector};
use crate::output::{self, Printer, Summary};

#[derive(Debug, Clone)]
pub struct Config {
    pub dissect: dissect::Options,
    pub output: output::Options,
    /// Stop after this many ldm packets.
    pub count: Option<u64>,
    /// Show non-ldm frames too.
    pub all: bool,
    /// No packet output.
    pub quiet: bool,
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    pub summary: Summary,
    /// The capture could not be read to its end; everything before was processed.
    pub capture_error: Option<CaptureError>,
}

/// Why a run could not produce output at all, or had to stop writing.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("cannot write output: {0}")]
    Output(#[from] io::Error),
}

/// Reads every frame, dissects it and hands each dissection to `visit`
/// (fragments given up on are handed over as they expire and at the end).
/// `visit` returns whether to go on. A capture error stops the walk after
/// everything before it was visited, and is returned.
pub fn walk<F>(mut reader: CaptureReader, options: dissect::Options, mut visit: F) -> io::Result<Option<CaptureError>>
where
    F: FnMut(&Dissection<'_>) -> io::Result<bool>,
{
    let mut dissector = Dissector::new(options);
    loop {
        let frame = match reader.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => return Ok(Some(e)),
        };
        if !visit(&dissector.dissect(frame))? {
            return Ok(None);
        }
        for (kept, received, total) in dissector.take_incomplete(false) {
            if !visit(&dissector.dissect_incomplete(&kept, received, total))? {
                return Ok(None);
            }
        }
    }
    for (kept, received, total) in dissector.take_incomplete(true) {
        if !visit(&dissector.dissect_incomplete(&kept, received, total))? {
            break;
        }
    }
    Ok(None)
}

/// Reads `reader` to its end (or `-c`), writing packets to `out`.
pub fn run<W: Write>(reader: CaptureReader, out: W, config: Config) -> Result<Outcome, RunError> {
    let mut printer = Printer::new(out, config.output);
    let mut summary = Summary::default();
    let capture_error = walk(reader, config.dissect, |d| {
        // Reassembly leftovers are shown again at the end; count frames once.
        if d.frame.number > summary.frames {
            summary.frames = d.frame.number;
        }
        printer.saw_frame(d.frame.ts);
        if d.is_ldm() {
            summary.ldm_packet(d);
        } else if !config.all {
            return Ok(true);
        }
        if !config.quiet {
            printer.packet(d)?;
        }
        Ok(config.count.is_none_or(|c| summary.ldm < c))
    })?;
    printer.finish()?;
    Ok(Outcome { summary, capture_error })
}
