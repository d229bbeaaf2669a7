//! MNIST-format IDX folders: plain and gzipped files, the split layout, every malformed
//! file rejected with one line naming it, and the class-balanced subset.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::TempDir;
use flate2::Compression;
use flate2::write::GzEncoder;
use swav_augment::DatasetError;
use swav_augment::dataset::{Dataset, FlatFolder, IdxDataset, IdxSplit, Subset, is_idx_folder};

/// The bytes of an IDX file of unsigned bytes with dimensions `dims`.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("compress");
    encoder.finish().expect("compress")
}

/// `count` images of 3×2 pixels whose pixel `p` of image `i` is `10 * i + p`, labelled
/// `i % 3`.
fn images_and_labels(count: u32) -> (Vec<u8>, Vec<u8>) {
    let pixels: Vec<u8> = (0..count)
        .flat_map(|i| (0..6).map(move |p| (10 * i + p) as u8))
        .collect();
    let labels: Vec<u8> = (0..count).map(|i| (i % 3) as u8).collect();
    (
        idx_bytes(&[count, 2, 3], &pixels),
        idx_bytes(&[count], &labels),
    )
}

/// Writes `bytes` to `dir/name`, gzipped when the name ends in `.gz`.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let content = if name.ends_with(".gz") {
        gzip(bytes)
    } else {
        bytes.to_vec()
    };
    std::fs::write(&path, content).expect("write");
    path
}

/// A folder with both splits of `images_and_labels`, gzipped or plain.
fn mnist_folder(tag: &str, gzipped: bool) -> TempDir {
    let dir = TempDir::new(tag);
    let ext = if gzipped { ".gz" } else { "" };
    for (split, count) in [(IdxSplit::Train, 7), (IdxSplit::Test, 4)] {
        let (images, labels) = images_and_labels(count);
        write(
            dir.path(),
            &format!("{}{ext}", split.images_name()),
            &images,
        );
        write(
            dir.path(),
            &format!("{}{ext}", split.labels_name()),
            &labels,
        );
    }
    dir
}

/// Opens `images` and `labels` (10 classes) and returns the error as one line.
fn error_of(images: &Path, labels: &Path) -> String {
    let e = IdxDataset::from_files(images, labels, 10).expect_err("must be rejected");
    let line = e.to_string();
    assert!(!line.contains('\n'), "not one line: {line}");
    line
}

#[test]
fn both_splits_read_the_same_plain_and_gzipped() {
    for gzipped in [false, true] {
        let dir = mnist_folder("idx-splits", gzipped);
        assert!(is_idx_folder(dir.path()));
        let train = IdxDataset::open(dir.path(), IdxSplit::Train).expect("train split");
        let test = IdxDataset::open(dir.path(), IdxSplit::Test).expect("test split");
        assert_eq!((train.len(), test.len()), (7, 4));
        assert_eq!(train.image_size(), (3, 2));
        assert_eq!(train.num_classes(), 10);
        assert_eq!(train.class_names()[9], "9");
        let labels: Vec<Option<usize>> = (0..8).map(|i| train.label(i)).collect();
        assert_eq!(
            labels,
            [0, 1, 2, 0, 1, 2, 0]
                .map(Some)
                .into_iter()
                .chain([None])
                .collect::<Vec<_>>()
        );
        // Image 5 of 3×2: grey levels 50..56 in row-major order, replicated into R, G, B.
        let image = train.load(5).expect("load");
        assert_eq!((image.width(), image.height()), (3, 2));
        assert_eq!(image.pixel(0, 0), Some([50, 50, 50]));
        assert_eq!(image.pixel(2, 1), Some([55, 55, 55]));
        assert_eq!(image.pixel(1, 1), Some([54, 54, 54]));
        assert!(matches!(
            train.load(7),
            Err(DatasetError::IndexOutOfRange { index: 7, len: 7 })
        ));
        let suffix = if gzipped { ".gz[3]" } else { "-ubyte[3]" };
        assert!(
            train.sample_name(3).ends_with(suffix),
            "{}",
            train.sample_name(3)
        );
        assert_eq!(test.load(3).expect("load").pixel(0, 0), Some([30, 30, 30]));
    }
}

#[test]
fn a_plain_file_is_preferred_to_its_gzipped_copy() {
    let dir = mnist_folder("idx-plain-first", true);
    let (images, labels) = images_and_labels(2);
    write(dir.path(), &IdxSplit::Train.images_name(), &images);
    write(dir.path(), &IdxSplit::Train.labels_name(), &labels);
    let train = IdxDataset::open(dir.path(), IdxSplit::Train).expect("open");
    assert_eq!(train.len(), 2);
    assert!(!train.images_path().to_string_lossy().ends_with(".gz"));
}

