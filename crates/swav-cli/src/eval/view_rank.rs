//! The effective rank of a network's features of augmented, colour-free views: the
//! label-free score of the recipe probes.
//!
//! Each image gives two views drawn like SwAV's training crops (a random resized crop of
//! scale 0.2-1, a flip, the colour jitter of strength 1) and then turned grey. The score is
//! the effective rank ([`effective_rank`], RankMe) of the trunk features of all the views.
//! Measured on clean images, RankMe also counts the directions a network spends on colour
//! or on the exact pixels; on grey augmented views only what survives the augmentations
//! counts, which is what k-NN on the classes needs. On the recipe probes this ranked the
//! candidates as k-NN did where the rank of clean images did not (docs/recipe-choice.md has
//! the table).

use std::sync::Arc;

use anyhow::{Result, bail};
use swav_augment::dataset::Dataset;
use swav_augment::loader::{BadInputPolicy, LoaderConfig, MultiCropLoader};
use swav_augment::transform::config::{CropGroupConfig, MultiCropConfig};
use swav_augment::transform::multi_crop::MultiCropTransform;
use swav_nn::{Backend, SwavModel};

use super::effective_rank::effective_rank;
use super::features::TrunkEmbedder;

/// Views drawn of each image.
pub const VIEWS_PER_IMAGE: usize = 2;

/// The views' smallest crop, as a fraction of the image's area.
pub const VIEW_MIN_SCALE: f64 = 0.2;

/// Images per forward pass.
const BATCH: usize = 128;

/// The transform that draws the views: `size`-pixel crops, SwAV's flip and colour jitter,
/// always grey, never blurred or rotated.
fn view_transform(size: u32) -> Result<MultiCropTransform> {
    let config = MultiCropConfig {
        jitter_strength: 1.0,
        grayscale_probability: 1.0,
        blur_probability: 0.0,
        rotation_probability: 0.0,
        ..MultiCropConfig::with_crops(vec![CropGroupConfig {
            count: VIEWS_PER_IMAGE,
            size,
            min_scale: VIEW_MIN_SCALE,
            max_scale: 1.0,
        }])
    };
    Ok(MultiCropTransform::new(config)?)
}

/// The effective rank of `model`'s trunk features (running statistics) of
/// [`VIEWS_PER_IMAGE`] grey augmented `size`-pixel views of every image of `dataset`, drawn
/// from `seed`: the same views for the same seed. Unreadable images are left out; an error
/// when none is readable.
pub fn view_rank<B: Backend>(
    b: &mut B,
    model: &mut SwavModel<B>,
    dataset: Arc<dyn Dataset>,
    size: u32,
    seed: u64,
    workers: usize,
) -> Result<f64> {
    let loader = MultiCropLoader::new(
        dataset,
        view_transform(size)?,
        LoaderConfig {
            batch_size: BATCH,
            seed,
            rank: 0,
            world_size: 1,
            workers,
            prefetch: 2,
            drop_last: false,
            bad_input: BadInputPolicy::default(),
        },
    )?;
    let side = size as usize;
    let dim = model.feature_dim();
    let mut embedder = TrunkEmbedder::new(b, model, BATCH, side)?;
    let mut values = Vec::new();
    for batch in loader.epoch(0)? {
        let batch = batch?;
        let group = batch.group(0).expect("one resolution group");
        let n = group.batch();
        if n == 0 {
            // Every image of this batch was unreadable.
            continue;
        }
        let per_view = n * side * side * 3;
        for view in group.data().chunks_exact(per_view).take(VIEWS_PER_IMAGE) {
            embedder.embed(b, model, view, n, &mut values)?;
        }
    }
    let rows = values.len() / dim;
    if rows == 0 {
        bail!(
            "none of the images could be read ({})",
            loader.bad_input_summary()
        );
    }
    let matrix = ndarray::Array2::from_shape_vec((rows, dim), values).expect("rows × dim");
    Ok(effective_rank(matrix.view()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_views_are_grey_crops_of_the_requested_size() {
        let transform = view_transform(24).unwrap();
        let config = transform.config();
        assert_eq!(config.grayscale_probability, 1.0);
        assert_eq!(config.blur_probability, 0.0);
        assert_eq!(config.rotation_probability, 0.0);
        assert_eq!(transform.num_crops(), VIEWS_PER_IMAGE);
        assert_eq!(transform.crop_size(0), Some(24));
        assert_eq!(config.crops[0].min_scale, VIEW_MIN_SCALE);
    }
}
