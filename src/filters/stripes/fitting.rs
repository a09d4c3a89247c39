//! Fitting-based stripe removal: algorithm 1 of Vo, Atwood and Drakopoulos, "Superior techniques
//! for eliminating ring artifacts in X-ray micro-tomography", Optics Express 26(22), 28396
//! (2018), as algotom's `prep.removal.remove_stripe_based_fitting(sinogram, order, sigma,
//! sort=False, num_chunk=1)` computes it on a float32 sinogram (`rows` angles x `cols` detector
//! columns):
//!
//! 1. `fit`: each column smoothed by a Savitzky–Golay filter of polynomial order `order` whose
//!    window spans the whole column (`rows`, or `rows - 1` when even), mirror-extended at the
//!    ends (`scipy.signal.savgol_filter(..., mode='mirror')`, computed in f64, stored as f32);
//! 2. `filt`: `fit` low-passed by algotom's `util.apply_gaussian_filter(fit, sigma, sigma_y,
//!    pad)`: padded by `pad = min(150, int(0.1 * rows))` on every side (edge values sideways,
//!    column means above and below), multiplied by `(-1)^(x + y)`, 2-D Fourier transformed,
//!    multiplied by a Gaussian of standard deviations `sigma` (across columns) and
//!    `sigma_y = clip(min(60, int(0.1 * cols)), 10, None)` (across rows) centred on the array,
//!    transformed back, multiplied by the signs again, real part, cropped;
//! 3. `filt` rescaled to the mean absolute value of `fit`, and the result is
//!    `(sino / fit) * filt`, rounded to f32 (numpy divides in f32 and multiplies in f64).
//!
//! Speed:
//! * The Savitzky–Golay coefficients at the window centre are a polynomial in the offset `j`
//!   with only even powers, `c_j = sum_q g_q j^q`, so each output is a combination of windowed
//!   moments `sum_t t^k e_t` of the mirror-extended column `e`. Those come from two running sums
//!   per moment (one leading, one trailing the window, updated identically so that their
//!   difference is the window's sum), in f64 with coordinates centred on the extended column
//!   and scaled by the half-window so the powers stay near 1: O(rows) per column instead of
//!   scipy's O(rows^2) direct convolution. Sixteen columns are processed side by side.
//! * The 2-D filter keeps only the real part, which for a real input equals filtering with the
//!   Hermitian part `(R[k] + conj(R[-k])) / 2` of the response `R`; the result of that is real,
//!   so rows are transformed two at a time as the real and imaginary parts of one complex FFT,
//!   and only the non-negative half of the column frequencies is needed. Of those, only the
//!   band where the `sigma`-wide Gaussian is not negligible (above 1e-30 of its peak, or 1e-14
//!   where the response comes from kernel taps with rounding noise at 1e-16) is transformed
//!   along the columns, about one in nine for sigma 10. The padding rows are all the same row up to sign, so their
//!   spectrum is computed once, and only the unpadded rows are transformed back.
//! * A padded axis whose length has a prime factor above 7 (2138 = 2 x 1069 for 450 x 2048)
//!   would make rustfft fall back on Bluestein's algorithm, several times slower. The circular
//!   convolution along such an axis is computed instead as a linear convolution of the
//!   periodically extended axis with the kernel's taps, with transforms of a `2^a 3^b` length;
//!   where the kernel (a Gaussian `length / (2 pi sigma)` wide) is much shorter than the axis,
//!   its taps below 1e-30 of its peak are dropped, which shortens those transforms further.
//!
//! Accuracy: numpy's reductions are reproduced in its order and precision (f32 column means
//! summed row by row, f32 and f64 pairwise sums for the mean absolute values), since their
//! rounding scales the whole result. The Gaussian filter agrees with algotom's to 5e-15 of the
//! largest value; what remains are the Savitzky–Golay sums' rounding, which moves a few outputs
//! in ten thousand by 1 to 3 f32 ulps.
//!
//! Deviation: for `order >= 4` with long columns, scipy's coefficients (a least-squares solve
//! on powers of the raw offsets) lose precision: for order 4 and 1801 rows its result is
//! 2.5e-5 off the exact filter, and for order 6 and 451 rows or more it is meaningless. This
//! module computes the exact filter (to f32 rounding up to order 10 on 1801 rows), so it
//! matches algotom only where algotom is accurate: orders 0 to 3 at any size, 4 and 5 on short
//! columns.

use std::sync::Arc;

