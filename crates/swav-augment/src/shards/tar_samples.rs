//! One shard's samples: consecutive tar members that share a key, as webdataset groups
//! them. A member's key is its path up to the first `.` of its file name, and its
//! extension (lower-cased) the rest: `train/000123.jpg` and `train/000123.cls` are the
//! `jpg` and `cls` of sample `train/000123`. Members that are not regular files, and names
//! without a `.`, are ignored.
//!
//! A sample's image is its first `jpg`, `jpeg`, `png` or `webp` member; its label is its
//! `cls` member, a decimal integer in ASCII.

use std::fs::File;
use std::io::{BufReader, Read};
use std::ops::ControlFlow;
use std::path::Path;

use crate::error::DatasetError;

/// The extensions of the members that hold a sample's image.
pub const IMAGE_MEMBERS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

/// The largest member a shard may hold (256 MiB): a header claiming more is refused before
/// anything is allocated for it.
pub const MAX_MEMBER_BYTES: u64 = 1 << 28;

/// The extension of the member that holds a sample's class.
pub const LABEL_EXTENSION: &str = "cls";

/// One sample of a shard: its key and its members' (extension, content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSample {
    /// The key shared by its members.
    pub key: String,
    /// (extension, bytes) of each member, in archive order.
    pub members: Vec<(String, Vec<u8>)>,
}

impl RawSample {
    /// The image member's extension and bytes, if it has one.
    pub fn image(&self) -> Option<(&str, &[u8])> {
        self.members
            .iter()
            .find(|(ext, _)| IMAGE_MEMBERS.contains(&ext.as_str()))
            .map(|(ext, bytes)| (ext.as_str(), bytes.as_slice()))
    }

    /// The class in its `cls` member (`None` without one); an error says why a `cls`
    /// member is not a class.
    pub fn label(&self) -> Result<Option<usize>, String> {
        let Some((_, bytes)) = self.members.iter().find(|(ext, _)| ext == LABEL_EXTENSION) else {
            return Ok(None);
        };
        let text = std::str::from_utf8(bytes).map_err(|_| "its cls is not text".to_string())?;
        text.trim()
            .parse::<usize>()
            .map(Some)
            .map_err(|_| format!("its cls '{}' is not a class number", text.trim()))
    }

    /// The extensions of its members, comma separated (for messages).
    pub fn extensions(&self) -> String {
        let exts: Vec<&str> = self.members.iter().map(|(ext, _)| ext.as_str()).collect();
        exts.join(", ")
    }
}

/// `(key, extension)` of a member path, or `None` for a name without a `.`.
fn split_key(path: &str) -> Option<(&str, String)> {
    let name_start = path.rfind('/').map_or(0, |i| i + 1);
    let dot = path[name_start..].find('.')? + name_start;
    if dot == name_start {
        return None;
    }
    Some((&path[..dot], path[dot + 1..].to_ascii_lowercase()))
}

fn unreadable(path: &Path, members: usize, error: impl std::fmt::Display) -> DatasetError {
    DatasetError::Shard {
        shard: path.to_path_buf(),
        reason: format!("not a readable tar archive after {members} members: {error}"),
    }
}

/// `(name, key, extension)` of a member that belongs to a sample, or `None` for one to
/// ignore (not a regular file, or a name without a `.`); `members` is its ordinal, for errors.
fn member_name<R: Read>(
    entry: &tar::Entry<'_, R>,
    path: &Path,
    members: usize,
) -> Result<Option<(String, String, String)>, DatasetError> {
    if !entry.header().entry_type().is_file() {
        return Ok(None);
    }
    let name = entry
        .path()
        .map_err(|e| unreadable(path, members, e))?
        .to_string_lossy()
        .into_owned();
    let Some((key, ext)) = split_key(&name) else {
        return Ok(None);
    };
    let key = key.to_string();
    Ok(Some((name, key, ext)))
}

