//! TensorBoard event files (`events.out.tfevents.*`, which TensorBoard and
//! `tensorboard.backend.event_processing` read): the encoding, and the writer that appends a
//! run's scalars while it trains.
//!
//! The format is TFRecord framing around serialized `tensorflow.Event` protocol buffers:
//! each record is `u64 length, u32 masked_crc32c(length), data, u32 masked_crc32c(data)`
//! (little-endian; CRC-32C, Castagnoli, masked as `rotr(crc, 15) + 0xa282ead8`). The first
//! event carries `file_version = "brain.Event:2"`; each scalar is an event with
//! `wall_time` (field 1, double, seconds since 1970), `step` (field 2, int64) and a
//! `summary` (field 5) of one `Summary.Value` with `tag` (field 1) and `simple_value`
//! (field 2, float). A resumed run appends a `session_log` (field 7) of status START at its
//! first step, on which TensorBoard drops the points at and after that step that the
//! interrupted run had written.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::metrics::StepRecord;

/// Seconds since 1970, TensorBoard's `wall_time`.
pub fn unix_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The tag of the k-NN top-1 (in %) at `k` neighbours.
pub fn knn_tag(k: usize) -> String {
    format!("knn/top1_k{k}")
}

/// The scalars of one logged training iteration, by tag.
pub fn step_scalars(r: &StepRecord) -> Vec<(&'static str, f64)> {
    let mut out = vec![
        ("train/loss", r.loss),
        ("train/lr", r.lr),
        ("train/images_per_sec", r.samples_per_sec),
        ("train/skipped_files", r.skipped_files as f64),
        ("codes/entropy_of_mean_code", r.codes_entropy),
        ("codes/entropy_per_sample", r.sample_code_entropy),
        ("codes/prototypes_in_use", r.prototypes_in_use as f64),
    ];
    if let Some(d) = &r.diagnostics {
        out.extend([
            ("collapse/loss_minus_ln_k", d.loss_minus_ln_k),
            ("collapse/score_spread", d.score_spread),
            ("collapse/prototype_cosine", d.prototype_cosine),
            ("collapse/embedding_variance", d.embedding_variance),
            ("update/trunk", d.relative_update.trunk),
            ("update/projection_head", d.relative_update.projection_head),
            ("update/prototypes", d.relative_update.prototypes),
        ]);
    }
    out
}

/// An event file that grows while a run trains: every record is appended and flushed at
/// once, so TensorBoard shows the run as it goes.
#[derive(Debug)]
pub struct LiveEvents {
    path: PathBuf,
    out: BufWriter<File>,
}

impl LiveEvents {
    /// Starts the event file at `path` for a new run (replacing an earlier one), or, with
    /// `resumed_at` (the first step the resumed run logs), appends to it a session start at
    /// that step.
    pub fn open(path: &Path, resumed_at: Option<i64>) -> Result<Self> {
        let append = resumed_at.is_some() && path.exists();
        if !append {
            File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
        }
        // Always in append mode: the k-NN points are appended through a second handle.
        let mut events = Self::append(path)?;
        let first = match resumed_at {
            Some(step) if append => session_start_record(unix_time(), step),
            _ => file_version_record(unix_time()),
        };
        events.write(&first)?;
        Ok(events)
    }

    /// Appends to the event file at `path` (creating it empty when missing), e.g. for a
    /// k-NN point.
    pub fn append(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    /// Appends `scalars` at `step`, stamped with the time now, and flushes them.
    pub fn scalars<T: AsRef<str>>(&mut self, step: i64, scalars: &[(T, f64)]) -> Result<()> {
        let now = unix_time();
        let mut bytes = Vec::new();
        for (tag, value) in scalars {
            bytes.extend(scalar_record(now, step, tag.as_ref(), *value as f32));
        }
        self.write(&bytes)
    }

    /// Appends one logged iteration's scalars (at step iteration + 1, as TensorBoard
    /// counts).
    pub fn step(&mut self, record: &StepRecord) -> Result<()> {
        self.scalars(record.iteration as i64 + 1, &step_scalars(record))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .and_then(|_| self.out.flush())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = i as u32;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    };
    !bytes.iter().fold(!0u32, |crc, &b| {
        TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8)
    })
}

