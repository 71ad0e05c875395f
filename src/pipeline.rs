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

struct Run<W: Write> {
    config: Config,
    printer: Printer<W>,
    summary: Summary,
}

impl<W: Write> Run<W> {
    fn handle(&mut self, d: &Dissection<'_>) -> io::Result<()> {
        if d.is_ldm() {
            self.summary.ldm_packet(d);
        } else if !self.config.all {
            return Ok(());
        }
        if !self.config.quiet {
            self.printer.packet(d)?;
        }
        Ok(())
    }

    fn count_reached(&self) -> bool {
        self.config.count.is_some_and(|c| self.summary.ldm >= c)
    }
}

/// Reads `reader` to its end (or `-c`), writing packets to `out`.
pub fn run<W: Write>(
    mut reader: CaptureReader,
    out: W,
    config: Config,
) -> Result<Outcome, RunError> {
    let printer = Printer::new(out, config.output);
    let mut dissector = Dissector::new(config.dissect);
    let mut run = Run {
        config,
        printer,
        summary: Summary::default(),
    };
    let mut capture_error = None;
    while !run.count_reached() {
        let frame = match reader.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                capture_error = Some(e);
                break;
            }
        };
        run.summary.frame();
        run.printer.saw_frame(frame.ts);
        let d = dissector.dissect(frame);
        run.handle(&d)?;
        drop(d);
        for (kept, received, total) in dissector.take_incomplete(false) {
            let d = dissector.dissect_incomplete(&kept, received, total);
            run.handle(&d)?;
        }
    }
    if !run.count_reached() {
        for (kept, received, total) in dissector.take_incomplete(true) {
            let d = dissector.dissect_incomplete(&kept, received, total);
            run.handle(&d)?;
        }
    }
    run.printer.finish()?;
    Ok(Outcome {
        summary: run.summary,
        capture_error,
    })
}
