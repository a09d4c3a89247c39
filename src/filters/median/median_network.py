#!/usr/bin/env python3
"""Generates the K×K median selection networks of `network_tables.rs` (`net7`) and checks them.

Input of a network: K sorted columns, wire `K * j + i` holding the i-th smallest value of
column j. The network

1. sorts every row (rank level) with a sorting network of K inputs; a matrix with sorted columns
   keeps them sorted when its rows are sorted;
2. keeps the entries that can still be the median: entry (i, j) has at least (i+1)(j+1) values
   at or below it and (K-i)(K-j) at or above it, so it is certainly below the median when
   (K-i)(K-j) > m + 1 and certainly above when (i+1)(j+1) > m + 1 (m = (K*K-1)/2, the median's
   0-based rank);
3. selects, among the candidates, the one of rank m - (entries certainly below) with Batcher's
   odd-even merge sort (padding positions hold +inf and drop out);
4. deletes every comparator that never exchanges on any valid 0-1 input (sorted columns of 0s
   and 1s: (K+1)^K of them), then, from the last comparator back, every output nobody reads.

By the 0-1 principle, a comparator that never exchanges on the valid 0-1 inputs never exchanges
on any input with sorted columns, and a network that selects the median of every valid 0-1
input selects it of every input with sorted columns; step 4 checks the result on all of them.

Usage: python3 src/filters/median/median_network.py 7   (prints the `network!` body for net7;
K = 9 takes 7 minutes on the 2-core machine of docs/benchmarks.md: 10^9 inputs, checked twice)
"""
import itertools
import sys

import numpy as np

# Sorting networks with the fewest comparators known (Knuth, TAOCP vol. 3, 5.3.4); each is
# checked on all 2^n 0-1 inputs below before use.
SORTERS = {
    5: [(0, 3), (1, 4), (0, 2), (1, 3), (0, 1), (2, 4), (1, 2), (3, 4), (2, 3)],
    7: [(0, 6), (2, 3), (4, 5), (0, 2), (1, 4), (3, 6), (0, 1), (2, 5), (3, 4), (1, 2),
        (4, 6), (2, 3), (4, 5), (1, 2), (3, 4), (5, 6)],
    9: [(0, 3), (1, 7), (2, 5), (4, 8), (0, 7), (2, 4), (3, 8), (5, 6), (0, 2), (1, 3),
        (4, 5), (7, 8), (1, 4), (3, 6), (5, 7), (0, 1), (2, 4), (3, 5), (6, 8), (2, 3),
        (4, 5), (6, 7), (1, 2), (3, 4), (5, 6)],
}

# Valid 0-1 inputs are enumerated in chunks of this many, each wire packed 64 inputs a word.
CHUNK = 1 << 22


def check_sorter(n, net):
    for bits in itertools.product([0, 1], repeat=n):
        v = list(bits)
        for a, b in net:
            if v[a] > v[b]:
                v[a], v[b] = v[b], v[a]
        assert v == sorted(v), (n, bits)


def batcher(n):
    """Odd-even merge sort comparators for n inputs (n a power of two)."""
    out = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        out.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return out


def build(K):
    m = (K * K - 1) // 2
    w = lambda i, j: K * j + i
    net = []
    sorter = SORTERS[K]
    check_sorter(K, sorter)
    for i in range(K):
        net += [(w(i, a), w(i, b)) for a, b in sorter]
    below = [(i, j) for i in range(K) for j in range(K) if (K - i) * (K - j) > m + 1]
    above = [(i, j) for i in range(K) for j in range(K) if (i + 1) * (j + 1) > m + 1]
    cand = [(i, j) for i in range(K) for j in range(K) if (i, j) not in below and (i, j) not in above]
    cand.sort(key=lambda ij: (ij[0] + ij[1], ij[0]))  # roughly ascending already
    wires = [w(i, j) for i, j in cand]
    size = 1
    while size < len(wires):
        size *= 2
    net += [(wires[a], wires[b]) for a, b in batcher(size) if b < len(wires)]
    out = wires[m - len(below)]
    return net, out


def valid_chunks(K):
    """Every valid 0-1 input, in chunks: (wire -> packed uint64 array, packed "median is 1")."""
    m = (K * K - 1) // 2
    total = (K + 1) ** K
    for lo in range(0, total, CHUNK):
        code = np.arange(lo, min(total, lo + CHUNK), dtype=np.int64)
        pad = (-len(code)) % 64
        counts = [(code // (K + 1) ** j % (K + 1)).astype(np.int8) for j in range(K)]
        pack = lambda bits: np.packbits(np.concatenate([bits, np.zeros(pad, bool)]), bitorder="little").view(np.uint64)
        wires = {K * j + i: pack(counts[j] >= K - i) for j in range(K) for i in range(K)}
        ones = sum(c.astype(np.int32) for c in counts)
        yield wires, pack(ones > m), len(code)


def prune(K, net, out):
    # A comparator that never exchanges on any valid input is the identity on all of them, so
    # all such comparators can go at once: one pass finds them.
    exchanges = [False] * len(net)
    for v, median, _ in valid_chunks(K):
        for n, (a, b) in enumerate(net):
            x, y = v[a], v[b]
            if not exchanges[n] and (x & ~y).any():
                exchanges[n] = True
            v[a], v[b] = x & y, x | y
        assert np.array_equal(v[out], median), "network does not select the median"
    kept = [c for c, e in zip(net, exchanges) if e]
    ops, live = [], {out}
    for a, b in reversed(kept):
        la, lb = a in live, b in live
        if la and lb:
            ops.append(("cas", a, b))
        elif la:
            ops.append(("min", a, b))
        elif lb:
            ops.append(("max", a, b))
        else:
            continue
        live |= {a, b}
    ops.reverse()
    check(K, ops, out)
    return ops


def check(K, ops, out):
    """The pruned network on every valid 0-1 input."""
    for v, median, _ in valid_chunks(K):
        for op, a, b in ops:
            x, y = v[a], v[b]
            if op == "cas":
                v[a], v[b] = x & y, x | y
            elif op == "min":
                v[a] = x & y
            else:
                v[b] = x | y
        # padding inputs (all zero columns past the end) are valid inputs too, so compare all
        assert np.array_equal(v[out], median), "pruned network does not select the median"


def main():
    K = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    net, out = build(K)
    ops = prune(K, net, out)
    n = sum(2 if op == "cas" else 1 for op, _, _ in ops)
    print(f"// K = {K}: {len(ops)} comparators, {n} min/max, result in v[{out}]")
    line = "       "
    for op, a, b in ops:
        item = f" {op} {a} {b};"
        if len(line) + len(item) > 100:
            print(line)
            line = "       "
        line += item
    print(line)


if __name__ == "__main__":
    main()
