//! Steps that move pixels without changing them: `crop`, `rotate` and `flip`. Each keeps the
//! input's type and copies every value bit for bit, so results equal numpy's slicing,
//! `np.rot90` and `np.fliplr`/`np.flipud` exactly, for every type. They reshape
//! ([`Op::reshapes`]): a background correction later in a chain puts its flats and darks
//! through them too.

use anyhow::{Result, bail};
use serde_json::json;

use super::{Op, OpArgs, Pixels, PixelsMut};
use crate::stack::PageFormat;
use crate::with_pixel_type;

/// A region of interest in MantidImaging's order (`SensibleROI`): left, top, right, bottom, in
/// pixels from the top-left corner; right and bottom are exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roi {
    pub left: usize,
    pub top: usize,
    pub right: usize,
    pub bottom: usize,
}

impl std::fmt::Display for Roi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{},{},{},{}",
            self.left, self.top, self.right, self.bottom
        )
    }
}

/// Parses `LEFT,TOP,RIGHT,BOTTOM` (the `--roi` of `crop` and `roi-normalise`).
pub fn parse_roi(s: &str) -> Result<Roi, String> {
    let expected = "expected LEFT,TOP,RIGHT,BOTTOM: four whole numbers of pixels, at least 0";
    let numbers: Vec<&str> = s.split(',').map(str::trim).collect();
    let [left, top, right, bottom] = numbers[..] else {
        return Err(expected.into());
    };
    let number = |word: &str| {
        word.parse::<usize>()
            .map_err(|_| format!("'{word}' in '{s}' is not a pixel position: {expected}"))
    };
    Ok(Roi {
        left: number(left)?,
        top: number(top)?,
        right: number(right)?,
        bottom: number(bottom)?,
    })
}

/// `imfilter crop`'s arguments.
#[derive(Debug, clap::Args)]
pub struct CropArgs {
    /// The region kept, as MantidImaging gives it: LEFT,TOP,RIGHT,BOTTOM in pixels from the
    /// top-left corner, right and bottom exclusive (numpy's img[top:bottom, left:right])
    #[arg(long, value_name = "LEFT,TOP,RIGHT,BOTTOM", allow_negative_numbers = true, value_parser = parse_roi)]
    pub roi: Roi,
}

impl OpArgs for CropArgs {
    fn build(&self) -> Result<Box<dyn Op>> {
        Ok(Box::new(Crop(self.roi)))
    }
}

/// `imfilter crop`: each image cut to a rectangle, `img[top:bottom, left:right]` in numpy, the
/// region given in MantidImaging's order (`CropCoordinatesFilter` in
/// `mantidimaging/core/operations/crop_coords/crop_coords.py`, whose `SensibleROI` is left, top,
/// right, bottom). Unlike numpy's slicing, which quietly shortens a slice past the edge, and
/// MantidImaging, which fails at run time, a region reaching outside the image or holding no
/// pixel is an error before anything is read. Same type out as in.
pub struct Crop(pub Roi);

impl Op for Crop {
    fn name(&self) -> &'static str {
        "crop"
    }

    fn parameters(&self) -> serde_json::Value {
        let Roi {
            left,
            top,
            right,
            bottom,
        } = self.0;
        json!({ "roi": [left, top, right, bottom] })
    }

    fn output_format(&self, input: PageFormat) -> Result<PageFormat> {
        let roi = self.0;
        let size = format!("{}x{}", input.width, input.height);
        if roi.left >= roi.right || roi.top >= roi.bottom {
            bail!(
                "--roi {roi} is empty: LEFT must be less than RIGHT and TOP less than BOTTOM \
                 (the images are {size})"
            );
        }
        if roi.right > input.width || roi.bottom > input.height {
            bail!(
                "--roi {roi} reaches outside the {size} image: RIGHT can be at most {} and \
                 BOTTOM at most {}",
                input.width,
                input.height
            );
        }
        Ok(PageFormat {
            width: roi.right - roi.left,
            height: roi.bottom - roi.top,
            ..input
        })
    }

    fn reshapes(&self) -> bool {
        true
    }

    fn apply(&self, _at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        let width = src.format.width;
        let Roi {
            left, top, right, ..
        } = self.0;
        with_pixel_type!(src.format.dtype, T => {
            let (src, dst) = (src.get::<T>(), dst.get::<T>());
            let out_width = right - left;
            for (r, row) in dst.chunks_exact_mut(out_width).enumerate() {
                let start = (top + r) * width + left;
                row.copy_from_slice(&src[start..start + out_width]);
            }
        })
    }
}

