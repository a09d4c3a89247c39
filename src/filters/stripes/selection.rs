//! The median across the detector of a column-sorted sinogram, computed for 16 sorted rows
//! at once: the sorted image is kept column by column, so the same rank `k .. k + 16` of
//! neighbouring columns are 16 contiguous keys, and every step below is a vector operation
//! over those 16 lanes, with no branches.
//!
//! Along a row the window slides one column at a time. Each lane keeps its window sorted: the
//! first window is sorted by a sorting network (K. E. Batcher's odd–even merge sort, "Sorting
//! networks and their applications", AFIPS 1968, for the next power of two, with the
//! comparators that touch the missing inputs, read as +∞, dropped), then each step removes
//! the key that leaves and inserts the one that enters in one pass over the window, a min and
//! a max per slot ([`slide`]). The median is the middle slot: one of the inputs, so the result
//! is exactly scipy.ndimage's median.

use std::marker::PhantomData;

use super::sorting::key_value;
use crate::filters::median::{BorderMode, Isa, Sample, per_isa};

/// Sorted rows (ranks) computed together, one per vector lane.
pub const LANES: usize = 16;

/// The comparators that sort `size` inputs (so the median lands at `size / 2`), and the
/// running median they start.
pub struct MedianNetwork {
    size: usize,
    pairs: Vec<(u16, u16)>,
}

