//! Issue 18, "reliability, round two": the output-side promises tried the way an unlucky
//! beamline's cron job meets the world. Each test is named after the case it pins; each failed
//! on the main of 2026-12-04 (see docs/reliability.md for the table).

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use imfilter::pixel::DType;

use crate::sparse::sparse_stack;
use crate::support::{Scratch, assert_one_line_error, read_stack};

fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("imfilter")
}

const MEDIAN: [&str; 4] = ["-q", "median", "--size", "3"];

/// Every file of `dir` (names as bytes) with its contents.
fn contents(dir: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut all: Vec<_> = fs::read_dir(dir)
        .expect("list")
        .map(|e| {
            let e = e.expect("entry");
            let bytes = fs::read(e.path()).expect("read");
            (e.file_name().as_bytes().to_vec(), bytes)
        })
        .collect();
    all.sort();
    all
}

/// Random 16-bit pixels (xorshift): what no codec can shrink, and LZW grows.
fn noisy_stack(path: &Path, pages: usize, side: usize) {
    use std::os::unix::fs::FileExt;
    let (file, layout) = sparse_stack(path, pages, side, DType::U16, false);
    let mut x: u32 = 0x9E37_79B9;
    let bytes: Vec<u8> = (0..pages * side * side)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as u16).to_ne_bytes()
        })
        .collect();
    file.write_all_at(&bytes, layout.data_offset)
        .expect("pixels");
}

// --- 3. A directory result replaces the directory as a whole --------------------------------

#[test]
fn in_place_on_a_directory_keeps_its_other_files_and_swaps_in_the_whole_result() {
    let s = Scratch::new();
    s.imfilter()
        .args(MEDIAN)
        .args(["sample/Tomo", "-o", "ref/"])
        .assert()
        .success();
    let notes = fs::read(s.path("sample/Tomo/notes.txt")).expect("notes");
    s.imfilter()
        .args(MEDIAN)
        .args(["sample/Tomo", "--in-place"])
        .assert()
        .success();
    for i in 1..=12 {
        let name = format!("proj_{i}.tif");
        assert_eq!(
            read_stack(&s.path(&format!("sample/Tomo/{name}"))).3,
            read_stack(&s.path(&format!("ref/{name}"))).3,
            "{name}"
        );
    }
    assert_eq!(
        fs::read(s.path("sample/Tomo/notes.txt")).expect("kept"),
        notes
    );
    // notes.txt and .hidden.tif are not images of the stack: both are kept.
    assert!(s.path("sample/Tomo/.hidden.tif").is_file());
    assert_eq!(
        fs::read_dir(s.path("sample/Tomo")).expect("list").count(),
        14
    );
    s.assert_no_temp_files();
}

