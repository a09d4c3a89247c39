//! Median filter: `scipy.ndimage.median_filter(img, size=K, mode=MODE, cval=V)`, exactly, and fast.
//!
//! # What it computes
//! Each output pixel is the median of the K×K window centred on it (K odd). Outside the image the
//! window reads what scipy.ndimage's border mode says ([`BorderMode`]); for a K larger than the
//! image, reflect, mirror and wrap keep repeating periodically, as scipy does. With K×K odd the
//! median is one of the window's values, so the output is exact in every sample type.
//!
//! **Constant border and integer images.** scipy converts `cval` to the image's type *before*
//! ranking, with the C cast of an x86-64 build: truncation toward zero, and out-of-range values
//! wrapped (uint8, uint16, int16 via a 32-bit conversion; uint32 via a 64-bit one; int32 and every
//! out-of-range or NaN value of the 32-bit conversion give its "integer indefinite", i32::MIN).
//! So `cval = 300` on uint8 pads with 44, and `-1` pads with 255. [`cval_as`] reproduces this bit for
//! bit; the golden files pin it. Floats round `cval` to nearest.
//!
//! **NaN.** A NaN pixel stays NaN. Any other window ignores its NaNs: the output is the median of
//! the window's non-NaN values, and when their count is even, the *lower* of the two middle values
//! (so the output is always one of the inputs, never an average of two, and the rule coincides with
//! scipy's rank `n / 2` whenever no NaN is present). A window of only NaN gives NaN (possible only
//! when its centre is NaN). ±Inf are ordinary values. A NaN `cval` in constant mode is read as NaN
//! padding, i.e. the border is ignored. Why not scipy's behaviour: scipy leaves NaN undefined, and
//! MantidImaging treats NaN as −∞, which drags every neighbour of a dead pixel towards the smaller
//! values; ignoring NaN keeps neighbours honest and keeps the dead pixel visible as NaN.
//!
//! −0.0 and +0.0 compare equal (as in scipy); which of the two bit patterns comes out of a window
//! holding both is unspecified.
//!
//! # How it is fast
//! * K = 3: per output, the sorted column triples give med3(max of lows, med3 of middles, min of
//!   highs); two output rows share the sort of their two common rows. 27 min/max per pixel over
//!   whole rows, which the compiler turns into vector instructions, with no stores but the
//!   output.
//! * K = 5: each column of 5 is sorted once (two output rows share the sort of their 4 common
//!   rows) into L1-resident temporaries shared by the 5 outputs whose windows contain it; what is
//!   left per output is a pruned selection network of 112 min/max over the sorted columns.
//! * K = 7 and 9: the same scheme with pruned networks of 356 and 742 min/max over the sorted
//!   columns, generated and checked by `median_network.py` (in this folder). One macro,
//!   `sorted_columns_kernel!`, builds the 5×5, 7×7 and 9×9 kernels.
//! * The networks are checked on every valid 0-1 input by the unit tests (0-1 principle; for
//!   9×9 that test takes 13 s in release and runs on demand, a sample of it always). The inner loops
//!   run over fixed-size blocks (the last one shifted back to end at the row's end) so that they
//!   have no scalar tail.
//! * Borders: the interior of each row reads the input rows in place; the r = K/2 columns at each
//!   edge are computed from small padded copies, so the vector loops have no branches.
//! * Every path is compiled three times (portable, AVX2, AVX-512 F+BW) and picked at run time;
//!   tests and benchmarks force each one with [`median_filter_with`].
//! * Float rows are checked for NaN right after the fast kernel first read them (in cache); row
//!   pairs whose windows hold NaN are recomputed by the NaN-aware kernel.
//! * 11 ≤ K ≤ 255: Huang's sliding-window histogram over tiles, moving in a serpentine: O(K) per
//!   pixel (K values in, K out, and the running median moves a few bins). Types of 16 bits or
//!   fewer are counted directly; wider ones by their rank within the tile (radix sort), with NaN
//!   as an uncounted largest key, which implements the NaN rule on the same path.
//! * Larger K: gather and select, O(K²) per pixel.
//!
//! # Where things are
//! * `border.rs`: [`BorderMode`] and the row driver (padded edge strips, NaN rows, row pairs).
//! * `sample.rs`: the per-type operations the kernels need, and scipy's conversion of `cval`.
//! * `network.rs`: the 3×3 kernel and the sorted-column kernels for 5×5, 7×7 and 9×9.
//! * `network_tables.rs`: their selection networks (`median_network.py` generates 7×7, 9×9).
//! * `histogram.rs`: the sliding-window histogram for 11 ≤ K ≤ 255.
//! * `select.rs`: selection over the gathered window (any K, and the NaN rule).

mod border;
mod histogram;
mod network;
mod network_tables;
mod sample;
mod select;

pub use border::BorderMode;
pub use sample::cval_as;
pub(crate) use sample::{Sample, SampleFn, with_sample};

