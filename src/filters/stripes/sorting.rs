//! Sorting each column of a sinogram along the angles, smoothing the sorted image across the
//! detector, and sorting back: algorithm 3 of Vo, Atwood & Drakopoulos, "Superior techniques
//! for eliminating ring artifacts in X-ray micro-tomography", Optics Express 26(22), 28396
//! (2018), as algotom 1.7 computes it (`remove_stripe_based_sorting`, with
//! `util.sort_forward` and `util.sort_backward`). The large-stripe method and the filtering
//! method use the same pieces.
//!
//! Values are ranked through an order-preserving `u32` key (numpy's sort order: −∞ … −0 = +0
//! … +∞, then NaN), packed with the angle index into one `u64`, so one unstable sort of
//! integers gives the sorted column *and* breaks ties by angle (a stable order; numpy's
//! argsort leaves the order of ties unspecified, see docs/stripes.md). The median across the
//! detector (a `1 × size` window, scipy.ndimage's `reflect` border) slides a sorted window
//! of keys along each sorted row: one element out, one in, O(size) per pixel at worst and a
//! few moves on average, against scipy's selection per pixel.

use super::selection::MedianNetwork;
use crate::filters::median::{BorderMode, MedianParams, median_filter};

/// The key whose unsigned order is numpy's sort order of float32 values. Both zeros get the
/// key of +0 (numpy ranks them equal) and every NaN the largest key.
#[inline]
pub(crate) fn order_key(v: f32) -> u32 {
    if v.is_nan() {
        return u32::MAX;
    }
    let v = if v == 0.0 { 0.0 } else { v };
    let bits = v.to_bits();
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// The value of an [`order_key`] (a NaN for the NaN key, +0 for the zeros').
#[inline]
pub(crate) fn key_value(key: u32) -> f32 {
    if key == u32::MAX {
        return f32::NAN;
    }
    let bits = if key & 0x8000_0000 != 0 {
        key & 0x7fff_ffff
    } else {
        !key
    };
    f32::from_bits(bits)
}

/// The shape of the median window on the sorted image: algotom's `dim`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// `(1, size)`: across the detector only.
    Row,
    /// `(size, size)`: across the detector and the sorted angles.
    Square,
}

/// A sinogram sorted column by column, with where each sorted value came from, and its
/// smoothed version. Kept column-major (each column's ranks contiguous): the sort writes
/// whole columns and the median reads 16 ranks of a column at once. Reused from sinogram to
/// sinogram by one worker.
pub struct Sorted {
    rows: usize,
    cols: usize,
    /// `keys[x * rows + k]`: the key of the k-th smallest value of column x.
    keys: Vec<u32>,
    /// `index[x * rows + k]`: the angle that value came from.
    index: Vec<u32>,
    /// The median-smoothed sorted image, column-major as `keys`.
    smoothed: Vec<f32>,
    /// The sinogram transposed (column-major), for the sort.
    columns: Vec<f32>,
    column: Vec<u64>,
    spare: Vec<u64>,
    network: Option<MedianNetwork>,
    /// Row-major images for the square window, which the 2-D median takes.
    square_in: Vec<f32>,
    square_out: Vec<f32>,
}

impl Sorted {
    pub fn new(rows: usize, cols: usize) -> Sorted {
        Sorted {
            rows,
            cols,
            keys: vec![0; rows * cols],
            index: vec![0; rows * cols],
            smoothed: vec![0.0; rows * cols],
            columns: vec![0.0; rows * cols],
            column: Vec::with_capacity(rows),
            spare: Vec::with_capacity(rows),
            network: None,
            square_in: Vec::new(),
            square_out: Vec::new(),
        }
    }

    /// Columns (detector pixels) of the sinograms it takes.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Sorts each column of `sino` (`rows × cols`, row-major) along the rows: algotom's
    /// `sort_forward(sino, axis=0)`, ties in angle order.
    pub fn sort(&mut self, sino: &[f32]) {
        let (rows, cols) = (self.rows, self.cols);
        assert_eq!(sino.len(), rows * cols, "invariant: a rows × cols sinogram");
        transpose(sino, rows, cols, &mut self.columns);
        for x in 0..cols {
            let column = &self.columns[x * rows..(x + 1) * rows];
            self.column.clear();
            self.column.extend(
                column
                    .iter()
                    .enumerate()
                    .map(|(p, &v)| (u64::from(order_key(v)) << 32) | p as u64),
            );
            radix_sort_by_key(&mut self.column, &mut self.spare);
            let keys = &mut self.keys[x * rows..(x + 1) * rows];
            let index = &mut self.index[x * rows..(x + 1) * rows];
            for ((key, at), &packed) in keys.iter_mut().zip(index.iter_mut()).zip(&self.column) {
                *key = (packed >> 32) as u32;
                *at = packed as u32;
            }
        }
    }

    /// The k-th smallest value of column x.
    #[inline]
    pub fn sorted(&self, k: usize, x: usize) -> f32 {
        key_value(self.keys[x * self.rows + k])
    }

