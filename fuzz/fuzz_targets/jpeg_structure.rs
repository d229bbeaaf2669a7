//! The JPEG marker-stream walk that refuses truncated files.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = swav_augment::dataset::jpeg_structure::jpeg_is_complete(data);
});
