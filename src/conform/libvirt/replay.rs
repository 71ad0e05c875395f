//! The replay of a recorded libvirt session against a target: every
//! connection at once, in the recorded interleaving.
//!
//! Each client message is sent once (1) the capture's pace allows it
//! (`--pace recorded`: as long after the first message as it was recorded),
//! and (2) every connection has received as many daemon messages as the
//! recording shows before it (replies and events alike), or twice the
//! window has passed. So an event listener registered first gets its
//! events, and a call that followed another client's reply in the recording
//! follows it again. Values the daemon assigns are learned from the
//! target's replies (where they differ from the recorded ones) and written
//! into later calls at their offsets.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::wire::libvirt::{
    self, Header, Message, MsgType, Status, HEADER_LEN, KEEPALIVE_PING, KEEPALIVE_PONG, MAX_LEN, PROGRAM_KEEPALIVE,
};
use crate::wire::xdr::{Node, Value};

use super::normalise::is_callback_id;
use super::{answers, recorded, Session};

/// Request spacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// As recorded: each message as long after the first as in the capture.
    Recorded,
    /// Each message as soon as what came before it in the capture is in.
    Fast,
}

/// A message from the daemon and whether it came after the window; or,
/// with `not_kept`, how many more came than were kept; or, with `note`, an
/// event of the connection (the daemon closed it).
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub bytes: Vec<u8>,
    pub late: bool,
    pub not_kept: u64,
    pub note: Option<&'static str>,
}

/// Per client message (in capture order): what the daemon sent back.
pub type Replies = Vec<Vec<Received>>;

/// Messages kept per client message, at most (a reply always is).
pub const MAX_KEPT: usize = 256;

/// One replayed connection.
struct Conn {
    stream: Option<TcpStream>,
    reader: MessageReader,
    /// Daemon messages received (keepalives not counted).
    received: usize,
    /// Steps sent on it, in order.
    steps: Vec<usize>,
    /// Calls awaiting replies: (program, serial, step).
    calls: Vec<(u32, u32, usize)>,
    /// The index in the session of its last recorded message.
    last_recorded: usize,
    opened: bool,
}

/// Values the daemon assigned in the recording, and in the replay.
#[derive(Debug, Default)]
struct Substitutions {
    uuids: HashMap<[u8; 16], [u8; 16]>,
    ints: HashMap<(&'static str, i64), i64>,
}

struct Engine<'s> {
    session: &'s Session,
    conns: Vec<Conn>,
    replies: Replies,
    not_kept: Vec<u64>,
    sent_at: Vec<Option<Instant>>,
    /// The recorded reply of each call step.
    recorded_reply: Vec<Option<Vec<u8>>>,
    values: Substitutions,
    window: Duration,
    target: Option<SocketAddr>,
}

/// Replays `session` against `target` (or each connection's recorded
/// daemon). A reply later than `window` after its call is marked late.
pub fn replay(session: &Session, target: Option<SocketAddr>, window: f64, pace: Pace) -> io::Result<Replies> {
    let steps: Vec<usize> = session.steps().map(|(i, _)| i).collect();
    let recorded_replies = recorded(session);
    let recorded_reply = steps
        .iter()
        .zip(&recorded_replies)
        .map(|(&i, received)| {
            let call = &session.messages[i].header;
            received.iter().find(|r| header_of(&r.bytes).is_some_and(|h| answers(call, &h))).map(|r| r.bytes.clone())
        })
        .collect();
    let mut last_recorded = vec![0; session.servers.len()];
    for (i, message) in session.messages.iter().enumerate() {
        last_recorded[message.conn] = i;
    }
    let conns = last_recorded
        .into_iter()
        .map(|last_recorded| Conn {
            stream: None,
            reader: MessageReader::default(),
            received: 0,
            steps: Vec::new(),
            calls: Vec::new(),
            last_recorded,
            opened: false,
        })
        .collect();
    let mut engine = Engine {
        session,
        conns,
        replies: vec![Vec::new(); steps.len()],
        not_kept: vec![0; steps.len()],
        sent_at: vec![None; steps.len()],
        recorded_reply,
        values: Substitutions::default(),
        window: Duration::from_secs_f64(window),
        target,
    };
    engine.run(pace)?;
    let Engine { mut replies, not_kept, .. } = engine;
    for (step, n) in not_kept.into_iter().enumerate().filter(|(_, n)| *n > 0) {
        replies[step].push(Received { not_kept: n, ..Received::default() });
    }
    Ok(replies)
}

