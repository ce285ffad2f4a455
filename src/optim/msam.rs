//! m-SAM (Andriushchenko & Flammarion, *Towards Understanding Sharpness-Aware Minimization*,
//! ICML 2022): SAM with one ascent per micro-batch.
//!
//! On a finite sum `f = (1/N) Σ_i f_i`, a batch `γ` (the full set, or a drawn mini-batch) of
//! size `B` is split into `B/m` groups `S_j` of size `m` — a uniformly random partition: the
//! batch is shuffled first, then cut into consecutive groups — and
//!
//! `x ← x − η · (m/B) Σ_j ∇f_{S_j}(x + ρ u_j)`,  with
//! `u_j = ∇f_{S_j}(x)` (unnormalized, **m-USAM**) or `u_j = ∇f_{S_j}(x)/(‖∇f_{S_j}(x)‖ + ε)`
//! (normalized, **m-SAM**).
//!
//! `m = 1` is 1-SAM (per-example perturbations), `m = B` is ordinary USAM/SAM on the batch
//! ("n-SAM" when the batch is the full set). [`MSam::direction`] computes the bracket for one
//! point and allocates nothing (the workspace is reused); the shuffle is the caller's, so that
//! every algorithm of an ensemble can share one batch draw (see [`shuffle`]).
//!
//! [`MSam::full_direction`] is the full-batch case `m = B = N` computed from the objective's own
//! gradient `∇f` (any [`Landscape`], one gradient per point instead of `N` per-sample
//! gradients): `∇f(x + ρ u)` with `u = ∇f(x)` or `∇f(x)/(‖∇f(x)‖ + ε)` (`ρ = 0`: `∇f(x)`). It
//! also returns `f(x)`, which the first gradient pass yields for free on landscapes that
//! override [`Landscape::loss_grad_into`].

use crate::oracle::UniformBelow;

use super::NORM_EPS;
use crate::error::{Error, Result};
use crate::landscape::{FiniteSum, Landscape};

/// m-SAM's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MSam {
    /// Learning rate `η`.
    pub eta: f64,
    /// Ascent radius `ρ` (`0` gives SGD/GD on the batch).
    pub rho: f64,
    /// Micro-batch size `m` (must divide the batch size).
    pub m: usize,
    /// `true`: `u_j = ∇f_{S_j}/‖∇f_{S_j}‖` (m-SAM); `false`: `u_j = ∇f_{S_j}` (m-USAM).
    pub normalized: bool,
}

/// Scratch space of dimension `d`, allocated once.
#[derive(Debug, Clone)]
pub struct MSamWorkspace {
    g: Vec<f64>,
    y: Vec<f64>,
    tmp: Vec<f64>,
}

impl MSamWorkspace {
    /// Workspace for dimension `d`.
    pub fn new(d: usize) -> Self {
        Self {
            g: vec![0.0; d],
            y: vec![0.0; d],
            tmp: vec![0.0; d],
        }
    }
}

/// `out = (1/|S|) Σ_{i∈S} ∇f_i(x)`; `tmp` is scratch.
pub fn group_grad(f: &dyn FiniteSum, group: &[u32], x: &[f64], out: &mut [f64], tmp: &mut [f64]) {
    out.fill(0.0);
    for &i in group {
        f.sample_grad_into(i as usize, x, tmp);
        for (o, t) in out.iter_mut().zip(tmp.iter()) {
            *o += t;
        }
    }
    let inv = 1.0 / group.len() as f64;
    out.iter_mut().for_each(|o| *o *= inv);
}

/// Fisher–Yates shuffle of a batch (uniform over orderings), so consecutive groups form a
/// uniformly random partition even when the batch was drawn in a non-uniform order (Floyd's
/// algorithm gives uniform *sets*, not uniform positions).
pub fn shuffle<R: UniformBelow + ?Sized>(batch: &mut [u32], rng: &mut R) {
    for i in (1..batch.len()).rev() {
        let j = rng.below(i as u32 + 1) as usize;
        batch.swap(i, j);
    }
}

impl MSam {
    /// Checks `m ≥ 1` and `m | batch`; `field` names the micro-batch field in errors.
    pub fn check(&self, field: &str, batch: usize) -> Result<()> {
        if self.m == 0 || !batch.is_multiple_of(self.m) {
            return Err(Error::config(
                field,
                self.m,
                format!("must be ≥ 1 and divide the batch size {batch}"),
            ));
        }
        Ok(())
    }

