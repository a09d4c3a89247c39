//! Stacks past 4 GiB, on sparse files: no gigabytes of RAM or disk needed.

#[path = "common/sparse.rs"]
mod sparse;

use imfilter::pixel::DType;
use imfilter::stack::Stack;
use imfilter::stack::write::Layout;
use sparse::sparse_stack;

/// 300 float32 pages of 2048²: 5 GB, past what classic TIFF offsets can address.
const PAGES: usize = 300;

fn sparse(imagej: bool) -> (tempfile::TempDir, std::path::PathBuf, Layout) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.tif");
    let (_, layout) = sparse_stack(&path, PAGES, 2048, DType::F32, imagej);
    (dir, path, layout)
}

#[test]
fn past_4_gib_the_output_is_bigtiff_and_reads_back_every_page() {
    let (_dir, path, layout) = sparse(false);
    assert!(layout.bigtiff && layout.file_len > u64::from(u32::MAX));
    let stack = Stack::open(&path).expect("opens");
    assert_eq!(stack.len(), PAGES);
    let mut scratch = Vec::new();
    let last = stack
        .page::<f32>(PAGES - 1, &mut scratch)
        .expect("last page");
    assert_eq!(last.len(), 2048 * 2048);
}

#[test]
fn with_imagej_it_is_classic_with_one_directory_and_still_reads_every_page() {
    let (_dir, path, layout) = sparse(true);
    assert!(!layout.bigtiff && layout.first_directory_only);
    assert_eq!(
        std::fs::metadata(&path).expect("stat").len(),
        layout.file_len
    );
    let stack = Stack::open(&path).expect("opens");
    assert_eq!(
        stack.len(),
        PAGES,
        "pages after the first come from images=N"
    );
    let mut scratch = Vec::new();
    assert!(stack.page::<f32>(PAGES - 1, &mut scratch).is_ok());
}

#[test]
fn an_imagej_file_shorter_than_images_n_is_refused() {
    let (_dir, path, layout) = sparse(true);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(layout.file_len - 1)
        .expect("truncate");
    let err = Stack::open(&path).err().expect("refused");
    assert!(format!("{err:#}").contains("images=300"), "{err:#}");
}