/// TFRecord's masked CRC of `bytes`.
pub fn masked_crc32c(bytes: &[u8]) -> u32 {
    crc32c(bytes).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// `data` framed as one TFRecord.
pub fn tf_record(data: &[u8]) -> Vec<u8> {
    let length = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc32c(&length).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

/// Appends a protobuf varint.
fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a length-delimited field (wire type 2).
fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, (field as u64) << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// An `Event` with `wall_time` and `step`, and `what` (already encoded fields) after them.
fn event(wall_time: f64, step: i64, what: &[u8]) -> Vec<u8> {
    let mut out = vec![0x09]; // field 1, 64-bit
    out.extend_from_slice(&wall_time.to_le_bytes());
    if step != 0 {
        out.push(0x10); // field 2, varint
        varint(&mut out, step as u64);
    }
    out.extend_from_slice(what);
    out
}

/// The first record of every event file: `file_version = "brain.Event:2"`.
pub fn file_version_record(wall_time: f64) -> Vec<u8> {
    let mut what = Vec::new();
    bytes_field(&mut what, 3, b"brain.Event:2");
    tf_record(&event(wall_time, 0, &what))
}

/// One scalar `value` under `tag` at `step`.
pub fn scalar_record(wall_time: f64, step: i64, tag: &str, value: f32) -> Vec<u8> {
    let mut summary_value = Vec::new();
    bytes_field(&mut summary_value, 1, tag.as_bytes());
    summary_value.push(0x15); // field 2, 32-bit
    summary_value.extend_from_slice(&value.to_le_bytes());
    let mut summary = Vec::new();
    bytes_field(&mut summary, 1, &summary_value);
    let mut what = Vec::new();
    bytes_field(&mut what, 5, &summary);
    tf_record(&event(wall_time, step, &what))
}

/// A `session_log` event of status START at `step`: TensorBoard drops what the file holds
/// at and after `step` (a resumed run's steps replace the interrupted run's).
pub fn session_start_record(wall_time: f64, step: i64) -> Vec<u8> {
    let mut what = Vec::new();
    bytes_field(&mut what, 7, &[0x08, 0x01]); // SessionLog { status (1): START (1) }
    tf_record(&event(wall_time, step, &what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_published_check_values() {
        // The CRC catalogue's check value, and RFC 3720 (iSCSI) B.4's 32-byte vectors.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn records_frame_their_data_with_masked_checksums() {
        let record = tf_record(b"abc");
        assert_eq!(record.len(), 8 + 4 + 3 + 4);
        assert_eq!(&record[..8], &3u64.to_le_bytes());
        let masked = |b: &[u8]| crc32c(b).rotate_right(15).wrapping_add(0xa282_ead8);
        assert_eq!(&record[8..12], &masked(&3u64.to_le_bytes()).to_le_bytes());
        assert_eq!(&record[12..15], b"abc");
        assert_eq!(&record[15..], &masked(b"abc").to_le_bytes());
    }

    #[test]
    fn a_scalar_event_has_the_protobuf_fields_of_tensorflow_event() {
        let record = scalar_record(1.5, 300, "loss", 0.25);
        let data = &record[12..record.len() - 4];
        let mut expected = vec![0x09];
        expected.extend_from_slice(&1.5f64.to_le_bytes());
        expected.extend_from_slice(&[0x10, 0xac, 0x02]); // step 300 as a varint
        // summary (5) { value (1) { tag (1) "loss", simple_value (2) 0.25 } }
        expected.extend_from_slice(&[0x2a, 13, 0x0a, 11, 0x0a, 4]);
        expected.extend_from_slice(b"loss");
        expected.push(0x15);
        expected.extend_from_slice(&0.25f32.to_le_bytes());
        assert_eq!(data, expected.as_slice());
        let version = file_version_record(2.0);
        let data = &version[12..version.len() - 4];
        assert_eq!(data[9], 0x1a, "file_version is field 3");
        assert_eq!(&data[11..], b"brain.Event:2");
    }

    #[test]
    fn a_session_start_is_field_7_with_status_start() {
        let record = session_start_record(3.0, 9);
        let data = &record[12..record.len() - 4];
        assert_eq!(&data[9..], &[0x10, 9, 0x3a, 2, 0x08, 0x01]);
    }
}