use super::fourier::{fast_length_at_least, is_fast_length};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// Columns smoothed side by side by the Savitzky–Golay filter: 16 f32 are a 64-byte cache line
/// of a sinogram row, and 16 f64 accumulators per moment vectorise on any SIMD width.
const LANES: usize = 16;

/// Gaussian weights at or below this are left out of the column transforms (see the module
/// documentation).
const NEGLIGIBLE: f64 = 1e-30;

/// algotom's padding: `min(150, int(0.1 * rows))`.
fn padding(rows: usize) -> usize {
    ((0.1 * rows as f64) as usize).min(150)
}

/// Length of the Savitzky–Golay window algotom uses for `rows` rows: the largest odd number not
/// above `rows`.
pub fn window_length(rows: usize) -> usize {
    if !rows.is_multiple_of(2) {
        rows
    } else {
        rows.saturating_sub(1)
    }
}

/// Whether sinograms with `rows` rows can be fitted with polynomials of order `order` (scipy
/// requires the window to be longer than the order).
pub fn supports(rows: usize, order: usize) -> bool {
    window_length(rows) > order
}

/// Per-thread state of the fitting-based stripe removal for sinograms of one shape: filter
/// coefficients, FFT plans and buffers.
pub struct StripeFitting {
    rows: usize,
    cols: usize,
    savgol: SavitzkyGolay,
    gaussian: GaussianFilter,
    fit: Vec<f32>,
    filtered: Vec<f64>,
}

impl StripeFitting {
    /// Prepares the stripe removal of `rows` x `cols` sinograms with polynomials of order `order`
    /// (algotom's default 2) and a Gaussian of standard deviation `sigma` (in frequency bins,
    /// across columns; algotom's default 10).
    ///
    /// # Panics
    /// If `!supports(rows, order)`, or `sigma` is not positive and finite.
    pub fn new(rows: usize, cols: usize, order: usize, sigma: f64) -> Self {
        assert!(
            supports(rows, order),
            "a polynomial of order {order} cannot be fitted to {rows} rows"
        );
        assert!(
            sigma > 0.0 && sigma.is_finite(),
            "sigma must be positive and finite, not {sigma}"
        );
        StripeFitting {
            rows,
            cols,
            savgol: SavitzkyGolay::new(rows, order),
            gaussian: GaussianFilter::new(rows, cols, sigma),
            fit: vec![0.0; rows * cols],
            filtered: vec![0.0; rows * cols],
        }
    }

    /// Removes stripes from the row-major `rows` x `cols` sinogram `sino` in place.
    ///
    /// # Panics
    /// If `sino` does not hold `rows * cols` values.
    pub fn apply(&mut self, sino: &mut [f32]) {
        let n = self.rows * self.cols;
        assert_eq!(sino.len(), n, "sinogram size");
        if n == 0 {
            return;
        }
        self.savgol.apply(sino, self.cols, &mut self.fit);
        self.gaussian.apply(&self.fit, &mut self.filtered);
        // numpy: np.mean of the float32 |fit| is a float32 pairwise sum divided in f64 by the
        // count; of the float64 |filt|, the same in f64.
        let mean_fit = (pairwise_sum(&self.fit, f32::abs) as f64 / n as f64) as f32;
        let mean_filtered = pairwise_sum(&self.filtered, f64::abs) / n as f64;
        let scale = f64::from(mean_fit);
        for ((s, &fit), &filtered) in sino.iter_mut().zip(&self.fit).zip(&self.filtered) {
            let ratio = *s / fit;
            *s = (f64::from(ratio) * (scale * filtered / mean_filtered)) as f32;
        }
    }
}

/// numpy's pairwise summation (`pairwise_sum` in its loops), reproduced operation by operation
/// because the sum's rounding scales every output value.
fn pairwise_sum<T>(a: &[T], f: impl Fn(T) -> T + Copy) -> T
where
    T: Copy + Default + std::ops::Add<Output = T>,
{
    let n = a.len();
    if n < 8 {
        a.iter().fold(T::default(), |acc, &v| acc + f(v))
    } else if n <= 128 {
        let mut r = [T::default(); 8];
        for (r, &v) in r.iter_mut().zip(a) {
            *r = f(v);
        }
        let whole = n - n % 8;
        for block in a[8..whole].chunks_exact(8) {
            for (r, &v) in r.iter_mut().zip(block) {
                *r = *r + f(v);
            }
        }
        let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        a[whole..].iter().fold(res, |acc, &v| acc + f(v))
    } else {
        let half = n / 2;
        let half = half - half % 8;
        pairwise_sum(&a[..half], f) + pairwise_sum(&a[half..], f)
    }
}

