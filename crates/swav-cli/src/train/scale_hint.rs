//! The one line that tells a user training the ImageNet recipe on a small dataset that it
//! will probably collapse there, and what to use instead. The official recipe (2×224 crops,
//! 3000 prototypes, lr 4.8, hundreds of epochs over 1.28 M images) sits at `ln K` on a few
//! thousand small images; `--preset small-data` is the starting point made for them.

use swav_augment::dataset::Dataset;

use crate::config::PretrainConfig;

/// Fewer images than this is small data for the ImageNet recipe.
pub const SMALL_DATASET: usize = 50_000;
/// Images whose shorter side is below this many pixels are small for 224 px crops.
pub const SMALL_IMAGE_SIDE: u32 = 64;
/// Crops of at least this size mark an ImageNet-scale recipe.
const IMAGENET_CROP: usize = 96;

/// The hint for a run of `config` on `dataset` (its own `--data`), if it needs one.
pub fn scale_hint(config: &PretrainConfig, dataset: &dyn Dataset) -> Option<String> {
    let data = config.data.as_deref()?;
    let largest_crop = config.size_crops.iter().copied().max().unwrap_or(0);
    if largest_crop < IMAGENET_CROP {
        return None;
    }
    let images = dataset.len();
    let first_side = (0..images.min(8))
        .find_map(|i| dataset.load(i).ok())
        .map(|img| img.width().min(img.height()));
    let small_images = first_side.is_some_and(|side| side < SMALL_IMAGE_SIDE);
    if images >= SMALL_DATASET && !small_images {
        return None;
    }
    let size = first_side.map_or(String::new(), |side| format!(" (about {side} px)"));
    Some(format!(
        "note: {} holds {images} images{size}: the ImageNet recipe ({largest_crop} px crops, {} prototypes, lr {}) \
         will probably collapse on fewer than {SMALL_DATASET} images or under {SMALL_IMAGE_SIDE} px; \
         --preset small-data is made for such data (docs/collapse.md)",
        data.display(),
        config.nmb_prototypes,
        config.base_lr
    ))
}
