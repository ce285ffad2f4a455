//! The m-USAM SDE (and the SGD and USAM SDEs with real mini-batches) on an affine finite sum,
//! with exact coefficients — no inner Monte Carlo.
//!
//! # Derivation by one-step moment matching
//!
//! m-USAM (Andriushchenko & Flammarion, *Towards Understanding Sharpness-Aware Minimization*,
//! ICML 2022, unnormalized) draws a batch `γ` of size `B`, splits it into a uniformly random
//! partition of micro-batches `S_1 … S_{B/m}` of size `m`, and steps
//! `x ← x − η d(x)`, `d(x) = mean_j ∇f_{S_j}(x + ρ ∇f_{S_j}(x))`.
//!
//! *First order in ρ.* `∇f_S(x + ρ∇f_S) = ∇f_S + ρ H_S ∇f_S + O(ρ²)` (exact, no remainder,
//! when the gradients are affine), so `d = ∇f_γ + ρ D₁ + O(ρ²)` with
//! `D₁ = mean_j H_{S_j} ∇f_{S_j}` — the micro-batch gradients average to the batch gradient.
//!
//! *Mean.* Each `S_j` is marginally a uniform micro-batch of size `m` (a uniform `m`-subset
//! without replacement, `m` i.i.d. indices with), so
//! `E d = ∇f + ρ E_S[H_S ∇f_S] = ∇f + (ρ/2) ∇ E‖∇f_S‖² = ∇(f + (ρ/2)(‖∇f‖² + tr Σ_m))`,
//! using `E‖∇f_S‖² = ‖E∇f_S‖² + tr Cov(∇f_S)` and `Cov(∇f_S) = Σ_m = c_m Cov_i(∇f_i)` with the
//! **micro-batch's** finite-population factor `c_m = (N−m)/(m(N−1))` (`1/m` with replacement).
//!
//! *Covariance.* `Cov d = Σ_B + ρ(Σ̂_m + Σ̂_mᵀ) + O(ρ²)`, `Σ_B = c_B Cov_i(∇f_i)` the batch
//! gradient's covariance and `Σ̂_m = Cov(∇f_γ, D₁)`.
//!
//! *Matching.* One step of `dX = −b(X) dt + √η D(X) dW` over time `η` has mean `−η b + O(η²)`
//! and covariance `η² D Dᵀ + O(η³)`; one m-USAM step has mean `−η E d` and covariance
//! `η² Cov d`. Equating them to first order in `ρ`:
//!
//! `b(x) = ∇f + ρ E_S[H_S ∇f_S] = ∇(f + (ρ/2)(‖∇f‖² + tr Σ_m(x)))`,
//! `Σ_alg(x) = D Dᵀ = Σ_B(x) + ρ(Σ̂_m(x) + Σ̂_m(x)ᵀ)`.
//!
//! `m = B` is Paper 1's mini-batch USAM SDE (Compagnoni et al., *An SDE for Modeling SAM*,
//! ICML 2023), `ρ = 0` the SGD SDE. The implicit penalty `(ρ/2) tr Σ_m = (ρ/2) c_m
//! tr Cov_i(∇f_i)` grows as `m` shrinks (`c_m` decreases in `m`): m-sharpness seen through the
//! SDE. The diffusion is the batch's: at leading order every `m` has the same noise `Σ_B`.
//!
//! # Exact coefficients on least squares
//!
//! With `∇f_i(x) = H_i x − c_i` the direction is `d(x) = A x − u` (see
//! [`crate::optim::batch_law`]), so `b(x) = E[A] x − E[u]` and `Σ_alg(x)` is quadratic in `x`:
//! `vec Σ_alg = C₂ vec(xxᵀ) + C₁ x + C₀` from the batch-law operators
//! ([`BatchLaw::covariance_form`] with weights `[[1, ρ], [ρ, 0]]`). That gives both the exact
//! moments ([`AffineSde`], a matrix exponential) and an Euler–Maruyama model ([`euler_step`]):
//! `ΔX = −b(X) h + √η Σ_alg(X)^{1/2} ΔW`, the symmetric square root with negative eigenvalues
//! clamped to 0 and counted (`Σ_alg` need not be PSD for large `ρ`). The drift-only ablation
//! keeps `b` and uses `Σ_B`. Cost per path and sub-step: a `d² × d²` product and a `d × d`
//! Jacobi eigendecomposition, in a workspace allocated once per block.

use super::moment_ode::AffineSde;
use crate::linalg::Matrix;
#[cfg(test)]
use crate::linalg::{psd_sqrt, Vector};
use crate::optim::batch_law::BatchLaw;

/// The SDE of the direction law `law` at `(η, ρ)`: SGD SDE for `ρ = 0`, USAM's for
/// `law.shape.micro = B`, m-USAM's otherwise; `drift_only` keeps the drift and uses `Σ_B`.
pub fn affine_sde(law: &BatchLaw, eta: f64, rho: f64, drift_only: bool) -> AffineSde {
    let (a, u) = law.mean_direction(rho);
    let w = if drift_only {
        [[1.0, 0.0], [0.0, 0.0]]
    } else {
        [[1.0, rho], [rho, 0.0]]
    };
    let (c2, c1, c0) = law.covariance_form(w);
    AffineSde {
        a,
        u,
        c2,
        c1,
        c0,
        eta,
    }
}