#[test]
fn an_image_folder_is_not_an_idx_folder_and_a_missing_file_is_named() {
    let dir = TempDir::new("idx-missing");
    assert!(!is_idx_folder(dir.path()));
    let (images, _) = images_and_labels(3);
    write(dir.path(), "train-images-idx3-ubyte.gz", &images);
    assert!(is_idx_folder(dir.path()));
    let e = IdxDataset::open(dir.path(), IdxSplit::Train)
        .expect_err("labels missing")
        .to_string();
    assert!(
        e.contains("train-labels-idx1-ubyte or train-labels-idx1-ubyte.gz"),
        "{e}"
    );
    let e = IdxDataset::open(dir.path(), IdxSplit::Test)
        .expect_err("test split missing")
        .to_string();
    assert!(e.contains("t10k-images-idx3-ubyte"), "{e}");
}

#[test]
fn a_wrong_magic_number_names_the_file_and_what_was_expected() {
    for ext in ["", ".gz"] {
        let dir = TempDir::new("idx-magic");
        let (images, labels) = images_and_labels(3);
        // The label file where the images belong: magic 0x00000801, not 0x00000803.
        let swapped = write(
            dir.path(),
            &format!("train-images-idx3-ubyte{ext}"),
            &labels,
        );
        let labels = write(
            dir.path(),
            &format!("train-labels-idx1-ubyte{ext}"),
            &labels,
        );
        let e = error_of(&swapped, &labels);
        assert!(e.starts_with(&swapped.display().to_string()), "{e}");
        assert!(
            e.contains("wrong magic number 0x00000801: expected 0x00000803"),
            "{e}"
        );
        // Signed 16-bit elements (type 0x0b) are not unsigned bytes.
        let mut shorts = images.clone();
        shorts[2] = 0x0b;
        let shorts = write(dir.path(), &format!("shorts-idx3{ext}"), &shorts);
        assert!(error_of(&shorts, &labels).contains("wrong magic number 0x00000b03"));
    }
}

#[test]
fn gzip_data_under_a_plain_name_is_recognised() {
    let dir = TempDir::new("idx-gzip-plain-name");
    let (images, labels) = images_and_labels(3);
    let gzipped = dir.path().join("train-images-idx3-ubyte");
    std::fs::write(&gzipped, gzip(&images)).expect("write");
    let labels = write(dir.path(), "train-labels-idx1-ubyte", &labels);
    let e = error_of(&gzipped, &labels);
    assert!(
        e.contains("gzip-compressed: name it with a .gz extension"),
        "{e}"
    );
}

#[test]
fn a_truncated_file_is_rejected_before_its_data_is_allocated() {
    let dir = TempDir::new("idx-truncated");
    let (images, labels) = images_and_labels(5);
    let labels_plain = write(dir.path(), "labels", &labels);
    for ext in ["", ".gz"] {
        // Cut inside the data: the plain file's length gives it away before reading.
        let short = write(
            dir.path(),
            &format!("short{ext}"),
            &images[..images.len() - 4],
        );
        let e = error_of(&short, &labels_plain);
        assert!(e.contains(&short.display().to_string()), "{e}");
        assert!(e.contains("is truncated"), "{e}");
        assert!(e.contains("5×2×3 = 30 bytes of data"), "{e}");
        // Cut inside the header.
        let stub = write(dir.path(), &format!("stub{ext}"), &images[..9]);
        let e = error_of(&stub, &labels_plain);
        assert!(e.contains("is truncated: it ends inside its header"), "{e}");
    }
    // A gzip stream cut short: the decompressor runs out mid-stream.
    let compressed = gzip(&images);
    let cut = dir.path().join("cut.gz");
    std::fs::write(&cut, &compressed[..compressed.len() - 12]).expect("write");
    let e = error_of(&cut, &labels_plain);
    assert!(e.starts_with(&cut.display().to_string()), "{e}");
    assert!(e.contains("truncated"), "{e}");
}

#[test]
fn a_header_larger_than_the_file_can_hold_allocates_nothing() {
    let dir = TempDir::new("idx-huge-header");
    let (_, labels) = images_and_labels(1);
    let labels = write(dir.path(), "labels", &labels);
    // 4 billion images of 65535×65535: no allocation of that size may be attempted.
    let huge = idx_bytes(&[u32::MAX, 65535, 65535], &[1, 2, 3]);
    let plain = write(dir.path(), "huge", &huge);
    assert!(error_of(&plain, &labels).contains("is truncated"));
    // A gzipped file of a few dozen bytes cannot hold a million images of 28×28.
    let bomb = write(
        dir.path(),
        "bomb.gz",
        &idx_bytes(&[1_000_000, 28, 28], &[0; 16]),
    );
    let e = error_of(&bomb, &labels);
    assert!(
        e.contains("1000000×28×28 = 784000000 bytes, more than a gzip file of"),
        "{e}"
    );
}