/// Savitzky–Golay smoothing of every column with a window spanning the column and scipy's
/// 'mirror' extension (`d c b | a b c d | c b a`).
struct SavitzkyGolay {
    rows: usize,
    half: usize,
    order: usize,
    /// Row of the sinogram behind each sample of the mirror-extended column.
    source: Vec<usize>,
    /// Scaled coordinate `(t - centre) / half` of each extended sample `t`.
    coords: Vec<f64>,
    /// `weights[i * (order + 1) + k]`: the factor of the windowed moment `k` in output `i`.
    weights: Vec<f64>,
    lead: Vec<[f64; LANES]>,
    lag: Vec<[f64; LANES]>,
}

impl SavitzkyGolay {
    fn new(rows: usize, order: usize) -> Self {
        let half = window_length(rows) / 2;
        let extended = rows + 2 * half;
        let last = rows as isize - 1;
        let source = (0..extended)
            .map(|t| {
                let o = t as isize - half as isize;
                let o = if o < 0 { -o } else { o };
                (if o > last { 2 * last - o } else { o }) as usize
            })
            .collect();
        let scale = half.max(1) as f64;
        let centre = (extended as f64 - 1.0) / 2.0;
        let coords: Vec<f64> = (0..extended).map(|t| (t as f64 - centre) / scale).collect();

        // c_j = sum over even q of g[q / 2] (j / half)^q (odd moments vanish on the symmetric
        // window, so the fitted value at the centre only involves even powers).
        let g = centre_coefficients(half, order);
        let k_count = order + 1;
        let mut weights = vec![0.0; rows * k_count];
        for (i, w) in weights.chunks_exact_mut(k_count).enumerate() {
            // (t - (i + half)) / half = coords[t] - v.
            let v = coords[i + half];
            for (k, w) in w.iter_mut().enumerate() {
                *w = (k..=order)
                    .filter(|q| q % 2 == 0)
                    .map(|q| g[q / 2] * binomial(q, k) * (-v).powi((q - k) as i32))
                    .sum();
            }
        }
        SavitzkyGolay {
            rows,
            half,
            order,
            source,
            coords,
            weights,
            lead: vec![[0.0; LANES]; k_count],
            lag: vec![[0.0; LANES]; k_count],
        }
    }

    fn apply(&mut self, sino: &[f32], cols: usize, fit: &mut [f32]) {
        let (rows, half) = (self.rows, self.half);
        let k_count = self.order + 1;
        for x0 in (0..cols).step_by(LANES) {
            let width = (cols - x0).min(LANES);
            let sample = |t: usize| {
                let mut e = [0.0; LANES];
                let line = &sino[self.source[t] * cols + x0..][..width];
                for (e, &v) in e.iter_mut().zip(line) {
                    *e = f64::from(v);
                }
                (e, self.coords[t])
            };
            self.lead.fill([0.0; LANES]);
            self.lag.fill([0.0; LANES]);
            for t in 0..2 * half {
                let (e, z) = sample(t);
                accumulate(&mut self.lead, e, z);
            }
            for i in 0..rows {
                let (e, z) = sample(i + 2 * half);
                accumulate(&mut self.lead, e, z);
                // The window [i, i + 2 half] of the extended column: lead holds the moments up
                // to its end, lag those before its start, both summed in the same order.
                let mut y = [0.0; LANES];
                let w = &self.weights[i * k_count..][..k_count];
                for ((lead, lag), &w) in self.lead.iter().zip(&self.lag).zip(w) {
                    for l in 0..LANES {
                        y[l] += w * (lead[l] - lag[l]);
                    }
                }
                for (out, &y) in fit[i * cols + x0..][..width].iter_mut().zip(&y) {
                    *out = y as f32;
                }
                let (e, z) = sample(i);
                accumulate(&mut self.lag, e, z);
            }
        }
    }
}

