//! A decoded libvirt payload as people read it: one value per field in the
//! tree (`-V`), and the top-level fields in brief on the packet's line.

use std::io::{self, Write};

use crate::dissect::fields::escaped;
use crate::wire::xdr::{meanings, Decoded, Node, Stop, UuidText, Value};

/// Longest list a line shows; `-V` and JSON show all of it.
const MAX_LINE_ITEMS: usize = 8;
/// Bytes of an opaque value shown in hex, after its length.
const MAX_HEX: usize = 16;

/// A leaf value as text: strings escaped, UUIDs 8-4-4-4-12, enums (and the
/// integers libvirt gives meanings) by name and number; `None` for a
/// compound value.
pub fn scalar(node: &Node<'_>) -> Option<String> {
    Some(match &node.value {
        Value::Int(v) => match meanings::name(node.path, *v) {
            Some(name) => format!("{name} ({v})"),
            None => v.to_string(),
        },
        Value::UInt(v) => match i64::try_from(*v).ok().and_then(|i| meanings::name(node.path, i)) {
            Some(name) => format!("{name} ({v})"),
            None => v.to_string(),
        },
        Value::Float(v) => v.to_string(),
        Value::Bool(v) => v.to_string(),
        Value::Str(bytes) => format!("\"{}\"", escaped(bytes).replace('"', "\\\"")),
        Value::Bytes(bytes) => {
            let hex: Vec<String> = bytes.iter().take(MAX_HEX).map(|b| format!("{b:02x}")).collect();
            let more = if bytes.len() > MAX_HEX { " ..." } else { "" };
            format!("{} bytes [{}{more}]", bytes.len(), hex.join(" "))
        }
        Value::Uuid(uuid) => UuidText(*uuid).to_string(),
        Value::Enum(v, Some(name)) => format!("{name} ({v})"),
        Value::Enum(v, None) => v.to_string(),
        Value::Null => "(null)".to_string(),
        Value::Compound(_) => return None,
    })
}

/// The payload as an indented tree under `indent` spaces, then what stopped
/// the decode, if anything.
pub fn write_tree(out: &mut impl Write, decoded: &Decoded<'_>, indent: usize) -> io::Result<()> {
    write_node(out, &decoded.root, indent)?;
    let pad = " ".repeat(indent);
    match decoded.stop {
        Some(Stop::Cut(at)) => writeln!(out, "{pad}[the payload ends inside the value at byte {at}]")?,
        Some(Stop::Invalid(at)) => writeln!(out, "{pad}[the value at byte {at} is not one its type allows]")?,
        Some(Stop::TooDeep) => writeln!(out, "{pad}[nested too deep to decode]")?,
        None if decoded.trailing > 0 => writeln!(out, "{pad}[{} bytes after the value]", decoded.trailing)?,
        None => {}
    }
    Ok(())
}

fn write_node(out: &mut impl Write, node: &Node<'_>, indent: usize) -> io::Result<()> {
    let pad = " ".repeat(indent);
    if let Some(text) = scalar(node) {
        return writeln!(out, "{pad}{}: {text}", node.name);
    }
    let children = node.children();
    match node.type_name {
        Some(type_name) if type_name == node.name => writeln!(out, "{pad}{type_name}")?,
        Some(type_name) => writeln!(out, "{pad}{} ({type_name})", node.name)?,
        None => writeln!(out, "{pad}{}: {} item(s)", node.name, children.len())?,
    }
    for child in children {
        write_node(out, child, indent + 4)?;
    }
    Ok(())
}

/// The top-level fields for the packet's line: (name, brief value). An
/// object (a struct with a `name`) shows as its name, a list as its first
/// items and how many more, anything else nested as `{...}`.
pub fn line_fields(decoded: &Decoded<'_>) -> Vec<(&'static str, String)> {
    decoded.root.children().iter().map(|field| (field.name, brief(field))).collect()
}

fn brief(node: &Node<'_>) -> String {
    // An enum by its name alone: the line is for reading.
    if let Value::Enum(_, Some(name)) = node.value {
        return name.to_string();
    }
    if let Some(name) = match node.value {
        Value::Int(v) => meanings::name(node.path, v),
        Value::UInt(v) => i64::try_from(v).ok().and_then(|v| meanings::name(node.path, v)),
        _ => None,
    } {
        return name.to_string();
    }
    if let Some(text) = scalar(node) {
        return shorten(text);
    }
    if node.type_name.is_some() {
        return object_name(node).unwrap_or_else(|| "{...}".to_string());
    }
    let items: Vec<String> = node.children().iter().map(brief).collect();
    let more = items.len().saturating_sub(MAX_LINE_ITEMS);
    let mut shown = items.into_iter().take(MAX_LINE_ITEMS).collect::<Vec<_>>().join(",");
    if more > 0 {
        shown.push_str(&format!(",+{more}"));
    }
    format!("[{shown}]")
}

/// What names an object: its `name` field (domains, networks, pools), or
/// for a typed parameter its `field`.
fn object_name(node: &Node<'_>) -> Option<String> {
    let named = node.children().iter().find(|c| c.name == "name" || c.name == "field")?;
    scalar(named).map(shorten)
}

/// Text as a line shows it: at most 64 characters.
fn shorten(text: String) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        return text;
    }
    let cut: String = text.chars().take(MAX - 4).collect();
    if text.starts_with('"') {
        format!("{cut}...\"")
    } else {
        format!("{cut}...")
    }
}
