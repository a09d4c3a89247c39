//! Operations. Each is a step that maps one image into one image ([`Op`]), plus its prepared
//! state (e.g. flat and dark). The subcommand of an operation and `run --step` build the same
//! step from the same clap definition ([`OpArgs`], registered in `cli`), and the engine carries
//! every image through a [`Chain`] of them. No I/O of the output, no threads and no progress
//! logic in here: `engine` does the dispatching.

pub mod background;
pub mod circular_mask;
pub mod gaussian;
pub mod geometry;
pub mod median;
pub mod nan_removal;
pub mod neighbourhood;
pub mod outliers;
pub mod rebin;
pub mod reference_store;
pub mod rescale;
pub mod roi_normalise;
pub mod stripes;
pub mod values;

use anyhow::{Result, bail};

use crate::pixel::{DType, Pixel};
use crate::stack::{PageFormat, Stack};

/// One operation as a step of a chain: it never sees a stack, an output or a progress bar.
pub trait Op: Send + Sync {
    /// The subcommand name: used in progress lines, summaries, histories and default names.
    fn name(&self) -> &'static str;

    /// The parameters as recorded in the history sidecar.
    fn parameters(&self) -> serde_json::Value;

    /// The image this step makes from an image of format `input` (shape and type may change),
    /// or why it cannot take such an image.
    fn output_format(&self, input: PageFormat) -> Result<PageFormat>;

    /// Whether each output pixel depends only on the input pixel at the same place (and on
    /// that place): the engine may then run the step over bands of pixels, and a pointwise
    /// step keeps the image's shape.
    fn pointwise(&self) -> bool {
        false
    }

    /// Whether the step moves pixels to other places or merges them (crop, rotate, flip,
    /// rebin), so that images taken alongside the stack (flats, darks) must go through it too.
    fn reshapes(&self) -> bool {
        false
    }

    /// Further input files the step read (flats, darks): never overwritten by the run, and
    /// checked unchanged before its result is committed.
    fn references(&self) -> &[Stack] {
        &[]
    }

    /// Whether the step needs a statistic of the whole stack before it can run (rescale
    /// without bounds, roi-normalise). The engine then reads the stack once before the main
    /// pass, carries each image through the steps before this one, and hands it to
    /// [`Op::survey`]; only such steps cost that extra read.
    fn needs_survey(&self) -> bool {
        false
    }

    /// What this step takes from one image of the survey (a few numbers).
    fn survey(&self, _image: Pixels<'_>) -> Vec<f64> {
        Vec::new()
    }

    /// Every image's survey, in page order: the step makes its statistic from them.
    fn surveyed(&mut self, _surveys: Vec<Vec<f64>>) -> Result<()> {
        Ok(())
    }

    /// Maps `src` into `dst`. For a pointwise step these are the pixels `at ..` of an image
    /// (a band), for any other the whole image (`at` is 0). Their formats are the ones given
    /// to and returned by [`Op::output_format`].
    fn apply(&self, at: usize, src: Pixels<'_>, dst: PixelsMut<'_>);

    /// [`Op::apply`] to image `index` of the stack (0 is the first): what the engine calls, so
    /// that a step whose result depends on where the image is in the scan (flats interpolated
    /// between before and after it) can know.
    fn apply_image(&self, _index: usize, at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        self.apply(at, src, dst)
    }

    /// Told how many images the stack has, before any is applied.
    fn stack_images(&mut self, _count: usize) -> Result<()> {
        Ok(())
    }

    /// Lets a step that holds images of the input's shape (flats and darks) follow what the
    /// steps before it in a chain do to the shape. Called once, before `output_format`.
    fn follow(&mut self, _before: &[Box<dyn Op>]) -> Result<()> {
        Ok(())
    }

