//! Stripes found and replaced rather than smoothed away: algorithms 4 (detection), 5 (large
//! stripes) and 6 (unresponsive and fluctuating, "dead", stripes) of Vo, Atwood &
//! Drakopoulos, Optics Express 26(22), 28396 (2018), as algotom 1.7 computes them
//! (`util.detect_stripe`, `remove_large_stripe`, `remove_dead_stripe`), step by step in the
//! same precision (float32 where numpy stays in float32, float64 where it promotes).
//!
//! One deliberate difference: algotom raises an error on a sinogram whose normalised
//! profile has no noise ("doesn't work on noise-free data"), which would stop a whole stack
//! for one empty row (a region outside the sample, a zero-padded border). Here such a
//! sinogram is left as it is by that method: no stripe can be told from noise in it.

use super::sorting::{RowMedian, Sorted, Window, order_key};
use crate::filters::median::BorderMode;

/// algotom's `drop_ratio` (fixed at its default, as MantidImaging does): the share of each
/// sorted column, half at each end, left out of the column means.
const DROP_RATIO: f64 = 0.1;

/// algotom's `smooth_strength`: the window of the uniform filter along the angles that
/// shows a dead stripe by how much its column differs from its own running mean.
const SMOOTH_STRENGTH: usize = 10;

/// Algorithm 4 (`util.detect_stripe`): which entries of the normalised profile `list` stand
/// out of the straight line fitted to the middle half of its sorted values by more than
/// `snr` / 2 noise levels. `None` where the profile has no noise to measure against.
pub fn detect_stripes(list: &[f64], snr: f64) -> Option<Vec<bool>> {
    let n = list.len();
    let mut sorted = list.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    // np.int16(0.25 * npoint), then xlist[ndrop:-ndrop-1].
    let drop = (0.25 * n as f64) as usize;
    let end = n.checked_sub(drop + 1)?;
    if end < drop + 2 {
        return None;
    }
    let (slope, intercept) = fit_line(drop, &sorted[drop..end]);
    let last = (n - 1) as f64;
    let y_end = intercept + slope * last;
    let noise = (y_end - intercept).abs();
    if noise < 1.0e-5 || !noise.is_finite() {
        return None;
    }
    let above = (sorted[n - 1] - y_end).abs() / noise;
    let below = (intercept - sorted[0]).abs() / noise;
    let mut mask = vec![false; n];
    if above >= snr {
        let upper = y_end + noise * snr * 0.5;
        for (m, &v) in mask.iter_mut().zip(list) {
            *m |= v > upper;
        }
    }
    if below >= snr {
        let lower = intercept - noise * snr * 0.5;
        for (m, &v) in mask.iter_mut().zip(list) {
            *m |= v <= lower;
        }
    }
    Some(mask)
}

/// The least-squares line through `(first + i, y[i])`: `np.polyfit(x, y, 1)`.
fn fit_line(first: usize, y: &[f64]) -> (f64, f64) {
    let n = y.len() as f64;
    let mean_x = first as f64 + (n - 1.0) / 2.0;
    let mean_y = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, &v) in y.iter().enumerate() {
        let dx = (first + i) as f64 - mean_x;
        sxy += dx * (v - mean_y);
        sxx += dx * dx;
    }
    let slope = sxy / sxx;
    (slope, mean_y - slope * mean_x)
}

/// `ndi.binary_dilation(mask, iterations=1)`: each detected entry takes its two neighbours.
fn dilate(mask: &[bool]) -> Vec<bool> {
    let n = mask.len();
    (0..n)
        .map(|x| mask[x] || (x > 0 && mask[x - 1]) || (x + 1 < n && mask[x + 1]))
        .collect()
}

/// Algorithm 5 (`remove_large_stripe(sino, snr, size, drop_ratio=0.1, norm=True)`), in
/// place on a `rows × cols` float32 sinogram of `sorted`'s shape: every column is divided by
/// how much brighter its sorted values are than their smoothed neighbours' (`norm`), and the
/// columns detected as large stripes are replaced by their sorted-and-smoothed values sorted
/// back. Returns whether stripes could be looked for (see the module documentation).
pub fn remove_large_stripes(sino: &mut [f32], snr: f64, size: usize, sorted: &mut Sorted) -> bool {
    let cols = sorted.cols();
    let rows = sino.len() / cols;
    let drop = (0.5 * DROP_RATIO * rows as f64) as usize;
    sorted.sort(sino);
    sorted.smooth(size, Window::Row);
    let kept = drop..rows - drop;
    let count = kept.len() as f64;
    let factors: Vec<f64> = (0..cols)
        .map(|x| {
            let (mut sum1, mut sum2) = (0.0f64, 0.0f64);
            for k in kept.clone() {
                sum1 += f64::from(sorted.sorted(k, x));
                sum2 += f64::from(sorted.smoothed(k, x));
            }
            let (mean1, mean2) = (sum1 / count, sum2 / count);
            if mean2 != 0.0 { mean1 / mean2 } else { 1.0 }
        })
        .collect();
    let Some(mask) = detect_stripes(&factors, snr) else {
        return false;
    };
    let mask = dilate(&mask);
    for row in sino.chunks_exact_mut(cols) {
        for (v, f) in row.iter_mut().zip(&factors) {
            *v = (f64::from(*v) / f) as f32;
        }
    }
    sorted.unsort_columns_into(&mask, sino);
    true
}

