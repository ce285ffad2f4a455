//! The general (Monte Carlo) form of the USAM, DNSAM and SAM SDEs (SPEC §3), for any oracle.
//!
//! With `v_γ` the algorithm's ascent direction (`∇f_γ`, `∇f_γ/‖∇f‖`, `∇f_γ/‖∇f_γ‖`):
//!
//! * drift `b(x) = ∇f(x) + ρ E[H_γ v_γ]`;
//! * diffusion `Σ_alg(x) = Σ(x) + ρ (Σ̄ + Σ̄ᵀ)`, `Σ̄ = Cov(∇f_γ, H_γ v_γ)`, and
//!   `D = Σ_alg^{1/2}` by the clamped symmetric square root (clamps are counted).
//!
//! At each state the expectations are estimated from `K` fresh oracle draws `γ_1 … γ_K`
//! (`V_k = H_{γ_k} v_{γ_k}`): `E[H_γ v_γ] ≈ mean V_k`,
//! `Σ̄ ≈ (1/(K−1)) Σ_k (∇f_{γ_k} − mean)(V_k − mean V)ᵀ` (the unbiased version of SPEC's
//! outer-product estimator). `Σ(x)` is the oracle's exact covariance. The draws come from a
//! per-path auxiliary ChaCha8 stream, so the Brownian path shared with the other systems is not
//! disturbed. Drift-only ablations keep the estimated drift and use `D = Σ(x)^{1/2}`.
//!
//! Cost per path and sub-step: `K` gradients and Hessian–vector products plus a `d × d`
//! eigendecomposition, which allocates. This form is a reference, not the fast path: where a
//! closed form applies (additive isotropic noise) the two must agree, which the tests check.

use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::model::ModelKind;
use crate::landscape::Landscape;
use crate::linalg::{psd_sqrt, Matrix};
use crate::optim::{AlgorithmKind, NORM_EPS};
use crate::oracle::Oracle;

/// Inner-Monte-Carlo SDE model.
#[derive(Debug, Clone)]
pub struct MonteCarloSde {
    kind: ModelKind,
    eta: f64,
    rho: f64,
    samples: usize,
}

/// Scratch for one block.
#[derive(Debug)]
pub struct GeneralWorkspace {
    gk: Matrix,
    vk: Matrix,
    g: Vec<f64>,
    v: Vec<f64>,
    tmp: Vec<f64>,
    xi: Vec<f64>,
    x: Vec<f64>,
    batch: Vec<u32>,
    /// Estimated drift at the last state.
    pub drift: Vec<f64>,
    /// Estimated `Σ_alg` at the last state.
    pub sigma_alg: Matrix,
}

impl MonteCarloSde {
    /// A model using `samples` inner draws per state.
    pub fn new(kind: ModelKind, eta: f64, rho: f64, samples: usize) -> Self {
        Self {
            kind,
            eta,
            rho,
            samples,
        }
    }

    /// Workspace for one block.
    pub fn workspace(&self, f: &dyn Landscape, oracle: &Oracle) -> GeneralWorkspace {
        let d = f.dim();
        let m = match oracle {
            Oracle::Additive(a) => a.s().ncols(),
            _ => 0,
        };
        GeneralWorkspace {
            gk: Matrix::zeros(d, self.samples),
            vk: Matrix::zeros(d, self.samples),
            g: vec![0.0; d],
            v: vec![0.0; d],
            tmp: vec![0.0; d],
            xi: vec![0.0; m],
            x: vec![0.0; d],
            batch: vec![0; oracle.batch()],
            drift: vec![0.0; d],
            sigma_alg: Matrix::zeros(d, d),
        }
    }

