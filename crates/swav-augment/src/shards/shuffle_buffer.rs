//! Shuffling a stream without an index: webdataset's shuffle buffer, seeded.
//!
//! The buffer holds up to `capacity` items. Once it is full, each new item goes in and a
//! uniformly drawn one comes out; at the end of the stream the rest come out in a drawn
//! order. An item can thus move up to about `capacity` places from where the stream had
//! it, so shards should be written in a shuffled order (`swav shard` does) and the buffer
//! should span several shards' worth of correlation. The draws come from one seeded
//! stream, so the order is a function of (seed, epoch, rank) alone.

use rand::RngExt;

use crate::rng::StreamRng;

/// A seeded shuffle buffer (see the module documentation).
#[derive(Debug)]
pub struct ShuffleBuffer<T> {
    items: Vec<T>,
    capacity: usize,
    rng: StreamRng,
}

impl<T> ShuffleBuffer<T> {
    /// An empty buffer of `capacity` items drawing from `rng`; a capacity of 0 or 1 passes
    /// items through in order.
    pub fn new(capacity: usize, rng: StreamRng) -> Self {
        Self {
            items: Vec::with_capacity(capacity.min(1 << 16)),
            capacity,
            rng,
        }
    }

    /// Adds `item`; once the buffer is full, returns a drawn item (possibly `item` itself).
    pub fn push(&mut self, item: T) -> Option<T> {
        if self.capacity <= 1 {
            return Some(item);
        }
        self.items.push(item);
        if self.items.len() < self.capacity {
            return None;
        }
        let drawn = self.rng.random_range(0..self.items.len());
        Some(self.items.swap_remove(drawn))
    }

    /// Takes the next item of the end of the stream, drawn from those left.
    pub fn pop(&mut self) -> Option<T> {
        if self.items.is_empty() {
            return None;
        }
        let drawn = self.rng.random_range(0..self.items.len());
        Some(self.items.swap_remove(drawn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::shard_stream;

    fn shuffled(capacity: usize, seed: u64) -> Vec<u32> {
        let mut buffer = ShuffleBuffer::new(capacity, shard_stream(seed, 0, 0));
        let mut out: Vec<u32> = (0..100).filter_map(|i| buffer.push(i)).collect();
        out.extend(std::iter::from_fn(|| buffer.pop()));
        out
    }

    #[test]
    fn every_item_comes_out_once_in_a_seeded_order() {
        let a = shuffled(16, 7);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(a, shuffled(16, 7));
        assert_ne!(a, shuffled(16, 8));
        assert_ne!(a, sorted);
    }

    #[test]
    fn a_capacity_of_one_keeps_the_order() {
        assert_eq!(shuffled(1, 7), (0..100).collect::<Vec<_>>());
        assert_eq!(shuffled(0, 7), (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn items_move_at_most_about_the_capacity_forward() {
        // An item leaves no earlier than it enters, so the first output is among the first
        // `capacity` inputs.
        assert!(shuffled(16, 3)[0] < 16);
    }
}
