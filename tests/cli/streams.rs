//! Shell pipelines: `-` reads a TIFF from stdin, `-o -` writes one to stdout.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::support::{
    Scratch, assert_matches_reference, assert_one_line_error, fixtures, read_stack,
};

#[test]
fn a_stack_piped_through_stdout_and_stdin_equals_the_file_route() {
    let s = Scratch::new();
    let first = s
        .imfilter()
        .args([
            "background-correct",
            "-q",
            "--flat",
            "sample/flat.tif",
            "--dark",
            "sample/dark.tif",
        ])
        .args(["sample/stack.tif", "-o", "-"])
        .output()
        .expect("runs");
    assert!(first.status.success());
    assert!(first.stdout.starts_with(b"II*\0") || first.stdout.starts_with(b"MM\0*"));
    std::fs::write(s.path("via_stdout.tif"), &first.stdout).expect("write");
    assert_matches_reference(
        &s.path("via_stdout.tif"),
        &fixtures().join("expected/bc_mean.tif"),
    );

    // Read back from stdin, it gives what the same file gives.
    let second = ["background-correct", "-q", "--flat", "sample/flat.tif"];
    s.imfilter()
        .args(second)
        .args(["-", "-o", "from_stdin.tif"])
        .write_stdin(first.stdout)
        .assert()
        .success();
    s.imfilter()
        .args(second)
        .args(["via_stdout.tif", "-o", "from_file.tif"])
        .assert()
        .success();
    let (_, _, _, a) = read_stack(&s.path("from_stdin.tif"));
    let (_, _, _, b) = read_stack(&s.path("from_file.tif"));
    assert_eq!(a.len(), 12 * 45 * 67);
    assert!(
        a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
    );
}

#[test]
fn a_reader_that_stops_early_ends_quietly_with_status_0() {
    let s = Scratch::new();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("imfilter"))
        .args([
            "background-correct",
            "--flat",
            "sample/flat.tif",
            "sample/stack.tif",
            "-o",
            "-",
        ])
        .current_dir(s.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut head = [0u8; 100];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut head)
        .expect("100 bytes");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("error"));
}

#[test]
fn stdin_without_o_is_a_clear_error() {
    let s = Scratch::new();
    let input = std::fs::read(s.path("sample/stack.tif")).expect("read");
    let a = s
        .imfilter()
        .args(["background-correct", "--flat", "sample/flat.tif", "-"])
        .write_stdin(input)
        .assert()
        .code(1);
    assert_one_line_error(&a.get_output().stderr, &["stdin", "needs -o"]);
}

#[test]
fn stdout_on_a_terminal_is_refused() {
    // util-linux's `script` gives the command a pseudo-terminal as stdout.
    let s = Scratch::new();
    let bin = assert_cmd::cargo::cargo_bin!("imfilter")
        .display()
        .to_string();
    let inner = format!("{bin} background-correct --flat sample/flat.tif sample/stack.tif -o -");
    let out = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .current_dir(s.dir.path())
        .output()
        .expect("util-linux script runs");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("imfilter: error: -o -: stdout is a terminal"),
        "{text}"
    );
}

#[test]
fn a_stream_that_is_not_a_tiff_is_refused_before_it_is_spooled() {
    // `cat /dev/zero | imfilter median - -o x.tif`: an endless stream that was never a TIFF
    // must be refused at its first bytes, not spooled into $TMPDIR until the disk is full.
    let s = Scratch::new();
    let spool = s.path("spool");
    std::fs::create_dir(&spool).expect("mkdir");
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("imfilter"))
        .args(["median", "--size", "3", "-", "-o", "x.tif"])
        .current_dir(s.dir.path())
        .env("TMPDIR", &spool)
        .stdin(std::fs::File::open("/dev/zero").expect("/dev/zero"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            child.kill().ok();
            child.wait().ok();
            panic!("still reading an endless stream of zeros after 20 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = Vec::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_end(&mut stderr)
        .expect("stderr");
    assert_eq!(status.code(), Some(1));
    assert_one_line_error(&stderr, &["<stdin>", "not a TIFF"]);
    assert!(!s.path("x.tif").exists());
    assert_eq!(std::fs::read_dir(&spool).expect("list").count(), 0);
}