    /// The smoothed k-th smallest value of column x.
    #[inline]
    pub fn smoothed(&self, k: usize, x: usize) -> f32 {
        self.smoothed[x * self.rows + k]
    }

    /// Median-filters the sorted image with a `size`-wide window (odd), scipy.ndimage's
    /// `median_filter(sorted, (1, size))` or `(size, size)`, border `reflect`.
    pub fn smooth(&mut self, size: usize, window: Window) {
        let (rows, cols) = (self.rows, self.cols);
        match window {
            Window::Row => {
                if self.network.as_ref().is_none_or(|n| n.size() != size) {
                    self.network = Some(MedianNetwork::new(size));
                }
                let network = self.network.as_ref().expect("made above");
                network.filter(&self.keys, rows, cols, &mut self.smoothed);
            }
            Window::Square => {
                // The 2-D median takes row-major images.
                self.square_in.resize(rows * cols, 0.0);
                self.square_out.resize(rows * cols, 0.0);
                for x in 0..cols {
                    for k in 0..rows {
                        self.square_in[k * cols + x] = key_value(self.keys[x * rows + k]);
                    }
                }
                let params = MedianParams {
                    size,
                    mode: BorderMode::Reflect,
                    cval: 0.0,
                };
                median_filter(&self.square_in, &mut self.square_out, cols, rows, &params);
                transpose(&self.square_out, rows, cols, &mut self.smoothed);
            }
        }
    }

    /// Puts each smoothed value back where its sorted value came from: algotom's
    /// `sort_backward(smoothed, index, axis=0)`, into `out` (`rows × cols`, row-major).
    pub fn unsort_into(&mut self, out: &mut [f32]) {
        self.unsort(None, out);
    }

    /// As [`Sorted::unsort_into`], for the columns `x` with `only[x]` alone (the others of
    /// `out` are kept).
    pub fn unsort_columns_into(&mut self, only: &[bool], out: &mut [f32]) {
        self.unsort(Some(only), out);
    }

    /// Column by column into the transposed buffer (each column's writes stay in cache), then
    /// transposed into place; with `only`, the buffer starts as `out`, so the other columns
    /// come back unchanged.
    fn unsort(&mut self, only: Option<&[bool]>, out: &mut [f32]) {
        let (rows, cols) = (self.rows, self.cols);
        if only.is_some() {
            transpose(out, rows, cols, &mut self.columns);
        }
        for x in (0..cols).filter(|&x| only.is_none_or(|only| only[x])) {
            let index = &self.index[x * rows..(x + 1) * rows];
            let smoothed = &self.smoothed[x * rows..(x + 1) * rows];
            let column = &mut self.columns[x * rows..(x + 1) * rows];
            for (&p, &v) in index.iter().zip(smoothed) {
                column[p as usize] = v;
            }
        }
        transpose(&self.columns, cols, rows, out);
    }
}

/// Sorts `packed` (key in the high 32 bits, angle in the low, in angle order) by key, keeping
/// the angle order of equal keys: a least-significant-digit radix sort on the key's four
/// bytes (a stable counting sort per byte), skipping the bytes every key shares (a column's
/// values mostly share their exponent). For a column of a few hundred values this does a
/// fraction of a comparison sort's work, and it is stable by construction.
fn radix_sort_by_key(packed: &mut Vec<u64>, spare: &mut Vec<u64>) {
    let n = packed.len();
    let mut counts = [[0u32; 256]; 4];
    for &v in packed.iter() {
        let key = (v >> 32) as u32;
        for (d, count) in counts.iter_mut().enumerate() {
            count[(key >> (8 * d)) as usize & 0xff] += 1;
        }
    }
    spare.clear();
    spare.resize(n, 0);
    for (d, count) in counts.iter().enumerate() {
        if count.iter().any(|&c| c as usize == n) {
            continue;
        }
        let mut next = [0u32; 256];
        let mut total = 0;
        for (slot, &c) in next.iter_mut().zip(count) {
            *slot = total;
            total += c;
        }
        for &v in packed.iter() {
            let digit = (v >> (32 + 8 * d)) as usize & 0xff;
            spare[next[digit] as usize] = v;
            next[digit] += 1;
        }
        std::mem::swap(packed, spare);
    }
}

/// `to` = `from` (`rows × cols`, row-major) transposed, in tiles that stay in cache, each
/// tile's output written column by column (contiguous stores).
fn transpose(from: &[f32], rows: usize, cols: usize, to: &mut [f32]) {
    const TILE: usize = 16;
    for r0 in (0..rows).step_by(TILE) {
        let r1 = (r0 + TILE).min(rows);
        for c0 in (0..cols).step_by(TILE) {
            for c in c0..(c0 + TILE).min(cols) {
                let column = &mut to[c * rows + r0..c * rows + r1];
                for (r, v) in (r0..r1).zip(column.iter_mut()) {
                    *v = from[r * cols + c];
                }
            }
        }
    }
}

