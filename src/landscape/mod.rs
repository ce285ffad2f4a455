//! Loss landscapes `f : ℝ^d → ℝ` with analytic gradient, Hessian and Hessian–vector product.
//!
//! A landscape answers point queries on slices (`x: &[f64]` of length `d`) and batched queries
//! on blocks of paths (`xs: d × P`, one path per column). The batched defaults loop over the
//! columns; landscapes whose structure allows it override them with one matrix–matrix product
//! per call (the quadratic: `∇f(X) = H X`), which is what makes the ensemble engine fast.
//!
//! Finite sums `f = (1/N) Σ_i f_i` additionally expose per-sample gradients and Hessian–vector
//! products through [`FiniteSum`], so the subsampling oracle draws real mini-batches.

pub mod classification;
pub mod datasets;
pub mod dln;
pub mod hyperbolic_entropy;
pub mod least_squares;
pub mod logistic_ridge;
pub mod net;
pub mod quadratic;
pub mod relu_net;
pub mod sigmoid_loss;
pub mod two_basin;

use crate::linalg::Matrix;

pub use classification::Classification;
pub use dln::{DiagonalLinearNetwork, EffectiveInit, SparseRegression};
pub use least_squares::LeastSquares;
pub use logistic_ridge::LogisticRidge;
pub use net::{NetLoss, SigmoidNet};
pub use quadratic::Quadratic;
pub use relu_net::{Breakpoint, ReluInit, ReluNet1d};
pub use sigmoid_loss::SigmoidLoss;
pub use two_basin::{Basin, TwoBasin, TwoBasinLandscape, WarpedDoubleWell};

/// A twice-differentiable objective.
pub trait Landscape: Send + Sync {
    /// Dimension `d` of the parameter space.
    fn dim(&self) -> usize;
    /// `f(x)`.
    fn loss(&self, x: &[f64]) -> f64;
    /// `out = ∇f(x)`.
    fn grad_into(&self, x: &[f64], out: &mut [f64]);
    /// `out = ∇f(x)`; returns `f(x)`. The default calls `grad_into` and `loss`; landscapes whose
    /// gradient pass yields the value anyway override it (one pass instead of two).
    fn loss_grad_into(&self, x: &[f64], out: &mut [f64]) -> f64 {
        self.grad_into(x, out);
        self.loss(x)
    }
    /// `out = ∇²f(x) v`.
    fn hess_vec_into(&self, x: &[f64], v: &[f64], out: &mut [f64]);
    /// The full Hessian `∇²f(x)` (allocates; not for hot loops).
    fn hessian(&self, x: &[f64]) -> Matrix;
    /// A one-line human description (printed in reports).
    fn describe(&self) -> String;

    /// `out[j] = f(xs[:, j])`.
    fn loss_batch(&self, xs: &Matrix, out: &mut [f64]) {
        let d = self.dim();
        for (j, o) in out.iter_mut().enumerate().take(xs.ncols()) {
            *o = self.loss(&xs.as_slice()[j * d..(j + 1) * d]);
        }
    }
    /// `out[:, j] = ∇f(xs[:, j])`.
    fn grad_batch(&self, xs: &Matrix, out: &mut Matrix) {
        let d = self.dim();
        let (xs, out) = (xs.as_slice(), out.as_mut_slice());
        for (x, o) in xs.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            self.grad_into(x, o);
        }
    }
    /// `out[:, j] = ∇²f(xs[:, j]) vs[:, j]`.
    fn hess_vec_batch(&self, xs: &Matrix, vs: &Matrix, out: &mut Matrix) {
        let d = self.dim();
        let (xs, vs, out) = (xs.as_slice(), vs.as_slice(), out.as_mut_slice());
        for ((x, v), o) in xs
            .chunks_exact(d)
            .zip(vs.chunks_exact(d))
            .zip(out.chunks_exact_mut(d))
        {
            self.hess_vec_into(x, v, o);
        }
    }
    /// `Some(H)` when the Hessian is the same everywhere and `∇f(x) = H x` (a centred
    /// quadratic). Enables exact moment recursions and Ornstein–Uhlenbeck transitions.
    fn centred_quadratic(&self) -> Option<&Matrix> {
        None
    }
    /// `true` when `∇f` (and every per-sample `∇f_i`) is affine in `x`, i.e. the Hessian is
    /// constant. Then the first-order-in-`ρ` SDEs drop no `O(ρ²)` drift term (SPEC §4), which
    /// decides the expected weak order when `ρ` shrinks slower than `√η`.
    fn affine_gradient(&self) -> bool {
        self.centred_quadratic().is_some()
    }
    /// `Some(self)` for finite sums.
    fn as_finite_sum(&self) -> Option<&dyn FiniteSum> {
        None
    }
}

/// `f = (1/N) Σ_i f_i` with per-sample derivatives.
pub trait FiniteSum: Landscape {
    /// Number of samples `N`.
    fn n_samples(&self) -> usize;
    /// `f_i(x)`.
    fn sample_loss(&self, i: usize, x: &[f64]) -> f64;
    /// `out = ∇f_i(x)`.
    fn sample_grad_into(&self, i: usize, x: &[f64], out: &mut [f64]);
    /// `out = ∇²f_i(x) v`.
    fn sample_hess_vec_into(&self, i: usize, x: &[f64], v: &[f64], out: &mut [f64]);
}

/// Central finite-difference checks of a landscape's derivatives (used by tests).
pub mod fd {
    use super::Landscape;

    /// Largest relative discrepancy between `∇f(x)` and a central difference of `f`.
    pub fn grad_error(f: &dyn Landscape, x: &[f64], step: f64) -> f64 {
        let d = f.dim();
        let mut g = vec![0.0; d];
        f.grad_into(x, &mut g);
        let mut xp = x.to_vec();
        let mut worst = 0.0_f64;
        for i in 0..d {
            xp[i] = x[i] + step;
            let fp = f.loss(&xp);
            xp[i] = x[i] - step;
            let fm = f.loss(&xp);
            xp[i] = x[i];
            let fd = (fp - fm) / (2.0 * step);
            worst = worst.max((fd - g[i]).abs() / (1.0 + g[i].abs()));
        }
        worst
    }

    /// Largest relative discrepancy between `∇²f(x)` (both `hessian` and `hess_vec_into`)
    /// and a central difference of `∇f`.
    pub fn hess_error(f: &dyn Landscape, x: &[f64], step: f64) -> f64 {
        let d = f.dim();
        let h = f.hessian(x);
        let mut xp = x.to_vec();
        let (mut gp, mut gm, mut hv) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
        let mut worst = 0.0_f64;
        for j in 0..d {
            xp[j] = x[j] + step;
            f.grad_into(&xp, &mut gp);
            xp[j] = x[j] - step;
            f.grad_into(&xp, &mut gm);
            xp[j] = x[j];
            let mut e = vec![0.0; d];
            e[j] = 1.0;
            f.hess_vec_into(x, &e, &mut hv);
            for i in 0..d {
                let fd = (gp[i] - gm[i]) / (2.0 * step);
                let scale = 1.0 + h[(i, j)].abs();
                worst = worst
                    .max((fd - h[(i, j)]).abs() / scale)
                    .max((hv[i] - h[(i, j)]).abs() / scale);
            }
        }
        worst
    }
}