fn header_of(bytes: &[u8]) -> Option<Header> {
    Message::parse(bytes).map(|m| m.header)
}

impl Engine<'_> {
    fn run(&mut self, pace: Pace) -> io::Result<()> {
        let session = self.session;
        let started = Instant::now();
        let first_ts = session.messages.first().map(|m| m.ts);
        // Daemon messages recorded on each connection so far.
        let mut recorded_counts = vec![0usize; self.conns.len()];
        let mut step = 0;
        for (i, message) in session.messages.iter().enumerate() {
            if !message.from_client {
                recorded_counts[message.conn] += 1;
                continue;
            }
            if pace == Pace::Recorded {
                let offset = first_ts.map_or(0.0, |t| message.ts.seconds_since(t).max(0.0));
                self.pump_until(started + Duration::from_secs_f64(offset), |_| false)?;
            }
            let deadline = Instant::now() + 2 * self.window;
            self.pump_until(deadline, |conns| conns.iter().zip(&recorded_counts).all(|(c, &n)| c.received >= n))?;
            self.close_finished(i);
            self.send(step, message.conn)?;
            step += 1;
        }
        // What came after the last client message, and the last replies.
        let deadline = Instant::now() + 2 * self.window;
        self.pump_until(deadline, |conns| conns.iter().zip(&recorded_counts).all(|(c, &n)| c.received >= n))?;
        for conn in &mut self.conns {
            conn.stream = None;
        }
        Ok(())
    }

    /// Closes the connections whose recording ended before message `at`,
    /// as their clients did.
    fn close_finished(&mut self, at: usize) {
        for conn in &mut self.conns {
            if conn.opened && conn.last_recorded < at {
                conn.stream = None;
            }
        }
    }

    /// Sends step `step` (a client message) on its connection, with the
    /// daemon-assigned values of the target put in.
    fn send(&mut self, step: usize, conn_index: usize) -> io::Result<()> {
        let message = &self.session.steps().nth(step).expect("a step per client message").1.clone();
        let conn = &mut self.conns[conn_index];
        if !conn.opened {
            let addr = self.target.unwrap_or(self.session.servers[conn_index]);
            let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            stream.set_nodelay(true)?;
            stream.set_write_timeout(Some(Duration::from_secs(5)))?;
            conn.stream = Some(stream);
            conn.opened = true;
        }
        let bytes = substitute(&message.bytes, &self.values);
        let Some(stream) = conn.stream.as_mut() else {
            self.replies[step]
                .push(Received { note: Some("not sent: the daemon closed the connection"), ..Received::default() });
            return Ok(());
        };
        if stream.write_all(&bytes).is_err() {
            conn.stream = None;
            self.replies[step]
                .push(Received { note: Some("not sent: the daemon closed the connection"), ..Received::default() });
            return Ok(());
        }
        conn.steps.push(step);
        if message.header.msg_type.is_call() {
            conn.calls.push((message.header.prog, message.header.serial, step));
        }
        self.sent_at[step] = Some(Instant::now());
        Ok(())
    }

    /// Reads from every open connection until `done` holds or `deadline`.
    fn pump_until(&mut self, deadline: Instant, done: impl Fn(&[Conn]) -> bool) -> io::Result<()> {
        loop {
            if done(&self.conns) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            let wait = (deadline - now).min(Duration::from_millis(50));
            for (c, message) in self.poll(wait)? {
                self.received(c, message);
            }
        }
    }

    /// Waits up to `wait` for data; returns the whole messages that came,
    /// with their connection.
    fn poll(&mut self, wait: Duration) -> io::Result<Vec<(usize, Vec<u8>)>> {
        let open: Vec<usize> = (0..self.conns.len()).filter(|&c| self.conns[c].stream.is_some()).collect();
        if open.is_empty() {
            std::thread::sleep(wait);
            return Ok(Vec::new());
        }
        let mut fds: Vec<libc::pollfd> = open
            .iter()
            .map(|&c| libc::pollfd {
                fd: self.conns[c].stream.as_ref().map_or(-1, |s| s.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let timeout = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX).max(1);
        // SAFETY: `fds` is a valid array of pollfd for the call's duration.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted { Ok(Vec::new()) } else { Err(e) };
        }
        let mut out = Vec::new();
        for (fd, &c) in fds.iter().zip(&open) {
            if fd.revents == 0 {
                continue;
            }
            let conn = &mut self.conns[c];
            let Some(stream) = conn.stream.as_mut() else { continue };
            let mut chunk = [0u8; 64 * 1024];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => conn.stream = None,
                Ok(n) => conn.reader.push(&chunk[..n]),
            }
            while let Some(message) = conn.reader.take() {
                out.push((c, message));
            }
        }
        Ok(out)
    }

    /// A daemon message on connection `c`: answered if a PING, else put
    /// under the step it answers (or the connection's latest).
    fn received(&mut self, c: usize, bytes: Vec<u8>) {
        let header = header_of(&bytes);
        if let Some(h) = header.filter(|h| h.prog == PROGRAM_KEEPALIVE) {
            if h.proc_ == KEEPALIVE_PING {
                let pong = libvirt::build(PROGRAM_KEEPALIVE, KEEPALIVE_PONG, MsgType::Message, 0, Status::Ok, &[]);
                if let Some(stream) = self.conns[c].stream.as_mut() {
                    let _ = stream.write_all(&pong);
                }
            }
            return;
        }
        let conn = &mut self.conns[c];
        conn.received += 1;
        let call = header.and_then(|h| {
            let at = conn
                .calls
                .iter()
                .position(|&(prog, serial, _)| h.msg_type.is_reply() && prog == h.prog && serial == h.serial)?;
            // A stream's replies continue until one that is not CONTINUE.
            let (_, _, step) = if h.status == Status::Continue { conn.calls[at] } else { conn.calls.remove(at) };
            Some(step)
        });
        let Some(step) = call.or(conn.steps.last().copied()) else { return };
        if call.is_some() {
            self.learn(step, &bytes);
        }
        let late = self.sent_at[step].is_some_and(|at| at.elapsed() > self.window);
        if self.replies[step].len() < MAX_KEPT || call.is_some() {
            self.replies[step].push(Received { bytes, late, ..Received::default() });
        } else {
            self.not_kept[step] += 1;
        }
    }

    /// Learns the daemon-assigned values of the target's reply to `step`
    /// where they differ from the recorded reply's.
    fn learn(&mut self, step: usize, actual: &[u8]) {
        let Some(recorded) = &self.recorded_reply[step] else { return };
        let (Some(recorded), Some(actual)) = (Message::parse(recorded), Message::parse(actual)) else { return };
        if recorded.header.status != actual.header.status {
            return;
        }
        let (Some(recorded), Some(actual)) = (recorded.decode_payload(), actual.decode_payload()) else { return };
        pair_leaves(&recorded.root, &actual.root, &mut self.values);
    }
}

