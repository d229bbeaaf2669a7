//! The checkpoint file: safetensors framing, swav's format tag and its CRC-32.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swav_cli::checkpoint_file::CheckpointFile;

fuzz_target!(|data: &[u8]| {
    let _ = CheckpointFile::from_bytes(data);
});