    /// A step that works on sinograms (row y of every image, across the stack) rather than
    /// on images: the engine gives it a pass of its own over row bands of the result (see
    /// [`Chain`]). In the image pass before that, its [`Op::apply`] only converts each image
    /// to the float32 its output format says.
    fn sinogram(&self) -> Option<&dyn SinogramStep> {
        None
    }
}

/// The sinogram side of a step (see [`Op::sinogram`]).
pub trait SinogramStep: Sync {
    /// One worker's state (buffers, FFT plans) for float32 sinograms of `angles` rows (the
    /// stack's images) and `width` columns, or why the step cannot take such sinograms (a
    /// [`ChainError`]).
    fn worker(&self, angles: usize, width: usize) -> Result<Box<dyn SinogramWorker>>;
}

/// Cleans sinograms, one after another, in place (`angles × width`, row-major).
pub trait SinogramWorker: Send {
    fn apply(&mut self, sinogram: &mut [f32]);
}

/// A reference image after [`reshaped_like`].
pub struct Reshaped {
    pub image: Vec<f32>,
    /// Width and height.
    pub shape: (usize, usize),
    /// The names of the steps applied to it.
    pub applied: Vec<&'static str>,
}

/// A float32 image taken alongside the stack (a flat, a dark) carried through the steps of
/// `before` that reshape (crop, rotate, flip, rebin), so it fits the images a later step
/// gets.
pub fn reshaped_like(
    before: &[Box<dyn Op>],
    mut image: Vec<f32>,
    (width, height): (usize, usize),
) -> Result<Reshaped> {
    let mut format = PageFormat {
        width,
        height,
        dtype: DType::F32,
    };
    let mut applied = Vec::new();
    for step in before.iter().filter(|s| s.reshapes()) {
        let next = step.output_format(format)?;
        let mut out = Vec::new();
        out.try_reserve_exact(next.pixels())
            .map_err(|_| anyhow::anyhow!("cannot allocate a reference image: out of memory"))?;
        out.resize(next.pixels(), 0f32);
        step.apply(
            0,
            Pixels::new(format, &image),
            PixelsMut::new(next, &mut out),
        );
        image = out;
        format = next;
        applied.push(step.name());
    }
    Ok(Reshaped {
        image,
        shape: (format.width, format.height),
        applied,
    })
}

/// A step's command-line arguments (the same for its subcommand and for `run --step`).
pub trait OpArgs {
    /// The step, its state prepared (flats read, parameters checked).
    fn build(&self) -> Result<Box<dyn Op>>;

    /// [`OpArgs::build`] for a command whose input is `input`: what commands call. A step
    /// that takes images from the input itself (background correction: the flats and darks
    /// an HDF5 input's image_key marks) overrides it.
    fn build_for(&self, _input: &Input<'_>) -> Result<Box<dyn Op>> {
        self.build()
    }
}

/// What a step may need to know of the command's input when it is built.
pub struct Input<'a> {
    pub paths: &'a [std::path::PathBuf],
    /// `--keys`, for an HDF5 dataset input.
    pub keys: &'a crate::stack::hdf5::Keys,
    /// Where combined flats and darks are kept between a job's processes, if anywhere.
    pub references: Option<&'a reference_store::ReferenceStore>,
}

/// Pixels of one image (or a band of one) of a type known only at run time.
#[derive(Clone, Copy)]
pub struct Pixels<'a> {
    pub format: PageFormat,
    bytes: &'a [u8],
}

impl<'a> Pixels<'a> {
    pub fn new<T: Pixel>(format: PageFormat, pixels: &'a [T]) -> Pixels<'a> {
        assert_eq!(
            T::DTYPE,
            format.dtype,
            "invariant: pixels of the format's type"
        );
        Pixels {
            format,
            bytes: bytemuck::cast_slice(pixels),
        }
    }

    /// The pixels as `T`, which must be the format's type.
    pub fn get<T: Pixel>(&self) -> &'a [T] {
        assert_eq!(
            T::DTYPE,
            self.format.dtype,
            "invariant: read as its own type"
        );
        bytemuck::cast_slice(self.bytes)
    }

