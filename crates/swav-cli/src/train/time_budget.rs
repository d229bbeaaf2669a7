//! `--time-budget`: how many epochs fit in what is left of a wall-clock budget, from the
//! speed the recipe probes measured. The probes train the first iterations of the run, so
//! after them the seconds per iteration and per evaluated image are known; the winner then
//! trains as many epochs as fit in the rest of the budget, with the time of the k-NN
//! evaluations (the curve's points and the final comparison with a random network) set
//! aside. The run then checks the plan at every epoch end against the speed it really
//! trains at: when finishing would overrun the budget, it ends earlier
//! ([`BudgetPlan::replan`]).

use std::time::Instant;

use serde::Serialize;

/// Share of the remaining time planned for: the rest absorbs the checkpoints, the loader's
/// warm-up and a machine that slows down.
pub const SAFETY: f64 = 0.95;

/// Iterations a run trains before its own speed is trusted to shorten the plan: the first
/// epoch's loader start and first checkpoint would otherwise make it look slow (about 3
/// epochs of `--preset small-data` on 2,000 images).
pub const REPLAN_AFTER_ITERATIONS: u64 = 100;

/// What one run's budget decides, before the winner goes on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BudgetInput {
    /// The budget, in seconds from the command's start.
    pub budget_seconds: f64,
    /// Seconds already spent (start-up, probes, their scoring).
    pub spent_seconds: f64,
    /// Seconds one training iteration took in the probes.
    pub seconds_per_iteration: f64,
    /// Seconds one k-NN evaluation of the run takes (its train and val images, one network).
    pub seconds_per_evaluation: f64,
    /// Iterations per epoch.
    pub iters_per_epoch: u64,
    /// Iterations the winner has already trained (its probe's).
    pub done_iterations: u64,
    /// Evaluate k-NN every this many epochs while training (0: never).
    pub eval_every: u64,
    /// Whether the run ends with the k-NN comparison (trained and random: two evaluations).
    pub final_comparison: bool,
}

/// The plan: the run's epoch count under the budget (`recipe-choice.json`'s `time_budget`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BudgetPlan {
    /// What the plan was made from.
    #[serde(flatten)]
    pub input: BudgetInput,
    /// The epochs the run trains.
    pub epochs: u64,
    /// Seconds the plan expects the whole command to take.
    pub expected_seconds: f64,
    /// Whether even the shortest run (the winner's current epoch finished) overruns the budget.
    pub overrun: bool,
}

impl BudgetInput {
    /// Seconds from now to the end of a run of `epochs` epochs, evaluations included.
    fn seconds_to_finish(&self, epochs: u64) -> f64 {
        let iterations = (epochs * self.iters_per_epoch).saturating_sub(self.done_iterations);
        let mut evaluations = if self.final_comparison { 2 } else { 0 };
        if let Some(curve_points) = epochs.checked_div(self.eval_every) {
            // The last epoch's point is the final comparison's, not a second evaluation.
            let shared = self.final_comparison && epochs.is_multiple_of(self.eval_every);
            evaluations += curve_points - u64::from(shared && curve_points > 0);
        }
        iterations as f64 * self.seconds_per_iteration
            + evaluations as f64 * self.seconds_per_evaluation
    }

    /// The most epochs that finish within [`SAFETY`] of the time left, and at least the
    /// epochs already begun (a run cannot end before the iterations it has trained).
    pub fn plan(self) -> BudgetPlan {
        let ipe = self.iters_per_epoch.max(1);
        let shortest = self.done_iterations.div_ceil(ipe).max(1);
        let left = (self.budget_seconds - self.spent_seconds) * SAFETY;
        // An upper bound from the iterations alone, then down to the first that fits.
        let by_speed = if self.seconds_per_iteration > 0.0 {
            (self.done_iterations as f64 + left.max(0.0) / self.seconds_per_iteration) / ipe as f64
        } else {
            0.0
        };
        let mut epochs = (by_speed.floor() as u64).max(shortest);
        while epochs > shortest && self.seconds_to_finish(epochs) > left {
            epochs -= 1;
        }
        let expected = self.spent_seconds + self.seconds_to_finish(epochs);
        BudgetPlan {
            input: self,
            epochs,
            expected_seconds: expected,
            overrun: self.seconds_to_finish(epochs) > left,
        }
    }
}

