//! The candidate recipes `--preset small-data` probes before it trains
//! ([`crate::train::recipe_choice`]): each is one change to the augmentations of the configuration
//! it starts from, aimed at one way a recipe fails on data it was not tuned on.

use crate::config::PretrainConfig;

/// A candidate recipe: a change to a base configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecipeCandidate {
    /// The base configuration as it is.
    Plain,
    /// Nine crops in ten greyed and stronger colour jitter (strength 1): for data where
    /// colour or brightness is what two crops of an image share most easily.
    #[value(name = "grey-crops")]
    GreyCrops,
    /// Crops of at least half the image: for sparse images (thin strokes, small objects) where
    /// small crops are often empty.
    #[value(name = "large-crops")]
    LargeCrops,
    /// Every crop turned by a random angle: for data where orientation carries no class
    /// information (objects seen from above, shapes in any pose).
    #[value(name = "rotated-crops")]
    RotatedCrops,
}

impl RecipeCandidate {
    /// Every candidate, in the order they are probed (and preferred on a tie).
    pub const ALL: [RecipeCandidate; 4] = [
        Self::Plain,
        Self::GreyCrops,
        Self::LargeCrops,
        Self::RotatedCrops,
    ];

    /// The candidate's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::GreyCrops => "grey-crops",
            Self::LargeCrops => "large-crops",
            Self::RotatedCrops => "rotated-crops",
        }
    }

    /// The candidate with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// What the candidate changes, in the configuration's key names.
    pub fn change(self) -> &'static str {
        match self {
            Self::Plain => "nothing",
            Self::GreyCrops => "grayscale_probability 0.9, color_jitter_strength 1.0",
            Self::LargeCrops => "min_scale_crops 0.5 (first group)",
            Self::RotatedCrops => "rotation_probability 1.0, rotation_degrees 180",
        }
    }

    /// Applies the candidate's change to `config` and records its name there.
    pub fn apply(self, config: &mut PretrainConfig) {
        match self {
            Self::Plain => {}
            Self::GreyCrops => {
                config.grayscale_probability = 0.9;
                config.color_jitter_strength = 1.0;
            }
            Self::LargeCrops => {
                if let Some(min) = config.min_scale_crops.first_mut() {
                    *min = min.max(0.5);
                }
                if let Some(max) = config.max_scale_crops.first_mut() {
                    *max = max.max(0.5);
                }
            }
            Self::RotatedCrops => {
                config.rotation_probability = 1.0;
                config.rotation_degrees = 180.0;
            }
        }
        config.chosen_recipe = self.name().to_string();
        config.recipe_probe_iterations = 0;
    }

    /// Applies the candidate as `--recipe NAME` does: its change, then `flags` (the settings
    /// the user gave as flags), which win over it. The probes and a resume that re-applies
    /// the chosen recipe both go through here, so each gives the run of `--recipe NAME`.
    pub fn apply_under_flags(
        self,
        config: &mut PretrainConfig,
        flags: &dyn Fn(&mut PretrainConfig),
    ) {
        self.apply(config);
        flags(config);
        // The flags also hold `--recipe-probe-iterations`: the candidate's run probes nothing.
        config.chosen_recipe = self.name().to_string();
        config.recipe_probe_iterations = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presets::Preset;

    #[test]
    fn every_candidate_is_valid_named_and_changes_what_it_says() {
        let base = Preset::SmallData.config();
        for candidate in RecipeCandidate::ALL {
            assert_eq!(
                RecipeCandidate::from_name(candidate.name()),
                Some(candidate)
            );
            let mut c = base.clone();
            candidate.apply(&mut c);
            c.validate().expect("valid");
            assert_eq!(c.chosen_recipe, candidate.name());
            assert_eq!(c.recipe_probe_iterations, 0);
            let unchanged = PretrainConfig {
                chosen_recipe: base.chosen_recipe.clone(),
                recipe_probe_iterations: base.recipe_probe_iterations,
                ..c.clone()
            };
            assert_eq!(unchanged == base, candidate == RecipeCandidate::Plain);
        }
        let mut c = base.clone();
        RecipeCandidate::LargeCrops.apply(&mut c);
        assert_eq!((c.min_scale_crops[0], c.max_scale_crops[0]), (0.5, 1.0));
        assert_eq!(RecipeCandidate::from_name("nope"), None);
    }

    #[test]
    fn flags_win_over_the_candidate_and_it_still_probes_nothing() {
        let mut c = Preset::SmallData.config();
        let flags = |c: &mut PretrainConfig| {
            c.min_scale_crops = vec![0.3];
            c.recipe_probe_iterations = 3;
        };
        RecipeCandidate::LargeCrops.apply_under_flags(&mut c, &flags);
        assert_eq!(c.min_scale_crops, [0.3]);
        assert_eq!(c.max_scale_crops[0], 1.0);
        assert_eq!(
            (c.chosen_recipe.as_str(), c.recipe_probe_iterations),
            ("large-crops", 0)
        );
        let mut grey = Preset::SmallData.config();
        RecipeCandidate::GreyCrops.apply_under_flags(&mut grey, &flags);
        assert_eq!(grey.grayscale_probability, 0.9);
    }
}
