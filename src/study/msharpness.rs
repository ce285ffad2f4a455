//! m-sharpness through the SDE: how the micro-batch size `m` of m-USAM shapes its implicit
//! penalty and its stationary law, from exact moments (no Monte Carlo), discrete against SDE.
//!
//! m-USAM's SDE ([`crate::sde::musam`]) descends
//! `f + (ρ/2)(‖∇f‖² + tr Σ_m)`, `Σ_m(x) = c_m Cov_i(∇f_i(x))`, `c_m = (N−m)/(m(N−1))`
//! (`1/m` with replacement), with the batch's diffusion `Σ_B + ρ(Σ̂_m + Σ̂_mᵀ)`. On finite-sum
//! least squares, for each `m` dividing the batch size `B`:
//!
//! * the implicit penalty at the minimizer `x*` of `f`: `(ρ/2) tr Σ_m(x*) = (ρ/2) c_m
//!   tr Cov_i(∇f_i(x*))` (`∇f(x*) = 0`, so the `‖∇f‖²` part vanishes there);
//! * the minimizer of the penalized objective, `x̃_m = E[A]⁻¹ E[u]` — the stationary mean of both
//!   the discrete algorithm and the SDE (their drifts agree exactly on least squares) — and its
//!   distance to `x*`;
//! * the stationary law of the discrete algorithm (fixed point of the moment recursion
//!   `s = T s`) and of the SDE (`L s = 0` for the moment ODE): `E f − f*`, `E‖x − x*‖²`.
//!
//! SGD (`ρ = 0`) is the reference. The penalty's decrease in `m` is the formula (`c_m`
//! decreases), so it is reported as an observation, not judged. Verdicts: the SDE orders the
//! micro-batch sizes like the discrete algorithm does, by stationary loss and by stationary
//! distance to `x*` (every pair of `m` in the same order). The relative gap between the SDE's
//! and the discrete stationary loss is reported per `m`, not judged: the means agree exactly,
//! and the stationary covariances differ by the discrete recursion's `O(η)` corrections and by
//! the `η² ρ² Cov(D₁)` per step that a model first order in `ρ` drops — a relative `O(ρ²)` error
//! that does not shrink with `η` — so no single tolerance is justified.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::header::RunHeader;
use super::setup::{self, LandscapeConfig, OracleConfig};
use super::verdict::{ClaimKind, Decision, Observation, Verdict};
use crate::error::{Error, Result};
use crate::landscape::Landscape;
use crate::linalg::{Matrix, Vector};
use crate::optim::batch_law::{AffineFiniteSum, BatchLaw, BatchShape};
use crate::optim::batch_moments::{DiscreteMoments, MomentState};
use crate::oracle::Oracle;
use crate::sde::musam::{affine_sde, implicit_penalty};

/// The embedded default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../../experiments/msharpness_least_squares.toml");

/// Configuration (TOML; unknown keys are errors).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MSharpnessConfig {
    /// Figure and table title; empty or absent: generated from the landscape (see
    /// [`Self::display_title`]).
    #[serde(default)]
    pub title: String,
    /// The objective (must be `least_squares`).
    pub landscape: LandscapeConfig,
    /// The oracle (must be `subsampling`).
    pub oracle: OracleConfig,
    /// Micro-batch sizes `m` (each must divide the batch); default: the powers of two that do,
    /// and `B` itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micro_batches: Option<Vec<usize>>,
    /// Learning rate `η`.
    pub eta: f64,
    /// Radius `ρ`.
    pub rho: f64,
}

impl MSharpnessConfig {
    /// The title: `title` if given, else generated from the landscape (the figure adds `η`, `ρ`
    /// and `B`), so it cannot go stale when the problem changes.
    pub fn display_title(&self) -> String {
        if !self.title.trim().is_empty() {
            return self.title.clone();
        }
        format!(
            "m-sharpness through the SDE: m-USAM on the {}",
            self.landscape.describe()
        )
    }
}

/// Reads a (discrete, SDE) pair of values off a row.
type PairOf = fn(&MicroRow) -> (f64, f64);

/// One micro-batch size.
#[derive(Debug, Clone, Serialize)]
pub struct MicroRow {
    /// Micro-batch size `m`.
    pub m: usize,
    /// Its finite-population factor `c_m`.
    pub c_m: f64,
    /// `(ρ/2) tr Σ_m(x*)`.
    pub penalty_at_minimizer: f64,
    /// `‖x̃_m − x*‖`, the shift of the stationary mean.
    pub mean_shift: f64,
    /// Stationary `E f − f*`, discrete.
    pub loss_discrete: f64,
    /// Stationary `E f − f*`, SDE.
    pub loss_sde: f64,
    /// Stationary `E‖x − x*‖²`, discrete.
    pub dist_discrete: f64,
    /// Stationary `E‖x − x*‖²`, SDE.
    pub dist_sde: f64,
}

