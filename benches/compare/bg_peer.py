#!/usr/bin/env python3
"""Background correction file -> file the way users script it today; timed as a whole process
by peers.py, next to `imfilter background-correct` doing the same work.

    bg_peer.py IMPL STACK FLAT DARK OUT [--threads N]

Every IMPL computes out = (I - D) / max(F - D, 1e-6) in float32, with F and D the per-pixel
means of the flat and dark stacks, and writes an uncompressed float32 multi-page TIFF.
None of them fsyncs (what users' scripts do): their output is in the page cache when they exit.

IMPL
  imports          the fixed cost only: interpreter start + importing numpy and tifffile
  tifffile+numpy   read the whole stack, one numpy expression, tifffile.imwrite
  tifffile+numexpr read the whole stack, numexpr into a preallocated array (N threads), imwrite
  memmap+numexpr   tifffile.memmap in and out, numexpr per image (N threads), no flush
  pyvips           libvips streaming pipeline (VIPS_CONCURRENCY=N, set by the caller)
"""
import argparse
import sys

import numpy as np
import tifffile


def references(flat_path, dark_path):
    flat = tifffile.imread(flat_path).mean(axis=0).astype(np.float32)
    dark = tifffile.imread(dark_path).mean(axis=0).astype(np.float32)
    return dark, np.maximum(flat - dark, np.float32(1e-6))


def tifffile_numpy(a):
    proj = tifffile.imread(a.stack)
    dark, norm = references(a.flat, a.dark)
    out = (proj.astype(np.float32) - dark) / norm
    tifffile.imwrite(a.out, out, photometric="minisblack")


def tifffile_numexpr(a):
    import numexpr as ne

    ne.set_num_threads(a.threads)
    proj = tifffile.imread(a.stack)
    dark, norm = references(a.flat, a.dark)
    out = np.empty(proj.shape, np.float32)
    ne.evaluate("(I - D) / N", local_dict={"I": proj, "D": dark, "N": norm}, out=out, casting="unsafe")
    tifffile.imwrite(a.out, out, photometric="minisblack")


def memmap_numexpr(a):
    import numexpr as ne

    ne.set_num_threads(a.threads)
    proj = tifffile.memmap(a.stack, mode="r")
    dark, norm = references(a.flat, a.dark)
    out = tifffile.memmap(a.out, shape=proj.shape, dtype=np.float32, photometric="minisblack")
    for i in range(proj.shape[0]):
        ne.evaluate("(I - D) / N", local_dict={"I": proj[i], "D": dark, "N": norm}, out=out[i],
                    casting="unsafe")
    del out  # no flush(): that would be msync, a disk write the other scripts don't do


def vips(a):
    import pyvips

    stack = pyvips.Image.new_from_file(a.stack, n=-1, access="sequential")
    page_h = stack.get("page-height")
    pages = stack.height // page_h
    dark, norm = references(a.flat, a.dark)
    dark = np.ascontiguousarray(dark)
    norm = np.ascontiguousarray(norm)
    as_vips = lambda arr: pyvips.Image.new_from_memory(arr.data, arr.shape[1], arr.shape[0], 1, "float")
    result = (stack.cast("float") - as_vips(dark).replicate(1, pages)) / as_vips(norm).replicate(1, pages)
    result = result.copy()
    result.set_type(pyvips.GValue.gint_type, "page-height", page_h)
    result.tiffsave(a.out)


IMPLS = {
    "imports": lambda a: None,
    "tifffile+numpy": tifffile_numpy,
    "tifffile+numexpr": tifffile_numexpr,
    "memmap+numexpr": memmap_numexpr,
    "pyvips": vips,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("impl", choices=sorted(IMPLS))
    ap.add_argument("stack")
    ap.add_argument("flat")
    ap.add_argument("dark")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    np.seterr(all="ignore")
    IMPLS[a.impl](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
