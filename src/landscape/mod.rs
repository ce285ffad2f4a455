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
    /// constant. Then the first-order-in-`ρ` SDEs drop no `O(ρ²)` drift term (docs/theory.md §4), which
    /// decides the expected weak order when `ρ` shrinks slower than `√η`.
    fn affine_gradient(&self) -> bool {
        self.centred_quadratic().is_some()
    }
    /// `Some(self)` for finite sums.
    fn as_finite_sum(&self) -> Option<&dyn FiniteSum> {
        None
    }

    /// `out = ∇³f(x)[u, v]`, i.e. `out_i = Σ_jk ∂_ijk f(x) u_j v_k` (the derivative of
    /// `∇²f(x) u` along `v`; symmetric in `u, v`). Needed by the second-order SDE models
    /// ([`crate::sde::second_order`]).
    ///
    /// Default: zero when [`Landscape::affine_gradient`]; otherwise a **central difference** of
    /// [`Landscape::hess_vec_into`] along `v` ([`fd_default::third`]: step `10⁻⁵ (1 + ‖x‖_∞)` along
    /// `v/‖v‖`, truncation `O(step²)` and rounding `O(10⁻¹⁶/step)`: about `10⁻¹⁰` relative on
    /// smooth landscapes, checked in the tests against closed forms). The quadratic and least
    /// squares (zero), the warped double well and the soft-min two-basin landscape give the exact
    /// product.
    fn third_into(&self, x: &[f64], u: &[f64], v: &[f64], out: &mut [f64]) {
        if self.affine_gradient() {
            out.fill(0.0);
        } else {
            fd_default::third(self, x, u, v, out);
        }
    }

    /// `out = ∇ tr(∇²f(x) Σ) = ∇³f(x) : Σ`, i.e. `out_i = Σ_jk ∂_ijk f(x) Σ_jk`, for the noise
    /// covariance `Σ = S Sᵀ` ([`NoiseCov`]); with `Σ = σ² I` it is `σ² ∇ tr ∇²f = σ² ∇Δf`, the
    /// gradient of the Gaussian-smoothing term.
    ///
    /// Default: `Σ_m ∇³f[s_m, s_m]` over the columns `s_m` of `S` (or `σ² Σ_i ∇³f[e_i, e_i]`),
    /// exact whenever [`Landscape::third_into`] is.
    fn grad_trace_h_sigma_into(&self, x: &[f64], cov: NoiseCov, out: &mut [f64]) {
        out.fill(0.0);
        if self.affine_gradient() {
            return;
        }
        fd_default::trace_sum(self, x, cov, out);
    }

    /// `out = ∇⁴f(x)[v, v, v]`.
    ///
    /// Default: zero when [`Landscape::affine_gradient`]; otherwise a central difference of
    /// `∇³f(·)[v, v]` ([`Landscape::third_into`], `v` held fixed) along `v` (same step rule as
    /// [`Landscape::third_into`]). With exact third products that is one difference, about
    /// `10⁻¹⁰` relative; where the third products are themselves differences, rounding grows to
    /// about `10⁻⁶` relative (`ε_mach/step²`). Both checked in the tests against a landscape with
    /// known fourth derivatives.
    fn fourth_into(&self, x: &[f64], v: &[f64], out: &mut [f64]) {
        if self.affine_gradient() {
            out.fill(0.0);
        } else {
            fd_default::fourth(self, x, v, out);
        }
    }

    /// `out = ∇⁴f(x)[v] : Σ = ∇² tr(∇²f Σ)(x) v` (the Hessian of `tr(∇²f Σ)` applied to `v`).
    ///
    /// Default: zero when [`Landscape::affine_gradient`]; otherwise a central difference of
    /// [`Landscape::grad_trace_h_sigma_into`] along `v` (same step rule).
    fn hess_trace_h_sigma_vec_into(&self, x: &[f64], cov: NoiseCov, v: &[f64], out: &mut [f64]) {
        if self.affine_gradient() {
            out.fill(0.0);
        } else {
            fd_default::trace_directional(self, x, cov, v, out);
        }
    }
}

/// The covariance `Σ = S Sᵀ` of additive gradient noise, as the third- and fourth-derivative
/// contractions [`Landscape::grad_trace_h_sigma_into`] and
/// [`Landscape::hess_trace_h_sigma_vec_into`] take it.
#[derive(Debug, Clone, Copy)]
pub enum NoiseCov<'a> {
    /// `Σ = σ² I`.
    Isotropic(f64),
    /// `Σ = S Sᵀ`, `S` a `d × m` factor.
    Factor(&'a Matrix),
}

