#!/usr/bin/env bash
# The HDF5 timings of docs/hdf5.md ("Measured"): 200 images of 512 x 512 uint16 written by
# h5py in each layout and by tifffile as a TIFF, read with `imfilter info --stats` (every image,
# no output) and written by `imfilter median`. Needs numpy, h5py, tifffile and a release build.
#
#   cargo build --release && benches/hdf5.sh [DIR]      # DIR: where the 460 MB of inputs go
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
B="$root/target/release/imfilter"
dir="${1:-${TMPDIR:-/tmp}/imfilter-hdf5-bench}"
mkdir -p "$dir" && cd "$dir"
if [ ! -e bench.h5 ]; then
    python3 - <<'PY'
import h5py, numpy as np, tifffile
rng = np.random.default_rng(1)
n, h, w = 200, 512, 512
y, x = np.mgrid[0:h, 0:w]
base = (2000 + 1000 * np.sin(x / 40.0) * np.cos(y / 55.0)).astype(np.float32)
data = np.empty((n, h, w), np.uint16)
for i in range(n):
    data[i] = np.clip(base + rng.normal(0, 30, (h, w)), 0, 65535).astype(np.uint16)
tifffile.imwrite("stack.tif", data, photometric="minisblack")
with h5py.File("bench.h5", "w") as f:
    f.create_dataset("contiguous", data=data)
    f.create_dataset("chunked", data=data, chunks=(1, h, w))
    f.create_dataset("gzip", data=data, chunks=(1, h, w), compression="gzip", compression_opts=4)
    f.create_dataset("gzip_fletcher", data=data, chunks=(1, h, w), compression="gzip",
                     compression_opts=4, fletcher32=True)
    f.create_dataset("gzip_multi", data=data, chunks=(8, 64, 64), compression="gzip",
                     compression_opts=4)
PY
fi
t() { /usr/bin/time -f "%e s wall, %U s CPU" "$@" 2>&1 >/dev/null | tail -1; }
for j in 1 2; do
    for input in stack.tif bench.h5:/contiguous bench.h5:/chunked bench.h5:/gzip \
        bench.h5:/gzip_fletcher bench.h5:/gzip_multi; do
        echo "info --stats -j $j $input: $(t "$B" -j $j info --stats $input) | $(t "$B" -j $j info --stats $input) | $(t "$B" -j $j info --stats $input)"
    done
done
for out in out.tif out.h5:/data; do
    for c in none deflate; do
        run() { t "$B" -j 2 median --size 3 -q --force --compress $c stack.tif -o $out; }
        echo "median -j 2 stack.tif -o $out --compress $c: $(run) | $(run) | $(run)"
    done
done
ls -l out.tif out.h5
