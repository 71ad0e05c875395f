//! What the process may do, and giving up what a command does not need.
//!
//! The README tells admins they may grant the binary
//! `cap_net_raw,cap_net_admin=eip` so that live capture works without root.
//! Then every local user runs every command with those capabilities: each
//! command therefore starts by keeping only what it needs (none, or
//! CAP_NET_RAW until its packet socket is open), and the one command that
//! sends frames of its own making (`conform --raw`) refuses to run on
//! capabilities lent by the file to a user who is not root, unless the
//! admin put that user in the group `INJECT_GROUP`.

use caps::{CapSet, Capability, CapsHashSet};

/// Members of this group may use `conform --raw` through the binary's file
/// capabilities.
pub const INJECT_GROUP: &str = "ldm-sniff-inject";

/// For a user who is not root, keeps only `keep` of the capabilities held
/// (effective, permitted and inheritable; the ambient set is cleared): what
/// is dropped cannot be regained. Root is left as it is (it reads files of
/// any owner; live capture then runs as `-Z USER`); with no capabilities
/// held this does nothing.
pub fn keep_only(keep: &[Capability]) -> Result<(), String> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 {
        return Ok(());
    }
    let keep: CapsHashSet = keep.iter().copied().collect();
    let held = caps::read(None, CapSet::Permitted).map_err(|e| format!("cannot read capabilities: {e}"))?;
    if held.is_subset(&keep) {
        return Ok(());
    }
    let kept: CapsHashSet = held.intersection(&keep).copied().collect();
    let fail = |e: caps::errors::CapsError| format!("cannot drop capabilities: {e}");
    caps::clear(None, CapSet::Ambient).map_err(fail)?;
    caps::set(None, CapSet::Effective, &kept).map_err(fail)?;
    caps::set(None, CapSet::Inheritable, &CapsHashSet::new()).map_err(fail)?;
    caps::set(None, CapSet::Permitted, &kept).map_err(fail)?;
    Ok(())
}

/// Drops every capability.
pub fn drop_all() -> Result<(), String> {
    keep_only(&[])
}

/// Whether the process holds capabilities although its real user is not
/// root: capabilities lent by the binary's file capabilities.
pub fn lent_by_the_file() -> bool {
    // SAFETY: getuid has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    !root && caps::read(None, CapSet::Permitted).is_ok_and(|held| !held.is_empty())
}

/// Whether the real user belongs to `INJECT_GROUP`.
pub fn may_inject() -> bool {
    let Ok(name) = std::ffi::CString::new(INJECT_GROUP) else { return false };
    // SAFETY: getgrnam returns a pointer into static storage or null.
    let group = unsafe { libc::getgrnam(name.as_ptr()) };
    if group.is_null() {
        return false;
    }
    // SAFETY: not null: a valid group entry.
    let gid = unsafe { (*group).gr_gid };
    // SAFETY: getgroups with a buffer of its own size.
    let count = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let mut groups = vec![0 as libc::gid_t; usize::try_from(count).unwrap_or(0)];
    // SAFETY: `groups` holds `count` entries.
    let count = unsafe { libc::getgroups(count, groups.as_mut_ptr()) };
    groups.truncate(usize::try_from(count).unwrap_or(0));
    // SAFETY: getgid has no preconditions.
    groups.contains(&gid) || unsafe { libc::getgid() } == gid
}

/// The capability live capture and raw injection need while they open
/// their packet socket.
pub const PACKET_SOCKET: Capability = Capability::CAP_NET_RAW;
