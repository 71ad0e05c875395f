//! XDR payloads described by tables, decoded by one interpreter.
//!
//! libvirt describes every procedure's arguments, return value and event in
//! XDR (`remote_protocol.x` and its siblings, in `third_party/`). A
//! generator (`lang.rs`, run by `cargo run --example gen-libvirt-xdr`)
//! turns those files into the tables of `libvirt_tables.rs`: structs,
//! unions, enums, and each procedure's types. `decode` walks a payload
//! against its type and returns a tree of named values with their byte
//! ranges: the outputs show it, the filter matches it, `conform` rewrites
//! values at their offsets. No procedure has a decoder of its own.

pub mod lang;
pub mod meanings;
#[rustfmt::skip]
mod libvirt_tables;

/// An XDR type. Typedefs are resolved when the tables are generated;
/// rpcgen's `char` and `short` are 4-byte integers on the wire, as `int`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ty {
    Int,
    UInt,
    Hyper,
    UHyper,
    Float,
    Double,
    Bool,
    /// `string<max>` (0 for no stated maximum).
    Str(u32),
    /// `opaque<max>`: a length, then the bytes.
    Opaque(u32),
    /// `opaque[len]`.
    FixedOpaque(u32),
    /// `T name<max>`.
    Array(&'static Ty, u32),
    /// `T name[len]`.
    FixedArray(&'static Ty, u32),
    /// `T *name`: a bool, then the value when it is true.
    Optional(&'static Ty),
    /// Indices into `STRUCTS`, `UNIONS`, `ENUMS`.
    Struct(u16),
    Union(u16),
    Enum(u16),
}

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    /// `parent.name`: the field's key in JSON, and after `libvirt.` its
    /// name in the filter (as libvirt's Wireshark plugin names it).
    pub path: &'static str,
    /// An array's elements' path (`parent.name.name`, as the plugin names
    /// them); the field's own path for anything else.
    pub item: &'static str,
    pub ty: Ty,
}

#[derive(Debug)]
pub struct Struct {
    pub name: &'static str,
    pub fields: &'static [Field],
}

/// A union: the discriminant, then the arm its value selects (`None` for a
/// `void` arm).
#[derive(Debug)]
pub struct Union {
    pub name: &'static str,
    pub discriminant: Field,
    pub arms: &'static [(i64, Option<Field>)],
    /// The `default:` arm, if the union has one.
    pub default: Option<Option<Field>>,
}

#[derive(Debug)]
pub struct Enum {
    pub name: &'static str,
    pub values: &'static [(&'static str, i64)],
}

/// One procedure: its types by message kind (call arguments, reply, event).
#[derive(Debug)]
pub struct Proc {
    pub number: i32,
    /// Without the program prefix: `DOMAIN_GET_INFO`.
    pub name: &'static str,
    pub args: Option<Ty>,
    pub ret: Option<Ty>,
    pub msg: Option<Ty>,
}

#[derive(Debug)]
pub struct Program {
    pub number: u32,
    pub name: &'static str,
    /// Sorted by number.
    pub procs: &'static [Proc],
}

pub use libvirt_tables::{ENUMS, FIELD_PATHS, PROGRAMS, STRUCTS, UNIONS};

/// A procedure by program and number.
pub fn procedure(prog: u32, number: i32) -> Option<&'static Proc> {
    let program = PROGRAMS.iter().find(|p| p.number == prog)?;
    let at = program.procs.binary_search_by_key(&number, |p| p.number).ok()?;
    program.procs.get(at)
}

/// An XDR type as the `.x` files write it: `unsigned hyper`, `string`,
/// `remote_nonnull_domain`, `int<>`.
pub fn type_text(ty: Ty) -> String {
    match ty {
        Ty::Int => "int".into(),
        Ty::UInt => "unsigned int".into(),
        Ty::Hyper => "hyper".into(),
        Ty::UHyper => "unsigned hyper".into(),
        Ty::Float => "float".into(),
        Ty::Double => "double".into(),
        Ty::Bool => "bool".into(),
        Ty::Str(_) => "string".into(),
        Ty::Opaque(_) => "opaque<>".into(),
        Ty::FixedOpaque(16) => "uuid".into(),
        Ty::FixedOpaque(n) => format!("opaque[{n}]"),
        Ty::Array(elem, _) => format!("{}<>", type_text(*elem)),
        Ty::FixedArray(elem, n) => format!("{}[{n}]", type_text(*elem)),
        Ty::Optional(inner) => format!("{}*", type_text(*inner)),
        Ty::Struct(i) => STRUCTS[usize::from(i)].name.into(),
        Ty::Union(i) => UNIONS[usize::from(i)].name.into(),
        Ty::Enum(i) => ENUMS[usize::from(i)].name.into(),
    }
}

