//! Where discrete full-batch SAM stalls near a saddle, on several spectra.
//!
//! Near the saddle of `f = ½ xᵀHx` (eigen-coordinates `y = Qᵀx`, here `H` diagonal) the ascent
//! `ρ ∇f/‖∇f‖` has fixed length, so `x ← x − ηH(x + ρ ∇f/‖∇f‖)` does not reach `0`. The state
//! ends up on the eigendirection `e_j` of the **largest `|λ_i|`** (positive or negative; the
//! other coordinates are multiplied by `≈ 1 − 2λ_i²/λ_j²` per step, which contracts iff
//! `|λ_i| < |λ_j|`), where the map is one-dimensional:
//!
//! `y ← β y − c sign(y)`, `β = 1 − ηλ_j`, `c = ηρ|λ_j|`.
//!
//! Its sign-flipping 2-cycle `±a` has `a = c/(1 + β) = ηρ|λ_j| / (2 − ηλ_j)`. For `λ_j > 0`
//! (`β < 1`) the cycle attracts. For `λ_j < 0` (`β > 1`) it repels, but `[−c, c]` is forward
//! invariant and the orbit wanders in it, flipping sign on most steps. Either way the mean
//! distance follows from invariance, `E|y| = E|β|y| − c|`: with every step flipping,
//! `E|y| = c/(1 + β)` exactly; each non-flipping step adds at most `2(β − 1)c/(1 + β)`. So the
//! stall distance is `ηρ max_i|λ_i| / 2 · (1 + O(η max_i|λ_i|))`.
//!
//! An older statement, `ηρ min_{λ<0}|λ|`, agrees with this only when
//! `max_i|λ_i| = 2 min_{λ<0}|λ|` (e.g. `H = diag(1, −0.5)`); the default configuration therefore
//! checks spectra where the two differ by 25 %–200 %.
//!
//! Each case runs one deterministic path of the discrete algorithm (the same engine as every
//! other part) and records the tail mean of `‖x‖` (the last `classify.tail_fraction` of the
//! steps), the share of `‖x_T‖` along `e_j`, and the fraction of tail steps on which `y_j`
//! changes sign (1 for the attracting 2-cycle), which shows where the stall sits.

use super::config::{max_abs, min_negative};
use super::StallReport;
use crate::ensemble::{BlockView, Dynamics, Ensemble, Observer, Start, System};
use crate::error::Result;
use crate::landscape::Quadratic;
use crate::linalg::Vector;
use crate::optim::{AlgorithmKind, Discrete};
use crate::oracle::Oracle;

/// The amplitude of the sign-flipping 2-cycle along an eigendirection with eigenvalue
/// `lambda`: `ηρ|λ| / (2 − ηλ)` (attracting for `λ > 0`; for `λ < 0` the mean of `|y|` over the
/// orbit, up to the non-flipping steps).
pub fn two_cycle_amplitude(eta: f64, rho: f64, lambda: f64) -> f64 {
    eta * rho * lambda.abs() / (2.0 - eta * lambda)
}

