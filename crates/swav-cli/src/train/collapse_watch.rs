//! The collapse warning: once the loss has sat at `ln K` for a whole epoch after the
//! prototypes are released, say so once, with the likely cause read from the logged
//! [`Diagnostics`] and the settings that address it.

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
        }
    }
}

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

/// Warns once when the loss stays at `ln K` (the uniform, collapsed solution) for a whole
/// window of iterations after `watch_from`.
pub struct CollapseWatch {
    context: CollapseContext,
    uniform: f64,
    watch_from: u64,
    window: u64,
    stuck_since: Option<u64>,
    warned: bool,
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
            warned: false,
        }
    }

    /// Feeds one logged iteration; returns the warning to print, once.
    pub fn observe(
        &mut self,
        iteration: u64,
        loss: f64,
        diagnostics: Option<&Diagnostics>,
        sample_code_entropy: f64,
    ) -> Option<String> {
        if self.warned || iteration < self.watch_from {
            return None;
        }
        if (loss / self.uniform - 1.0).abs() > 0.005 {
            self.stuck_since = None;
            return None;
        }
        let since = *self.stuck_since.get_or_insert(iteration);
        if iteration - since < self.window {
            return None;
        }
        self.warned = true;
        let causes = diagnostics
            .map(|d| diagnose(d, sample_code_entropy, &self.context))
            .unwrap_or_default();
        let explanation = if causes.is_empty() {
            "No single cause stands out: try a smaller --epsilon, a lower --temperature, fewer --nmb-prototypes \
             or a queue, a longer --freeze-prototypes-niters or a lower --base-lr"
                .to_string()
        } else {
            format!("Likely: {}", causes.join("; "))
        };
        Some(format!(
            "warning: the loss has stayed at ln K = {:.4} since iteration {since}: SwAV has probably collapsed \
             (all samples on uniform codes). {explanation} (see docs/demo-recipe.md)",
            self.uniform
        ))
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
            watch.observe(2, ln_k, None, 0.0).is_none(),
            "before the watch starts"
        );
        assert!(watch.observe(10, ln_k, None, 0.0).is_none());
        assert!(
            watch.observe(12, 5.0, None, 0.0).is_none(),
            "learning resets the window"
        );
        assert!(watch.observe(13, ln_k, None, 0.0).is_none());
        let warning = watch.observe(18, ln_k, None, 0.0).unwrap();
        assert!(
            warning.contains("collapsed") && warning.contains("No single cause"),
            "{warning}"
        );
        assert!(watch.observe(30, ln_k, None, 0.0).is_none(), "only once");
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
