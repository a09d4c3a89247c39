#!/usr/bin/env python3
"""Stripe removal on a large float32 stack: imfilter against algotom (issue 13).

    stripes.py [--data /tmp/imfilter-stripes] [--shape 450,2048,2048] [--reps 3]
               [--methods sorting,filtering,all] [--sample 64 | --full] [--imfilter BIN]
               [--large-pages N] [--json FILE]
    stripes.py --make DIR [--shape P,H,W]      # only generate the stack

Goals of the issue, on 450 x 2048 x 2048 float32 (7.5 GB): `remove-stripes --method sorting`
and `--method filtering` at least 20 x faster than algotom in a multiprocessing pool on all
cores; the whole `--method all` pass at most 3 x a plain read + write of the stack; private
memory bounded on a stack larger than RAM.

The data (made if absent, reused after): DATA/stripes_PxHxW.tif, float32, one uncompressed
multi-page TIFF whose pixels are one contiguous block (written page by page, never held whole).
Each projection i (angle pi * i / P) is the transmission exp(-p) of a smooth object on a
turntable: an off-axis cylinder with soft ends, spheres (denser and pores) and Gaussian blobs
orbiting the axis, so the projection moves with the angle; transmission 0.2 .. 1.0 (air above
and below the object), times 1 % multiplicative Gaussian noise, times per-column gains of
+-1..5 % on ~40 random columns (scaled with the width) and +-2..4 % on 3 bands 8..24 columns
wide (full stripes, every angle), with 2 dead columns (constant). Deterministic (--seed); every
page from its own generator seeded by (seed, page).

What is timed, each case a whole process launched from here (wall time: perf_counter around
fork/exec..wait4, under GNU /usr/bin/time as in peers.py):
  1. Read + write baselines: `cp` of the input file, and `imfilter arithmetic --mul 1`
     (one read, one write through imfilter's own I/O, float32 -> float32).
  2. `imfilter remove-stripes --method M` for each method, defaults, `--no-sync --progress none`,
     all cores.
  3. algotom in a Python loop: tifffile.memmap in, tifffile.memmap out, and for each sinogram y
     out[:, y, :] = method(np.float32(stack[:, y, :])) (algotom.prep.removal, defaults).
  4. The same in a multiprocessing Pool(os.cpu_count()) (start method: the platform's default),
     each worker opening its own memmaps, rows in chunks.
algotom takes minutes per method on the whole stack, so by default it runs on --sample N
sinograms evenly spaced over the height; the process reports the seconds of its loop (pool:
of pool.map, started once every worker has imported and opened its maps), and the table gives
    extrapolated = process wall - loop + loop * H / N,
i.e. start-up, imports and opening once, the per-sinogram work scaled linearly to all H rows,
and says so in every such cell. --full runs every sinogram (nothing extrapolated).

Every run: outputs deleted and the file system synced first (untimed), so no run pays for
another's write-back; nothing syncs inside a timed run (imfilter --no-sync, cp and Python do not
sync); the input is read just before every run, so runs are warm-cache when it fits in RAM (the
report gives the share of the input that `fincore` finds in the page cache before the runs).
Rounds are interleaved (every case once per round, --warmup untimed rounds first). Tables give
the median of --reps runs with [min-max] (algotom: --peer-reps, default --reps).

Memory: a thread samples /proc/PID/status every --sample-ms ms (peers.py's read_status) and
keeps the peak of RssAnon (private memory: heap, stacks) and of RssFile (mapped file pages,
which imfilter's maps of input and output make grow with the stack and which the kernel can
reclaim). For the pool the samples are summed over the process tree (pages a worker still
shares copy-on-write with its parent after fork count in both). --large-pages N adds a stack of
N x H x W (make it larger than RAM) and runs imfilter on it once, not warmed: its RssAnon next to
the main stack's shows whether private memory grows with the stack.

Markdown on stdout: the command line, the machine, the tables and the goals; progress on stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
from peers import TIME, read_status, remove  # noqa: E402  (the measuring helpers of compare.sh)

PY = sys.executable
METHODS = ("sorting", "filtering", "fitting", "large", "dead", "all")
GENERATOR_VERSION = 1  # bump when the data below change


# ----------------------------------------------------------------------------- data


class Scene:
    """What is the same on every page: the object, the column gains, the dead columns.

    Coordinates: u across the detector, -1..1 over the width; v down, -1..1 over the height;
    z along the beam at angle 0 (in units of the half-width)."""

    def __init__(self, height: int, width: int, seed: int):
        self.h, self.w = height, width
        self.seed = seed
        rng = np.random.default_rng([seed, 0])
        self.u = np.linspace(-1.0, 1.0, width, dtype=np.float32)
        self.v = np.linspace(-1.0, 1.0, height, dtype=np.float32)
        # Off-axis upright cylinder, soft top and bottom: (x, z, radius, mu), rows |v| < 0.8.
        self.cyl = (0.12, -0.05, 0.62, 0.9)
        t = np.clip((0.8 - np.abs(self.v)) / 0.1, 0.0, 1.0)
        self.rows = (t * t * (3 - 2 * t)).astype(np.float32)  # smoothstep
        # Spheres inside it: (orbit radius, phase, v, radius, mu): denser ones and pores.
        self.spheres = [(rng.uniform(0.05, 0.35), rng.uniform(0, 2 * np.pi), rng.uniform(-0.6, 0.6),
                         rng.uniform(0.06, 0.18), mu) for mu in (1.2, 0.8, -0.5, 1.5, -0.4, 0.6)]
        # Gaussian blobs (3D Gaussians project to 2D Gaussians): (orbit, phase, v, sigma, amplitude).
        self.blobs = [(rng.uniform(0.0, 0.4), rng.uniform(0, 2 * np.pi), rng.uniform(-0.6, 0.6),
                       rng.uniform(0.04, 0.12), rng.uniform(0.15, 0.35)) for _ in range(4)]
        # Per-column gains: full stripes on ~40 columns (at 2048 wide) and 3 wide bands.
        gain = np.ones(width, np.float32)
        n_cols = max(4, round(40 * width / 2048))
        cols = rng.choice(width, n_cols, replace=False)
        gain[cols] *= 1 + rng.choice([-1, 1], n_cols) * rng.uniform(0.01, 0.05, n_cols)
        for _ in range(3):
            band = max(3, round(rng.uniform(8, 24) * width / 2048))
            x0 = int(rng.integers(0, width - band))
            gain[x0:x0 + band] *= 1 + rng.choice([-1, 1]) * rng.uniform(0.02, 0.04)
        self.gain = gain
        self.dead = rng.choice(np.setdiff1d(np.arange(width), cols), 2, replace=False)
        self.dead_values = rng.uniform(0.3, 0.9, 2).astype(np.float32)

    def path(self, angle: float) -> np.ndarray:
        """Line integral of attenuation at this angle, H x W float32."""
        c, s = np.cos(angle), np.sin(angle)
        u, v = self.u, self.v
        x, z, r, mu = self.cyl
        uc = x * c + z * s
        chord = 2 * np.sqrt(np.clip(r * r - (u - uc) ** 2, 0, None))
        p = np.outer(self.rows, mu * chord).astype(np.float32)
        for orbit, phase, vc, sig, amp in self.blobs:
            uc = orbit * np.cos(angle + phase)
            p += np.outer(np.exp(-0.5 * ((v - vc) / sig) ** 2), amp * np.exp(-0.5 * ((u - uc) / sig) ** 2))
        for orbit, phase, vc, rad, mu in self.spheres:
            uc = orbit * np.cos(angle + phase)
            ys = np.flatnonzero(np.abs(v - vc) < rad)
            xs = np.flatnonzero(np.abs(u - uc) < rad)
            if len(ys) and len(xs):
                d2 = (v[ys, None] - vc) ** 2 + (u[None, xs] - uc) ** 2
                p[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1] += mu * 2 * np.sqrt(np.clip(rad * rad - d2, 0, None))
        return p

    def page(self, i: int, n: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 1, i])
        p = self.path(np.pi * i / n)
        np.clip(p, 0.0, np.log(5.0), out=p)  # transmission 0.2 .. 1.0
        img = np.exp(-p)
        noise = rng.standard_normal(img.shape, dtype=np.float32)
        noise *= np.float32(0.01)
        noise += np.float32(1)
        img *= noise
        img *= self.gain
        img[:, self.dead] = self.dead_values
        return img


def stack_path(data: Path, shape) -> Path:
    return data / ("stripes_%dx%dx%d.tif" % tuple(shape))


def make_stack(data: Path, shape, seed: int) -> Path:
    """Generate the stack unless a complete one with the same parameters is there."""
    import tifffile

    n, h, w = shape
    path = stack_path(data, shape)
    stamp = data / ("." + path.stem + ".stamp")
    want = json.dumps(dict(version=GENERATOR_VERSION, shape=list(shape), seed=seed))
    if path.exists() and stamp.exists() and stamp.read_text() == want:
        return path
    data.mkdir(parents=True, exist_ok=True)
    nbytes = n * h * w * 4
    free = shutil.disk_usage(data).free
    if free < nbytes + (64 << 20):
        raise SystemExit(f"stripes.py: {path} needs {nbytes / 1e9:.1f} GB, {free / 1e9:.1f} GB free")
    log(f"generating {path} ({n} x {h} x {w} float32, {nbytes / 1e9:.2f} GB)")
    scene = Scene(h, w, seed)
    t0 = time.perf_counter()

    def pages():
        for i in range(n):
            if i and i % 50 == 0:
                el = time.perf_counter() - t0
                log(f"  page {i}/{n}, {el:.0f} s, about {el / i * (n - i):.0f} s left")
            yield scene.page(i, n)

    tmp = path.with_name(path.name + ".part")
    stamp.unlink(missing_ok=True)
    with tifffile.TiffWriter(tmp, bigtiff=nbytes > 2**32 - 2**25) as tw:
        tw.write(pages(), shape=(n, h, w), dtype=np.float32, photometric="minisblack", contiguous=True)
    os.replace(tmp, path)
    stamp.write_text(want)
    log(f"  done in {time.perf_counter() - t0:.0f} s")
    return path


# ----------------------------------------------------------------------------- algotom peers


def algotom_method(name: str):
    import algotom.prep.removal as rem

    return {"sorting": rem.remove_stripe_based_sorting, "filtering": rem.remove_stripe_based_filtering,
            "fitting": rem.remove_stripe_based_fitting, "large": rem.remove_large_stripe,
            "dead": rem.remove_dead_stripe, "all": rem.remove_all_stripe}[name]


def sample_rows(height: int, sample: int) -> list[int]:
    """`sample` rows evenly spaced over the height (all rows when sample <= 0)."""
    if sample <= 0 or sample >= height:
        return list(range(height))
    return sorted({int(round(x)) for x in np.linspace(0, height - 1, sample)})


_W: dict = {}  # a pool worker's maps and method


def _worker_init(src, dst, method, barrier):
    import tifffile

    _W.update(src=tifffile.memmap(src, mode="r"), dst=tifffile.memmap(dst, mode="r+"),
              fn=algotom_method(method))
    barrier.wait(600)  # no worker takes a task before all have imported and mapped


def _worker_rows(rows):
    src, dst, fn = _W["src"], _W["dst"], _W["fn"]
    for y in rows:
        dst[:, y, :] = fn(np.float32(src[:, y, :]))
    return len(rows)


def _noop(_):
    return os.getpid()


def peer(mode: str, method: str, src: str, dst: str, sample: int, processes: int, timing: str) -> None:
    """One algotom run (a process of its own): loop or pool over the sampled sinograms."""
    import tifffile

    stack = tifffile.memmap(src, mode="r")
    n, h, w = stack.shape
    out = tifffile.memmap(dst, shape=(n, h, w), dtype=np.float32, photometric="minisblack")
    rows = sample_rows(h, sample)
    fn = algotom_method(method)
    if mode == "loop":
        t0 = time.perf_counter()
        for y in rows:
            out[:, y, :] = fn(np.float32(stack[:, y, :]))
        loop = time.perf_counter() - t0
    else:
        import multiprocessing

        chunk = max(1, min(16, len(rows) // (4 * processes)))
        chunks = [rows[k:k + chunk] for k in range(0, len(rows), chunk)]
        barrier = multiprocessing.Barrier(processes)
        with multiprocessing.Pool(processes, _worker_init, (src, dst, method, barrier)) as pool:
            pool.map(_noop, range(processes), chunksize=1)  # returns once every worker is ready
            t0 = time.perf_counter()
            done = sum(pool.map(_worker_rows, chunks, chunksize=1))
            loop = time.perf_counter() - t0
        assert done == len(rows)
    del out  # unmapped, not flushed: no msync, like every other case (the dirty pages are written back later)
    Path(timing).write_text(json.dumps(dict(rows=len(rows), height=h, loop_s=loop)))


# ----------------------------------------------------------------------------- measuring


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def descendants(pid: int) -> list[int]:
    """pid's children, grandchildren, ... (every thread's children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
                out += kids
                todo += kids
        except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
            pass
    return out