/// Walks two trees of one type side by side, learning assigned values.
fn pair_leaves(recorded: &Node<'_>, actual: &Node<'_>, values: &mut Substitutions) {
    match (&recorded.value, &actual.value) {
        (Value::Compound(a), Value::Compound(b)) => {
            for (x, y) in a.iter().zip(b) {
                pair_leaves(x, y, values);
            }
        }
        (Value::Uuid(x), Value::Uuid(y)) if x != y => {
            values.uuids.insert(*x, *y);
        }
        (Value::Int(x), Value::Int(y)) if x != y && assigned_int(recorded.path) => {
            values.ints.insert((recorded.path, *x), *y);
        }
        _ => {}
    }
}

/// Integers the daemon assigns: callback IDs and domain IDs.
fn assigned_int(path: &str) -> bool {
    is_callback_id(path) || path == "remote_nonnull_domain.id"
}

/// A client message with the target's values for the recorded ones the
/// daemon assigned, in place (each is as long as the value it replaces).
fn substitute(bytes: &[u8], values: &Substitutions) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if values.uuids.is_empty() && values.ints.is_empty() {
        return out;
    }
    let Some(message) = Message::parse(bytes) else { return out };
    let Some(decoded) = message.decode_payload() else { return out };
    let mut patches: Vec<(usize, Vec<u8>)> = Vec::new();
    collect_patches(&decoded.root, values, &mut patches);
    for (offset, replacement) in patches {
        let at = HEADER_LEN + offset;
        if let Some(slot) = out.get_mut(at..at + replacement.len()) {
            slot.copy_from_slice(&replacement);
        }
    }
    out
}

