//! The `.npy` matrix reader of `swav assign --embeddings/--prototypes`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = swav_cli::npy::parse_matrix(data);
});
