//! TLS records (RFC 8446, 5246), as far as an observer sees them: the record
//! header, and in the handshake the ClientHello's server name and offered
//! versions and the ServerHello's chosen version. Enough to label libvirt
//! over TLS (port 16514); nothing is decrypted.

use nom::bytes::complete::take;
use nom::number::complete::{be_u16, be_u24, be_u8};
use nom::{IResult, Parser};

/// Record header: type, version, length.
pub const HEADER_LEN: usize = 5;
/// The largest record: 2^14 plaintext plus the most expansion TLS 1.2 allows.
pub const MAX_FRAGMENT: usize = (1 << 14) + 2048;

pub const CHANGE_CIPHER_SPEC: u8 = 20;
pub const ALERT: u8 = 21;
pub const HANDSHAKE: u8 = 22;
pub const APPLICATION_DATA: u8 = 23;

const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;
const EXT_SERVER_NAME: u16 = 0;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// One record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub content_type: u8,
    /// The record layer's version (TLS 1.3 says 1.2 here).
    pub version: u16,
    pub length: u16,
    pub fragment: &'a [u8],
}

/// What a handshake record says, when it is a hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hello<'a> {
    Client {
        /// The highest version offered (supported_versions, else the legacy field).
        version: u16,
        server_name: Option<&'a [u8]>,
    },
    Server {
        /// The version chosen (supported_versions, else the legacy field).
        version: u16,
    },
}

type ParseResult<'a, T> = IResult<&'a [u8], T>;

impl<'a> Record<'a> {
    /// The record at the start of `bytes` (its fragment may be cut short).
    pub fn parse(bytes: &'a [u8]) -> Option<Record<'a>> {
        let (rest, (content_type, version, length)) =
            (be_u8::<_, nom::error::Error<&[u8]>>, be_u16, be_u16).parse(bytes).ok()?;
        let fragment = &rest[..usize::from(length).min(rest.len())];
        Some(Record { content_type, version, length, fragment })
    }

    /// Could a record start here? Used to find the next record after a gap.
    pub fn is_plausible(&self) -> bool {
        (CHANGE_CIPHER_SPEC..=24).contains(&self.content_type)
            && self.version >> 8 == 3
            && self.version & 0xff <= 4
            && usize::from(self.length) <= MAX_FRAGMENT
    }

    pub fn type_name(&self) -> &'static str {
        match self.content_type {
            CHANGE_CIPHER_SPEC => "ChangeCipherSpec",
            ALERT => "Alert",
            HANDSHAKE => self.hello().map_or("Handshake", |h| match h {
                Hello::Client { .. } => "ClientHello",
                Hello::Server { .. } => "ServerHello",
            }),
            APPLICATION_DATA => "ApplicationData",
            24 => "Heartbeat",
            _ => "Unknown",
        }
    }

    /// The hello in a handshake record.
    pub fn hello(&self) -> Option<Hello<'a>> {
        if self.content_type != HANDSHAKE {
            return None;
        }
        let (body, (kind, _len)) = (be_u8::<_, nom::error::Error<&[u8]>>, be_u24).parse(self.fragment).ok()?;
        match kind {
            CLIENT_HELLO => client_hello(body).ok().map(|(_, hello)| hello),
            SERVER_HELLO => server_hello(body).ok().map(|(_, hello)| hello),
            _ => None,
        }
    }
}

/// `TLS 1.3`, or the number.
pub fn version_name(version: u16) -> String {
    match version {
        0x0300 => "SSL 3.0".to_string(),
        0x0301 => "TLS 1.0".to_string(),
        0x0302 => "TLS 1.1".to_string(),
        0x0303 => "TLS 1.2".to_string(),
        0x0304 => "TLS 1.3".to_string(),
        other => format!("{other:#06x}"),
    }
}

fn vector8(input: &[u8]) -> ParseResult<'_, &[u8]> {
    let (rest, len) = be_u8(input)?;
    take(len).parse(rest)
}

fn vector16(input: &[u8]) -> ParseResult<'_, &[u8]> {
    let (rest, len) = be_u16(input)?;
    take(len).parse(rest)
}

/// (type, data) of each extension.
fn extensions(mut input: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while let Ok((rest, (kind, data))) = (be_u16::<_, nom::error::Error<&[u8]>>, vector16).parse(input) {
        out.push((kind, data));
        input = rest;
    }
    out
}

/// GREASE values (RFC 8701) are offered to keep servers honest; never chosen.
fn is_grease(version: u16) -> bool {
    version & 0x0f0f == 0x0a0a
}