/// The finite-difference and summation defaults of the third- and fourth-derivative products
/// (see [`Landscape::third_into`]). Scratch vectors live in thread-local buffers, so the
/// defaults do not allocate after their first call on a thread.
pub mod fd_default {
    use std::cell::RefCell;

    use super::{Landscape, NoiseCov};

    /// Relative step of the central differences: `step = FD_STEP (1 + ‖x‖_∞)`, near the optimum
    /// `(3 ε_mach)^{1/3} ≈ 9·10⁻⁶` of a central difference.
    pub const FD_STEP: f64 = 1e-5;

    thread_local! {
        // One buffer per nesting level: the fourth-order defaults call `grad_trace_h_sigma_into`
        // and `third_into`, and the trace sum calls `third_into`.
        static LEVEL3: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
        static TRACE: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
        static LEVEL4: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
    }

    fn with_buf<R>(
        key: &'static std::thread::LocalKey<RefCell<Vec<f64>>>,
        n: usize,
        body: impl FnOnce(&mut [f64]) -> R,
    ) -> R {
        key.with(|b| {
            let mut b = b.borrow_mut();
            if b.len() < n {
                b.resize(n, 0.0);
            }
            body(&mut b[..n])
        })
    }

    fn norm(v: &[f64]) -> f64 {
        v.iter().map(|a| a * a).sum::<f64>().sqrt()
    }

    /// `step` and the unit direction scale `1/‖v‖` (`None` when `v = 0`).
    fn step_for(x: &[f64], v: &[f64]) -> Option<(f64, f64)> {
        let nv = norm(v);
        if nv == 0.0 || !nv.is_finite() {
            return None;
        }
        let scale = 1.0 + x.iter().fold(0.0_f64, |m, a| m.max(a.abs()));
        Some((FD_STEP * scale, 1.0 / nv))
    }

    /// Central difference of `q(y)` along `v` at `x`: `‖v‖ (q(x + δ v̂) − q(x − δ v̂)) / (2δ)`.
    fn directional<L: Landscape + ?Sized>(
        key: &'static std::thread::LocalKey<RefCell<Vec<f64>>>,
        f: &L,
        x: &[f64],
        v: &[f64],
        out: &mut [f64],
        q: impl Fn(&L, &[f64], &mut [f64]),
    ) {
        let d = x.len();
        let Some((step, inv)) = step_for(x, v) else {
            out.fill(0.0);
            return;
        };
        with_buf(key, 2 * d, |buf| {
            let (y, qm) = buf.split_at_mut(d);
            for i in 0..d {
                y[i] = x[i] + step * inv * v[i];
            }
            q(f, y, out);
            for i in 0..d {
                y[i] = x[i] - step * inv * v[i];
            }
            q(f, y, qm);
            let c = 1.0 / (2.0 * step * inv);
            for (o, m) in out.iter_mut().zip(qm.iter()) {
                *o = (*o - m) * c;
            }
        });
    }

    /// `∇³f(x)[u, v]` by a central difference of `∇²f(·) u` along `v`.
    pub fn third<L: Landscape + ?Sized>(f: &L, x: &[f64], u: &[f64], v: &[f64], out: &mut [f64]) {
        directional(&LEVEL3, f, x, v, out, |f, y, o| f.hess_vec_into(y, u, o));
    }

    /// `∇⁴f(x)[v, v, v]` by a central difference of `∇³f(·)[v, v]` along `v`.
    pub fn fourth<L: Landscape + ?Sized>(f: &L, x: &[f64], v: &[f64], out: &mut [f64]) {
        directional(&LEVEL4, f, x, v, out, |f, y, o| f.third_into(y, v, v, o));
    }

    /// `∇⁴f(x)[v] : Σ` by a central difference of `∇³f(·) : Σ` along `v`.
    pub fn trace_directional<L: Landscape + ?Sized>(
        f: &L,
        x: &[f64],
        cov: NoiseCov,
        v: &[f64],
        out: &mut [f64],
    ) {
        directional(&LEVEL4, f, x, v, out, |f, y, o| {
            f.grad_trace_h_sigma_into(y, cov, o)
        });
    }

