//! Directory stacks hold their files mapped only while an image is read or computed: Linux
//! limits a process to 65,530 maps by default (`vm.max_map_count`), and a directory of that
//! many images (or half as many written into another directory) must still work. The limit
//! itself is a system setting no test may lower, so these tests watch the process's maps.

#[path = "common/sparse.rs"]
mod sparse;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use imfilter::engine;
use imfilter::output::{Destination, Durability, PendingOutput};
use imfilter::pixel::DType;
use imfilter::progress::{Progress, ProgressMode};
use imfilter::stack::Stack;
use imfilter::stack::write::WriteOptions;
use sparse::sparse_stack;

const FILES: usize = 200;
const SIDE: usize = 16;

/// How many of this process's memory maps are of files under `dir`.
fn maps_under(dir: &Path) -> usize {
    let maps = fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    let dir = dir.to_str().expect("utf-8 temp path");
    maps.lines().filter(|line| line.contains(dir)).count()
}

/// `FILES` single-image uint16 files in `dir`, image `i` filled with `i`.
fn directory_of_images(dir: &Path) {
    fs::create_dir(dir).expect("mkdir");
    for i in 0..FILES {
        let path = dir.join(format!("p_{i:04}.tif"));
        let (file, layout) = sparse_stack(&path, 1, SIDE, DType::U16, false);
        let pixels = vec![i as u16; SIDE * SIDE];
        file.write_all_at(bytemuck::cast_slice(&pixels), layout.data_offset)
            .expect("pixels");
    }
}

#[test]
fn a_directory_of_images_is_read_and_written_with_a_few_files_mapped_at_a_time() {
    let root = tempfile::tempdir().expect("temp dir");
    let input = root.path().join("in");
    let output = root.path().join("out");
    directory_of_images(&input);

    let stack = Stack::open(&input).expect("opens");
    assert_eq!(stack.len(), FILES);
    assert_eq!(
        maps_under(root.path()),
        0,
        "input files stay mapped after opening"
    );

    let names = (0..FILES).map(|i| format!("q_{i:04}.tif").into()).collect();
    let destination = Destination::Directory {
        dir: output.clone(),
        names,
        carried: Vec::new(),
    };
    let mut pending = PendingOutput::create(
        &destination,
        stack.format,
        FILES,
        false,
        &WriteOptions::default(),
    )
    .expect("output created");
    assert_eq!(
        maps_under(root.path()),
        0,
        "output files mapped before any work"
    );

    let threads = 2;
    let most_mapped = AtomicUsize::new(0);
    let progress = Progress::new(ProgressMode::None, "test", FILES);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    pool.install(|| {
        engine::run_pages::<u16, u16, _>(
            &stack,
            pending.pages_mut::<u16>(SIDE * SIDE),
            |input, output| {
                most_mapped.fetch_max(maps_under(root.path()), Ordering::Relaxed);
                output.iter_mut().zip(input).for_each(|(o, &i)| *o = i + 1);
            },
            &progress,
        )
    })
    .expect("runs");
    pending
        .commit(Durability::NoWait, &|| Ok(()))
        .expect("commits");

    // One input and one output file per worker at most (the old code held all 400).
    let most = most_mapped.load(Ordering::Relaxed);
    assert!(
        (1..=2 * threads).contains(&most),
        "{most} files were mapped at once"
    );
    let written = Stack::open(&output).expect("output reads back");
    let mut scratch = Vec::new();
    for i in 0..FILES {
        let page = written.page::<u16>(i, &mut scratch).expect("page");
        assert!(page.iter().all(|&v| v == i as u16 + 1), "image {i}");
    }
}

#[test]
fn a_file_of_a_directory_replaced_after_opening_is_an_error_not_a_stale_read() {
    let root = tempfile::tempdir().expect("temp dir");
    let input = root.path().join("in");
    directory_of_images(&input);
    let stack = Stack::open(&input).expect("opens");

    // Another program writes a new version and renames it over the old one.
    let victim = input.join("p_0007.tif");
    let replacement = root.path().join("new.tif");
    let (file, layout) = sparse_stack(&replacement, 1, SIDE, DType::U16, false);
    file.write_all_at(&[0xff; 4], layout.data_offset)
        .expect("pixels");
    fs::rename(&replacement, &victim).expect("rename");

    let mut scratch = Vec::new();
    assert!(stack.page::<u16>(6, &mut scratch).is_ok());
    let err = format!(
        "{:#}",
        stack.page::<u16>(7, &mut scratch).err().expect("refused")
    );
    assert!(
        err.contains("p_0007.tif") && err.contains("changed"),
        "unexpected error: {err}"
    );
}

#[test]
fn a_directory_output_with_an_image_never_computed_is_not_committed() {
    // Each file is allocated and its TIFF directory written before any work, so an image that
    // no worker wrote would read back as a valid image of zeros: commit must refuse instead.
    let root = tempfile::tempdir().expect("temp dir");
    let output = root.path().join("out");
    let destination = Destination::Directory {
        dir: output.clone(),
        names: vec!["a.tif".into(), "b.tif".into()],
        carried: Vec::new(),
    };
    let format = imfilter::stack::PageFormat {
        width: SIDE,
        height: SIDE,
        dtype: DType::U16,
    };
    let mut pending =
        PendingOutput::create(&destination, format, 2, false, &WriteOptions::default())
            .expect("output created");
    let mut pages = pending.pages_mut::<u16>(SIDE * SIDE);
    let first = pages.remove(0);
    let mut open = first.open().expect("opens");
    open.fill(7);
    open.close().expect("closes");
    drop(pages);
    let err = format!(
        "{:#}",
        pending
            .commit(Durability::NoWait, &|| Ok(()))
            .expect_err("refused")
    );
    assert!(
        err.contains("b.tif") && err.contains("never written"),
        "{err}"
    );
    assert!(!output.exists(), "a partial directory was committed");
    assert_eq!(
        fs::read_dir(root.path()).expect("ls").count(),
        0,
        "temporary files left"
    );
}