/// The study's result (`msharpness.json`).
#[derive(Debug, Clone, Serialize)]
pub struct MSharpnessReport {
    /// The shared run header.
    #[serde(flatten)]
    pub header: RunHeader<MSharpnessConfig>,
    /// Landscape description.
    pub landscape: String,
    /// Batch size `B`.
    pub batch: usize,
    /// `tr Cov_i(∇f_i(x*))`.
    pub trace_cov_at_minimizer: f64,
    /// SGD's stationary `(E f − f*, E‖x − x*‖²)`, discrete and SDE.
    pub sgd: MicroRow,
    /// One row per `m`, increasing.
    pub rows: Vec<MicroRow>,
    /// Verdicts.
    pub verdicts: Vec<Verdict>,
    /// Observations.
    pub observations: Vec<Observation>,
}

/// A validated study.
pub struct MSharpnessStudy {
    /// The configuration with defaults filled in.
    pub config: MSharpnessConfig,
    landscape: Box<dyn Landscape>,
    fs: AffineFiniteSum,
    shape: BatchShape,
    micro: Vec<usize>,
}

impl MSharpnessStudy {
    /// Validates.
    pub fn new(mut config: MSharpnessConfig) -> Result<Self> {
        let landscape = config.landscape.build()?;
        let oracle = config.oracle.build(landscape.as_ref())?;
        let Oracle::Subsampling(sub) = oracle else {
            return Err(Error::config(
                "oracle.kind",
                "not subsampling",
                "must be \"subsampling\": m-sharpness splits real mini-batches",
            ));
        };
        let fs = AffineFiniteSum::from_landscape(landscape.as_ref()).ok_or_else(|| {
            Error::config(
                "landscape.kind",
                landscape.describe(),
                "must be least_squares (exact moments need affine per-sample gradients)",
            )
        })?;
        setup::positive("eta", config.eta)?;
        setup::non_negative("rho", config.rho)?;
        let b = sub.batch;
        let micro = match &config.micro_batches {
            Some(list) => {
                if list.is_empty() {
                    return Err(Error::config("micro_batches", "[]", "must not be empty"));
                }
                let mut v = list.clone();
                v.sort_unstable();
                v.dedup();
                v
            }
            None => {
                let mut v: Vec<usize> = (0..usize::BITS)
                    .map(|k| 1usize << k)
                    .take_while(|&m| m <= b)
                    .filter(|m| b % m == 0)
                    .collect();
                if v.last() != Some(&b) {
                    v.push(b);
                }
                v
            }
        };
        let shape = BatchShape {
            n: sub.n,
            batch: b,
            micro: b,
            replacement: sub.replacement,
        };
        for (i, &m) in micro.iter().enumerate() {
            BatchShape { micro: m, ..shape }.check().map_err(|_| {
                Error::config(
                    format!("micro_batches[{i}]"),
                    m,
                    format!("must be ≥ 1 and divide the batch size {b}"),
                )
            })?;
        }
        config.micro_batches = Some(micro.clone());
        if fs.h_mean().clone().lu().solve(&fs.c_mean()).is_none() {
            return Err(Error::config(
                "landscape",
                landscape.describe(),
                "needs an invertible H = AᵀA/N (N ≥ d samples in general position)",
            ));
        }
        Ok(Self {
            config,
            landscape,
            fs,
            shape,
            micro,
        })
    }

    /// The micro-batch sizes, increasing.
    pub fn micro_batches(&self) -> &[usize] {
        &self.micro
    }

    /// One row: the stationary laws of the discrete algorithm and the SDE with micro-batch `m`
    /// at radius `rho` (`rho = 0`: SGD).
    fn row(
        &self,
        m: usize,
        rho: f64,
        x_star: &Vector,
        tr_cov: f64,
        f_star: f64,
    ) -> Result<MicroRow> {
        let law = BatchLaw::new(
            &self.fs,
            BatchShape {
                micro: m,
                ..self.shape
            },
        )?;
        let eta = self.config.eta;
        // No stationary law: name the step size (and the radius, for m-USAM) and the row.
        let unstable = |e: Error| {
            if rho == 0.0 {
                Error::config("eta", eta, format!("is too large for SGD: {e}; lower eta"))
            } else {
                Error::config(
                    "eta and rho",
                    format!("{} and {}", setup::title_num(eta), setup::title_num(rho)),
                    format!("are too large for m-USAM with m = {m}: {e}; lower either"),
                )
            }
        };
        let disc = DiscreteMoments::new(&law, eta, rho)
            .stationary()
            .map_err(unstable)?;
        let sde = affine_sde(&law, eta, rho, false)
            .stationary()
            .map_err(unstable)?;
        let (h, q) = (self.fs.h_mean(), self.fs.c_mean());
        let f0 = self.landscape.loss(&vec![0.0; x_star.len()]);
        let loss = |s: &MomentState| s.quadratic(&h, &q, f0) - f_star;
        let cov_star = Matrix::identity(1, 1) * tr_cov;
        Ok(MicroRow {
            m,
            c_m: self.shape.factor(m),
            penalty_at_minimizer: implicit_penalty(&law, &cov_star, rho),
            mean_shift: (sde.mean() - x_star).norm(),
            loss_discrete: loss(&disc),
            loss_sde: loss(&sde),
            dist_discrete: disc.dist_sq(x_star),
            dist_sde: sde.dist_sq(x_star),
        })
    }

