//! Tables (`-z` statistics, `discover`): aligned text, or JSON records.

use std::io::{self, Write};

use serde_json::{json, Value};

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

/// The rows as JSON records, one object per data row keyed by the header;
/// numbers as numbers, "-" as null.
pub fn to_json(rows: &[Vec<String>]) -> Value {
    let Some((header, body)) = rows.split_first() else { return json!([]) };
    let records: Vec<Value> = body
        .iter()
        .map(|row| Value::Object(header.iter().cloned().zip(row.iter().map(|c| json_cell(c))).collect()))
        .collect();
    Value::Array(records)
}

fn json_cell(cell: &str) -> Value {
    if cell == "-" {
        return Value::Null;
    }
    if let Ok(n) = cell.parse::<u64>() {
        return json!(n);
    }
    match cell.parse::<f64>() {
        Ok(x) if x.is_finite() => json!(x),
        _ => Value::String(cell.to_string()),
    }
}