fn client_hello(input: &[u8]) -> ParseResult<'_, Hello<'_>> {
    let (rest, legacy) = be_u16(input)?;
    let (rest, _random) = take(32usize).parse(rest)?;
    let (rest, _session) = vector8(rest)?;
    let (rest, _suites) = vector16(rest)?;
    let (rest, _compression) = vector8(rest)?;
    let ext_bytes = vector16(rest).map(|(_, e)| e).unwrap_or(&[]);
    let mut version = legacy;
    let mut server_name = None;
    for (kind, data) in extensions(ext_bytes) {
        match kind {
            EXT_SERVER_NAME => server_name = first_host_name(data),
            EXT_SUPPORTED_VERSIONS => {
                if let Ok((_, list)) = vector8(data) {
                    let offered = list.chunks_exact(2).map(|v| u16::from_be_bytes([v[0], v[1]]));
                    version = offered.filter(|v| !is_grease(*v)).max().unwrap_or(legacy);
                }
            }
            _ => {}
        }
    }
    Ok((rest, Hello::Client { version, server_name }))
}

/// The first host_name entry of a server_name extension.
fn first_host_name(data: &[u8]) -> Option<&[u8]> {
    let (_, list) = vector16(data).ok()?;
    let (_, (kind, name)) = (be_u8::<_, nom::error::Error<&[u8]>>, vector16).parse(list).ok()?;
    (kind == 0).then_some(name)
}

fn server_hello(input: &[u8]) -> ParseResult<'_, Hello<'_>> {
    let (rest, legacy) = be_u16(input)?;
    let (rest, _random) = take(32usize).parse(rest)?;
    let (rest, _session) = vector8(rest)?;
    let (rest, _suite) = be_u16(rest)?;
    let (rest, _compression) = be_u8(rest)?;
    let ext_bytes = vector16(rest).map(|(_, e)| e).unwrap_or(&[]);
    let version = extensions(ext_bytes)
        .into_iter()
        .find(|(kind, data)| *kind == EXT_SUPPORTED_VERSIONS && data.len() == 2)
        .map_or(legacy, |(_, data)| u16::from_be_bytes([data[0], data[1]]));
    Ok((rest, Hello::Server { version }))
}

/// A ClientHello record offering TLS 1.3 and 1.2 for `server_name` (tests
/// and generated captures).
pub fn build_client_hello(server_name: &str) -> Vec<u8> {
    let name = server_name.as_bytes();
    let mut sni = Vec::new();
    sni.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    sni.push(0);
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name);
    let versions = [4u8, 0x03, 0x04, 0x03, 0x03];
    let mut exts = Vec::new();
    for (kind, data) in [(EXT_SERVER_NAME, &sni[..]), (EXT_SUPPORTED_VERSIONS, &versions[..])] {
        exts.extend_from_slice(&kind.to_be_bytes());
        exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
        exts.extend_from_slice(data);
    }
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x11; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x13, 0x01]);
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    handshake_record(CLIENT_HELLO, &body)
}

/// A ServerHello record choosing TLS 1.3.
pub fn build_server_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x22; 32]);
    body.push(0);
    body.extend_from_slice(&[0x13, 0x01, 0]);
    let ext = [0u8, 43, 0, 2, 0x03, 0x04];
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    handshake_record(SERVER_HELLO, &body)
}

fn handshake_record(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut message = vec![kind];
    message.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    message.extend_from_slice(body);
    build_record(HANDSHAKE, &message)
}

/// A record of `content_type` around `fragment`, record version TLS 1.2.
pub fn build_record(content_type: u8, fragment: &[u8]) -> Vec<u8> {
    let mut out = vec![content_type, 0x03, 0x03];
    out.extend_from_slice(&(fragment.len() as u16).to_be_bytes());
    out.extend_from_slice(fragment);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hellos_round_trip() {
        let client = build_client_hello("kvm1.example.com");
        let record = Record::parse(&client).expect("a record");
        assert!(record.is_plausible());
        assert_eq!(record.type_name(), "ClientHello");
        assert_eq!(
            record.hello(),
            Some(Hello::Client { version: 0x0304, server_name: Some(&b"kvm1.example.com"[..]) })
        );
        let server = build_server_hello();
        let record = Record::parse(&server).expect("a record");
        assert_eq!(record.hello(), Some(Hello::Server { version: 0x0304 }));
        assert_eq!(version_name(0x0304), "TLS 1.3");
    }

    #[test]
    fn other_records() {
        let data = build_record(APPLICATION_DATA, &[1, 2, 3]);
        let record = Record::parse(&data).expect("a record");
        assert_eq!((record.type_name(), record.fragment), ("ApplicationData", &[1u8, 2, 3][..]));
        assert!(record.hello().is_none());
        assert!(!Record::parse(&[0x16, 0x09, 0x03, 0, 1]).unwrap().is_plausible());
        assert!(Record::parse(&[0x16, 0x03]).is_none());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Some(record) = Record::parse(&bytes) {
                let _ = record.hello();
                let _ = record.type_name();
            }
            let mut handshake = vec![HANDSHAKE, 3, 3, 0, bytes.len().min(255) as u8];
            handshake.extend_from_slice(&bytes);
            if let Some(record) = Record::parse(&handshake) {
                let _ = record.hello();
            }
        }
    }
}
