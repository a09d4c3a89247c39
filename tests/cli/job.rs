//! `imfilter job` (issue 14): a run split into shards, committed atomically, equals a local
//! `imfilter run` of the same steps bit for bit; a missing, killed, stale or outdated shard is
//! named and nothing is committed. Without Slurm the shards run from a shell loop; the tests
//! that need Slurm skip with a printed reason when no controller answers, unless
//! `IMFILTER_REQUIRE_SLURM=1` (set by `.ci/run` after `.ci/slurm/start.sh`), where they fail.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant, SystemTime};

use crate::sparse::sparse_stack;
use crate::support::{Scratch, assert_one_line_error, assert_succeeded};
use imfilter::pixel::DType;

const CHAIN: [&str; 2] = [
    "background-correct --flat sample/flat.tif --dark sample/dark.tif",
    "median --size 3",
];

fn step_args(steps: &[&str]) -> Vec<String> {
    steps
        .iter()
        .flat_map(|s| ["--step".to_string(), s.to_string()])
        .collect()
}

/// `imfilter run` of `steps` on `input` into `output`.
fn local_run(s: &Scratch, steps: &[&str], input: &str, output: &str) {
    local_run_with(s, steps, &[], input, output);
}

/// [`local_run`] with more options of `run` (`--keys`, `--pages`).
fn local_run_with(s: &Scratch, steps: &[&str], options: &[&str], input: &str, output: &str) {
    s.imfilter()
        .args(["-q", "run"])
        .args(step_args(steps))
        .args(options)
        .args([input, "-o", output])
        .assert()
        .success();
}

/// `imfilter job prepare`; returns the job folder it printed.
fn prepare(s: &Scratch, shards: usize, steps: &[&str], input: &str, output: &str) -> PathBuf {
    prepare_with(s, shards, steps, &[], input, output)
}

/// [`prepare`] with more options of `run` (`--keys`, `--pages`).
fn prepare_with(
    s: &Scratch,
    shards: usize,
    steps: &[&str],
    options: &[&str],
    input: &str,
    output: &str,
) -> PathBuf {
    let out = s
        .imfilter()
        .args(["-q", "job", "prepare", "--shards", &shards.to_string()])
        .args(step_args(steps))
        .args(options)
        .args([input, "-o", output])
        .output()
        .expect("runs");
    assert_succeeded(&out);
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(dir.join("manifest.json").is_file(), "{dir:?}");
    dir
}

