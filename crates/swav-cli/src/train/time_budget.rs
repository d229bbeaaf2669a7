//! `--time-budget`: how many epochs fit in what is left of a wall-clock budget, from the
//! speed the recipe probes measured. The probes train the first iterations of the run, so
//! after them the seconds per iteration and per evaluated image are known; the winner then
//! trains as many epochs as fit in the rest of the budget, with the time of the k-NN
//! evaluations (the curve's points and the final comparison with a random network) set
//! aside.

use serde::Serialize;

/// Share of the remaining time planned for: the rest absorbs the checkpoints, the loader's
/// warm-up and a machine that slows down.
pub const SAFETY: f64 = 0.95;

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
    /// epoch the winner is in (a run cannot end before the iterations it has trained).
    pub fn plan(self) -> BudgetPlan {
        let ipe = self.iters_per_epoch.max(1);
        let shortest = self.done_iterations / ipe + 1;
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
        let no_speed = BudgetInput {
            seconds_per_iteration: 0.0,
            ..input()
        };
        assert_eq!(no_speed.plan().epochs, 200 / 31 + 1);
    }
}