    /// `out += ∇³f(x) : Σ` as a sum of third products over the columns of `S` (or `σ² e_i`).
    pub fn trace_sum<L: Landscape + ?Sized>(f: &L, x: &[f64], cov: NoiseCov, out: &mut [f64]) {
        let d = x.len();
        with_buf(&TRACE, 2 * d, |buf| {
            let (e, t) = buf.split_at_mut(d);
            match cov {
                NoiseCov::Isotropic(sigma) => {
                    let s2 = sigma * sigma;
                    if s2 == 0.0 {
                        return;
                    }
                    e.fill(0.0);
                    for i in 0..d {
                        e[i] = 1.0;
                        f.third_into(x, e, e, t);
                        e[i] = 0.0;
                        for (o, ti) in out.iter_mut().zip(t.iter()) {
                            *o += s2 * ti;
                        }
                    }
                }
                NoiseCov::Factor(s) => {
                    for col in s.as_slice().chunks_exact(d) {
                        f.third_into(x, col, col, t);
                        for (o, ti) in out.iter_mut().zip(t.iter()) {
                            *o += ti;
                        }
                    }
                }
            }
        });
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
    /// `out = (1/|γ|) Σ_{i∈γ} ∇f_i(x)` for the mini-batch `γ = batch`; `tmp` is scratch of
    /// length `d`. The default sums [`FiniteSum::sample_grad_into`] one sample at a time; a
    /// landscape with a tighter form overrides it (least squares does, for the SGD hot loop).
    fn batch_grad_into(&self, batch: &[u32], x: &[f64], out: &mut [f64], tmp: &mut [f64]) {
        out.fill(0.0);
        for &i in batch {
            self.sample_grad_into(i as usize, x, tmp);
            for (o, t) in out.iter_mut().zip(tmp.iter()) {
                *o += t;
            }
        }
        let inv = 1.0 / batch.len() as f64;
        out.iter_mut().for_each(|o| *o *= inv);
    }
    /// [`FiniteSum::batch_grad_into`] for a block of paths: `xs` and `out` are `d × P`
    /// column-major (one path per column), `batches` holds `B` indices per path, path-major.
    /// The default calls `batch_grad_into` per column.
    fn batch_grad_block(&self, batches: &[u32], xs: &[f64], out: &mut [f64], tmp: &mut [f64]) {
        let d = self.dim();
        let p = xs.len() / d.max(1);
        let b = batches.len() / p.max(1);
        for ((x, o), batch) in xs
            .chunks_exact(d)
            .zip(out.chunks_exact_mut(d))
            .zip(batches.chunks_exact(b))
        {
            self.batch_grad_into(batch, x, o, tmp);
        }
    }
    /// One SGD step `x ← x − η ∇f_γ(x)` on every column of `xs` (`d × P`, batches as in
    /// [`FiniteSum::batch_grad_block`]); `g` (`d × P`) and `tmp` (`d`) are scratch. The
    /// default is [`FiniteSum::batch_grad_block`] into `g`, then `x += (−η) g` entrywise; an
    /// override must give the same numbers (least squares fuses the two passes). Returns
    /// whether it also wrote `norm2[j] = ‖x_j‖²` of every updated column (length `P`, summed
    /// exactly as [`crate::optim::norm_sq`], for the engine's divergence check); the default
    /// does not (`false`).
    fn sgd_step_block(
        &self,
        batches: &[u32],
        eta: f64,
        xs: &mut [f64],
        g: &mut [f64],
        tmp: &mut [f64],
        _norm2: &mut [f64],
    ) -> bool {
        self.batch_grad_block(batches, xs, g, tmp);
        sgd_update(xs, g, eta);
        false
    }
}

/// `x += (−η) g` entrywise: the update of [`FiniteSum::sgd_step_block`]'s default, which every
/// override must reproduce.
pub fn sgd_update(xs: &mut [f64], g: &[f64], eta: f64) {
    for (x, gi) in xs.iter_mut().zip(g) {
        *x += -eta * gi;
    }
}

/// Central finite-difference checks of a landscape's derivatives (used by tests).
pub mod fd {
    use super::{Landscape, NoiseCov};

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

