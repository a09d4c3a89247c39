#!/usr/bin/env python3
"""Deterministic synthetic tomography data for imfilter's side-by-side benchmark (compare.sh).

    make_stack.py OUTDIR [-n 64] [--shape 2048x2048] [--nflat 8] [--ndark 8]
                  [--layout file|dir|both] [--dtype uint16|float32] [--name stack]
                  [--cycle K] [--no-refs] [--seed S]

Writes into OUTDIR:
    NAME.tif            N projections, one uncompressed multi-page TIFF     (--layout file|both)
    NAME/img_NNNNNN.tif the same projections, one file per image             (--layout dir|both)
    flat.tif, dark.tif  open-beam and dark images, uint16 multi-page         (unless --no-refs)

The pixel data of each multi-page file is one contiguous block (tifffile writes it so when the
whole stack goes in one call), so imfilter can map its input in place, as it would a detector's.

The model, per projection i of N (angle a = pi * i / N):
    counts = offset(x, y) + beam(x, y) * drift(i) * exp(-p_i(x, y)) + noise
  * beam: a wide elliptical Gaussian with a faint horizontal ripple (like a monochromator);
  * offset: ~100 counts dark level with fixed per-column offsets (readout pattern);
  * p_i: line integral through a sample on a turntable: an upright elliptic cylinder and a few
    ellipsoidal inclusions (denser or pores) that orbit the axis, projected analytically;
  * noise: shot noise as a normal of variance `counts` (the Gaussian limit of Poisson, exact
    enough at these counts and ~10x faster to draw) plus read noise;
  * defects: a few stuck-dead pixels (0) in every image and 0.01 % random saturated pixels (65535).
Every image comes from its own generator seeded by (seed, kind, index), so any page can be
regenerated alone and pages stream to disk one at a time (memory: a few images).

--cycle K makes page i a copy of page i mod K (only K distinct images are computed): cheap
large stacks for the memory-scaling measurement, where contents do not matter.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import tifffile

KIND_PROJECTION, KIND_FLAT, KIND_DARK, KIND_STATIC = 11, 12, 13, 10


class Scene:
    """Everything that is the same in every image: geometry, beam, readout pattern, defects."""

    def __init__(self, height: int, width: int, seed: int):
        self.h, self.w, self.seed = height, width, seed
        rng = np.random.default_rng([seed, KIND_STATIC])
        yy = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
        xx = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
        ripple = 1.0 + 0.015 * np.cos(2.0 * np.pi * 23.0 * yy)
        self.beam = (18000.0 * np.exp(-(xx / 1.3) ** 2 - ((yy - 0.1) / 1.5) ** 2) * ripple).astype(np.float32)
        columns = rng.normal(0.0, 1.5, size=(1, width)).astype(np.float32)
        self.offset = np.ascontiguousarray(
            np.broadcast_to(100.0 + columns + 2.0 * yy, (height, width)), dtype=np.float32)
        # sample: elliptic cylinder (semi-axes in units of the half-width), rows |y| < 0.8
        self.cyl = (0.55, 0.40, 1.2)  # semi-axis along the beam at angle 0, across, mu
        self.rows = (np.abs(yy) < 0.8).astype(np.float32)
        self.inclusions = [
            # (radius from the axis, phase, height y, radius, relative mu)
            (rng.uniform(0.0, 0.3), rng.uniform(0.0, 2 * np.pi), rng.uniform(-0.6, 0.6),
             rng.uniform(0.03, 0.1), rng.choice([-0.8, 1.0, 2.5]))
            for _ in range(8)
        ]
        count = max(4, (height * width) // 250_000)
        self.dead = (rng.integers(0, height, count), rng.integers(0, width, count))
        self.yy, self.xx = yy, xx

    def path(self, angle: float) -> np.ndarray:
        """Line integral of attenuation through the sample at this turntable angle."""
        a, b, mu = self.cyl
        c, s = np.cos(angle), np.sin(angle)
        # chord of a rotated ellipse along the beam, at detector coordinate x
        half_width2 = (a * s) ** 2 + (b * c) ** 2
        chord = 2.0 * a * b * np.sqrt(np.clip(half_width2 - self.xx ** 2, 0.0, None)) / half_width2
        p = (mu * chord) * self.rows
        for r, phase, y0, rad, rel in self.inclusions:
            x0 = r * np.cos(angle + phase)
            y_lo, y_hi = self._span(y0 - rad, y0 + rad, self.h)
            x_lo, x_hi = self._span(x0 - rad, x0 + rad, self.w)
            if y_lo >= y_hi or x_lo >= x_hi:
                continue
            dy = self.yy[y_lo:y_hi] - y0
            dx = self.xx[:, x_lo:x_hi] - x0
            p[y_lo:y_hi, x_lo:x_hi] += rel * mu * 2.0 * np.sqrt(np.clip(rad ** 2 - dx ** 2 - dy ** 2, 0.0, None))
        return p

    @staticmethod
    def _span(lo: float, hi: float, n: int) -> tuple[int, int]:
        to_index = lambda v: int(np.floor((v + 1.0) / 2.0 * (n - 1)))
        return max(to_index(lo) - 1, 0), min(to_index(hi) + 2, n)

    def _finish(self, mean: np.ndarray, rng: np.random.Generator, hot: bool) -> np.ndarray:
        noise = rng.standard_normal(mean.shape, dtype=np.float32)
        noise *= np.sqrt(mean + 9.0)  # shot noise + 3 counts read noise, in quadrature
        mean += noise
        np.rint(mean, out=mean)
        np.clip(mean, 0.0, 65535.0, out=mean)
        img = mean.astype(np.uint16)
        if hot:
            n_hot = max(1, img.size // 10_000)
            idx = rng.integers(0, img.size, n_hot)
            img.reshape(-1)[idx] = 65535
        img[self.dead] = 0
        return img

    def projection(self, i: int, n: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, KIND_PROJECTION, i])
        angle = np.pi * i / max(n, 1)
        drift = np.float32(1.0 + 0.008 * np.cos(0.29 * i))
        mean = self.beam * drift * np.exp(-self.path(angle)) + self.offset
        return self._finish(mean.astype(np.float32), rng, hot=True)

    def flat(self, i: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, KIND_FLAT, i])
        return self._finish(self.beam + self.offset, rng, hot=False)

    def dark(self, i: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, KIND_DARK, i])
        return self._finish(self.offset.copy(), rng, hot=False)


def write_multipage(path: str, pages, n: int, shape: tuple[int, int], dtype, compression=None) -> None:
    tmp = path + ".part"
    with tifffile.TiffWriter(tmp, bigtiff=n * shape[0] * shape[1] * np.dtype(dtype).itemsize > 2**32 - 2**25) as tw:
        tw.write(pages, shape=(n, *shape), dtype=dtype, photometric="minisblack", compression=compression)
    os.replace(tmp, path)


def write_directory(path: str, pages) -> None:
    tmp = path + ".part"
    os.makedirs(tmp, exist_ok=True)
    for i, page in enumerate(pages):
        tifffile.imwrite(os.path.join(tmp, f"img_{i:06d}.tif"), page, photometric="minisblack")
    if os.path.isdir(path):
        raise SystemExit(f"{path}: already exists")
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("-n", type=int, default=64, help="projections (default 64)")
    ap.add_argument("--shape", default="2048x2048", help="HEIGHTxWIDTH (default 2048x2048)")
    ap.add_argument("--nflat", type=int, default=8)
    ap.add_argument("--ndark", type=int, default=8)
    ap.add_argument("--layout", choices=["file", "dir", "both"], default="file")
    ap.add_argument("--dtype", choices=["uint16", "float32"], default="uint16")
    ap.add_argument("--name", default="stack", help="base name of the stack (default stack)")
    ap.add_argument("--cycle", type=int, default=0, help="compute only K images, repeat them")
    ap.add_argument("--no-refs", action="store_true", help="do not write flat.tif and dark.tif")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--compression", choices=["none", "deflate", "lzw"], default="none",
                    help="of the stack (LZW needs imagecodecs); flats and darks stay uncompressed")
    a = ap.parse_args(argv)

    h, w = (int(v) for v in a.shape.lower().split("x"))
    t0 = time.perf_counter()
    os.makedirs(a.outdir, exist_ok=True)
    scene = Scene(h, w, a.seed)
    dtype = np.dtype(a.dtype)
    cache: dict[int, np.ndarray] = {}

    def projections():
        for i in range(a.n):
            k = i % a.cycle if a.cycle else i
            img = cache.get(k)
            if img is None:
                img = scene.projection(k, a.cycle or a.n).astype(dtype, copy=False)
                if a.cycle:
                    cache[k] = img
            yield img

    if a.layout in ("file", "both"):
        compression = {"none": None, "deflate": "zlib", "lzw": "lzw"}[a.compression]
        write_multipage(os.path.join(a.outdir, a.name + ".tif"), projections(), a.n, (h, w), dtype, compression)
    if a.layout in ("dir", "both"):
        write_directory(os.path.join(a.outdir, a.name), projections())
    if not a.no_refs:
        write_multipage(os.path.join(a.outdir, "flat.tif"), (scene.flat(i) for i in range(a.nflat)),
                        a.nflat, (h, w), np.uint16)
        write_multipage(os.path.join(a.outdir, "dark.tif"), (scene.dark(i) for i in range(a.ndark)),
                        a.ndark, (h, w), np.uint16)
    print(f"make_stack: {a.outdir}/{a.name}: {a.n} x {h} x {w} {a.dtype} ({a.layout}) "
          f"in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