fn collect_patches(node: &Node<'_>, values: &Substitutions, out: &mut Vec<(usize, Vec<u8>)>) {
    match &node.value {
        Value::Compound(children) => children.iter().for_each(|child| collect_patches(child, values, out)),
        Value::Uuid(uuid) => {
            if let Some(target) = values.uuids.get(uuid) {
                out.push((node.offset, target.to_vec()));
            }
        }
        Value::Int(v) if assigned_int(node.path) => {
            // Callback IDs of any procedure share one map: a register
            // reply's ID is named by the deregister call's args.
            let key_path = if is_callback_id(node.path) { "callbackID" } else { node.path };
            let found = values.ints.iter().find(|((path, from), _)| {
                (*path == node.path || (key_path == "callbackID" && is_callback_id(path))) && *from == *v
            });
            if let Some((_, to)) = found {
                out.push((node.offset, (*to as i32).to_be_bytes().to_vec()));
            }
        }
        _ => {}
    }
}

/// Whole messages from a byte stream. Messages are taken from `start` on;
/// the bytes before it are dropped once they are half the buffer, so a
/// stream of many small messages costs O(n), not a shift per message.
#[derive(Default)]
struct MessageReader {
    buffer: Vec<u8>,
    start: usize,
}

impl MessageReader {
    fn push(&mut self, bytes: &[u8]) {
        if self.start > self.buffer.len() / 2 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    fn take(&mut self) -> Option<Vec<u8>> {
        let unread = &self.buffer[self.start..];
        let len = u32::from_be_bytes(unread.get(..4)?.try_into().ok()?) as usize;
        if !(HEADER_LEN..=MAX_LEN).contains(&len) {
            // Not libvirt framing: hand the rest over as one unparsable message.
            let rest = unread.to_vec();
            self.buffer.clear();
            self.start = 0;
            return Some(rest);
        }
        if unread.len() < len {
            return None;
        }
        let message = unread[..len].to_vec();
        self.start += len;
        Some(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_from_a_stream_in_any_pieces() {
        let a = libvirt::build(0x2000_8086, 1, MsgType::Call, 1, Status::Ok, &[0, 0, 0, 0]);
        let b = libvirt::build(0x2000_8086, 2, MsgType::Call, 2, Status::Ok, &[]);
        let all = [a.clone(), b.clone()].concat();
        let mut reader = MessageReader::default();
        for byte in &all {
            reader.push(&[*byte]);
        }
        assert_eq!(reader.take(), Some(a));
        assert_eq!(reader.take(), Some(b));
        assert_eq!(reader.take(), None);
    }

    #[test]
    fn a_callback_id_assigned_in_the_replay_goes_into_later_calls() {
        // CALLBACK_DEREGISTER_ANY (proc 317) of callback 27, where the target assigned 3.
        let deregister = libvirt::build(0x2000_8086, 317, MsgType::Call, 9, Status::Ok, &27i32.to_be_bytes());
        let mut values = Substitutions::default();
        values.ints.insert(("remote_connect_domain_event_callback_register_any_ret.callbackID", 27), 3);
        let sent = substitute(&deregister, &values);
        assert_eq!(&sent[HEADER_LEN..], &3i32.to_be_bytes());
        assert_eq!(&sent[..HEADER_LEN], &deregister[..HEADER_LEN]);
    }
}
