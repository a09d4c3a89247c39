#!/usr/bin/env python3
"""Runs imfilter and its peers on the same work, in one run, and prints markdown tables.
Called by compare.sh (which installs the peers, makes the data and builds imfilter); it can be
run alone on data that compare.sh left in its scratch directory:

    peers.py --data DIR --imfilter BIN [--reps 5] [--sections bg,dir,decode,mem,median,scale] [--json FILE]

How every number is taken
  * Each case is a whole process (startup, reading, computing, writing, exit), launched from
    here. Wall time is perf_counter around fork/exec..wait4. Rounds are interleaved: one warm-up
    round of every case (discarded), then --reps rounds, each running every case once, so slow
    phases of a shared machine hit every tool alike. Tables give the median and min-max.
  * Inputs are read once before every run, so they are in the page cache; outputs are deleted
    and the file system synced (untimed) before every run, so no tool pays for another's
    write-back. Outputs go to the scratch directory (same file system as the inputs).
  * Every command runs under GNU /usr/bin/time, whose "Maximum resident set size" (ru_maxrss),
    page faults and user/sys times are reported (its 1-2 ms of start-up are in every wall time).
    Peak RSS counts file pages mapped into the process (imfilter maps its input and its output),
    so a thread also samples /proc/PID/status every few ms and keeps the peaks of RssAnon
    (private memory: heap, stacks) and RssFile (mapped file pages).
  * Mpixel/s is output pixels / median wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable


# ----------------------------------------------------------------------------- measuring


@dataclass
class Case:
    section: str
    work: str  # the row group: what is computed
    tool: str
    argv: list[str]
    inputs: list[Path]
    outputs: list[Path]
    pixels: int
    threads: str = ""
    env: dict = field(default_factory=dict)
    ref: bool = False  # the row other rows of its work are compared with
    note: str = ""
    runs: list = field(default_factory=list)
    error: str = ""


def read_status(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    out[key] = int(val.split()[0])  # kB
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def warm(paths: list[Path]) -> None:
    for p in paths:
        files = sorted(p.iterdir()) if p.is_dir() else [p]
        for f in files:
            with open(f, "rb", buffering=0) as fh:
                while fh.read(64 << 20):
                    pass


def sidecar(p: Path) -> Path:
    """imfilter's history sidecar beside an output: NAME.tif -> NAME.json, DIR -> DIR.json."""
    name = p.name
    for ext in (".tiff", ".tif"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return p.with_name(name + ".json")


def remove(paths: list[Path]) -> None:
    paths = list(paths) + [sidecar(p) for p in paths]
    for p in paths:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    # imfilter's temporaries of an interrupted earlier run
    for p in paths:
        for t in p.parent.glob(f".{p.name}.imfilter-*"):
            shutil.rmtree(t) if t.is_dir() else t.unlink()


TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def child_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
        return int(kids[0]) if kids else None
    except (FileNotFoundError, ProcessLookupError):
        return None


def run_once(case: Case, sample_ms: float) -> dict:
    remove(case.outputs)
    os.sync()
    warm(case.inputs)
    env = dict(os.environ, **case.env)
    scratch = Path(case.outputs[0]).parent
    err_path, time_path = scratch / ".stderr.txt", scratch / ".time.txt"
    # GNU time is the parent of the measured command: its ru_maxrss is the command's own peak.
    # (A child forked from this Python process would report this process's RSS as its peak.)
    argv = ([TIME, "-o", str(time_path), "-f", "%M %R %F %U %S %w %c"] if TIME else []) + case.argv
    with open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
        peaks: dict = {}
        stop = threading.Event()

        def sample():
            target = None if TIME else proc.pid
            while not stop.is_set():
                if target is None:
                    target = child_of(proc.pid)
                if target is not None:
                    for k, v in read_status(target).items():
                        peaks[k] = max(peaks.get(k, 0), v)
                stop.wait(sample_ms / 1000.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
    rc = os.waitstatus_to_exitcode(status)
    result = dict(wall=wall, rc=rc, peak_anon_kb=peaks.get("RssAnon"), peak_file_kb=peaks.get("RssFile"),
                  peak_shmem_kb=peaks.get("RssShmem"))
    if TIME and rc == 0:
        m, minflt, majflt, ut, st, vcs, ivcs = time_path.read_text().split()[-7:]
        result.update(maxrss_kb=int(m), minflt=int(minflt), majflt=int(majflt), utime=float(ut), stime=float(st),
                      nvcsw=int(vcs), nivcsw=int(ivcs))
    else:
        result.update(maxrss_kb=ru.ru_maxrss, minflt=ru.ru_minflt, majflt=ru.ru_majflt, utime=ru.ru_utime,
                      stime=ru.ru_stime, nvcsw=ru.ru_nvcsw, nivcsw=ru.ru_nivcsw)
    if rc != 0:
        result["stderr"] = err_path.read_text(errors="replace")[-600:]
    err_path.unlink(missing_ok=True)
    time_path.unlink(missing_ok=True)
    return result


def measure(cases: list[Case], reps: int, warmup: int = 1, sample_ms: float = 10.0) -> None:
    """Interleaved rounds: warm-up round(s), then `reps` rounds of every case once."""
    total = warmup + reps
    for r in range(total):
        for c in cases:
            if c.error:
                continue
            res = run_once(c, sample_ms)
            if res["rc"] != 0:
                c.error = f"exit {res['rc']}: " + res.get("stderr", "").strip().replace("\n", " ")[-300:]
                log(f"  {c.work} | {c.tool} -j{c.threads}: FAILED {c.error}")
                continue
            if r >= warmup:
                c.runs.append(res)
            log(f"  [{r + 1}/{total}{' warm-up' if r < warmup else ''}] {c.work} | {c.tool} "
                f"-j{c.threads}: {res['wall']:.3f} s")
        for c in cases:  # leave no output behind between rounds
            remove(c.outputs)


# ----------------------------------------------------------------------------- reporting


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fmt_s(v: float) -> str:
    return f"{v:.3f}" if v < 10 else f"{v:.2f}"


def fmt_rate(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 1 else f"{v:.2f}"


def mib(kb) -> str:
    return "" if kb is None else f"{kb / 1024:.0f}"


def summary(c: Case) -> dict | None:
    if not c.runs:
        return None
    walls = [r["wall"] for r in c.runs]
    med = statistics.median(walls)
    mid = min(c.runs, key=lambda r: abs(r["wall"] - med))  # the run closest to the median
    return dict(median=med, lo=min(walls), hi=max(walls), n=len(walls), rate=c.pixels / med / 1e6 if c.pixels else None,
                maxrss_kb=max(r["maxrss_kb"] for r in c.runs),
                anon_kb=max((r["peak_anon_kb"] or 0) for r in c.runs) or None,
                file_kb=max((r["peak_file_kb"] or 0) for r in c.runs) or None,
                minflt=mid["minflt"], majflt=mid["majflt"], utime=mid["utime"], stime=mid["stime"])


def table(cases: list[Case], ratio_label: str = "time ÷ imfilter") -> str:
    head = ("| work | tool | threads | median s [min–max] | Mpixel/s | " + ratio_label +
            " | peak RSS MiB | peak RssAnon MiB | user+sys s | minor faults |")
    lines = [head, "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    refs = {}
    for c in cases:
        s = summary(c)
        if c.ref and s:
            refs[c.work] = s["median"]
    for c in cases:
        s = summary(c)
        tool = c.tool + (f" ({c.note})" if c.note else "")
        if s is None:
            why = c.error or "not run"
            lines.append(f"| {c.work} | {tool} | {c.threads} | — | — | — | | | | {why} |")
            continue
        ref = refs.get(c.work)
        ratio = "**1.00** (ref)" if c.ref else (f"{s['median'] / ref:.2f}" if ref else "—")
        lines.append(
            f"| {c.work} | {tool} | {c.threads} | **{fmt_s(s['median'])}** [{fmt_s(s['lo'])}–{fmt_s(s['hi'])}]"
            f" | {fmt_rate(s['rate']) if s['rate'] else '—'} | {ratio} | {mib(s['maxrss_kb'])} | {mib(s['anon_kb'])} | "
            f"{s['utime'] + s['stime']:.2f} | {s['minflt']} |")
    return "\n".join(lines)


def ratio_of(cases, tool_a, tool_b, work=None):
    """median(a) / median(b) for the first cases named so, or None."""
    def med(tool):
        for c in cases:
            if c.tool == tool and (work is None or c.work == work):
                s = summary(c)
                return s and s["median"]
        return None
    a, b = med(tool_a), med(tool_b)
    return a / b if a and b else None


# ----------------------------------------------------------------------------- sections


def imfilter_bg(a, stack, out, threads, flat, dark, *extra):
    return [a.imfilter, "background-correct", "-q", "-j", str(threads), "--flat", str(flat),
            "--dark", str(dark), str(stack), "-o", str(out), *extra]


def imfilter_median(a, size, stack, out, threads, *extra):
    """`imfilter median`, as IMFILTER_MEDIAN_ARGS says to call it (default `median --size {size}`)."""
    template = os.environ.get("IMFILTER_MEDIAN_ARGS", "median --size {size}").split()
    return [a.imfilter, "-q", "-j", str(threads)] + [x.format(size=size) for x in template] + \
        [*extra, str(stack), "-o", str(out)]


def bg_peer(impl, stack, flat, dark, out, threads=1):
    return [PY, str(HERE / "bg_peer.py"), impl, str(stack), str(flat), str(dark), str(out), "--threads", str(threads)]


def median_peer(impl, size, stack, out, threads=1):
    return [PY, str(HERE / "median_peer.py"), impl, str(size), str(stack), str(out), "--threads", str(threads)]


def shape_of(path: Path):
    import tifffile

    if path.is_dir():
        files = sorted(path.iterdir())
        with tifffile.TiffFile(files[0]) as t:
            h, w = t.pages[0].shape[:2]
        return len(files), h, w
    with tifffile.TiffFile(path) as t:
        s = t.series[0].shape
        return (s[0], s[1], s[2]) if len(s) == 3 else (1, s[0], s[1])


def has_module(name: str) -> bool:
    return subprocess.run([PY, "-c", f"import {name}"], capture_output=True).returncode == 0


def section_bg(a, out_dir: Path) -> tuple[str, list[Case]]:
    d = a.data
    stack, flat, dark = d / "stack.tif", d / "flat.tif", d / "dark.tif"
    n, h, w = shape_of(stack)
    px = n * h * w
    work = f"bg {n}×{h}×{w} u16 → f32"
    o = out_dir / "bg_out.tif"
    floor_src = d / "floor_f32.tif"
    if not floor_src.exists():  # a float32 file of exactly the output's size: imfilter's output
        subprocess.run(imfilter_bg(a, stack, floor_src, a.threads, flat, dark), check=True)
    inputs = [stack, flat, dark]
    peer = lambda impl, t=1: bg_peer(impl, stack, flat, dark, o, t)
    T = a.threads
    cases = [
        Case("bg", work, "imfilter", imfilter_bg(a, stack, o, T, flat, dark), inputs, [o], px, str(T), ref=True),
        Case("bg", work, "imfilter", imfilter_bg(a, stack, o, 1, flat, dark), inputs, [o], px, "1"),
        Case("bg", work, "imfilter --no-sync", imfilter_bg(a, stack, o, T, flat, dark, "--no-sync"), inputs, [o],
             px, str(T), note="like every peer below: no fsync"),
        Case("bg", work, "cp (float32 file of the output's size)", ["cp", str(floor_src), str(o)], [floor_src], [o],
             px, "1", note="floor"),
        Case("bg", work, "dd conv=fsync (same copy, then fsync)",
             ["dd", f"if={floor_src}", f"of={o}", "bs=16M", "conv=fsync", "status=none"], [floor_src], [o], px, "1",
             note="durable floor"),
        Case("bg", work, "python3 + import numpy, tifffile", peer("imports"), [], [o], 0, "1", note="fixed cost"),
        Case("bg", work, "tifffile+numpy", peer("tifffile+numpy"), inputs, [o], px, "1"),
        Case("bg", work, "tifffile+numexpr", peer("tifffile+numexpr", T), inputs, [o], px, str(T)),
        Case("bg", work, "memmap+numexpr", peer("memmap+numexpr", T), inputs, [o], px, str(T)),
    ]
    if has_module("pyvips"):
        cases.append(Case("bg", work, "pyvips", peer("pyvips"), inputs, [o], px, str(T),
                          env={"VIPS_CONCURRENCY": str(T)}))
    else:
        cases.append(Case("bg", work, "pyvips", [], [], [o], px, str(T), error="pyvips not importable"))
    measure(cases, a.reps)
    text = table(cases, "time ÷ imfilter -j%d" % T)
    cp, dd = "cp (float32 file of the output's size)", "dd conv=fsync (same copy, then fsync)"
    ratios = [  # (numerator, denominator, label)
        ("imfilter", cp, f"imfilter -j{T} ÷ cp = **{{:.2f}}** (issue 6 target ≤ 1.2)"),
        ("imfilter", dd, f"imfilter -j{T} ÷ (copy + fsync) = **{{:.2f}}**"),
        ("imfilter --no-sync", cp, "imfilter --no-sync ÷ cp = **{:.2f}**"),
        ("tifffile+numpy", "imfilter", f"tifffile+numpy ÷ imfilter -j{T} = **{{:.2f}}** (target ≥ 5)"),
        ("tifffile+numpy", "imfilter --no-sync", "tifffile+numpy ÷ imfilter --no-sync = **{:.2f}**"),
    ]
    notes = [label.format(r) for a_, b_, label in ratios if (r := ratio_of(cases, a_, b_))]
    return text + "\n\n" + "; ".join(notes), cases


def section_decode(a, out_dir: Path) -> tuple[str, list[Case]]:
    """Compressed inputs: the same correction from Deflate and LZW stacks, 1 thread vs all."""
    d = a.data
    flat, dark = d / "flat.tif", d / "dark.tif"
    o = out_dir / "decode_out.tif"
    T = a.threads
    cases, pairs = [], []
    for kind in ("deflate", "lzw"):
        stack = d / f"{kind}.tif"
        if not stack.exists():
            continue
        n, h, w = shape_of(stack)
        work = f"bg {n}×{h}×{w} u16 {kind} → f32"
        px = n * h * w
        # --no-sync: the disk is not what this section measures.
        one = Case("decode", work, "imfilter --no-sync", imfilter_bg(a, stack, o, 1, flat, dark, "--no-sync"),
                   [stack, flat, dark], [o], px, "1", ref=True)
        all_ = Case("decode", work, "imfilter --no-sync", imfilter_bg(a, stack, o, T, flat, dark, "--no-sync"),
                    [stack, flat, dark], [o], px, str(T))
        peer = Case("decode", work, "tifffile+numpy",
                    [PY, str(HERE / "bg_peer.py"), "tifffile+numpy", str(stack), str(flat), str(dark), str(o)],
                    [stack, flat, dark], [o], px, "1")
        cases += [one, all_, peer]
        pairs.append((work, one, all_))
    if not cases:
        return "no compressed stacks in the data directory (regenerate with compare.sh)", cases
    measure(cases, a.reps_dir)
    notes = []
    for work, one, all_ in pairs:
        s1, sT = summary(one), summary(all_)
        if s1 and sT:
            notes.append(f"{work}: -j{T} is **{s1['median'] / sT['median']:.2f}×** -j1 (issue 6 target ≥ 1.8 on 2 cores)")
    return table(cases, "time ÷ imfilter -j1") + "\n\n" + "; ".join(notes), cases


def section_dir(a, out_dir: Path) -> tuple[str, list[Case]]:
    """imfilter with one file per image against one multi-page file, durable and not, beside
    the same comparison for `cp` of the output's bytes: what the file system itself charges
    for writing many files rather than one."""
    blocks, all_cases = [], []
    for sub in a.dir_sets:
        d = a.data / sub
        stack_file, stack_dir = d / "stack.tif", d / "stack"
        flat, dark = d / "flat.tif", d / "dark.tif"
        if not stack_dir.is_dir():
            continue
        n, h, w = shape_of(stack_file)
        px = n * h * w
        # float32 files of exactly the output's bytes, one multi-page and one per image
        floor_file, floor_dir = d / "floor_f32.tif", d / "floor_f32_dir"
        if not floor_file.exists():
            subprocess.run(imfilter_bg(a, stack_file, floor_file, a.threads, flat, dark), check=True)
        if not floor_dir.exists():
            subprocess.run(imfilter_bg(a, stack_file, str(floor_dir) + "/", a.threads, flat, dark), check=True)
        of, od = out_dir / "dir_out.tif", out_dir / "dir_out"
        T = a.threads

        def mk(work, inp, out, label, *extra, ref=False):
            target = str(out) + ("/" if out == od else "")
            return Case("dir", work, label, imfilter_bg(a, inp, target, T, flat, dark, *extra),
                        [inp, flat, dark], [out], px, str(T), ref=ref)

        def cp(work, src, out, label, sync, ref=False):
            copy = f"cp -r '{src}' '{out}'" + (f" && sync -f '{out}'" if sync else "")
            return Case("dir", work, label, ["sh", "-c", copy], [src], [out], px, "1", ref=ref, note="floor")

        durable, fast = f"bg {n}×{h}×{w}", f"bg {n}×{h}×{w} --no-sync"
        copy_d, copy_f = f"copy {n}×{h}×{w} f32, then sync -f", f"copy {n}×{h}×{w} f32, no sync"
        groups = [
            [mk(durable, stack_file, of, "imfilter file → file", ref=True),
             mk(durable, stack_dir, of, "imfilter dir → file"),
             mk(durable, stack_file, od, "imfilter file → dir"),
             mk(durable, stack_dir, od, "imfilter dir → dir")],
            [mk(fast, stack_file, of, "imfilter file → file", "--no-sync", ref=True),
             mk(fast, stack_file, od, "imfilter file → dir", "--no-sync"),
             mk(fast, stack_dir, od, "imfilter dir → dir", "--no-sync")],
            [cp(copy_d, floor_file, of, "cp file → file", True, ref=True),
             cp(copy_d, floor_dir, od, "cp -r dir → dir", True)],
            [cp(copy_f, floor_file, of, "cp file → file", False, ref=True),
             cp(copy_f, floor_dir, od, "cp -r dir → dir", False)],
        ]
        cases = [c for g in groups for c in g]
        measure(cases, a.reps_dir, warmup=0)
        all_cases += cases
        blocks += groups
    text = table(all_cases, "time ÷ file→file")
    notes = []
    for cases in blocks:
        ref = summary(cases[0])
        for c in cases[1:]:
            s = summary(c)
            if ref and s:
                notes.append(f"{c.work} {c.tool.removeprefix('imfilter ')}: **{100 * ref['median'] / s['median']:.0f} %**")
    return text + "\n\n" + ("Throughput of each row as a share of its group's multi-page row: " + "; ".join(notes)
                             + " (issue 6 target for imfilter ≥ 80 %; the `cp` rows are the file system's own share)"
                             if notes else ""), all_cases


def section_mem(a, out_dir: Path) -> tuple[str, list[Case]]:
    d = a.data
    flat, dark = d / "flat.tif", d / "dark.tif"
    o = out_dir / "mem_out.tif"
    cases = []
    for name in a.mem_stacks:
        stack = d / name
        if not stack.exists():
            continue
        n, h, w = shape_of(stack)
        cases.append(Case("mem", f"bg {n} pages", "imfilter", imfilter_bg(a, stack, o, a.threads, flat, dark),
                          [stack, flat, dark], [o], n * h * w, str(a.threads), ref=True))
    for name in a.mem_stacks[:2]:
        stack = d / name
        if not stack.exists():
            continue
        n, h, w = shape_of(stack)
        cases.append(Case("mem", f"bg {n} pages", "tifffile+numpy",
                          [PY, str(HERE / "bg_peer.py"), "tifffile+numpy", str(stack), str(flat), str(dark), str(o)],
                          [stack, flat, dark], [o], n * h * w, "1"))
    measure(cases, a.reps_mem, warmup=0, sample_ms=2.0)
    lines = ["| stack | tool | median s | peak RSS MiB (ru_maxrss) | peak RssAnon MiB | peak RssFile MiB | "
             "minor faults | input + output MiB |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for c in cases:
        s = summary(c)
        if not s:
            lines.append(f"| {c.work} | {c.tool} | — | | | | | {c.error} |")
            continue
        io_mib = (sum(p.stat().st_size for p in c.inputs if p.is_file()) + c.pixels * 4) / 2**20
        lines.append(f"| {c.work} | {c.tool} | {fmt_s(s['median'])} | {mib(s['maxrss_kb'])} | {mib(s['anon_kb'])} | "
                     f"{mib(s['file_kb'])} | {s['minflt']} | {io_mib:.0f} |")
    return "\n".join(lines), cases


def section_median(a, out_dir: Path) -> tuple[str, list[Case]]:
    d = a.data
    probe = subprocess.run([a.imfilter, "median", "--help"], capture_output=True)
    have = probe.returncode == 0
    note = "" if have else ("**`imfilter median` is not available in this build** (`imfilter median --help` "
                            "failed), so only the peers ran; rerun when it exists.\n\n")
    o = out_dir / "median_out.tif"
    T = a.threads
    cases = []
    imf = lambda size, stack, t: imfilter_median(a, size, stack, o, t)
    peer = lambda impl, size, stack, t: median_peer(impl, size, stack, o, t)
    cases.append(Case("median", "fixed cost", "python3 + import numpy, tifffile, cv2, scipy.ndimage",
                      peer("imports", 3, d / "crop_u16.tif", 1), [], [o], 0, "1"))
    for dtype in ("u16", "f32"):
        big, crop = d / f"median_{dtype}.tif", d / f"crop_{dtype}.tif"
        if not big.exists():
            continue
        n, h, w = shape_of(big)
        cn, ch, cw = shape_of(crop)
        for size in a.median_sizes:
            work = f"median {size}×{size} {dtype} {n}×{h}×{w}"
            if have:
                cases.append(Case("median", work, "imfilter", imf(size, big, T), [big], [o], n * h * w, str(T), ref=True))
                cases.append(Case("median", work, "imfilter", imf(size, big, 1), [big], [o], n * h * w, "1"))
            if size <= 5:
                for t in sorted({1, T}):
                    cases.append(Case("median", work, "cv2.medianBlur", peer("cv2", size, big, t), [big], [o],
                                      n * h * w, str(t), ref=not have and t == T))
            else:
                cases.append(Case("median", work, "cv2.medianBlur", [], [], [o], n * h * w, "",
                                  error="n/a: OpenCV has sizes > 5 for uint8 only"))
            cwork = f"median {size}×{size} {dtype} {cn}×{ch}×{cw} (crop)"
            if have:
                cases.append(Case("median", cwork, "imfilter", imf(size, crop, 1), [crop], [o], cn * ch * cw, "1",
                                  ref=True))
            cases.append(Case("median", cwork, "scipy.ndimage.median_filter", peer("scipy", size, crop, 1), [crop],
                              [o], cn * ch * cw, "1"))
    measure(cases, a.reps_median, warmup=0)
    return note + table(cases, "time ÷ imfilter"), cases


def thread_counts(most: int) -> list[int]:
    """1, 2, 4, ... up to `most`, and `most` itself."""
    counts, t = [], 1
    while t < most:
        counts.append(t)
        t *= 2
    return counts + [most]


def section_scale(a, out_dir: Path) -> tuple[str, list[Case]]:
    """Issue 6 target 5: throughput from 1 thread to all of them, imfilter beside the peers that
    have threads, for the bandwidth-bound job (background correction, no sync) and the
    compute-bound one (median 3×3 and 5×5, uint16). Each tool's 1-thread row is its reference."""
    d = a.data
    stack, flat, dark = d / "stack.tif", d / "flat.tif", d / "dark.tif"
    o = out_dir / "scale_out.tif"
    counts = thread_counts(a.threads)
    cases = []

    def series(work, tool, argv_for, inputs, pixels):
        for t in counts:
            cases.append(Case("scale", f"{work}, {tool}", tool, argv_for(t), inputs, [o], pixels, str(t), ref=t == 1))

    n, h, w = shape_of(stack)
    bg = f"bg {n}×{h}×{w} u16 → f32, no sync"
    series(bg, "imfilter --no-sync", lambda t: imfilter_bg(a, stack, o, t, flat, dark, "--no-sync"),
           [stack, flat, dark], n * h * w)
    series(bg, "memmap+numexpr", lambda t: bg_peer("memmap+numexpr", stack, flat, dark, o, t), [stack, flat, dark],
           n * h * w)
    # The median on the main stack too: the median section's stacks are too small to time a
    # process at many threads.
    for size in (3, 5):
        work = f"median {size}×{size} u16 {n}×{h}×{w}, no sync"
        series(work, "imfilter --no-sync", lambda t, size=size: imfilter_median(a, size, stack, o, t, "--no-sync"),
               [stack], n * h * w)
        series(work, "cv2.medianBlur, images in a thread pool",
               lambda t, size=size: median_peer("cv2-pool", size, stack, o, t), [stack], n * h * w)
    measure(cases, a.reps_median)
    text = table(cases, "time ÷ 1 thread")
    notes = []
    for c in cases:
        s, ref = summary(c), next((r for r in cases if r.work == c.work and r.ref), None)
        rs = ref and summary(ref)
        if s and rs and c.threads == str(counts[-1]) and not c.ref:
            notes.append(f"{c.work}: **{rs['median'] / s['median']:.1f}×** at {c.threads} threads")
    return text + "\n\nSpeed-up over one thread: " + "; ".join(notes), cases


# ----------------------------------------------------------------------------- main


def machine() -> str:
    model = next((l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True)
                  .stdout.splitlines() if l.startswith("Model name")), platform.processor())
    mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    df = subprocess.run(["df", "--output=fstype", "."], capture_output=True, text=True).stdout.split()
    fs = df[-1] if len(df) > 1 else "?"
    return (f"{model}, {os.cpu_count()} CPUs, {mem / 2**20:.1f} GiB RAM, Linux {platform.release()}, "
            f"scratch on {fs}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="directory compare.sh filled")
    ap.add_argument("--imfilter", required=True, help="the imfilter binary")
    ap.add_argument("--sections", default="bg,dir,decode,mem,median,scale")
    ap.add_argument("--reps", type=int, default=5, help="timed rounds for bg (default 5)")
    ap.add_argument("--reps-dir", type=int, default=3)
    ap.add_argument("--reps-mem", type=int, default=1)
    ap.add_argument("--reps-median", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--median-sizes", default="3,5,7,9,15")
    ap.add_argument("--dir-sets", default=".,dir_many", help="subdirectories of --data holding stack.tif, stack/, flat.tif, dark.tif")
    ap.add_argument("--mem-stacks", default="mem_small.tif,stack.tif,mem_large.tif")
    ap.add_argument("--json", type=Path, help="write every run's raw numbers here")
    a = ap.parse_args()
    a.median_sizes = [int(s) for s in a.median_sizes.split(",") if s]
    a.dir_sets = [s for s in a.dir_sets.split(",") if s]
    a.mem_stacks = [s for s in a.mem_stacks.split(",") if s]
    a.imfilter = str(Path(a.imfilter).resolve())
    out_dir = a.data / "out"
    out_dir.mkdir(exist_ok=True)
    os.chdir(a.data)

    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    version = subprocess.run([a.imfilter, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"Machine: {machine()}. {version}. Started {started}, load average (1 min) {load0[0]:.2f}.\n",
          flush=True)
    sections = {"bg": ("End-to-end background correction, file → file (files in the page cache)", section_bg),
                "dir": ("Directory stacks (one file per image) vs one multi-page file, imfilter only", section_dir),
                "decode": ("Compressed inputs decoded in parallel (background-correct --no-sync)", section_decode),
                "mem": ("Memory vs stack size (background-correct, all threads)", section_mem),
                "median": ("Median filter, file → file", section_median),
                "scale": ("Scaling from 1 thread to all (issue 6 target 5)", section_scale)}
    raw = dict(started=started, machine=machine(), version=version, sections={})
    for key in a.sections.split(","):
        title, fn = sections[key]
        log(f"== {title}")
        text, cases = fn(a, out_dir)
        print(f"### {title}\n\n{text}\n", flush=True)
        raw["sections"][key] = [dict(work=c.work, tool=c.tool, threads=c.threads, note=c.note, pixels=c.pixels,
                                     argv=c.argv, error=c.error, runs=c.runs, summary=summary(c)) for c in cases]
        if a.json:
            a.json.write_text(json.dumps(raw, indent=1))
    load1 = os.getloadavg()
    print(f"Finished after {time.perf_counter() - t0:.0f} s of measuring; load average (1 min) {load1[0]:.2f} "
          f"({os.cpu_count()} CPUs; a load well above what this benchmark runs means other work shared the machine).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
