//! Low-pass/high-pass separation of sinogram columns in the Fourier domain: the first step of
//! the filtering-based stripe removal, algorithm 2 of Vo, Atwood and Drakopoulos, "Superior
//! techniques for eliminating ring artifacts in X-ray micro-tomography", Optics Express 26(22),
//! 28396 (2018).
//!
//! [`FrequencySplit::smooth`] reproduces algotom's
//! `util.separate_frequency_component(mat, axis=0, window={"name": "gaussian", "sigma": sigma})`
//! as `prep.removal.remove_stripe_based_filtering` calls it on a float32 sinogram: each column
//! (a signal along the angles, `rows` long) is reflect-padded by `min(150, int(0.1 * rows))` to
//! `M` samples, multiplied by `(-1)^n`, Fourier transformed, multiplied by
//! `scipy.signal.windows.gaussian(M, sigma)`, transformed back, multiplied by `(-1)^n` again, and
//! the real part of the unpadded range is kept, rounded to f32. algotom's high-pass part is
//! `sino - smooth` in f32, left to the caller.
//!
//! Speed: the Gaussian is centred at `(M - 1) / 2`, half a bin off the Nyquist bin that the
//! `(-1)^n` modulation moves the zero frequency to, so it is not Hermitian-symmetric and the
//! complex result of the inverse transform is not real. Only its real part is kept, though, and
//! for a real signal with spectrum `V`, `Re(ifft(V W)) = ifft(V E)` with the even, real
//! response `E[k] = (W[k] + W[-k mod M]) / 2` (because `V[-k] = conj(V[k])`). Filtering by a
//! real, even response is a convolution with a real kernel, so two real columns packed as the
//! real and imaginary parts of one complex signal come out separated exactly, for odd and even
//! `M` alike: one complex FFT pair per two columns instead of one per column. The `(-1)^n`
//! signs stay on the samples, as in algotom, so nothing about them is approximated. Columns are
//! gathered a cache line of each row at a time into contiguous f64 buffers, and the transforms
//! run in f64 like numpy's.
//!
//! When `M` has a prime factor above 7 (for instance `M = 541` for 451 rows, common with
//! 0–180° scans), rustfft would fall back on Bluestein's or Rader's algorithm, several times
//! slower; the same circular convolution is then computed as a linear convolution of the
//! periodically extended signal with one period of the kernel, with transforms of a `2^a 3^b`
//! length. That changes only the rounding: on every shape tested (odd, even and prime `M`,
//! 3 to 1801 rows) the output was bit-identical to algotom's.
//!
//! Surprising but reproduced: the response at the zero frequency is `exp(-1 / (8 sigma^2))`, not
//! 1, so for even `M` a constant column comes back scaled by that factor (0.986 for sigma 3); for
//! odd `M` (odd `rows`) the `(-1)^n` modulation is not periodic, and the ends of a constant
//! column are pulled further down.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// Complex signals per batch, each carrying two columns: 16 f32 columns are one 64-byte cache
/// line of a sinogram row, so every row read during the gather uses a whole line.
const PAIRS: usize = 8;

/// algotom's padding of the angular axis: `min(150, int(0.1 * rows))`.
fn padding(rows: usize) -> usize {
    ((0.1 * rows as f64) as usize).min(150)
}

/// `scipy.signal.windows.gaussian(len, sigma)`, computed with scipy's operations in its order.
fn gaussian_window(len: usize, sigma: f64) -> Vec<f64> {
    if len <= 1 {
        return vec![1.0; len];
    }
    let centre = (len as f64 - 1.0) / 2.0;
    let sig2 = 2.0 * sigma * sigma;
    (0..len)
        .map(|k| {
            let n = k as f64 - centre;
            (-(n * n) / sig2).exp()
        })
        .collect()
}

/// Whether rustfft transforms `n` points about as fast as a power of two: `n` has no prime
/// factor above 7.
pub(super) fn is_fast_length(n: usize) -> bool {
    let mut n = n.max(1);
    for p in [2, 3, 5, 7] {
        while n.is_multiple_of(p) {
            n /= p;
        }
    }
    n == 1
}

/// The smallest `2^a 3^b` not below `n`.
pub(super) fn fast_length_at_least(n: usize) -> usize {
    let mut best = usize::MAX;
    let mut three = 1;
    while three < 2 * n.max(1) {
        let mut len = three;
        while len < n {
            len *= 2;
        }
        best = best.min(len);
        three *= 3;
    }
    best
}