/// A rotation by a multiple of 90°, counter-clockwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quarter {
    Ccw90,
    Half,
    Ccw270,
}

impl Quarter {
    pub fn degrees(self) -> u16 {
        match self {
            Quarter::Ccw90 => 90,
            Quarter::Half => 180,
            Quarter::Ccw270 => 270,
        }
    }
}

fn parse_angle(s: &str) -> Result<Quarter, String> {
    match s.trim() {
        "90" => Ok(Quarter::Ccw90),
        "180" => Ok(Quarter::Half),
        "270" => Ok(Quarter::Ccw270),
        _ => Err("the angle must be 90, 180 or 270 (degrees, counter-clockwise)".into()),
    }
}

/// `imfilter rotate`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// Degrees counter-clockwise: 90, 180 or 270 (numpy's np.rot90(img, k=angle // 90))
    #[arg(long, value_name = "DEGREES", allow_negative_numbers = true, value_parser = parse_angle)]
    pub angle: Quarter,
}

impl OpArgs for RotateArgs {
    fn build(&self) -> Result<Box<dyn Op>> {
        Ok(Box::new(Rotate(self.angle)))
    }
}

/// `imfilter rotate`: each image turned counter-clockwise by 90, 180 or 270 degrees, exactly
/// `np.rot90(img, k=angle // 90)`, which is what MantidImaging's `RotateFilter` does for these
/// angles (`_compute_cardinal_rotation_per_slice` in
/// `mantidimaging/core/operations/rotate_stack/rotate_stack.py`). For 90 and 270 the width and
/// height swap: output pixel (row i, column j) is input pixel (j, W-1-i) for 90 and (H-1-j, i)
/// for 270; 180 reverses the image's pixel order. Same type out as in.
pub struct Rotate(pub Quarter);

impl Op for Rotate {
    fn name(&self) -> &'static str {
        "rotate"
    }

    fn parameters(&self) -> serde_json::Value {
        json!({ "angle": self.0.degrees() })
    }

    fn output_format(&self, input: PageFormat) -> Result<PageFormat> {
        Ok(match self.0 {
            Quarter::Half => input,
            Quarter::Ccw90 | Quarter::Ccw270 => PageFormat {
                width: input.height,
                height: input.width,
                ..input
            },
        })
    }

    fn reshapes(&self) -> bool {
        true
    }

    fn apply(&self, _at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        let PageFormat { width, height, .. } = src.format;
        with_pixel_type!(src.format.dtype, T => {
            rotate(src.get::<T>(), dst.get::<T>(), width, height, self.0)
        })
    }
}

/// Side of the square tiles a quarter turn is copied in: a tile of the input and one of the
/// output stay in L1 while the tile is transposed, whatever the image's width.
const TILE: usize = 32;

fn rotate<T: Copy>(src: &[T], dst: &mut [T], width: usize, height: usize, quarter: Quarter) {
    if quarter == Quarter::Half {
        for (o, &i) in dst.iter_mut().zip(src.iter().rev()) {
            *o = i;
        }
        return;
    }
    // The output is `height` wide and `width` high.
    let (out_width, out_height) = (height, width);
    for i0 in (0..out_height).step_by(TILE) {
        for j0 in (0..out_width).step_by(TILE) {
            for i in i0..(i0 + TILE).min(out_height) {
                let row = &mut dst[i * out_width..(i + 1) * out_width];
                for (j, o) in row.iter_mut().enumerate().skip(j0).take(TILE) {
                    *o = match quarter {
                        Quarter::Ccw90 => src[j * width + (width - 1 - i)],
                        _ => src[(height - 1 - j) * width + i],
                    };
                }
            }
        }
    }
}

