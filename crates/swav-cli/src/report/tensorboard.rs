//! TensorBoard event files: a run's scalars as `events.out.tfevents.*`, which TensorBoard
//! (and `tensorboard.backend.event_processing`) read.
//!
//! The format is TFRecord framing around serialized `tensorflow.Event` protocol buffers:
//! each record is `u64 length, u32 masked_crc32c(length), data, u32 masked_crc32c(data)`
//! (little-endian; CRC-32C, Castagnoli, masked as `rotr(crc, 15) + 0xa282ead8`). The first
//! event carries `file_version = "brain.Event:2"`; each scalar is an event with
//! `wall_time` (field 1, double), `step` (field 2, int64) and a `summary` (field 5) of one
//! `Summary.Value` with `tag` (field 1) and `simple_value` (field 2, float).

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::run_history::RunHistory;
use crate::train::run_folder::files;

/// The scalars of a run's log, as (tag, step, value, seconds since the run started).
fn scalars(history: &RunHistory) -> Vec<(String, i64, f32, f64)> {
    let mut out = Vec::new();
    for r in &history.records {
        let (step, time) = (r.iteration as i64 + 1, r.elapsed_s);
        let mut push =
            |tag: &str, value: f64| out.push((tag.to_string(), step, value as f32, time));
        push("train/loss", r.loss);
        push("train/lr", r.lr);
        push("train/images_per_sec", r.samples_per_sec);
        push("train/skipped_files", r.skipped_files as f64);
        push("codes/entropy_of_mean_code", r.codes_entropy);
        push("codes/entropy_per_sample", r.sample_code_entropy);
        push("codes/prototypes_in_use", r.prototypes_in_use as f64);
        if let Some(d) = &r.diagnostics {
            push("collapse/loss_minus_ln_k", d.loss_minus_ln_k);
            push("collapse/score_spread", d.score_spread);
            push("collapse/prototype_cosine", d.prototype_cosine);
            push("collapse/embedding_variance", d.embedding_variance);
            push("update/trunk", d.relative_update.trunk);
            push("update/projection_head", d.relative_update.projection_head);
            push("update/prototypes", d.relative_update.prototypes);
        }
    }
    for p in &history.knn {
        for t in &p.top1 {
            let tag = format!("knn/top1_k{}", t.k);
            out.push((tag, p.iteration as i64, (100.0 * t.top1) as f32, 0.0));
        }
    }
    out
}

/// Writes the run's scalars as a TensorBoard event file in its folder (replacing the one an
/// earlier report wrote); returns its path. `wall_time` is the seconds since the run (or
/// its latest resumption) started, so plot against steps or relative time.
pub fn write_events(history: &RunHistory) -> Result<PathBuf> {
    let path = history.dir.join(files::TENSORBOARD_EVENTS);
    let mut bytes = file_version_record(0.0);
    for (tag, step, value, time) in scalars(history) {
        bytes.extend(scalar_record(time, step, &tag, value));
    }
    swav_nn::write_atomic(&path, &bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
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
}