    pub fn len(&self) -> usize {
        self.bytes.len() / self.format.dtype.bytes()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Writable pixels of one image (or a band of one) of a type known only at run time.
pub struct PixelsMut<'a> {
    pub format: PageFormat,
    bytes: &'a mut [u8],
}

impl<'a> PixelsMut<'a> {
    pub fn new<T: Pixel>(format: PageFormat, pixels: &'a mut [T]) -> PixelsMut<'a> {
        assert_eq!(
            T::DTYPE,
            format.dtype,
            "invariant: pixels of the format's type"
        );
        PixelsMut {
            format,
            bytes: bytemuck::cast_slice_mut(pixels),
        }
    }

    /// The pixels as `T`, which must be the format's type.
    pub fn get<T: Pixel>(self) -> &'a mut [T] {
        assert_eq!(
            T::DTYPE,
            self.format.dtype,
            "invariant: written as its own type"
        );
        bytemuck::cast_slice_mut(self.bytes)
    }
}

/// A buffer for an intermediate image of any type: 8-byte aligned, so it can be viewed as
/// pixels of every type, and reused from image to image.
#[derive(Default)]
pub struct ImageBuffer(Vec<u64>);

impl ImageBuffer {
    /// Room for `pixels` pixels of `dtype`; an allocation that fails is an error.
    fn reserve(&mut self, pixels: usize, dtype: DType) -> Result<()> {
        let words = (pixels * dtype.bytes()).div_ceil(8);
        if words > self.0.len() {
            self.0.clear();
            self.0.try_reserve_exact(words).map_err(|_| {
                anyhow::anyhow!(
                    "cannot allocate {} MiB for an intermediate image: out of memory",
                    (words * 8) >> 20
                )
            })?;
            self.0.resize(words, 0);
        }
        Ok(())
    }

    fn view(&self, format: PageFormat, pixels: usize) -> Pixels<'_> {
        let bytes: &[u8] = bytemuck::cast_slice(&self.0);
        Pixels {
            format,
            bytes: &bytes[..pixels * format.dtype.bytes()],
        }
    }

    fn view_mut(&mut self, format: PageFormat, pixels: usize) -> PixelsMut<'_> {
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut self.0);
        PixelsMut {
            format,
            bytes: &mut bytes[..pixels * format.dtype.bytes()],
        }
    }
}

/// Steps in order, with the format of the image before each and after the last.
pub struct Chain {
    steps: Vec<Box<dyn Op>>,
    /// `formats[k]` goes into step `k`; the last is the result's.
    formats: Vec<PageFormat>,
}

/// A chain that cannot be made: a usage error (exit 2), naming the step.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ChainError(pub String);

impl Chain {
    /// Checks that each step takes what the one before it makes, starting from `input`. With
    /// `as_steps` (a `run` of `--step`s) a step that does not fit is a [`ChainError`] naming
    /// it; otherwise (one operation's own subcommand) the step's own error.
    pub fn new(mut steps: Vec<Box<dyn Op>>, input: PageFormat, as_steps: bool) -> Result<Chain> {
        if steps.is_empty() {
            bail!(ChainError(
                "the chain has no steps: give at least one --step".into()
            ));
        }
        let mut formats = vec![input];
        for k in 0..steps.len() {
            let (before, rest) = steps.split_at_mut(k);
            let step = &mut rest[0];
            let at = formats[k];
            let name = step.name();
            let named = |e: anyhow::Error| match as_steps {
                true => ChainError(format!("--step {} ({name}): {e:#}", k + 1)).into(),
                false => e,
            };
            step.follow(before).map_err(named)?;
            let next = step.output_format(at).map_err(named)?;
            if step.pointwise() && (next.width, next.height) != (at.width, at.height) {
                bail!("invariant: a pointwise step keeps the shape");
            }
            formats.push(next);
        }
        Ok(Chain { steps, formats })
    }