use crate::pixel::Pixel;
use border::{Image, drive};
use histogram::{MAX_HISTOGRAM_RADIUS, histogram_median};
use network::{Net3, Net5, Net7, Net9};
use select::Select;

/// Parameters of [`median_filter`].
#[derive(Debug, Clone, Copy)]
pub struct MedianParams {
    /// Window side K, odd.
    pub size: usize,
    pub mode: BorderMode,
    /// The padding value for [`BorderMode::Constant`], converted as scipy does (module docs).
    pub cval: f64,
}

/// Which compiled version of the kernels runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// The target's baseline (SSE2 on x86-64, NEON on aarch64).
    Portable,
    /// x86-64 with AVX2.
    Avx2,
    /// x86-64 with AVX-512 F and BW.
    Avx512,
}

impl Isa {
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run this version.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest version this CPU runs.
    pub fn best() -> Isa {
        Isa::Avx512.or_below()
    }

    /// Every version this CPU runs, slowest first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_available()).collect()
    }

    /// The best version this CPU runs that is not above this one.
    pub fn or_below(self) -> Isa {
        Isa::ALL
            .into_iter()
            .rev()
            .find(|i| *i <= self && i.is_available())
            .unwrap_or(Isa::Portable)
    }
}

/// `scipy.ndimage.median_filter(input, size=K, mode=MODE, cval=V)` of one row-major image.
///
/// `input` and `output` are `width * height` long. NaN pixels follow the module docs' rule.
///
/// # Panics
/// If the slice lengths are not `width * height` or `params.size` is even (the CLI validates
/// sizes before this point).
pub fn median_filter<T: Pixel>(
    input: &[T],
    output: &mut [T],
    width: usize,
    height: usize,
    params: &MedianParams,
) {
    median_filter_with(input, output, width, height, params, Isa::best());
}

/// [`median_filter`] with the compiled version chosen by the caller (tests and benchmarks run
/// each). A version the CPU lacks falls back to the best one below it, so the call never faults.
pub fn median_filter_with<T: Pixel>(
    input: &[T],
    output: &mut [T],
    width: usize,
    height: usize,
    params: &MedianParams,
    isa: Isa,
) {
    check_shape(input.len(), output.len(), width, height, params.size);
    let isa = isa.or_below();
    with_sample(
        input,
        output,
        MedianJob {
            width,
            height,
            params: *params,
            isa,
        },
    );
}

pub(crate) fn check_shape(input: usize, output: usize, width: usize, height: usize, size: usize) {
    let pixels = width.checked_mul(height);
    assert!(
        pixels == Some(input) && pixels == Some(output),
        "invariant: input ({input}) and output ({output}) hold width × height = {width} × {height} pixels"
    );
    assert!(
        size % 2 == 1,
        "invariant: the median window size is odd (got {size}); the CLI rejects other sizes"
    );
}

struct MedianJob {
    width: usize,
    height: usize,
    params: MedianParams,
    isa: Isa,
}

impl SampleFn for MedianJob {
    fn call<U: Sample>(self, input: &[U], output: &mut [U]) {
        let MedianParams { size, mode, cval } = self.params;
        let img = Image {
            input,
            width: self.width,
            height: self.height,
            r: size / 2,
            mode,
            cval: cval_as::<U>(cval),
        };
        median_any(&img, output, self.isa);
    }
}

fn median_any<T: Sample>(img: &Image<'_, T>, output: &mut [T], isa: Isa) {
    if img.width == 0 || img.height == 0 {
        return;
    }
    match img.r {
        0 => output.copy_from_slice(img.input),
        1 => drive(img, output, &mut Net3::new(isa)),
        2 => drive(img, output, &mut Net5::new(isa)),
        3 => drive(img, output, &mut Net7::new(isa)),
        4 => drive(img, output, &mut Net9::new(isa)),
        r if r <= MAX_HISTOGRAM_RADIUS => histogram_median(isa, img, output),
        _ => drive(img, output, &mut Select::new(img.r)),
    }
}

/// Defines `$name(isa, args…)`, which runs `$body(args…)` compiled for the given [`Isa`]
/// (`per_isa!(pub(super) fn …)` gives the function a visibility).
///
/// The hot loops live in `#[inline(always)]` bodies; each wrapper here is a separate function
/// whose slice arguments the compiler knows do not alias, which is what lets it vectorise them
/// without run-time overlap checks.
macro_rules! per_isa {
    ($vis:vis fn $name:ident = $body:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        $vis fn $name<T: Sample>(isa: Isa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw")]
            fn avx512<T: Sample>($($arg: $ty),*) {
                $body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            fn avx2<T: Sample>($($arg: $ty),*) {
                $body($($arg),*)
            }
            #[inline(never)]
            fn portable<T: Sample>($($arg: $ty),*) {
                $body($($arg),*)
            }
            match isa {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: kernels are only handed an `Isa` that `is_available` on this CPU.
                Isa::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above.
                Isa::Avx2 => unsafe { avx2($($arg),*) },
                _ => portable($($arg),*),
            }
        }
    };
}
pub(crate) use per_isa;