def warm(path: Path) -> float:
    """Read the file through (into the page cache); returns GB/s."""
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.read(64 << 20):
            pass
    return path.stat().st_size / 1e9 / (time.perf_counter() - t0)


def in_cache(path: Path) -> float | None:
    """Share of the file in the page cache (fincore), or None."""
    if not shutil.which("fincore"):
        return None
    r = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                       capture_output=True, text=True)
    try:
        return int(r.stdout.split()[0]) / path.stat().st_size
    except (ValueError, IndexError, ZeroDivisionError):
        return None


class Case:
    def __init__(self, key, label, argv, src, out, kind, method="", timing=None):
        self.key, self.label, self.argv, self.src, self.out = key, label, argv, src, out
        self.kind, self.method, self.timing = kind, method, timing
        self.runs: list[dict] = []
        self.error = ""


def run_once(c: Case, sample_ms: float, warm_input: bool) -> dict:
    remove([c.out])
    if c.timing:
        Path(c.timing).unlink(missing_ok=True)
    os.sync()
    res: dict = {}
    if warm_input:
        res["warm_gbps"] = warm(c.src)
    res["cached"] = in_cache(c.src)
    scratch = c.out.parent
    err_path, time_path = scratch / ".stripes_stderr.txt", scratch / ".stripes_time.txt"
    argv = ([TIME, "-o", str(time_path), "-f", "%M %U %S"] if TIME else []) + c.argv
    with open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        peaks: dict = {}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                tree = descendants(proc.pid) if TIME else [proc.pid] + descendants(proc.pid)
                if tree:
                    total: dict = {}
                    for i, p in enumerate(tree):
                        for k, v in read_status(p).items():
                            total[k] = total.get(k, 0) + v
                            if i == 0:
                                peaks["main_" + k] = max(peaks.get("main_" + k, 0), v)
                    for k, v in total.items():
                        peaks[k] = max(peaks.get(k, 0), v)
                stop.wait(sample_ms / 1000.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
    rc = os.waitstatus_to_exitcode(status)
    res.update(wall=wall, rc=rc, anon_kb=peaks.get("RssAnon"), file_kb=peaks.get("RssFile"),
               main_anon_kb=peaks.get("main_RssAnon"))
    if TIME and rc == 0:
        m, ut, st = time_path.read_text().split()[-3:]
        res.update(maxrss_kb=int(m), cpu_s=float(ut) + float(st))
    else:
        res.update(maxrss_kb=ru.ru_maxrss, cpu_s=ru.ru_utime + ru.ru_stime)
    if rc != 0:
        res["stderr"] = err_path.read_text(errors="replace")[-600:]
    elif c.timing:
        t = json.loads(Path(c.timing).read_text())
        res.update(t)
        res["measured"] = wall  # the process as it ran on the sample
        res["wall"] = wall - t["loop_s"] + t["loop_s"] * t["height"] / t["rows"]
    err_path.unlink(missing_ok=True)
    time_path.unlink(missing_ok=True)
    return res


def measure(cases: list[Case], rounds: dict, warmup: int, sample_ms: float, warm_input=True) -> None:
    """Interleaved rounds; rounds[kind] = timed runs of the cases of that kind."""
    total = warmup + max(rounds.values())
    for r in range(total):
        for c in cases:
            if c.error or r >= warmup + rounds[c.kind]:
                continue
            res = run_once(c, sample_ms, warm_input)
            tag = f"[{r + 1}/{warmup + rounds[c.kind]}{' warm-up' if r < warmup else ''}] {c.label}"
            if res["rc"] != 0:
                c.error = f"exit {res['rc']}: " + res.get("stderr", "").strip().replace("\n", " ")[-300:]
                log(f"  {tag}: FAILED {c.error}")
                continue
            if r >= warmup:
                c.runs.append(res)
            extra = (f" (measured {res['measured']:.2f} s on {res['rows']} of {res['height']} sinograms)"
                     if "measured" in res else "")
            log(f"  {tag}: {res['wall']:.2f} s{extra}, RssAnon {mib(res['anon_kb'])} MiB")
        for c in cases:
            remove([c.out])


# ----------------------------------------------------------------------------- reporting


def mib(kb) -> str:
    return "—" if kb is None else f"{kb / 1024:.0f}"


def fmt_s(v: float) -> str:
    return f"{v:.3f}" if v < 10 else f"{v:.2f}" if v < 100 else f"{v:.1f}"


def med(c: Case | None):
    return statistics.median(r["wall"] for r in c.runs) if c and c.runs else None


def cell(c: Case | None) -> str:
    if c is None:
        return "—"
    if not c.runs:
        return f"failed: {c.error}" if c.error else "—"
    w = [r["wall"] for r in c.runs]
    s = f"**{fmt_s(statistics.median(w))}** [{fmt_s(min(w))}–{fmt_s(max(w))}]"
    r0 = c.runs[0]
    if "rows" in r0 and r0["rows"] < r0["height"]:
        s += f" (extrapolated from {r0['rows']} of {r0['height']} sinograms)"
    return s


def peak(c: Case | None, key: str = "anon_kb") -> str:
    if c is None or not c.runs:
        return "—"
    vals = [r[key] for r in c.runs if r.get(key) is not None]
    return mib(max(vals)) if vals else "—"


def ratio(a, b, digits=1) -> str:
    return f"{a / b:.{digits}f}" if a and b else "—"


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for p in ("algotom", "numpy", "scipy", "tifffile"):
        try:
            out.append(f"{p} {version(p)}")
        except PackageNotFoundError:
            out.append(f"{p} ?")
    return ", ".join(out)


def machine(data: Path) -> str:
    mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    df = subprocess.run(["df", "--output=fstype", str(data)], capture_output=True, text=True).stdout.split()
    import multiprocessing

    return (f"{cpu_model()}, nproc {os.cpu_count()}, {mem / 2**20:.1f} GiB RAM, Linux {platform.release()}, "
            f"data on {df[-1] if len(df) > 1 else '?'}; Python {platform.python_version()} "
            f"(multiprocessing start method {multiprocessing.get_start_method()}), {versions()}")


# ----------------------------------------------------------------------------- main


def imfilter_cmd(a, args, src, out):
    return [a.imfilter, *args, "--no-sync", "--progress", "none", str(src), "-o", str(out)]


def peer_cmd(a, mode, method, src, out, timing):
    return [PY, str(Path(__file__).resolve()), "--peer", mode, "--method", method, "--src", str(src),
            "--dst", str(out), "--sample", str(0 if a.full else a.sample), "--processes", str(a.processes),
            "--timing", str(timing)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/tmp/imfilter-stripes"),
                    help="where the stack is, made if absent (default /tmp/imfilter-stripes)")
    ap.add_argument("--make", type=Path, metavar="DIR", help="only generate the stack into DIR, then exit")
    ap.add_argument("--shape", default="450,2048,2048", help="P,H,W: pages, height, width (default 450,2048,2048)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--imfilter", default=str(REPO / "target/release/imfilter"))
    ap.add_argument("--methods", default="sorting,filtering,all", help="of " + ",".join(METHODS))
    ap.add_argument("--reps", type=int, default=3, help="timed runs of each case (default 3)")
    ap.add_argument("--peer-reps", type=int, help="timed runs of each algotom case (default: --reps; 1 with --full)")
    ap.add_argument("--warmup", type=int, default=0, help="untimed rounds first (default 0)")
    ap.add_argument("--sample", type=int, default=64, help="algotom on N sinograms, extrapolated (default 64)")
    ap.add_argument("--full", action="store_true", help="algotom on every sinogram (nothing extrapolated)")
    ap.add_argument("--processes", type=int, default=os.cpu_count(), help="pool size (default: cpu count)")
    ap.add_argument("--no-loop", action="store_true", help="skip algotom in a plain loop")
    ap.add_argument("--no-pool", action="store_true", help="skip algotom in a pool")
    ap.add_argument("--large-pages", type=int, default=0,
                    help="also a stack of N x H x W, imfilter once on it, not warmed (make it larger than RAM: 1700 x 2048 x 2048 is 28.5 GB)")
    ap.add_argument("--out-dir", type=Path, help="outputs (default DATA/out; same file system as the data)")
    ap.add_argument("--sample-ms", type=float, default=10.0, help="/proc/PID/status every this many ms")
    ap.add_argument("--json", type=Path, help="write every run's raw numbers here")
    # one algotom run, launched by the benchmark itself
    ap.add_argument("--peer", choices=["loop", "pool"], help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    ap.add_argument("--src", help=argparse.SUPPRESS)
    ap.add_argument("--dst", help=argparse.SUPPRESS)
    ap.add_argument("--timing", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.peer:
        peer(a.peer, a.method, a.src, a.dst, a.sample, a.processes, a.timing)
        return 0
    shape = tuple(int(v) for v in a.shape.replace("x", ",").split(","))
    if len(shape) != 3 or min(shape) < 1:
        ap.error("--shape P,H,W")
    if a.make:
        make_stack(a.make, shape, a.seed)
        return 0
    methods = [m for m in a.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            ap.error(f"unknown method {m}")
    a.imfilter = str(Path(a.imfilter).resolve())
    if not os.access(a.imfilter, os.X_OK):
        ap.error(f"{a.imfilter} is not an executable")
    peer_reps = a.peer_reps or (1 if a.full else a.reps)

    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load0 = os.getloadavg()
    src = make_stack(a.data, shape, a.seed)
    out_dir = a.out_dir or a.data / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    n, h, w = shape
    version = subprocess.run([a.imfilter, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"Command: `{shlex.join([sys.executable, sys.argv[0], *sys.argv[1:]])}`\n")
    print(f"Machine: {machine(a.data)}. {version}. Started {started}, load average (1 min) {load0[0]:.2f}.\n",
          flush=True)

    o = lambda name: out_dir / name  # noqa: E731
    cases = [Case("cp", "cp (read + write, no sync)", ["cp", str(src), str(o("cp.tif"))], src, o("cp.tif"), "base"),
             Case("arith", "imfilter arithmetic --mul 1", imfilter_cmd(a, ["arithmetic", "--mul", "1"], src,
                                                                        o("arith.tif")), src, o("arith.tif"), "base")]
    for m in methods:
        cases.append(Case(f"imf:{m}", f"imfilter remove-stripes --method {m}",
                          imfilter_cmd(a, ["remove-stripes", "--method", m], src, o(f"imf_{m}.tif")), src,
                          o(f"imf_{m}.tif"), "imfilter", m))
        for mode in ("loop", "pool"):
            if (mode == "loop" and a.no_loop) or (mode == "pool" and a.no_pool):
                continue
            dst, timing = o(f"{mode}_{m}.tif"), o(f".{mode}_{m}.timing.json")
            label = f"algotom {m}, " + ("Python loop" if mode == "loop" else f"Pool({a.processes})")
            cases.append(Case(f"{mode}:{m}", label, peer_cmd(a, mode, m, src, dst, timing), src, dst, "peer", m,
                              timing))
    log(f"== {n} x {h} x {w} float32, {len(cases)} cases, {a.reps} rounds (algotom {peer_reps})")
    t_start = time.perf_counter()
    measure(cases, {"base": a.reps, "imfilter": a.reps, "peer": peer_reps}, a.warmup, a.sample_ms)
    by = {c.key: c for c in cases}

    # ------------------------------------------------------------------ tables
    arith, cp = med(by["arith"]), med(by["cp"])
    size_gb = src.stat().st_size / 1e9
    mem_gb = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")) / 2**20
    warm_runs = [r for c in cases for r in c.runs if r.get("warm_gbps")]
    cached = [r["cached"] for r in warm_runs if r.get("cached") is not None]
    rows_note = ("every sinogram (nothing extrapolated)" if a.full else
                 f"{len(sample_rows(h, a.sample))} of {h} sinograms, evenly spaced, extrapolated linearly "
                 "to all rows (start-up and imports counted once)")
    print(f"### Stripe removal, {n} × {h} × {w} float32 ({size_gb:.2f} GB), file → file\n")
    print(f"imfilter: all {os.cpu_count()} cores, `--no-sync --progress none`; algotom: {rows_note}. "
          f"Median of {a.reps} runs (algotom {peer_reps}) [min–max], whole processes, seconds.\n")
    print("| method | imfilter s | algotom loop s | algotom pool s | loop ÷ imfilter | pool ÷ imfilter | "
          "imfilter ÷ read+write (arithmetic --mul 1) | imfilter ÷ cp | imfilter peak RssAnon MiB |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for m in methods:
        imf, lp, pl = by.get(f"imf:{m}"), by.get(f"loop:{m}"), by.get(f"pool:{m}")
        print(f"| {m} | {cell(imf)} | {cell(lp)} | {cell(pl)} | {ratio(med(lp), med(imf))} | "
              f"{ratio(med(pl), med(imf))} | {ratio(med(imf), arith, 2)} | {ratio(med(imf), cp, 2)} | "
              f"{peak(imf)} |")
    print()
    print("| read + write baseline | s | peak RssAnon MiB | peak RssFile MiB |")
    print("|---|---|---:|---:|")
    for k in ("cp", "arith"):
        print(f"| {by[k].label} | {cell(by[k])} | {peak(by[k])} | {peak(by[k], 'file_kb')} |")
    print()
    print("All runs (algotom: \"measured\" is the process as it ran on the sample; RssAnon of the pool is "
          "summed over its processes):\n")
    print("| run | s, median [min–max] | measured s (sample) | user+sys s | peak RssAnon MiB | "
          "peak RssFile MiB | peak RSS MiB (ru_maxrss) |")
    print("|---|---|---|---:|---:|---:|---:|")
    for c in cases:
        meas = "—"
        if c.runs and "measured" in c.runs[0]:
            ms = [r["measured"] for r in c.runs]
            meas = f"{fmt_s(statistics.median(ms))} [{fmt_s(min(ms))}–{fmt_s(max(ms))}]"
        cpu = f"{statistics.median(r['cpu_s'] for r in c.runs):.1f}" if c.runs else "—"
        print(f"| {c.label} | {cell(c)} | {meas} | {cpu} | {peak(c)} | {peak(c, 'file_kb')} | "
              f"{peak(c, 'maxrss_kb')} |")
    print()
    if warm_runs:
        gbps = statistics.median(r["warm_gbps"] for r in warm_runs)
        share = f"; `fincore`: {100 * min(cached):.0f}–{100 * max(cached):.0f} % of it in the page cache " \
                "just before the runs" if cached else ""
        print(f"Cache: the {size_gb:.1f} GB input is read through just before every run, at a median "
              f"{gbps:.1f} GB/s{share}; RAM {mem_gb:.1f} GiB, so the runs are "
              f"**{'warm-cache' if (cached and min(cached) > 0.99) or (not cached and gbps > 2) else 'NOT all warm-cache'}** "
              "(input in memory; outputs are new page-cache pages written back after the run, not timed).\n")
    goals = []
    for m in ("sorting", "filtering"):
        if f"imf:{m}" in by and f"pool:{m}" in by:
            goals.append(f"pool ÷ imfilter, {m}: **{ratio(med(by[f'pool:{m}']), med(by[f'imf:{m}']))}** (target ≥ 20)")
    if "imf:all" in by:
        goals.append(f"`all` ÷ read+write (arithmetic --mul 1): **{ratio(med(by['imf:all']), arith, 2)}**, "
                     f"÷ cp: **{ratio(med(by['imf:all']), cp, 2)}** (target ≤ 3)")
    if goals:
        print("Goals: " + "; ".join(goals) + ".\n")

    # ------------------------------------------------------------------ larger than RAM
    large_cases = []
    if a.large_pages:
        for c in cases:
            remove([c.out])
        lshape = (a.large_pages, h, w)
        lsrc = make_stack(a.data, lshape, a.seed)
        lgb = lsrc.stat().st_size / 1e9
        free = shutil.disk_usage(out_dir).free
        if free < lsrc.stat().st_size * 1.05:
            print(f"Larger-than-RAM stack: skipped, its output needs {lgb:.1f} GB and {free / 1e9:.1f} GB are free.\n")
        else:
            large_cases = [Case(f"large:{m}", f"imfilter remove-stripes --method {m}",
                                imfilter_cmd(a, ["remove-stripes", "--method", m], lsrc, o(f"large_{m}.tif")), lsrc,
                                o(f"large_{m}.tif"), "imfilter", m) for m in methods if m in ("sorting", "all")]
            large_cases.append(Case("large:arith", "imfilter arithmetic --mul 1",
                                    imfilter_cmd(a, ["arithmetic", "--mul", "1"], lsrc, o("large_arith.tif")), lsrc,
                                    o("large_arith.tif"), "base"))
            log(f"== larger than RAM: {lshape[0]} x {h} x {w} ({lgb:.1f} GB), once each, not warmed")
            measure(large_cases, {"imfilter": 1, "base": 1}, 0, a.sample_ms, warm_input=False)
            print(f"### Private memory against stack size (RAM {mem_gb:.1f} GiB)\n")
            bigger = "larger" if lgb > mem_gb * 2**30 / 1e9 else "**not** larger"
            lc = [r["cached"] for c in large_cases for r in c.runs if r.get("cached") is not None]
            lshare = f" ({100 * min(lc):.0f}–{100 * max(lc):.0f} % of it in the page cache as runs began)" if lc else ""
            print(f"The {lshape[0]}-page stack ({lgb:.1f} GB) is {bigger} than RAM ({mem_gb * 2**30 / 1e9:.1f} GB): "
                  f"each run once, the input not read beforehand{lshare}; the other rows are the runs above.\n")
            print("| stack | run | s | peak RssAnon MiB | peak RssFile MiB | peak RSS MiB (ru_maxrss) |")
            print("|---|---|---|---:|---:|---:|")
            for c in [by[k] for k in by if k.startswith("imf:") or k == "arith"]:
                print(f"| {n} pages, {size_gb:.1f} GB | {c.label} | {cell(c)} | {peak(c)} | {peak(c, 'file_kb')} | "
                      f"{peak(c, 'maxrss_kb')} |")
            for c in large_cases:
                print(f"| {lshape[0]} pages, {lgb:.1f} GB | {c.label} | {cell(c)} | {peak(c)} | "
                      f"{peak(c, 'file_kb')} | {peak(c, 'maxrss_kb')} |")
            print()

    load1 = os.getloadavg()
    print(f"Finished after {time.perf_counter() - t_start:.0f} s of measuring; load average (1 min) {load1[0]:.2f} "
          f"({os.cpu_count()} CPUs; well above what the benchmark runs means other work shared the machine).")
    if a.json:
        a.json.write_text(json.dumps(dict(
            argv=sys.argv, started=started, machine=machine(a.data), version=version, shape=shape,
            cases=[dict(key=c.key, label=c.label, argv=c.argv, error=c.error, runs=c.runs)
                   for c in cases + large_cases]), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
