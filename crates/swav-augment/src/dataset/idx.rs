//! MNIST-format IDX folders, as torchvision's MNIST, FashionMNIST and KMNIST read them:
//! `train-images-idx3-ubyte` with `train-labels-idx1-ubyte`, and `t10k-images-idx3-ubyte`
//! with `t10k-labels-idx1-ubyte`, each plain or gzipped (`.gz`).
//!
//! An IDX file is a 4-byte magic number (two zero bytes, the element type `0x08` for
//! unsigned bytes, the number of dimensions), one big-endian `u32` per dimension, then the
//! elements in row-major order. Every header is checked against the file's length before
//! anything is allocated: a plain file must hold exactly the bytes its header declares, a
//! gzipped one can hold at most deflate's largest expansion of its compressed size.
//!
//! Images are greyscale; [`Dataset::load`] replicates the grey level into R, G and B, as a
//! greyscale PNG decodes (PIL's `convert("RGB")`).

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::dataset::Dataset;
use crate::dataset::scan::require_folder;
use crate::error::DatasetError;
use crate::rgb_image::RgbImage;

/// The element type byte of unsigned 8-bit data, the third byte of an IDX magic number.
const UNSIGNED_BYTE: u8 = 0x08;

/// Deflate's largest expansion (about 1032:1): a gzip file of `n` bytes never
/// decompresses to more than `n` times this.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Classes of the MNIST family (MNIST, Fashion-MNIST, KMNIST): labels 0 to 9.
pub const MNIST_CLASSES: usize = 10;

/// One half of an MNIST-format folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdxSplit {
    /// `train-images-idx3-ubyte` and `train-labels-idx1-ubyte`.
    Train,
    /// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`.
    Test,
}

impl IdxSplit {
    /// The file-name prefix: `train` or `t10k`.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Test => "t10k",
        }
    }

    /// The plain name of the split's image file.
    pub fn images_name(self) -> String {
        format!("{}-images-idx3-ubyte", self.prefix())
    }

    /// The plain name of the split's label file.
    pub fn labels_name(self) -> String {
        format!("{}-labels-idx1-ubyte", self.prefix())
    }

    /// The split's image file in `dir`: the plain file if present, else the `.gz` one;
    /// `None` if neither exists.
    pub fn images_file(self, dir: &Path) -> Option<PathBuf> {
        find_plain_or_gzipped(dir, &self.images_name())
    }

    /// The split's label file in `dir`, found as [`Self::images_file`] finds the images.
    pub fn labels_file(self, dir: &Path) -> Option<PathBuf> {
        find_plain_or_gzipped(dir, &self.labels_name())
    }
}