fn open(path: &Path) -> Result<File, DatasetError> {
    File::open(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Streams the samples of shard `path` in archive order to `visit`, which may stop the
/// reading early. Only the current sample is held in memory.
pub fn read_samples(
    path: &Path,
    mut visit: impl FnMut(RawSample) -> ControlFlow<()>,
) -> Result<(), DatasetError> {
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, open(path)?));
    let entries = archive.entries().map_err(|e| unreadable(path, 0, e))?;
    let mut current: Option<RawSample> = None;
    for (members, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|e| unreadable(path, members, e))?;
        let Some((name, key, ext)) = member_name(&entry, path, members)? else {
            continue;
        };
        if entry.size() > MAX_MEMBER_BYTES {
            return Err(unreadable(
                path,
                members,
                format!(
                    "member {name} claims {} bytes, more than the {MAX_MEMBER_BYTES} a sample member may hold",
                    entry.size()
                ),
            ));
        }
        // The header's size is only a claim: reserve at most 1 MiB up front and let the
        // vector grow with the bytes that actually arrive.
        let mut bytes = Vec::with_capacity(entry.size().min(1 << 20) as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| unreadable(path, members, e))?;
        match &mut current {
            Some(sample) if sample.key == key => sample.members.push((ext, bytes)),
            _ => {
                let next = RawSample {
                    key,
                    members: vec![(ext, bytes)],
                };
                if let Some(done) = current.replace(next)
                    && visit(done).is_break()
                {
                    return Ok(());
                }
            }
        }
    }
    if let Some(done) = current {
        let _ = visit(done);
    }
    Ok(())
}

/// What a shard holds, from its tar headers alone (no member is read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardCount {
    /// Samples with an image member.
    pub samples: usize,
    /// Of those, the samples with a `cls` member.
    pub labelled: usize,
    /// Samples without an image member (skipped in training).
    pub without_image: usize,
}

impl ShardCount {
    fn close(&mut self, extensions: &[String]) {
        if extensions.is_empty() {
            return;
        }
        if extensions
            .iter()
            .any(|e| IMAGE_MEMBERS.contains(&e.as_str()))
        {
            self.samples += 1;
            if extensions.iter().any(|e| e == LABEL_EXTENSION) {
                self.labelled += 1;
            }
        } else {
            self.without_image += 1;
        }
    }
}

/// Counts the samples of shard `path` by reading its headers and seeking past the members'
/// contents.
pub fn count_samples(path: &Path) -> Result<ShardCount, DatasetError> {
    let mut archive = tar::Archive::new(open(path)?);
    let entries = archive
        .entries_with_seek()
        .map_err(|e| unreadable(path, 0, e))?;
    let mut count = ShardCount::default();
    let mut key = String::new();
    let mut extensions: Vec<String> = Vec::new();
    for (members, entry) in entries.enumerate() {
        let entry = entry.map_err(|e| unreadable(path, members, e))?;
        let Some((_, member_key, ext)) = member_name(&entry, path, members)? else {
            continue;
        };
        if member_key != key {
            count.close(&extensions);
            extensions.clear();
            key = member_key;
        }
        extensions.push(ext);
    }
    count.close(&extensions);
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_end_at_the_first_dot_of_the_file_name() {
        assert_eq!(split_key("000123.jpg"), Some(("000123", "jpg".into())));
        assert_eq!(
            split_key("a.b/x/000123.seg.PNG"),
            Some(("a.b/x/000123", "seg.png".into()))
        );
        assert_eq!(split_key("README"), None);
        assert_eq!(split_key("dir/.hidden"), None);
    }

    #[test]
    fn a_member_claiming_more_than_the_limit_is_refused_without_allocating() {
        let dir = std::env::temp_dir().join(format!("swav-tar-huge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("huge.tar");
        let mut header = tar::Header::new_ustar();
        header.set_path("000001.jpg").unwrap();
        header.set_size(1 << 40);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(&[0xFF; 512]);
        std::fs::write(&path, bytes).unwrap();
        let error = read_samples(&path, |_| ControlFlow::Continue(()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("claims 1099511627776 bytes"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn labels_are_decimal_text() {
        let sample = |cls: &[u8]| RawSample {
            key: "k".into(),
            members: vec![("png".into(), vec![1]), ("cls".into(), cls.to_vec())],
        };
        assert_eq!(sample(b"7\n").label(), Ok(Some(7)));
        assert!(sample(b"seven").label().unwrap_err().contains("'seven'"));
        assert_eq!(sample(b"3").image(), Some(("png", &[1u8][..])));
        assert_eq!(sample(b"3").extensions(), "png, cls");
    }
}
