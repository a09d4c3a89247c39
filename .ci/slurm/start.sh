#!/usr/bin/env bash
# Starts a one-node Slurm cluster by hand (no systemd): munged, slurmctld and slurmd, with
# their state, spool, logs and pid files under $IMFILTER_SLURM_DIR (default /tmp/imfilter-slurm).
# Installs Debian's slurm-wlm and munge first when they are missing (needs root, as in CI).
# Clients find the cluster through SLURM_CONF: `export SLURM_CONF=$IMFILTER_SLURM_DIR/slurm.conf`
# (printed at the end). Stop it with .ci/slurm/stop.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${IMFILTER_SLURM_DIR:-/tmp/imfilter-slurm}"

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# munge: a key, its run directory, the daemon (it refuses to run as root, so as munge).
if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 status=none
fi
chown -R munge:munge /etc/munge
chmod 700 /etc/munge
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
chmod 755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi
munge -n | unmunge >/dev/null

mkdir -p "$dir/state" "$dir/spool"
node="$(hostname -s)"
sed -e "s|@NODE@|$node|g" -e "s|@DIR@|$dir|g" -e "s|@CPUS@|$(nproc)|g" \
    -e "s|@CTLD_PORT@|${IMFILTER_SLURMCTLD_PORT:-6817}|g" \
    -e "s|@SLURMD_PORT@|${IMFILTER_SLURMD_PORT:-6818}|g" \
    "$here/slurm.conf.in" > "$dir/slurm.conf"
export SLURM_CONF="$dir/slurm.conf"

# Each daemon forks into the background and writes its pid file; -i starts the controller
# without the state of an earlier run.
[ -s "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null \
    || slurmctld -i -f "$SLURM_CONF"
[ -s "$dir/slurmd.pid" ] && kill -0 "$(cat "$dir/slurmd.pid")" 2>/dev/null \
    || slurmd -f "$SLURM_CONF" -N "$node"

for _ in $(seq 100); do
    state="$(sinfo -h -n "$node" -o %t 2>/dev/null || true)"
    case "$state" in idle*|mix*|alloc*) break ;; esac
    sleep 0.2
done
case "$state" in
    idle*|mix*|alloc*) ;;
    *) echo "slurm: node $node is '${state:-not known}' after 20 s; logs in $dir" >&2
       tail -n 5 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
       exit 1 ;;
esac
echo "slurm: one-node cluster up ($node); export SLURM_CONF=$SLURM_CONF"
