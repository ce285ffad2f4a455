//! Exact weak errors with real mini-batches: SGD, USAM and m-USAM against the SGD, USAM and
//! m-USAM SDEs (and the drift-only ablations) on finite-sum least squares, from exact moments —
//! no Monte Carlo.
//!
//! The discrete side is the moment recursion `s_{k+1} = T s_k`
//! ([`crate::optim::batch_moments`]), the SDE side the linear moment ODE `ṡ = L s` solved by a
//! matrix exponential ([`crate::sde::moment_ode`]), both in `s = (1, m, vec M)`. The test
//! functions `g = ‖x‖²` (`tr M`) and `g = f` (`½⟨H, M⟩ − qᵀm + f(0)`) are linear in `s`, so
//!
//! `e(η) = max_j |E g(x_{t_j/η}) − E g(X_{t_j})|`
//!
//! is exact (up to rounding) at every save time. The batch-law operators are computed once per
//! micro-batch size (`m = B` serves SGD and USAM, the configured `m` serves m-USAM) and
//! combined with each `(η, ρ)`.

use crate::ensemble::Start;
use crate::error::Result;
use crate::landscape::Landscape;
use crate::linalg::{Matrix, Vector};
use crate::optim::batch_law::{AffineFiniteSum, BatchLaw, BatchShape};
use crate::optim::batch_moments::{DiscreteMoments, MomentState};
use crate::optim::AlgorithmKind;
use crate::oracle::Oracle;
use crate::sde::moment_ode::AffineSde;
use crate::sde::musam::affine_sde;
use crate::sde::ModelKind;

use super::test_function::TestFunction;

/// The batch laws of one study and the quadratic form of `f`.
#[derive(Debug, Clone)]
pub struct SubsampledExact {
    /// Per-sample `H_i`, `c_i`.
    pub fs: AffineFiniteSum,
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
                fs: fs.clone(),
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

    /// The SDE `model` at `(η, ρ)` with exact coefficients.
    pub fn sde(&self, model: ModelKind, eta: f64, rho: f64) -> Option<AffineSde> {
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

    /// `H`, `q`, `f(0)` of `f(x) = ½xᵀHx − qᵀx + f(0)`.
    pub fn quadratic_form(&self) -> (&Matrix, &Vector, f64) {
        (&self.h, &self.q, self.f0)
    }

    /// The exact weak error `max_j |E g(x_{k_j}) − E g(X_{t_j})|` over the save times
    /// `t_j = j·save_dt`, `j = 1 … steps/every` (`every` steps per save), and the time of the
    /// maximum.
    #[allow(clippy::too_many_arguments)]
    pub fn weak_error(
        &self,
        alg: AlgorithmKind,
        model: ModelKind,
        tf: TestFunction,
        eta: f64,
        rho: f64,
        start: &Start,
        steps: usize,
        every: usize,
    ) -> Option<(f64, f64)> {
        let (disc, sde) = self.trajectories(alg, model, eta, rho, start, steps, every)?;
        let mut best = (0.0_f64, 0.0);
        for (j, (a, b)) in disc.iter().zip(&sde).enumerate().skip(1) {
            let e = (self.readout(tf, a)? - self.readout(tf, b)?).abs();
            if e > best.0 {
                best = (e, j as f64 * every as f64 * eta);
            }
        }
        Some(best)
    }

    /// Discrete and SDE moment states at the save times `0, every·η, …, steps·η`.
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
