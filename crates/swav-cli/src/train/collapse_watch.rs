//! Collapse, caught early: once the loss has sat at `ln K` for a whole window (total
//! collapse: every sample on uniform codes), or the prototypes that win a sample have stayed
//! below [`PARTIAL_IN_USE_FRACTION`] of those a batch could use (partial collapse: the
//! embeddings fall into a few clusters), say so once, with the likely cause read from the
//! logged [`Diagnostics`], the settings that address it, and the [`Remedy`] an adapting run
//! applies.

use super::collapse_escape::Remedy;
use crate::config::PretrainConfig;
use swav_train::Diagnostics;

/// The settings a diagnosis weighs the numbers against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CollapseContext {
    /// Prototypes `K`.
    pub prototypes: usize,
    /// Softmax temperature τ.
    pub temperature: f64,
    /// Sinkhorn ε.
    pub epsilon: f64,
    /// Samples in one Sinkhorn problem without the queue (the global batch).
    pub global_batch: usize,
    /// Queue rows per assignment crop over all ranks (0: no queue).
    pub queue_rows: usize,
    /// Peak learning rate.
    pub base_lr: f64,
    /// Iterations with frozen prototypes.
    pub freeze_prototypes_niters: u64,
    /// Samples of one rank's batch (the most prototypes its codes can pick).
    pub batch: usize,
}

impl CollapseContext {
    /// The context of a run with `config` on `world` ranks.
    pub fn for_run(config: &PretrainConfig, world: usize, queue_rows_per_rank: usize) -> Self {
        Self {
            prototypes: config.nmb_prototypes,
            temperature: config.temperature,
            epsilon: config.epsilon,
            global_batch: config.batch_size * world,
            queue_rows: queue_rows_per_rank * world,
            base_lr: config.base_lr,
            freeze_prototypes_niters: config.freeze_prototypes_niters,
            batch: config.batch_size,
        }
    }
}

/// Below this fraction of `min(K, batch)` prototypes winning a sample, the codes use too few
/// clusters: partial collapse.
pub const PARTIAL_IN_USE_FRACTION: f64 = 0.4;
/// Within this relative distance of `ln K` the loss is at the uniform solution.
const AT_LN_K: f64 = 0.005;

/// Below this total variance (unit embeddings: at most 1) the embeddings are one point.
const COLLAPSED_EMBEDDING_VARIANCE: f64 = 0.05;
/// Above this mean pairwise cosine the prototypes are one direction.
const ALIGNED_PROTOTYPE_COSINE: f64 = 0.8;
/// Below this logit spread (score spread / τ) the softmax predictions are nearly uniform.
const FLAT_LOGIT_SPREAD: f64 = 0.5;
/// Above this fraction of `ln K` the per-sample code entropy means nearly uniform codes.
const UNIFORM_CODE_ENTROPY: f64 = 0.9;
/// Above this relative step the trunk's updates are large.
const LARGE_RELATIVE_UPDATE: f64 = 0.05;

