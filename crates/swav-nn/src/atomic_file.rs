//! Replacing a file in one step (feature `std`): the one writer behind every file swav
//! must never leave half written (weights, checkpoints, exports, run reports and logs, the
//! rendezvous id).
//!
//! The bytes go to a temporary file in the target's folder, which is flushed to disk and
//! then renamed over the target (atomic on POSIX file systems); finally the folder itself is
//! synced so that the rename survives a crash. Readers see either the old file or the new
//! one, never a prefix. On any error the temporary file is removed.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically (see the module documentation). The error is the
/// I/O error of the step that failed; `path` is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let folder = folder_of(path);
    let tmp = temporary_path(path);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        File::open(&folder)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The folder holding `path` (`.` for a bare file name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The hidden per-process temporary name beside `path`: `.<name>.tmp-<pid>`.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    folder_of(path).join(std::format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A fresh empty folder under the system's temporary folder.
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(std::format!(
            "swav-nn-atomic-file-{}-{test}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        let mut names: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_and_leaves_nothing_else() {
        let dir = scratch("replace");
        let target = dir.join("weights.safetensors");
        fs::write(&target, b"old contents").unwrap();
        write_atomic(&target, b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(entries(&dir), [target]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_whole() {
        let dir = scratch("keep");
        let target = dir.join("checkpoint.safetensors");
        fs::write(&target, b"the last good checkpoint").unwrap();
        // A folder squatting on the temporary name makes the write fail before the rename.
        fs::create_dir(temporary_path(&target)).unwrap();
        assert!(write_atomic(&target, b"never seen").is_err());
        assert_eq!(fs::read(&target).unwrap(), b"the last good checkpoint");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_rename_removes_the_temporary_file() {
        let dir = scratch("cleanup");
        // A non-empty folder at the target cannot be replaced by a file.
        let target = dir.join("occupied");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"x").unwrap();
        assert!(write_atomic(&target, b"bytes").is_err());
        assert_eq!(entries(&dir), [target]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bare_file_name_lives_in_the_current_folder() {
        assert_eq!(folder_of(Path::new("id.bin")), PathBuf::from("."));
        let tmp = temporary_path(Path::new("id.bin"));
        assert!(tmp.starts_with(".") && tmp.to_string_lossy().contains(".id.bin.tmp-"));
    }
}