#[test]
fn sigkill_during_a_directory_in_place_leaves_all_raw_or_all_filtered() {
    let s = Scratch::new();
    fs::create_dir(s.path("raw")).expect("mkdir");
    for i in 0..400 {
        fs::copy(
            s.path(&format!("sample/Tomo/proj_{}.tif", i % 12 + 1)),
            s.path(&format!("raw/p_{i:03}.tif")),
        )
        .expect("copy");
    }
    let raw = contents(&s.path("raw"));
    s.imfilter()
        .args(MEDIAN)
        .args(["raw", "-o", "filtered/"])
        .assert()
        .success();
    let filtered = contents(&s.path("filtered"));
    let in_place = || {
        // The same provenance for each try (the history written into the files extends the
        // sidecar an earlier try left).
        let _ = fs::remove_file(s.path("raw.json"));
        Command::new(bin())
            .args(MEDIAN)
            .args(["-j", "1", "raw", "--in-place"])
            .current_dir(s.dir.path())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn")
    };
    let started = Instant::now();
    in_place().wait().expect("wait");
    let whole = started.elapsed();
    let mut raws = 0;
    for k in 0..16u32 {
        // Back to the raw images under the same names for each try.
        fs::remove_dir_all(s.path("raw")).expect("rm");
        fs::create_dir(s.path("raw")).expect("mkdir");
        for (name, bytes) in &raw {
            fs::write(s.path("raw").join(OsStr::from_bytes(name)), bytes).expect("write");
        }
        let mut child = in_place();
        std::thread::sleep(whole * k / 12);
        let _ = child.kill();
        child.wait().expect("wait");
        let now = contents(&s.path("raw"));
        assert!(
            now == raw || now == filtered,
            "kill {k}/12 of {whole:?}: the directory holds a mixture"
        );
        raws += usize::from(now == raw);
        for leftover in s.temp_files() {
            assert!(
                leftover.starts_with(".raw.imfilter-")
                    || leftover.starts_with(".raw.json.imfilter-"),
                "{leftover}"
            );
        }
        for e in fs::read_dir(s.dir.path()).expect("list") {
            let p = e.expect("entry").path();
            if p.file_name()
                .is_some_and(|n| n.as_bytes().starts_with(b".raw."))
            {
                let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
            }
        }
    }
    assert!(raws > 0, "no kill landed before the swap");
}

// --- 4. One writer per output --------------------------------------------------------------

#[test]
fn a_second_writer_of_an_output_being_written_is_refused_with_a_clear_line() {
    let s = Scratch::new();
    sparse_stack(&s.path("big.tif"), 600, 512, DType::U16, false);
    sparse_stack(&s.path("flat.tif"), 1, 512, DType::U16, false);
    let first = Command::new(bin())
        .args(["-q", "-j", "1", "background-correct", "--flat", "flat.tif"])
        .args(["big.tif", "-o", "out.tif", "--force"])
        .current_dir(s.dir.path())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    while s.temp_files().iter().all(|n| !n.ends_with("imfilter-lock")) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no lock appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = s
        .imfilter()
        .args(MEDIAN)
        .args(["sample/stack.tif", "-o", "out.tif", "--force"])
        .assert()
        .code(1);
    assert_one_line_error(
        &second.get_output().stderr,
        &["out.tif", "another imfilter run is writing"],
    );
    Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .expect("kill");
    let out = first.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(143));
    assert!(!s.path("out.tif").exists());
    s.assert_no_temp_files();
}

// --- 5. Names are bytes ---------------------------------------------------------------------

#[test]
fn file_names_that_are_not_utf8_are_kept_byte_for_byte() {
    let s = Scratch::new();
    let raw = s.path("raw");
    fs::create_dir(&raw).expect("mkdir");
    // Two names that differ only in their invalid bytes: lossy, both are "proj_\u{fffd}.tif".
    let names: [&[u8]; 2] = [b"proj_\xff.tif", b"proj_\xfe.tif"];
    for (name, source) in names.iter().zip(["proj_1.tif", "proj_2.tif"]) {
        fs::copy(
            s.path(&format!("sample/Tomo/{source}")),
            raw.join(OsStr::from_bytes(name)),
        )
        .expect("copy");
    }
    s.imfilter()
        .args(MEDIAN)
        .args(["raw", "-o", "out/"])
        .assert()
        .success();
    let out: Vec<Vec<u8>> = contents(&s.path("out")).into_iter().map(|c| c.0).collect();
    assert_eq!(out, vec![names[1].to_vec(), names[0].to_vec()]);
    s.imfilter()
        .args(MEDIAN)
        .args(["raw", "--in-place"])
        .assert()
        .success();
    assert_eq!(contents(&raw), contents(&s.path("out")));
}

// --- 7. Stops are honoured until the rename -------------------------------------------------

