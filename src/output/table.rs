//! Aligned text tables (`-z` statistics, `discover`).

use std::io::{self, Write};

/// Columns padded to their widest cell; numbers right-aligned.
pub fn write_aligned(out: &mut impl Write, rows: &[Vec<String>]) -> io::Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let numeric = cell.parse::<f64>().is_ok();
            let cell =
                if numeric { format!("{cell:>w$}", w = widths[c]) } else { format!("{cell:<w$}", w = widths[c]) };
            line.push_str(&cell);
            line.push_str("  ");
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
