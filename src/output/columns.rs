//! `-T fields -e FIELD ...`: one line per packet with the chosen fields, as
//! tshark writes them, with its `-E` options (header, separator, quote,
//! occurrence, aggregator).

use std::io::{self, Write};

use crate::dissect::fields::{self, escaped, FieldSink, Name, Value};
use crate::expert::MacAddr;
use crate::wire::xdr::UuidText;

use super::Packet;

/// `-E` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnOptions {
    pub header: bool,
    pub separator: String,
    /// `d` double quotes, `s` single quotes, `n` none.
    pub quote: Option<char>,
    /// `f` first, `l` last, `a` all.
    pub occurrence: Occurrence,
    pub aggregator: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occurrence {
    First,
    Last,
    All,
}

impl Default for ColumnOptions {
    fn default() -> ColumnOptions {
        ColumnOptions {
            header: false,
            separator: "\t".to_string(),
            quote: None,
            occurrence: Occurrence::All,
            aggregator: ",".to_string(),
        }
    }
}

impl ColumnOptions {
    /// Applies one `-E key=value`, as tshark reads it.
    pub fn set(&mut self, option: &str) -> Result<(), String> {
        let bad = |what: &str| format!("-E {option}: {what}");
        let (key, value) = option.split_once('=').ok_or_else(|| bad("give key=value, e.g. -E header=y"))?;
        match key {
            "header" => {
                self.header = match value {
                    "y" => true,
                    "n" => false,
                    _ => return Err(bad("header is y or n")),
                }
            }
            "separator" => {
                self.separator = special_char(value).ok_or_else(|| bad("the separator is /t, /s or one character"))?
            }
            "aggregator" => {
                self.aggregator = special_char(value).ok_or_else(|| bad("the aggregator is /t, /s or one character"))?
            }
            "quote" => {
                self.quote = match value {
                    "d" => Some('"'),
                    "s" => Some('\''),
                    "n" => None,
                    _ => return Err(bad("quote is d, s or n")),
                }
            }
            "occurrence" => {
                self.occurrence = match value {
                    "f" => Occurrence::First,
                    "l" => Occurrence::Last,
                    "a" => Occurrence::All,
                    _ => return Err(bad("occurrence is f, l or a")),
                }
            }
            _ => return Err(bad("known options are header, separator, quote, occurrence and aggregator")),
        }
        Ok(())
    }
}

/// `/t` a tab, `/s` a space, else the one character given.
fn special_char(value: &str) -> Option<String> {
    match value {
        "/t" => Some("\t".to_string()),
        "/s" => Some(" ".to_string()),
        one if one.chars().count() == 1 => Some(one.to_string()),
        _ => None,
    }
}

/// The columns asked for: each `-e` as given, with the field names it
/// stands for (an alias such as `ip.addr` for several).
#[derive(Debug, Clone, Default)]
pub struct Columns {
    pub fields: Vec<(String, Vec<&'static str>)>,
    pub options: ColumnOptions,
}

impl Columns {
    /// The header line (the field names as given), when asked for.
    pub fn header(&self, buf: &mut Vec<u8>) {
        if !self.options.header {
            return;
        }
        let names: Vec<&str> = self.fields.iter().map(|(name, _)| name.as_str()).collect();
        buf.extend_from_slice(names.join(&self.options.separator).as_bytes());
        buf.push(b'\n');
    }

    /// One packet's line.
    pub fn write(&self, buf: &mut Vec<u8>, p: &Packet<'_, '_>, time_relative: f64) -> io::Result<()> {
        let mut sink = Collect { wanted: &self.fields, values: vec![Vec::new(); self.fields.len()], layer: "" };
        fields::walk(p.d, time_relative, &mut sink, &|s| p.note.fields(s));
        // The findings are no layer's fields: `expert` and `expert.severity`.
        for (i, (_, names)) in self.fields.iter().enumerate() {
            for finding in p.findings() {
                if names.contains(&"expert") {
                    sink.values[i].push(finding.key.name().to_string());
                }
                if names.contains(&"expert.severity") {
                    sink.values[i].push(finding.severity().name().to_string());
                }
            }
        }
        for (i, values) in sink.values.iter().enumerate() {
            if i > 0 {
                buf.extend_from_slice(self.options.separator.as_bytes());
            }
            let shown: Vec<&String> = match self.options.occurrence {
                Occurrence::All => values.iter().collect(),
                Occurrence::First => values.first().into_iter().collect(),
                Occurrence::Last => values.last().into_iter().collect(),
            };
            if shown.is_empty() {
                continue;
            }
            let text = shown.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(&self.options.aggregator);
            match self.options.quote {
                Some(q) => write!(buf, "{q}{text}{q}")?,
                None => buf.extend_from_slice(text.as_bytes()),
            }
        }
        buf.push(b'\n');
        Ok(())
    }
}

/// Collects the values of the wanted fields, per column.
struct Collect<'w> {
    wanted: &'w [(String, Vec<&'static str>)],
    values: Vec<Vec<String>>,
    layer: &'static str,
}

impl FieldSink for Collect<'_> {
    fn layer(&mut self, name: Name) {
        self.layer = name.text();
    }

    fn field(&mut self, name: Name, value: Value<'_>) {
        let (layer, field) = (self.layer, name.text());
        let is = |full: &str| {
            full.len() == layer.len() + 1 + field.len()
                && full.starts_with(layer)
                && full.ends_with(field)
                && full.as_bytes()[layer.len()] == b'.'
        };
        for (i, (_, names)) in self.wanted.iter().enumerate() {
            if names.iter().any(|n| is(n)) {
                texts(value, &mut self.values[i]);
            }
        }
    }

    fn end_layer(&mut self) {}
}

/// A value as tshark's fields output shows it; every element of a list.
fn texts(value: Value<'_>, out: &mut Vec<String>) {
    let text = match value {
        Value::U64(v) => v.to_string(),
        Value::I64(v) => v.to_string(),
        Value::F64(v) => format!("{v:.9}"),
        Value::Bool(v) => if v { "1" } else { "0" }.to_string(),
        Value::Str(s) => s.to_string(),
        Value::Text(bytes) => escaped(bytes),
        // The start of a value the message ends inside: left out, as tshark
        // leaves out a field the packet ends inside.
        Value::CutText(_) => return,
        Value::Mac(mac) => MacAddr(mac).to_string(),
        Value::Ip(ip) => ip.to_string(),
        Value::Epoch(ts) => ts.to_string(),
        Value::Time(ts) => fields::Rfc3339(ts).to_string(),
        Value::U16List(list) => return list.iter().for_each(|v| out.push(v.to_string())),
        Value::U64List(list) => return list.iter().for_each(|v| out.push(v.to_string())),
        Value::Uuid(uuid) => UuidText(uuid).to_string(),
        Value::TextList(list) => return list.iter().for_each(|t| out.push(escaped(t))),
        Value::Bytes(bytes) => fields::hex_colon(bytes),
        Value::Utf8(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::List(values) => return values.iter().for_each(|v| texts(*v, out)),
    };
    out.push(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read_as_tshark_reads_them() {
        let mut options = ColumnOptions::default();
        for option in ["header=y", "separator=,", "quote=d", "occurrence=f", "aggregator=/s"] {
            options.set(option).unwrap();
        }
        assert_eq!(
            options,
            ColumnOptions {
                header: true,
                separator: ",".into(),
                quote: Some('"'),
                occurrence: Occurrence::First,
                aggregator: " ".into()
            }
        );
        assert!(options.set("separator=ab").is_err());
        assert!(options.set("colour=y").unwrap_err().contains("known options"));
    }
}
