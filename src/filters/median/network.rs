//! The sorting-network kernels, K = 3 to 9: sorted column triples and two med3 per output for
//! 3×3; for 5×5, 7×7 and 9×9, each column sorted once and shared by the K outputs whose windows
//! contain it, then a pruned selection network per output (`network_tables.rs`). The inner loops
//! run over fixed-size blocks and are compiled once per [`Isa`].

use super::border::RowKernel;
use super::network_tables::{MinMax, net5, net7, net9, network};
use super::{Isa, Sample, per_isa};

// ---------------------------------------------------------------------------------------------
// 3×3: sorting networks over whole rows

#[inline(always)]
fn med3<T: Sample>(a: T, b: T, c: T) -> T {
    a.mn(b).mx(a.mx(b).mn(c))
}

/// 3×3: median = med3(max of the column lows, med3 of the column middles, min of the column
/// highs), where each column triple is sorted first; the two output rows share the sort of their
/// two common rows.
///
/// Two schedules, picked by sample width. Narrow samples (8 and 16 bits, many lanes per vector)
/// recompute the three column sorts each output needs: 27 min/max per pixel and no intermediate
/// stores. Wide ones (32 and 64 bits, few lanes) sort each column once into L1-resident
/// temporaries and combine from there: 17 min/max per pixel plus the stores. Each measured the
/// faster for its widths.
pub(super) struct Net3<T> {
    isa: Isa,
    /// The wide schedule's sorted columns: low, middle, high for each of the two output rows.
    cols: Vec<T>,
}

impl<T: Sample> Net3<T> {
    pub(super) fn new(isa: Isa) -> Self {
        let wide = std::mem::size_of::<T>() >= 4;
        Net3 {
            isa,
            cols: vec![T::default(); if wide { 6 * (BLOCK + 2) } else { 0 }],
        }
    }
}

impl<T: Sample> RowKernel<T> for Net3<T> {
    fn pair(&mut self, rows: &[&[T]], out0: &mut [T], out1: &mut [T]) {
        if self.cols.is_empty() {
            net3_pair(self.isa, rows, out0, out1);
        } else {
            net3_sorted_pair(self.isa, rows, &mut self.cols, out0, out1);
        }
    }
}

per_isa!(fn net3_pair = net3_pair_body(rows: &[&[T]], out0: &mut [T], out1: &mut [T]));
per_isa!(fn net3_sorted_pair = net3_sorted_pair_body(
    rows: &[&[T]],
    cols: &mut [T],
    out0: &mut [T],
    out1: &mut [T],
));

/// Outputs per inner loop of the network kernels: a multiple of every vector width (64 u8 lanes
/// in AVX-512), so the inner loops have a fixed trip count and no scalar remainder. A row's last
/// block is shifted left to end at the row's end, recomputing a few outputs instead of running a
/// scalar tail.
const BLOCK: usize = 64;

/// Runs `$span` with `$x`, `$m` bound to cover outputs `0..$n` in blocks of `$block`, the last
/// one shifted left to end at `$n` (recomputing a few outputs rather than running a scalar
/// tail), or once with `(0, $n)` when `$n < $block`. A macro, not a function taking a closure:
/// the span is then written out at both places, and the one in the block loop sees the
/// constant length its inner loops need to vectorise (a closure version halved the 3×3 and
/// 5×5 uint16 throughput in `cargo bench --bench median`).
macro_rules! for_each_block {
    ($n:expr, $block:expr, |$x:ident, $m:ident| $span:expr) => {{
        let (n, block) = ($n, $block);
        if n < block {
            let ($x, $m) = (0, n);
            $span;
        } else {
            let mut $x = 0;
            loop {
                let $m = block;
                $span;
                let next = $x + block;
                if next >= n {
                    break;
                }
                $x = next.min(n - block);
            }
        }
    }};
}

#[inline(always)]
fn net3_pair_body<T: Sample>(rows: &[&[T]], out0: &mut [T], out1: &mut [T]) {
    for_each_block!(out0.len(), BLOCK, |x, m| {
        let end = x + m + 2;
        net3_span(
            [
                &rows[0][x..end],
                &rows[1][x..end],
                &rows[2][x..end],
                &rows[3][x..end],
            ],
            &mut out0[x..x + m],
            &mut out1[x..x + m],
        );
    });
}

