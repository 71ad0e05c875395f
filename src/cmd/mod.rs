//! The subcommands that are not packet analysis: flags to library calls and
//! results to exit statuses.

pub mod conform;
pub mod emulate;

use std::process::ExitCode;

pub(crate) use crate::note;
pub(crate) use crate::usage_error as error;

/// `-i`, or the interface of the default route.
pub fn interface(named: Option<&str>) -> Result<String, ExitCode> {
    match named {
        Some(iface) => Ok(iface.to_string()),
        None => ldm_sniff::probe::default_interface().map_err(|e| error(&e.to_string())),
    }
}