/// The struct named `name` (for the error reply's `remote_error`).
pub fn struct_named(name: &str) -> Option<Ty> {
    STRUCTS.iter().position(|s| s.name == name).map(|i| Ty::Struct(i as u16))
}

/// A UUID as libvirt prints it: `6695eb01-f6a4-8304-79aa-97f2502e193f`.
pub struct UuidText(pub [u8; 16]);

impl std::fmt::Display for UuidText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    /// A string's bytes (shown escaped; libvirt sends UTF-8).
    Str(&'a [u8]),
    Bytes(&'a [u8]),
    /// A 16-byte fixed opaque: libvirt's UUIDs.
    Uuid([u8; 16]),
    /// An enum value and its name, when it has one.
    Enum(i64, Option<&'static str>),
    /// An optional value that is absent.
    Null,
    /// A struct's fields, an array's elements, a union's discriminant and arm.
    Compound(Vec<Node<'a>>),
}

/// A named value and where it lies in the payload. `path` is the field's
/// `struct.field` (as libvirt's Wireshark plugin names fields, after
/// `libvirt.`); an array's elements carry the array field's name and path.
#[derive(Debug, Clone, PartialEq)]
pub struct Node<'a> {
    pub name: &'static str,
    pub path: &'static str,
    /// The struct or union type of a compound value, by name.
    pub type_name: Option<&'static str>,
    pub offset: usize,
    pub len: usize,
    pub value: Value<'a>,
}

impl Node<'_> {
    pub fn children(&self) -> &[Node<'_>] {
        match &self.value {
            Value::Compound(nodes) => nodes,
            _ => &[],
        }
    }
}

/// Why a payload did not decode whole: where it ended, or what was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The payload ends inside the value at this offset.
    Cut(usize),
    /// A value the type does not allow (a length past its maximum, a bool
    /// other than 0 or 1, a union discriminant with no arm), at this offset.
    Invalid(usize),
    /// Nested deeper than `MAX_DEPTH`.
    TooDeep,
}

/// Nesting allowed while decoding: libvirt's types nest a few levels; a
/// table error or a hostile payload cannot recurse without end.
const MAX_DEPTH: usize = 32;

/// A decoded payload: its top node, what was decoded before any stop, and
/// the bytes left over (a payload longer than its type).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<'a> {
    pub root: Node<'a>,
    pub stop: Option<Stop>,
    pub trailing: usize,
}

