//! The WebDataset shard reader: the input is a whole tar file, counted from its headers
//! and then streamed into samples, each sample's image, class and member list read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swav_augment::shards::{count_samples, read_samples};

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("swav-fuzz-{}-shard.tar", std::process::id()));
    std::fs::write(&path, data).expect("writing the scratch file");
    let _ = count_samples(&path);
    let _ = read_samples(&path, |sample| {
        let _ = (sample.image(), sample.label(), sample.extensions());
        std::ops::ControlFlow::Continue(())
    });
});