#[test]
fn a_stop_while_an_in_place_result_is_compressed_leaves_the_input_unchanged() {
    let s = Scratch::new();
    noisy_stack(&s.path("stack.tif"), 48, 512);
    let before = fs::read(s.path("stack.tif")).expect("read");
    let mut child = Command::new(bin())
        .args(["median", "--size", "3", "--progress", "plain"])
        .args(["--compress", "lzw", "-j", "1", "stack.tif", "--in-place"])
        .current_dir(s.dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    // The last progress line: every image is computed, the compression inside commit begins.
    for line in lines.by_ref() {
        if line.expect("line").contains("48/48 images") {
            break;
        }
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "stderr: {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("interrupted by SIGINT")),
        "stderr: {rest:?}"
    );
    assert_eq!(fs::read(s.path("stack.tif")).expect("read"), before);
    s.assert_no_temp_files();
}

// --- 10. A sidecar imfilter did not write for this output is kept ---------------------------

#[test]
fn a_sidecar_that_is_not_this_outputs_history_is_kept_without_force() {
    let s = Scratch::new();
    // The input directory's own history: `Tomo -o Tomo.tif` would write Tomo.json too.
    let theirs = r#"{"operation_history": [{"operation": "acquisition"}]}"#;
    fs::write(s.path("sample/Tomo.json"), theirs).expect("write");
    let a = s
        .imfilter()
        .args(MEDIAN)
        .args(["sample/Tomo", "-o", "sample/Tomo.tif"])
        .assert()
        .code(1);
    assert_one_line_error(&a.get_output().stderr, &["Tomo.json", "--force"]);
    assert_eq!(
        fs::read_to_string(s.path("sample/Tomo.json")).expect("read"),
        theirs
    );
    assert!(!s.path("sample/Tomo.tif").exists());
    s.assert_no_temp_files();

    s.imfilter()
        .args(MEDIAN)
        .args(["sample/Tomo", "-o", "sample/Tomo.tif", "--force"])
        .assert()
        .success();
    // Now it is this output's history: a new run may replace it once the result is gone.
    fs::remove_file(s.path("sample/Tomo.tif")).expect("rm");
    s.imfilter()
        .args(MEDIAN)
        .args(["sample/Tomo", "-o", "sample/Tomo.tif"])
        .assert()
        .success();
}

// --- 11. Devices and FIFOs are written into, not replaced -----------------------------------

#[test]
fn a_fifo_output_is_written_into_as_a_stream_not_replaced() {
    let s = Scratch::new();
    let fifo = s.path("pipe.tif");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            fs::File::open(fifo)
                .expect("open fifo")
                .read_to_end(&mut bytes)
                .expect("read");
            bytes
        })
    };
    s.imfilter()
        .args(MEDIAN)
        .args(["sample/stack.tif", "-o", "pipe.tif", "--force"])
        .assert()
        .success();
    let streamed = reader.join().expect("reader");
    assert!(
        fs::symlink_metadata(&fifo)
            .expect("meta")
            .file_type()
            .is_fifo()
    );
    assert!(!s.path("pipe.json").exists(), "a stream has no sidecar");
    s.imfilter()
        .args(MEDIAN)
        .args(["sample/stack.tif", "-o", "file.tif"])
        .assert()
        .success();
    fs::write(s.path("streamed.tif"), streamed).expect("write");
    assert_eq!(
        read_stack(&s.path("streamed.tif")).3,
        read_stack(&s.path("file.tif")).3
    );
    s.assert_no_temp_files();
}

