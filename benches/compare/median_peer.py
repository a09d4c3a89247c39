#!/usr/bin/env python3
"""Median filter file -> file with the peers users reach for; timed as a whole process by
peers.py, next to `imfilter median` doing the same work.

    median_peer.py IMPL SIZE STACK OUT [--threads N]

Reads STACK (uncompressed multi-page TIFF, uint16 or float32) with tifffile.memmap, filters every
image with a SIZE x SIZE window into a tifffile.memmap output of the same type, no flush.

IMPL
  cv2     cv2.medianBlur per image; OpenCV's own threads (cv2.setNumThreads(N)).
          For uint16 and float32 OpenCV only has sizes 3 and 5 (exit 3 otherwise).
          Borders: replicate (scipy's 'nearest'); for 3x3 that equals 'reflect'.
  cv2-pool  the same, but N images at a time in a thread pool and one OpenCV thread each (OpenCV
          releases the GIL): how a user would scale it over cores if OpenCV's own threads do not.
  imports only start Python and import numpy, tifffile, cv2 and scipy.ndimage: the fixed cost
  scipy   scipy.ndimage.median_filter(size=SIZE, mode='reflect') per image, N images at a time
          in a thread pool (scipy releases the GIL in its filters).
"""
import argparse
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tifffile


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("impl", choices=["cv2", "cv2-pool", "scipy", "imports"])
    ap.add_argument("size", type=int)
    ap.add_argument("stack")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    if a.impl == "imports":  # the fixed cost: interpreter + numpy, tifffile, cv2, scipy.ndimage
        import cv2  # noqa: F401
        from scipy import ndimage  # noqa: F401
        return 0
    src = tifffile.memmap(a.stack, mode="r")
    if a.impl in ("cv2", "cv2-pool"):
        import cv2

        if a.size > 5 and src.dtype != np.uint8:
            print(f"cv2.medianBlur: size {a.size} needs uint8 ({src.dtype} only has 3 and 5)", file=sys.stderr)
            return 3
        pooled = a.impl == "cv2-pool"
        cv2.setNumThreads(1 if pooled else a.threads)
        out = tifffile.memmap(a.out, shape=src.shape, dtype=src.dtype, photometric="minisblack")

        def one(i):
            cv2.medianBlur(np.asarray(src[i]), a.size, dst=out[i])

        with ThreadPoolExecutor(a.threads if pooled else 1) as pool:
            list(pool.map(one, range(src.shape[0])))
    else:
        from scipy import ndimage

        out = tifffile.memmap(a.out, shape=src.shape, dtype=src.dtype, photometric="minisblack")

        def one(i):
            ndimage.median_filter(src[i], size=a.size, mode="reflect", output=out[i])

        with ThreadPoolExecutor(a.threads) as pool:
            list(pool.map(one, range(src.shape[0])))
    del out  # no flush (msync), as users' scripts
    return 0


if __name__ == "__main__":
    sys.exit(main())