/// The likely causes of a collapse and what to change, one clause each.
pub fn diagnose(d: &Diagnostics, sample_code_entropy: f64, c: &CollapseContext) -> Vec<String> {
    let ln_k = (c.prototypes as f64).ln();
    let mut causes = Vec::new();
    if d.embedding_variance < COLLAPSED_EMBEDDING_VARIANCE {
        causes.push(format!(
            "the embeddings of a batch have collapsed to nearly one point (variance {:.4} of at most 1): \
             lower the learning rate (--base-lr, now {}) or warm up longer (--warmup-epochs)",
            d.embedding_variance, c.base_lr
        ));
    }
    if d.prototype_cosine > ALIGNED_PROTOTYPE_COSINE {
        causes.push(format!(
            "the prototypes point the same way (mean pairwise cosine {:.3}): freeze them longer \
             (--freeze-prototypes-niters, now {}) or lower the learning rate (--base-lr, now {})",
            d.prototype_cosine, c.freeze_prototypes_niters, c.base_lr
        ));
    }
    let logit_spread = d.score_spread / c.temperature;
    if logit_spread < FLAT_LOGIT_SPREAD {
        causes.push(format!(
            "the scores differ too little across prototypes for the softmax (spread {:.4} / temperature {} = {:.3}): \
             lower the temperature (--temperature, now {})",
            d.score_spread, c.temperature, logit_spread, c.temperature
        ));
    }
    if sample_code_entropy > UNIFORM_CODE_ENTROPY * ln_k {
        let samples = c.global_batch + c.queue_rows;
        let mut clause = format!(
            "Sinkhorn's codes are nearly uniform (per-sample entropy {:.3} of ln K = {:.3}; spread / epsilon = {:.3}): \
             lower --epsilon (now {})",
            sample_code_entropy,
            ln_k,
            d.score_spread / c.epsilon,
            c.epsilon
        );
        if c.prototypes > samples {
            clause.push_str(&format!(
                ", or give each Sinkhorn call more samples than prototypes: {} prototypes for {} samples \
                 (fewer --nmb-prototypes, a larger batch, or a queue: --queue-length, --epoch-queue-starts)",
                c.prototypes, samples
            ));
        }
        causes.push(clause);
    }
    if d.relative_update.trunk > LARGE_RELATIVE_UPDATE {
        causes.push(format!(
            "each step moves the trunk by {:.1}% of its weights: lower the learning rate (--base-lr, now {})",
            100.0 * d.relative_update.trunk,
            c.base_lr
        ));
    }
    causes
}

/// The remedy the strongest sign points to, in the order: uniform codes (ε), flat logits
/// (τ), collapsed embeddings (learning rate), aligned prototypes (freeze), large steps
/// (learning rate); `None` when no sign stands out.
pub fn remedy_for(
    d: &Diagnostics,
    sample_code_entropy: f64,
    c: &CollapseContext,
) -> Option<Remedy> {
    let ln_k = (c.prototypes as f64).ln();
    if sample_code_entropy > UNIFORM_CODE_ENTROPY * ln_k {
        Some(Remedy::SharperEpsilon)
    } else if d.score_spread / c.temperature < FLAT_LOGIT_SPREAD {
        Some(Remedy::LowerTemperature)
    } else if d.embedding_variance < COLLAPSED_EMBEDDING_VARIANCE {
        Some(Remedy::LowerLearningRate)
    } else if d.prototype_cosine > ALIGNED_PROTOTYPE_COSINE {
        Some(Remedy::LongerFreeze)
    } else if d.relative_update.trunk > LARGE_RELATIVE_UPDATE {
        Some(Remedy::LowerLearningRate)
    } else {
        None
    }
}

/// Which collapse was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollapseKind {
    /// The loss sat at `ln K`: every code uniform.
    Total,
    /// Too few prototypes win a sample.
    Partial,
}

/// A collapse seen by the watch.
#[derive(Debug, Clone, PartialEq)]
pub struct CollapseVerdict {
    /// Total or partial.
    pub kind: CollapseKind,
    /// The first logged iteration of the window it lasted.
    pub since: u64,
    /// The warning line, with causes and knobs.
    pub warning: String,
    /// What an adapting run changes.
    pub remedy: Remedy,
}

/// One logged iteration's collapse signals.
#[derive(Debug, Clone, Copy)]
pub struct CollapseSignals<'a> {
    /// The global iteration.
    pub iteration: u64,
    /// The loss of the global batch.
    pub loss: f64,
    /// What explains a collapse, when measured.
    pub diagnostics: Option<&'a Diagnostics>,
    /// Mean per-sample code entropy.
    pub sample_code_entropy: f64,
    /// Prototypes that win at least one sample of the batch.
    pub prototypes_in_use: usize,
}

/// Watches the logged iterations from `watch_from` on and reports a collapse once, when its
/// signal has lasted a whole window of `window` iterations.
pub struct CollapseWatch {
    context: CollapseContext,
    uniform: f64,
    watch_from: u64,
    window: u64,
    stuck_since: Option<u64>,
    partial_since: Option<u64>,
    last_seen: Option<u64>,
    verdict: Option<CollapseKind>,
}

impl CollapseWatch {
    /// Watches from iteration `watch_from` on, over windows of `window` iterations.
    pub fn new(context: CollapseContext, watch_from: u64, window: u64) -> Self {
        Self {
            uniform: (context.prototypes as f64).ln(),
            context,
            watch_from,
            window: window.max(1),
            stuck_since: None,
            partial_since: None,
            last_seen: None,
            verdict: None,
        }
    }

