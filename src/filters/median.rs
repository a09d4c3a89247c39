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
//!   columns, generated and checked by `median_network.py` (beside this file). One macro,
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

use std::any::TypeId;
use std::cmp::Ordering;

use crate::pixel::Pixel;

/// How the window reads outside the image (scipy.ndimage's `mode`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BorderMode {
    /// `d c b a | a b c d | d c b a` (scipy's default and MantidImaging's).
    Reflect,
    /// `a a a | a b c d | d d d`
    Nearest,
    /// `d c b | a b c d | c b a`
    Mirror,
    /// `k k k | a b c d | k k k` with k = `cval` converted to the image's type.
    Constant,
    /// `b c d | a b c d | a b c`
    Wrap,
}

impl BorderMode {
    pub const ALL: [BorderMode; 5] = [
        BorderMode::Reflect,
        BorderMode::Nearest,
        BorderMode::Mirror,
        BorderMode::Constant,
        BorderMode::Wrap,
    ];

    /// The scipy name, which is what users type.
    pub fn name(self) -> &'static str {
        match self {
            BorderMode::Reflect => "reflect",
            BorderMode::Nearest => "nearest",
            BorderMode::Mirror => "mirror",
            BorderMode::Constant => "constant",
            BorderMode::Wrap => "wrap",
        }
    }

    /// The mode with this scipy name.
    pub fn parse(s: &str) -> Option<Self> {
        BorderMode::ALL.into_iter().find(|m| m.name() == s)
    }

    /// The index in `0..n` that position `i` reads, or `None` where it reads the constant.
    ///
    /// Reflect, mirror and wrap are periodic (periods 2n, 2n − 2 and n), which is what scipy does
    /// when the window is larger than the image.
    pub fn source_index(self, i: isize, n: usize) -> Option<usize> {
        assert!(n > 0, "invariant: an image side is at least 1 pixel");
        let n = n as isize;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        let j = match self {
            BorderMode::Constant => return None,
            BorderMode::Nearest => i.clamp(0, n - 1),
            BorderMode::Wrap => i.rem_euclid(n),
            BorderMode::Reflect => {
                let m = i.rem_euclid(2 * n);
                if m < n { m } else { 2 * n - 1 - m }
            }
            BorderMode::Mirror => {
                if n == 1 {
                    0
                } else {
                    let m = i.rem_euclid(2 * n - 2);
                    if m < n { m } else { 2 * n - 2 - m }
                }
            }
        };
        Some(j as usize)
    }
}

impl std::fmt::Display for BorderMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

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

