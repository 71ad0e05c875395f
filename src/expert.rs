//! The one catalogue of anomaly keys. Every output, the exit status and the
//! README table use it; a key keeps its meaning once released.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warn,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One catalogue entry.
#[derive(Debug, PartialEq, Eq)]
pub struct Info {
    pub key: &'static str,
    pub severity: Severity,
    /// One line: what it means.
    pub meaning: &'static str,
    /// One line: what an admin should do about it.
    pub action: &'static str,
}

macro_rules! catalogue {
    ($( $name:ident = $key:literal, $sev:ident, $meaning:literal, $action:literal; )*) => {
        /// Every anomaly, by name in code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Key { $( $name, )* }

        /// The catalogue, in the order of [`Key`].
        pub const CATALOGUE: &[Info] = &[
            $( Info { key: $key, severity: Severity::$sev, meaning: $meaning, action: $action }, )*
        ];

        impl Key {
            pub const ALL: &'static [Key] = &[ $( Key::$name, )* ];
        }
    };
}

catalogue! {
    // Capture and frame.
    FrameTruncated = "frame.truncated", Warn,
        "the frame was cut by the capture's snap length (caplen < len); later fields are missing",
        "capture again with a larger snap length (tcpdump -s 0)";
    FrameTimeOutOfRange = "frame.time_out_of_range", Warn,
        "the time the file gives this frame lies outside the years 1970-9999 (a wrong resolution, offset or clock); it is shown as the nearest end of that range",
        "check the capturing host's clock and the tool that wrote the file; -w writes the original time back unchanged";
    FrameLinktypeUndecoded = "frame.linktype_undecoded", Warn,
        "this frame's link type is one ldm-sniff does not decode, and its bytes hold what looks like ldm (the ldm port twice, or the magic number): ldm traffic may be going unchecked",
        "convert the capture to a link type ldm-sniff reads (editcap -T), or capture on an Ethernet or ipnet interface; the summary counts the frames skipped per link type";
    // IP and UDP transport.
    IpBadChecksum = "ip.bad_checksum", Error,
        "the IPv4 header checksum is wrong: the packet was corrupted on the way",
        "check the NIC, cabling and switch counters of the sender's segment";
    UdpBadChecksum = "udp.bad_checksum", Error,
        "the UDP checksum is wrong and is not a checksum-offload placeholder: the datagram was corrupted",
        "check the NIC and the path from the sender";
    UdpBadLength = "udp.bad_length", Error,
        "the UDP length field disagrees with the IP payload length",
        "the sender's stack or a middlebox mangled the datagram";
    IpTruncated = "ip.truncated", Error,
        "the IP header claims more bytes than the frame carries, although the capture kept the whole frame: the datagram was cut on its way, or its length lies; the fields past the end are missing or cut",
        "find the sender or the middlebox that cuts datagrams; a field shown [cut] is not what the sender wrote";
    IpFragmented = "ip.fragmented", Warn,
        "the message arrived in several IPv4 fragments (ldmd messages fit one frame)",
        "look for a link with an MTU below 340 bytes or a tunnel on the path";
    IpFragmentsMissing = "ip.fragments_missing", Error,
        "some IPv4 fragments of the datagram never arrived; only part of the message is shown",
        "capture on the receiving segment or check for fragment loss";
    IpFragmentOverlap = "ip.fragment_overlap", Note,
        "two IPv4 fragments carry the same bytes of the datagram, with the same values (a fragment sent twice); the detail says whether Linux keeps the datagram or drops it",
        "nothing if rare; if Linux drops the datagram, its receivers never see the message";
    IpFragmentOverlapConflict = "ip.fragment_overlap_conflict", Error,
        "two IPv4 fragments carry different bytes for the same place in the datagram: receivers and monitors may see different messages (the first fragment's bytes are shown)",
        "find the sender: overlapping fragments that disagree are how traffic is made to look different to a monitor than to its receiver";
    IpTtlAboveOne = "ip.ttl_above_1", Warn,
        "the TTL (hop limit) is above 1, so the message can leave the subnet (ldmd/hops was raised)",
        "keep ldmd/hops at 1 unless ldmd hosts really sit on several subnets";
    IpWrongGroup = "ip.wrong_group", Error,
        "sent to a multicast group other than 239.129.9.27: no ldmd listens there",
        "fix the sender's group address";
    IpNotMulticast = "ip.not_multicast", Note,
        "sent to a unicast or broadcast address instead of the ldmd group",
        "expected only from tools that reply unicast; otherwise find the sender";
    IpIpv6Transport = "ip.ipv6_transport", Warn,
        "carried over IPv6; ldmd speaks IPv4 multicast only",
        "the sender is not an ldmd: find out what it is";
    // The ldm message itself.
    LdmBadMagic = "ldm.bad_magic", Error,
        "magic_no is not 92792004 (0x0587E4C4) in either byte order: probably not an ldmd message",
        "find the program that sends on this port; the raw bytes are shown";
    LdmByteSwapped = "ldm.byte_swapped", Warn,
        "the message is little-endian (byte-swapped magic): not a SPARC ldmd",
        "fix the sender to write big-endian integers";
    LdmBadVersion = "ldm.bad_version", Error,
        "version_no is not 1 (MAC_MULTI_VERSION)",
        "the sender speaks another protocol version; ldmd ignores it";
    LdmUnknownType = "ldm.unknown_type", Error,
        "msg_type is not 0-3 (SEND_MSG, RESPONSE_MSG, LDMD_DISC_SEND, LDMD_DISC_RESP)",
        "the sender is not a conforming ldmd";
    LdmResvNonzero = "ldm.resv_nonzero", Warn,
        "the reserved word is not 0",
        "harmless to ldmd today, but the sender does not zero its buffers";
    LdmTruncated = "ldm.truncated", Error,
        "the message ends before the fields its type needs; the missing fields are marked missing",
        "if frame.truncated is also set, capture with a larger snap length; otherwise the sender is broken";
    LdmUnusualLength = "ldm.unusual_length", Warn,
        "the length is neither the full 312 bytes nor a known short form",
        "the sender builds messages of its own size";
    LdmTrailingBytes = "ldm.trailing_bytes", Warn,
        "bytes follow the 312-byte message",
        "the sender appends data ldmd ignores";
    LdmStringUnterminated = "ldm.string_unterminated", Warn,
        "a text field fills its char[] with no terminating NUL",
        "a C reader may run past the field: fix the sender";
    LdmStringNotText = "ldm.string_not_text", Warn,
        "a text field holds bytes that are not printable ASCII (shown escaped)",
        "the sender writes binary or uninitialised data into the field";
    LdmBadSourceIp = "ldm.bad_source_ip", Error,
        "source_ip is not a dotted-quad IPv4 address",
        "the requester cannot be identified from the message";
    LdmSourceIpMismatch = "ldm.source_ip_mismatch", Warn,
        "source_ip differs from the IP header's source address",
        "a multi-homed or NATed sender, or a forged message";
    LdmIpAddressMismatch = "ldm.ip_address_mismatch", Warn,
        "the advertised ip_address differs from the IP header's source address",
        "clients will connect to the advertised address: check it is reachable";
    LdmMacHighBits = "ldm.mac_high_bits", Warn,
        "the top 16 bits of mac_addr are set; only the low 48 bits carry the MAC",
        "the sender does not clear the u64 before storing the MAC";
    LdmMacMulticast = "ldm.mac_multicast", Error,
        "the looked-up MAC is a multicast or broadcast address, never a valid NIC address",
        "the sender's MAC generator is broken";
    LdmMacZero = "ldm.mac_zero", Error,
        "the looked-up MAC is 00:00:00:00:00:00",
        "the sender sent an uninitialised MAC";
    LdmMacNotAuto = "ldm.mac_not_auto", Note,
        "the looked-up MAC lies outside the automatic range 00:14:4f:f8:00:00-00:14:4f:fb:ff:ff",
        "normal for a manually assigned MAC being re-checked; otherwise find who picked it";
    LdmBadPort = "ldm.bad_port", Warn,
        "the advertised port_no is not 6482, the ldmd XMPP port",
        "clients will try that port: check the ldmd's configuration";
    // Over time (src/analyze): what the traffic means.
    FrameTimeBackwards = "frame.time_backwards", Warn,
        "this frame's timestamp is earlier than the previous frame's; analysis keeps the latest time seen",
        "the capture was merged or the capturing clock stepped: response times near here are unreliable";
    LdmCollision = "ldm.collision", Note,
        "a host answered the MAC lookup within the window: the MAC is in use, and the requester picks another (handled)",
        "nothing; frequent collisions mean the automatic range is crowded";
    LdmLateResponse = "ldm.late_response", Error,
        "a host answered the MAC lookup after the window: the requester has probably assigned the MAC already, so two domains now share it",
        "on both hosts run `ldm list -o network` and give one of the two domains another MAC";
    LdmDuplicateOwner = "ldm.duplicate_owner", Error,
        "two different hosts answered for the same MAC: both have it assigned",
        "find the two domains with `ldm list -o network` on both hosts and change one MAC";
    LdmAllocationFailed = "ldm.allocation_failed", Error,
        "the requester is still retrying 30 s after its first lookup: ldmd gives up (\"Automatic MAC allocation failed\")",
        "free MACs in the automatic range, or assign a MAC by hand from the manual range";
    LdmStartupCheck = "ldm.startup_check", Note,
        "a burst of lookups of distinct MACs from one host: an ldmd start-up check (ldmd/mac_collision_check)",
        "nothing, if that ldmd just started";
    LdmLookupStorm = "ldm.lookup_storm", Warn,
        "a burst of lookups from one host that repeats MACs, goes on for long, or covers more MACs than one host owns (--startup-max): a runaway requester",
        "look at that host's ldmd log (svcs -L ldmd) and restart it if it loops";
    LdmUnsolicitedResponse = "ldm.unsolicited_response", Warn,
        "a response with no matching request, although the capture was running when the request would have been sent",
        "find the sender: a misbehaving ldmd, a replay, or spoofing";
    LdmRequestNotCaptured = "ldm.request_not_captured", Note,
        "a response near the start of the capture whose request was probably sent before capturing began",
        "nothing; start the capture earlier to see the whole exchange";
    LdmLateDiscoveryResponse = "ldm.late_discovery_response", Warn,
        "an ldmd answered discovery after the window: the client has stopped listening and misses it",
        "check that host's load and network path";
    LdmDuplicateResponse = "ldm.duplicate_response", Warn,
        "the same host answered the same request twice",
        "harmless, but the responder or the network duplicates packets";
    LdmHostnameSeveralIps = "ldm.hostname_several_ips", Warn,
        "one hostname is advertised with several IP addresses",
        "two ldmd hosts share a name, or one host changed address: check DNS and the hosts";
    LdmIpSeveralMacs = "ldm.ip_several_macs", Error,
        "one IP address sends ldm traffic from several link-layer addresses: an address conflict or spoofing",
        "find both machines (arp -a, switch MAC tables) and fix the duplicate address";
    LdmVersionMismatch = "ldm.version_mismatch", Note,
        "this ldmd reports a different version from the first one seen in the fleet",
        "plan to bring the fleet to one Oracle VM Server for SPARC version";
    // libvirt RPC (TCP 16509): the stream, each message, and over time.
    LibvirtStreamGap = "libvirt.stream_gap", Error,
        "bytes of this TCP stream before this frame were never captured (the peer acknowledged them, or they never came); decoding resumed at the next plausible message header",
        "messages in the gap are lost: check the capture's drop counts, and capture on the client or daemon host itself";
    LibvirtNotLibvirt = "libvirt.not_libvirt", Warn,
        "this direction of a connection on a libvirt port carries no libvirt RPC: it showed no message header before it closed or in its first 4 KiB (or, after a gap, in more bytes than a message can span); the rest of it is not decoded",
        "find what talks on the port: a scan, another service, or libvirt over TLS on the plain port (then use --libvirt-tls-port)";
    LibvirtBadHeader = "libvirt.bad_header", Error,
        "where a message header was due, the bytes are not one (bad length, program, version, type or status)",
        "the peer is not speaking libvirt RPC on this port, the stream is encrypted (SASL), or it is TLS (then use --libvirt-tls-port): check the daemon's auth";
    LibvirtSkippedBytes = "libvirt.skipped_bytes", Warn,
        "bytes were skipped to find the next message header (after a gap, a bad header, or joining a connection mid-way)",
        "nothing if the capture started mid-connection; otherwise see the gap or bad header before it";
    LibvirtRetransmission = "libvirt.retransmission", Note,
        "the segment repeats stream bytes already seen (TCP retransmission); they are decoded once",
        "frequent retransmissions mean loss between client and daemon: check the path";
    LibvirtUnknownProcedure = "libvirt.unknown_procedure", Warn,
        "the procedure number is not one libvirt 9.0 defines for this program",
        "a newer libvirt, or a broken client: compare the client's and daemon's versions";
    LibvirtErrorReply = "libvirt.error_reply", Note,
        "the daemon answered the call with an error (code, domain and message shown)",
        "read the message: often an expected failure (no such domain), sometimes a daemon problem";
    LibvirtReplyWithoutCall = "libvirt.reply_without_call", Warn,
        "a reply whose serial matches no call seen on this connection, although the connection was captured from its start",
        "the daemon answered a call never made, or the capture lost it: look for a gap before";
    LibvirtCallNotCaptured = "libvirt.call_not_captured", Note,
        "a reply to a call the capture does not hold: made before the capture began (the connection was joined mid-way), lost in a gap or unreadable bytes of the client's direction, or forgotten by a full table (--max-entries)",
        "nothing; start the capture before the client connects, and capture where nothing is dropped, to see whole exchanges";
    LibvirtDuplicateSerial = "libvirt.duplicate_serial", Warn,
        "a call reuses the serial of a call still waiting for its reply on this connection",
        "a client bug: replies can no longer be matched to calls";
    LibvirtKeepaliveUnanswered = "libvirt.keepalive_unanswered", Warn,
        "a keepalive PING was sent while the previous PING in that direction is still unanswered",
        "the peer is stuck or the path drops traffic; libvirt closes the connection after keepalive_count misses";
}