/// Adds `e * z^k` to moment `k` of every lane.
#[inline(always)]
fn accumulate(moments: &mut [[f64; LANES]], e: [f64; LANES], z: f64) {
    let mut term = e;
    for m in moments {
        for l in 0..LANES {
            m[l] += term[l];
            term[l] *= z;
        }
    }
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// The even-power coefficients `g` of the least-squares polynomial's value at the centre of a
/// `2 half + 1` window, in the coordinate `j / half`: the first column of the inverse of the
/// (even part of the) moment matrix.
fn centre_coefficients(half: usize, order: usize) -> Vec<f64> {
    let m = order / 2 + 1;
    let scale = half.max(1) as f64;
    // moments[p] = sum_j (j / half)^(2p)
    let moments: Vec<f64> = (0..2 * m - 1)
        .map(|p| {
            (-(half as isize)..=half as isize)
                .map(|j| (j as f64 / scale).powi(2 * p as i32))
                .sum()
        })
        .collect();
    let mut a: Vec<Vec<f64>> = (0..m)
        .map(|r| {
            let mut row: Vec<f64> = (0..m).map(|c| moments[r + c]).collect();
            row.push(if r == 0 { 1.0 } else { 0.0 });
            row
        })
        .collect();
    // Gaussian elimination with partial pivoting; m is order / 2 + 1, tiny.
    for c in 0..m {
        let p = (c..m)
            .max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs()))
            .unwrap_or(c);
        a.swap(c, p);
        let pivot = a[c].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != c {
                let f = row[c] / pivot[c];
                for (v, &p) in row.iter_mut().zip(&pivot).skip(c) {
                    *v -= f * p;
                }
            }
        }
    }
    a.iter()
        .enumerate()
        .map(|(r, row)| row[m] / row[r])
        .collect()
}

/// The 1-D factor of algotom's `make_2d_gaussian_window`: `exp(-(d^2 / (2 sigma^2)))`, with
/// `d` measured from the centre `(len - 1) / 2`.
fn gaussian_window(len: usize, sigma: f64) -> Vec<f64> {
    let centre = (len as f64 - 1.0) / 2.0;
    (0..len)
        .map(|k| {
            let d = k as f64 - centre;
            (-(d * d / (2.0 * sigma * sigma))).exp()
        })
        .collect()
}

/// How the Gaussian filter runs along one axis of the padded image: a circular convolution of
/// period `count + 2 pad` (the padded length) of which the `count` unpadded outputs are kept.
struct Axis {
    /// Transform length.
    len: usize,
    /// Padded coordinate of each transform input; inputs beyond these are zero.
    source: Vec<usize>,
    /// Index of the first kept output in the inverse transform.
    first: usize,
    /// Filter response along this axis, divided by `len` (rustfft does not normalise).
    response: Vec<Complex<f64>>,
    /// Responses at or below this are negligible (see `GaussianFilter::new`).
    floor: f64,
    forward: Arc<dyn Fft<f64>>,
    inverse: Arc<dyn Fft<f64>>,
}

impl Axis {
    fn new(planner: &mut FftPlanner<f64>, count: usize, pad: usize, sigma: f64) -> Self {
        let period = count + 2 * pad;
        let window = gaussian_window(period, sigma);
        let (len, source, first, response, floor);
        if is_fast_length(period) {
            // algotom's own transform of the padded axis.
            len = period;
            source = (0..period).collect();
            first = pad;
            response = window
                .iter()
                .map(|&w| Complex::new(w / len as f64, 0.0))
                .collect();
            floor = NEGLIGIBLE;
        } else {
            // rustfft would fall back on Bluestein's or Rader's algorithm, several times
            // slower. The same circular convolution, with the kernel's taps at offsets
            // -lo..=hi, is the linear convolution of the periodically extended input
            // v[pad - hi ..= pad + count - 1 + lo] with those taps, computed with a transform
            // of a fast length that cannot wrap around.
            // When the window has fallen to e^-78 at the axis ends (half > 12.5 sigma), the
            // kernel is a Gaussian, |k[d]| ~ exp(-2 (pi sigma d / period)^2), below 1e-30 of
            // its peak beyond d = 1.87 period / sigma; only the taps within `reach` of the
            // centre are then kept (when that is less than a period, the kernel's periodic
            // copies are below 1e-30 there too), which shortens the transform.
            let half = (period as f64 - 1.0) / 2.0;
            let reach = (1.9 * period as f64 / sigma).ceil() as usize;
            let (lo, hi) = if half > 12.5 * sigma && 2 * reach + 1 < period {
                (reach, reach)
            } else {
                (period / 2, period - 1 - period / 2)
            };
            len = fast_length_at_least(count + lo + hi);
            let start = pad + period - hi;
            source = (0..count + lo + hi).map(|j| (start + j) % period).collect();
            first = lo + hi;
            let mut kernel: Vec<Complex<f64>> =
                window.iter().map(|&w| Complex::new(w, 0.0)).collect();
            planner.plan_fft_inverse(period).process(&mut kernel);
            let mut taps = vec![Complex::default(); len];
            for (m, tap) in taps[..=lo + hi].iter_mut().enumerate() {
                *tap = kernel[(m + period - lo) % period] / (period as f64 * len as f64);
            }
            planner.plan_fft_forward(len).process(&mut taps);
            response = taps;
            // The taps carry f64 rounding errors, which spread over the whole spectrum at about
            // 1e-16 of its peak: a lower floor would keep scattered bins of pure noise.
            floor = 1e-14;
        }
        Axis {
            len,
            source,
            first,
            response,
            floor,
            forward: planner.plan_fft_forward(len),
            inverse: planner.plan_fft_inverse(len),
        }
    }