/// Defines `$name(isa, args…)`, which runs `$body(args…)` compiled for the given [`Isa`].
///
/// The hot loops live in `#[inline(always)]` bodies; each wrapper here is a separate function
/// whose slice arguments the compiler knows do not alias, which is what lets it vectorise them
/// without run-time overlap checks.
macro_rules! per_isa {
    (fn $name:ident = $body:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        fn $name<T: Sample>(isa: Isa, $($arg: $ty),*) {
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

// ---------------------------------------------------------------------------------------------
// Sample types

/// What the kernels need of a sample type beyond [`Pixel`], implemented for the seven types.
pub(crate) trait Sample: Pixel {
    const IS_FLOAT: bool;
    /// Minimum for NaN-free values, written so it compiles to one vector min per lane.
    fn mn(self, other: Self) -> Self;
    /// Maximum for NaN-free values.
    fn mx(self, other: Self) -> Self;
    /// scipy's conversion of `cval` (module docs).
    fn from_cval(v: f64) -> Self;
    /// Exact for all seven types.
    fn to_f64(self) -> f64;
    /// A total order that agrees with `<` on non-NaN values up to −0.0 < +0.0.
    fn order(&self, other: &Self) -> Ordering;
    /// For types of at most 16 bits: an order-preserving u16, so the histogram path can count
    /// values directly (the two functions are meaningless for the other types).
    const DIRECT: bool;
    fn to_direct(self) -> u16;
    fn from_direct(key: u16) -> Self;
    /// An unsigned key in the same order as [`Sample::order`] (NaN excluded).
    fn sort_key(self) -> u64;
}

/// `cval` as scipy pads an image of type `T` with it (module docs).
pub fn cval_as<T: Pixel>(cval: f64) -> T {
    struct Conv(f64);
    impl SampleFn for Conv {
        fn call<U: Sample>(self, _: &[U], out: &mut [U]) {
            out[0] = U::from_cval(self.0);
        }
    }
    let mut out = [T::default()];
    with_sample(&[T::default()], &mut out, Conv(cval));
    out[0]
}

/// The x86-64 `cvttsd2si` with a 32-bit destination, which C uses for `(int)d` and for the
/// narrower integer casts: out-of-range and NaN give i32::MIN.
fn cvtt_i32(v: f64) -> i32 {
    let t = v.trunc();
    if (i32::MIN as f64..=i32::MAX as f64).contains(&t) {
        t as i32
    } else {
        i32::MIN
    }
}

/// The same with a 64-bit destination (C's `(uint32_t)d` goes through it): i64::MIN when out of
/// range.
fn cvtt_i64(v: f64) -> i64 {
    // 2^63 is exactly representable; i64::MAX is not.
    const TWO_63: f64 = (1u64 << 63) as f64;
    let t = v.trunc();
    if (-TWO_63..TWO_63).contains(&t) {
        t as i64
    } else {
        i64::MIN
    }
}

macro_rules! impl_int_sample {
    ($t:ty, $conv:expr, $direct:expr, $to_direct:expr, $from_direct:expr, $sort_key:expr) => {
        impl Sample for $t {
            const IS_FLOAT: bool = false;
            #[inline(always)]
            fn mn(self, other: Self) -> Self {
                Ord::min(self, other)
            }
            #[inline(always)]
            fn mx(self, other: Self) -> Self {
                Ord::max(self, other)
            }
            fn from_cval(v: f64) -> Self {
                $conv(v) as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn order(&self, other: &Self) -> Ordering {
                self.cmp(other)
            }
            const DIRECT: bool = $direct;
            #[inline(always)]
            fn to_direct(self) -> u16 {
                $to_direct(self)
            }
            #[inline(always)]
            fn from_direct(key: u16) -> Self {
                $from_direct(key)
            }
            #[inline(always)]
            fn sort_key(self) -> u64 {
                $sort_key(self)
            }
        }
    };
}

// Signed types flip the sign bit so that unsigned order is numeric order.
impl_int_sample!(u8, cvtt_i32, true, |v| v as u16, |k| k as u8, |v| v as u64);
impl_int_sample!(u16, cvtt_i32, true, |v| v, |k| k, |v| v as u64);
impl_int_sample!(
    i16,
    cvtt_i32,
    true,
    |v| v as u16 ^ 0x8000,
    |k: u16| (k ^ 0x8000) as i16,
    |v| (v as u16 ^ 0x8000) as u64
);
impl_int_sample!(
    i32,
    cvtt_i32,
    false,
    |_| 0,
    |_| 0,
    |v| (v as u32 ^ 0x8000_0000) as u64
);
impl_int_sample!(u32, cvtt_i64, false, |_| 0, |_| 0, |v| v as u64);

macro_rules! impl_float_sample {
    ($t:ty, $bits:ty) => {
        impl Sample for $t {
            const IS_FLOAT: bool = true;
            // `a < b ? a : b` is exactly x86's minps/minpd, so this is one instruction per
            // vector; `f32::min` would add NaN handling the NaN-free fast paths do not need.
            #[inline(always)]
            fn mn(self, other: Self) -> Self {
                if self < other { self } else { other }
            }
            #[inline(always)]
            fn mx(self, other: Self) -> Self {
                if self > other { self } else { other }
            }
            fn from_cval(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn order(&self, other: &Self) -> Ordering {
                self.total_cmp(other)
            }
            const DIRECT: bool = false;
            fn to_direct(self) -> u16 {
                0
            }
            fn from_direct(_: u16) -> Self {
                0.0
            }
            #[inline(always)]
            fn sort_key(self) -> u64 {
                // The IEEE trick: flip all bits of negatives, only the sign bit of positives.
                const SIGN: $bits = 1 << (<$bits>::BITS - 1);
                let b = self.to_bits();
                (if b & SIGN != 0 { !b } else { b | SIGN }) as u64
            }
        }
    };
}

impl_float_sample!(f32, u32);
impl_float_sample!(f64, u64);

/// A computation over one image pair, generic over the concrete sample type.
pub(crate) trait SampleFn {
    fn call<U: Sample>(self, input: &[U], output: &mut [U]);
}

/// `s` re-typed as `&[U]` when `T` is `U`.
fn same_type<T: Pixel, U: Pixel>(s: &[T]) -> Option<&[U]> {
    (TypeId::of::<T>() == TypeId::of::<U>()).then(|| bytemuck::cast_slice(s))
}

fn same_type_mut<T: Pixel, U: Pixel>(s: &mut [T]) -> Option<&mut [U]> {
    (TypeId::of::<T>() == TypeId::of::<U>()).then(|| bytemuck::cast_slice_mut(s))
}

/// Runs `f` with the concrete type behind the generic `T`.
///
/// `Pixel` is implemented only for the seven types of `DType`, so one of them matches; this is
/// how the kernels get per-type code without `Pixel` growing kernel-specific methods.
pub(crate) fn with_sample<T: Pixel, F: SampleFn>(input: &[T], output: &mut [T], f: F) {
    macro_rules! try_as {
        ($($u:ty),*) => {$(
            if let (Some(i), Some(o)) = (same_type::<T, $u>(input), same_type_mut::<T, $u>(output)) {
                return f.call(i, o);
            }
        )*};
    }
    try_as!(u8, u16, u32, i16, i32, f32, f64);
    panic!(
        "invariant: Pixel is implemented only for the seven sample types, not {}",
        std::any::type_name::<T>()
    );
}

// ---------------------------------------------------------------------------------------------
// The row driver: borders, NaN rows, pairs of output rows

/// One input image and how its window reads outside it.
pub(crate) struct Image<'a, T> {
    pub input: &'a [T],
    pub width: usize,
    pub height: usize,
    /// Window radius: K = 2r + 1.
    pub r: usize,
    pub mode: BorderMode,
    /// Already converted to T.
    pub cval: T,
}

/// A kernel over padded rows.
trait RowKernel<T: Sample> {
    /// `rows` are the 2r + 2 rows y − r ..= y + r + 1, each `out0.len() + 2r` long, column
    /// `x + r` of a row lying under output `x`; writes output rows y (`out0`) and y + 1 (`out1`).
    fn pair(&mut self, rows: &[&[T]], out0: &mut [T], out1: &mut [T]);
}

/// Runs `kernel` over the whole image, switching to the NaN-aware kernel for row pairs whose
/// windows hold NaN.
///
/// The interior of each output row reads the input rows in place; only the r columns at each
/// edge are computed from small padded copies ([`Strip`]). Float rows are checked for NaN right
/// after the fast kernel first read them (they are in cache then; checking before would stall on
/// memory); a pair that turns out to hold NaN is recomputed by the NaN-aware kernel.
fn drive<T: Sample, K: RowKernel<T>>(img: &Image<'_, T>, output: &mut [T], kernel: &mut K) {
    let (w, h, r) = (img.width, img.height, img.r);
    let constant_row = if img.mode == BorderMode::Constant {
        vec![img.cval; w]
    } else {
        Vec::new()
    };
    let cval_nan = img.mode == BorderMode::Constant && img.cval.is_nan();
    // Per input row: None until checked, then whether it holds NaN.
    let mut row_nan: Vec<Option<bool>> = vec![None; if T::IS_FLOAT { h } else { 0 }];
    let mut nan_kernel = NanAware::new(r);
    let mut edges = Edges::new(img);
    let mut rows: Vec<&[T]> = Vec::with_capacity(2 * r + 2);
    let mut sources: Vec<Option<usize>> = Vec::with_capacity(2 * r + 2);
    let mut scratch = vec![T::default(); if h % 2 == 1 { w } else { 0 }];

    for (pair_index, out_pair) in output.chunks_mut(2 * w).enumerate() {
        let y = 2 * pair_index;
        let (out0, out1) = if out_pair.len() == 2 * w {
            out_pair.split_at_mut(w)
        } else {
            (out_pair, &mut scratch[..])
        };
        sources.clear();
        sources.extend(
            (0..2 * r + 2).map(|v| img.mode.source_index((y + v) as isize - r as isize, h)),
        );
        rows.clear();
        rows.extend(sources.iter().map(|src| match src {
            Some(s) => &img.input[s * w..(s + 1) * w],
            None => &constant_row[..],
        }));
        let mut dirty = false;
        let mut unchecked = false;
        for src in &sources {
            match src {
                None => dirty |= cval_nan,
                Some(s) if T::IS_FLOAT => match row_nan[*s] {
                    Some(nan) => dirty |= nan,
                    None => unchecked = true,
                },
                Some(_) => {}
            }
        }
        if !dirty {
            edges.run(kernel, Some(&mut nan_kernel), &rows, &sources, out0, out1);
            if unchecked {
                for src in sources.iter().flatten() {
                    let nan = *row_nan[*src].get_or_insert_with(|| {
                        img.input[src * w..(src + 1) * w]
                            .iter()
                            .fold(false, |acc, p| acc | p.is_nan())
                    });
                    dirty |= nan;
                }
            }
        }
        if dirty {
            edges.run(
                &mut nan_kernel,
                None::<&mut NanAware<T>>,
                &rows,
                &sources,
                out0,
                out1,
            );
        }
    }
}

/// Splits each output row into the interior, computed from the input rows in place, and the r
/// columns at each edge, computed from small padded copies.
struct Edges<'a, T: 'static> {
    img: &'a Image<'a, T>,
    interior: std::ops::Range<usize>,
    strips: Vec<Strip>,
    cval_nan: bool,
    buf: Vec<T>,
    rows_store: Vec<&'static [T]>,
}

/// Output columns `a..b` at an image edge.
struct Strip {
    a: usize,
    b: usize,
    /// For padded columns a − r .. b + r: the input column read, or None for the constant.
    columns: Vec<Option<usize>>,
}

impl<'a, T: Sample> Edges<'a, T> {
    fn new(img: &'a Image<'a, T>) -> Self {
        let (w, r) = (img.width, img.r);
        // Output columns [0, left) and [right, w) are the strips, [r, w - r) the interior.
        let left = r.min(w);
        let right = r.max(w.saturating_sub(r));
        let strips = [(0, left), (right, w)]
            .into_iter()
            .filter(|(a, b)| a < b)
            .map(|(a, b)| Strip {
                a,
                b,
                columns: (a as isize - r as isize..(b + r) as isize)
                    .map(|c| img.mode.source_index(c, w))
                    .collect(),
            })
            .collect();
        Edges {
            img,
            interior: r..w.saturating_sub(r),
            strips,
            cval_nan: img.mode == BorderMode::Constant && img.cval.is_nan(),
            buf: Vec::new(),
            rows_store: Vec::new(),
        }
    }

    /// Output rows y and y + 1 with `kernel`; strips padded with a NaN `cval` go to `nan_kernel`
    /// if given.
    fn run<K: RowKernel<T>, N: RowKernel<T>>(
        &mut self,
        kernel: &mut K,
        mut nan_kernel: Option<&mut N>,
        rows: &[&[T]],
        sources: &[Option<usize>],
        out0: &mut [T],
        out1: &mut [T],
    ) {
        let (a, b) = (self.interior.start, self.interior.end);
        if a < b {
            kernel.pair(rows, &mut out0[a..b], &mut out1[a..b]);
        }
        let (w, cval) = (self.img.width, self.img.cval);
        for strip in &self.strips {
            self.buf.clear();
            for src in sources {
                match src {
                    Some(s) => {
                        let row = &self.img.input[s * w..(s + 1) * w];
                        self.buf
                            .extend(strip.columns.iter().map(|c| c.map_or(cval, |c| row[c])));
                    }
                    None => self.buf.extend(strip.columns.iter().map(|_| cval)),
                }
            }
            let mut strip_rows = recycle(std::mem::take(&mut self.rows_store));
            strip_rows.extend(self.buf.chunks_exact(strip.columns.len()));
            let (o0, o1) = (&mut out0[strip.a..strip.b], &mut out1[strip.a..strip.b]);
            match nan_kernel.as_deref_mut() {
                Some(nan_kernel) if self.cval_nan => nan_kernel.pair(&strip_rows, o0, o1),
                _ => kernel.pair(&strip_rows, o0, o1),
            }
            self.rows_store = recycle(strip_rows);
        }
    }
}

/// An empty vector of row references with a new lifetime, keeping the allocation (std collects
/// in place when the element layout is unchanged).
#[expect(
    clippy::unnecessary_filter_map,
    reason = "the map changes the element's lifetime, which `filter` cannot"
)]
fn recycle<'b, T>(mut v: Vec<&[T]>) -> Vec<&'b [T]> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

// ---------------------------------------------------------------------------------------------
// 3×3 and 5×5: sorting networks over whole rows

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
struct Net3<T> {
    isa: Isa,
    /// The wide schedule's sorted columns: low, middle, high for each of the two output rows.
    cols: Vec<T>,
}

impl<T: Sample> Net3<T> {
    fn new(isa: Isa) -> Self {
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

/// The two operations of a comparator network. Every [`Sample`] has them; the tests also run
/// networks on bit sets, one 0-1 input per bit (min = and, max = or).
trait MinMax: Copy {
    fn lo(self, other: Self) -> Self;
    fn hi(self, other: Self) -> Self;
}

impl<T: Sample> MinMax for T {
    #[inline(always)]
    fn lo(self, other: Self) -> Self {
        self.mn(other)
    }
    #[inline(always)]
    fn hi(self, other: Self) -> Self {
        self.mx(other)
    }
}

/// Applies a comparator network to `v`: `cas i j` leaves the min in i and the max in j; `min i j`
/// and `max i j` are comparators of which only that output is used later.
macro_rules! network {
    ($v:ident; $($op:ident $i:literal $j:literal;)*) => { $(network!(@ $v $op $i $j);)* };
    (@ $v:ident cas $i:literal $j:literal) => {
        let t = $v[$i].lo($v[$j]);
        $v[$j] = $v[$i].hi($v[$j]);
        $v[$i] = t;
    };
    (@ $v:ident min $i:literal $j:literal) => { $v[$i] = $v[$i].lo($v[$j]); };
    (@ $v:ident max $i:literal $j:literal) => { $v[$j] = $v[$i].hi($v[$j]); };
}

/// The median of 25 values given as 5 sorted columns: `v[5 * j + i]` is the i-th smallest of
/// column j. Result in `v[4]`.
///
/// Derived by sorting the five rows (insertion network), keeping the 13 entries that can still be
/// the median of a matrix with sorted rows and columns, selecting their 7th with Batcher's network,
/// then deleting every comparator that never swaps on such inputs or whose outputs are unused.
/// 112 min/max; `net5_selects_the_median` checks it on every 0-1 input (0-1 principle).
#[inline(always)]
fn net5<T: MinMax>(v: &mut [T; 25]) {
    network!(v;
        cas 0 5; cas 10 15; max 0 10; cas 5 15; max 5 10; cas 15 20; max 10 15; cas 1 6;
        cas 11 16; max 1 11; cas 6 16; cas 6 11; cas 16 21; cas 11 16; max 6 11; cas 2 7;
        cas 12 17; cas 2 12; cas 7 17; cas 7 12; min 17 22; cas 12 17; cas 7 12; max 2 7;
        cas 3 8; cas 13 18; cas 3 13; cas 8 18; cas 8 13; min 18 23; min 13 18; cas 8 13;
        cas 3 8; cas 4 9; cas 14 19; cas 4 14; cas 9 19; cas 9 14; min 19 24; min 14 19;
        min 9 14; cas 4 9; cas 7 3; cas 15 11; cas 16 13; cas 17 12; cas 8 20; max 7 15;
        cas 3 11; cas 16 4; min 13 9; cas 17 8; min 12 20; max 3 15; cas 13 4; cas 12 8;
        max 15 16; cas 11 13; min 8 21; cas 11 16; cas 13 4; cas 12 8; max 16 17; min 13 12;
        min 4 8; max 11 13; min 4 17; max 13 4;
    );
}

/// The median of 49 values given as 7 sorted columns: `v[7 * j + i]` is the i-th smallest of
/// column j. Result in `v[24]`.
///
/// Generated by `median_network.py 7` (next to this file, which says how it is derived and
/// checks it on every valid 0-1 input): 202 comparators, 356 min/max. `net7_selects_the_median`
/// checks it again here on every 0-1 input (0-1 principle).
#[inline(always)]
fn net7<T: MinMax>(v: &mut [T; 49]) {
    network!(v;
        cas 0 42; cas 14 21; cas 28 35; cas 0 14; cas 7 28; cas 21 42; max 0 7; cas 14 35;
        cas 21 28; max 7 14; cas 28 42; max 14 21; cas 28 35; max 21 28; cas 35 42; cas 1 43;
        cas 15 22; cas 29 36; cas 1 15; cas 8 29; cas 22 43; max 1 8; cas 15 36; cas 22 29;
        max 8 15; cas 29 43; max 15 22; cas 29 36; cas 22 29; cas 36 43; cas 2 44; cas 16 23;
        cas 30 37; cas 2 16; cas 9 30; cas 23 44; max 2 9; cas 16 37; cas 23 30; cas 9 16;
        cas 30 44; cas 16 23; cas 30 37; max 9 16; cas 23 30; cas 37 44; cas 3 45; cas 17 24;
        cas 31 38; cas 3 17; cas 10 31; cas 24 45; max 3 10; cas 17 38; cas 24 31; cas 10 17;
        cas 31 45; cas 17 24; cas 31 38; cas 10 17; cas 24 31; min 38 45; cas 4 46; cas 18 25;
        cas 32 39; cas 4 18; cas 11 32; cas 25 46; cas 4 11; cas 18 39; cas 25 32; cas 11 18;
        min 32 46; cas 18 25; min 32 39; cas 11 18; cas 25 32; cas 5 47; cas 19 26; cas 33 40;
        cas 5 19; cas 12 33; cas 26 47; cas 5 12; cas 19 40; cas 26 33; cas 12 19; min 33 47;
        cas 19 26; min 33 40; cas 12 19; min 26 33; cas 6 48; cas 20 27; cas 34 41; cas 6 20;
        cas 13 34; min 27 48; cas 6 13; min 20 41; min 27 34; cas 13 20; min 20 27; cas 13 20;
        cas 28 22; cas 16 10; cas 4 35; cas 29 23; cas 17 11; cas 5 42; cas 36 30; cas 24 18;
        cas 12 6; cas 43 37; cas 31 25; cas 19 13; cas 44 38; cas 32 26; cas 28 16; cas 22 10;
        cas 4 29; cas 35 23; cas 17 5; cas 11 42; cas 36 24; cas 30 18; cas 12 43; cas 6 37;
        cas 31 19; cas 25 13; cas 44 32; min 38 26; cas 22 16; cas 35 29; cas 11 5; cas 30 24;
        cas 6 43; cas 25 19; cas 38 32; max 28 4; max 22 35; cas 16 29; cas 10 23; cas 17 36;
        cas 11 30; cas 5 24; min 42 18; cas 12 31; cas 6 25; cas 43 19; min 37 13; cas 44 20;
        max 16 4; cas 10 35; cas 5 36; cas 42 30; cas 43 31; cas 37 25; min 32 20; cas 10 4;
        cas 35 29; cas 11 5; cas 42 36; cas 30 24; cas 6 43; cas 37 31; cas 25 19; cas 38 32;
        max 10 42; max 4 17; max 35 11; cas 29 5; cas 23 42; cas 31 44; min 25 38; min 19 32;
        max 29 17; cas 23 11; cas 5 36; cas 42 30; cas 43 31; cas 37 25; min 19 44; cas 23 17;
        cas 11 5; cas 42 36; cas 37 31; cas 25 19; max 17 12; max 11 6; max 5 43; min 42 37;
        min 36 31; min 30 25; min 24 19; max 23 42; max 36 12; min 30 6; min 24 43; max 42 30;
        min 24 12; max 30 24;
    );
}

/// The median of 81 values given as 9 sorted columns: `v[9 * j + i]` is the i-th smallest of
/// column j. Result in `v[40]`.
///
/// Generated by `median_network.py 9`, which checks it on all 10^9 valid 0-1 inputs (0-1
/// principle; too many for a unit test, which checks a sample): 411 comparators, 742 min/max.
#[inline(always)]
fn net9<T: MinMax>(v: &mut [T; 81]) {
    network!(v;
        cas 0 27; cas 9 63; cas 18 45; cas 36 72; cas 0 63; cas 18 36; cas 27 72; cas 45 54;
        max 0 18; cas 9 27; cas 36 45; cas 63 72; max 9 36; cas 27 54; cas 45 63; max 18 36;
        max 27 45; cas 54 72; max 36 45; cas 54 63; cas 45 54; cas 1 28; cas 10 64; cas 19 46;
        cas 37 73; cas 1 64; cas 19 37; cas 28 73; cas 46 55; max 1 19; cas 10 28; cas 37 46;
        cas 64 73; max 10 37; cas 28 55; cas 46 64; cas 19 37; cas 28 46; cas 55 73; max 19 28;
        cas 37 46; cas 55 64; max 28 37; cas 46 55; cas 2 29; cas 11 65; cas 20 47; cas 38 74;
        cas 2 65; cas 20 38; cas 29 74; cas 47 56; max 2 20; cas 11 29; cas 38 47; cas 65 74;
        max 11 38; cas 29 56; cas 47 65; cas 20 38; cas 29 47; cas 56 74; max 20 29; cas 38 47;
        cas 56 65; max 29 38; cas 47 56; cas 3 30; cas 12 66; cas 21 48; cas 39 75; cas 3 66;
        cas 21 39; cas 30 75; cas 48 57; max 3 21; cas 12 30; cas 39 48; cas 66 75; max 12 39;
        cas 30 57; cas 48 66; cas 21 39; cas 30 48; cas 57 75; max 21 30; cas 39 48; cas 57 66;
        cas 30 39; cas 48 57; cas 4 31; cas 13 67; cas 22 49; cas 40 76; cas 4 67; cas 22 40;
        cas 31 76; cas 49 58; cas 4 22; cas 13 31; cas 40 49; cas 67 76; cas 13 40; cas 31 58;
        cas 49 67; max 4 13; cas 22 40; cas 31 49; min 58 76; cas 22 31; cas 40 49; cas 58 67;
        cas 13 22; cas 31 40; cas 49 58; cas 5 32; cas 14 68; cas 23 50; cas 41 77; cas 5 68;
        cas 23 41; cas 32 77; cas 50 59; cas 5 23; cas 14 32; cas 41 50; cas 68 77; cas 14 41;
        cas 32 59; cas 50 68; cas 5 14; cas 23 41; cas 32 50; min 59 77; cas 23 32; cas 41 50;
        min 59 68; cas 14 23; cas 32 41; min 50 59; cas 6 33; cas 15 69; cas 24 51; cas 42 78;
        cas 6 69; cas 24 42; cas 33 78; cas 51 60; cas 6 24; cas 15 33; cas 42 51; min 69 78;
        cas 15 42; min 33 60; min 51 69; cas 6 15; cas 24 42; cas 33 51; cas 24 33; min 42 51;
        cas 15 24; cas 33 42; cas 7 34; cas 16 70; cas 25 52; cas 43 79; cas 7 70; cas 25 43;
        cas 34 79; cas 52 61; cas 7 25; cas 16 34; cas 43 52; min 70 79; cas 16 43; min 34 61;
        min 52 70; cas 7 16; cas 25 43; cas 34 52; cas 25 34; min 43 52; cas 16 25; cas 34 43;
        cas 8 35; cas 17 71; cas 26 53; cas 44 80; cas 8 71; cas 26 44; cas 35 80; cas 53 62;
        cas 8 26; cas 17 35; cas 44 53; min 71 80; cas 17 44; min 35 62; min 53 71; cas 8 17;
        cas 26 44; cas 35 53; cas 26 35; min 44 53; cas 17 26; min 35 44; cas 45 37; cas 13 5;
        cas 54 46; cas 38 30; cas 22 14; cas 6 63; cas 55 47; cas 39 31; cas 23 15; cas 7 72;
        cas 64 56; cas 48 40; cas 32 24; cas 16 8; cas 73 65; cas 57 49; cas 41 33; cas 25 17;
        cas 74 66; cas 58 50; cas 42 34; cas 26 75; cas 67 43; cas 45 13; cas 37 5; cas 54 38;
        cas 46 30; cas 22 6; cas 14 63; cas 55 39; cas 47 31; cas 23 7; cas 15 72; cas 64 48;
        cas 56 40; cas 32 16; cas 24 8; cas 73 57; cas 65 49; cas 41 25; cas 33 17; cas 74 58;
        cas 66 50; cas 42 26; cas 34 75; cas 67 35; cas 37 13; cas 46 38; cas 14 6; cas 47 39;
        cas 15 7; cas 56 48; cas 24 16; cas 65 57; cas 33 25; cas 66 58; cas 34 26; min 43 35;
        max 45 54; cas 37 46; cas 13 38; cas 5 30; cas 22 55; cas 14 47; cas 6 39; cas 63 31;
        cas 23 64; cas 15 56; cas 7 48; cas 72 40; cas 32 73; cas 24 65; cas 16 57; min 8 49;
        cas 41 74; cas 33 66; cas 25 58; cas 17 50; cas 42 67; cas 13 54; cas 5 46; cas 6 55;
        cas 63 47; cas 7 64; cas 72 56; cas 16 73; cas 8 65; cas 25 74; cas 17 66; cas 26 67;
        min 75 43; max 37 13; cas 5 54; cas 46 38; cas 14 6; cas 63 55; cas 47 39; cas 15 7;
        cas 72 64; cas 56 48; cas 24 16; cas 8 73; min 65 57; cas 33 25; cas 17 74; cas 66 58;
        cas 34 26; cas 75 67; max 13 6; cas 5 63; cas 72 8; cas 74 67; max 54 22; cas 46 14;
        cas 38 6; cas 30 63; cas 64 32; cas 56 24; cas 48 16; cas 40 8; cas 74 42; cas 66 34;
        cas 58 26; min 50 75; max 5 46; cas 38 22; cas 30 14; cas 6 55; cas 63 47; cas 7 64;
        cas 72 56; cas 48 32; cas 40 24; cas 16 73; min 8 65; cas 25 74; cas 17 66; cas 58 42;
        cas 50 34; min 26 67; min 46 38; max 30 22; cas 14 6; cas 63 55; cas 15 7; cas 72 64;
        cas 56 48; cas 40 32; cas 24 16; cas 8 73; cas 17 74; cas 66 58; cas 50 42; min 34 26;
        max 46 56; max 22 23; max 14 15; max 6 7; max 63 72; cas 55 64; cas 47 56; cas 39 48;
        cas 31 40; max 55 23; max 47 15; cas 39 7; cas 31 72; cas 64 32; cas 56 24; cas 48 16;
        cas 40 8; max 39 23; cas 31 15; cas 7 64; cas 72 56; cas 48 32; cas 40 24; max 31 23;
        cas 15 7; cas 72 64; cas 56 48; cas 40 32; cas 24 16; min 8 73; max 23 41; max 15 33;
        max 7 25; max 72 17; min 64 74; min 56 66; min 48 58; min 40 50; min 32 42; min 24 34;
        min 32 41; min 24 33; min 16 25; min 8 17; max 64 32; max 56 24; min 48 16; min 40 8;
        max 48 32; min 40 24; min 40 32;
    );
}

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
        struct $kernel<T> {
            isa: Isa,
            cols: Vec<[T; $w]>,
        }

        impl<T: Sample> $kernel<T> {
            fn new(isa: Isa) -> Self {
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

// ---------------------------------------------------------------------------------------------
// K ≥ 11: a sliding-window histogram

/// Largest radius the histogram path takes: its keys are u16, so a tile's footprint (at least
/// (2r + 1)² values, each possibly distinct) must stay below 65536.
const MAX_HISTOGRAM_RADIUS: usize = 127;

/// Output tile side of the histogram path, at most: a tile's keys stay in cache, and for wide
/// types its footprint of (tile + 2r)² values must rank below 65536.
const TILE: usize = 128;

/// Histogram bins: one per u16 key, at offset [`GUARD`], with [`GUARD`] always-empty bins on
/// each side so that the median search reads whole groups without bounds tests.
const GUARD: usize = 16;
const BINS: usize = (1 << 16) + 2 * GUARD;

/// u32 counts: read-modify-writes of 16-bit memory measured twice as slow as 32-bit ones.
type Histogram = [u32; BINS];

per_isa!(fn histogram_median = histogram_median_body(img: &Image<'_, T>, output: &mut [T]));

/// K ≥ 11: Huang's sliding-window histogram, moving the window one pixel at a time in a serpentine
/// (right along one row, down, left along the next), so that each step adds K values, removes K,
/// and moves the running median a few bins. O(K) per pixel with a small constant, and no
/// re-initialisation between rows.
///
/// Samples of 16 bits or fewer are counted directly. Wider types are first replaced, tile by tile,
/// by their dense rank among the tile's footprint (a radix sort), which keeps the histogram's
/// occupied bins close together. NaN takes the largest key and is left out of the rank, which
/// implements the NaN rule without a separate path.
#[inline(always)]
fn histogram_median_body<T: Sample>(img: &Image<'_, T>, output: &mut [T]) {
    let (w, h, r) = (img.width, img.height, img.r);
    let borders = Borders::new(img);
    let mut hist: Box<Histogram> = vec![0u32; BINS]
        .into_boxed_slice()
        .try_into()
        .expect("invariant: BINS long");
    // Tiles keep the keys a window reads in cache and the ranks of wide types below 65535.
    let tile = TILE.min(255 - 2 * r);
    let mut keys = TileKeys::default();
    for ty in (0..h).step_by(tile) {
        for tx in (0..w).step_by(tile) {
            let (tw, th) = (tile.min(w - tx), tile.min(h - ty));
            keys.load(&borders, tx, ty, tw + 2 * r, th + 2 * r);
            let rows = keys.rows;
            let nan_key = T::IS_FLOAT.then_some(keys.values.len() as u16);
            let (tile_keys, values) = (&keys.keys, &keys.values);
            huang_tile(tile_keys, rows, tw, th, r, &mut hist, nan_key, |x, y, m| {
                let at = (ty + y) * w + tx + x;
                output[at] = if T::DIRECT {
                    T::from_direct(m)
                } else if Some(tile_keys[(x + r) * rows + y + r]) == nan_key {
                    img.input[at]
                } else {
                    values[m as usize]
                };
            });
        }
    }
}

/// Where each row and column of the image padded by r on every side reads, per the border mode.
struct Borders<'a, T> {
    img: &'a Image<'a, T>,
    /// Padded row y (column x) reads input row `rows[y]` (column `cols[x]`); None: the constant.
    rows: Vec<Option<usize>>,
    cols: Vec<Option<usize>>,
}

impl<'a, T: Sample> Borders<'a, T> {
    fn new(img: &'a Image<'a, T>) -> Self {
        let (w, h, r) = (img.width as isize, img.height as isize, img.r as isize);
        Borders {
            img,
            rows: (-r..h + r)
                .map(|y| img.mode.source_index(y, h as usize))
                .collect(),
            cols: (-r..w + r)
                .map(|x| img.mode.source_index(x, w as usize))
                .collect(),
        }
    }

    /// Calls `f(x, y, value)` for the `cols × rows` block of the padded image at (x0, y0).
    #[inline(always)]
    fn block(
        &self,
        x0: usize,
        y0: usize,
        cols: usize,
        rows: usize,
        mut f: impl FnMut(usize, usize, T),
    ) {
        let (w, cval) = (self.img.width, self.img.cval);
        for (y, src) in self.rows[y0..y0 + rows].iter().enumerate() {
            let columns = self.cols[x0..x0 + cols].iter().enumerate();
            match src {
                Some(s) => {
                    let row = &self.img.input[s * w..(s + 1) * w];
                    for (x, c) in columns {
                        f(x, y, c.map_or(cval, |c| row[c]));
                    }
                }
                None => columns.for_each(|(x, _)| f(x, y, cval)),
            }
        }
    }
}

/// One tile's footprint as histogram keys, column-major (`keys[x * rows + y]`), so that the K
/// keys entering or leaving the window at each step along a row are contiguous.
///
/// Types of 16 bits or fewer are their own keys. Wider ones are ranked: the key is the rank among
/// the footprint's distinct values (`values[rank]`), and NaN gets `values.len()`.
struct TileKeys<T> {
    keys: Vec<u16>,
    rows: usize,
    values: Vec<T>,
    /// (sort key, position), and the radix sort's second buffer.
    pairs: Vec<(u64, u32)>,
    spare: Vec<(u64, u32)>,
    nans: Vec<u32>,
}

impl<T> Default for TileKeys<T> {
    fn default() -> Self {
        TileKeys {
            keys: Vec::new(),
            rows: 0,
            values: Vec::new(),
            pairs: Vec::new(),
            spare: Vec::new(),
            nans: Vec::new(),
        }
    }
}

impl<T: Sample> TileKeys<T> {
    fn load(&mut self, borders: &Borders<'_, T>, x0: usize, y0: usize, cols: usize, rows: usize) {
        self.rows = rows;
        self.keys.clear();
        self.keys.resize(cols * rows, 0);
        if T::DIRECT {
            let keys = &mut self.keys;
            borders.block(x0, y0, cols, rows, |x, y, v| {
                keys[x * rows + y] = v.to_direct()
            });
            return;
        }
        self.pairs.clear();
        self.nans.clear();
        let (pairs, nans) = (&mut self.pairs, &mut self.nans);
        borders.block(x0, y0, cols, rows, |x, y, v| {
            let pos = (x * rows + y) as u32;
            if v.is_nan() {
                nans.push(pos);
            } else {
                pairs.push((v.sort_key(), pos));
            }
        });
        radix_sort(&mut self.pairs, &mut self.spare);
        self.values.clear();
        let mut last = None;
        for &(key, pos) in &self.pairs {
            if last != Some(key) {
                last = Some(key);
                let (x, y) = (pos as usize / rows, pos as usize % rows);
                let (sy, sx) = (borders.rows[y0 + y], borders.cols[x0 + x]);
                let img = borders.img;
                self.values.push(match (sy, sx) {
                    (Some(sy), Some(sx)) => img.input[sy * img.width + sx],
                    _ => img.cval,
                });
            }
            // At most 255² values: the tile size keeps ranks and the NaN key below 65536.
            self.keys[pos as usize] = (self.values.len() - 1) as u16;
        }
        let nan_key = self.values.len() as u16;
        for &pos in &self.nans {
            self.keys[pos as usize] = nan_key;
        }
    }
}

/// Sorts by the u64 key, stably, 8 bits per pass, skipping the passes where every key has the
/// same digit (the high bytes of most images).
fn radix_sort(pairs: &mut Vec<(u64, u32)>, spare: &mut Vec<(u64, u32)>) {
    let first = pairs.first().map_or(0, |p| p.0);
    let differ = pairs.iter().fold(0, |acc, p| acc | (p.0 ^ first));
    spare.clear();
    spare.resize(pairs.len(), (0, 0));
    for shift in (0..64).step_by(8) {
        if (differ >> shift) & 0xff == 0 {
            continue;
        }
        let mut count = [0usize; 257];
        for p in pairs.iter() {
            count[((p.0 >> shift) & 0xff) as usize + 1] += 1;
        }
        for i in 0..256 {
            count[i + 1] += count[i];
        }
        for &p in pairs.iter() {
            let d = ((p.0 >> shift) & 0xff) as usize;
            spare[count[d]] = p;
            count[d] += 1;
        }
        std::mem::swap(pairs, spare);
    }
}

/// The window's histogram and the running median: bin `m` holds the median and `lt` window keys
/// lie below it. Keys are binned at `key + GUARD`.
struct Running<'h> {
    hist: &'h mut Histogram,
    m: usize,
    lt: usize,
}

impl Running<'_> {
    fn new(hist: &mut Histogram) -> Running<'_> {
        Running {
            hist,
            m: GUARD,
            lt: 0,
        }
    }

    #[inline(always)]
    fn add(&mut self, key: u16) {
        self.hist[key as usize + GUARD] += 1;
    }

    #[inline(always)]
    fn remove(&mut self, key: u16) {
        self.hist[key as usize + GUARD] -= 1;
    }

    /// The median's key.
    #[inline(always)]
    fn key(&self) -> u16 {
        (self.m - GUARD) as u16
    }

    /// `leave` out of the window, `enter` into it, pairwise.
    #[inline(always)]
    fn swap(&mut self, leave: &[u16], enter: &[u16]) {
        let m = self.m - GUARD;
        // Two independent sums rather than one running difference: no serial dependency.
        let (mut entering, mut leaving) = (0, 0);
        for (&out, &add) in leave.iter().zip(enter) {
            self.remove(out);
            self.add(add);
            entering += usize::from((add as usize) < m);
            leaving += usize::from((out as usize) < m);
        }
        self.lt = self.lt + entering - leaving;
    }

    /// Moves `m` to the bin of rank `rank` (0-based) among the window's keys.
    ///
    /// Where the image has a gradient the median moves tens of bins per step, over sparsely
    /// occupied bins, so the search passes 16 bins at a time by their (vectorised) sum, and walks
    /// bin by bin only within the last 16.
    #[inline(always)]
    fn settle(&mut self, rank: usize) {
        let hist = &*self.hist;
        let sum16 = |start: usize| -> usize {
            let group: &[u32; 16] = hist[start..start + 16].try_into().expect("16 bins");
            group.iter().sum::<u32>() as usize
        };
        let (mut m, mut lt) = (self.m, self.lt);
        if lt > rank {
            // The highest bin b < m with lt - (count in b..m) <= rank.
            loop {
                let below = sum16(m - 16);
                if lt - below <= rank {
                    break;
                }
                (m, lt) = (m - 16, lt - below);
            }
            loop {
                m -= 1;
                lt -= hist[m] as usize;
                if lt <= rank {
                    break;
                }
            }
        } else {
            // The lowest bin b >= m with lt + (count in m..=b) > rank.
            loop {
                let above = sum16(m);
                if lt + above > rank {
                    break;
                }
                (m, lt) = (m + 16, lt + above);
            }
            while lt + hist[m] as usize <= rank {
                lt += hist[m] as usize;
                m += 1;
            }
        }
        (self.m, self.lt) = (m, lt);
    }
}

/// Calls `emit(x, y, median key)` for every window of a `tw × th` block of outputs over the
/// column-major `keys` (column stride `rows`, padded by r on every side), leaving `hist` (all
/// zero on entry) all zero.
///
/// With `nan_key`, keys equal to it are not counted in the rank: the median is the lower median of
/// the others (when there are none, the key emitted is meaningless and the caller's centre check
/// applies). `nan_key` is then the largest key present.
#[allow(clippy::too_many_arguments)]
fn huang_tile(
    keys: &[u16],
    rows: usize,
    tw: usize,
    th: usize,
    r: usize,
    hist: &mut Histogram,
    nan_key: Option<u16>,
    mut emit: impl FnMut(usize, usize, u16),
) {
    let k = 2 * r + 1;
    let total = k * k;
    let rank = |hist: &Histogram| {
        let valid = total - nan_key.map_or(0, |n| hist[n as usize + GUARD] as usize);
        valid.saturating_sub(1) / 2
    };
    let column = |x: usize, y: usize| &keys[x * rows + y..][..k];
    let mut run = Running::new(hist);
    for dx in 0..k {
        for &key in column(dx, 0) {
            run.add(key);
        }
    }
    let mut x = 0;
    for y in 0..th {
        if y > 0 {
            // Down one row at column x: the window's top row leaves, a new bottom row enters.
            for dx in 0..k {
                let col = &keys[(x + dx) * rows..];
                run.swap(&col[y - 1..y], &col[y - 1 + k..y + k]);
            }
        }
        run.settle(rank(run.hist));
        emit(x, y, run.key());
        for _ in 1..tw {
            // Along the row, rightwards on even rows and leftwards on odd ones.
            let (leave, enter, next) = if y % 2 == 0 {
                (x, x + k, x + 1)
            } else {
                (x + k - 1, x - 1, x - 1)
            };
            run.swap(column(leave, y), column(enter, y));
            x = next;
            run.settle(rank(run.hist));
            emit(x, y, run.key());
        }
    }
    // Empty the histogram for the next tile.
    for dx in 0..k {
        for &key in column(x + dx, th - 1) {
            run.remove(key);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Any size: selection over the gathered window

/// Gathers each window and selects its median: O(K²) per pixel, the fallback for sizes without
/// a faster path.
struct Select<T> {
    r: usize,
    buf: Vec<T>,
}

impl<T: Sample> Select<T> {
    fn new(r: usize) -> Self {
        let k = 2 * r + 1;
        Select {
            r,
            buf: Vec::with_capacity(k * k),
        }
    }

    fn row(&mut self, rows: &[&[T]], out: &mut [T]) {
        let k = 2 * self.r + 1;
        let rank = k * k / 2;
        for (x, o) in out.iter_mut().enumerate() {
            self.buf.clear();
            for row in rows {
                self.buf.extend_from_slice(&row[x..x + k]);
            }
            let (_, m, _) = self.buf.select_nth_unstable_by(rank, T::order);
            *o = *m;
        }
    }
}

impl<T: Sample> RowKernel<T> for Select<T> {
    fn pair(&mut self, rows: &[&[T]], out0: &mut [T], out1: &mut [T]) {
        let k = 2 * self.r + 1;
        self.row(&rows[..k], out0);
        self.row(&rows[1..], out1);
    }
}

/// The NaN rule of the module docs, any size: the lower median of the window's non-NaN values.
struct NanAware<T> {
    r: usize,
    buf: Vec<T>,
}

impl<T: Sample> NanAware<T> {
    fn new(r: usize) -> Self {
        NanAware { r, buf: Vec::new() }
    }

    fn row(&mut self, rows: &[&[T]], out: &mut [T]) {
        let (r, k) = (self.r, 2 * self.r + 1);
        for (x, o) in out.iter_mut().enumerate() {
            let centre = rows[r][x + r];
            if centre.is_nan() {
                *o = centre;
                continue;
            }
            self.buf.clear();
            for row in rows {
                self.buf
                    .extend(row[x..x + k].iter().copied().filter(|p| !p.is_nan()));
            }
            // Not empty: the centre is in it.
            let rank = (self.buf.len() - 1) / 2;
            let (_, m, _) = self.buf.select_nth_unstable_by(rank, T::order);
            *o = *m;
        }
    }
}

impl<T: Sample> RowKernel<T> for NanAware<T> {
    fn pair(&mut self, rows: &[&[T]], out0: &mut [T], out1: &mut [T]) {
        let k = 2 * self.r + 1;
        self.row(&rows[..k], out0);
        self.row(&rows[1..], out1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn median01(v: &[u8]) -> u8 {
        let zeros = v.iter().filter(|&&b| b == 0).count();
        u8::from(zeros <= v.len() / 2)
    }

    /// A set of 0-1 inputs of a network, one per bit.
    #[derive(Clone, Copy)]
    struct Bits(u128);

    impl MinMax for Bits {
        fn lo(self, other: Self) -> Self {
            Bits(self.0 & other.0)
        }
        fn hi(self, other: Self) -> Self {
            Bits(self.0 | other.0)
        }
    }

    /// Runs the K×K selection network `net` on every valid 0-1 input ((K + 1)^K of them: column
    /// j holds some number of ones, in its top ranks) and checks that wire `result` holds the
    /// median. Bit (K + 1)·c1 + c0 of each wire stands for the input whose first two columns
    /// hold c0 and c1 ones, so each run of the network covers (K + 1)² inputs at once.
    fn selects_the_median_of_every_01_input<const N: usize>(
        k: usize,
        net: fn(&mut [Bits; N]),
        result: usize,
    ) {
        assert!(N == k * k && (k + 1) * (k + 1) <= 128);
        let lanes = || (0..(k + 1) * (k + 1)).map(move |l| (l % (k + 1), l / (k + 1)));
        let mask = |f: &dyn Fn(usize, usize) -> bool| {
            lanes()
                .enumerate()
                .filter(|&(_, (c0, c1))| f(c0, c1))
                .fold(0u128, |m, (l, _)| m | 1 << l)
        };
        let first: Vec<[u128; 2]> = (0..k)
            .map(|i| [mask(&|c0, _| c0 >= k - i), mask(&|_, c1| c1 >= k - i)])
            .collect();
        let all = mask(&|_, _| true);
        let mut ones = vec![0usize; k - 2];
        loop {
            let mut v = [Bits(0); N];
            for j in 0..k {
                for i in 0..k {
                    v[k * j + i] = Bits(match j {
                        0 | 1 => first[i][j],
                        _ if ones[j - 2] >= k - i => all,
                        _ => 0,
                    });
                }
            }
            let others: usize = ones.iter().sum();
            let median = mask(&|c0, c1| c0 + c1 + others > (k * k - 1) / 2);
            net(&mut v);
            assert_eq!(v[result].0, median, "columns 2.. hold {ones:?} ones");
            // The next combination of the other columns' counts.
            let Some(j) = ones.iter().position(|&c| c < k) else {
                break;
            };
            ones[..j].fill(0);
            ones[j] += 1;
        }
    }

    #[test]
    fn net7_selects_the_median() {
        selects_the_median_of_every_01_input(7, net7, 24);
    }

    /// 10^7 runs of 742 min/max: minutes without optimisation, so not in every run (`cargo test
    /// --release --lib -- --ignored net9`); `median_network.py 9` checks the same inputs.
    #[test]
    #[ignore]
    fn net9_selects_the_median() {
        selects_the_median_of_every_01_input(9, net9, 40);
    }

    /// A fixed sample of the above for every run, each column count equally likely.
    #[test]
    fn net9_selects_the_median_of_a_sample() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            let mut v = [0u8; 81];
            let mut zeros_total = 0;
            for j in 0..9 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let zeros = (state % 10) as usize;
                zeros_total += zeros.min(9);
                for i in 0..9 {
                    v[9 * j + i] = u8::from(i >= zeros);
                }
            }
            let mut a = v;
            net9(&mut a);
            assert_eq!(a[40], u8::from(zeros_total <= 40), "{v:?}");
        }
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

    #[test]
    fn net5_selects_the_median() {
        selects_the_median_of_every_01_input(5, net5, 4);
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

    #[test]
    fn border_modes_match_scipy_pictures() {
        // a b c d = 0 1 2 3; positions -3..=6
        let pick = |m: BorderMode| -> Vec<Option<usize>> {
            (-3..=6).map(|i| m.source_index(i, 4)).collect()
        };
        let s = |v: &[usize]| v.iter().map(|&i| Some(i)).collect::<Vec<_>>();
        assert_eq!(
            pick(BorderMode::Reflect),
            s(&[2, 1, 0, 0, 1, 2, 3, 3, 2, 1])
        );
        assert_eq!(pick(BorderMode::Mirror), s(&[3, 2, 1, 0, 1, 2, 3, 2, 1, 0]));
        assert_eq!(
            pick(BorderMode::Nearest),
            s(&[0, 0, 0, 0, 1, 2, 3, 3, 3, 3])
        );
        assert_eq!(pick(BorderMode::Wrap), s(&[1, 2, 3, 0, 1, 2, 3, 0, 1, 2]));
        assert_eq!(pick(BorderMode::Constant)[0], None);
        assert_eq!(BorderMode::Mirror.source_index(-5, 1), Some(0));
        for m in BorderMode::ALL {
            assert_eq!(BorderMode::parse(m.name()), Some(m));
        }
        assert_eq!(BorderMode::parse("grid-wrap"), None);
    }

    #[test]
    fn cval_conversion_matches_scipy_on_x86_64() {
        // Values observed from scipy 1.17 on x86-64 (median of a 1×1 image, size 3, constant).
        assert_eq!(cval_as::<u8>(1.7), 1);
        assert_eq!(cval_as::<u8>(-1.0), 255);
        assert_eq!(cval_as::<u8>(300.0), 44);
        assert_eq!(cval_as::<u8>(4294967295.5), 0);
        assert_eq!(cval_as::<u16>(70000.0), 4464);
        assert_eq!(cval_as::<u16>(f64::NAN), 0);
        assert_eq!(cval_as::<u32>(1e10), 1410065408);
        assert_eq!(cval_as::<u32>(-1e10), 2884901888);
        assert_eq!(cval_as::<u32>(4294967295.5), 4294967295);
        assert_eq!(cval_as::<i16>(-1.5), -1);
        assert_eq!(cval_as::<i32>(1e10), i32::MIN);
        assert_eq!(cval_as::<i32>(f64::INFINITY), i32::MIN);
        assert_eq!(cval_as::<f32>(0.1), 0.1f32);
        assert!(cval_as::<f64>(f64::NAN).is_nan());
    }
}