impl Key {
    pub fn info(self) -> &'static Info {
        &CATALOGUE[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.info().key
    }

    pub fn severity(self) -> Severity {
        self.info().severity
    }

    pub fn from_name(name: &str) -> Option<Key> {
        Key::ALL.iter().copied().find(|key| key.name() == name)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a finding is about, kept as values so nothing is formatted (or
/// allocated) until an output asks for the text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Detail {
    None,
    /// A field's value and the value it should have.
    Expected {
        field: &'static str,
        got: u64,
        want: u64,
    },
    /// A checksum and the one the bytes sum to, shown in hex as the tree
    /// (and Wireshark) show checksums.
    Checksum {
        got: u16,
        want: u16,
    },
    /// A field's value, hex.
    Hex {
        field: &'static str,
        got: u64,
    },
    /// A field's value.
    Value {
        field: &'static str,
        got: u64,
    },
    /// A length and the length that was expected.
    Length {
        got: usize,
        want: usize,
    },
    /// The field concerned.
    Field(&'static str),
    /// A field's address and the IP header's.
    AddrMismatch {
        field: &'static str,
        said: std::net::IpAddr,
        header: std::net::IpAddr,
    },
    /// An address.
    Addr(std::net::IpAddr),
    Mac([u8; 6]),
    /// A TTL or hop limit.
    Ttl(u8),
    /// Bytes captured and bytes on the wire.
    Cut {
        caplen: u32,
        len: u32,
    },
    /// IPv4 fragments: how many, from which frame to which.
    Fragments {
        count: u32,
        first_frame: u64,
        last_frame: u64,
    },
    /// Bytes of a datagram received out of its total.
    FragmentsMissing {
        have: usize,
        of: Option<usize>,
    },
    /// A related earlier frame and the time since it.
    After {
        what: &'static str,
        frame: u64,
        secs: f64,
    },
    /// Another host already seen with the same MAC, hostname or address.
    AlsoSeen {
        what: &'static str,
        addr: std::net::IpAddr,
        frame: u64,
    },
    /// Another link-layer address already seen for the same IP.
    AlsoFrom {
        mac: [u8; 6],
        frame: u64,
    },
    /// A retry chain: lookups so far, since when.
    Chain {
        lookups: u32,
        secs: f64,
        first_frame: u64,
    },
    /// A burst of lookups.
    Burst {
        lookups: u32,
        distinct: u32,
        secs: f64,
    },
    /// A burst of more lookups than one start-up check makes.
    LongBurst {
        lookups: u32,
        secs: f64,
        most: u32,
    },
    /// A timestamp that went backwards.
    Backwards {
        secs: f64,
    },
    /// A number of bytes.
    Bytes(u64),
    /// A libvirt serial and the frame of the call (or PING) concerned.
    Serial {
        serial: u32,
        frame: u64,
    },
    /// A libvirt error: code, domain, and the start of the message.
    LibvirtError {
        code: i32,
        domain: i32,
    },
    /// Bytes of a TCP stream never captured: where they start (relative
    /// sequence number), how many, and the frame before them.
    StreamGap {
        from: u32,
        len: u64,
        after_frame: Option<u64>,
    },
    /// A direction given up: bytes without a header, and whether they
    /// start like a TLS record.
    NotLibvirt {
        bytes: u64,
        tls: bool,
    },
    /// The bytes start like a TLS record.
    LooksLikeTls,
    /// A frame's time as the file wrote it: units, resolution (if_tsresol)
    /// and offset in seconds.
    RawTime {
        units: u64,
        tsresol: u8,
        offset_secs: i64,
    },
    /// Two fragments with the same datagram bytes `from..to`: the frame
    /// kept, the later one, and whether Linux drops the datagram.
    FragmentOverlap {
        first_frame: u64,
        frame: u64,
        from: u32,
        to: u32,
        linux_discards: bool,
    },
}

/// One anomaly found in one packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finding {
    pub key: Key,
    pub detail: Detail,
}

impl Finding {
    pub fn new(key: Key, detail: Detail) -> Finding {
        Finding { key, detail }
    }

    pub fn severity(&self) -> Severity {
        self.key.severity()
    }
}

/// A MAC address as `00:14:4f:f8:12:34`, written without allocating.
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    /// Spelled out by hand: one line per packet shows one or two MACs, and
    /// six `{:02x}` through the formatter cost more than the rest of the line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(std::str::from_utf8(&self.text()).map_err(|_| fmt::Error)?)
    }
}

