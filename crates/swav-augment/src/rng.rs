//! Seeded random streams. Every consumer of randomness gets its own ChaCha8 stream keyed by
//! what it is about, so results never depend on thread scheduling or on the order in which
//! samples are processed.

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The generator behind every stream of the crate.
pub type StreamRng = ChaCha8Rng;

/// Tag in the last key word of the per-epoch shuffle stream (crop indices are small).
const SHUFFLE_DOMAIN: u64 = u64::MAX;
/// Tag in the last key word of the synthetic-image streams.
const SYNTHETIC_DOMAIN: u64 = u64::MAX - 1;
/// Tag in the last key word of the per-epoch shard streams.
const SHARD_DOMAIN: u64 = u64::MAX - 2;

/// A stream keyed by four 64-bit words (the 256-bit ChaCha key, little-endian words).
fn keyed_stream(words: [u64; 4]) -> StreamRng {
    let mut key = [0u8; 32];
    for (chunk, word) in key.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// The stream that draws the augmentation of crop `crop` of dataset sample `index` in `epoch`.
pub fn crop_stream(seed: u64, epoch: u64, index: u64, crop: u64) -> StreamRng {
    keyed_stream([seed, epoch, index, crop])
}

/// The stream that shuffles the dataset for `epoch`.
pub fn shuffle_stream(seed: u64, epoch: u64) -> StreamRng {
    keyed_stream([seed, epoch, u64::MAX, SHUFFLE_DOMAIN])
}

/// The stream that orders rank `rank`'s shards for `epoch` and then draws from its shuffle
/// buffer.
pub fn shard_stream(seed: u64, epoch: u64, rank: u64) -> StreamRng {
    keyed_stream([seed, epoch, rank, SHARD_DOMAIN])
}

/// The stream that draws synthetic image `index` of the split tagged `split`.
pub fn synthetic_stream(seed: u64, split: u64, index: u64) -> StreamRng {
    keyed_stream([seed, split, index, SYNTHETIC_DOMAIN])
}

/// Shuffles `items` in place with the Fisher-Yates algorithm (from the last position down,
/// each swapped with a uniform earlier-or-equal position). Written out rather than taken
/// from `rand::seq` so the permutation for a given stream can never change with a `rand`
/// release.
pub fn fisher_yates<T>(items: &mut [T], rng: &mut impl Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
}

/// A uniform `f64` in `[low, high)` (`low` when the range is empty).
pub fn uniform(rng: &mut impl Rng, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fisher_yates_is_a_seeded_permutation() {
        let mut a: Vec<usize> = (0..50).collect();
        let mut b = a.clone();
        fisher_yates(&mut a, &mut shuffle_stream(3, 1));
        fisher_yates(&mut b, &mut shuffle_stream(3, 1));
        assert_eq!(a, b);
        assert_ne!(a, (0..50).collect::<Vec<_>>());
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn streams_differ_by_every_key_word() {
        let base = crop_stream(1, 2, 3, 4).next_u64();
        assert_eq!(base, crop_stream(1, 2, 3, 4).next_u64());
        for other in [
            crop_stream(0, 2, 3, 4),
            crop_stream(1, 0, 3, 4),
            crop_stream(1, 2, 0, 4),
            crop_stream(1, 2, 3, 0),
            shuffle_stream(1, 2),
            synthetic_stream(1, 2, 3),
        ] {
            let mut other = other;
            assert_ne!(base, other.next_u64());
        }
    }
}
