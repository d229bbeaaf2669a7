//! Writes a grid of synthetic images (one row per class) to a PNG, to look at the dataset.
//!
//! `cargo run --release -p swav-augment --example synthetic_grid -- OUT.png [SIZE] [PER_CLASS]
//! [mono] [upright] [plain]`: the last three select the easier settings
//! (`monochrome`, `max_rotation_degrees = 15`, `plain_background`).

use swav_augment::dataset::{Dataset, SyntheticConfig, SyntheticDataset, SyntheticSplit};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .ok_or("usage: synthetic_grid OUT.png [SIZE] [PER_CLASS] [mono] [upright] [plain]")?;
    let size: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(32);
    let per_class: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(8);
    let easier: Vec<String> = args.collect();
    let has = |word: &str| easier.iter().any(|a| a == word);
    let classes = 10;
    let data = SyntheticDataset::new(
        SyntheticConfig {
            image_size: size,
            num_classes: classes,
            images_per_class: per_class,
            seed: 0,
            monochrome: has("mono"),
            max_rotation_degrees: if has("upright") { 15 } else { 180 },
            plain_background: has("plain"),
        },
        SyntheticSplit::Train,
    )?;
    let scale = 4;
    let cell = size * scale;
    let mut grid = image::RgbImage::new(cell * per_class as u32, cell * classes as u32);
    for i in 0..data.len() {
        let img = data.load(i)?;
        let (class, col) = (i % classes, i / classes);
        for y in 0..cell {
            for x in 0..cell {
                let p = img.pixel(x / scale, y / scale).unwrap_or([0, 0, 0]);
                grid.put_pixel(
                    col as u32 * cell + x,
                    class as u32 * cell + y,
                    image::Rgb(p),
                );
            }
        }
    }
    grid.save(&out)?;
    Ok(())
}