#[test]
fn data_past_the_declared_end_is_rejected() {
    let dir = TempDir::new("idx-trailing");
    let (mut images, labels) = images_and_labels(2);
    images.extend_from_slice(&[7, 7, 7]);
    let labels = write(dir.path(), "labels", &labels);
    for ext in ["", ".gz"] {
        let long = write(dir.path(), &format!("long{ext}"), &images);
        let e = error_of(&long, &labels);
        assert!(e.contains("follow"), "{e}");
    }
}

#[test]
fn images_and_labels_must_pair_up_and_labels_must_be_classes() {
    let dir = TempDir::new("idx-pairing");
    let (images, _) = images_and_labels(4);
    let (_, three_labels) = images_and_labels(3);
    let images = write(dir.path(), "images.gz", &images);
    let three = write(dir.path(), "three-labels.gz", &three_labels);
    let e = error_of(&images, &three);
    assert!(e.starts_with(&three.display().to_string()), "{e}");
    assert!(
        e.contains(&format!(
            "holds 3 labels but {} holds 4 images",
            images.display()
        )),
        "{e}"
    );
    let out_of_range = write(dir.path(), "bad-labels", &idx_bytes(&[4], &[0, 9, 10, 1]));
    let e = error_of(&images, &out_of_range);
    assert!(e.starts_with(&out_of_range.display().to_string()), "{e}");
    assert!(
        e.contains("label 10 of image 2 is outside 0..=9 (10 classes)"),
        "{e}"
    );
    // The same labels are fine for a reader told there are eleven classes.
    let eleven = IdxDataset::from_files(&images, &out_of_range, 11).expect("11 classes");
    assert_eq!(eleven.label(2), Some(10));
}

#[test]
fn empty_images_are_rejected() {
    let dir = TempDir::new("idx-empty");
    let none = write(dir.path(), "none", &idx_bytes(&[0, 28, 28], &[]));
    let no_labels = write(dir.path(), "no-labels", &idx_bytes(&[0], &[]));
    assert!(error_of(&none, &no_labels).contains("holds no images"));
    let flat = write(dir.path(), "flat", &idx_bytes(&[2, 0, 28], &[]));
    let two = write(dir.path(), "two", &idx_bytes(&[2], &[0, 1]));
    assert!(error_of(&flat, &two).contains("declares images of 0×28 pixels"));
}

#[test]
fn a_balanced_subset_takes_the_first_images_of_each_class_in_file_order() {
    let dir = mnist_folder("idx-subset", true);
    // Labels of the 7 training images: 0 1 2 0 1 2 0.
    let train = Arc::new(IdxDataset::open(dir.path(), IdxSplit::Train).expect("open"));
    let subset = Subset::first_per_class(train.clone(), 2).expect("subset");
    let picked: Vec<usize> = (0..subset.len())
        .map(|i| subset.source_index(i).expect("in range"))
        .collect();
    assert_eq!(picked, [0, 1, 2, 3, 4, 5]);
    assert_eq!(&subset.class_counts()[..4], [2, 2, 2, 0]);
    assert_eq!(subset.label(3), Some(0));
    assert_eq!(subset.load(4).expect("load"), train.load(4).expect("load"));
    assert_eq!(subset.sample_name(1), train.sample_name(1));
    assert_eq!(subset.class_names(), train.class_names());
    assert!(subset.load(6).is_err());

    let one = Subset::first_per_class(train.clone(), 1).expect("subset");
    assert_eq!(one.len(), 3);
    assert_eq!(one.source_index(2), Some(2));
    let all = Subset::first_per_class(train.clone(), 100).expect("subset");
    assert_eq!((all.len(), &all.class_counts()[..3]), (7, &[3, 2, 2][..]));

    let e = Subset::first_per_class(train, 0).expect_err("zero");
    assert!(e.to_string().contains("at least 1"), "{e}");
}

#[test]
fn a_balanced_subset_needs_labels() {
    let dir = TempDir::new("idx-subset-flat");
    let png = common::goldens().join("texture.png");
    std::fs::copy(&png, dir.path().join("a.png")).expect("copy");
    let flat = FlatFolder::open(dir.path()).expect("flat folder");
    let e = Subset::first_per_class(flat, 5).expect_err("unlabelled");
    assert!(e.to_string().contains("needs labelled images"), "{e}");
}