    /// Runs the study (exact, single-threaded: a few small linear solves per `m`).
    pub fn run(&self, threads: usize) -> Result<MSharpnessReport> {
        let t0 = Instant::now();
        let (h, q) = (self.fs.h_mean(), self.fs.c_mean());
        let x_star = h.clone().lu().solve(&q).expect("validated: H invertible");
        let f_star = self.landscape.loss(x_star.as_slice());
        let tr_cov = self.fs.gradient_covariance(&x_star).trace();
        let rho = self.config.rho;
        let b = self.shape.batch;
        let sgd = self.row(b, 0.0, &x_star, tr_cov, f_star)?;
        let rows = self
            .micro
            .iter()
            .map(|&m| self.row(m, rho, &x_star, tr_cov, f_star))
            .collect::<Result<Vec<_>>>()?;
        let verdicts = self.verdicts(&rows);
        let observations = self.observations(&rows, &sgd);
        Ok(MSharpnessReport {
            header: RunHeader::new(
                "msharpness",
                self.config.clone(),
                self.data_seed(),
                threads,
                t0,
                Vec::new(),
            ),
            landscape: self.landscape.describe(),
            batch: b,
            trace_cov_at_minimizer: tr_cov,
            sgd,
            rows,
            verdicts,
            observations,
        })
    }

    /// The data seed (the study itself draws no random numbers).
    fn data_seed(&self) -> u64 {
        match &self.config.landscape {
            LandscapeConfig::LeastSquares { seed, .. } => *seed,
            _ => 0,
        }
    }

    fn verdicts(&self, rows: &[MicroRow]) -> Vec<Verdict> {
        let src = "m-USAM SDE derived by one-step moment matching (docs/theory.md); m-sharpness: Paper 2 (Andriushchenko & Flammarion, ICML 2022)";
        let mut out = Vec::new();
        let metrics: [(&str, PairOf); 2] = [
            ("stationary E f − f*", |r| (r.loss_discrete, r.loss_sde)),
            ("stationary E‖x − x*‖²", |r| {
                (r.dist_discrete, r.dist_sde)
            }),
        ];
        for (what, get) in metrics {
            let (mut agree, mut total) = (0usize, 0usize);
            let mut disagreements = Vec::new();
            for (i, a) in rows.iter().enumerate() {
                for b in &rows[i + 1..] {
                    let ((da, sa), (db, sb)) = (get(a), get(b));
                    total += 1;
                    if (da - db) * (sa - sb) > 0.0 {
                        agree += 1;
                    } else {
                        disagreements.push(format!("m = {} vs {}", a.m, b.m));
                    }
                }
            }
            let reason = if disagreements.is_empty() {
                let order: Vec<String> = rows
                    .iter()
                    .map(|r| format!("{}: {:.3e} / {:.3e}", r.m, get(r).0, get(r).1))
                    .collect();
                format!("m: discrete / SDE = {}", order.join(", "))
            } else {
                format!("orders differ for {}", disagreements.join(", "))
            };
            out.push(
                Verdict::new(
                    format!("the m-USAM SDE orders the micro-batch sizes like m-USAM by {what}"),
                    ClaimKind::Every,
                    agree as f64,
                    None,
                    format!("all {total} pairs of m in the same order"),
                    Decision::from_bool(agree == total),
                )
                .reason(reason)
                .source(src),
            );
        }
        out
    }

    fn observations(&self, rows: &[MicroRow], sgd: &MicroRow) -> Vec<Observation> {
        let (first, last) = (&rows[0], &rows[rows.len() - 1]);
        let mut out = vec![Observation {
            what: format!(
                "implicit penalty (ρ/2) tr Σ_m(x*), m = {} over m = {}",
                first.m, last.m
            ),
            measured: first.penalty_at_minimizer / last.penalty_at_minimizer,
            ci: None,
            reference: format!(
                "c_{} / c_{} (the formula): {:.4e} … {:.4e}",
                first.m, last.m, first.penalty_at_minimizer, last.penalty_at_minimizer
            ),
            reading: "information".into(),
        }];
        let labelled = std::iter::once(("SGD".to_string(), sgd))
            .chain(rows.iter().map(|r| (format!("m-USAM, m = {}", r.m), r)));
        for (label, r) in labelled {
            out.push(Observation {
                what: format!("{label}: stationary E f − f*, SDE against discrete"),
                measured: r.loss_sde / r.loss_discrete - 1.0,
                ci: None,
                reference: format!("discrete {:.4e}, SDE {:.4e}", r.loss_discrete, r.loss_sde),
                reading: "relative gap".into(),
            });
        }
        out
    }
}