/// Which way an image is mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Axis {
    /// Left and right swapped (np.fliplr)
    Horizontal,
    /// Top and bottom swapped (np.flipud)
    Vertical,
}

impl Axis {
    fn name(self) -> &'static str {
        match self {
            Axis::Horizontal => "horizontal",
            Axis::Vertical => "vertical",
        }
    }
}

/// `imfilter flip`'s arguments.
#[derive(Debug, clap::Args)]
pub struct FlipArgs {
    /// horizontal: mirror left-right (np.fliplr); vertical: mirror top-bottom (np.flipud)
    #[arg(long, value_enum)]
    pub axis: Axis,
}

impl OpArgs for FlipArgs {
    fn build(&self) -> Result<Box<dyn Op>> {
        Ok(Box::new(Flip(self.axis)))
    }
}

/// `imfilter flip`: each image mirrored, `np.fliplr(img)` (horizontal: column j becomes column
/// W-1-j) or `np.flipud(img)` (vertical: row i becomes row H-1-i). Same shape and type out as
/// in.
pub struct Flip(pub Axis);

impl Op for Flip {
    fn name(&self) -> &'static str {
        "flip"
    }

    fn parameters(&self) -> serde_json::Value {
        json!({ "axis": self.0.name() })
    }

    fn output_format(&self, input: PageFormat) -> Result<PageFormat> {
        Ok(input)
    }

    fn reshapes(&self) -> bool {
        true
    }

    fn apply(&self, _at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        let width = src.format.width;
        with_pixel_type!(src.format.dtype, T => {
            let (src, dst) = (src.get::<T>(), dst.get::<T>());
            match self.0 {
                Axis::Horizontal => {
                    for (o, i) in dst.chunks_exact_mut(width).zip(src.chunks_exact(width)) {
                        for (o, &i) in o.iter_mut().zip(i.iter().rev()) {
                            *o = i;
                        }
                    }
                }
                Axis::Vertical => {
                    for (o, i) in dst.chunks_exact_mut(width).zip(src.chunks_exact(width).rev()) {
                        o.copy_from_slice(i);
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `np.rot90` by its definition: k = 1 is `m[:, ::-1].T`.
    fn rot90_reference(m: &[u32], width: usize, height: usize, k: usize) -> Vec<u32> {
        let (mut m, mut w, mut h) = (m.to_vec(), width, height);
        for _ in 0..k {
            let mut out = vec![0; w * h];
            for i in 0..w {
                for j in 0..h {
                    out[i * h + j] = m[j * w + (w - 1 - i)];
                }
            }
            m = out;
            (w, h) = (h, w);
        }
        m
    }

    #[test]
    fn quarter_turns_of_images_larger_than_a_tile_match_rot90() {
        for (width, height) in [(1, 1), (3, 2), (37, 70), (65, 33)] {
            let src: Vec<u32> = (0..(width * height) as u32).collect();
            for (quarter, k) in [
                (Quarter::Ccw90, 1),
                (Quarter::Half, 2),
                (Quarter::Ccw270, 3),
            ] {
                let mut dst = vec![0; src.len()];
                rotate(&src, &mut dst, width, height, quarter);
                assert_eq!(
                    dst,
                    rot90_reference(&src, width, height, k),
                    "{width}x{height} {k}"
                );
            }
        }
    }

    #[test]
    fn a_roi_is_parsed_in_mantidimaging_order() {
        let roi = parse_roi("1, 2,3 ,4").expect("parses");
        assert_eq!((roi.left, roi.top, roi.right, roi.bottom), (1, 2, 3, 4));
        assert!(parse_roi("1,2,3").is_err());
        assert!(parse_roi("-1,2,3,4").is_err());
        assert!(parse_roi("1,2,3,4.5").is_err());
    }
}