/// The implicit penalty `(ρ/2) tr Σ_m(x)` of the m-USAM SDE's drift, `Σ_m = c_m Cov_i(∇f_i(x))`.
pub fn implicit_penalty(law: &BatchLaw, cov_i: &Matrix, rho: f64) -> f64 {
    0.5 * rho * law.shape.factor(law.shape.micro) * cov_i.trace()
}

/// Scratch space for [`euler_step`] (dimension `d`), allocated once per block.
#[derive(Debug, Clone)]
pub struct AffineWorkspace {
    xx: Vec<f64>,
    sigma: Vec<f64>,
    vecs: Vec<f64>,
    t: Vec<f64>,
}

impl AffineWorkspace {
    /// Workspace for dimension `d`.
    pub fn new(d: usize) -> Self {
        Self {
            xx: vec![0.0; d * d],
            sigma: vec![0.0; d * d],
            vecs: vec![0.0; d * d],
            t: vec![0.0; d],
        }
    }
}

/// One Euler–Maruyama sub-step `x += −b(x) h + √η Σ_alg(x)^{1/2} dw` on every column of `x`
/// (`dw` has at least `d` rows; the first `d` are used). `Σ_alg^{1/2}` is the symmetric root
/// `V max(Λ, 0)^{1/2} Vᵀ` (cyclic Jacobi eigendecomposition, in place, no allocation); returns
/// the number of eigenvalues clamped to 0 (below `−1e-12 · max|λ|`, as [`psd_sqrt`]).
pub fn euler_step(
    sde: &AffineSde,
    x: &mut Matrix,
    dw: &Matrix,
    h: f64,
    ws: &mut AffineWorkspace,
) -> u64 {
    let d = sde.dim();
    let dd = d * d;
    debug_assert!(
        dw.nrows() >= d,
        "the affine SDE needs ≥ d Brownian components"
    );
    let sqrt_eta = sde.eta.sqrt();
    let m = dw.nrows();
    let (c2, c1) = (sde.c2.as_slice(), sde.c1.as_slice());
    let mut clamps = 0u64;
    for (xj, wj) in x
        .as_mut_slice()
        .chunks_exact_mut(d)
        .zip(dw.as_slice().chunks_exact(m))
    {
        // vec Σ = C₂ vec(xxᵀ) + C₁ x + C₀ (column-major slices).
        for b in 0..d {
            for a in 0..d {
                ws.xx[a + d * b] = xj[a] * xj[b];
            }
        }
        ws.sigma.copy_from_slice(sde.c0.as_slice());
        for (c, &v) in ws.xx.iter().enumerate() {
            let col = &c2[c * dd..(c + 1) * dd];
            ws.sigma.iter_mut().zip(col).for_each(|(s, k)| *s += k * v);
        }
        for (c, &v) in xj.iter().enumerate() {
            let col = &c1[c * dd..(c + 1) * dd];
            ws.sigma.iter_mut().zip(col).for_each(|(s, k)| *s += k * v);
        }
        for b in 0..d {
            for a in 0..b {
                let v = 0.5 * (ws.sigma[a + d * b] + ws.sigma[b + d * a]);
                ws.sigma[a + d * b] = v;
                ws.sigma[b + d * a] = v;
            }
        }
        jacobi_eigen(&mut ws.sigma, &mut ws.vecs, d);
        let scale = (0..d).fold(0.0_f64, |s, k| s.max(ws.sigma[k * (d + 1)].abs()));
        let tol = 1e-12 * scale.max(f64::MIN_POSITIVE);
        // noise = V diag(√λ₊) Vᵀ w.
        for k in 0..d {
            let lambda = ws.sigma[k * (d + 1)];
            if lambda < -tol {
                clamps += 1;
            }
            let vk = &ws.vecs[k * d..(k + 1) * d];
            let proj: f64 = vk.iter().zip(&wj[..d]).map(|(v, w)| v * w).sum();
            ws.t[k] = lambda.max(0.0).sqrt() * proj;
        }
        // Drift b = Ā x − ū, then the update (noise column by column of V).
        for i in 0..d {
            let mut b = -sde.u[i];
            for (k, xk) in xj.iter().enumerate() {
                b += sde.a[(i, k)] * xk;
            }
            let noise: f64 = (0..d).map(|k| ws.vecs[i + k * d] * ws.t[k]).sum();
            ws.xx[i] = -h * b + sqrt_eta * noise;
        }
        for (xi, dx) in xj.iter_mut().zip(&ws.xx[..d]) {
            *xi += dx;
        }
    }
    clamps
}

