#!/usr/bin/env python3
"""A preprocessing chain, file -> file, three ways side by side (issue 12's speed targets).

    chain.py DATA_DIR [--imfilter target/release/imfilter] [--reps 3] [--numpy-reps 1]
             [--out-dir /tmp/imbench/chain]

DATA_DIR holds stack.tif, flat.tif and dark.tif from make_stack.py (64 x 2048 x 2048 uint16).
The chain: crop -> background-correct -> remove-outliers 3 -> median 3 -> minus-log.

1. `imfilter run` with the five steps: one read, one write.
2. Each step alone through imfilter, on the input it has in the chain (made once beforehand):
   the chain's target is at most 1.3 x the slowest of these.
3. The five steps as separate imfilter commands through intermediate files (the sum): the
   chain's target is at least 2 x faster.
4. The same chain as a numpy + scipy script (tifffile in, numpy and scipy.ndimage per image,
   tifffile out): the chain's target is at least 10 x faster.
Every imfilter run uses --no-sync, as no Python script syncs either; the dirty pages of one
run are synced (untimed) before the next starts, so no run pays for another's writeback. Wall
times of whole processes; the median of --reps runs (numpy: --numpy-reps), with min and max.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROI = (100, 100, 1948, 1948)
OUTLIERS = "remove-outliers --size 3 --threshold 0.05 --both"


def steps(flat, dark):
    return [
        "crop --roi " + ",".join(map(str, ROI)),
        f"background-correct --flat {flat} --dark {dark}",
        OUTLIERS,
        "median --size 3",
        "minus-log",
    ]


def timed(cmd, reps):
    times = []
    for _ in range(reps):
        # Dirty pages of the run before are written back first, not during this one.
        os.sync()
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        times.append(time.perf_counter() - start)
    return times


def numpy_chain(data, out):
    """The chain as a user scripts it with numpy and scipy (MantidImaging's rules)."""
    import numpy as np
    import tifffile
    from scipy import ndimage

    left, top, right, bottom = ROI
    stack = tifffile.imread(f"{data}/stack.tif")[:, top:bottom, left:right]
    flat = tifffile.imread(f"{data}/flat.tif").mean(axis=0).astype(np.float32)[top:bottom, left:right]
    dark = tifffile.imread(f"{data}/dark.tif").mean(axis=0).astype(np.float32)[top:bottom, left:right]
    norm = np.maximum(flat - dark, np.float32(1e-6))
    result = np.empty(stack.shape, np.float32)
    for i, image in enumerate(stack):
        corrected = (image.astype(np.float32) - dark) / norm
        median = ndimage.median_filter(corrected, size=3)
        clean = np.where(np.abs(corrected - median) > 0.05, median, corrected)
        smooth = ndimage.median_filter(clean, size=3)
        result[i] = -np.log(np.maximum(smooth, np.float32(1e-6)))
    tifffile.imwrite(out, result, photometric="minisblack")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data")
    p.add_argument("--imfilter", default="target/release/imfilter")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--numpy-reps", type=int, default=1)
    p.add_argument("--out-dir", default="/tmp/imbench/chain")
    p.add_argument("--numpy-only", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.numpy_only:
        numpy_chain(a.data, os.path.join(a.out_dir, "numpy.tif"))
        return
    os.makedirs(a.out_dir, exist_ok=True)
    imf = [a.imfilter, "-q"]
    out = lambda name: os.path.join(a.out_dir, name)  # noqa: E731
    # In a chain, flats and darks follow the crop before background correction; run as
    # separate commands, they must be cropped by hand (made once here, not timed).
    chain = steps(f"{a.data}/flat.tif", f"{a.data}/dark.tif")
    for ref in ("flat", "dark"):
        subprocess.run(imf + chain[0].split() + [f"{a.data}/{ref}.tif", "-o", out(f"{ref}_cropped.tif"), "--force"], check=True)
    by_hand = steps(out("flat_cropped.tif"), out("dark_cropped.tif"))

    rows = []
    run_cmd = imf + ["run"] + [w for s in chain for w in ("--step", s)]
    run_cmd += [f"{a.data}/stack.tif", "-o", out("chain.tif"), "--force", "--no-sync"]
    rows.append(("imfilter run (5 steps, one pass)", timed(run_cmd, a.reps)))

    # Inputs of each step as the chain has them, made once (not timed).
    inputs = [f"{a.data}/stack.tif"]
    for k, step in enumerate(by_hand[:-1]):
        subprocess.run(imf + step.split() + [inputs[-1], "-o", out(f"in{k + 1}.tif"), "--force", "--no-sync"], check=True)
        inputs.append(out(f"in{k + 1}.tif"))
    alone = []
    for k, step in enumerate(by_hand):
        cmd = imf + step.split() + [inputs[k], "-o", out(f"alone{k}.tif"), "--force", "--no-sync"]
        t = timed(cmd, a.reps)
        alone.append(statistics.median(t))
        rows.append((f"  step alone: {step.split()[0]}", t))

    def separate():
        for k, step in enumerate(by_hand):
            src = f"{a.data}/stack.tif" if k == 0 else out(f"sep{k - 1}.tif")
            subprocess.run(imf + step.split() + [src, "-o", out(f"sep{k}.tif"), "--force", "--no-sync"], check=True)

    sep = []
    for _ in range(a.reps):
        os.sync()
        start = time.perf_counter()
        separate()
        sep.append(time.perf_counter() - start)
    rows.append(("imfilter, 5 separate commands through files", sep))

    np_cmd = [sys.executable, __file__, a.data, "--out-dir", a.out_dir, "--numpy-only"]
    rows.append(("numpy + scipy script (tifffile in and out)", timed(np_cmd, a.numpy_reps)))

    print("| run | median s [min–max] | n |")
    print("|---|---|---:|")
    for label, t in rows:
        print(f"| {label} | **{statistics.median(t):.3f}** [{min(t):.3f}–{max(t):.3f}] | {len(t)} |")
    chain_s = statistics.median(rows[0][1])
    print()
    print(f"chain ÷ slowest step alone = **{chain_s / max(alone):.2f}** (target ≤ 1.3); "
          f"separate commands ÷ chain = **{statistics.median(sep) / chain_s:.2f}** (target ≥ 2); "
          f"numpy + scipy ÷ chain = **{statistics.median(rows[-1][1]) / chain_s:.1f}** (target ≥ 10)")


if __name__ == "__main__":
    main()
