# Sourced by the recording scripts here (record.sh, record-concurrent.sh,
# record-lossy.sh): a real libvirtd in a network namespace of its own.
#   prepare_libvirtd NS DIR: makes the namespace (loopback up) and DIR's
#     home, run and libvirtd.conf (this directory's, with its socket in DIR);
#     a script may add to DIR/libvirtd.conf before starting the daemon.
#   start_libvirtd NS DIR: starts libvirtd there as nobody, from DIR, and
#     waits (at most 10 s) until it listens on 16509; its PID is $daemon.
# The caller removes the namespace and DIR and stops $daemon (its cleanup trap).
libvirt_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

prepare_libvirtd() {
  local ns=$1 dir=$2
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  mkdir -p "$dir/home" "$dir/run"
  cp "$libvirt_here/libvirtd.conf" "$dir/"
  echo "unix_sock_dir = \"$dir/run\"" >> "$dir/libvirtd.conf"
}

start_libvirtd() {
  local ns=$1 dir=$2
  chown -R 65534:65534 "$dir"
  chmod 755 "$dir"
  ip netns exec "$ns" setpriv --reuid=65534 --regid=65534 --clear-groups \
    env -i PATH=/usr/bin:/usr/sbin HOME="$dir/home" XDG_RUNTIME_DIR="$dir/run" \
    XDG_CONFIG_HOME="$dir/home/.config" XDG_CACHE_HOME="$dir/home/.cache" \
    /usr/sbin/libvirtd --listen -f "$dir/libvirtd.conf" 2> "$dir/daemon.log" &
  daemon=$!
  for _ in $(seq 100); do
    ip netns exec "$ns" ss -Hltn 'sport = :16509' | grep -q LISTEN && return 0
    sleep 0.1
  done
}