#[test]
fn a_device_output_is_written_into_not_replaced() {
    let s = Scratch::new();
    let null = s.path("null");
    // A null device of the test's own (mknod needs root), never the system's /dev/null.
    let made = Command::new("mknod")
        .args([
            null.as_os_str(),
            OsStr::new("c"),
            OsStr::new("1"),
            OsStr::new("3"),
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|st| st.success());
    if !made {
        eprintln!("note: skipped: mknod needs root");
        return;
    }
    s.imfilter()
        .args(MEDIAN)
        .args(["sample/stack.tif", "-o", "null", "--force"])
        .assert()
        .success();
    let meta = fs::symlink_metadata(&null).expect("meta");
    assert!(meta.file_type().is_char_device(), "the device was replaced");
    assert!(!s.path("null.json").exists());
    s.assert_no_temp_files();
}

// --- 12. --in-place on links, read-only and hard-linked files -------------------------------

#[test]
fn in_place_follows_a_link_and_refuses_read_only_and_hard_linked_files() {
    let s = Scratch::new();
    s.imfilter()
        .args(MEDIAN)
        .args(["sample/stack.tif", "-o", "ref.tif"])
        .assert()
        .success();
    let raw = fs::read(s.path("sample/stack.tif")).expect("read");
    let filtered = read_stack(&s.path("ref.tif")).3;

    fs::write(s.path("real.tif"), &raw).expect("write");
    std::os::unix::fs::symlink("real.tif", s.path("link.tif")).expect("symlink");
    s.imfilter()
        .args(MEDIAN)
        .args(["link.tif", "--in-place"])
        .assert()
        .success();
    assert!(
        fs::symlink_metadata(s.path("link.tif"))
            .expect("meta")
            .file_type()
            .is_symlink()
    );
    assert_eq!(read_stack(&s.path("real.tif")).3, filtered);

    fs::write(s.path("ro.tif"), &raw).expect("write");
    fs::set_permissions(s.path("ro.tif"), fs::Permissions::from_mode(0o444)).expect("chmod");
    let a = s
        .imfilter()
        .args(MEDIAN)
        .args(["ro.tif", "--in-place"])
        .assert()
        .code(1);
    assert_one_line_error(&a.get_output().stderr, &["ro.tif", "read-only"]);
    assert_eq!(fs::read(s.path("ro.tif")).expect("read"), raw);

    fs::write(s.path("a.tif"), &raw).expect("write");
    fs::hard_link(s.path("a.tif"), s.path("b.tif")).expect("link");
    let a = s
        .imfilter()
        .args(MEDIAN)
        .args(["a.tif", "--in-place"])
        .assert()
        .code(1);
    assert_one_line_error(&a.get_output().stderr, &["a.tif", "hard links", "--force"]);
    assert_eq!(fs::read(s.path("b.tif")).expect("read"), raw);
    s.imfilter()
        .args(MEDIAN)
        .args(["a.tif", "--in-place", "--force"])
        .assert()
        .success();
    assert_eq!(read_stack(&s.path("a.tif")).3, filtered);
    assert_eq!(
        fs::read(s.path("b.tif")).expect("read"),
        raw,
        "the other link keeps the raw data"
    );
    s.assert_no_temp_files();
}

// --- 13. A closed stdout, and long names ----------------------------------------------------

#[test]
fn a_closed_stdout_is_an_error_not_a_silent_success() {
    let s = Scratch::new();
    let script = format!(
        "exec '{}' median --size 3 sample/stack.tif -o - >&-",
        bin().display()
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .current_dir(s.dir.path())
        .output()
        .expect("sh");
    assert_eq!(out.status.code(), Some(1));
    assert_one_line_error(&out.stderr, &["stdout is closed"]);
}

#[test]
fn output_names_up_to_255_bytes_are_written() {
    let s = Scratch::new();
    for (len, letter) in [(239, "a"), (250, "b"), (254, "c"), (255, "d")] {
        let name = format!("{}.tif", letter.repeat(len - 4));
        s.imfilter()
            .args(MEDIAN)
            .args(["sample/stack.tif", "-o", &name])
            .assert()
            .success();
        assert_eq!(read_stack(&s.path(&name)).0, 12, "{len}");
        let sidecars = fs::read_dir(s.dir.path())
            .expect("list")
            .filter(|e| {
                let name = e.as_ref().expect("entry").file_name();
                name.len() > 200 && name.to_string_lossy().ends_with(".json")
            })
            .count();
        assert!(sidecars > 0, "{len}: no sidecar");
        s.assert_no_temp_files();
    }
}

// --- 14. With compression a full disk is found before the work ------------------------------

#[test]
fn with_compression_too_little_room_fails_before_any_image_is_computed() {
    let s = Scratch::new();
    // 2 MiB of noise: LZW makes it about 2.7 MiB. Under a 2.3 MiB file-size limit the
    // uncompressed staging file fits but the compressed result cannot.
    noisy_stack(&s.path("noise.tif"), 8, 512);
    let out = Command::new("prlimit")
        .arg("--fsize=2400000")
        .arg(bin())
        .args([
            "median",
            "--size",
            "3",
            "--progress",
            "plain",
            "--compress",
            "lzw",
        ])
        .args(["noise.tif", "-o", "out.tif"])
        .current_dir(s.dir.path())
        .output()
        .expect("prlimit (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {text}");
    assert!(!text.contains("images,"), "the work ran first: {text}");
    assert!(
        text.contains("out.tif") && text.contains("cannot allocate"),
        "{text}"
    );
    assert!(!s.path("out.tif").exists());
    s.assert_no_temp_files();
}

// --- 6. An input that changes while it is read ----------------------------------------------

/// Starts a slow median of `stack.tif` (12 images of 512², one worker, a few seconds) into
/// `out.tif`, waits until its temporary output exists (the input is parsed and the work
/// begins), applies `change` to the input, and returns the run's exit code and stderr.
fn change_input_while_it_is_read(
    s: &Scratch,
    change: impl FnOnce(&Path),
) -> (Option<i32>, Vec<u8>) {
    noisy_stack(&s.path("stack.tif"), 12, 512);
    let child = Command::new(bin())
        .args([
            "-q",
            "-j",
            "1",
            "median",
            "--size",
            "9",
            "stack.tif",
            "-o",
            "out.tif",
        ])
        .current_dir(s.dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    s.wait_for_temp_file(Duration::from_secs(30));
    change(&s.path("stack.tif"));
    let out = child.wait_with_output().expect("wait");
    (out.status.code(), out.stderr)
}

#[test]
fn an_input_cut_short_while_mapped_is_a_clear_error_not_sigbus() {
    // Acquisition software truncating a file that cron handed to imfilter: the pages past the
    // new end raise SIGBUS when read through the map (exit 135, nothing said, before).
    let s = Scratch::new();
    let (code, stderr) = change_input_while_it_is_read(&s, |input| {
        let file = fs::OpenOptions::new()
            .write(true)
            .open(input)
            .expect("open");
        file.set_len(1 << 20).expect("truncate");
    });
    assert_eq!(
        code,
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&stderr)
    );
    assert_one_line_error(
        &stderr,
        &["stack.tif", "changed while imfilter was reading it"],
    );
    assert!(!s.path("out.tif").exists());
    s.assert_no_temp_files();
}

#[test]
fn an_input_rewritten_at_the_same_size_while_read_is_not_committed() {
    let s = Scratch::new();
    let (code, stderr) = change_input_while_it_is_read(&s, |input| {
        use std::os::unix::fs::FileExt;
        let file = fs::OpenOptions::new()
            .write(true)
            .open(input)
            .expect("open");
        let len = file.metadata().expect("stat").len();
        file.write_all_at(&[0; 4096], len / 2).expect("rewrite");
        // Some file systems keep a coarse clock; the rewrite must show in the mtime.
        file.set_modified(std::time::SystemTime::now() + Duration::from_secs(2))
            .expect("mtime");
    });
    assert_eq!(
        code,
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&stderr)
    );
    assert_one_line_error(
        &stderr,
        &[
            "stack.tif",
            "changed while imfilter was reading it",
            "modification time",
        ],
    );
    assert!(!s.path("out.tif").exists());
    s.assert_no_temp_files();
}
