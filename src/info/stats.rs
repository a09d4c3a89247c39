//! `info --stats`: what the values of a stack are, in one parallel pass over its pages (each
//! read in place where it can be, so at the speed of reading the file).

use anyhow::Result;
use rayon::prelude::*;
use serde_json::{Value, json};

use crate::pixel::Pixel;
use crate::stack::Stack;
use crate::with_pixel_type;

/// The statistics of some values: the finite ones' range and mean, and how many are not
/// finite or zero.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub min: f64,
    pub max: f64,
    sum: f64,
    pub finite: u64,
    pub nan: u64,
    pub plus_inf: u64,
    pub minus_inf: u64,
    pub zeros: u64,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            finite: 0,
            nan: 0,
            plus_inf: 0,
            minus_inf: 0,
            zeros: 0,
        }
    }
}

impl Stats {
    fn of<T: Pixel>(values: &[T]) -> Stats {
        let mut s = Stats::default();
        for v in values.iter().map(|v| v.as_f64()) {
            if v.is_finite() {
                s.min = s.min.min(v);
                s.max = s.max.max(v);
                s.sum += v;
                s.finite += 1;
                s.zeros += u64::from(v == 0.0);
            } else if v.is_nan() {
                s.nan += 1;
            } else if v > 0.0 {
                s.plus_inf += 1;
            } else {
                s.minus_inf += 1;
            }
        }
        s
    }

    fn merged(self, o: Stats) -> Stats {
        Stats {
            min: self.min.min(o.min),
            max: self.max.max(o.max),
            sum: self.sum + o.sum,
            finite: self.finite + o.finite,
            nan: self.nan + o.nan,
            plus_inf: self.plus_inf + o.plus_inf,
            minus_inf: self.minus_inf + o.minus_inf,
            zeros: self.zeros + o.zeros,
        }
    }

    /// The mean of the finite values (NaN when there are none).
    pub fn mean(&self) -> f64 {
        self.sum / self.finite as f64
    }

    pub fn line(&self) -> String {
        if self.finite == 0 {
            return format!(
                "no finite value; NaN {}, +Inf {}, -Inf {}",
                self.nan, self.plus_inf, self.minus_inf
            );
        }
        format!(
            "min {}, max {}, mean {}; NaN {}, +Inf {}, -Inf {}, zeros {}",
            number(self.min),
            number(self.max),
            number(self.mean()),
            self.nan,
            self.plus_inf,
            self.minus_inf,
            self.zeros
        )
    }

    pub fn to_json(self) -> Value {
        let finite = |v: f64| (self.finite > 0).then_some(v);
        json!({
            "min": finite(self.min),
            "max": finite(self.max),
            "mean": finite(self.mean()),
            "finite": self.finite,
            "nan": self.nan,
            "plus_inf": self.plus_inf,
            "minus_inf": self.minus_inf,
            "zeros": self.zeros,
        })
    }
}

/// A value for a person to read: whole numbers whole, very large and very small ones in
/// scientific notation, others to 6 decimals.
fn number(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 1e6 || v.abs() < 1e-3 {
        format!("{v:.6e}")
    } else {
        format!("{v:.6}")
    }
}

/// The whole stack's statistics and each page's, computed in parallel, page by page.
pub fn of_stack(stack: &Stack) -> Result<(Stats, Vec<Stats>)> {
    let pages: Vec<Stats> = with_pixel_type!(stack.format.dtype, T => {
        (0..stack.len())
            .into_par_iter()
            .map_init(Vec::<T>::new, |scratch, index| {
                let page = stack.page::<T>(index, scratch)?;
                Ok(Stats::of::<T>(&page))
            })
            .collect::<Result<Vec<_>>>()?
    });
    let whole = pages.iter().fold(Stats::default(), |a, &b| a.merged(b));
    Ok((whole, pages))
}
