//! The exact reference of the convergence study: the weak error
//! `max_{1 ≤ k ≤ T/η} |E g(x_k) − E g(X_{kη})|` (over every step, or every `save_dt`) from the
//! first two moments of both sides, without Monte Carlo, for the test functions that are linear
//! in them (`g = ‖x‖²`, `g = f` on a quadratic or least-squares `f`). Two cases, one path
//! ([`ConvergenceStudy::exact_weak_error`]):
//!
//! * **linear pairs** — quadratic landscape with additive or full-batch noise, SGD/USAM and
//!   their SDEs: the discrete moment recursion `m ← Am`, `P ← APAᵀ + BBᵀ`
//!   ([`LinearRecursion`]) against the SDE's Ornstein–Uhlenbeck moments ([`LinearSde`]);
//! * **real mini-batches** — least squares with the subsampling oracle, SGD, USAM and m-USAM
//!   against the SGD, USAM and m-USAM SDEs (or their drift-only ablations): every step is a
//!   random affine map whose moments obey `s_{k+1} = T s_k` on `s = (1, m, vec M)`
//!   ([`crate::optim::batch_moments`], batch-law operators from
//!   [`crate::optim::batch_law`]), and every SDE has affine drift and quadratic diffusion, so
//!   its moments obey the linear ODE `ṡ = L s`, solved by a matrix exponential
//!   ([`crate::sde::moment_ode`]). The batch-law operators are computed once per micro-batch
//!   size (`m = B` serves SGD and USAM, the configured `m` serves m-USAM) and combined with
//!   each `(η, ρ)`.
//!
//! In both cases the SDE's moments at `t = kη` are exact, so no time-grid error enters.

use super::{ConvergenceStudy, Pair};
use crate::ensemble::Start;
use crate::error::Result;
use crate::landscape::Landscape;
use crate::linalg::{Matrix, Vector};
use crate::optim::batch_law::{AffineFiniteSum, BatchLaw, BatchShape};
use crate::optim::batch_moments::{DiscreteMoments, MomentState};
use crate::optim::moments::LinearRecursion;
use crate::optim::AlgorithmKind;
use crate::oracle::Oracle;
use crate::sde::linear::LinearSde;
use crate::sde::moment_ode::AffineSde;
use crate::sde::musam::affine_sde;
use crate::sde::ModelKind;
use crate::study::test_function::TestFunction;

/// Keeps the largest `|e|` and its time `kη`.
fn track_max(best: &mut (f64, f64), k: usize, eta: f64, e: f64) {
    let e = e.abs();
    if e > best.0 {
        *best = (e, k as f64 * eta);
    }
}

impl ConvergenceStudy {
    /// Exact weak error of a pair at one `η`, when both sides have exact moments (module
    /// docs): `(max, time of max)`; `None` otherwise.
    pub fn exact_weak_error(&self, p: Pair, tf: TestFunction, eta: f64) -> Option<(f64, f64)> {
        let rho = self.rho(eta);
        if let Some(ex) = &self.subsampled {
            let (steps, every) = (self.steps(eta), self.save_every(eta));
            let (disc, sde) =
                ex.trajectories(p.algorithm, p.model, eta, rho, &self.start, steps, every)?;
            let mut best = (0.0_f64, 0.0);
            for (j, (a, b)) in disc.iter().zip(&sde).enumerate().skip(1) {
                track_max(
                    &mut best,
                    j * every,
                    eta,
                    ex.readout(tf, a)? - ex.readout(tf, b)?,
                );
            }
            return Some(best);
        }
        let f = self.landscape.as_ref();
        let rec = LinearRecursion::of(p.algorithm, f, &self.oracle, eta, rho)?;
        let sde = LinearSde::of_model(p.model, f, &self.oracle, eta, rho)?;
        self.exact_max_error(&rec, &sde, tf, eta)
    }

    /// `max_k |E g(x_k) − E g(X_{kη})|` of a linear recursion against a linear SDE from the
    /// configured start, over every step `k ≤ T/η` (or every `save_dt`), and the time of the max.
    pub(super) fn exact_max_error(
        &self,
        rec: &LinearRecursion,
        sde: &LinearSde,
        tf: TestFunction,
        eta: f64,
    ) -> Option<(f64, f64)> {
        let h = self.landscape.centred_quadratic()?;
        let (m0, p0) = self.start.moments();
        let every = self.save_every(eta);
        let n = self.steps(eta);
        // Only test functions of the first two moments have an exact value.
        tf.gaussian_mean(h, &m0, &p0)?;
        // Every step k (or every `every`-th), as the max in the definition requires.
        let mut best = (0.0_f64, 0.0);
        rec.for_each_moment(&m0, &p0, n, every, |k, m, pk| {
            if k == 0 {
                return;
            }
            let (ms, ps) = sde.moments(&m0, &p0, k as f64 * eta);
            let g_alg = tf.gaussian_mean(h, m, pk).expect("checked above");
            let g_sde = tf.gaussian_mean(h, &ms, &ps).expect("checked above");
            track_max(&mut best, k, eta, g_alg - g_sde);
        });
        Some(best)
    }
}

