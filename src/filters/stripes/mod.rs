//! `imfilter remove-stripes`: stripe (ring artefact) removal on sinograms, algotom 1.7's
//! methods (`algotom.prep.removal`) from Vo, Atwood & Drakopoulos, "Superior techniques for
//! eliminating ring artifacts in X-ray micro-tomography", Optics Express 26(22), 28396
//! (2018). docs/stripes.md gives each method's maths and where imfilter differs.
//!
//! A sinogram is row y of every image (`stack[:, y, :]`: angles down, detector across), so
//! this step is not applied image by image: as a [`SinogramStep`] it gets a pass of its own
//! over row bands of the result (`engine::sinograms`). In the image pass before it, its
//! [`Op::apply`] only converts each image to float32, the type every method works in, pixel
//! by pixel; so when the steps before it are pixel by pixel too, the sinogram pass reads its
//! rows straight from the input and there is no image pass.

mod detection;
mod fitting;
mod fourier;
mod selection;
mod sorting;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use serde_json::json;

use super::{ChainError, Op, OpArgs, Pixels, PixelsMut, SinogramStep, SinogramWorker};
use crate::pixel::{DType, Pixel};
use crate::stack::PageFormat;
use crate::with_pixel_type;
use sorting::{RowMedian, Sorted, Window};

/// algotom's method, by the name of its function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// remove_stripe_based_sorting: sort each column, median across the detector, sort back
    /// (partial and full stripes)
    Sorting,
    /// remove_stripe_based_filtering: as sorting, on the low frequencies of each column
    Filtering,
    /// remove_stripe_based_fitting: polynomial fit along the angles, Fourier-filtered
    /// (full stripes of low contrast)
    Fitting,
    /// remove_large_stripe: detect wide stripes and replace them by their sorted, smoothed
    /// values
    Large,
    /// remove_dead_stripe: detect unresponsive and fluctuating columns and interpolate
    /// across them
    Dead,
    /// remove_all_stripe: dead (no residual pass), then large, then sorting
    All,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Sorting => "sorting",
            Method::Filtering => "filtering",
            Method::Fitting => "fitting",
            Method::Large => "large",
            Method::Dead => "dead",
            Method::All => "all",
        }
    }
}

pub const REMOVE_STRIPES_HELP: &str = "\
Each sinogram (row y of every image) is cleaned as algotom's function of the same method
does it; docs/stripes.md gives the maths. Sinograms cross the images, so this step has a
pass of its own over the result, a band of rows at a time, after the steps before it (or
straight from the input when they work pixel by pixel): the summary line says so. Steps
after it that work pixel by pixel in float32 (minus-log, clip, ...) join that pass; others
(a median, a crop) run in a second part, from an intermediate stack beside the output.

Parameters and defaults (algotom's):
  sorting    --size 21 --dim 1
  filtering  --sigma 3 --size 21 --dim 1
  fitting    --order 2 --sigma 10
  large      --snr 3 --size 51
  dead       --snr 3 --size 51
  all        --snr 3 --la-size 51 --sm-size 21 --dim 1

Examples:
  imfilter remove-stripes --method sorting --size 21 Tomo/ -o clean.tif
  imfilter remove-stripes --method all --snr 3 --la-size 61 --sm-size 21 stack.tif -o clean.tif
  imfilter run --step 'background-correct --flat F/ --dark D/' \\
               --step 'remove-stripes --method filtering --sigma 3 --size 21' --step minus-log Tomo/ -o out.tif";

#[derive(Debug, Args)]
pub struct RemoveStripesArgs {
    /// algotom's method (see below)
    #[arg(long, value_enum)]
    pub method: Method,

    /// Median window across the detector, odd, at least 3 (sorting, filtering: 21; large,
    /// dead: 51)
    #[arg(long, value_name = "N", value_parser = parse_window)]
    pub size: Option<usize>,

    /// 1: the median window is one row of the sorted sinogram; 2: a square (sorting,
    /// filtering, all: 1)
    #[arg(long, value_name = "1|2", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub dim: Option<u8>,

    /// Gaussian sigma: of the low-pass along the angles (filtering: 3), of the Fourier filter
    /// across the detector (fitting: 10)
    #[arg(long, value_name = "S", allow_negative_numbers = true, value_parser = parse_positive)]
    pub sigma: Option<f64>,

    /// Order of the polynomial fitted along the angles (fitting: 2)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=8))]
    pub order: Option<u8>,

    /// Detection ratio: a stripe stands out of the noise by more than this (large, dead, all:
    /// 3; greater is less sensitive)
    #[arg(long, value_name = "R", allow_negative_numbers = true, value_parser = parse_positive)]
    pub snr: Option<f64>,

    /// Median window for large stripes, odd, at least 3 (all: 51)
    #[arg(long, value_name = "N", value_parser = parse_window)]
    pub la_size: Option<usize>,

    /// Median window for small and medium stripes, odd, at least 3 (all: 21)
    #[arg(long, value_name = "N", value_parser = parse_window)]
    pub sm_size: Option<usize>,
}

/// An odd median window of at least 3.
fn parse_window(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 3 && n % 2 == 1 => Ok(n),
        Ok(n) => Err(format!(
            "{n}: the window must be odd and at least 3 (it is centred on each pixel)"
        )),
        Err(_) => Err(format!("'{s}' is not a window size (an odd number ≥ 3)")),
    }
}