    /// Largest relative discrepancy between `∇³f(x)[u, v]` ([`Landscape::third_into`]) and a
    /// central difference of `∇²f(·) u` along `v` (`(H(x + s v)u − H(x − s v)u)/(2s)`), and of
    /// its symmetry in `u, v`.
    pub fn third_error(f: &dyn Landscape, x: &[f64], u: &[f64], v: &[f64], step: f64) -> f64 {
        let d = f.dim();
        let (mut t, mut t_sym, mut hp, mut hm) =
            (vec![0.0; d], vec![0.0; d], vec![0.0; d], vec![0.0; d]);
        f.third_into(x, u, v, &mut t);
        f.third_into(x, v, u, &mut t_sym);
        let shift = |s: f64| {
            x.iter()
                .zip(v)
                .map(|(a, b)| a + s * b)
                .collect::<Vec<f64>>()
        };
        f.hess_vec_into(&shift(step), u, &mut hp);
        f.hess_vec_into(&shift(-step), u, &mut hm);
        let mut worst = 0.0_f64;
        for i in 0..d {
            let fd = (hp[i] - hm[i]) / (2.0 * step);
            let scale = 1.0 + fd.abs();
            worst = worst
                .max((t[i] - fd).abs() / scale)
                .max((t[i] - t_sym[i]).abs() / scale);
        }
        worst
    }