fn phases(job: &Path) -> Vec<String> {
    let text = fs::read_to_string(job.join("manifest.json")).expect("manifest");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("json");
    manifest["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect()
}

fn shard(s: &Scratch, job: &Path, phase: &str, n: usize) -> std::process::Output {
    s.imfilter()
        .args(["-q", "job", "run"])
        .arg(job)
        .args(["--phase", phase, "--shard", &n.to_string()])
        .output()
        .expect("runs")
}

fn status(s: &Scratch, job: &Path) -> String {
    let out = s
        .imfilter()
        .args(["job", "status"])
        .arg(job)
        .output()
        .expect("runs");
    assert_succeeded(&out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn commit(s: &Scratch, job: &Path) -> std::process::Output {
    s.imfilter()
        .args(["-q", "job", "commit"])
        .arg(job)
        .output()
        .expect("runs")
}

/// The two results are the same file, and their sidecars the same history but for each
/// entry's time and output name.
fn assert_same_result(s: &Scratch, job_result: &str, local_result: &str) {
    let (a, b) = (s.path(job_result), s.path(local_result));
    let (x, y) = (
        fs::read(&a).expect("job result"),
        fs::read(&b).expect("local"),
    );
    assert!(x == y, "{job_result} differs from {local_result}");
    let history = |p: &Path| {
        let json = p.with_extension("json");
        let text = fs::read_to_string(&json).expect("sidecar");
        let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
        for run in v["operation_history"].as_array_mut().expect("history") {
            let run = run.as_object_mut().expect("entry");
            run.remove("time");
            run.remove("output");
        }
        v
    };
    assert_eq!(history(&a), history(&b));
}

#[test]
fn shards_run_from_a_shell_loop_commit_the_same_file_as_a_local_run() {
    let s = Scratch::new();
    local_run(&s, &CHAIN, "sample/stack.tif", "local.tif");
    let job = prepare(&s, 5, &CHAIN, "sample/stack.tif", "job.tif");
    assert!(
        !s.path("job.tif").exists(),
        "nothing at the output before commit"
    );
    assert_eq!(
        s.temp_files()
            .iter()
            .filter(|n| n.contains(".job.tif.imfilter-"))
            .count(),
        1
    );
    let bin = assert_cmd::cargo::cargo_bin("imfilter");
    let looped = Process::new("sh")
        .arg("-c")
        .arg(r#"for i in 0 1 2 3 4; do "$IMFILTER" -q job run "$JOB" --shard "$i" || exit 1; done"#)
        .env("IMFILTER", &bin)
        .env("JOB", &job)
        .current_dir(s.dir.path())
        .status()
        .expect("sh");
    assert!(looped.success());
    assert!(
        status(&s, &job).contains("images: 5 shards: 5 done, 0 running, 0 failed, 0 not started")
    );
    let out = commit(&s, &job);
    assert_succeeded(&out);
    assert_same_result(&s, "job.tif", "local.tif");
    assert!(status(&s, &job).contains("(committed)"));
    // Committed once: the temporary output is now the result.
    assert!(!commit(&s, &job).status.success());
    assert!(
        s.temp_files()
            .iter()
            .all(|n| n.contains("job.tif.imfilter-job")),
        "{:?}",
        s.temp_files()
    );
}

#[test]
fn survey_and_sinogram_steps_get_phases_of_their_own_and_equal_a_local_run() {
    let s = Scratch::new();
    let chain = [
        "roi-normalise --roi 0,0,5,5",
        "rescale --to float32",
        "remove-stripes --method sorting",
        "minus-log",
    ];
    local_run(&s, &chain, "sample/stack.tif", "local.tif");
    let job = prepare(&s, 3, &chain, "sample/stack.tif", "job.tif");
    assert_eq!(
        phases(&job),
        ["survey-1", "survey-2", "images", "sinograms"]
    );
    // A phase before the one it needs is refused, naming what is missing.
    let early = shard(&s, &job, "images", 0);
    assert!(!early.status.success());
    assert_one_line_error(
        &early.stderr,
        &["phase images needs phase survey-1", "0, 1, 2"],
    );
    for phase in phases(&job) {
        // Shards of a phase in any order.
        for n in [2, 0, 1] {
            let out = shard(&s, &job, &phase, n);
            assert!(
                out.status.success(),
                "{phase} {n}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let out = commit(&s, &job);
    assert_succeeded(&out);
    assert_same_result(&s, "job.tif", "local.tif");
    assert!(
        !job.join("intermediate.f32").exists(),
        "the intermediate file is removed"
    );
}

#[test]
fn a_refused_rerun_of_an_earlier_phase_leaves_the_later_phases_done() {
    let s = Scratch::new();
    let chain = ["remove-stripes --method sorting"];
    local_run(&s, &chain, "sample/stack.tif", "local.tif");
    let job = prepare(&s, 2, &chain, "sample/stack.tif", "job.tif");
    for phase in ["images", "sinograms"] {
        for n in 0..2 {
            assert_succeeded(&shard(&s, &job, phase, n));
        }
    }
    // An images shard rerun while the stack looks changed is refused before it writes:
    // the sinograms made from the images phase still stand.
    let before = touch(&s, "sample/stack.tif");
    let refused = shard(&s, &job, "images", 1);
    assert_one_line_error(&refused.stderr, &["changed since the job was prepared"]);
    untouch(&s, "sample/stack.tif", before);
    let shown = status(&s, &job);
    assert!(shown.contains("sinograms: 2 shards: 2 done"), "{shown}");
    // The refused shard is failed; run again as it was, it clears the sinograms, which
    // must run again before the commit.
    assert_succeeded(&shard(&s, &job, "images", 1));
    let refused = commit(&s, &job);
    assert_one_line_error(&refused.stderr, &["not committed", "sinograms shard 0"]);
    for n in 0..2 {
        assert_succeeded(&shard(&s, &job, "sinograms", n));
    }
    assert_succeeded(&commit(&s, &job));
    assert_same_result(&s, "job.tif", "local.tif");
}

#[test]
fn a_missing_shard_is_named_and_nothing_is_committed_until_it_runs() {
    let s = Scratch::new();
    local_run(&s, &CHAIN, "sample/stack.tif", "local.tif");
    let job = prepare(&s, 4, &CHAIN, "sample/stack.tif", "job.tif");
    for n in [0, 1, 3] {
        assert!(shard(&s, &job, "images", n).status.success());
    }
    assert!(status(&s, &job).contains("3 done, 0 running, 0 failed, 1 not started"));
    let refused = commit(&s, &job);
    assert_eq!(refused.status.code(), Some(1));
    assert_one_line_error(
        &refused.stderr,
        &["not committed", "images shard 2 (not started)"],
    );
    assert!(!s.path("job.tif").exists());
    assert!(shard(&s, &job, "images", 2).status.success());
    assert!(commit(&s, &job).status.success());
    assert_same_result(&s, "job.tif", "local.tif");
}

/// A stack slow enough (debug build, one worker) that a shard can be killed mid-way: 24
/// images of 256² uint16 noise.
fn slow_stack(s: &Scratch, name: &str) {
    let (file, layout) = sparse_stack(&s.path(name), 24, 256, DType::U16, false);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let pixels: Vec<u8> = (0..layout.data_len() / 2)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as u16 % 4000).to_ne_bytes()
        })
        .collect();
    file.write_all_at(&pixels, layout.data_offset)
        .expect("write");
}

const SLOW: [&str; 1] = ["median --size 9"];

#[test]
fn a_killed_shard_is_shown_and_refused_then_rerun_and_committed() {
    let s = Scratch::new();
    slow_stack(&s, "slow.tif");
    local_run(&s, &SLOW, "slow.tif", "local.tif");
    let job = prepare(&s, 3, &SLOW, "slow.tif", "job.tif");
    for n in [0, 2] {
        assert!(shard(&s, &job, "images", n).status.success());
    }
    let mut victim = std::process::Command::new(assert_cmd::cargo::cargo_bin("imfilter"))
        .args(["-q", "-j", "1", "job", "run"])
        .arg(&job)
        .args(["--shard", "1"])
        .current_dir(s.dir.path())
        .spawn()
        .expect("spawn");
    let started = job.join("shards/images.1.started.json");
    let t = Instant::now();
    while !started.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the shard never started"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(50));
    victim.kill().expect("SIGKILL");
    victim.wait().expect("reaped");
    assert!(
        !job.join("shards/images.1.done.json").exists(),
        "the shard finished before it was killed: make the stack slower"
    );
    let shown = status(&s, &job);
    assert!(shown.contains("2 done, 1 running, 0 failed"), "{shown}");
    assert!(shown.contains("shard 1: killed"), "{shown}");
    let refused = commit(&s, &job);
    assert_one_line_error(&refused.stderr, &["images shard 1 (started, not done"]);
    assert!(!s.path("job.tif").exists());

    assert!(shard(&s, &job, "images", 1).status.success());
    // Running a done shard again changes nothing.
    assert!(shard(&s, &job, "images", 0).status.success());
    assert!(commit(&s, &job).status.success());
    assert_same_result(&s, "job.tif", "local.tif");
}

#[test]
fn pages_changed_after_their_shard_finished_are_stale_and_not_committed() {
    let s = Scratch::new();
    local_run(&s, &CHAIN, "sample/stack.tif", "local.tif");
    let job = prepare(&s, 3, &CHAIN, "sample/stack.tif", "job.tif");
    for n in 0..3 {
        assert!(shard(&s, &job, "images", n).status.success());
    }
    // Another writer (a shared file system that lost a write, a stray process) changes a
    // byte in the middle shard's images.
    let file = temporary_output(&s, "job.tif");
    let len = file.metadata().expect("len").len();
    file.write_all_at(&[0xA5], len / 2).expect("write");
    let refused = commit(&s, &job);
    assert_one_line_error(&refused.stderr, &["stale shards of phase images: 1"]);
    assert!(!s.path("job.tif").exists());
    assert!(shard(&s, &job, "images", 1).status.success());
    assert!(commit(&s, &job).status.success());
    assert_same_result(&s, "job.tif", "local.tif");
}

#[test]
fn a_damaged_header_or_intermediate_file_is_refused_not_committed() {
    let s = Scratch::new();
    local_run(&s, &CHAIN, "sample/stack.tif", "local.tif");
    let job = prepare(&s, 2, &CHAIN, "sample/stack.tif", "job.tif");
    for n in 0..2 {
        assert_succeeded(&shard(&s, &job, "images", n));
    }
    // No shard writes the TIFF header: a lost or overwritten one is not a result.
    let file = temporary_output(&s, "job.tif");
    file.write_all_at(&[0; 8], 0).expect("write");
    let refused = commit(&s, &job);
    assert_one_line_error(&refused.stderr, &["job.tif", "TIFF header or directories"]);
    assert!(!s.path("job.tif").exists());

    // A sinogram shard given an intermediate file cut short refuses in one line.
    let s = Scratch::new();
    let chain = ["remove-stripes --method sorting"];
    let job = prepare(&s, 2, &chain, "sample/stack.tif", "job.tif");
    for n in 0..2 {
        assert_succeeded(&shard(&s, &job, "images", n));
    }
    let intermediate = job.join("intermediate.f32");
    let len = fs::metadata(&intermediate).expect("stat").len();
    fs::File::options()
        .write(true)
        .open(&intermediate)
        .expect("open")
        .set_len(len - 2)
        .expect("truncate");
    let out = shard(&s, &job, "sinograms", 0);
    assert_eq!(out.status.code(), Some(1));
    assert_one_line_error(&out.stderr, &["intermediate.f32", "bytes, not the"]);
}

/// The job's temporary output, opened for writing as a stray writer would.
fn temporary_output(s: &Scratch, output: &str) -> fs::File {
    let temp = s
        .temp_files()
        .into_iter()
        .find(|n| n.starts_with(&format!(".{output}.imfilter-")))
        .expect("temporary output");
    fs::OpenOptions::new()
        .write(true)
        .open(s.path(&temp))
        .expect("open")
}

/// By default the commit reads back each shard's images near its two ends, where a file
/// system page is shared with another writer; `--verify all` reads back every image.
#[test]
fn the_commit_checks_the_seams_by_default_and_every_image_when_asked() {
    let s = Scratch::new();
    // 48 images of 512² uint16 (512 KiB each), two shards of 24.
    let (_, layout) = sparse_stack(&s.path("big.tif"), 48, 512, DType::U16, false);
    let steps = ["median --size 3"];
    local_run(&s, &steps, "big.tif", "local.tif");
    let job = prepare(&s, 2, &steps, "big.tif", "job.tif");
    for n in 0..2 {
        assert!(shard(&s, &job, "images", n).status.success());
    }
    let image = |i: u64| layout.data_offset + i * layout.page_bytes;
    // The last byte of shard 0, beside shard 1's first: a seam.
    let file = temporary_output(&s, "job.tif");
    file.write_all_at(&[0xA5], image(24) - 1).expect("write");
    let refused = commit(&s, &job);
    assert_one_line_error(&refused.stderr, &["stale shards of phase images: 0"]);
    assert!(shard(&s, &job, "images", 0).status.success());
    // A byte in the middle of shard 1 (image 36 of 24..48), far from either end.
    file.write_all_at(&[0xA5], image(36) + 1000).expect("write");
    let all = s
        .imfilter()
        .args(["-q", "job", "commit", "--verify", "all"])
        .arg(&job)
        .output()
        .expect("runs");
    assert_one_line_error(&all.stderr, &["stale shards of phase images: 1"]);
    assert!(!s.path("job.tif").exists());
    assert!(shard(&s, &job, "images", 1).status.success());
    assert!(commit(&s, &job).status.success());
    assert_same_result(&s, "job.tif", "local.tif");
}

/// `job prepare` keeps the flats and darks it combined in the job folder, for the shards;
/// an entry damaged since is combined again from the files, and the result is the same.
#[test]
fn shards_take_the_combined_flats_and_darks_from_the_job_folder_or_combine_them_again() {
    let s = Scratch::new();
    local_run(&s, &CHAIN, "sample/stack.tif", "local.tif");
    let job = prepare(&s, 2, &CHAIN, "sample/stack.tif", "job.tif");
    let mut kept: Vec<PathBuf> = fs::read_dir(job.join("references"))
        .expect("references kept")
        .map(|e| e.expect("entry").path())
        .collect();
    kept.sort();
    assert_eq!(kept.len(), 2, "the flat and the dark: {kept:?}");
    let damaged = fs::OpenOptions::new()
        .write(true)
        .open(&kept[0])
        .expect("open");
    let len = damaged.metadata().expect("len").len();
    damaged.write_all_at(&[0x5A, 0xA5], len - 6).expect("write");
    for n in 0..2 {
        assert!(shard(&s, &job, "images", n).status.success());
    }
    assert!(commit(&s, &job).status.success());
    assert_same_result(&s, "job.tif", "local.tif");
}

#[test]
fn a_shard_refuses_an_input_changed_since_prepare_naming_it() {
    let s = Scratch::new();
    let job = prepare(&s, 2, &CHAIN, "sample/stack.tif", "job.tif");
    assert!(shard(&s, &job, "images", 0).status.success());
    // The flat rewritten with other contents and a new time.
    let flat = s.path("sample/flat.tif");
    let mut bytes = fs::read(&flat).expect("flat");
    bytes.extend_from_slice(&[0; 16]);
    fs::write(&flat, bytes).expect("rewrite");
    let out = shard(&s, &job, "images", 1);
    assert_eq!(out.status.code(), Some(1));
    assert_one_line_error(
        &out.stderr,
        &["sample/flat.tif", "changed since the job was prepared"],
    );
    assert!(status(&s, &job).contains("shard 1: failed"));
    let refused = commit(&s, &job);
    assert!(!refused.status.success());
    assert!(!s.path("job.tif").exists());

    // The same for the stack, touched at the same size.
    let s = Scratch::new();
    let job = prepare(&s, 2, &CHAIN, "sample/stack.tif", "job.tif");
    touch(&s, "sample/stack.tif");
    let out = shard(&s, &job, "images", 0);
    assert_one_line_error(
        &out.stderr,
        &["sample/stack.tif", "changed since the job was prepared"],
    );
}

/// Gives `name` (its size and bytes unchanged) a modification time 5 s later: a file rewritten
/// in place, to the job's fingerprint. Returns the time it had.
fn touch(s: &Scratch, name: &str) -> SystemTime {
    let file = fs::File::options()
        .write(true)
        .open(s.path(name))
        .expect("open");
    let had = file.metadata().expect("stat").modified().expect("mtime");
    file.set_modified(had + Duration::from_secs(5))
        .expect("touch");
    had
}

/// Sets `name`'s modification time back to `to`.
fn untouch(s: &Scratch, name: &str, to: SystemTime) {
    fs::File::options()
        .write(true)
        .open(s.path(name))
        .expect("open")
        .set_modified(to)
        .expect("untouch");
}

/// Every shard of `job`'s only phase, then the commit, all succeeding.
fn run_and_commit(s: &Scratch, job: &Path) {
    let shards = fs::read_to_string(job.join("manifest.json")).expect("manifest");
    let manifest: serde_json::Value = serde_json::from_str(&shards).expect("json");
    let count = manifest["phases"][0]["shards"]
        .as_array()
        .expect("shards")
        .len();
    for n in 0..count {
        let out = shard(s, job, "images", n);
        assert!(
            out.status.success(),
            "shard {n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = commit(s, job);
    assert_succeeded(&out);
}

/// The NXtomo scans of `fixtures/hdf5/` (17 images: 3 darks, 4 flats, 8 projections, 2
/// flats, by image_key; see tests/cli/hdf5.rs), contiguous and gzip-chunked.
fn nxtomo_scans(s: &Scratch) {
    for f in ["nxtomo.nxs", "nxtomo_gzip.nxs"] {
        s.copy_fixture(&format!("hdf5/{f}"), f);
    }
}

#[test]
fn a_job_over_an_hdf5_dataset_takes_flats_and_darks_by_image_key_and_equals_a_local_run() {
    let s = Scratch::new();
    nxtomo_scans(&s);
    // No --flat: background correction takes the dataset's flats and darks, as `run` does.
    let chain = ["background-correct", "median --size 3"];
    for (i, input) in [
        "nxtomo.nxs:/entry/data/data",
        "nxtomo_gzip.nxs:/entry/data/data",
    ]
    .into_iter()
    .enumerate()
    {
        let (local, result) = (format!("local{i}.tif"), format!("job{i}.tif"));
        local_run(&s, &chain, input, &local);
        let job = prepare(&s, 3, &chain, input, &result);
        assert!(
            status(&s, &job).contains(&format!("8 images -> {result}")),
            "the projections only: {}",
            status(&s, &job)
        );
        run_and_commit(&s, &job);
        assert_same_result(&s, &result, &local);
    }
}

#[test]
fn a_job_over_an_hdf5_dataset_keeps_its_keys_and_refuses_a_changed_keys_file() {
    let s = Scratch::new();
    nxtomo_scans(&s);
    s.copy_fixture("hdf5/nxtomo.nxs", "keys.nxs");
    let input = "nxtomo.nxs:/entry/data/data";
    // The last two flats taken as projections (10, not the image_key's 8), from the second.
    let chain = ["background-correct", "median --size 3"];
    let keys = ["--keys", "2x3,1x4,0x10", "--pages", "1:"];
    local_run_with(&s, &chain, &keys, input, "local.tif");
    let job = prepare_with(&s, 3, &chain, &keys, input, "job.tif");
    let listed = status(&s, &job);
    assert!(listed.contains("9 images -> job.tif"), "{listed}");
    run_and_commit(&s, &job);
    assert_same_result(&s, "job.tif", "local.tif");

    // --keys none: every image a projection.
    let median = ["median --size 3"];
    local_run_with(&s, &median, &["--keys", "none"], input, "all_local.tif");
    let job = prepare_with(&s, 4, &median, &["--keys", "none"], input, "all.tif");
    let listed = status(&s, &job);
    assert!(listed.contains("17 images -> all.tif"), "{listed}");
    run_and_commit(&s, &job);
    assert_same_result(&s, "all.tif", "all_local.tif");

    // Keys from another file: an input of the job like the dataset's own file.
    let keys = ["--keys", "keys.nxs:/entry/data/image_key"];
    let job = prepare_with(&s, 2, &chain, &keys, input, "keyed.tif");
    let first = shard(&s, &job, "images", 0);
    assert_succeeded(&first);
    touch(&s, "keys.nxs");
    let out = shard(&s, &job, "images", 1);
    assert_one_line_error(
        &out.stderr,
        &["keys.nxs", "changed since the job was prepared"],
    );
    assert!(!commit(&s, &job).status.success());
    assert!(!s.path("keyed.tif").exists());
}

#[test]
fn a_shard_refuses_an_hdf5_input_changed_since_prepare_naming_its_file() {
    let s = Scratch::new();
    nxtomo_scans(&s);
    let job = prepare(
        &s,
        2,
        &["background-correct"],
        "nxtomo.nxs:/entry/data/data",
        "job.tif",
    );
    touch(&s, "nxtomo.nxs");
    let out = shard(&s, &job, "images", 0);
    assert_eq!(out.status.code(), Some(1));
    assert_one_line_error(
        &out.stderr,
        &["nxtomo.nxs", "changed since the job was prepared"],
    );
}

#[test]
fn what_a_job_cannot_shard_is_refused_before_anything_is_made() {
    let s = Scratch::new();
    let refuse = |args: &[&str], parts: &[&str]| {
        let out = s
            .imfilter()
            .args(["job", "prepare", "--step", "median --size 3"])
            .args(args)
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_one_line_error(&out.stderr, parts);
    };
    refuse(
        &["--shards", "2", "sample/stack.tif", "-o", "out/"],
        &["one multi-page TIFF file"],
    );
    refuse(
        &[
            "--shards",
            "2",
            "sample/stack.tif",
            "-o",
            "c.tif",
            "--compress",
            "zstd",
        ],
        &["--compress is not sharded"],
    );
    refuse(
        &["--shards", "2", "sample/stack.tif", "--in-place"],
        &["--in-place is not sharded"],
    );
    for hdf5 in ["out.h5:/data", "out.h5"] {
        refuse(
            &["--shards", "2", "sample/stack.tif", "-o", hdf5],
            &[hdf5, "an HDF5 output is not sharded", "-o NAME.tif"],
        );
    }
    refuse(
        &["--shards", "13", "sample/stack.tif", "-o", "x.tif"],
        &["the stack has 12 images"],
    );
    let out = s
        .imfilter()
        .args(["job", "prepare", "--shards", "2"])
        .args(step_args(&[
            "remove-stripes --method sorting",
            "median --size 3",
        ]))
        .args(["sample/stack.tif", "-o", "x.tif"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_error(
        &out.stderr,
        &["median after a sinogram step", "does not shard"],
    );
    let left: Vec<String> = fs::read_dir(s.dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "sample")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

// --- under Slurm ---------------------------------------------------------------------------

/// Whether a Slurm controller answers; if not, says why and the test skips, unless
/// `IMFILTER_REQUIRE_SLURM=1`, where it fails.
fn slurm_answers() -> bool {
    let why = match Process::new("sinfo").args(["-h", "-o", "%t"]).output() {
        Err(e) => format!("sinfo cannot run ({e})"),
        Ok(out) if !out.status.success() || out.stdout.is_empty() => format!(
            "no Slurm controller answers: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Ok(_) => return true,
    };
    if std::env::var("IMFILTER_REQUIRE_SLURM").is_ok_and(|v| v == "1") {
        panic!("IMFILTER_REQUIRE_SLURM=1 but {why}");
    }
    eprintln!("note: skipped: {why} (.ci/slurm/start.sh starts one)");
    false
}

/// Waits until Slurm job `id` has ended; returns its state (COMPLETED, FAILED, CANCELLED…).
fn wait_for_slurm_job(id: &str, limit: Duration) -> String {
    let t = Instant::now();
    loop {
        let out = Process::new("scontrol")
            .args(["show", "job", id])
            .output()
            .expect("scontrol");
        let text = String::from_utf8_lossy(&out.stdout);
        // An array shows one record per task: every one must have ended.
        let states: Vec<&str> = text
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("JobState="))
            .collect();
        let ended = |s: &&str| {
            !matches!(
                *s,
                "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "REQUEUED"
            )
        };
        if !states.is_empty() && states.iter().all(ended) {
            return states.join(",");
        }
        assert!(
            t.elapsed() < limit,
            "Slurm job {id} still {states:?} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `job slurm`'s submitted ids, by phase name (and `commit`).
fn submitted(stdout: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn a_slurm_job_array_commits_the_same_file_as_a_local_run() {
    if !slurm_answers() {
        return;
    }
    let s = Scratch::new();
    let chain = ["median --size 3", "remove-stripes --method sorting"];
    local_run(&s, &chain, "sample/stack.tif", "local.tif");
    let out = s
        .imfilter()
        .args([
            "-q",
            "job",
            "slurm",
            "--shards",
            "3",
            "--cpus-per-task",
            "1",
            "--time",
            "10",
        ])
        .args(step_args(&chain))
        .args(["sample/stack.tif", "-o", "job.tif"])
        .output()
        .expect("runs");
    assert_succeeded(&out);
    let ids = submitted(&out.stdout);
    let names: Vec<&str> = ids.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["images", "sinograms", "commit"]);
    let state = wait_for_slurm_job(&ids[2].1, Duration::from_secs(180));
    assert_eq!(state, "COMPLETED");
    assert_same_result(&s, "job.tif", "local.tif");
}

#[test]
fn a_slurm_array_task_killed_mid_way_is_refused_then_rerun_and_committed() {
    if !slurm_answers() {
        return;
    }
    let s = Scratch::new();
    slow_stack(&s, "slow.tif");
    local_run(&s, &SLOW, "slow.tif", "local.tif");
    let out = s
        .imfilter()
        .args([
            "-q",
            "job",
            "slurm",
            "--shards",
            "2",
            "--cpus-per-task",
            "1",
            "--time",
            "10",
        ])
        .args(step_args(&SLOW))
        .args(["slow.tif", "-o", "job.tif"])
        .output()
        .expect("runs");
    assert_succeeded(&out);
    let job = PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .expect("job"),
    );
    let ids = submitted(&out.stdout);
    let array = &ids[0].1;
    let started = job.join("shards/images.1.started.json");
    let t = Instant::now();
    while !started.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "task 1 never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed = Process::new("scancel")
        .args(["--signal=KILL", &format!("{array}_1")])
        .status()
        .expect("scancel");
    assert!(killed.success());
    wait_for_slurm_job(array, Duration::from_secs(120));
    assert!(
        !job.join("shards/images.1.done.json").exists(),
        "task 1 finished before it was killed: make the stack slower"
    );
    // The commit job depended on every task succeeding: Slurm cancels it.
    wait_for_slurm_job(&ids[1].1, Duration::from_secs(60));
    assert!(!s.path("job.tif").exists());
    // Slurm stops a task with SIGTERM, then SIGKILL if it is still there: the shard records
    // the stop, or (killed first) only that it started.
    let shown = status(&s, &job);
    let stopped = shown.contains("shard 1: failed") && shown.contains("interrupted by SIGTERM");
    assert!(stopped || shown.contains("shard 1: killed"), "{shown}");
    let refused = commit(&s, &job);
    assert_one_line_error(&refused.stderr, &["not committed", "images shard 1 ("]);

    // The failed task again, from the script the job keeps, then the commit.
    let rerun = Process::new("sbatch")
        .args(["--wait", "--array=1"])
        .arg(job.join("slurm/images.sh"))
        .output()
        .expect("sbatch");
    assert_succeeded(&rerun);
    let out = commit(&s, &job);
    assert_succeeded(&out);
    assert_same_result(&s, "job.tif", "local.tif");
}

#[test]
fn a_synced_shard_larger_than_one_write_back_batch_equals_a_local_run() {
    // With -j 1 a synced shard sends its pages to the disk 4 images at a time: one shard of
    // the 12-image sample goes in three batches, each starting where the last ended.
    let s = Scratch::new();
    local_run(&s, &CHAIN, "sample/stack.tif", "local.tif");
    let job = prepare(&s, 1, &CHAIN, "sample/stack.tif", "job.tif");
    let out = s
        .imfilter()
        .args(["-q", "-j", "1", "job", "run"])
        .arg(&job)
        .args(["--shard", "0"])
        .output()
        .expect("runs");
    assert_succeeded(&out);
    let out = commit(&s, &job);
    assert_succeeded(&out);
    assert_same_result(&s, "job.tif", "local.tif");
}
