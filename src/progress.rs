//! Progress on stderr: an indicatif bar on a terminal, plain lines for cron logs, JSON lines
//! for other programs, or nothing. stdout never carries progress.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, else nothing.
    Auto,
    /// An indicatif bar with rate and ETA.
    Bar,
    /// A line every few seconds, for logs.
    Plain,
    /// One JSON object per line, for programs.
    Json,
    /// Nothing.
    None,
}

/// How often plain and JSON lines are written.
const LINE_INTERVAL: Duration = Duration::from_secs(2);

enum Sink {
    Bar(ProgressBar),
    Lines { json: bool, last: Mutex<Instant> },
    Silent,
}

/// Counts finished images; safe to tick from every worker.
pub struct Progress {
    label: String,
    total: usize,
    done: AtomicUsize,
    start: Instant,
    sink: Sink,
}

impl Progress {
    pub fn new(mode: ProgressMode, label: &str, total: usize) -> Progress {
        let start = Instant::now();
        let sink = match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => Sink::Bar(bar(label, total)),
            ProgressMode::Bar => Sink::Bar(bar(label, total)),
            ProgressMode::Plain => Sink::Lines {
                json: false,
                last: Mutex::new(start),
            },
            ProgressMode::Json => Sink::Lines {
                json: true,
                last: Mutex::new(start),
            },
            ProgressMode::Auto | ProgressMode::None => Sink::Silent,
        };
        Progress {
            label: label.to_string(),
            total,
            done: AtomicUsize::new(0),
            start,
            sink,
        }
    }

    /// One more image is finished.
    pub fn tick(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.sink {
            Sink::Bar(bar) => bar.inc(1),
            Sink::Lines { json, last } => {
                let now = Instant::now();
                let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
                if now.duration_since(*last) >= LINE_INTERVAL || done == self.total {
                    *last = now;
                    self.line(*json, done);
                }
            }
            Sink::Silent => {}
        }
    }

    pub fn finish(&self) {
        if let Sink::Bar(bar) = &self.sink {
            bar.finish_and_clear();
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn line(&self, json: bool, done: usize) {
        let elapsed = self.start.elapsed().as_secs_f64();
        let eta = if done > 0 {
            elapsed / done as f64 * (self.total - done) as f64
        } else {
            0.0
        };
        let text = if json {
            serde_json::json!({
                "event": "progress",
                "command": self.label,
                "done": done,
                "total": self.total,
                "elapsed_s": (elapsed * 1000.0).round() / 1000.0,
                "eta_s": (eta * 10.0).round() / 10.0,
            })
            .to_string()
        } else {
            format!(
                "{}: {done}/{} images, {elapsed:.1} s, ETA {eta:.0} s",
                self.label, self.total
            )
        };
        // A closed stderr must not stop the work: progress is advisory.
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }
}

fn bar(label: &str, total: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    let style = ProgressStyle::with_template(
        "{prefix} {bar:40.cyan/blue} {pos}/{len} images [{elapsed_precise}, {rate}, ETA {eta}]",
    )
    .map(|style| {
        // indicatif's own {per_sec} prints "30.2731/s".
        style.with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} images/s", state.per_sec());
            },
        )
    })
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(label.to_string());
    bar
}
