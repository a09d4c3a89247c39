#!/usr/bin/env python3
"""Compressed outputs, imfilter against tifffile with the same codec, level and predictor
(issue 19): whole processes, the median of 5 runs, sizes in MB. The data: 16 x 2048 x 2048
uint16 from make_stack.py (`python3 benches/compare/make_stack.py /tmp/imbench/data -n 16`).
imfilter writes them through an identity `crop` (uint16 in, uint16 out); tifffile reads the
stack and writes it with `maxworkers=2`. Both results are checked equal to the input.

    python3 benches/compare/compress_peer.py
"""
import subprocess, time, os, statistics, sys, resource
import numpy as np, tifffile
src = "/tmp/imbench/data/stack.tif"
out = "/tmp/imbench/out"
os.makedirs(out, exist_ok=True)
imf = "/work/main/target/release/imfilter"
data = tifffile.imread(src)
def cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
cases = [("lzw", 2, None), ("zstd", 2, 3), ("deflate", 1, 6)]
rows = []
for codec, pred, level in cases:
    t_im, t_tf, c_im, c_tf = [], [], [], []
    for rep in range(5):
        p = f"{out}/im_{codec}.tif"
        if os.path.exists(p): os.remove(p)
        subprocess.run(["sync"])
        t, c = time.perf_counter(), cpu()
        subprocess.run([imf, "crop", "--roi", "0,0,2048,2048", "--compress", codec, src, "-o", p, "--no-sync", "-q", "--force"], check=True)
        t_im.append(time.perf_counter() - t)
        c_im.append(cpu() - c)
        q = f"{out}/tf_{codec}.tif"
        if os.path.exists(q): os.remove(q)
        subprocess.run(["sync"])
        args = f"compression='{codec}', predictor={pred}, maxworkers=2"
        if level is not None:
            args += f", compressionargs={{'level': {level}}}"
        code = f"import tifffile; d=tifffile.imread('{src}'); tifffile.imwrite('{q}', d, {args})"
        t, c = time.perf_counter(), cpu()
        subprocess.run([sys.executable, "-c", code], check=True)
        t_tf.append(time.perf_counter() - t)
        c_tf.append(cpu() - c)
    a, b = tifffile.imread(p), tifffile.imread(q)
    assert np.array_equal(a, data) and np.array_equal(b, data)
    s_im, s_tf = os.path.getsize(p), os.path.getsize(q)
    rows.append((codec, pred, level, statistics.median(t_im), min(t_im), max(t_im), statistics.median(t_tf), min(t_tf), max(t_tf), s_im, s_tf, statistics.median(c_im), statistics.median(c_tf)))
print("| codec | predictor | level | imfilter s | tifffile s | imfilter ÷ tifffile (time) | imfilter MB | tifffile MB | size ratio | CPU s imfilter | CPU s tifffile |")
print("|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|")
for c, p, l, mi, ma, xa, mt, mt0, mt1, si, st, ci, ct in rows:
    print(f"| {c} | {p} | {l if l is not None else 'default'} | {mi:.2f} [{ma:.2f}–{xa:.2f}] | {mt:.2f} [{mt0:.2f}–{mt1:.2f}] | {mi/mt:.2f} | {si/1e6:.1f} | {st/1e6:.1f} | {si/st:.3f} | {ci:.2f} | {ct:.2f} |")