/// Algorithm 6 (`remove_dead_stripe(sino, snr, size, residual, smooth_strength=10)`), in
/// place: columns that follow their own running mean along the angles much less or much
/// more than their neighbours do are replaced by linear interpolation across the detector
/// from the nearest good columns (when fewer than a third are found); then, with
/// `residual`, the large-stripe method cleans what is left. Returns whether stripes could be
/// looked for.
pub fn remove_dead_stripes(
    sino: &mut [f32],
    snr: f64,
    size: usize,
    residual: bool,
    sorted: &mut Sorted,
    median: &mut RowMedian,
) -> bool {
    let cols = sorted.cols();
    let rows = sino.len() / cols;
    // |sinogram - uniform_filter1d(sinogram, 10, axis=0)| summed down each column, in
    // float32 as numpy does.
    let mut diff = vec![0f32; cols];
    let mut line = Vec::with_capacity(rows + SMOOTH_STRENGTH);
    let mut smooth = vec![0f32; rows];
    for x in 0..cols {
        line.clear();
        line.extend((0..rows + SMOOTH_STRENGTH - 1).map(|i| {
            let at = BorderMode::Reflect
                .source_index(i as isize - (SMOOTH_STRENGTH / 2) as isize, rows)
                .expect("reflect reads inside the column");
            sino[at * cols + x]
        }));
        uniform_filter(&line, SMOOTH_STRENGTH, &mut smooth);
        let mut sum = 0f32;
        for (p, &s) in smooth.iter().enumerate() {
            sum += (sino[p * cols + x] - s).abs();
        }
        diff[x] = sum;
    }
    let keys: Vec<u32> = diff.iter().map(|&v| order_key(v)).collect();
    let mut background = vec![0f32; cols];
    median.filter(&keys, size, &mut background);
    let mean_abs =
        (background.iter().map(|&v| f64::from(v.abs())).sum::<f64>() / cols as f64) as f32;
    let factors: Vec<f64> = diff
        .iter()
        .zip(&background)
        .map(|(&d, &b)| f64::from(d / if b == 0.0 { mean_abs } else { b }))
        .collect();
    let Some(mask) = detect_stripes(&factors, snr) else {
        return false;
    };
    let mut mask = dilate(&mask);
    for m in mask.iter_mut().take(2) {
        *m = false;
    }
    for m in mask.iter_mut().rev().take(2) {
        *m = false;
    }
    let missing = mask.iter().filter(|&&m| m).count();
    if missing > 0 && missing < cols / 3 {
        interpolate_columns(sino, cols, &mask);
    }
    if residual {
        remove_large_stripes(sino, snr, size, sorted);
    }
    true
}

/// `scipy.ndimage.uniform_filter1d` of size `size` over `extended` (the line with
/// `size / 2` values before it and `size - size / 2 - 1` after), scipy's running mean in
/// float64, each output rounded to float32.
fn uniform_filter(extended: &[f32], size: usize, out: &mut [f32]) {
    let mut sum: f64 = extended[..size].iter().map(|&v| f64::from(v)).sum();
    sum /= size as f64;
    out[0] = sum as f32;
    for i in 1..out.len() {
        sum += (f64::from(extended[i + size - 1]) - f64::from(extended[i - 1])) / size as f64;
        out[i] = sum as f32;
    }
}

/// Each row's values in the `missing` columns replaced by the straight line between the
/// nearest good columns either side (scipy's `RectBivariateSpline(kx=1, ky=1)` evaluated on
/// the rows' own coordinates). The first and last columns are never missing.
fn interpolate_columns(sino: &mut [f32], cols: usize, missing: &[bool]) {
    let good: Vec<usize> = (0..cols).filter(|&x| !missing[x]).collect();
    for row in sino.chunks_exact_mut(cols) {
        let mut right = 1;
        for x in (0..cols).filter(|&x| missing[x]) {
            while good[right] < x {
                right += 1;
            }
            let (x0, x1) = (good[right - 1], good[right]);
            let (v0, v1) = (f64::from(row[x0]), f64::from(row[x1]));
            let t = (x - x0) as f64 / (x1 - x0) as f64;
            row[x] = (v0 + (v1 - v0) * t) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile of small noise with one bright and one dark outlier.
    fn profile() -> Vec<f64> {
        (0..100)
            .map(|i| 1.0 + 0.001 * ((i * 37 % 17) as f64 - 8.0))
            .enumerate()
            .map(|(i, v)| match i {
                30 => 1.5,
                70 => 0.5,
                _ => v,
            })
            .collect()
    }

    #[test]
    fn detection_finds_the_outliers_and_only_them() {
        let mask = detect_stripes(&profile(), 3.0).expect("a noisy profile");
        let found: Vec<usize> = (0..100).filter(|&i| mask[i]).collect();
        assert_eq!(found, [30, 70]);
    }

    #[test]
    fn a_noise_free_profile_finds_nothing_instead_of_failing() {
        assert_eq!(detect_stripes(&[2.0; 50], 3.0), None);
    }

    #[test]
    fn dilation_takes_both_neighbours() {
        let mask = [false, true, false, false, false, true];
        assert_eq!(dilate(&mask), [true, true, true, false, true, true]);
    }

    #[test]
    fn interpolation_is_the_line_between_good_neighbours() {
        let mut sino = [0.0, 1.0, 100.0, 100.0, 4.0, 5.0];
        interpolate_columns(&mut sino, 6, &[false, false, true, true, false, false]);
        assert_eq!(sino, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn uniform_filter_is_the_running_mean() {
        let line = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut out = [0f32; 3];
        uniform_filter(&line, 4, &mut out);
        assert_eq!(out, [2.5, 3.5, 4.5]);
    }
}