/// Per-thread state of the column separation: FFT plans, the filter response and the buffers,
/// reused for every sinogram with the same number of rows.
pub struct FrequencySplit {
    rows: usize,
    pad: usize,
    /// algotom's transform length `rows + 2 pad`: the period of the circular convolution.
    period: usize,
    /// Length of the transforms actually run: `period`, or at least `rows + period - 1` when
    /// the circular convolution is computed as a linear one (see `new`).
    len: usize,
    /// Where the unpadded signal starts in the periodically extended input of the linear
    /// convolution.
    offset: usize,
    /// Index of the first output row in the inverse transform.
    first: usize,
    forward: Arc<dyn Fft<f64>>,
    inverse: Arc<dyn Fft<f64>>,
    /// Spectrum of the filter kernel, divided by `len` because rustfft does not normalise: real
    /// (algotom's window, made even) when `len == period`, complex otherwise.
    response: Vec<Complex<f64>>,
    real_response: Vec<f64>,
    signals: Vec<Complex<f64>>,
    /// One period of a signal while it is being extended (linear convolution only).
    period_buf: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
}

impl FrequencySplit {
    /// Prepares the separation of sinograms with `rows` angles with a Gaussian window of standard
    /// deviation `sigma` (in frequency bins; algotom's `sigma`, default 3).
    ///
    /// # Panics
    /// If `sigma` is not positive and finite.
    pub fn new(rows: usize, sigma: f64) -> Self {
        assert!(
            sigma > 0.0 && sigma.is_finite(),
            "sigma must be positive and finite, not {sigma}"
        );
        let pad = padding(rows);
        let period = rows + 2 * pad;
        let window = gaussian_window(period, sigma);
        let even: Vec<f64> = (0..period)
            .map(|k| 0.5 * (window[k] + window[(period - k) % period]))
            .collect();
        let mut planner = FftPlanner::new();
        let (len, offset, first, response, real_response);
        if is_fast_length(period) {
            // algotom's own computation, one transform of `period` points.
            len = period;
            offset = 0;
            first = pad;
            real_response = even.iter().map(|&e| e / len as f64).collect();
            response = Vec::new();
        } else {
            // `period` has a large prime factor and rustfft would fall back on Bluestein's or
            // Rader's algorithm, several times slower. The same circular convolution, with the
            // kernel's taps at offsets d in -lo..=hi, is the linear convolution of the
            // periodically extended signal v[pad - hi ..= pad + rows - 1 + lo] with the kernel,
            // computed with a transform of a fast length that cannot wrap around.
            let lo = period / 2;
            let hi = period - 1 - lo;
            len = fast_length_at_least(rows + period - 1);
            offset = (pad + period - hi) % period;
            first = period - 1;
            let mut kernel: Vec<Complex<f64>> =
                even.iter().map(|&e| Complex::new(e, 0.0)).collect();
            planner.plan_fft_inverse(period).process(&mut kernel);
            let mut taps = vec![Complex::default(); len];
            for (m, tap) in taps[..period].iter_mut().enumerate() {
                let k = kernel[(m + period - lo) % period].re;
                *tap = Complex::new(k / (period as f64 * len as f64), 0.0);
            }
            planner.plan_fft_forward(len).process(&mut taps);
            response = taps;
            real_response = Vec::new();
        }
        let forward = planner.plan_fft_forward(len);
        let inverse = planner.plan_fft_inverse(len);
        let scratch_len = forward
            .get_inplace_scratch_len()
            .max(inverse.get_inplace_scratch_len());
        FrequencySplit {
            rows,
            pad,
            period,
            len,
            offset,
            first,
            forward,
            inverse,
            response,
            real_response,
            signals: vec![Complex::default(); PAIRS * len],
            period_buf: vec![Complex::default(); if len == period { 0 } else { period }],
            scratch: vec![Complex::default(); scratch_len],
        }
    }

