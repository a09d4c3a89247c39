//! Sample types: what the kernels need of each of the seven pixel types ([`Sample`]), scipy's
//! conversion of `cval` to them ([`cval_as`]), and the dispatch from a generic [`Pixel`] to its
//! concrete type ([`with_sample`]).

use std::any::TypeId;
use std::cmp::Ordering;

use crate::pixel::Pixel;

/// What the kernels need of a sample type beyond [`Pixel`], implemented for the seven types.
pub(crate) trait Sample: Pixel {
    const IS_FLOAT: bool;
    /// Minimum for NaN-free values, written so it compiles to one vector min per lane.
    fn mn(self, other: Self) -> Self;
    /// Maximum for NaN-free values.
    fn mx(self, other: Self) -> Self;
    /// scipy's conversion of `cval` ([module docs](super)).
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

/// `cval` as scipy pads an image of type `T` with it ([module docs](super)).
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

#[cfg(test)]
mod tests {
    use super::*;

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
