//! The shards a `--data` value names.
//!
//! * a pattern with brace groups, as webdataset and `braceexpand` write them:
//!   `train-{000000..000146}.tar` (a numeric range; zero-padded when the first bound is),
//!   `{a,b}` (alternatives); several groups expand to every combination, left to right;
//! * a single `.tar` path;
//! * a text file listing one shard path or pattern per line (blank lines and lines
//!   starting with `#` are skipped; relative paths are relative to the list's folder).
//!
//! A shard may be written as a `file:` URL (`file:///data/train-000000.tar` or
//! `file:train-000000.tar`), as webdataset accepts; other schemes (`http://`, `s3://`,
//! `pipe:`) are refused with the advice to copy or mount the shards. Every shard named must
//! exist: the error names the first missing one.

use std::path::{Path, PathBuf};

use crate::error::DatasetError;

/// Whether `--data` value `spec` names shards rather than a folder of images: a shard
/// pattern ([`is_shard_pattern`]) or an existing file (a list of shards).
pub fn is_shard_spec(spec: &Path) -> bool {
    is_shard_pattern(spec) || spec.is_file()
}

/// Whether `spec` is written as shards: a pattern with braces, or a path ending in `.tar`.
pub fn is_shard_pattern(spec: &Path) -> bool {
    let text = spec.to_string_lossy();
    text.contains('{') || text.ends_with(".tar")
}

/// The shard paths `spec` names, in order (see the module documentation).
pub fn shard_paths(spec: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let text = spec.to_string_lossy().into_owned();
    let list_error = |reason: String| DatasetError::ShardList {
        spec: text.clone(),
        reason,
    };
    let paths: Vec<PathBuf> = if !is_shard_pattern(spec) && spec.is_file() {
        let content = std::fs::read_to_string(spec).map_err(|source| {
            if source.kind() == std::io::ErrorKind::InvalidData {
                list_error(
                    "is a file but not a text list of shards (nor a folder, nor a .tar shard)"
                        .into(),
                )
            } else {
                DatasetError::Io {
                    path: spec.to_path_buf(),
                    source,
                }
            }
        })?;
        let base = spec.parent().unwrap_or(Path::new("."));
        let mut paths = Vec::new();
        for line in content.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            for name in expand_braces(line).map_err(list_error)? {
                paths.push(base.join(local_path(&name).map_err(list_error)?));
            }
        }
        paths
    } else {
        expand_braces(&text)
            .map_err(list_error)?
            .iter()
            .map(|name| local_path(name).map(PathBuf::from))
            .collect::<Result<_, _>>()
            .map_err(list_error)?
    };
    if paths.is_empty() {
        return Err(list_error("names no shard".into()));
    }
    let missing: Vec<&PathBuf> = paths.iter().filter(|p| !p.is_file()).collect();
    if let Some(first) = missing.first() {
        return Err(list_error(format!(
            "{} of its {} shards do not exist, the first {}",
            missing.len(),
            paths.len(),
            first.display()
        )));
    }
    Ok(paths)
}

/// The local path a shard name stands for: the name itself, or the path of a `file:` URL.
fn local_path(name: &str) -> Result<&str, String> {
    if let Some(path) = name
        .strip_prefix("file://")
        .or_else(|| name.strip_prefix("file:"))
    {
        return Ok(path);
    }
    if name.contains("://") || name.starts_with("pipe:") {
        return Err(format!(
            "{name}: only local shards are read (a path or a file: URL); copy or mount remote shards first"
        ));
    }
    Ok(name)
}

