//! The MNIST-format IDX reader. The first byte selects the fuzzed file (bit 0: the labels,
//! else the images; bit 1: named `.gz`); the rest is its content, and the other file of the
//! pair is a valid one (four 3×2 images, or their four labels).
#![no_main]

use libfuzzer_sys::fuzz_target;
use swav_augment::dataset::Dataset;
use swav_augment::dataset::idx::IdxDataset;

const IMAGES_HEADER: [u8; 16] = [0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 2];
const LABELS: [u8; 12] = [0, 0, 8, 1, 0, 0, 0, 4, 0, 3, 9, 3];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let scratch = |name: &str| {
        std::env::temp_dir().join(format!("swav-fuzz-{}-{name}", std::process::id()))
    };
    let images: Vec<u8> = IMAGES_HEADER.iter().copied().chain(0..24).collect();
    let suffix = if selector & 2 != 0 { ".gz" } else { "" };
    let (images_path, labels_path, images, labels) = if selector & 1 == 0 {
        (scratch(&format!("images{suffix}")), scratch("labels"), bytes, &LABELS[..])
    } else {
        (scratch("images"), scratch(&format!("labels{suffix}")), &images[..], bytes)
    };
    std::fs::write(&images_path, images).expect("writing the scratch file");
    std::fs::write(&labels_path, labels).expect("writing the scratch file");
    if let Ok(dataset) = IdxDataset::from_files(&images_path, &labels_path, 10) {
        for i in 0..dataset.len() {
            let _ = dataset.load(i);
        }
    }
});
