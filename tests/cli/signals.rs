//! Ctrl-C and SIGTERM in the middle of a run: exit 130 / 143, nothing at the output path, no
//! temporary file left, input untouched.

use std::process::{Command, Stdio};
use std::time::Duration;

use imfilter::pixel::DType;

use crate::sparse::sparse_stack;
use crate::support::Scratch;

fn stop_midway(signal: &str, expected_code: i32) {
    let s = Scratch::new();
    sparse_stack(&s.path("big.tif"), 600, 512, DType::U16, false);
    sparse_stack(&s.path("flat.tif"), 1, 512, DType::U16, false);
    let before = std::fs::read(s.path("big.tif")).expect("read");
    let child = Command::new(assert_cmd::cargo::cargo_bin!("imfilter"))
        .args([
            "background-correct",
            "-j",
            "1",
            "--flat",
            "flat.tif",
            "big.tif",
            "-o",
            "out.tif",
        ])
        .current_dir(s.dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    s.wait_for_temp_file(Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(50));
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args([signal, &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(expected_code),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.trim_end().lines().count() == 1 && said.starts_with("imfilter: interrupted by SIG"),
        "{signal}: stderr: {said}"
    );
    assert!(!s.path("out.tif").exists(), "partial output left");
    s.assert_no_temp_files();
    assert_eq!(
        std::fs::read(s.path("big.tif")).expect("read"),
        before,
        "input changed"
    );
}

#[test]
fn ctrl_c_exits_130_and_leaves_nothing() {
    stop_midway("-INT", 130);
}

#[test]
fn sigterm_exits_143_and_leaves_nothing() {
    stop_midway("-TERM", 143);
}

/// The batch-system and session signals whose default action would kill imfilter with its
/// preallocated temporary files on disk: each stops the run cleanly, with 128 + its number.
#[test]
fn hangup_user_alarm_and_cpu_limit_signals_stop_cleanly() {
    for (signal, code) in [
        ("-HUP", 129),
        ("-USR1", 138),
        ("-USR2", 140),
        ("-ALRM", 142),
        ("-XCPU", 152),
    ] {
        stop_midway(signal, code);
    }
}
