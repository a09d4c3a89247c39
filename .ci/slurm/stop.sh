#!/usr/bin/env bash
# Stops the cluster .ci/slurm/start.sh started, each daemon by its pid file.
set -uo pipefail
dir="${IMFILTER_SLURM_DIR:-/tmp/imfilter-slurm}"
stop() {
    local pidfile="$1"
    [ -s "$pidfile" ] || return 0
    local pid
    pid="$(cat "$pidfile")"
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
}
stop "$dir/slurmd.pid"
stop "$dir/slurmctld.pid"
stop /run/munge/munged.pid
echo "slurm: stopped"
