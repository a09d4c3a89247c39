//! Pixel types: the runtime `DType` read from a file, and the compile-time `Pixel` trait the
//! kernels are generic over. `with_pixel_type!` is the one place that turns the first into the
//! second, so every kernel is monomorphised per type and the inner loops see concrete types.

use std::fmt;

/// The grayscale sample types imfilter reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    U8,
    U16,
    U32,
    I16,
    I32,
    F32,
    F64,
}

/// TIFF SampleFormat values (TIFF 6.0, tag 339).
pub const SAMPLE_FORMAT_UINT: u16 = 1;
pub const SAMPLE_FORMAT_INT: u16 = 2;
pub const SAMPLE_FORMAT_IEEEFP: u16 = 3;

impl DType {
    pub const ALL: [DType; 7] = [
        DType::U8,
        DType::U16,
        DType::U32,
        DType::I16,
        DType::I32,
        DType::F32,
        DType::F64,
    ];

    /// The numpy name, which is what scientists read and type.
    pub fn name(self) -> &'static str {
        match self {
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    pub fn bytes(self) -> usize {
        match self {
            DType::U8 => 1,
            DType::U16 | DType::I16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::F64 => 8,
        }
    }

    pub fn bits(self) -> u16 {
        self.bytes() as u16 * 8
    }

    pub fn sample_format(self) -> u16 {
        match self {
            DType::U8 | DType::U16 | DType::U32 => SAMPLE_FORMAT_UINT,
            DType::I16 | DType::I32 => SAMPLE_FORMAT_INT,
            DType::F32 | DType::F64 => SAMPLE_FORMAT_IEEEFP,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// The type for a TIFF (BitsPerSample, SampleFormat) pair, if imfilter handles it.
    pub fn from_tiff(bits: u16, sample_format: u16) -> Option<DType> {
        DType::ALL
            .into_iter()
            .find(|d| d.bits() == bits && d.sample_format() == sample_format)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A sample type a kernel can be instantiated for.
///
/// `Pod`: any bit pattern is a valid value and there is no padding, which is what lets file
/// bytes be viewed as `&[Self]` without copying.
pub trait Pixel:
    bytemuck::Pod + Send + Sync + PartialOrd + PartialEq + Default + fmt::Debug + 'static
{
    const DTYPE: DType;

    /// Converts with round-to-nearest, as numpy's `astype(np.float32)` does.
    fn to_f32(self) -> f32;

    /// Converts exactly (every supported type fits in float64).
    fn as_f64(self) -> f64;

    /// `v` in this type: exact when [`Pixel::holds`] says so, else rounded to nearest (floats)
    /// or saturated toward zero (integers, Rust's `as`; NaN becomes 0).
    fn narrow(v: f64) -> Self;

    /// Whether `v` is a value of this type (floats: always, rounded to the type).
    fn holds(v: f64) -> bool;

    /// Reverses the byte order (for files written on the other endianness).
    fn swap_bytes(self) -> Self;

    /// True only for floating-point NaN.
    fn is_nan(self) -> bool;
}

macro_rules! impl_int_pixel {
    ($t:ty, $d:expr) => {
        impl Pixel for $t {
            const DTYPE: DType = $d;
            #[inline(always)]
            fn to_f32(self) -> f32 {
                self as f32
            }
            #[inline(always)]
            fn as_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn narrow(v: f64) -> Self {
                v as $t
            }
            fn holds(v: f64) -> bool {
                v.fract() == 0.0 && v >= <$t>::MIN as f64 && v <= <$t>::MAX as f64
            }
            #[inline(always)]
            fn swap_bytes(self) -> Self {
                <$t>::swap_bytes(self)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                false
            }
        }
    };
}

impl_int_pixel!(u8, DType::U8);
impl_int_pixel!(u16, DType::U16);
impl_int_pixel!(u32, DType::U32);
impl_int_pixel!(i16, DType::I16);
impl_int_pixel!(i32, DType::I32);

impl Pixel for f32 {
    const DTYPE: DType = DType::F32;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn narrow(v: f64) -> Self {
        v as f32
    }
    fn holds(_: f64) -> bool {
        true
    }
    #[inline(always)]
    fn swap_bytes(self) -> Self {
        f32::from_bits(self.to_bits().swap_bytes())
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

impl Pixel for f64 {
    const DTYPE: DType = DType::F64;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn narrow(v: f64) -> Self {
        v
    }
    fn holds(_: f64) -> bool {
        true
    }
    #[inline(always)]
    fn swap_bytes(self) -> Self {
        f64::from_bits(self.to_bits().swap_bytes())
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}

/// Runs `$body` with `$T` bound to the Rust type of the runtime `$dtype`.
///
/// ```
/// use imfilter::{pixel::{DType, Pixel}, with_pixel_type};
/// let bytes = with_pixel_type!(DType::U16, T => std::mem::size_of::<T>());
/// assert_eq!(bytes, 2);
/// ```
#[macro_export]
macro_rules! with_pixel_type {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::pixel::DType::U8 => {
                type $T = u8;
                $body
            }
            $crate::pixel::DType::U16 => {
                type $T = u16;
                $body
            }
            $crate::pixel::DType::U32 => {
                type $T = u32;
                $body
            }
            $crate::pixel::DType::I16 => {
                type $T = i16;
                $body
            }
            $crate::pixel::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::pixel::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::pixel::DType::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiff_codes_round_trip_for_every_dtype() {
        for d in DType::ALL {
            assert_eq!(DType::from_tiff(d.bits(), d.sample_format()), Some(d));
        }
        assert_eq!(DType::from_tiff(1, SAMPLE_FORMAT_UINT), None);
        assert_eq!(DType::from_tiff(16, SAMPLE_FORMAT_IEEEFP), None);
    }

    #[test]
    fn dispatch_binds_the_matching_rust_type() {
        for d in DType::ALL {
            assert_eq!(with_pixel_type!(d, T => T::DTYPE), d);
            assert_eq!(
                with_pixel_type!(d, T => std::mem::size_of::<T>()),
                d.bytes()
            );
        }
    }
}