#[inline(always)]
fn net3_sorted_pair_body<T: Sample>(rows: &[&[T]], cols: &mut [T], out0: &mut [T], out1: &mut [T]) {
    for_each_block!(out0.len(), BLOCK, |x, m| {
        net3_sorted_span(rows, x, m, cols, &mut out0[x..x + m], &mut out1[x..x + m]);
    });
}

/// Outputs `s..s + m` of both rows by the sorted-columns schedule.
#[inline(always)]
fn net3_sorted_span<T: Sample>(
    rows: &[&[T]],
    s: usize,
    m: usize,
    cols: &mut [T],
    out0: &mut [T],
    out1: &mut [T],
) {
    let c = m + 2;
    let len = cols.len() / 6;
    let (lo0, rest) = cols.split_at_mut(len);
    let (mi0, rest) = rest.split_at_mut(len);
    let (hi0, rest) = rest.split_at_mut(len);
    let (lo1, rest) = rest.split_at_mut(len);
    let (mi1, hi1) = rest.split_at_mut(len);
    let (lo0, mi0, hi0) = (&mut lo0[..c], &mut mi0[..c], &mut hi0[..c]);
    let (lo1, mi1, hi1) = (&mut lo1[..c], &mut mi1[..c], &mut hi1[..c]);
    let (ra, rb) = (&rows[0][s..s + c], &rows[1][s..s + c]);
    let (rc, rd) = (&rows[2][s..s + c], &rows[3][s..s + c]);
    for j in 0..c {
        let p = rb[j].mn(rc[j]);
        let q = rb[j].mx(rc[j]);
        let (a, d) = (ra[j], rd[j]);
        lo0[j] = a.mn(p);
        hi0[j] = a.mx(q);
        mi0[j] = p.mx(a.mn(q));
        lo1[j] = d.mn(p);
        hi1[j] = d.mx(q);
        mi1[j] = p.mx(d.mn(q));
    }
    combine3(lo0, mi0, hi0, &mut out0[..m]);
    combine3(lo1, mi1, hi1, &mut out1[..m]);
}

/// One output row from sorted columns: `lo`, `mi`, `hi` are `out.len() + 2` long.
#[inline(always)]
fn combine3<T: Sample>(lo: &[T], mi: &[T], hi: &[T], out: &mut [T]) {
    let m = out.len();
    // Shifted views exactly m long, so the loop has no bounds checks and vectorises.
    let (lo0, lo1, lo2) = (&lo[..m], &lo[1..m + 1], &lo[2..m + 2]);
    let (mi0, mi1, mi2) = (&mi[..m], &mi[1..m + 1], &mi[2..m + 2]);
    let (hi0, hi1, hi2) = (&hi[..m], &hi[1..m + 1], &hi[2..m + 2]);
    for x in 0..m {
        let l = lo0[x].mx(lo1[x]).mx(lo2[x]);
        let h = hi0[x].mn(hi1[x]).mn(hi2[x]);
        out[x] = med3(l, med3(mi0[x], mi1[x], mi2[x]), h);
    }
}

#[inline(always)]
fn net3_span<T: Sample>(rows: [&[T]; 4], out0: &mut [T], out1: &mut [T]) {
    let n = out0.len();
    let out1 = &mut out1[..n];
    // Shifted views exactly n long, so the loop has no bounds checks and vectorises.
    let view = |row: usize, dx: usize| &rows[row][dx..dx + n];
    let (a0, a1, a2) = (view(0, 0), view(0, 1), view(0, 2));
    let (b0, b1, b2) = (view(1, 0), view(1, 1), view(1, 2));
    let (c0, c1, c2) = (view(2, 0), view(2, 1), view(2, 2));
    let (d0, d1, d2) = (view(3, 0), view(3, 1), view(3, 2));
    for x in 0..n {
        // The shared middle rows of the three columns, sorted.
        let (p0, q0) = (b0[x].mn(c0[x]), b0[x].mx(c0[x]));
        let (p1, q1) = (b1[x].mn(c1[x]), b1[x].mx(c1[x]));
        let (p2, q2) = (b2[x].mn(c2[x]), b2[x].mx(c2[x]));
        // Inserting the third row of each column gives (lo, mid, hi) = (min(a, p), med, max(a, q)).
        let median = |a0: T, a1: T, a2: T| {
            let lo = a0.mn(p0).mx(a1.mn(p1)).mx(a2.mn(p2));
            let hi = a0.mx(q0).mn(a1.mx(q1)).mn(a2.mx(q2));
            let mid = med3(p0.mx(a0.mn(q0)), p1.mx(a1.mn(q1)), p2.mx(a2.mn(q2)));
            med3(lo, mid, hi)
        };
        out0[x] = median(a0[x], a1[x], a2[x]);
        out1[x] = median(d0[x], d1[x], d2[x]);
    }
}