    /// Largest relative discrepancy between `∇³f(x) : Σ` ([`Landscape::grad_trace_h_sigma_into`])
    /// and a central difference of the scalar `tr(∇²f(·) Σ)` formed from the full Hessian.
    pub fn grad_trace_error(f: &dyn Landscape, x: &[f64], cov: NoiseCov, step: f64) -> f64 {
        let d = f.dim();
        let sigma = match cov {
            NoiseCov::Isotropic(s) => crate::linalg::Matrix::identity(d, d) * (s * s),
            NoiseCov::Factor(s) => s * s.transpose(),
        };
        let tr = |y: &[f64]| (f.hessian(y) * &sigma).trace();
        let mut out = vec![0.0; d];
        f.grad_trace_h_sigma_into(x, cov, &mut out);
        let mut y = x.to_vec();
        let mut worst = 0.0_f64;
        for i in 0..d {
            y[i] = x[i] + step;
            let p = tr(&y);
            y[i] = x[i] - step;
            let m = tr(&y);
            y[i] = x[i];
            let fd = (p - m) / (2.0 * step);
            worst = worst.max((out[i] - fd).abs() / (1.0 + fd.abs()));
        }
        worst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `f(x) = e^{a·x} + Σ_i sin x_i` with every derivative known in closed form; `exact_third`
    /// chooses whether it overrides [`Landscape::third_into`] (otherwise every higher product
    /// comes from the difference defaults).
    struct ExpSin {
        a: Vec<f64>,
        exact_third: bool,
    }

    impl ExpSin {
        fn e(&self, x: &[f64]) -> f64 {
            self.a.iter().zip(x).map(|(a, x)| a * x).sum::<f64>().exp()
        }
        fn dot_a(&self, v: &[f64]) -> f64 {
            self.a.iter().zip(v).map(|(a, v)| a * v).sum()
        }
        fn sigma(&self, cov: NoiseCov) -> Matrix {
            let d = self.a.len();
            match cov {
                NoiseCov::Isotropic(s) => Matrix::identity(d, d) * (s * s),
                NoiseCov::Factor(s) => s * s.transpose(),
            }
        }
    }

    impl Landscape for ExpSin {
        fn dim(&self) -> usize {
            self.a.len()
        }
        fn loss(&self, x: &[f64]) -> f64 {
            self.e(x) + x.iter().map(|v| v.sin()).sum::<f64>()
        }
        fn grad_into(&self, x: &[f64], out: &mut [f64]) {
            let e = self.e(x);
            for ((o, a), xi) in out.iter_mut().zip(&self.a).zip(x) {
                *o = e * a + xi.cos();
            }
        }
        fn hess_vec_into(&self, x: &[f64], v: &[f64], out: &mut [f64]) {
            let c = self.e(x) * self.dot_a(v);
            for (((o, a), xi), vi) in out.iter_mut().zip(&self.a).zip(x).zip(v) {
                *o = c * a - xi.sin() * vi;
            }
        }
        fn hessian(&self, x: &[f64]) -> Matrix {
            let e = self.e(x);
            let d = self.dim();
            Matrix::from_fn(d, d, |i, j| {
                e * self.a[i] * self.a[j] - if i == j { x[i].sin() } else { 0.0 }
            })
        }
        fn describe(&self) -> String {
            "exp-sin".into()
        }
        fn third_into(&self, x: &[f64], u: &[f64], v: &[f64], out: &mut [f64]) {
            if !self.exact_third {
                fd_default::third(self, x, u, v, out);
                return;
            }
            let c = self.e(x) * self.dot_a(u) * self.dot_a(v);
            for i in 0..self.dim() {
                out[i] = c * self.a[i] - x[i].cos() * u[i] * v[i];
            }
        }
    }

    /// The difference defaults against closed forms: `∇³f[u, v]` (difference of exact HVPs:
    /// truncation `s²|∇⁵f|/6 ≈ 1e-10`, rounding `1e-16/s ≈ 1e-11`, so `1e-8` relative),
    /// `∇³f : Σ` (a sum of those), `∇⁴f[v, v, v]` and `∇⁴f[v] : Σ` — from exact third products
    /// (one difference: `1e-8`) and from differenced ones (a difference of a difference:
    /// rounding `1e-16/s² ≈ 1e-6`, hence `1e-5`).
    #[test]
    fn difference_defaults_match_closed_forms() {
        let s_mat = Matrix::from_row_slice(3, 2, &[0.4, -0.1, 0.2, 0.5, -0.3, 0.2]);
        let x = [0.3, -0.5, 0.8];
        let (u, v) = ([0.6, 0.1, -0.7], [-0.2, 0.9, 0.4]);
        for exact_third in [true, false] {
            let f = ExpSin {
                a: vec![0.5, -0.8, 0.3],
                exact_third,
            };
            let e = f.e(&x);
            let rel = |got: &[f64], want: &[f64]| {
                got.iter()
                    .zip(want)
                    .map(|(g, w)| (g - w).abs() / (1.0 + w.abs()))
                    .fold(0.0_f64, f64::max)
            };
            let mut out = [0.0; 3];
            // Third.
            f.third_into(&x, &u, &v, &mut out);
            let c = e * f.dot_a(&u) * f.dot_a(&v);
            let want: Vec<f64> = (0..3)
                .map(|i| c * f.a[i] - x[i].cos() * u[i] * v[i])
                .collect();
            assert!(
                rel(&out, &want) < 1e-8,
                "third {exact_third}: {out:?} vs {want:?}"
            );
            // Fourth.
            let tol4 = if exact_third { 1e-8 } else { 1e-5 };
            f.fourth_into(&x, &v, &mut out);
            let c = e * f.dot_a(&v).powi(3);
            let want: Vec<f64> = (0..3)
                .map(|i| c * f.a[i] + x[i].sin() * v[i].powi(3))
                .collect();
            assert!(
                rel(&out, &want) < tol4,
                "fourth {exact_third}: {out:?} vs {want:?}"
            );
            for cov in [NoiseCov::Isotropic(0.6), NoiseCov::Factor(&s_mat)] {
                let sig = f.sigma(cov);
                let asa = (nalgebra::DVector::from_column_slice(&f.a).transpose()
                    * &sig
                    * nalgebra::DVector::from_column_slice(&f.a))[(0, 0)];
                f.grad_trace_h_sigma_into(&x, cov, &mut out);
                let want: Vec<f64> = (0..3)
                    .map(|i| e * asa * f.a[i] - x[i].cos() * sig[(i, i)])
                    .collect();
                assert!(
                    rel(&out, &want) < 1e-8,
                    "trace {cov:?}: {out:?} vs {want:?}"
                );
                f.hess_trace_h_sigma_vec_into(&x, cov, &v, &mut out);
                let c = e * asa * f.dot_a(&v);
                let want: Vec<f64> = (0..3)
                    .map(|i| c * f.a[i] + x[i].sin() * sig[(i, i)] * v[i])
                    .collect();
                assert!(
                    rel(&out, &want) < tol4,
                    "trace vec {cov:?}: {out:?} vs {want:?}"
                );
            }
        }
    }

    /// Affine gradients have no third or fourth derivative: the defaults return exact zeros.
    #[test]
    fn affine_landscapes_have_zero_higher_derivatives() {
        let q = crate::landscape::Quadratic::wishart(3, 1).unwrap();
        let mut out = [1.0; 3];
        q.third_into(
            &[1.0, 2.0, 3.0],
            &[1.0, 0.0, 0.0],
            &[0.0, 1.0, 0.0],
            &mut out,
        );
        assert_eq!(out, [0.0; 3]);
        out = [1.0; 3];
        q.hess_trace_h_sigma_vec_into(
            &[1.0, 2.0, 3.0],
            NoiseCov::Isotropic(1.0),
            &[1.0; 3],
            &mut out,
        );
        assert_eq!(out, [0.0; 3]);
    }
}