struct StallObserver {
    steps: usize,
    tail_from: usize,
    /// Index of the largest-`|λ|` eigendirection.
    j: usize,
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct StallAcc {
    tail_sum: f64,
    tail_n: usize,
    flips: usize,
    prev_j: f64,
    last: Vec<f64>,
    escaped: bool,
}

impl Observer for StallObserver {
    type Acc = StallAcc;
    fn new_acc(&self) -> StallAcc {
        StallAcc::default()
    }
    fn on_save(&self, _acc: &mut StallAcc, _save: usize, _t: f64, _view: &BlockView) {}
    fn on_step(&self, acc: &mut StallAcc, k: usize, _t: f64, view: &BlockView) {
        if !view.alive[0][0] {
            acc.escaped = true;
            return;
        }
        let x = view.states[0].column(0);
        if k >= self.tail_from {
            acc.tail_sum += x.norm();
            acc.tail_n += 1;
            if x[self.j] * acc.prev_j < 0.0 {
                acc.flips += 1;
            }
        }
        acc.prev_j = x[self.j];
        if k == self.steps {
            acc.last = x.iter().copied().collect();
        }
    }
    fn merge(&self, total: &mut StallAcc, block: StallAcc) {
        // One path, hence one block: the block's record is the total.
        *total = block;
    }
}

impl super::SaddleStudy {
    pub(super) fn run_stall(
        &self,
        level: &mut u64,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<Vec<StallReport>> {
        let c = &self.config;
        let Some(sc) = &c.stall else {
            return Ok(Vec::new());
        };
        let eta = c.eta;
        let tail_len =
            ((sc.steps as f64 * c.classify.tail_fraction).round() as usize).clamp(1, sc.steps);
        let mut out = Vec::new();
        for (i, case) in sc.cases.iter().enumerate() {
            let obs = StallObserver {
                steps: sc.steps,
                tail_from: sc.steps + 1 - tail_len,
                j: largest_abs(&case.eigenvalues),
            };
            let f = Quadratic::from_spectrum(&case.eigenvalues, None)?;
            let systems = [System {
                label: format!("sam#stall{i}"),
                dynamics: Dynamics::Discrete(Discrete {
                    kind: AlgorithmKind::Sam,
                    eta,
                    rho: case.rho,
                }),
            }];
            let start = Start::Point(Vector::from_column_slice(&case.start));
            let ens = Ensemble {
                landscape: &f,
                oracle: &Oracle::FullBatch,
                eta,
                steps: sc.steps,
                save_every: sc.steps,
                systems: &systems,
                paths: 1,
                block_size: 1,
                seed: c.seed,
                level: *level,
                start: &start,
                divergence_bound: c.classify.divergence_bound,
            };
            *level += 1;
            let acc = ens.run(&obs, progress).acc;
            out.push(self.stall_report(case, &acc));
        }
        Ok(out)
    }

    fn stall_report(&self, case: &super::StallCase, acc: &StallAcc) -> StallReport {
        let eta = self.config.eta;
        let lam = &case.eigenvalues;
        let j = largest_abs(lam);
        let predicted = eta * case.rho * max_abs(lam) / 2.0;
        let old = eta * case.rho * min_negative("stall", lam).expect("validated");
        let measured = if acc.escaped || acc.tail_n == 0 {
            f64::INFINITY
        } else {
            acc.tail_sum / acc.tail_n as f64
        };
        let norm_t = acc.last.iter().map(|v| v * v).sum::<f64>().sqrt();
        let share = if acc.escaped || norm_t == 0.0 {
            f64::NAN
        } else {
            acc.last[j].abs() / norm_t
        };
        StallReport {
            eigenvalues: lam.clone(),
            rho: case.rho,
            start: case.start.clone(),
            steps: self.config.stall.as_ref().map_or(0, |s| s.steps),
            tail_mean_norm: measured,
            predicted,
            relative_error: measured / predicted - 1.0,
            two_cycle_amplitude: two_cycle_amplitude(eta, case.rho, lam[j]),
            old_formula: old,
            old_relative_error: measured / old - 1.0,
            cycle_eigenvalue: lam[j],
            cycle_share: share,
            flip_fraction: if acc.tail_n == 0 {
                f64::NAN
            } else {
                acc.flips as f64 / acc.tail_n as f64
            },
            escaped: acc.escaped,
        }
    }
}

/// Index of the eigenvalue of largest `|λ|` (the first one on ties).
fn largest_abs(lam: &[f64]) -> usize {
    let mut j = 0;
    for (i, v) in lam.iter().enumerate() {
        if v.abs() > lam[j].abs() {
            j = i;
        }
    }
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 2-cycle amplitude is a fixed point of the map `y ↦ y − ηλ y − ηρ|λ| sign(y)` composed
    /// with itself, and `≈ ηρ|λ|/2`; checked against the map for positive and negative `λ`.
    #[test]
    fn two_cycle_is_a_period_two_orbit() {
        let (eta, rho) = (0.01, 0.1);
        for lambda in [1.0, 3.0, -2.0, -0.2] {
            let a = two_cycle_amplitude(eta, rho, lambda);
            let step = |y: f64| y - eta * lambda * y - eta * rho * lambda.abs() * y.signum();
            let b = step(a);
            // b = −a up to rounding (~1e-19 on values ~1e-3).
            assert!((b + a).abs() < 1e-15, "λ = {lambda}: {a} → {b}");
            assert!((step(b) - a).abs() < 1e-15);
            // Relative to ηρ|λ|/2: 1/(1 − ηλ/2) − 1 ≈ ηλ/2, at most 1.5 % here.
            let rel = a / (eta * rho * lambda.abs() / 2.0) - 1.0;
            assert!(
                (rel - eta * lambda / 2.0).abs() < 1e-3,
                "λ = {lambda}: {rel}"
            );
        }
    }

    /// For `λ < 0` the 2-cycle repels, yet the orbit stays in `[−c, c]` and its mean `|y|` is
    /// the cycle's amplitude up to the bound `2(β − 1)c/(1 + β)` (module docs): 1-D map,
    /// `λ = −2`, `η = 0.01`, `ρ = 0.1`, 20 000 steps, tail = last quarter.
    #[test]
    fn negative_curvature_orbit_has_the_cycle_mean() {
        let (eta, rho, lambda) = (0.01, 0.1, -2.0);
        let (beta, c) = (1.0 - eta * lambda, eta * rho * f64::abs(lambda));
        let a = two_cycle_amplitude(eta, rho, lambda);
        let mut y = 0.0013_f64;
        let (mut sum, mut n, mut max) = (0.0, 0, 0.0_f64);
        for k in 0..20_000 {
            y = beta * y - c * y.signum();
            if k >= 15_000 {
                sum += y.abs();
                n += 1;
                max = max.max(y.abs());
            }
        }
        let mean = sum / n as f64;
        assert!(max <= c * (1.0 + 1e-12), "left [−c, c]: {max}");
        assert!(mean >= a * (1.0 - 1e-3), "{mean} < {a}");
        assert!(mean <= a + 2.0 * (beta - 1.0) * c / (1.0 + beta), "{mean}");
    }
}