/// Expands every brace group of `pattern` (no nesting).
pub fn expand_braces(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('{') else {
        if pattern.contains('}') {
            return Err(format!("'}}' without '{{' in {pattern}"));
        }
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find('}')
        .map(|i| open + i)
        .ok_or_else(|| format!("'{{' without '}}' in {pattern}"))?;
    let group = &pattern[open + 1..close];
    if group.contains('{') {
        return Err(format!("nested braces are not supported: {pattern}"));
    }
    let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
    let rests = expand_braces(tail)?;
    let mut out = Vec::new();
    for choice in group_choices(group)? {
        for rest in &rests {
            out.push(format!("{head}{choice}{rest}"));
        }
    }
    Ok(out)
}

/// The alternatives of one brace group: `a..b` (integers) or `x,y,z`.
fn group_choices(group: &str) -> Result<Vec<String>, String> {
    if let Some((first, last)) = group.split_once("..") {
        let parse = |bound: &str| {
            bound
                .parse::<u64>()
                .map_err(|_| format!("{{{group}}}: '{bound}' is not a non-negative integer"))
        };
        let (start, end) = (parse(first)?, parse(last)?);
        if end < start {
            return Err(format!("{{{group}}}: the range runs backwards"));
        }
        let width = if first.len() > 1 && first.starts_with('0') {
            first.len().max(last.len())
        } else {
            0
        };
        return Ok((start..=end).map(|n| format!("{n:0width$}")).collect());
    }
    if group.contains(',') {
        return Ok(group.split(',').map(str::to_string).collect());
    }
    Err(format!(
        "{{{group}}} is neither a range (a..b) nor a list (a,b)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_keep_the_zero_padding_of_their_first_bound() {
        assert_eq!(
            expand_braces("s/train-{000008..000011}.tar").unwrap(),
            [
                "s/train-000008.tar",
                "s/train-000009.tar",
                "s/train-000010.tar",
                "s/train-000011.tar"
            ]
        );
        assert_eq!(expand_braces("{8..10}").unwrap(), ["8", "9", "10"]);
    }

    #[test]
    fn several_groups_expand_left_to_right() {
        assert_eq!(
            expand_braces("{a,b}-{0..1}.tar").unwrap(),
            ["a-0.tar", "a-1.tar", "b-0.tar", "b-1.tar"]
        );
        assert_eq!(expand_braces("plain.tar").unwrap(), ["plain.tar"]);
    }

    #[test]
    fn malformed_groups_are_refused_with_the_reason() {
        assert!(
            expand_braces("a-{0..3.tar")
                .unwrap_err()
                .contains("without")
        );
        assert!(
            expand_braces("a-{3..0}.tar")
                .unwrap_err()
                .contains("backwards")
        );
        assert!(expand_braces("a-{x..3}.tar").unwrap_err().contains("'x'"));
        assert!(expand_braces("a-{0}.tar").unwrap_err().contains("neither"));
        assert!(
            expand_braces("a-{{0..1}}.tar")
                .unwrap_err()
                .contains("nested")
        );
    }

    #[test]
    fn file_urls_are_paths_and_other_schemes_are_refused() {
        assert_eq!(local_path("file:///d/a.tar"), Ok("/d/a.tar"));
        assert_eq!(local_path("file:a.tar"), Ok("a.tar"));
        assert_eq!(local_path("d/a.tar"), Ok("d/a.tar"));
        for remote in ["https://host/a.tar", "s3://bucket/a.tar", "pipe:curl x"] {
            assert!(
                local_path(remote).unwrap_err().contains("copy or mount"),
                "{remote}"
            );
        }
    }

    #[test]
    fn a_list_file_names_shards_relative_to_its_folder() {
        let dir = std::env::temp_dir().join(format!("swav-shard-list-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["a-0.tar", "a-1.tar", "b.tar"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let list = dir.join("shards.txt");
        std::fs::write(&list, "# training shards\na-{0..1}.tar\n\nb.tar\n").unwrap();
        let paths = shard_paths(&list).unwrap();
        assert_eq!(
            paths,
            [dir.join("a-0.tar"), dir.join("a-1.tar"), dir.join("b.tar")]
        );
        assert!(is_shard_spec(&list));
        let image = dir.join("photo.jpg");
        std::fs::write(&image, [0xFF, 0xD8, 0xFF, 0xE0, 0x80, 0x81]).unwrap();
        let error = shard_paths(&image).unwrap_err().to_string();
        assert!(error.contains("not a text list of shards"), "{error}");
        let missing = shard_paths(&dir.join("a-{0..3}.tar"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("2 of its 4 shards do not exist"),
            "{missing}"
        );
        assert!(missing.contains("a-2.tar"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
