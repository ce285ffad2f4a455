//! One training run: full-batch GD / SAM / USAM on the ReLU net from a given initialisation,
//! through [`MSam::full_direction`] and [`MSam::apply`] (`θ ← θ − η_t ∇L(θ + ρ u)`), until the
//! loss at the current iterate is `≤ loss_target`, the step budget is spent, or the run
//! diverges. The loss at the iterate comes from the direction's first gradient pass.
//!
//! Step `t = 1, 2, …`: compute `L(θ_{t−1})`; stop if it is `≤ loss_target` (success), not
//! finite or `> divergence_loss` (diverged); otherwise take the step with `η_t` from the
//! schedule. (The authors' notebook tests the loss of the last forward pass, which for SAM is
//! the loss at the *perturbed* point; we test the loss at the iterate itself, for every method.)
//!
//! Along the way the kink count is recorded at steps `{1, 2, 5}·10^k` and the first time the
//! loss falls below each of `10^{k/4}` (four levels per decade), so kinks can be compared at
//! equal training loss.

use serde::Serialize;

use super::config::{KinkRule, KinksConfig, MethodConfig};
use super::count::{count, merge, Kink};
use crate::landscape::ReluNet1d;
use crate::optim::msam::{MSam, MSamWorkspace};

/// Work units reported to the progress callback at a time.
pub const PROGRESS_CHUNK: usize = 10_000;

/// A snapshot along a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TracePoint {
    /// Steps taken.
    pub step: usize,
    /// `L(θ)` there.
    pub loss: f64,
    /// Kinks there.
    pub kinks: usize,
    /// Why it was recorded: a step checkpoint (`"step"`), the first time below a loss level
    /// (`"loss"`, with the level), or the end of the run (`"final"`).
    pub reason: &'static str,
    /// The loss level crossed (for `reason = "loss"`).
    pub level: Option<f64>,
}

/// The outcome of one (seed, method) run.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Seed number.
    pub seed: usize,
    /// Method name.
    pub method: String,
    /// Steps taken.
    pub steps: usize,
    /// `L(θ)` at the end.
    pub final_loss: f64,
    /// Stopped because the loss reached the target.
    pub reached_target: bool,
    /// Stopped because the loss blew up (never averaged in).
    pub diverged: bool,
    /// Breakpoints strictly inside the data range, before merging.
    pub breakpoints_in_range: usize,
    /// Kinks (counted groups).
    pub kink_count: usize,
    /// Every merged group inside the range (counted or not).
    pub groups: Vec<Kink>,
    /// Snapshots along the run.
    pub trace: Vec<TracePoint>,
    /// Final parameters `[w | b | a]` (for the figures and re-analysis).
    pub theta: Vec<f64>,
}

/// `(x_min, x_max)` of the data.
pub fn data_range(net: &ReluNet1d) -> (f64, f64) {
    let xs = net.xs();
    let lo = xs.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

fn kinks_of(net: &ReluNet1d, th: &[f64], rule: &KinkRule) -> Vec<Kink> {
    merge(&net.breakpoints(th), data_range(net), rule)
}

/// Trains one method from `theta0`; `progress` receives steps in chunks (and the unused rest of
/// the budget at the end, so every run reports exactly `max_steps`).
pub fn train(
    net: &ReluNet1d,
    c: &KinksConfig,
    method: &MethodConfig,
    seed: usize,
    theta0: &[f64],
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> RunRecord {
    let d = theta0.len();
    let mut th = theta0.to_vec();
    let (mut dir, mut ws) = (vec![0.0; d], MSamWorkspace::new(d));
    let rule = &c.kinks;
    let mut trace = Vec::new();
    let mut next_checkpoint = 1usize;
    let mut next_level_k = 8i32; // 10^{8/4} = 100
    let lowest_level_k = if c.loss_target > 0.0 {
        (4.0 * c.loss_target.log10()).ceil() as i32
    } else {
        -60
    };
    let (mut reached, mut diverged) = (false, false);
    let mut steps = 0usize;
    let mut loss;
    let mut reported = 0usize;
    loop {
        // The direction at θ_t and, from the same first gradient pass, L(θ_t).
        let alg = MSam {
            eta: method.schedule.eta(c.lr_max, steps + 1, c.max_steps),
            rho: method.rho,
            m: net.xs().len(),
            normalized: method.normalized,
        };
        loss = alg.full_direction(net, &th, &mut dir, &mut ws);
        if !loss.is_finite() || loss > c.divergence_loss {
            diverged = true;
            break;
        }
        // Loss levels crossed since the last step (possibly several at once).
        while next_level_k >= lowest_level_k && loss <= 10f64.powf(next_level_k as f64 / 4.0) {
            trace.push(TracePoint {
                step: steps,
                loss,
                kinks: count(&kinks_of(net, &th, rule)),
                reason: "loss",
                level: Some(10f64.powf(next_level_k as f64 / 4.0)),
            });
            next_level_k -= 1;
        }
        if steps == next_checkpoint {
            trace.push(TracePoint {
                step: steps,
                loss,
                kinks: count(&kinks_of(net, &th, rule)),
                reason: "step",
                level: None,
            });
            next_checkpoint = next_after(next_checkpoint);
        }
        if loss <= c.loss_target {
            reached = true;
            break;
        }
        if steps == c.max_steps {
            break;
        }
        steps += 1;
        alg.apply(&mut th, &dir);
        if steps.is_multiple_of(PROGRESS_CHUNK) {
            if let Some(p) = progress {
                p(PROGRESS_CHUNK as u64);
            }
            reported += PROGRESS_CHUNK;
        }
    }
    if let Some(p) = progress {
        p((c.max_steps - reported) as u64);
    }
    let groups = kinks_of(net, &th, rule);
    let kink_count = count(&groups);
    let (lo, hi) = data_range(net);
    let breakpoints_in_range = net
        .breakpoints(&th)
        .iter()
        .filter(|b| b.x > lo && b.x < hi)
        .count();
    trace.push(TracePoint {
        step: steps,
        loss,
        kinks: kink_count,
        reason: "final",
        level: None,
    });
    RunRecord {
        seed,
        method: method.name.clone(),
        steps,
        final_loss: loss,
        reached_target: reached,
        diverged,
        breakpoints_in_range,
        kink_count,
        groups,
        trace,
        theta: th,
    }
}

/// The next step checkpoint after `k` in the sequence 1, 2, 5, 10, 20, 50, …
fn next_after(k: usize) -> usize {
    let mut decade = 1usize;
    while decade * 10 <= k {
        decade *= 10;
    }
    match k / decade {
        1 => 2 * decade,
        2..=4 => 5 * decade,
        _ => 10 * decade,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_are_one_two_five() {
        let mut k = 1;
        let mut seen = vec![];
        while k <= 1000 {
            seen.push(k);
            k = next_after(k);
        }
        assert_eq!(seen, [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]);
    }
}