impl BudgetPlan {
    /// At an epoch end, `elapsed` seconds after the command started with `done_iterations`
    /// trained at `seconds_per_iteration` (as measured by the run itself): the shorter plan
    /// to switch to when finishing `epochs` would overrun the budget, or `None` while it
    /// fits (or when no shorter run is left).
    pub fn replan(
        &self,
        elapsed: f64,
        done_iterations: u64,
        seconds_per_iteration: f64,
        epochs: u64,
    ) -> Option<BudgetPlan> {
        let now = BudgetInput {
            spent_seconds: elapsed,
            seconds_per_iteration,
            done_iterations,
            ..self.input
        };
        if elapsed + now.seconds_to_finish(epochs) <= now.budget_seconds {
            return None;
        }
        let shorter = now.plan();
        (shorter.epochs < epochs).then_some(shorter)
    }
}

/// A plan the run keeps to while it trains: the command's start and the plan made after the
/// probes.
#[derive(Debug, Clone, Copy)]
pub struct LiveBudget {
    /// When the command started.
    pub started: Instant,
    /// The plan the run is on.
    pub plan: BudgetPlan,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> BudgetInput {
        BudgetInput {
            budget_seconds: 900.0,
            spent_seconds: 150.0,
            seconds_per_iteration: 0.2,
            seconds_per_evaluation: 5.0,
            iters_per_epoch: 31,
            done_iterations: 200,
            eval_every: 0,
            final_comparison: true,
        }
    }

    #[test]
    fn the_epochs_fill_the_time_left_with_the_evaluations_set_aside() {
        let plan = input().plan();
        // (750 s * 0.95 - 10 s) / 0.2 s = 3512 more iterations; (200 + 3512) / 31 = 119.7.
        assert_eq!(plan.epochs, 119);
        assert!(!plan.overrun);
        assert!(plan.expected_seconds <= 900.0);
        let longer = input().seconds_to_finish(120);
        assert!(
            longer > 750.0 * SAFETY,
            "120 epochs would not fit: {longer}"
        );
    }

    #[test]
    fn curve_points_cost_time_and_the_last_one_is_the_final_comparison() {
        let every = BudgetInput {
            eval_every: 10,
            ..input()
        };
        assert_eq!(
            every.seconds_to_finish(20) - input().seconds_to_finish(20),
            5.0
        );
        assert_eq!(
            every.seconds_to_finish(21) - input().seconds_to_finish(21),
            10.0
        );
        assert!(every.plan().epochs < input().plan().epochs);
    }

    #[test]
    fn a_spent_budget_still_finishes_the_current_epoch_and_says_it_overruns() {
        let late = BudgetInput {
            spent_seconds: 1000.0,
            ..input()
        };
        let plan = late.plan();
        assert_eq!(plan.epochs, 200 / 31 + 1);
        assert!(plan.overrun);
        // At an epoch end the run may stop right there.
        let at_end = BudgetInput {
            done_iterations: 62,
            ..late
        };
        assert_eq!(at_end.plan().epochs, 2);
        let no_speed = BudgetInput {
            seconds_per_iteration: 0.0,
            ..input()
        };
        assert_eq!(no_speed.plan().epochs, 200 / 31 + 1);
    }

    #[test]
    fn a_run_slower_than_its_probes_ends_earlier_and_a_run_on_time_keeps_its_plan() {
        let plan = input().plan();
        assert_eq!(plan.epochs, 119);
        // Epoch 40 ends on schedule: nothing changes.
        let on_time = 150.0 + (40.0 * 31.0 - 200.0) * 0.2;
        assert_eq!(plan.replan(on_time, 40 * 31, 0.2, 119), None);
        // The run trains at 0.25 s/iteration, not 0.2: 119 epochs would end near 17 min.
        let late = 150.0 + (40.0 * 31.0 - 200.0) * 0.25;
        let shorter = plan
            .replan(late, 40 * 31, 0.25, 119)
            .expect("a shorter plan");
        assert!(
            shorter.epochs < 119 && shorter.epochs > 40,
            "{}",
            shorter.epochs
        );
        let left = 900.0 - late;
        let needed = (shorter.epochs * 31 - 40 * 31) as f64 * 0.25 + 10.0;
        assert!(needed <= left * SAFETY, "{needed} s in {left} s");
        // Its own check at the next epoch end, at the same speed, keeps it.
        let next = late + 31.0 * 0.25;
        assert_eq!(shorter.replan(next, 41 * 31, 0.25, shorter.epochs), None);
    }
}