/// `dir/name` if it is a file, else `dir/name.gz` if that is one.
fn find_plain_or_gzipped(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

/// Whether `dir` holds any of the four MNIST-format file names (plain or gzipped): the test
/// that tells an IDX folder from an image folder.
pub fn is_idx_folder(dir: &Path) -> bool {
    [IdxSplit::Train, IdxSplit::Test]
        .iter()
        .any(|s| s.images_file(dir).is_some() || s.labels_file(dir).is_some())
}

/// The greyscale images and labels of one split of an MNIST-format folder, held in memory
/// (Fashion-MNIST's training split: 47 MB).
#[derive(Debug, Clone)]
pub struct IdxDataset {
    images_path: PathBuf,
    width: u32,
    height: u32,
    pixels: Vec<u8>,
    labels: Vec<u8>,
    classes: Vec<String>,
}

impl IdxDataset {
    /// Reads split `split` of the MNIST-format folder `dir` (ten classes, named `0` to `9`).
    /// Fails with a message naming the folder when a file of the split is missing, or
    /// naming the file when one is malformed.
    pub fn open(dir: &Path, split: IdxSplit) -> Result<Self, DatasetError> {
        require_folder(dir)?;
        let missing = |name: String| DatasetError::Idx {
            path: dir.to_path_buf(),
            problem: format!("an MNIST-format folder needs {name} or {name}.gz; neither exists"),
        };
        let images = split
            .images_file(dir)
            .ok_or_else(|| missing(split.images_name()))?;
        let labels = split
            .labels_file(dir)
            .ok_or_else(|| missing(split.labels_name()))?;
        Self::from_files(&images, &labels, MNIST_CLASSES)
    }

    /// Reads an image file (3 dimensions: count, rows, columns) and its label file (1
    /// dimension), each plain or gzipped (by the `.gz` extension), with labels in
    /// `0..num_classes`.
    pub fn from_files(
        images_path: &Path,
        labels_path: &Path,
        num_classes: usize,
    ) -> Result<Self, DatasetError> {
        let images = read_idx(images_path, 3)?;
        let labels = read_idx(labels_path, 1)?;
        let [count, height, width] = [images.dims[0], images.dims[1], images.dims[2]];
        let idx_error = |path: &Path, problem: String| DatasetError::Idx {
            path: path.to_path_buf(),
            problem,
        };
        if count == 0 {
            return Err(idx_error(images_path, "holds no images".into()));
        }
        if width == 0 || height == 0 {
            return Err(idx_error(
                images_path,
                format!("declares images of {height}×{width} pixels"),
            ));
        }
        if labels.dims[0] != count {
            return Err(idx_error(
                labels_path,
                format!(
                    "holds {} labels but {} holds {count} images",
                    labels.dims[0],
                    images_path.display()
                ),
            ));
        }
        if let Some((index, &label)) = labels
            .data
            .iter()
            .enumerate()
            .find(|&(_, &l)| usize::from(l) >= num_classes)
        {
            return Err(idx_error(
                labels_path,
                format!(
                    "label {label} of image {index} is outside 0..={} ({num_classes} classes)",
                    num_classes.saturating_sub(1)
                ),
            ));
        }
        Ok(Self {
            images_path: images_path.to_path_buf(),
            width,
            height,
            pixels: images.data,
            labels: labels.data,
            classes: (0..num_classes).map(|c| c.to_string()).collect(),
        })
    }

    /// The image file the samples come from.
    pub fn images_path(&self) -> &Path {
        &self.images_path
    }

    /// The side lengths of every image: (width, height).
    pub fn image_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn image_bytes(&self) -> usize {
        self.width as usize * self.height as usize
    }
}

impl Dataset for IdxDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn label(&self, index: usize) -> Option<usize> {
        self.labels.get(index).map(|&l| usize::from(l))
    }

    fn class_names(&self) -> &[String] {
        &self.classes
    }

    fn sample_name(&self, index: usize) -> String {
        format!("{}[{index}]", self.images_path.display())
    }

    fn load(&self, index: usize) -> Result<RgbImage, DatasetError> {
        if index >= self.len() {
            return Err(DatasetError::IndexOutOfRange {
                index,
                len: self.len(),
            });
        }
        let size = self.image_bytes();
        let grey = &self.pixels[index * size..(index + 1) * size];
        let rgb = grey.iter().flat_map(|&g| [g, g, g]).collect();
        Ok(RgbImage::from_exact(self.width, self.height, rgb))
    }
}

/// The dimensions and elements of one IDX file of unsigned bytes.
struct IdxArray {
    dims: Vec<u32>,
    data: Vec<u8>,
}

/// How many bytes the file can hold after its header, known before decompressing.
enum Room {
    /// A plain file: exactly its length.
    Exactly(u64),
    /// A gzipped file: at most deflate's largest expansion of its length.
    AtMost(u64),
}

