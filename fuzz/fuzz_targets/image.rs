//! Decoding an image file as every data loader does: format detection, the JPEG structure
//! check, then the decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = swav_augment::dataset::decode::decode_image(data, std::path::Path::new("fuzzed"));
});