    /// `out = (m/B) Σ_j ∇f_{S_j}(x + ρ u_j)` with `S_j = batch[j m .. (j+1) m]` (the batch is
    /// used in the given order: shuffle it first for a random partition).
    pub fn direction(
        &self,
        f: &dyn FiniteSum,
        batch: &[u32],
        x: &[f64],
        out: &mut [f64],
        ws: &mut MSamWorkspace,
    ) {
        debug_assert!(self.m >= 1 && batch.len().is_multiple_of(self.m));
        out.fill(0.0);
        let groups = batch.len() / self.m;
        for group in batch.chunks_exact(self.m) {
            group_grad(f, group, x, &mut ws.g, &mut ws.tmp);
            if self.rho != 0.0 {
                let scale = if self.normalized {
                    let n = ws.g.iter().map(|v| v * v).sum::<f64>().sqrt();
                    self.rho / (n + NORM_EPS)
                } else {
                    self.rho
                };
                for ((y, xi), gi) in ws.y.iter_mut().zip(x).zip(&ws.g) {
                    *y = xi + scale * gi;
                }
                group_grad(f, group, &ws.y, &mut ws.g, &mut ws.tmp);
            }
            for (o, gi) in out.iter_mut().zip(&ws.g) {
                *o += gi;
            }
        }
        let inv = 1.0 / groups as f64;
        out.iter_mut().for_each(|o| *o *= inv);
    }

    /// Full batch: `out = ∇f(x + ρ u)`, `u = ∇f(x)` (USAM) or `∇f(x)/(‖∇f(x)‖ + ε)` (SAM);
    /// `out = ∇f(x)` when `ρ = 0`. Returns `f(x)`. `m` is ignored (it is the whole set).
    /// Allocates nothing.
    pub fn full_direction(
        &self,
        f: &dyn Landscape,
        x: &[f64],
        out: &mut [f64],
        ws: &mut MSamWorkspace,
    ) -> f64 {
        if self.rho == 0.0 {
            return f.loss_grad_into(x, out);
        }
        let loss = f.loss_grad_into(x, &mut ws.g);
        let scale = if self.normalized {
            let n = ws.g.iter().map(|v| v * v).sum::<f64>().sqrt();
            self.rho / (n + NORM_EPS)
        } else {
            self.rho
        };
        for ((y, xi), gi) in ws.y.iter_mut().zip(x).zip(&ws.g) {
            *y = xi + scale * gi;
        }
        f.grad_into(&ws.y, out);
        loss
    }

    /// One full-batch step `x ← x − η · full_direction` (`dir` is scratch of dimension `d`);
    /// returns `f(x)` before the step.
    pub fn full_step(
        &self,
        f: &dyn Landscape,
        x: &mut [f64],
        dir: &mut [f64],
        ws: &mut MSamWorkspace,
    ) -> f64 {
        let loss = self.full_direction(f, x, dir, ws);
        self.apply(x, dir);
        loss
    }

    /// `x ← x − η · dir` (the update of a direction computed beforehand).
    pub fn apply(&self, x: &mut [f64], dir: &[f64]) {
        for (xi, di) in x.iter_mut().zip(dir.iter()) {
            *xi -= self.eta * di;
        }
    }

