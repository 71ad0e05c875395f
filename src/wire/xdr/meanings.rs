//! Names for the values of libvirt's C enums that its XDR carries as plain
//! integers (the `.x` files declare `int state`, not an enum): what an
//! admin reads, `running` rather than 1. Only fields whose meaning libvirt
//! documents in its public headers (virDomainState and the lifecycle event
//! types of domains, networks and storage pools) are
//! listed.

/// virDomainState (libvirt-domain.h).
const DOMAIN_STATE: [&str; 8] =
    ["nostate", "running", "blocked", "paused", "shutdown", "shutoff", "crashed", "pmsuspended"];

/// virDomainEventType (libvirt-domain.h).
const DOMAIN_EVENT: [&str; 9] =
    ["defined", "undefined", "started", "suspended", "resumed", "stopped", "shutdown", "pmsuspended", "crashed"];

/// virNetworkEventLifecycleType (libvirt-network.h).
const NETWORK_EVENT: [&str; 4] = ["defined", "undefined", "started", "stopped"];

/// virStoragePoolEventLifecycleType (libvirt-storage.h).
const POOL_EVENT: [&str; 6] = ["defined", "undefined", "started", "stopped", "created", "deleted"];

/// Which fields carry which enum, by path.
const FIELDS: [(&str, &[&str]); 5] = [
    ("remote_network_event_lifecycle_msg.event", &NETWORK_EVENT),
    ("remote_storage_pool_event_lifecycle_msg.event", &POOL_EVENT),
    ("remote_domain_get_info_ret.state", &DOMAIN_STATE),
    ("remote_domain_get_state_ret.state", &DOMAIN_STATE),
    // Also inside remote_domain_event_callback_lifecycle_msg.
    ("remote_domain_event_lifecycle_msg.event", &DOMAIN_EVENT),
];

/// The name of `value` in the field at `path`, when libvirt names it.
pub fn name(path: &str, value: i64) -> Option<&'static str> {
    let (_, names) = FIELDS.iter().find(|(p, _)| *p == path)?;
    usize::try_from(value).ok().and_then(|i| names.get(i)).copied()
}