    /// Estimates `b(x)` and `Σ_alg(x)` into `ws.drift`, `ws.sigma_alg`.
    #[allow(clippy::needless_range_loop)] // index loops mirror the formulas
    pub fn estimate(
        &self,
        f: &dyn Landscape,
        oracle: &Oracle,
        x: &[f64],
        rng: &mut ChaCha8Rng,
        ws: &mut GeneralWorkspace,
    ) {
        let d = f.dim();
        let k = self.samples;
        f.grad_into(x, &mut ws.g);
        let full_norm = ws.g.iter().map(|v| v * v).sum::<f64>().sqrt();
        for s in 0..k {
            // One oracle draw: ∇f_γ(x) and the Hessian–vector product H_γ v_γ.
            {
                let gs = &mut ws.gk.as_mut_slice()[s * d..(s + 1) * d];
                match oracle {
                    Oracle::FullBatch => gs.copy_from_slice(&ws.g),
                    Oracle::Additive(a) => {
                        for xi in ws.xi.iter_mut() {
                            *xi = StandardNormal.sample(rng);
                        }
                        let sm = a.s();
                        for (i, gi) in gs.iter_mut().enumerate() {
                            *gi = ws.g[i]
                                + (0..sm.ncols()).map(|c| sm[(i, c)] * ws.xi[c]).sum::<f64>();
                        }
                    }
                    Oracle::Subsampling(sub) => {
                        let fs = f.as_finite_sum().expect("validated: finite sum");
                        sub.draw(rng, &mut ws.batch);
                        sub.grad(fs, &ws.batch, x, gs, &mut ws.tmp);
                    }
                }
            }
            let gs = &ws.gk.as_slice()[s * d..(s + 1) * d];
            let scale = match self.kind.alg {
                // m-USAM is refused by `SdeModel::new` (its groups are not drawn here).
                AlgorithmKind::Usam | AlgorithmKind::Sgd | AlgorithmKind::Musam => 1.0,
                AlgorithmKind::Dnsam => 1.0 / (full_norm + NORM_EPS),
                AlgorithmKind::Sam => {
                    1.0 / (gs.iter().map(|v| v * v).sum::<f64>().sqrt() + NORM_EPS)
                }
            };
            for (vi, gi) in ws.v.iter_mut().zip(gs) {
                *vi = gi * scale;
            }
            let vs = &mut ws.vk.as_mut_slice()[s * d..(s + 1) * d];
            match oracle {
                Oracle::Subsampling(sub) => {
                    let fs = f.as_finite_sum().expect("validated: finite sum");
                    sub.hess_vec(fs, &ws.batch, x, &ws.v, vs, &mut ws.tmp);
                }
                _ => f.hess_vec_into(x, &ws.v, vs),
            }
        }
        // Drift b = ∇f + ρ mean V.
        let kf = k as f64;
        let mean_g: Vec<f64> = (0..d).map(|i| ws.gk.row(i).sum() / kf).collect();
        let mean_v: Vec<f64> = (0..d).map(|i| ws.vk.row(i).sum() / kf).collect();
        for i in 0..d {
            ws.drift[i] = ws.g[i] + self.rho * mean_v[i];
        }
        // Σ_alg = Σ + ρ(Σ̄ + Σ̄ᵀ).
        ws.sigma_alg.copy_from(&oracle.covariance(f, x));
        if !self.kind.drift_only {
            for a in 0..d {
                for b in 0..d {
                    let mut c = 0.0;
                    for s in 0..k {
                        c += (ws.gk[(a, s)] - mean_g[a]) * (ws.vk[(b, s)] - mean_v[b]);
                    }
                    let c = self.rho * c / (kf - 1.0);
                    ws.sigma_alg[(a, b)] += c;
                    ws.sigma_alg[(b, a)] += c;
                }
            }
        }
    }

    /// Euler–Maruyama sub-step on every column; returns the number of clamped eigenvalues.
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    pub fn euler_step(
        &self,
        f: &dyn Landscape,
        oracle: &Oracle,
        x: &mut Matrix,
        dw: &Matrix,
        h: f64,
        ws: &mut GeneralWorkspace,
        aux: &mut [ChaCha8Rng],
    ) -> u64 {
        let d = f.dim();
        let sqrt_eta = self.eta.sqrt();
        let m = dw.nrows();
        let mut clamps = 0u64;
        for j in 0..x.ncols() {
            let mut xj = std::mem::take(&mut ws.x);
            xj.copy_from_slice(&x.as_slice()[j * d..(j + 1) * d]);
            self.estimate(f, oracle, &xj, &mut aux[j], ws);
            ws.x = xj;
            let root = psd_sqrt(&ws.sigma_alg);
            clamps += root.clamped as u64;
            let w = &dw.as_slice()[j * m..j * m + d.min(m)];
            let mut col = x.column_mut(j);
            for i in 0..d {
                let noise: f64 = (0..w.len()).map(|c| root.root[(i, c)] * w[c]).sum();
                col[i] += -h * ws.drift[i] + sqrt_eta * noise;
            }
        }
        clamps
    }
}
