//! A structural check that a JPEG file is complete: its marker segments and entropy-coded
//! scans can be walked from the start-of-image marker to the end-of-image marker.
//!
//! Entropy-coded data never contains a bare `0xFF` followed by a marker code (encoders
//! stuff `0xFF 0x00`; restart markers `0xFFD0..=0xFFD7` may appear), so a scan ends at the
//! first other marker. Embedded thumbnails live inside APPn segments, which are skipped by
//! length, so their own end-of-image markers are never mistaken for the file's.

/// Whether `data` holds a JPEG whose marker stream reaches the end-of-image marker.
pub fn jpeg_is_complete(data: &[u8]) -> bool {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return false;
    }
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
            0xD9 => return true,
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
        pos += length;
        if marker == 0xDA {
            // Start of scan: skip the entropy-coded data up to the next real marker.
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
        }
    }
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

    #[test]
    fn non_jpeg_is_rejected() {
        assert!(!jpeg_is_complete(b"\x89PNG\r\n\x1a\n...."));
    }
}