/// A running median of `size` (odd) along a row of keys, with scipy.ndimage's `reflect`
/// border (`d c b a | a b c d | d c b a`, periodic when the window is wider than the row).
#[derive(Default)]
pub struct RowMedian {
    extended: Vec<u32>,
    window: Vec<u32>,
}

impl RowMedian {
    /// `out[x]` = the median of `keys[x - size/2 ..= x + size/2]` (as a value).
    pub fn filter(&mut self, keys: &[u32], size: usize, out: &mut [f32]) {
        let n = keys.len();
        let half = size / 2;
        self.extended.clear();
        self.extended.extend((0..n + 2 * half).map(|i| {
            let at = BorderMode::Reflect
                .source_index(i as isize - half as isize, n)
                .expect("reflect reads inside the row");
            keys[at]
        }));
        self.window.clear();
        self.window.extend_from_slice(&self.extended[..size]);
        self.window.sort_unstable();
        out[0] = key_value(self.window[half]);
        for (x, out) in out.iter_mut().enumerate().skip(1) {
            let old = self.extended[x - 1];
            let new = self.extended[x + size - 1];
            replace_sorted(&mut self.window, old, new);
            *out = key_value(self.window[half]);
        }
    }
}

/// Replaces one `old` in the sorted `window` by `new`, keeping it sorted.
#[inline]
fn replace_sorted(window: &mut [u32], old: u32, new: u32) {
    if old == new {
        return;
    }
    let mut i = window.partition_point(|&v| v < old);
    if new > old {
        while i + 1 < window.len() && window[i + 1] < new {
            window[i] = window[i + 1];
            i += 1;
        }
    } else {
        while i > 0 && window[i - 1] > new {
            window[i] = window[i - 1];
            i -= 1;
        }
    }
    window[i] = new;
}

/// algotom's `remove_stripe_based_sorting(sino, size, dim)`, in place on a float32
/// sinogram of `sorted`'s shape.
pub fn remove_stripe_sorting(sino: &mut [f32], size: usize, window: Window, sorted: &mut Sorted) {
    sorted.sort(sino);
    sorted.smooth(size, window);
    sorted.unsort_into(sino);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_numpys_order_and_round_trip() {
        let values = [
            f32::NEG_INFINITY,
            -3.5,
            -1e-40,
            0.0,
            1e-40,
            2.0,
            f32::MAX,
            f32::INFINITY,
        ];
        for pair in values.windows(2) {
            assert!(order_key(pair[0]) < order_key(pair[1]), "{pair:?}");
        }
        for v in values {
            assert_eq!(key_value(order_key(v)).to_bits(), v.to_bits());
        }
        assert_eq!(order_key(-0.0), order_key(0.0));
        assert!(order_key(f32::NAN) > order_key(f32::INFINITY));
        assert!(key_value(order_key(f32::NAN)).is_nan());
    }

    /// The median of each window taken the slow way, as scipy defines it.
    fn running_median_by_sorting(row: &[f32], size: usize) -> Vec<f32> {
        let n = row.len() as isize;
        let half = (size / 2) as isize;
        (0..n)
            .map(|x| {
                let mut w: Vec<f32> = (x - half..=x + half)
                    .map(|i| {
                        let at = BorderMode::Reflect.source_index(i, n as usize);
                        row[at.expect("reflect reads inside the row")]
                    })
                    .collect();
                w.sort_by(f32::total_cmp);
                w[size / 2]
            })
            .collect()
    }

    #[test]
    fn running_median_equals_sorting_each_window() {
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) % 50) as f32 - 20.0
        };
        let mut median = RowMedian::default();
        for (n, size) in [(40, 3), (40, 21), (7, 21), (1, 5), (64, 51)] {
            let row: Vec<f32> = (0..n).map(|_| next()).collect();
            let keys: Vec<u32> = row.iter().map(|&v| order_key(v)).collect();
            let mut out = vec![0.0; n];
            median.filter(&keys, size, &mut out);
            assert_eq!(
                out,
                running_median_by_sorting(&row, size),
                "n {n} size {size}"
            );
        }
    }

    #[test]
    fn sorting_breaks_ties_by_angle_and_sorts_back() {
        // Three angles, two columns; column 0 has a tie between angles 0 and 2.
        let sino = [5.0, 1.0, 3.0, 2.0, 5.0, 0.0];
        let mut sorted = Sorted::new(3, 2);
        sorted.sort(&sino);
        assert_eq!(
            (0..3).map(|k| sorted.sorted(k, 0)).collect::<Vec<_>>(),
            [3.0, 5.0, 5.0]
        );
        assert_eq!(sorted.index[1], 0, "the tie at rank 1 is angle 0");
        assert_eq!(sorted.index[2], 2);
        // A window of 1 smooths nothing: sorting back restores the sinogram.
        sorted.smooth(1, Window::Row);
        let mut back = [0.0; 6];
        sorted.unsort_into(&mut back);
        assert_eq!(back, sino);
    }
}
