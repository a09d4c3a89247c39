#!/usr/bin/env bash
# Sharding overhead on one machine (issue 14, docs/benchmarks.md section 11): one
# `imfilter run` of a chain against the same chain as a job of SHARDS shards run one after
# another (prepare + every `job run` + commit, all timed), in interleaved rounds.
#
#   benches/compare/shards.sh DATADIR [ROUNDS=5] [SHARDS=8] [SYNC=--no-sync|--sync]
#
# IMFILTER names the binary (default: this checkout's target/release/imfilter).
# DATADIR holds stack.tif, flat.tif and dark.tif from make_stack.py (e.g. -n 128 --shape
# 2048x2048: 1 GiB of uint16). Results go to DATADIR too; dirty pages are synced, untimed,
# before each timed run. Where it may (root), it also empties the page cache and reads the
# inputs back into it before each timed run, so that both start with the same memory: on a
# machine whose memory the results nearly fill, the second of the two otherwise pays for
# reclaiming the first one's pages (docs/benchmarks.md, section 11).
set -euo pipefail
data="$1"; rounds="${2:-5}"; shards="${3:-8}"; sync="${4:---no-sync}"
bin="${IMFILTER:-$(cd "$(dirname "$0")/../.." && pwd)/target/release/imfilter}"
[ "$sync" = "--sync" ] && sync=""
cd "$data"
steps=(--step 'background-correct --flat flat.tif --dark dark.tif' --step 'median --size 3')
now() { date +%s.%N; }
settle() {
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then
        echo 1 > /proc/sys/vm/drop_caches
        cat stack.tif flat.tif dark.tif > /dev/null
    fi
}
local_times=(); job_times=()
for r in $(seq "$rounds"); do
    rm -rf local.tif local.json job.tif job.json job.tif.imfilter-job; settle
    t0=$(now)
    "$bin" -q run $sync "${steps[@]}" stack.tif -o local.tif
    t1=$(now); local_times+=("$(echo "$t1 - $t0" | bc)")
    settle
    t0=$(now)
    job=$("$bin" -q job prepare --shards "$shards" $sync "${steps[@]}" stack.tif -o job.tif)
    for i in $(seq 0 $((shards - 1))); do "$bin" -q job run "$job" --shard "$i"; done
    "$bin" -q job commit "$job"
    t1=$(now); job_times+=("$(echo "$t1 - $t0" | bc)")
    cmp -s local.tif job.tif || { echo "shards: job.tif differs from local.tif" >&2; exit 1; }
    echo "round $r: run ${local_times[-1]} s, $shards shards ${job_times[-1]} s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ml=$(median "${local_times[@]}"); mj=$(median "${job_times[@]}")
echo "median: run $ml s [$(printf '%s\n' "${local_times[@]}" | sort -g | sed -n '1p;$p' | paste -sd-)]," \
     "$shards shards $mj s [$(printf '%s\n' "${job_times[@]}" | sort -g | sed -n '1p;$p' | paste -sd-)]," \
     "ratio $(echo "scale=3; $mj / $ml" | bc)"
