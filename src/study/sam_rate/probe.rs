//! Shared pieces of the two Theorem-2 parts: the fused loss/gradient/variance oracle, random
//! unit directions, mini-batch draws, and the variance probes.
//!
//! **How `σ²` is estimated.** Assumption (A1) asks for `σ² ≥ sup_w V(w)`,
//! `V(w) = (1/n) Σ_i ‖∇f_i(w) − ∇f(w)‖²` (the variance of one uniformly drawn sample's
//! gradient). We evaluate `V` exactly (all `n` samples) at (i) iterates along every path and
//! (ii) probe points `w = r·u` for each configured radius `r` and random unit directions `u`;
//! the largest value seen is `σ̂²`. It is a **lower** estimate of the supremum, so the bound
//! built from it is smaller than the theorem's: using it can only make a pass harder. Each
//! landscape also has an analytic **upper** bound on `sup V` (used for the fail side).

use rand::{Rng, RngExt};
use rand_distr::{Distribution, StandardNormal};

use super::config::ProbeConfig;
use crate::ensemble::rng::aux_rng;
use crate::landscape::{FiniteSum, LogisticRidge, SigmoidLoss};

/// A finite sum that returns `f`, `∇f` and the per-sample gradient variance in one pass.
pub trait VarianceOracle: FiniteSum {
    /// `(f(w), V(w))`, `out = ∇f(w)`.
    fn loss_grad_variance(&self, w: &[f64], out: &mut [f64]) -> (f64, f64);
}

impl VarianceOracle for SigmoidLoss {
    fn loss_grad_variance(&self, w: &[f64], out: &mut [f64]) -> (f64, f64) {
        SigmoidLoss::loss_grad_variance(self, w, out)
    }
}

impl VarianceOracle for LogisticRidge {
    fn loss_grad_variance(&self, w: &[f64], out: &mut [f64]) -> (f64, f64) {
        LogisticRidge::loss_grad_variance(self, w, out)
    }
}

/// A uniformly random unit vector in `ℝ^d` (normalised Gaussian).
pub fn unit_vector<R: Rng + ?Sized>(d: usize, rng: &mut R) -> Vec<f64> {
    loop {
        let v: Vec<f64> = (0..d).map(|_| StandardNormal.sample(rng)).collect();
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if n > 1e-12 {
            return v.into_iter().map(|x| x / n).collect();
        }
    }
}

/// The start `w₀ = radius · u` (`u` from the stream `purpose` of the master seed; the origin
/// for radius 0).
pub fn start(d: usize, radius: f64, seed: u64, purpose: &str) -> Vec<f64> {
    if radius == 0.0 {
        return vec![0.0; d];
    }
    let mut rng = aux_rng(seed, purpose, 0);
    unit_vector(d, &mut rng)
        .into_iter()
        .map(|x| radius * x)
        .collect()
}

/// Fills `batch` with indices drawn uniformly **with replacement** from `0..n`, so that the
/// batch-mean gradient has variance exactly `V(w)/b` (the `σ²/b` of the theorem).
pub fn draw_batch<R: Rng + ?Sized>(batch: &mut [u32], n: usize, rng: &mut R) {
    for b in batch.iter_mut() {
        *b = rng.random_range(0..n as u32);
    }
}

/// The largest `V(w)` over the probe points, and a description of where it was attained.
pub fn probe_variance(
    f: &dyn VarianceOracle,
    probes: &ProbeConfig,
    seed: u64,
    purpose: &str,
) -> (f64, String) {
    let d = f.dim();
    let mut g = vec![0.0; d];
    let mut best = (f64::NEG_INFINITY, String::new());
    let mut rng = aux_rng(seed, purpose, 0);
    for &r in &probes.radii {
        let count = if r == 0.0 { 1 } else { probes.directions };
        for k in 0..count {
            let w: Vec<f64> = if r == 0.0 {
                vec![0.0; d]
            } else {
                unit_vector(d, &mut rng)
                    .into_iter()
                    .map(|x| r * x)
                    .collect()
            };
            let (_, v) = f.loss_grad_variance(&w, &mut g);
            if v > best.0 {
                best = if r == 0.0 {
                    (v, "probe w = 0 (the origin)".to_string())
                } else {
                    (v, format!("probe ‖w‖ = {r} (direction {k})"))
                };
            }
        }
    }
    best
}