fn parse_positive(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("{v}: must be a number greater than 0")),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// A method with its parameters, defaults filled in.
#[derive(Debug, Clone, Copy)]
enum Plan {
    Sorting {
        size: usize,
        window: Window,
    },
    Filtering {
        sigma: f64,
        size: usize,
        window: Window,
    },
    Fitting {
        order: usize,
        sigma: f64,
    },
    Large {
        snr: f64,
        size: usize,
    },
    Dead {
        snr: f64,
        size: usize,
    },
    All {
        snr: f64,
        la_size: usize,
        sm_size: usize,
        window: Window,
    },
}

impl RemoveStripesArgs {
    fn plan(&self) -> Result<Plan> {
        let method = self.method;
        let given = [
            ("--size", self.size.is_some()),
            ("--dim", self.dim.is_some()),
            ("--sigma", self.sigma.is_some()),
            ("--order", self.order.is_some()),
            ("--snr", self.snr.is_some()),
            ("--la-size", self.la_size.is_some()),
            ("--sm-size", self.sm_size.is_some()),
        ];
        let takes: &[&str] = match method {
            Method::Sorting => &["--size", "--dim"],
            Method::Filtering => &["--sigma", "--size", "--dim"],
            Method::Fitting => &["--order", "--sigma"],
            Method::Large | Method::Dead => &["--snr", "--size"],
            Method::All => &["--snr", "--la-size", "--sm-size", "--dim"],
        };
        if let Some((flag, _)) = given.iter().find(|(f, g)| *g && !takes.contains(f)) {
            bail!(ChainError(format!(
                "remove-stripes: {flag} is not a parameter of --method {}: it takes {}",
                method.name(),
                takes.join(", ")
            )));
        }
        let window = match self.dim.unwrap_or(1) {
            1 => Window::Row,
            _ => Window::Square,
        };
        Ok(match method {
            Method::Sorting => Plan::Sorting {
                size: self.size.unwrap_or(21),
                window,
            },
            Method::Filtering => Plan::Filtering {
                sigma: self.sigma.unwrap_or(3.0),
                size: self.size.unwrap_or(21),
                window,
            },
            Method::Fitting => Plan::Fitting {
                order: usize::from(self.order.unwrap_or(2)),
                sigma: self.sigma.unwrap_or(10.0),
            },
            Method::Large => Plan::Large {
                snr: self.snr.unwrap_or(3.0),
                size: self.size.unwrap_or(51),
            },
            Method::Dead => Plan::Dead {
                snr: self.snr.unwrap_or(3.0),
                size: self.size.unwrap_or(51),
            },
            Method::All => Plan::All {
                snr: self.snr.unwrap_or(3.0),
                la_size: self.la_size.unwrap_or(51),
                sm_size: self.sm_size.unwrap_or(21),
                window,
            },
        })
    }
}

impl OpArgs for RemoveStripesArgs {
    fn build(&self) -> Result<Box<dyn Op>> {
        Ok(Box::new(RemoveStripes {
            method: self.method,
            plan: self.plan()?,
        }))
    }
}

/// `imfilter remove-stripes`: see the module documentation.
pub struct RemoveStripes {
    method: Method,
    plan: Plan,
}

