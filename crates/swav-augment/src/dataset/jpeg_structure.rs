//! A structural check that a JPEG file is complete: its marker segments and entropy-coded
//! scans can be walked from the start-of-image marker to the end-of-image marker.
//!
//! Entropy-coded data never contains a bare `0xFF` followed by a marker code (encoders
//! stuff `0xFF 0x00`; restart markers `0xFFD0..=0xFFD7` may appear), so a scan ends at the
//! first other marker. Embedded thumbnails live inside APPn segments, which are skipped by
//! length, so their own end-of-image markers are never mistaken for the file's.

/// Whether `data` holds a JPEG whose marker stream reaches the end-of-image marker, with at
/// least one bit of entropy-coded data per 8×8 block its Huffman-coded frame declares (the
/// least a scan can spend on a block's DC coefficient): a frame header claiming more
/// pixels than the scans can have coded is damaged, and the decoder would fill it with grey.
pub fn jpeg_is_complete(data: &[u8]) -> bool {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return false;
    }
    let mut declared_blocks = 0u64;
    let mut scan_bytes = 0u64;
    let mut pos = 2;
    loop {
        // Find the next marker prefix; tolerate stray bytes between segments as decoders do.
        while pos < data.len() && data[pos] != 0xFF {
            pos += 1;
        }
        // Skip fill bytes (any number of 0xFF).
        while pos < data.len() && data[pos] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = data.get(pos) else {
            return false;
        };
        pos += 1;
        match marker {
            0xD9 => return scan_bytes.saturating_mul(8) >= declared_blocks,
            0x00 | 0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        let Some(length) = data
            .get(pos..pos + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
        else {
            return false;
        };
        if length < 2 || pos + length > data.len() {
            return false;
        }
        if matches!(marker, 0xC0..=0xC2) {
            // Baseline, extended or progressive Huffman frame.
            declared_blocks = frame_blocks(&data[pos + 2..pos + length]);
        }
        pos += length;
        if marker == 0xDA {
            // Start of scan: skip the entropy-coded data up to the next real marker.
            let scan_start = pos;
            loop {
                while pos < data.len() && data[pos] != 0xFF {
                    pos += 1;
                }
                match data.get(pos + 1) {
                    None => return false,
                    Some(0x00) | Some(0xD0..=0xD7) | Some(0xFF) => pos += 1,
                    Some(_) => break,
                }
            }
            scan_bytes += (pos - scan_start) as u64;
        }
    }
}

/// The 8×8 blocks of every component of a frame header's body (precision, height, width,
/// components with their sampling factors); 0 when the height is left to a later marker or
/// the body is malformed (the decoder reports those).
fn frame_blocks(body: &[u8]) -> u64 {
    let (Some(&[_, h0, h1, w0, w1, count]), Some(components)) = (
        body.get(..6).and_then(|b| <&[u8; 6]>::try_from(b).ok()),
        body.get(6..),
    ) else {
        return 0;
    };
    let height = u64::from(u16::from_be_bytes([h0, h1]));
    let width = u64::from(u16::from_be_bytes([w0, w1]));
    let sampling = || {
        components
            .chunks_exact(3)
            .take(usize::from(count))
            .map(|c| (u64::from(c[1] >> 4), u64::from(c[1] & 0x0F)))
    };
    let h_max = sampling().map(|s| s.0).max().unwrap_or(0);
    let v_max = sampling().map(|s| s.1).max().unwrap_or(0);
    if h_max == 0 || v_max == 0 {
        return 0;
    }
    sampling()
        .map(|(h, v)| {
            let columns = (width * h).div_ceil(h_max);
            let rows = (height * v).div_ceil(v_max);
            columns.div_ceil(8) * rows.div_ceil(8)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, an APP0 segment holding a fake thumbnail end marker, SOS with stuffed and
    /// restart bytes, EOI.
    fn tiny_jpeg_like() -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        v.extend([0xFF, 0xE0, 0x00, 0x06, 0xFF, 0xD9, 0x00, 0x00]);
        v.extend([0xFF, 0xDA, 0x00, 0x04, 0x01, 0x02]);
        v.extend([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56]);
        v.extend([0xFF, 0xD9]);
        v
    }

    #[test]
    fn complete_stream_is_accepted() {
        assert!(jpeg_is_complete(&tiny_jpeg_like()));
    }

    #[test]
    fn every_truncation_is_rejected() {
        let full = tiny_jpeg_like();
        for n in 0..full.len() {
            assert!(
                !jpeg_is_complete(&full[..n]),
                "prefix of {n} bytes accepted"
            );
        }
    }

    /// SOI, a baseline frame of `width`×`height` with one component, a scan of
    /// `scan_bytes` bytes, EOI.
    fn frame_with_scan(width: u16, height: u16, scan_bytes: usize) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08];
        v.extend(height.to_be_bytes());
        v.extend(width.to_be_bytes());
        v.extend([0x01, 0x01, 0x11, 0x00]);
        v.extend([0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
        v.extend(std::iter::repeat_n(0x55, scan_bytes));
        v.extend([0xFF, 0xD9]);
        v
    }

    #[test]
    fn a_frame_larger_than_its_scans_can_code_is_rejected() {
        // 64×64 pixels: 64 blocks need at least 8 bytes.
        assert!(jpeg_is_complete(&frame_with_scan(64, 64, 8)));
        assert!(!jpeg_is_complete(&frame_with_scan(64, 64, 7)));
        // Found by fuzzing: 16 400×784 pixels declared over a few hundred bytes.
        assert!(!jpeg_is_complete(&frame_with_scan(16_400, 784, 300)));
        // A height left to a later DNL marker is not bounded here.
        assert!(jpeg_is_complete(&frame_with_scan(16_400, 0, 1)));
    }

    #[test]
    fn non_jpeg_is_rejected() {
        assert!(!jpeg_is_complete(b"\x89PNG\r\n\x1a\n...."));
    }
}
