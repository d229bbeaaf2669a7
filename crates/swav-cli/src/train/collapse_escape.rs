//! Escaping a collapse (`--on-collapse adapt`): the run goes back to its last healthy epoch
//! end (or to its start when it never had one), changes the one setting the diagnosis points
//! to, and trains on. Every change is one line on stderr, one entry in the configuration's
//! `collapse_adaptations` (so `config.toml` and the checkpoint show it, and a resume keeps
//! it) and the `adaptation` field of the first metrics record after it. At most
//! [`MAX_ADAPTATIONS`] changes are made; after that the run goes on and warns.

use crate::config::PretrainConfig;

/// The most settings changes one run makes to escape collapse.
pub const MAX_ADAPTATIONS: usize = 3;

/// The smallest ε an adaptation sets (the stable Sinkhorn is exact there).
const MIN_EPSILON: f64 = 0.005;
/// The smallest τ an adaptation sets.
const MIN_TEMPERATURE: f64 = 0.03;

/// One change of settings against a collapse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// Sharper Sinkhorn codes: ε down to the official 0.05, then halved. Breaks the uniform
    /// fixed point, where codes carry no signal.
    SharperEpsilon,
    /// A sharper softmax: τ down to 0.1, then halved, when the scores are too flat for it.
    LowerTemperature,
    /// Half the learning rate (peak and final), when steps are large or the embeddings
    /// collapse to a point.
    LowerLearningRate,
    /// Prototypes frozen two epochs longer than where the run restarts, when they align.
    LongerFreeze,
}

impl Remedy {
    /// Every remedy, in code order.
    const ALL: [Remedy; 4] = [
        Self::SharperEpsilon,
        Self::LowerTemperature,
        Self::LowerLearningRate,
        Self::LongerFreeze,
    ];

    /// A small positive number that names the remedy in a collective (ranks agree on the
    /// largest).
    pub fn code(self) -> u8 {
        Self::ALL.iter().position(|&r| r == self).expect("listed") as u8 + 1
    }

    /// The remedy of a [`Self::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }

    /// Applies the remedy to `config` for a run restarting at global iteration `restart_at`
    /// with `iters_per_epoch`; returns what changed (`epsilon 0.05 -> 0.025`), or `None`
    /// when the setting is already at its limit.
    pub fn apply(
        self,
        config: &mut PretrainConfig,
        restart_at: u64,
        iters_per_epoch: u64,
    ) -> Option<String> {
        let change = |name: &str, old: f64, new: f64| format!("{name} {old} -> {new}");
        let text = match self {
            Self::SharperEpsilon => {
                let old = config.epsilon;
                let new = if old > 0.05 {
                    0.05
                } else {
                    (old / 2.0).max(MIN_EPSILON)
                };
                if new >= old {
                    return None;
                }
                config.epsilon = new;
                change("epsilon", old, new)
            }
            Self::LowerTemperature => {
                let old = config.temperature;
                let new = if old > 0.1 {
                    0.1
                } else {
                    (old / 2.0).max(MIN_TEMPERATURE)
                };
                if new >= old {
                    return None;
                }
                config.temperature = new;
                change("temperature", old, new)
            }
            Self::LowerLearningRate => {
                let old = config.base_lr;
                config.base_lr = old / 2.0;
                config.final_lr /= 2.0;
                change("base_lr", old, config.base_lr)
            }
            Self::LongerFreeze => {
                let old = config.freeze_prototypes_niters;
                let new = old.max(restart_at) + 2 * iters_per_epoch;
                config.freeze_prototypes_niters = new;
                change("freeze_prototypes_niters", old as f64, new as f64)
            }
        };
        config.collapse_adaptations.push(text.clone());
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presets::Preset;

    #[test]
    fn codes_round_trip_and_zero_is_none() {
        for r in Remedy::ALL {
            assert_eq!(Remedy::from_code(r.code()), Some(r));
        }
        assert_eq!(Remedy::from_code(0), None);
        assert_eq!(Remedy::from_code(9), None);
    }

    #[test]
    fn each_remedy_changes_its_setting_and_records_it() {
        let mut c = Preset::Defaults.config();
        c.epsilon = 100.0;
        c.temperature = 0.1;
        assert_eq!(
            Remedy::SharperEpsilon.apply(&mut c, 0, 10).as_deref(),
            Some("epsilon 100 -> 0.05")
        );
        assert_eq!(
            Remedy::SharperEpsilon.apply(&mut c, 0, 10).as_deref(),
            Some("epsilon 0.05 -> 0.025")
        );
        assert_eq!(
            Remedy::LowerTemperature.apply(&mut c, 0, 10).as_deref(),
            Some("temperature 0.1 -> 0.05")
        );
        let (lr, final_lr) = (c.base_lr, c.final_lr);
        Remedy::LowerLearningRate.apply(&mut c, 0, 10).unwrap();
        assert_eq!((c.base_lr, c.final_lr), (lr / 2.0, final_lr / 2.0));
        c.freeze_prototypes_niters = 100;
        assert_eq!(
            Remedy::LongerFreeze.apply(&mut c, 500, 10).as_deref(),
            Some("freeze_prototypes_niters 100 -> 520")
        );
        assert_eq!(c.collapse_adaptations.len(), 5);
        c.epsilon = MIN_EPSILON;
        assert_eq!(
            Remedy::SharperEpsilon.apply(&mut c, 0, 10),
            None,
            "at its limit"
        );
    }
}