    /// Writes the low-pass part of every column of the row-major `rows` x `cols` sinogram `sino`
    /// into `smooth` (same layout); algotom's high-pass part is `sino - smooth` in f32.
    ///
    /// # Panics
    /// If `sino` or `smooth` does not hold `rows * cols` values.
    pub fn smooth(&mut self, sino: &[f32], cols: usize, smooth: &mut [f32]) {
        let (rows, pad, period, len) = (self.rows, self.pad, self.period, self.len);
        assert_eq!(sino.len(), rows * cols, "sinogram size");
        assert_eq!(smooth.len(), rows * cols, "output size");
        if rows == 0 {
            return;
        }
        for x0 in (0..cols).step_by(2 * PAIRS) {
            let width = (cols - x0).min(2 * PAIRS);
            let signals = &mut self.signals[..width.div_ceil(2) * len];
            for r in 0..rows {
                let n = pad + r;
                let sign = if n.is_multiple_of(2) { 1.0 } else { -1.0 };
                let line = &sino[r * cols + x0..][..width];
                let mut pairs = line.chunks_exact(2);
                for (p, two) in (&mut pairs).enumerate() {
                    let (a, b) = (f64::from(two[0]), f64::from(two[1]));
                    signals[p * len + n] = Complex::new(sign * a, sign * b);
                }
                if let [last] = pairs.remainder() {
                    signals[width / 2 * len + n] = Complex::new(sign * f64::from(*last), 0.0);
                }
            }
            for signal in signals.chunks_exact_mut(len) {
                // numpy's 'reflect' padding (edge sample not repeated). A sample and its mirror
                // image are an even distance apart, so they carry the same (-1)^n sign.
                for i in 1..=pad {
                    signal[pad - i] = signal[pad + i];
                    signal[pad + rows - 1 + i] = signal[pad + rows - 1 - i];
                }
                if len != period {
                    self.period_buf.copy_from_slice(&signal[..period]);
                    let mut source = self.period_buf.iter().cycle().skip(self.offset);
                    let (extended, zeros) = signal.split_at_mut(rows + period - 1);
                    for (z, &v) in extended.iter_mut().zip(&mut source) {
                        *z = v;
                    }
                    zeros.fill(Complex::default());
                }
            }
            self.forward
                .process_with_scratch(signals, &mut self.scratch);
            for signal in signals.chunks_exact_mut(len) {
                if len == period {
                    for (z, &h) in signal.iter_mut().zip(&self.real_response) {
                        *z *= h;
                    }
                } else {
                    for (z, &h) in signal.iter_mut().zip(&self.response) {
                        *z *= h;
                    }
                }
            }
            self.inverse
                .process_with_scratch(signals, &mut self.scratch);
            for r in 0..rows {
                let sign = if (pad + r).is_multiple_of(2) {
                    1.0
                } else {
                    -1.0
                };
                let line = &mut smooth[r * cols + x0..][..width];
                let mut pairs = line.chunks_exact_mut(2);
                for (p, two) in (&mut pairs).enumerate() {
                    let z = signals[p * len + self.first + r];
                    two[0] = (sign * z.re) as f32;
                    two[1] = (sign * z.im) as f32;
                }
                if let [last] = pairs.into_remainder() {
                    *last = (sign * signals[width / 2 * len + self.first + r].re) as f32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic, non-trivial test sinogram (the same formula generated the reference
    /// values with numpy/algotom).
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

    fn smooth_of(sino: &[f32], rows: usize, cols: usize, sigma: f64) -> Vec<f32> {
        let mut out = vec![f32::NAN; rows * cols];
        FrequencySplit::new(rows, sigma).smooth(sino, cols, &mut out);
        out
    }

    #[test]
    fn empty_sinograms_are_left_alone() {
        FrequencySplit::new(0, 3.0).smooth(&[], 5, &mut []);
        FrequencySplit::new(450, 3.0).smooth(&[], 0, &mut []);
    }

    #[test]
    fn padding_follows_algotom() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(9), 0);
        assert_eq!(padding(10), 1);
        assert_eq!(padding(450), 45);
        assert_eq!(padding(1501), 150);
        assert_eq!(padding(4000), 150);
    }

    #[test]
    fn window_matches_scipy_gaussian() {
        // scipy.signal.windows.gaussian(6, 2.0)
        let expected = [
            0.45783336177161427,
            0.7548396019890073,
            0.9692332344763441,
            0.9692332344763441,
            0.7548396019890073,
            0.45783336177161427,
        ];
        for (w, e) in gaussian_window(6, 2.0).iter().zip(expected) {
            assert!((w - e).abs() < 1e-15, "{w} != {e}");
        }
        assert_eq!(gaussian_window(1, 3.0), [1.0]);
    }

    #[test]
    fn constant_columns_scale_by_the_window_at_dc_when_the_padded_length_is_even() {
        // 450 rows: M = 540. algotom returns 2 * exp(-1/72) = 1.9724143 everywhere.
        let (rows, cols) = (450, 5);
        let out = smooth_of(&vec![2.0; rows * cols], rows, cols, 3.0);
        let expected = (2.0 * (-1.0f64 / 72.0).exp()) as f32;
        for &v in &out {
            assert!((v - expected).abs() <= 2e-7, "{v} != {expected}");
        }
    }

    #[test]
    fn pairing_columns_is_exact() {
        // Each column smoothed alone (cols = 1, imaginary part zero) must equal the batched
        // result, where columns share complex transforms in pairs.
        for rows in [37, 120, 451] {
            let cols = 21;
            let sino = pattern(rows, cols);
            let all = smooth_of(&sino, rows, cols, 3.0);
            let mut split = FrequencySplit::new(rows, 3.0);
            for c in 0..cols {
                let column: Vec<f32> = (0..rows).map(|r| sino[r * cols + c]).collect();
                let mut alone = vec![0.0; rows];
                split.smooth(&column, 1, &mut alone);
                for r in 0..rows {
                    let (a, b) = (alone[r], all[r * cols + c]);
                    assert!((a - b).abs() <= 1e-6 * a.abs().max(1.0), "{rows} {r} {c}");
                }
            }
        }
    }

    #[test]
    fn a_very_wide_window_passes_everything() {
        let (rows, cols) = (64, 9);
        let sino = pattern(rows, cols);
        let out = smooth_of(&sino, rows, cols, 1e9);
        for (a, b) in out.iter().zip(&sino) {
            assert!((a - b).abs() <= 1e-6, "{a} != {b}");
        }
    }

    #[test]
    fn high_frequencies_are_removed() {
        // A column alternating +-1 lies at the Nyquist frequency, far outside a sigma-3 window
        // centred on the zero frequency (after the sign modulation).
        let (rows, cols) = (200, 3);
        let sino: Vec<f32> = (0..rows * cols)
            .map(|i| if (i / cols) % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let out = smooth_of(&sino, rows, cols, 3.0);
        // Away from the reflected ends, where the padding breaks the alternation.
        for r in 40..160 {
            for c in 0..cols {
                assert!(out[r * cols + c].abs() < 1e-6, "{}", out[r * cols + c]);
            }
        }
    }

    #[test]
    fn matches_algotom_on_a_small_even_sinogram() {
        // 12 x 7 pattern, sigma 2: pad 1, M = 14. Reference from
        // algotom.util.utility.separate_frequency_component(np.float32(mat), axis=0,
        // window={"name": "gaussian", "sigma": 2}).
        let (rows, cols) = (12, 7);
        let out = smooth_of(&pattern(rows, cols), rows, cols, 2.0);
        check(&out, cols, REFERENCE_12X7);
    }

    #[test]
    fn matches_algotom_on_a_small_odd_sinogram() {
        // 23 x 5 pattern, sigma 3: pad 2, M = 27 (odd).
        let (rows, cols) = (23, 5);
        let out = smooth_of(&pattern(rows, cols), rows, cols, 3.0);
        check(&out, cols, REFERENCE_23X5);
    }

    #[test]
    fn matches_algotom_when_the_padded_length_is_prime() {
        // 31 x 5 pattern, sigma 3: pad 3, M = 37, computed as a linear convolution.
        let (rows, cols) = (31, 5);
        let out = smooth_of(&pattern(rows, cols), rows, cols, 3.0);
        check(&out, cols, REFERENCE_31X5);
    }

    #[test]
    fn fast_lengths() {
        assert!(is_fast_length(540) && is_fast_length(2100) && is_fast_length(1));
        assert!(!is_fast_length(541) && !is_fast_length(2101) && !is_fast_length(2 * 1069));
        assert_eq!(fast_length_at_least(991), 1024);
        assert_eq!(fast_length_at_least(1025), 1152);
        assert_eq!(fast_length_at_least(3901), 4096);
    }

    /// (row, column, algotom's value); measured agreement is within one f32 rounding.
    fn check(out: &[f32], cols: usize, reference: &[(usize, usize, f32)]) {
        for &(r, c, expected) in reference {
            let v = out[r * cols + c];
            assert!(
                (v - expected).abs() <= 2e-7 * expected.abs().max(1.0),
                "({r}, {c}): {v} != {expected}"
            );
        }
    }

    const REFERENCE_12X7: &[(usize, usize, f32)] = &[
        (0, 0, 1.1795737),
        (0, 6, 1.3781679),
        (1, 3, 1.400821),
        (2, 1, 1.3550628),
        (5, 4, 0.7987426),
        (6, 0, 0.6516629),
        (6, 2, 0.72257376),
        (9, 5, 1.7732859),
        (10, 1, 1.383052),
        (11, 0, 1.3183078),
        (11, 6, 1.7087564),
        (3, 5, 0.9534435),
    ];
    const REFERENCE_31X5: &[(usize, usize, f32)] = &[
        (0, 0, 1.2024105),
        (0, 4, 1.2234465),
        (1, 3, 1.3046699),
        (2, 1, 1.2656307),
        (5, 4, 0.98723805),
        (15, 2, 1.0862361),
        (16, 0, 0.79340136),
        (27, 3, 1.9655507),
        (29, 1, 1.5593324),
        (30, 0, 1.2396319),
        (30, 4, 2.2416148),
        (3, 2, 1.1502929),
    ];
    const REFERENCE_23X5: &[(usize, usize, f32)] = &[
        (0, 0, 1.153685),
        (0, 1, 1.2378285),
        (1, 3, 1.373292),
        (2, 1, 1.3281469),
        (5, 4, 0.8810265),
        (6, 0, 0.7225937),
        (11, 2, 1.4760406),
        (20, 0, 1.307357),
        (21, 1, 1.4682442),
        (22, 0, 1.2371237),
        (22, 4, 1.6191287),
        (3, 3, 1.1202745),
    ];
}