    /// Feeds one logged iteration; returns the verdict, once.
    pub fn observe(&mut self, signals: &CollapseSignals<'_>) -> Option<CollapseVerdict> {
        let iteration = signals.iteration;
        if iteration < self.watch_from {
            return None;
        }
        self.last_seen = Some(iteration);
        let at_ln_k = (signals.loss / self.uniform - 1.0).abs() <= AT_LN_K;
        let usable = self.context.prototypes.min(self.context.batch) as f64;
        let few_in_use = (signals.prototypes_in_use as f64) < PARTIAL_IN_USE_FRACTION * usable;
        self.stuck_since = at_ln_k.then(|| self.stuck_since.unwrap_or(iteration));
        self.partial_since =
            (few_in_use && !at_ln_k).then(|| self.partial_since.unwrap_or(iteration));
        if self.verdict.is_some() {
            return None;
        }
        let (kind, since) = match (
            self.lasted(self.stuck_since),
            self.lasted(self.partial_since),
        ) {
            (Some(since), _) => (CollapseKind::Total, since),
            (None, Some(since)) => (CollapseKind::Partial, since),
            (None, None) => return None,
        };
        self.verdict = Some(kind);
        let causes = signals
            .diagnostics
            .map(|d| diagnose(d, signals.sample_code_entropy, &self.context))
            .unwrap_or_default();
        let remedy = signals
            .diagnostics
            .and_then(|d| remedy_for(d, signals.sample_code_entropy, &self.context))
            .unwrap_or(match kind {
                CollapseKind::Total => Remedy::SharperEpsilon,
                CollapseKind::Partial => Remedy::LowerLearningRate,
            });
        let explanation = if causes.is_empty() {
            "No single cause stands out: try a smaller --epsilon, a lower --temperature, fewer --nmb-prototypes \
             or a queue, a longer --freeze-prototypes-niters or a lower --base-lr"
                .to_string()
        } else {
            format!("Likely: {}", causes.join("; "))
        };
        let what = match kind {
            CollapseKind::Total => format!(
                "the loss has stayed at ln K = {:.4} since iteration {since}: SwAV has probably collapsed \
                 (all samples on uniform codes)",
                self.uniform
            ),
            CollapseKind::Partial => format!(
                "only {} of {} prototypes have won a sample since iteration {since}: SwAV has partly collapsed \
                 (the embeddings fall into a few clusters)",
                signals.prototypes_in_use, self.context.prototypes
            ),
        };
        Some(CollapseVerdict {
            kind,
            since,
            warning: format!("warning: {what}. {explanation} (see docs/demo-recipe.md)"),
            remedy,
        })
    }

    /// Whether the run looks healthy now: watched, and neither signal present at the last
    /// logged iteration.
    pub fn healthy(&self) -> bool {
        self.last_seen.is_some() && self.stuck_since.is_none() && self.partial_since.is_none()
    }

    /// The collapse the run is still in: its signal has lasted a whole window up to the last
    /// logged iteration (for the run's last lines).
    pub fn still_collapsed(&self) -> Option<CollapseKind> {
        if self.lasted(self.stuck_since).is_some() {
            Some(CollapseKind::Total)
        } else if self.lasted(self.partial_since).is_some() {
            Some(CollapseKind::Partial)
        } else {
            None
        }
    }