    /// Positions in the transform input that hold padded coordinate `p`.
    fn positions(&self, p: usize, period: usize) -> impl Iterator<Item = usize> + use<> {
        let count = self.source.len();
        let first = (p + period - self.source.first().copied().unwrap_or(0)) % period.max(1);
        (first..count).step_by(period.max(1))
    }
}

/// algotom's `apply_gaussian_filter` with its sinogram defaults (edge padding sideways, column
/// means above and below).
struct GaussianFilter {
    rows: usize,
    cols: usize,
    pad: usize,
    x: Axis,
    y: Axis,
    /// For each input of the row transforms: the unpadded column it repeats (edge padding) and
    /// its sign `(-1)^x` in padded coordinates.
    x_column: Vec<usize>,
    x_sign: Vec<f64>,
    /// Column frequencies in `0..=x.len / 2` whose response is not negligible.
    band: Vec<usize>,
    row: Vec<Complex<f64>>,
    /// Spectrum of the band, one transformed column (`y.len` values) per band frequency.
    spec: Vec<Complex<f64>>,
    means: Vec<f32>,
    scratch: Vec<Complex<f64>>,
}

impl GaussianFilter {
    fn new(rows: usize, cols: usize, sigma_x: f64) -> Self {
        let pad = padding(rows);
        let sigma_y = ((0.1 * cols as f64) as usize).clamp(10, 60) as f64;
        let mut planner = FftPlanner::new();
        let x = Axis::new(&mut planner, cols, pad, sigma_x);
        let y = Axis::new(&mut planner, rows, pad, sigma_y);
        let peak = x.response.iter().map(|z| z.norm()).fold(0.0, f64::max);
        let band: Vec<usize> = (0..=x.len / 2)
            .filter(|&k| {
                let r = &x.response;
                k < x.len && r[k].norm().max(r[(x.len - k) % x.len].norm()) > x.floor * peak
            })
            .collect();
        let scratch_len = [&x.forward, &x.inverse, &y.forward, &y.inverse]
            .iter()
            .map(|f| f.get_inplace_scratch_len())
            .max()
            .unwrap_or(0);
        // Edge padding: a padded column repeats the nearest unpadded one.
        let x_column = x
            .source
            .iter()
            .map(|&p| p.clamp(pad, (pad + cols).max(pad + 1) - 1) - pad)
            .collect();
        let x_sign = x
            .source
            .iter()
            .map(|&p| if p.is_multiple_of(2) { 1.0 } else { -1.0 })
            .collect();
        GaussianFilter {
            rows,
            cols,
            pad,
            x_column,
            x_sign,
            spec: vec![Complex::default(); band.len() * y.len],
            row: vec![Complex::default(); x.len],
            x,
            y,
            band,
            means: vec![0.0; cols],
            scratch: vec![Complex::default(); scratch_len],
        }
    }