    /// The steps, for a chain that is run in parts (see [`Chain::pass_boundary`]).
    pub fn into_steps(self) -> Vec<Box<dyn Op>> {
        self.steps
    }

    /// Tells every step how many images the stack has (see [`Op::stack_images`]).
    pub fn set_stack_images(&mut self, count: usize) -> Result<()> {
        for step in &mut self.steps {
            let name = step.name();
            step.stack_images(count).map_err(|e| e.context(name))?;
        }
        Ok(())
    }

    /// The first sinogram step, if any (see [`Op::sinogram`]).
    pub fn first_sinogram_step(&self) -> Option<usize> {
        self.steps.iter().position(|s| s.sinogram().is_some())
    }

    /// How many steps the image pass runs: every step up to the first sinogram step, which
    /// there converts to float32; every step when there is none.
    pub fn image_pass_steps(&self) -> usize {
        self.first_sinogram_step()
            .map_or(self.steps.len(), |first| first + 1)
    }

    /// The steps of the sinogram pass, from the first sinogram step on: sinogram steps, and
    /// steps applied pixel by pixel to each sinogram's rows as it is written back.
    pub fn sinogram_pass_steps(&self) -> &[Box<dyn Op>] {
        match self.first_sinogram_step() {
            Some(first) => &self.steps[first..],
            None => &[],
        }
    }

    /// Whether the sinogram steps can take the sinograms of a stack of `angles` images of
    /// `width` columns: a [`ChainError`] naming why not, checked before anything is written.
    pub fn check_sinograms(&self, angles: usize, width: usize) -> Result<()> {
        for step in self.steps.iter().filter_map(|s| s.sinogram()) {
            step.worker(angles, width)?;
        }
        Ok(())
    }

    /// After a sinogram step, the result is cleaned in place a band of rows at a time, so a
    /// later step must work on sinograms too, or pixel by pixel from float32 to float32
    /// without a survey. The first step after a sinogram step that does not, if any: the
    /// chain is then run in two parts, the steps before it into an intermediate stack first.
    pub fn pass_boundary(&self) -> Option<usize> {
        let first = self.first_sinogram_step()?;
        (first + 1..self.steps.len()).find(|&k| {
            let step = &self.steps[k];
            let keeps_float32 =
                self.formats[k].dtype == DType::F32 && self.formats[k + 1].dtype == DType::F32;
            step.sinogram().is_none()
                && !(step.pointwise() && keeps_float32 && !step.needs_survey())
        })
    }

    pub fn steps(&self) -> &[Box<dyn Op>] {
        &self.steps
    }

    pub fn input_format(&self) -> PageFormat {
        self.formats[0]
    }

    pub fn output_format(&self) -> PageFormat {
        *self.formats.last().expect("a chain has formats")
    }

    /// The format the image pass writes (see [`Chain::image_pass_steps`]): the result's,
    /// since the steps of a sinogram pass keep float32.
    pub fn image_pass_format(&self) -> PageFormat {
        self.formats[self.image_pass_steps()]
    }

    /// Whether every step of the image pass is pointwise (the engine then runs it band by
    /// band).
    pub fn pointwise(&self) -> bool {
        self.steps[..self.image_pass_steps()]
            .iter()
            .all(|s| s.pointwise())
    }

    /// The largest intermediate image of the image pass, in bytes (what each worker's two
    /// buffers must hold).
    pub fn largest_intermediate(&self) -> usize {
        let inner = &self.formats[1..self.image_pass_steps()];
        inner
            .iter()
            .map(|f| f.pixels() * f.dtype.bytes())
            .max()
            .unwrap_or(0)
    }

    /// The steps that need a survey, in order (see [`Op::needs_survey`]).
    pub fn surveying_steps(&self) -> Vec<usize> {
        (0..self.steps.len())
            .filter(|&k| self.steps[k].needs_survey())
            .collect()
    }