/// The batch laws of one study with real mini-batches on least squares, and the quadratic form
/// of `f` (for `g = f`).
#[derive(Debug, Clone)]
pub struct SubsampledExact {
    /// The law with `m = B` (SGD, USAM).
    pub batch_law: BatchLaw,
    /// The law with the configured micro-batch (m-USAM), if any.
    pub micro_law: Option<BatchLaw>,
    h: Matrix,
    q: Vector,
    f0: f64,
}

impl SubsampledExact {
    /// `None` unless the landscape is an affine finite sum and the oracle subsamples it.
    /// `micro` is m-USAM's micro-batch size, if the study has m-USAM.
    pub fn new(f: &dyn Landscape, oracle: &Oracle, micro: Option<usize>) -> Option<Result<Self>> {
        let Oracle::Subsampling(sub) = oracle else {
            return None;
        };
        let fs = AffineFiniteSum::from_landscape(f)?;
        let shape = BatchShape {
            n: sub.n,
            batch: sub.batch,
            micro: sub.batch,
            replacement: sub.replacement,
        };
        let build = || -> Result<Self> {
            let batch_law = BatchLaw::new(&fs, shape)?;
            let micro_law = match micro {
                Some(m) if m != sub.batch => {
                    Some(BatchLaw::new(&fs, BatchShape { micro: m, ..shape })?)
                }
                Some(_) => Some(batch_law.clone()),
                None => None,
            };
            let d = f.dim();
            let zero = vec![0.0; d];
            let mut g0 = vec![0.0; d];
            f.grad_into(&zero, &mut g0);
            Ok(Self {
                h: fs.h_mean(),
                q: -Vector::from_column_slice(&g0),
                f0: f.loss(&zero),
                batch_law,
                micro_law,
            })
        };
        Some(build())
    }

    /// The law an algorithm's direction follows (`None`: m-USAM without a micro-batch size, or
    /// an algorithm with no affine direction — SAM, DNSAM).
    pub fn law(&self, alg: AlgorithmKind) -> Option<&BatchLaw> {
        match alg {
            AlgorithmKind::Sgd | AlgorithmKind::Usam => Some(&self.batch_law),
            AlgorithmKind::Musam => self.micro_law.as_ref(),
            AlgorithmKind::Sam | AlgorithmKind::Dnsam => None,
        }
    }

    /// The exact discrete recursion of `alg` at `(η, ρ)`.
    pub fn discrete(&self, alg: AlgorithmKind, eta: f64, rho: f64) -> Option<DiscreteMoments> {
        let rho = if alg == AlgorithmKind::Sgd { 0.0 } else { rho };
        Some(DiscreteMoments::new(self.law(alg)?, eta, rho))
    }

    /// The SDE `model` at `(η, ρ)` with exact coefficients (`None` for the second-order
    /// models, which have no subsampled form).
    pub fn sde(&self, model: ModelKind, eta: f64, rho: f64) -> Option<AffineSde> {
        if model.second_order {
            return None;
        }
        let rho = if model.alg == AlgorithmKind::Sgd {
            0.0
        } else {
            rho
        };
        Some(affine_sde(self.law(model.alg)?, eta, rho, model.drift_only))
    }

    /// `E g` from the moments, for the test functions linear in `(m, M)`.
    pub fn readout(&self, tf: TestFunction, s: &MomentState) -> Option<f64> {
        match tf {
            TestFunction::NormSq => Some(s.norm_sq()),
            TestFunction::Loss => Some(s.quadratic(&self.h, &self.q, self.f0)),
            TestFunction::NormPlusGradNorm => None,
        }
    }

    /// Discrete and SDE moment states at `k = 0, every, 2·every, …, steps` (times `kη`).
    #[allow(clippy::too_many_arguments)]
    pub fn trajectories(
        &self,
        alg: AlgorithmKind,
        model: ModelKind,
        eta: f64,
        rho: f64,
        start: &Start,
        steps: usize,
        every: usize,
    ) -> Option<(Vec<MomentState>, Vec<MomentState>)> {
        let rec = self.discrete(alg, eta, rho)?;
        let sde = self.sde(model, eta, rho)?;
        let (m0, p0) = start.moments();
        let s0 = MomentState::from_mean_cov(&m0, &p0);
        let disc = rec.moments(&s0, steps, every);
        let cont = sde.moments(&s0, every as f64 * eta, steps / every);
        Some((disc, cont))
    }
}