    /// Writes the filtered, cropped `fit` into `out` (both `rows` x `cols`, row-major).
    fn apply(&mut self, fit: &[f32], out: &mut [f64]) {
        let (rows, cols, pad) = (self.rows, self.cols, self.pad);
        let (x, y) = (&self.x, &self.y);
        let height = rows + 2 * pad;
        let sign = |n: usize| if n.is_multiple_of(2) { 1.0 } else { -1.0 };

        // np.pad(mode='mean') on float32: each column summed row by row in f32, divided in f64.
        self.means.fill(0.0);
        for line in fit.chunks_exact(cols) {
            for (m, &v) in self.means.iter_mut().zip(line) {
                *m += v;
            }
        }
        for m in &mut self.means {
            *m = (f64::from(*m) / rows as f64) as f32;
        }

        // Every padding row is the row of means times (-1)^y.
        self.row.fill(Complex::default());
        for ((z, &c), &s) in self.row.iter_mut().zip(&self.x_column).zip(&self.x_sign) {
            *z = Complex::new(s * f64::from(self.means[c]), 0.0);
        }
        x.forward
            .process_with_scratch(&mut self.row, &mut self.scratch);
        for (column, &k) in self.spec.chunks_exact_mut(y.len).zip(&self.band) {
            let z = self.row[k];
            for (c, &p) in column.iter_mut().zip(&y.source) {
                if p < pad || p >= pad + rows {
                    *c = sign(p) * z;
                }
            }
            column[y.source.len()..].fill(Complex::default());
        }

        // Data rows two at a time: real and imaginary parts of one transform, separated by the
        // conjugate symmetry of real signals' spectra.
        for p in (pad..pad + rows).step_by(2) {
            let a = &fit[(p - pad) * cols..][..cols];
            let b = (p + 1 < pad + rows).then(|| &fit[(p + 1 - pad) * cols..][..cols]);
            self.row.fill(Complex::default());
            let inputs = self.row.iter_mut().zip(&self.x_column).zip(&self.x_sign);
            match b {
                Some(b) => {
                    for ((z, &c), &s) in inputs {
                        let s = sign(p) * s;
                        *z = Complex::new(s * f64::from(a[c]), -s * f64::from(b[c]));
                    }
                }
                None => {
                    for ((z, &c), &s) in inputs {
                        *z = Complex::new(sign(p) * s * f64::from(a[c]), 0.0);
                    }
                }
            }
            x.forward
                .process_with_scratch(&mut self.row, &mut self.scratch);
            for (column, &k) in self.spec.chunks_exact_mut(y.len).zip(&self.band) {
                let zk = self.row[k];
                let zm = self.row[(x.len - k) % x.len].conj();
                for j in y.positions(p, height) {
                    column[j] = 0.5 * (zk + zm);
                }
                if b.is_some() {
                    let d = zk - zm;
                    for j in y.positions(p + 1, height) {
                        column[j] = Complex::new(0.5 * d.im, -0.5 * d.re);
                    }
                }
            }
        }

        // Along the columns. Only the real part of the result is kept, which for a real input
        // is the result of the Hermitian part of the 2-D response.
        y.forward
            .process_with_scratch(&mut self.spec, &mut self.scratch);
        let (rx, ry) = (&x.response, &y.response);
        for (column, &k) in self.spec.chunks_exact_mut(y.len).zip(&self.band) {
            let (qk, qm) = (rx[k], rx[(x.len - k) % x.len]);
            for (ky, z) in column.iter_mut().enumerate() {
                let e = 0.5 * (ry[ky] * qk + (ry[(y.len - ky) % y.len] * qm).conj());
                *z *= e;
            }
        }
        y.inverse
            .process_with_scratch(&mut self.spec, &mut self.scratch);

        // Back along the rows, only the unpadded ones, two at a time; the spectrum of each real
        // row is rebuilt from its non-negative half.
        for r in (0..rows).step_by(2) {
            let second = r + 1 < rows;
            self.row.fill(Complex::default());
            for (column, &k) in self.spec.chunks_exact(y.len).zip(&self.band) {
                let a = column[y.first + r];
                let b = if second {
                    column[y.first + r + 1]
                } else {
                    Complex::default()
                };
                if k == 0 || 2 * k == x.len {
                    // Self-conjugate frequencies: the real part is what np.real keeps.
                    self.row[k] = Complex::new(a.re, b.re);
                } else {
                    self.row[k] = Complex::new(a.re - b.im, a.im + b.re);
                    self.row[x.len - k] = Complex::new(a.re + b.im, b.re - a.im);
                }
            }
            x.inverse
                .process_with_scratch(&mut self.row, &mut self.scratch);
            let z = &self.row[x.first..x.first + cols];
            let line = &mut out[r * cols..][..cols];
            for (c, (o, z)) in line.iter_mut().zip(z).enumerate() {
                *o = sign(c + r) * z.re;
            }
            if second {
                let line = &mut out[(r + 1) * cols..][..cols];
                for (c, (o, z)) in line.iter_mut().zip(z).enumerate() {
                    *o = sign(c + r + 1) * z.im;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same deterministic sinogram as in the `fourier` tests (the reference values were
    /// computed from it with numpy/algotom).
    fn pattern(rows: usize, cols: usize) -> Vec<f32> {
        let mut v = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                let (rf, cf) = (r as f64, c as f64);
                v.push((1.0 + 0.5 * (0.7 * rf + 0.3 * cf).sin() + 0.01 * rf * cf) as f32);
            }
        }
        v
    }

    fn savgol(sino: &[f32], rows: usize, cols: usize, order: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; rows * cols];
        SavitzkyGolay::new(rows, order).apply(sino, cols, &mut out);
        out
    }

    #[test]
    fn empty_sinograms_are_left_alone() {
        StripeFitting::new(5, 0, 2, 10.0).apply(&mut []);
        StripeFitting::new(450, 0, 2, 10.0).apply(&mut []);
    }

    #[test]
    fn window_lengths_follow_algotom() {
        assert_eq!(window_length(451), 451);
        assert_eq!(window_length(450), 449);
        assert!(supports(3, 2) && supports(4, 2));
        assert!(!supports(2, 2) && !supports(1, 1) && supports(1, 0));
    }

    #[test]
    fn centre_coefficients_match_scipy() {
        // scipy.signal.savgol_coeffs(7, 2) * 21 = [-2, 3, 6, 7, 6, 3, -2]
        let g = centre_coefficients(3, 2);
        for (j, expected) in (-3i32..=3).zip([-2.0, 3.0, 6.0, 7.0, 6.0, 3.0, -2.0]) {
            let u = f64::from(j) / 3.0;
            let c = 21.0 * (g[0] + g[1] * u * u);
            assert!((c - expected).abs() < 1e-12, "{j}: {c}");
        }
        // savgol_coeffs(9, 4)[4] (centre) and [0] (end)
        let g = centre_coefficients(4, 4);
        assert!((g[0] - 179.0 / 429.0).abs() < 1e-14);
        assert!((g[0] + g[1] + g[2] - 15.0 / 429.0).abs() < 1e-14);
    }

    #[test]
    fn moment_sums_equal_the_direct_convolution() {
        // The O(rows) running moments against scipy's definition: a convolution with the
        // centre coefficients over the mirror-extended column.
        for (rows, order) in [
            (1, 0),
            (3, 2),
            (4, 2),
            (10, 1),
            (37, 2),
            (60, 3),
            (61, 4),
            (200, 6),
        ] {
            let cols = 19;
            let sino: Vec<f32> = pattern(rows, cols)
                .iter()
                .enumerate()
                .map(|(i, &v)| v + 0.1 * ((i * 7919) % 13) as f32)
                .collect();
            let fast = savgol(&sino, rows, cols, order);
            let half = window_length(rows) / 2;
            let g = centre_coefficients(half, order);
            let last = rows as isize - 1;
            for c in 0..cols {
                for r in 0..rows {
                    let mut sum = 0.0;
                    for j in -(half as isize)..=half as isize {
                        let u = j as f64 / half.max(1) as f64;
                        let coef: f64 = g
                            .iter()
                            .enumerate()
                            .map(|(q, g)| g * u.powi(2 * q as i32))
                            .sum();
                        let o = (r as isize + j).abs();
                        let o = if o > last { 2 * last - o } else { o } as usize;
                        sum += coef * f64::from(sino[o * cols + c]);
                    }
                    let v = fast[r * cols + c];
                    assert!(
                        (f64::from(v) - sum).abs() <= 3e-7 * sum.abs(),
                        "{rows} {order} ({r}, {c}): {v} vs {sum}"
                    );
                }
            }
        }
    }

    #[test]
    fn constant_columns_are_fitted_exactly() {
        let (rows, cols) = (450, 3);
        for order in [0, 1, 2, 4] {
            for v in savgol(&vec![2.5; rows * cols], rows, cols, order) {
                assert!((v - 2.5).abs() <= 5e-7, "{order}: {v}");
            }
        }
    }

    #[test]
    fn pairwise_sum_rounds_like_numpy() {
        // np.sum(np.full(1000, 0.1, np.float32)) = 100.000015; a running f32 sum gives
        // 99.9990463256836.
        assert_eq!(pairwise_sum(&[0.1f32; 1000], |v| v), 100.000015);
        // np.sum(np.arange(1, 301, dtype=np.float32) * np.float32(0.37)) = 16705.5
        let v: Vec<f32> = (1..=300).map(|i| i as f32 * 0.37).collect();
        assert_eq!(pairwise_sum(&v, |v| v), 16705.5);
    }

    fn stripe_fitting(sino: &[f32], rows: usize, cols: usize, sigma: f64) -> Vec<f32> {
        let mut out = sino.to_vec();
        StripeFitting::new(rows, cols, 2, sigma).apply(&mut out);
        out
    }

    #[test]
    fn a_constant_sinogram_is_unchanged_when_its_padded_sizes_are_even() {
        let out = stripe_fitting(&vec![3.0; 20 * 16], 20, 16, 10.0);
        for v in out {
            assert!((v - 3.0).abs() <= 1e-6, "{v}");
        }
    }

    #[test]
    fn stripes_are_removed() {
        let (rows, cols) = (180, 64);
        let mut sino = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                let (rf, cf) = (r as f64, c as f64);
                let angle = 2.0 * std::f64::consts::PI * rf / rows as f64;
                sino.push((2.0 + 0.5 * (angle + 0.1 * cf).sin() + 0.2 * (0.05 * cf).cos()) as f32);
            }
        }
        for r in 0..rows {
            sino[r * cols + 30] *= 1.1;
        }
        let deviation = |s: &[f32]| {
            (0..rows)
                .map(|r| {
                    let at = |c: usize| f64::from(s[r * cols + c]);
                    (at(30) - 0.5 * (at(29) + at(31))).abs()
                })
                .sum::<f64>()
                / rows as f64
        };
        // algotom: 0.2014 before, 0.0091 after.
        let (before, after) = (
            deviation(&sino),
            deviation(&stripe_fitting(&sino, rows, cols, 10.0)),
        );
        assert!((before - 0.2014).abs() < 1e-3, "{before}");
        assert!((after - 0.0091).abs() < 1e-3, "{after}");
    }

