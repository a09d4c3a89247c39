"""The mapped-output floor of docs/benchmarks.md section 1, measured by hand.

Stores a constant into a fresh, fallocated, shared-mapped file of SIZE bytes (read as float32),
THREADS threads on disjoint parts, no sync: what writing imfilter's output through a map costs
on this machine before any pixel is read or computed. Prints the seconds from create to unmap.

    python3 benches/compare/mapped_floor.py /tmp/out.tif $(stat -c %s floor_f32.tif) 2
"""
import mmap, os, sys, time, threading
import numpy as np
path, size, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0 = time.perf_counter()
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
os.posix_fallocate(fd, 0, size)
m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
a = np.frombuffer(m, dtype=np.float32, count=size // 4)
parts = np.array_split(a, threads)
def fill(p):
    p[:] = 1.0
ts = [threading.Thread(target=fill, args=(p,)) for p in parts]
[t.start() for t in ts]
[t.join() for t in ts]
del a, parts, ts
m.close()
os.close(fd)
print(f"{time.perf_counter() - t0:.3f}")