// ---------------------------------------------------------------------------------------------
// 5×5 and up: sorted columns, then a selection network per output

/// Outputs per pass of the network kernels (5×5 and up): their 2K sorted-column rows of
/// `CHUNK_NET + K − 1` values stay in L1.
const CHUNK_NET: usize = 128;
const W5: usize = CHUNK_NET + 4;
const W7: usize = CHUNK_NET + 6;
const W9: usize = CHUNK_NET + 8;

/// `x` inserted into the sorted `s` (`M` = `N` + 1).
#[inline(always)]
fn insert_sorted<T: MinMax, const N: usize, const M: usize>(x: T, s: [T; N]) -> [T; M] {
    const { assert!(M == N + 1) };
    let mut out = [x; M];
    let mut t = x;
    for i in 0..N {
        out[i] = t.lo(s[i]);
        t = t.hi(s[i]);
    }
    out[N] = t;
    out
}

/// Defines a K×K kernel (K ≥ 5) made of sorted columns and a selection network per output:
/// each column of K is sorted once (the two output rows share the sort of their K − 1 common
/// rows and insert their own last value) into `CHUNK_NET`-wide rows shared by the K outputs
/// whose windows contain it; then the network picks each output's median from its K columns.
///
/// The input rows and the sorted-column rows are spelled out one by one, at fixed offsets:
/// given arrays of slices built in a loop or a closure, the compiler loses their lengths and
/// offsets, keeps bounds checks and cannot rule out overlapping stores, and leaves the loops
/// scalar (measured for 7×7: 4.9–6.8 Mpixel/s instead of 115–120).
macro_rules! sorted_columns_kernel {
    (
        $(#[$doc:meta])*
        struct $kernel:ident (size $k:literal, width $w:ident);
        fn $pair:ident, $pair_body:ident, $span:ident, $combine:ident;
        rows: $first:ident, [$($shared:ident = $si:literal),*], $last:ident = $li:literal;
        sort_shared: [$($op:ident $a:literal $b:literal;)*],
        select: $net:ident, result $result:literal, values [$(($i:literal $j:literal))*];
    ) => {
        $(#[$doc])*
        pub(super) struct $kernel<T> {
            isa: Isa,
            cols: Vec<[T; $w]>,
        }

        impl<T: Sample> $kernel<T> {
            pub(super) fn new(isa: Isa) -> Self {
                $kernel {
                    isa,
                    cols: vec![[T::default(); $w]; 2 * $k],
                }
            }
        }

        impl<T: Sample> RowKernel<T> for $kernel<T> {
            fn pair(&mut self, rows: &[&[T]], out0: &mut [T], out1: &mut [T]) {
                $pair(self.isa, rows, &mut self.cols, out0, out1);
            }
        }

        per_isa!(fn $pair = $pair_body(rows: &[&[T]], cols: &mut [[T; $w]], out0: &mut [T], out1: &mut [T]));

        #[inline(always)]
        fn $pair_body<T: Sample>(rows: &[&[T]], cols: &mut [[T; $w]], out0: &mut [T], out1: &mut [T]) {
            for_each_block!(out0.len(), CHUNK_NET, |s, m| {
                $span(rows, s, m, cols, &mut out0[s..s + m], &mut out1[s..s + m]);
            });
        }

        /// Outputs `s..s + m` of both rows.
        #[inline(always)]
        fn $span<T: Sample>(
            rows: &[&[T]],
            s: usize,
            m: usize,
            cols: &mut [[T; $w]],
            out0: &mut [T],
            out1: &mut [T],
        ) {
            let c = m + $k - 1;
            assert!(c <= $w, "invariant: blocks of at most CHUNK_NET outputs");
            let $first = &rows[0][s..s + c];
            $(let $shared = &rows[$si][s..s + c];)*
            let $last = &rows[$li][s..s + c];
            let (a, b) = cols.split_at_mut($k);
            let a: &mut [[T; $w]; $k] = a.try_into().expect("K rows");
            let b: &mut [[T; $w]; $k] = b.try_into().expect("K rows");
            for j in 0..c {
                let mut q = [$($shared[j]),*];
                network!(q; $($op $a $b;)*);
                let col_a: [T; $k] = insert_sorted($first[j], q);
                let col_b: [T; $k] = insert_sorted($last[j], q);
                for i in 0..$k {
                    a[i][j] = col_a[i];
                    b[i][j] = col_b[i];
                }
            }
            $combine(a, &mut out0[..m]);
            $combine(b, &mut out1[..m]);
        }

        #[inline(always)]
        fn $combine<T: Sample>(cols: &[[T; $w]; $k], out: &mut [T]) {
            let m = out.len();
            assert!(m <= CHUNK_NET, "invariant: blocks of at most CHUNK_NET outputs");
            for x in 0..m {
                let mut v = [$(cols[$i][x + $j]),*];
                $net(&mut v);
                out[x] = v[$result];
            }
        }
    };
}

sorted_columns_kernel! {
    /// 5×5: 5 sorted columns, then [`net5`] per output.
    struct Net5 (size 5, width W5);
    fn net5_pair, net5_pair_body, net5_span, combine5;
    rows: r0, [r1 = 1, r2 = 2, r3 = 3, r4 = 4], r5 = 5;
    sort_shared: [cas 0 1; cas 2 3; cas 0 2; cas 1 3; cas 1 2;],
    select: net5, result 4, values [(0 0) (1 0) (2 0) (3 0) (4 0) (0 1) (1 1) (2 1) (3 1) (4 1) (0 2) (1 2) (2 2) (3 2) (4 2) (0 3) (1 3) (2 3) (3 3) (4 3) (0 4) (1 4) (2 4) (3 4) (4 4)];
}

sorted_columns_kernel! {
    /// 7×7: 7 sorted columns, then [`net7`] per output.
    struct Net7 (size 7, width W7);
    fn net7_pair, net7_pair_body, net7_span, combine7;
    rows: r0, [r1 = 1, r2 = 2, r3 = 3, r4 = 4, r5 = 5, r6 = 6], r7 = 7;
    sort_shared: [
        cas 0 5; cas 1 3; cas 2 4; cas 1 2; cas 3 4; cas 0 3;
        cas 2 5; cas 0 1; cas 2 3; cas 4 5; cas 1 2; cas 3 4;
    ],
    select: net7, result 24, values [(0 0) (1 0) (2 0) (3 0) (4 0) (5 0) (6 0) (0 1) (1 1) (2 1) (3 1) (4 1) (5 1) (6 1) (0 2) (1 2) (2 2) (3 2) (4 2) (5 2) (6 2) (0 3) (1 3) (2 3) (3 3) (4 3) (5 3) (6 3) (0 4) (1 4) (2 4) (3 4) (4 4) (5 4) (6 4) (0 5) (1 5) (2 5) (3 5) (4 5) (5 5) (6 5) (0 6) (1 6) (2 6) (3 6) (4 6) (5 6) (6 6)];
}

sorted_columns_kernel! {
    /// 9×9: 9 sorted columns, then [`net9`] per output.
    struct Net9 (size 9, width W9);
    fn net9_pair, net9_pair_body, net9_span, combine9;
    rows: r0, [r1 = 1, r2 = 2, r3 = 3, r4 = 4, r5 = 5, r6 = 6, r7 = 7, r8 = 8], r9 = 9;
    sort_shared: [
        cas 0 2; cas 1 3; cas 4 6; cas 5 7; cas 0 4; cas 1 5; cas 2 6; cas 3 7;
        cas 0 1; cas 2 3; cas 4 5; cas 6 7; cas 2 4; cas 3 5; cas 1 4; cas 3 6;
        cas 1 2; cas 3 4; cas 5 6;
    ],
    select: net9, result 40, values [(0 0) (1 0) (2 0) (3 0) (4 0) (5 0) (6 0) (7 0) (8 0) (0 1) (1 1) (2 1) (3 1) (4 1) (5 1) (6 1) (7 1) (8 1) (0 2) (1 2) (2 2) (3 2) (4 2) (5 2) (6 2) (7 2) (8 2) (0 3) (1 3) (2 3) (3 3) (4 3) (5 3) (6 3) (7 3) (8 3) (0 4) (1 4) (2 4) (3 4) (4 4) (5 4) (6 4) (7 4) (8 4) (0 5) (1 5) (2 5) (3 5) (4 5) (5 5) (6 5) (7 5) (8 5) (0 6) (1 6) (2 6) (3 6) (4 6) (5 6) (6 6) (7 6) (8 6) (0 7) (1 7) (2 7) (3 7) (4 7) (5 7) (6 7) (7 7) (8 7) (0 8) (1 8) (2 8) (3 8) (4 8) (5 8) (6 8) (7 8) (8 8)];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn median01(v: &[u8]) -> u8 {
        let zeros = v.iter().filter(|&&b| b == 0).count();
        u8::from(zeros <= v.len() / 2)
    }

    /// A network kernel's `span`: input rows, first output, outputs, column rows, out rows.
    type Span<const W: usize> = fn(&[&[u8]], usize, usize, &mut [[u8; W]], &mut [u8], &mut [u8]);

    /// The column sort of a K×K network kernel (`span`): both columns of an output row pair,
    /// on every 0-1 input of its K + 1 rows.
    fn sorts_both_columns<const W: usize>(k: usize, span: Span<W>) {
        for code in 0u32..1 << (k + 1) {
            let rows: Vec<Vec<u8>> = (0..=k)
                .map(|r| vec![u8::from(code >> r & 1 == 1); k])
                .collect();
            let rows: Vec<&[u8]> = rows.iter().map(|r| &r[..]).collect();
            let mut cols = vec![[0u8; W]; 2 * k];
            let (mut o0, mut o1) = ([0u8; 1], [0u8; 1]);
            span(&rows, 0, 1, &mut cols, &mut o0, &mut o1);
            for (half, range) in [(0, 0..k), (1, 1..k + 1)] {
                let mut want: Vec<u8> = range.map(|r| rows[r][0]).collect();
                want.sort();
                let got: Vec<u8> = (0..k).map(|i| cols[k * half + i][0]).collect();
                assert_eq!(got, want, "rows {code:b}, column {half}");
            }
        }
    }

    #[test]
    fn net5_sorts_both_columns() {
        sorts_both_columns(5, net5_span::<u8>);
    }

    #[test]
    fn net7_sorts_both_columns() {
        sorts_both_columns(7, net7_span::<u8>);
    }

    #[test]
    fn net9_sorts_both_columns() {
        sorts_both_columns(9, net9_span::<u8>);
    }

    /// Both 3×3 schedules on every 0-1 input of their 4 × 3 window rows (no precondition here,
    /// so this covers the whole network).
    #[test]
    fn net3_selects_the_median() {
        for code in 0u32..1 << 12 {
            let bit = |i: u32| u8::from(code >> i & 1 == 1);
            let rows: Vec<Vec<u8>> = (0..4)
                .map(|r| (0..3).map(|c| bit(3 * r + c)).collect())
                .collect();
            let rows: Vec<&[u8]> = rows.iter().map(|r| &r[..]).collect();
            let want0 = median01(&rows[0..3].concat());
            let want1 = median01(&rows[1..4].concat());
            let (mut o0, mut o1) = ([0u8], [0u8]);
            net3_pair_body(&rows, &mut o0, &mut o1);
            assert_eq!((o0[0], o1[0]), (want0, want1), "{rows:?}");
            let mut cols = [0u8; 6 * 3];
            net3_sorted_pair_body(&rows, &mut cols, &mut o0, &mut o1);
            assert_eq!((o0[0], o1[0]), (want0, want1), "sorted columns: {rows:?}");
        }
    }

    #[test]
    fn insert_sorted_sorts() {
        for x in 0..6u8 {
            let s = [1u8, 2, 3, 4];
            let mut want = vec![x, 1, 2, 3, 4];
            want.sort();
            let got: [u8; 5] = insert_sorted(x, s);
            assert_eq!(got.to_vec(), want);
        }
    }
}