    /// (row, column, algotom's value rounded to f32); measured agreement is within 2 f32 ulps.
    fn check(rows: usize, cols: usize, sigma: f64, reference: &[(usize, usize, f32)]) {
        let out = stripe_fitting(&pattern(rows, cols), rows, cols, sigma);
        for &(r, c, expected) in reference {
            let v = out[r * cols + c];
            assert!(
                (v - expected).abs() <= 3e-7 * expected.abs(),
                "({r}, {c}): {v} != {expected}"
            );
        }
    }

    #[test]
    fn matches_algotom_with_fast_transform_lengths() {
        // 12 x 7: pad 1, padded 14 x 9, both transformed as numpy does.
        check(
            12,
            7,
            10.0,
            &[
                (0, 0, 0.99665105),
                (0, 6, 1.5040853),
                (1, 3, 1.5277213),
                (2, 1, 1.5119972),
                (5, 4, 0.7025758),
                (6, 2, 0.62462175),
                (6, 3, 0.71928465),
                (9, 5, 1.9442637),
                (10, 1, 1.5205905),
                (11, 0, 1.5002702),
                (11, 6, 1.6102036),
                (3, 4, 1.0432434),
            ],
        );
        // 23 x 5: odd rows, padded 27 x 9.
        check(
            23,
            5,
            10.0,
            &[
                (0, 0, 0.9900133),
                (0, 4, 1.5180826),
                (1, 3, 1.5415447),
                (2, 1, 1.514274),
                (5, 4, 0.6981955),
                (11, 2, 1.6681784),
                (20, 3, 1.9568926),
                (21, 1, 1.5476204),
                (22, 0, 1.1461097),
                (22, 4, 1.4373391),
                (3, 2, 1.2744324),
            ],
        );
    }