/// Reads the IDX file at `path` (gzipped when its name ends in `.gz`), which must hold
/// unsigned bytes in `ndim` dimensions.
fn read_idx(path: &Path, ndim: u8) -> Result<IdxArray, DatasetError> {
    let io_error = |source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let file_len = file.metadata().map_err(io_error)?.len();
    let gzipped = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let (mut reader, room): (Box<dyn Read>, Room) = if gzipped {
        (
            Box::new(GzDecoder::new(BufReader::new(file))),
            Room::AtMost(file_len.saturating_mul(MAX_DEFLATE_RATIO)),
        )
    } else {
        (Box::new(BufReader::new(file)), Room::Exactly(file_len))
    };
    let read_error = |e: std::io::Error, what: &str| match e.kind() {
        ErrorKind::UnexpectedEof => DatasetError::Truncated {
            path: path.to_path_buf(),
            detail: format!("it ends inside its {what}"),
        },
        _ if gzipped => DatasetError::Idx {
            path: path.to_path_buf(),
            problem: format!("is not readable gzip data: {e}"),
        },
        _ => io_error(e),
    };

    let mut magic = [0u8; 4];
    reader
        .read_exact(&mut magic)
        .map_err(|e| read_error(e, "header"))?;
    if magic != [0, 0, UNSIGNED_BYTE, ndim] {
        let hint = if magic[..2] == [0x1f, 0x8b] {
            " (the file is gzip-compressed: name it with a .gz extension)"
        } else {
            ""
        };
        return Err(DatasetError::Idx {
            path: path.to_path_buf(),
            problem: format!(
                "wrong magic number 0x{:08x}: expected 0x{:08x} (unsigned bytes, {ndim} dimension{}){hint}",
                u32::from_be_bytes(magic),
                u32::from_be_bytes([0, 0, UNSIGNED_BYTE, ndim]),
                if ndim == 1 { "" } else { "s" },
            ),
        });
    }
    let mut dims = Vec::with_capacity(usize::from(ndim));
    for _ in 0..ndim {
        let mut word = [0u8; 4];
        reader
            .read_exact(&mut word)
            .map_err(|e| read_error(e, "header"))?;
        dims.push(u32::from_be_bytes(word));
    }
    let header_len = 4 + 4 * u64::from(ndim);
    let shape = dims
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join("×");
    let declared = dims
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(u64::from(d)));
    let idx_error = |problem: String| DatasetError::Idx {
        path: path.to_path_buf(),
        problem,
    };
    let addressable = |n: u64| {
        n.checked_add(header_len)
            .and_then(|t| usize::try_from(t).ok())
    };
    let Some(declared) = declared.filter(|&n| addressable(n).is_some()) else {
        return Err(idx_error(format!(
            "its header declares {shape} bytes, more than this machine can address"
        )));
    };
    match room {
        Room::Exactly(len) if len < header_len + declared => {
            return Err(DatasetError::Truncated {
                path: path.to_path_buf(),
                detail: format!(
                    "its header declares {shape} = {declared} bytes of data but only {} follow it",
                    len.saturating_sub(header_len)
                ),
            });
        }
        Room::Exactly(len) if len > header_len + declared => {
            return Err(idx_error(format!(
                "{} bytes follow the {shape} = {declared} bytes its header declares",
                len - header_len - declared
            )));
        }
        Room::AtMost(limit) if header_len + declared > limit => {
            return Err(idx_error(format!(
                "its header declares {shape} = {declared} bytes, more than a gzip file of {file_len} bytes can hold"
            )));
        }
        _ => {}
    }
    // `declared` is now bounded by the file's length (or its largest expansion), and one
    // byte more is asked for so that data past the declared end is seen.
    let mut data = Vec::with_capacity(declared as usize);
    reader
        .take(declared + 1)
        .read_to_end(&mut data)
        .map_err(|e| read_error(e, "data"))?;
    let found = data.len() as u64;
    if found < declared {
        return Err(DatasetError::Truncated {
            path: path.to_path_buf(),
            detail: format!(
                "its header declares {shape} = {declared} bytes of data but it holds {found}"
            ),
        });
    }
    if found > declared {
        return Err(idx_error(format!(
            "more data follows the {shape} = {declared} bytes its header declares"
        )));
    }
    Ok(IdxArray { dims, data })
}