/// Decodes `payload` as `ty`, named `name` (the procedure's struct). What
/// decodes before a cut or an invalid value is kept.
pub fn decode<'a>(ty: Ty, name: &'static str, payload: &'a [u8]) -> Decoded<'a> {
    let mut reader = Reader { bytes: payload, at: 0, stop: None };
    let root = reader.value(name, (name, name), ty, 0);
    let trailing = if reader.stop.is_none() { payload.len() - reader.at } else { 0 };
    Decoded { root, stop: reader.stop, trailing }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    stop: Option<Stop>,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if self.stop.is_some() {
            return None;
        }
        let end = self.at.checked_add(len).filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            self.stop = Some(Stop::Cut(self.at));
            return None;
        };
        let bytes = &self.bytes[self.at..end];
        self.at = end;
        Some(bytes)
    }

    fn word(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn double_word(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    /// `len` bytes and their padding to a multiple of 4.
    fn padded(&mut self, len: usize) -> Option<&'a [u8]> {
        let bytes = self.take(len)?;
        self.take((4 - len % 4) % 4)?;
        Some(bytes)
    }

    /// A length word, refused past `max` (when stated) or past what is left.
    fn length(&mut self, max: u32, unit: usize) -> Option<usize> {
        let at = self.at;
        let len = self.word()?;
        let left = (self.bytes.len() - self.at) / unit.max(1);
        if (max != 0 && len > max) || len as usize > left {
            // Past what is left: cut if within the maximum, invalid otherwise.
            self.stop = Some(if max != 0 && len > max { Stop::Invalid(at) } else { Stop::Cut(at) });
            return None;
        }
        Some(len as usize)
    }

    fn invalid(&mut self, at: usize) {
        if self.stop.is_none() {
            self.stop = Some(Stop::Invalid(at));
        }
    }

    fn value(&mut self, name: &'static str, path: (&'static str, &'static str), ty: Ty, depth: usize) -> Node<'a> {
        let offset = self.at;
        let (type_name, value) = self.read(name, path.1, ty, depth);
        Node { name, path: path.0, type_name, offset, len: self.at - offset, value: value.unwrap_or(Value::Null) }
    }

    fn field(&mut self, field: &'static Field, depth: usize) -> Node<'a> {
        self.value(field.name, (field.path, field.item), field.ty, depth)
    }

    /// The value of the field `name`, of type `ty`; `item` names an
    /// array's elements.
    fn read(
        &mut self,
        name: &'static str,
        item: &'static str,
        ty: Ty,
        depth: usize,
    ) -> (Option<&'static str>, Option<Value<'a>>) {
        if depth > MAX_DEPTH {
            self.stop.get_or_insert(Stop::TooDeep);
            return (None, None);
        }
        let at = self.at;
        let scalar = |value: Option<Value<'a>>| (None, value);
        match ty {
            Ty::Int => scalar(self.word().map(|w| Value::Int(i64::from(w as i32)))),
            Ty::UInt => scalar(self.word().map(|w| Value::UInt(u64::from(w)))),
            Ty::Hyper => scalar(self.double_word().map(|w| Value::Int(w as i64))),
            Ty::UHyper => scalar(self.double_word().map(Value::UInt)),
            Ty::Float => scalar(self.word().map(|w| Value::Float(f64::from(f32::from_bits(w))))),
            Ty::Double => scalar(self.double_word().map(|w| Value::Float(f64::from_bits(w)))),
            Ty::Bool => {
                let word = self.word();
                if word.is_some_and(|w| w > 1) {
                    self.invalid(at);
                }
                scalar(word.map(|w| Value::Bool(w == 1)))
            }
            Ty::Str(max) => {
                let bytes = self.length(max, 1).and_then(|len| self.padded(len));
                scalar(bytes.map(Value::Str))
            }
            Ty::Opaque(max) => {
                let bytes = self.length(max, 1).and_then(|len| self.padded(len));
                scalar(bytes.map(Value::Bytes))
            }
            Ty::FixedOpaque(len) => {
                let bytes = self.padded(len as usize);
                scalar(bytes.map(|b| match <[u8; 16]>::try_from(b) {
                    Ok(uuid) => Value::Uuid(uuid),
                    Err(_) => Value::Bytes(b),
                }))
            }
            Ty::Array(elem, max) => {
                let Some(len) = self.length(max, 4) else { return (None, None) };
                (None, Some(self.elements(name, item, *elem, len, depth)))
            }
            Ty::FixedArray(elem, len) => (None, Some(self.elements(name, item, *elem, len as usize, depth))),
            Ty::Optional(inner) => {
                let present = self.word();
                match present {
                    Some(0) => (None, Some(Value::Null)),
                    Some(1) => self.read(name, item, *inner, depth + 1),
                    Some(_) => {
                        self.invalid(at);
                        (None, None)
                    }
                    None => (None, None),
                }
            }
            Ty::Struct(i) => {
                let s = &STRUCTS[usize::from(i)];
                let mut fields = Vec::with_capacity(s.fields.len());
                for field in s.fields {
                    if self.stop.is_some() {
                        break;
                    }
                    fields.push(self.field(field, depth + 1));
                }
                (Some(s.name), Some(Value::Compound(fields)))
            }
            Ty::Union(i) => {
                let u = &UNIONS[usize::from(i)];
                let discriminant = self.field(&u.discriminant, depth + 1);
                let key = match discriminant.value {
                    Value::Int(v) => Some(v),
                    Value::UInt(v) => i64::try_from(v).ok(),
                    Value::Enum(v, _) => Some(v),
                    Value::Bool(b) => Some(i64::from(b)),
                    _ => None,
                };
                let mut nodes = vec![discriminant];
                if let Some(key) = key {
                    let arm = u.arms.iter().find(|(value, _)| *value == key).map(|(_, arm)| arm).or(u.default.as_ref());
                    match arm {
                        Some(Some(field)) => nodes.push(self.field(field, depth + 1)),
                        Some(None) => {}
                        None => self.invalid(at),
                    }
                }
                (Some(u.name), Some(Value::Compound(nodes)))
            }
            Ty::Enum(i) => {
                let e = &ENUMS[usize::from(i)];
                let value = self.word().map(|w| i64::from(w as i32));
                (None, value.map(|v| Value::Enum(v, e.values.iter().find(|(_, n)| *n == v).map(|(name, _)| *name))))
            }
        }
    }

    /// `len` elements of the array field `name`, each at `item` (the
    /// plugin's name for them). Capacity is bounded by the bytes left, so a
    /// lying length cannot allocate more than the payload could hold.
    fn elements(&mut self, name: &'static str, item: &'static str, elem: Ty, len: usize, depth: usize) -> Value<'a> {
        let left = (self.bytes.len() - self.at) / 4;
        let mut nodes = Vec::with_capacity(len.min(left));
        for _ in 0..len {
            if self.stop.is_some() {
                break;
            }
            nodes.push(self.value(name, (item, item), elem, depth + 1));
        }
        Value::Compound(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_tables_are_what_the_generator_writes() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let generated = lang::generate_libvirt(root).expect("the protocol files read");
        let committed = std::fs::read_to_string(root.join("src/wire/xdr/libvirt_tables.rs")).expect("tables present");
        assert!(
            generated == committed,
            "src/wire/xdr/libvirt_tables.rs is stale: run `cargo run --example gen-libvirt-xdr`"
        );
    }

    fn domain_info_ret() -> (Ty, &'static str) {
        let proc_ = procedure(0x2000_8086, 16).expect("DOMAIN_GET_INFO");
        assert_eq!(proc_.name, "DOMAIN_GET_INFO");
        (proc_.ret.expect("a reply type"), "remote_domain_get_info_ret")
    }

    #[test]
    fn a_payload_decodes_to_named_values_with_their_places() {
        let (ty, name) = domain_info_ret();
        // state (uchar), maxMem, memory (uhyper), nrVirtCpu (ushort), cpuTime (uhyper).
        let mut payload = 1u32.to_be_bytes().to_vec();
        payload.extend(4_194_304u64.to_be_bytes());
        payload.extend(2_097_152u64.to_be_bytes());
        payload.extend(2u32.to_be_bytes());
        payload.extend(52_000_000_000u64.to_be_bytes());
        let decoded = decode(ty, name, &payload);
        assert_eq!((decoded.stop, decoded.trailing), (None, 0));
        let fields = decoded.root.children();
        let names: Vec<&str> = fields.iter().map(|f| f.path).collect();
        assert_eq!(
            names,
            [
                "remote_domain_get_info_ret.state",
                "remote_domain_get_info_ret.maxMem",
                "remote_domain_get_info_ret.memory",
                "remote_domain_get_info_ret.nrVirtCpu",
                "remote_domain_get_info_ret.cpuTime"
            ]
        );
        assert_eq!((fields[4].offset, fields[4].len, &fields[4].value), (24, 8, &Value::UInt(52_000_000_000)));
        // Cut inside cpuTime: the four fields before it stay.
        let cut = decode(ty, name, &payload[..30]);
        assert_eq!(cut.stop, Some(Stop::Cut(24)));
        assert_eq!(cut.root.children().len(), 5);
        assert_eq!(cut.root.children()[3].value, Value::UInt(2));
    }

    #[test]
    fn lying_lengths_cost_nothing_and_are_named() {
        let list = procedure(0x2000_8086, 273).expect("CONNECT_LIST_ALL_DOMAINS");
        let ty = list.ret.expect("a reply type");
        // A list claiming 4 billion domains, in 8 bytes.
        let decoded = decode(ty, "ret", &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1]);
        assert_eq!(decoded.stop, Some(Stop::Invalid(0)), "past the list's maximum");
        // Within the maximum (16,384) but past what is left: cut, no allocation of 16,000.
        let decoded = decode(ty, "ret", &[0, 0, 0x3f, 0xff, 0, 0, 0, 1]);
        assert_eq!(decoded.stop, Some(Stop::Cut(0)));
        // A bool of 7 in an optional's presence word.
        let open = procedure(0x2000_8086, 1).expect("CONNECT_OPEN").args.expect("args");
        let decoded = decode(open, "args", &[0, 0, 0, 7, 0, 0, 0, 0]);
        assert_eq!(decoded.stop, Some(Stop::Invalid(0)));
    }

    #[test]
    fn every_procedure_decodes_any_bytes_without_panic() {
        let junk: Vec<u8> = (0..512u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        for program in PROGRAMS.iter() {
            for proc_ in program.procs {
                for ty in [proc_.args, proc_.ret, proc_.msg].into_iter().flatten() {
                    for len in [0, 3, 4, 17, 64, 512] {
                        let _ = decode(ty, proc_.name, &junk[..len]);
                    }
                }
            }
        }
    }
}