    #[test]
    fn matches_algotom_with_linear_convolutions() {
        // 31 x 7: padded 37 x 13, both prime: whole-period linear convolutions on both axes.
        check(
            31,
            7,
            10.0,
            &[
                (0, 0, 0.9926716),
                (0, 6, 1.651883),
                (1, 3, 1.5176096),
                (2, 1, 1.5168202),
                (5, 4, 0.70335597),
                (15, 2, 0.8015449),
                (15, 3, 0.989016),
                (28, 5, 2.788236),
                (29, 1, 1.7714988),
                (30, 0, 1.4124942),
                (30, 6, 2.318934),
                (3, 4, 1.0424258),
            ],
        );
        // 30 x 100, sigma 4: 106 padded columns (2 x 53) and a kernel short enough to truncate.
        check(
            30,
            100,
            4.0,
            &[
                (0, 0, 1.9139515),
                (0, 99, 0.6584836),
                (1, 3, 1.688812),
                (2, 1, 2.0716896),
                (5, 4, 0.81712395),
                (15, 2, 1.8231045),
                (15, 50, 8.66936),
                (27, 98, 22.97076),
                (28, 1, 6.772541),
                (29, 0, 8.74886),
                (29, 99, 21.639568),
                (3, 97, 3.5064445),
            ],
        );
    }
}