/// Cyclic Jacobi eigendecomposition of the symmetric `d × d` matrix `a` (column-major), in
/// place: on return the diagonal of `a` holds the eigenvalues and the columns of `v` the
/// eigenvectors (`A = V Λ Vᵀ`). Rotations as in *Numerical Recipes* §11.1
/// (`θ = (a_qq − a_pp)/(2a_pq)`, `t = sgn θ/(|θ| + √(θ² + 1))`); stops when the off-diagonal
/// mass is below `1e-30` of the total, or after 60 sweeps.
pub fn jacobi_eigen(a: &mut [f64], v: &mut [f64], d: usize) {
    v.fill(0.0);
    for k in 0..d {
        v[k * (d + 1)] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _ in 0..60 {
        let mut off = 0.0;
        for q in 0..d {
            for p in 0..q {
                off += a[p + d * q] * a[p + d * q];
            }
        }
        if off <= 1e-30 * total || off == 0.0 {
            return;
        }
        for q in 1..d {
            for p in 0..q {
                let apq = a[p + d * q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q + d * q] - a[p + d * p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k + d * p], a[k + d * q]);
                    a[k + d * p] = c * akp - s * akq;
                    a[k + d * q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p + d * k], a[q + d * k]);
                    a[p + d * k] = c * apk - s * aqk;
                    a[q + d * k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k + d * p], v[k + d * q]);
                    v[k + d * p] = c * vkp - s * vkq;
                    v[k + d * q] = s * vkp + c * vkq;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landscape::LeastSquares;
    use crate::optim::batch_law::{AffineFiniteSum, BatchShape};

    /// The derivation's drift identity: `E[mean_j H_{S_j}∇f_{S_j}] = ½∇(‖∇f‖² + tr Σ_m)`, i.e.
    /// `E[A₁]x − E[u₁] = H(Hx − q) + c_m (1/N) Σ_i (H_i − H)(∇f_i(x) − ∇f(x))` with the
    /// micro-batch's own factor `c_m` — the batch-law operators (pattern computation) against the
    /// closed form, for every `m | B`, with and without replacement.
    #[test]
    fn drift_is_the_gradient_of_the_implicit_penalty() {
        let f = LeastSquares::synthetic(12, 3, 0.4, 8).unwrap();
        let fs = AffineFiniteSum::from_landscape(&f).unwrap();
        let (h, q) = (fs.h_mean(), fs.c_mean());
        let x = Vector::from_vec(vec![0.7, -0.3, 1.2]);
        let g = &h * &x - &q;
        for replacement in [false, true] {
            for m in [1, 2, 4] {
                let shape = BatchShape {
                    n: 12,
                    batch: 4,
                    micro: m,
                    replacement,
                };
                let law = BatchLaw::new(&fs, shape).unwrap();
                let got = &law.mean_a[1] * &x - &law.mean_u[1];
                let mut want = &h * &g;
                for i in 0..12 {
                    let dh = fs.h_i(i) - &h;
                    let dg = fs.h_i(i) * &x - fs.c_i(i) - &g;
                    want += shape.factor(m) / 12.0 * (dh * dg);
                }
                assert!(
                    (&got - &want).norm() < 1e-12 * want.norm(),
                    "m = {m}, {replacement}"
                );
            }
        }
    }
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    /// Jacobi's root applied to `w` equals `psd_sqrt(Σ) w` (nalgebra's eigensolver), for PSD and
    /// indefinite matrices, with the same clamp count; 1e-12 relative: both are backward stable.
    #[test]
    fn jacobi_root_matches_psd_sqrt() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for (trial, d) in [1usize, 2, 3, 4, 6].iter().cycle().take(25).enumerate() {
            let d = *d;
            let g = Matrix::from_fn(d, d, |_, _| StandardNormal.sample(&mut rng));
            let mut sigma = &g * g.transpose();
            if trial % 3 == 0 {
                sigma[(0, 0)] -= 3.0; // often indefinite
            }
            let w = Vector::from_fn(d, |_, _| StandardNormal.sample(&mut rng));
            let want = psd_sqrt(&sigma);
            let want_noise = &want.root * &w;
            let mut a = sigma.as_slice().to_vec();
            let mut v = vec![0.0; d * d];
            jacobi_eigen(&mut a, &mut v, d);
            let vm = Matrix::from_column_slice(d, d, &v);
            let lam = Vector::from_fn(d, |k, _| a[k * (d + 1)]);
            let back = &vm * Matrix::from_diagonal(&lam) * vm.transpose();
            let scale = sigma.abs().max();
            assert!((back - &sigma).abs().max() < 1e-12 * scale, "d = {d}");
            let tol = 1e-12 * lam.abs().max();
            let clamped = lam.iter().filter(|&&l| l < -tol).count();
            assert_eq!(clamped, want.clamped, "d = {d}");
            let root =
                &vm * Matrix::from_diagonal(&lam.map(|l| l.max(0.0).sqrt())) * vm.transpose();
            assert!(
                (root * &w - want_noise).abs().max() < 1e-10 * (1.0 + scale),
                "d = {d}"
            );
        }
    }
}
