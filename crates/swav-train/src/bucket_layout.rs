//! [`BucketLayout`]: which gradients travel together in one all-reduce.

/// DDP's default bucket size: 25 MiB of `f32` gradients per all-reduce.
pub const DEFAULT_BUCKET_CAP_MB: usize = 25;

/// Where one parameter's gradient sits in the buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSlot {
    /// The bucket.
    pub bucket: usize,
    /// The first element of the gradient in the bucket's flat buffer.
    pub offset: usize,
    /// The gradient's length.
    pub len: usize,
}

/// The parameters of one bucket and its flat length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Parameter indices (positions in the model's `params()`), in reverse order.
    pub params: Vec<usize>,
    /// Elements in the bucket.
    pub len: usize,
}

/// Gradients grouped into buckets of at most `cap` elements, filled in reverse parameter
/// order (the order in which backward finishes them, prototypes first, stem last), so the
/// first bucket is complete early in the backward pass and the last one at its end.
///
/// A tensor larger than the cap gets a bucket of its own; a cap of 0 gives one bucket per
/// tensor (one all-reduce per tensor, as without buckets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketLayout {
    buckets: Vec<Bucket>,
    slots: Vec<BucketSlot>,
}

impl BucketLayout {
    /// The layout of parameters of `lens` elements (in `params()` order) in buckets of at
    /// most `cap` elements.
    pub fn new(lens: &[usize], cap: usize) -> Self {
        let mut buckets = Vec::new();
        let mut slots = vec![
            BucketSlot {
                bucket: 0,
                offset: 0,
                len: 0,
            };
            lens.len()
        ];
        let mut open = Bucket {
            params: Vec::new(),
            len: 0,
        };
        for (index, &len) in lens.iter().enumerate().rev() {
            if !open.params.is_empty() && open.len + len > cap {
                buckets.push(std::mem::replace(
                    &mut open,
                    Bucket {
                        params: Vec::new(),
                        len: 0,
                    },
                ));
            }
            slots[index] = BucketSlot {
                bucket: buckets.len(),
                offset: open.len,
                len,
            };
            open.params.push(index);
            open.len += len;
        }
        if !open.params.is_empty() {
            buckets.push(open);
        }
        Self { buckets, slots }
    }

    /// The cap in elements for a cap of `megabytes` MiB of `f32`.
    pub fn cap_elements(megabytes: usize) -> usize {
        megabytes.saturating_mul(1 << 20) / std::mem::size_of::<f32>()
    }

    /// The buckets, in launch order.
    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    /// Where parameter `index`'s gradient goes.
    pub fn slot(&self, index: usize) -> BucketSlot {
        self.slots[index]
    }

    /// The number of buckets: all-reduces per step.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_fill_in_reverse_order_up_to_the_cap() {
        let layout = BucketLayout::new(&[4, 3, 2, 5, 1], 6);
        let params: Vec<&[usize]> = layout.buckets().iter().map(|b| &b.params[..]).collect();
        assert_eq!(params, [&[4, 3][..], &[2, 1][..], &[0][..]]);
        assert_eq!(
            layout.slot(1),
            BucketSlot {
                bucket: 1,
                offset: 2,
                len: 3
            }
        );
        assert_eq!(layout.buckets()[0].len, 6);
    }

    #[test]
    fn a_tensor_over_the_cap_gets_its_own_bucket_and_cap_zero_gives_one_per_tensor() {
        assert_eq!(BucketLayout::new(&[1, 10, 1], 4).len(), 3);
        assert_eq!(BucketLayout::new(&[3, 3, 3, 3], 0).len(), 4);
        assert!(BucketLayout::new(&[], 4).is_empty());
    }

    #[test]
    fn the_cap_counts_f32_elements() {
        assert_eq!(BucketLayout::cap_elements(25), 25 * 1024 * 1024 / 4);
        assert_eq!(BucketLayout::cap_elements(0), 0);
    }
}