impl Op for RemoveStripes {
    fn name(&self) -> &'static str {
        "remove-stripes"
    }

    fn parameters(&self) -> serde_json::Value {
        let dim = |w: Window| if w == Window::Row { 1 } else { 2 };
        let mut p = match self.plan {
            Plan::Sorting { size, window } => json!({"size": size, "dim": dim(window)}),
            Plan::Filtering {
                sigma,
                size,
                window,
            } => json!({"sigma": sigma, "size": size, "dim": dim(window)}),
            Plan::Fitting { order, sigma } => json!({"order": order, "sigma": sigma}),
            Plan::Large { snr, size } | Plan::Dead { snr, size } => {
                json!({"snr": snr, "size": size})
            }
            Plan::All {
                snr,
                la_size,
                sm_size,
                window,
            } => json!({"snr": snr, "la_size": la_size, "sm_size": sm_size, "dim": dim(window)}),
        };
        p["method"] = json!(self.method.name());
        p["reference"] = json!("algotom 1.7 algotom.prep.removal, applied to each sinogram");
        p
    }

    fn output_format(&self, input: PageFormat) -> Result<PageFormat> {
        Ok(PageFormat {
            dtype: DType::F32,
            ..input
        })
    }

    fn apply(&self, _at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        let out = dst.get::<f32>();
        with_pixel_type!(src.format.dtype, T => {
            for (o, &v) in out.iter_mut().zip(src.get::<T>()) {
                *o = v.to_f32();
            }
        });
    }

    fn pointwise(&self) -> bool {
        // In the image pass, only the conversion to float32.
        true
    }

    fn sinogram(&self) -> Option<&dyn SinogramStep> {
        Some(self)
    }
}

impl SinogramStep for RemoveStripes {
    fn worker(&self, angles: usize, width: usize) -> Result<Box<dyn SinogramWorker>> {
        if angles < 2 {
            bail!(ChainError(format!(
                "remove-stripes: the stack has {angles} image: a sinogram needs at least 2 \
                 projections"
            )));
        }
        if let Plan::Fitting { order, .. } = self.plan {
            // savgol_filter's window is the whole height made odd; it must exceed the order.
            if !fitting::supports(angles, order) {
                bail!(ChainError(format!(
                    "remove-stripes: --method fitting with --order {order} needs more than \
                     {order} projections (the stack has {angles})"
                )));
            }
        }
        Ok(Box::new(Worker {
            plan: self.plan,
            sorted: Sorted::new(angles, width),
            median: RowMedian::default(),
            split: match self.plan {
                Plan::Filtering { sigma, .. } => Some(fourier::FrequencySplit::new(angles, sigma)),
                _ => None,
            },
            fitting: match self.plan {
                Plan::Fitting { order, sigma } => {
                    Some(fitting::StripeFitting::new(angles, width, order, sigma))
                }
                _ => None,
            },
            low: Vec::new(),
            high: Vec::new(),
            width,
        }))
    }
}

/// One worker's state: the sort's buffers, FFT plans.
struct Worker {
    plan: Plan,
    sorted: Sorted,
    median: RowMedian,
    split: Option<fourier::FrequencySplit>,
    fitting: Option<fitting::StripeFitting>,
    low: Vec<f32>,
    high: Vec<f32>,
    width: usize,
}

impl SinogramWorker for Worker {
    fn apply(&mut self, sino: &mut [f32]) {
        match self.plan {
            Plan::Sorting { size, window } => {
                sorting::remove_stripe_sorting(sino, size, window, &mut self.sorted)
            }
            Plan::Filtering { size, window, .. } => {
                // The low frequencies of each column are sorted and smoothed; the high ones
                // are added back untouched (in float64, as numpy adds them).
                let split = self
                    .split
                    .as_mut()
                    .expect("a filtering worker has its split");
                self.low.resize(sino.len(), 0.0);
                split.smooth(sino, self.width, &mut self.low);
                self.high.clear();
                self.high
                    .extend(sino.iter().zip(&self.low).map(|(&s, &l)| s - l));
                sorting::remove_stripe_sorting(&mut self.low, size, window, &mut self.sorted);
                for ((s, &l), &h) in sino.iter_mut().zip(&self.low).zip(&self.high) {
                    *s = (f64::from(l) + f64::from(h)) as f32;
                }
            }
            Plan::Fitting { .. } => self
                .fitting
                .as_mut()
                .expect("a fitting worker has its plans")
                .apply(sino),
            Plan::Large { snr, size } => {
                detection::remove_large_stripes(sino, snr, size, &mut self.sorted);
            }
            Plan::Dead { snr, size } => {
                detection::remove_dead_stripes(
                    sino,
                    snr,
                    size,
                    true,
                    &mut self.sorted,
                    &mut self.median,
                );
            }
            Plan::All {
                snr,
                la_size,
                sm_size,
                window,
            } => {
                detection::remove_dead_stripes(
                    sino,
                    snr,
                    la_size,
                    false,
                    &mut self.sorted,
                    &mut self.median,
                );
                detection::remove_large_stripes(sino, snr, la_size, &mut self.sorted);
                sorting::remove_stripe_sorting(sino, sm_size, window, &mut self.sorted);
            }
        }
    }
}
