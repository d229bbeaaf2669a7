//! How large one optimiser step was relative to the weights, per parameter group.

use crate::param_group::ParamGroup;

/// `‖Δw‖ / ‖w‖` of one step for each parameter group.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct UpdateSizes {
    /// The ResNet trunk.
    pub trunk: f64,
    /// The projection head.
    pub projection_head: f64,
    /// The prototypes (0 while they are frozen).
    pub prototypes: f64,
}

/// Sums of squared norms per group, turned into [`UpdateSizes`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct UpdateNorms {
    weights: [f64; 3],
    updates: [f64; 3],
}

impl UpdateNorms {
    /// Adds one tensor: `‖w‖²` and `‖Δw‖²`.
    pub(crate) fn add(&mut self, group: ParamGroup, weight_sq: f64, update_sq: f64) {
        let i = group as usize;
        self.weights[i] += weight_sq;
        self.updates[i] += update_sq;
    }

    /// `‖Δw‖ / ‖w‖` per group (0 for a group without weight).
    pub(crate) fn sizes(&self) -> UpdateSizes {
        let ratio = |i: usize| {
            if self.weights[i] > 0.0 {
                (self.updates[i] / self.weights[i]).sqrt()
            } else {
                0.0
            }
        };
        UpdateSizes {
            trunk: ratio(ParamGroup::Trunk as usize),
            projection_head: ratio(ParamGroup::ProjectionHead as usize),
            prototypes: ratio(ParamGroup::Prototypes as usize),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_sizes_are_norm_ratios_per_group() {
        let mut norms = UpdateNorms::default();
        norms.add(ParamGroup::of("layer1.0.conv1.weight"), 3.0, 0.0003);
        norms.add(ParamGroup::of("conv1.weight"), 1.0, 0.0001);
        norms.add(ParamGroup::of("projection_head.0.weight"), 4.0, 0.04);
        let sizes = norms.sizes();
        assert!((sizes.trunk - 0.01).abs() < 1e-12);
        assert!((sizes.projection_head - 0.1).abs() < 1e-12);
        assert_eq!(sizes.prototypes, 0.0);
    }
}