    /// Carries the whole image `src` through steps `0..k` and hands the result to step `k`'s
    /// [`Op::survey`].
    pub fn survey(
        &self,
        k: usize,
        index: usize,
        src: Pixels<'_>,
        buffers: &mut [ImageBuffer; 2],
    ) -> Result<Vec<f64>> {
        let whole = |j: usize| self.formats[j].pixels();
        self.carry(k, index, 0, src, None, buffers, whole)?;
        let image = match k {
            0 => src,
            _ => buffers[(k - 1) % 2].view(self.formats[k], whole(k)),
        };
        Ok(self.steps[k].survey(image))
    }

    /// Gives step `k` its surveys.
    pub fn conclude_survey(&mut self, k: usize, surveys: Vec<Vec<f64>>) -> Result<()> {
        let name = self.steps[k].name();
        self.steps[k]
            .surveyed(surveys)
            .map_err(|e| e.context(format!("{name}: the survey of the stack")))
    }

    /// Carries `src` (pixels `at ..` of an image of the input format, the whole image unless
    /// the chain is pointwise) through every step into `dst`, using `buffers` in between.
    pub fn apply(
        &self,
        index: usize,
        at: usize,
        src: Pixels<'_>,
        dst: PixelsMut<'_>,
        buffers: &mut [ImageBuffer; 2],
    ) -> Result<()> {
        let band = src.len();
        // A pointwise chain is given a band, any other a whole image, at every step.
        let pointwise = self.pointwise();
        let pixels = |k: usize| {
            if pointwise {
                band
            } else {
                self.formats[k].pixels()
            }
        };
        self.carry(
            self.image_pass_steps(),
            index,
            at,
            src,
            Some(dst),
            buffers,
            pixels,
        )
    }

    /// Carries one row of a sinogram (`src`, pixels `at ..` of its image, float32) through
    /// the pixel-by-pixel step `k` of the sinogram pass into `dst`.
    pub fn apply_to_row(&self, k: usize, index: usize, at: usize, src: &[f32], dst: &mut [f32]) {
        let format = self.formats[k];
        debug_assert!(self.steps[k].pointwise() && format.dtype == DType::F32);
        let (src, dst) = (Pixels::new(format, src), PixelsMut::new(format, dst));
        self.steps[k].apply_image(index, at, src, dst);
    }

    /// Runs steps `0..n` on `src`, ping-ponging between `buffers` (step `k` writes
    /// `buffers[k % 2]`): the last into `last` when given, else into its buffer. `pixels(k)`
    /// is how many pixels go into step `k` (a band or the whole image).
    #[allow(clippy::too_many_arguments)]
    fn carry(
        &self,
        n: usize,
        index: usize,
        at: usize,
        src: Pixels<'_>,
        mut last: Option<PixelsMut<'_>>,
        buffers: &mut [ImageBuffer; 2],
        pixels: impl Fn(usize) -> usize,
    ) -> Result<()> {
        let buffered = if last.is_some() {
            n.saturating_sub(1)
        } else {
            n
        };
        for k in 0..buffered {
            buffers[k % 2].reserve(pixels(k + 1), self.formats[k + 1].dtype)?;
        }
        for (k, step) in self.steps[..n].iter().enumerate() {
            let [a, b] = &mut *buffers;
            let (before, after) = if k % 2 == 0 { (&*b, a) } else { (&*a, b) };
            let input = if k == 0 {
                src
            } else {
                before.view(self.formats[k], pixels(k))
            };
            let output = match last.take() {
                Some(dst) if k + 1 == n => dst,
                kept => {
                    last = kept;
                    after.view_mut(self.formats[k + 1], pixels(k + 1))
                }
            };
            step.apply_image(index, at, input, output);
        }
        Ok(())
    }
}