impl MedianNetwork {
    pub fn new(size: usize) -> MedianNetwork {
        assert!(size % 2 == 1 && size < 1 << 15, "invariant: an odd window");
        if size == 1 {
            return MedianNetwork {
                size,
                pairs: Vec::new(),
            };
        }
        let n = size.next_power_of_two();
        let mut pairs = Vec::new();
        let mut p = 1;
        while p < n {
            let mut k = p;
            while k >= 1 {
                let mut j = k % p;
                while j + k < n {
                    for i in 0..k.min(n - j - k) {
                        if (i + j) / (2 * p) == (i + j + k) / (2 * p) {
                            pairs.push((i + j, i + j + k));
                        }
                    }
                    j += 2 * k;
                }
                k /= 2;
            }
            p *= 2;
        }
        // An input past `size` is +∞: a comparator with one never moves it.
        pairs.retain(|&(_, b)| b < size);
        let pairs = pairs
            .into_iter()
            .map(|(a, b)| (a as u16, b as u16))
            .collect();
        MedianNetwork { size, pairs }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// `out[x * rows + k]` = the median of `keys[x' * rows + k]` over the columns x' of the
    /// window `x - size/2 ..= x + size/2` (scipy's `reflect` border), as values; both
    /// column-major, `rows × cols`.
    pub fn filter(&self, keys: &[u32], rows: usize, cols: usize, out: &mut [f32]) {
        let sources: Vec<usize> = (0..cols + self.size - 1)
            .map(|i| {
                BorderMode::Reflect
                    .source_index(i as isize - (self.size / 2) as isize, cols)
                    .expect("reflect reads inside the row")
            })
            .collect();
        median_lanes::<f32>(Isa::best(), self, keys, rows, &sources, out, PhantomData);
    }
}

per_isa!(fn median_lanes = median_lanes_body(
    network: &MedianNetwork,
    keys: &[u32],
    rows: usize,
    sources: &[usize],
    out: &mut [f32],
    _compiled_per_type: PhantomData<T>,
));

#[inline(always)]
fn median_lanes_body<T: Sample>(
    network: &MedianNetwork,
    keys: &[u32],
    rows: usize,
    sources: &[usize],
    out: &mut [f32],
    _compiled_per_type: PhantomData<T>,
) {
    let (size, pairs) = (network.size, &network.pairs);
    let half = size / 2;
    let cols = sources.len() + 1 - size;
    // Blocks of 16 ranks; the last one shifted back to end at the last rank (or, with fewer
    // than 16 ranks, reading the last rank again in the lanes past it).
    let starts = (0..rows.saturating_sub(LANES) + 1)
        .step_by(LANES)
        .chain((rows > LANES && !rows.is_multiple_of(LANES)).then(|| rows - LANES));
    let load = |lanes: &mut [u32; LANES], column: usize, k0: usize| {
        let column = &keys[column * rows..][..rows];
        if k0 + LANES <= rows {
            lanes.copy_from_slice(&column[k0..k0 + LANES]);
        } else {
            for (l, lane) in lanes.iter_mut().enumerate() {
                *lane = column[(k0 + l).min(rows - 1)];
            }
        }
    };
    // Every block of ranks advances one column at a time, together: a column's keys are
    // then read once, in order, rather than once per block with a column's stride.
    let starts: Vec<usize> = starts.collect();
    let mut sorted = vec![[0u32; LANES]; starts.len() * size];
    for (b, &k0) in starts.iter().enumerate() {
        let window = &mut sorted[b * size..(b + 1) * size];
        for (t, lanes) in window.iter_mut().enumerate() {
            load(lanes, sources[t], k0);
        }
        for &(a, b) in pairs {
            let (lo, hi) = (window[a as usize], window[b as usize]);
            let (mut min, mut max) = ([0u32; LANES], [0u32; LANES]);
            for l in 0..LANES {
                min[l] = lo[l].min(hi[l]);
                max[l] = lo[l].max(hi[l]);
            }
            window[a as usize] = min;
            window[b as usize] = max;
        }
    }
    let (mut incoming, mut outgoing) = ([0u32; LANES], [0u32; LANES]);
    for x in 0..cols {
        for (b, &k0) in starts.iter().enumerate() {
            let window = &mut sorted[b * size..(b + 1) * size];
            if x > 0 {
                load(&mut incoming, sources[x + size - 1], k0);
                load(&mut outgoing, sources[x - 1], k0);
                slide(window, &outgoing, &incoming);
            }
            let end = (k0 + LANES).min(rows);
            for (o, &key) in out[x * rows + k0..x * rows + end]
                .iter_mut()
                .zip(&window[half])
            {
                *o = key_value(key);
            }
        }
    }
}

/// Each lane's sorted `window` with one `outgoing` key replaced by `incoming`, in one pass
/// and no branches: with `L(i)` = the window without `outgoing` (`w[i]` below it, `w[i + 1]`
/// from it on), slot i becomes `min(L(i), max(incoming, L(i − 1)))`, which is `L(i)` before
/// the place `incoming` goes, `incoming` there, and `L(i − 1)` after it.
#[inline(always)]
fn slide(window: &mut [[u32; LANES]], outgoing: &[u32; LANES], incoming: &[u32; LANES]) {
    let size = window.len();
    let mut before = [0u32; LANES];
    let mut here = window[0];
    for i in 0..size {
        let next = if i + 1 < size {
            window[i + 1]
        } else {
            [u32::MAX; LANES]
        };
        let mut slot = [0u32; LANES];
        for l in 0..LANES {
            let without = if here[l] < outgoing[l] {
                here[l]
            } else {
                next[l]
            };
            slot[l] = without.min(incoming[l].max(before[l]));
            before[l] = without;
        }
        window[i] = slot;
        here = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every 0-1 input of the window: the network's middle output is the median (the 0-1
    /// principle makes that enough for every input).
    #[test]
    fn the_network_selects_the_median_of_every_0_1_input() {
        for size in [3, 5, 7, 9, 11, 13, 15, 17] {
            let net = MedianNetwork::new(size);
            for bits in 0u32..1 << size {
                let mut v: Vec<u32> = (0..size).map(|i| bits >> i & 1).collect();
                for &(a, b) in &net.pairs {
                    let (a, b) = (a as usize, b as usize);
                    if v[a] > v[b] {
                        v.swap(a, b);
                    }
                }
                let ones = bits.count_ones() as usize;
                let median = u32::from(ones > size / 2);
                assert_eq!(v[size / 2], median, "size {size}, input {bits:b}");
            }
        }
    }

    #[test]
    fn wide_windows_select_the_median_of_random_inputs() {
        let mut state = 7u64;
        for size in [21, 31, 51, 61, 101] {
            let net = MedianNetwork::new(size);
            for _ in 0..200 {
                let mut v: Vec<u32> = (0..size)
                    .map(|_| {
                        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                        (state >> 50) as u32
                    })
                    .collect();
                let mut sorted = v.clone();
                sorted.sort_unstable();
                for &(a, b) in &net.pairs {
                    let (a, b) = (a as usize, b as usize);
                    if v[a] > v[b] {
                        v.swap(a, b);
                    }
                }
                assert_eq!(v[size / 2], sorted[size / 2], "size {size}");
            }
        }
    }

    /// The sliding window against each window sorted anew, with many ties, for rank counts
    /// below, at and past the 16 lanes and row lengths shorter than the window.
    #[test]
    fn the_running_median_equals_sorting_every_window() {
        let mut state = 99u64;
        for (rows, cols, size) in [
            (5, 40, 21),
            (16, 33, 7),
            (37, 64, 21),
            (20, 9, 51),
            (50, 120, 51),
        ] {
            let keys: Vec<u32> = (0..rows * cols)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    0x8000_0000 + (state >> 59) as u32
                })
                .collect();
            let mut out = vec![0f32; rows * cols];
            MedianNetwork::new(size).filter(&keys, rows, cols, &mut out);
            let half = (size / 2) as isize;
            for x in 0..cols {
                for k in 0..rows {
                    let mut window: Vec<u32> = (x as isize - half..=x as isize + half)
                        .map(|i| {
                            let c = BorderMode::Reflect
                                .source_index(i, cols)
                                .expect("reflect reads inside the row");
                            keys[c * rows + k]
                        })
                        .collect();
                    window.sort_unstable();
                    let expected = key_value(window[size / 2]);
                    assert_eq!(
                        out[x * rows + k],
                        expected,
                        "rows {rows} cols {cols} size {size} at ({k}, {x})"
                    );
                }
            }
        }
    }
}
