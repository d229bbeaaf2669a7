//! Helpers shared by the integration tests: golden files, .npy reading, temporary folders.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use swav_augment::dataset::decode::load_image_file;
use swav_augment::rgb_image::RgbImage;

/// The golden folder.
pub fn goldens() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("goldens")
}

/// The parsed manifest.json.
pub fn manifest() -> serde_json::Value {
    let text =
        std::fs::read_to_string(goldens().join("manifest.json")).expect("read manifest.json");
    serde_json::from_str(&text).expect("parse manifest.json")
}

/// The texture every golden case starts from.
pub fn texture() -> RgbImage {
    load_image_file(&goldens().join("texture.png")).expect("decode texture.png")
}

/// An array read from a .npy file: shape and raw little-endian bytes.
pub struct Npy {
    pub dtype: String,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl Npy {
    pub fn u8(&self) -> &[u8] {
        assert!(
            self.dtype == "|u1" || self.dtype == "<u1",
            "dtype {}",
            self.dtype
        );
        &self.data
    }

    pub fn f32(&self) -> Vec<f32> {
        assert_eq!(self.dtype, "<f4");
        self.data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }
}

/// Reads a version 1 .npy file (C order) from the golden folder.
pub fn npy(name: &str) -> Npy {
    let bytes = std::fs::read(goldens().join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{name} is not .npy");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).expect("ascii header");
    assert!(
        header.contains("'fortran_order': False"),
        "{name}: Fortran order"
    );
    let field = |key: &str| {
        let start = header
            .find(key)
            .unwrap_or_else(|| panic!("{name}: no {key}"))
            + key.len();
        header[start..].trim_start_matches([':', ' '])
    };
    let dtype = field("'descr'")
        .trim_start_matches('\'')
        .split('\'')
        .next()
        .unwrap_or("")
        .to_string();
    let shape_text = field("'shape'");
    let shape = shape_text[1..shape_text.find(')').expect("shape tuple")]
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    Npy {
        dtype,
        shape,
        data: bytes[10 + header_len..].to_vec(),
    }
}

/// A fresh, empty temporary folder, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "swav-augment-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Largest absolute difference between two byte buffers, and how many bytes differ.
pub fn byte_diff(a: &[u8], b: &[u8]) -> (u8, usize) {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).fold((0, 0), |(max, count), (&x, &y)| {
        let d = x.abs_diff(y);
        (max.max(d), count + (d > 0) as usize)
    })
}