    /// `since` when the signal starting there has lasted a window by the last observation.
    fn lasted(&self, since: Option<u64>) -> Option<u64> {
        let last = self.last_seen?;
        since.filter(|&s| last - s >= self.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swav_train::UpdateSizes;

    fn context() -> CollapseContext {
        CollapseContext {
            prototypes: 3000,
            temperature: 0.1,
            epsilon: 0.05,
            global_batch: 256,
            queue_rows: 0,
            base_lr: 4.8,
            freeze_prototypes_niters: 313,
            batch: 256,
        }
    }

    fn signals(iteration: u64, loss: f64, prototypes_in_use: usize) -> CollapseSignals<'static> {
        CollapseSignals {
            iteration,
            loss,
            diagnostics: None,
            sample_code_entropy: 0.0,
            prototypes_in_use,
        }
    }

    fn healthy() -> Diagnostics {
        Diagnostics {
            loss_minus_ln_k: -1.0,
            score_spread: 0.2,
            prototype_cosine: 0.01,
            embedding_variance: 0.6,
            relative_update: UpdateSizes {
                trunk: 0.004,
                projection_head: 0.004,
                prototypes: 0.01,
            },
        }
    }

    #[test]
    fn collapse_is_reported_once_after_a_full_window() {
        let mut watch = CollapseWatch::new(context(), 10, 5);
        let ln_k = (3000f64).ln();
        assert!(
            watch.observe(&signals(2, ln_k, 200)).is_none(),
            "before the watch starts"
        );
        assert!(watch.observe(&signals(10, ln_k, 200)).is_none());
        assert!(
            watch.observe(&signals(12, 5.0, 200)).is_none(),
            "learning resets the window"
        );
        assert!(watch.healthy());
        assert!(watch.observe(&signals(13, ln_k, 200)).is_none());
        let verdict = watch.observe(&signals(18, ln_k, 200)).unwrap();
        assert_eq!((verdict.kind, verdict.since), (CollapseKind::Total, 13));
        assert_eq!(verdict.remedy, Remedy::SharperEpsilon);
        assert!(
            verdict.warning.contains("collapsed") && verdict.warning.contains("No single cause"),
            "{}",
            verdict.warning
        );
        assert!(
            watch.observe(&signals(30, ln_k, 200)).is_none(),
            "only once"
        );
        assert_eq!(watch.still_collapsed(), Some(CollapseKind::Total));
        assert!(!watch.healthy());
    }

    #[test]
    fn too_few_prototypes_in_use_is_a_partial_collapse() {
        // min(K, batch) = 256 usable: below 40 % (102) for a whole window.
        let mut watch = CollapseWatch::new(context(), 0, 5);
        assert!(watch.observe(&signals(0, 5.0, 150)).is_none());
        assert!(watch.observe(&signals(1, 5.0, 90)).is_none());
        assert!(watch.observe(&signals(3, 5.0, 120)).is_none(), "recovered");
        assert!(watch.observe(&signals(4, 5.0, 60)).is_none());
        let verdict = watch.observe(&signals(9, 5.0, 50)).unwrap();
        assert_eq!((verdict.kind, verdict.since), (CollapseKind::Partial, 4));
        assert_eq!(verdict.remedy, Remedy::LowerLearningRate);
        assert!(
            verdict.warning.contains("only 50 of 3000 prototypes"),
            "{}",
            verdict.warning
        );
    }

    #[test]
    fn a_healthy_run_has_no_cause() {
        assert!(diagnose(&healthy(), 3.0, &context()).is_empty());
    }

    #[test]
    fn each_sign_names_its_knob() {
        let c = context();
        let ln_k = (3000f64).ln();
        let cases: [(Diagnostics, f64, &str); 5] = [
            (
                Diagnostics {
                    embedding_variance: 0.001,
                    ..healthy()
                },
                3.0,
                "--base-lr",
            ),
            (
                Diagnostics {
                    prototype_cosine: 0.97,
                    ..healthy()
                },
                3.0,
                "--freeze-prototypes-niters",
            ),
            (
                Diagnostics {
                    score_spread: 0.01,
                    ..healthy()
                },
                3.0,
                "--temperature",
            ),
            (healthy(), 0.99 * ln_k, "--epsilon"),
            (
                Diagnostics {
                    relative_update: UpdateSizes {
                        trunk: 0.2,
                        ..healthy().relative_update
                    },
                    ..healthy()
                },
                3.0,
                "20.0% of its weights",
            ),
        ];
        for (d, entropy, knob) in cases {
            let causes = diagnose(&d, entropy, &c);
            assert_eq!(causes.len(), 1, "{causes:?}");
            assert!(causes[0].contains(knob), "{knob}: {}", causes[0]);
        }
        // More prototypes than samples per Sinkhorn call: fewer prototypes or a queue.
        let causes = diagnose(&healthy(), 0.99 * ln_k, &c);
        assert!(
            causes[0].contains("3000 prototypes for 256 samples")
                && causes[0].contains("--queue-length"),
            "{causes:?}"
        );
    }
}