    /// One step `x ← x − η · direction` (`dir` is scratch of dimension `d`).
    pub fn step(
        &self,
        f: &dyn FiniteSum,
        batch: &[u32],
        x: &mut [f64],
        dir: &mut [f64],
        ws: &mut MSamWorkspace,
    ) {
        self.direction(f, batch, x, dir, ws);
        for (xi, di) in x.iter_mut().zip(dir.iter()) {
            *xi -= self.eta * di;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landscape::{Landscape, LeastSquares};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn problem() -> LeastSquares {
        LeastSquares::synthetic(8, 3, 0.5, 4).unwrap()
    }

    #[test]
    fn m_equal_batch_is_usam_and_sam_on_the_batch() {
        let f = problem();
        let x = [0.3, -0.7, 1.1];
        let batch: Vec<u32> = (0..8).collect();
        let mut ws = MSamWorkspace::new(3);
        let (mut out, mut g, mut y, mut want) = ([0.0; 3], [0.0; 3], [0.0; 3], [0.0; 3]);
        for normalized in [false, true] {
            let alg = MSam {
                eta: 0.1,
                rho: 0.2,
                m: 8,
                normalized,
            };
            alg.direction(&f, &batch, &x, &mut out, &mut ws);
            // Full batch = f itself: ∇f(x + ρ u), u = ∇f or ∇f/‖∇f‖.
            f.grad_into(&x, &mut g);
            let n = g.iter().map(|v| v * v).sum::<f64>().sqrt();
            let s = if normalized {
                0.2 / (n + NORM_EPS)
            } else {
                0.2
            };
            for i in 0..3 {
                y[i] = x[i] + s * g[i];
            }
            f.grad_into(&y, &mut want);
            for i in 0..3 {
                assert!((out[i] - want[i]).abs() < 1e-12, "{out:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn full_direction_equals_the_full_batch_bracket() {
        // Same maths, different summation order: agreement to rounding.
        let f = problem();
        let x = [0.3, -0.7, 1.1];
        let batch: Vec<u32> = (0..8).collect();
        let mut ws = MSamWorkspace::new(3);
        let (mut a, mut b) = ([0.0; 3], [0.0; 3]);
        for (rho, normalized) in [(0.0, false), (0.2, false), (0.2, true)] {
            let alg = MSam {
                eta: 0.1,
                rho,
                m: 8,
                normalized,
            };
            alg.direction(&f, &batch, &x, &mut a, &mut ws);
            let loss = alg.full_direction(&f, &x, &mut b, &mut ws);
            assert_eq!(loss, f.loss(&x));
            for i in 0..3 {
                assert!((a[i] - b[i]).abs() < 1e-12, "{a:?} vs {b:?}");
            }
            let (mut x1, mut x2, mut dir) = (x, x, [0.0; 3]);
            alg.step(&f, &batch, &mut x1, &mut dir, &mut ws);
            alg.full_step(&f, &mut x2, &mut dir, &mut ws);
            for i in 0..3 {
                assert!((x1[i] - x2[i]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn m_one_averages_per_example_ascents() {
        let f = problem();
        let x = [0.3, -0.7, 1.1];
        let batch = [5u32, 2, 7, 0];
        let alg = MSam {
            eta: 0.1,
            rho: 0.3,
            m: 1,
            normalized: false,
        };
        let mut ws = MSamWorkspace::new(3);
        let mut out = [0.0; 3];
        alg.direction(&f, &batch, &x, &mut out, &mut ws);
        let mut want = [0.0; 3];
        let (mut g, mut y, mut gy) = ([0.0; 3], [0.0; 3], [0.0; 3]);
        for &i in &batch {
            f.sample_grad_into(i as usize, &x, &mut g);
            for k in 0..3 {
                y[k] = x[k] + 0.3 * g[k];
            }
            f.sample_grad_into(i as usize, &y, &mut gy);
            for k in 0..3 {
                want[k] += gy[k] / 4.0;
            }
        }
        for k in 0..3 {
            assert!((out[k] - want[k]).abs() < 1e-12);
        }
        // ρ = 0: plain batch gradient.
        let sgd = MSam { rho: 0.0, ..alg };
        sgd.direction(&f, &batch, &x, &mut out, &mut ws);
        let mut tmp = [0.0; 3];
        group_grad(&f, &batch, &x, &mut want, &mut tmp);
        for k in 0..3 {
            assert!((out[k] - want[k]).abs() < 1e-12);
        }
    }

    #[test]
    fn shuffle_is_uniform_over_positions() {
        // Each of 4 items lands in each of 4 positions with probability ¼: over 40 000
        // shuffles a count has standard deviation √(40000·¼·¾) ≈ 87, so ±500 (≈ 5.8 sd) can
        // only fail for a biased shuffle (e.g. an off-by-one that never moves the last item).
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut counts = [[0u32; 4]; 4];
        for _ in 0..40_000 {
            let mut b = [0u32, 1, 2, 3];
            shuffle(&mut b, &mut rng);
            for (pos, &item) in b.iter().enumerate() {
                counts[item as usize][pos] += 1;
            }
        }
        for row in counts {
            for c in row {
                assert!((c as i64 - 10_000).abs() < 500, "{counts:?}");
            }
        }
    }

    #[test]
    fn micro_batch_must_divide_the_batch() {
        let alg = MSam {
            eta: 0.1,
            rho: 0.1,
            m: 3,
            normalized: false,
        };
        let e = alg.check("micro_batch", 8).unwrap_err().to_string();
        assert!(
            e.contains("micro_batch") && e.contains('3') && e.contains('8'),
            "{e}"
        );
        assert!(alg.check("micro_batch", 9).is_ok());
    }
}