impl MacAddr {
    /// `00:14:4f:f8:12:34`, lower case.
    pub fn text(&self) -> [u8; 17] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [b':'; 17];
        for (i, byte) in self.0.iter().enumerate() {
            text[3 * i] = HEX[usize::from(byte >> 4)];
            text[3 * i + 1] = HEX[usize::from(byte & 0xf)];
        }
        text
    }
}

/// Parses `00:14:4f:f8:12:34` (or with dashes).
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (slot, part) in mac.iter_mut().zip(parts) {
        if part.len() != 2 {
            return None;
        }
        *slot = u8::from_str_radix(part, 16).ok()?;
    }
    Some(mac)
}

pub fn format_mac(mac: [u8; 6]) -> String {
    MacAddr(mac).to_string()
}

// `Display` for `Detail` lives with its writer, in output/detail.rs.

impl fmt::Display for Finding {
    /// `key (detail)`, the form the one-line output uses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.detail {
            Detail::None => f.write_str(self.key.name()),
            detail => write!(f, "{} ({detail})", self.key.name()),
        }
    }
}

/// The README's anomaly table, made from the catalogue (a test keeps the
/// README equal to it).
pub fn markdown_table() -> String {
    let mut out = String::from("| key | severity | meaning | what to do |\n|---|---|---|---|\n");
    for info in CATALOGUE {
        out.push_str(&format!("| `{}` | {} | {} | {} |\n", info.key, info.severity, info.meaning, info.action));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keys_number_is_its_place_in_the_catalogue() {
        // The summary counts findings in a table indexed by `Key as usize`.
        for (place, key) in Key::ALL.iter().enumerate() {
            assert_eq!(*key as usize, place);
            assert_eq!(CATALOGUE[place].key, key.name());
        }
    }

    #[test]
    fn keys_are_unique_dotted_lower_case() {
        let mut seen = std::collections::HashSet::new();
        for info in CATALOGUE {
            assert!(seen.insert(info.key), "duplicate key {}", info.key);
            assert!(info.key.contains('.'), "{} is not dotted", info.key);
            assert!(
                info.key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_'),
                "{} is not lower-case",
                info.key
            );
        }
        assert_eq!(Key::ALL.len(), CATALOGUE.len());
        for key in Key::ALL {
            assert_eq!(Key::from_name(key.name()), Some(*key));
        }
    }
}
