//! The trajectories study: the discrete algorithms and their SDEs moving side by side (docs/theory.md §5).
//!
//! For each algorithm `alg` (with its radius `ρ_alg`) the discrete map
//! `x_{k+1} = x_k − η ∇f_γ(x_k + ρ u_k)` and its own SDE `dX = −b_alg(X) dt + √η D_alg(X) dW`
//! (Euler–Maruyama with `h = η/substeps`; closed forms of [`crate::sde::model`]) run in one
//! [`Ensemble`], coupled to the same Brownian path per Monte Carlo path (additive oracle). At
//! every save time `t_j` and for each observable
//! `g ∈ {f(x), ‖∇f(x)‖, ‖x‖, tr ∇²f(x)}` the study reports, per system,
//!
//! * the mean `E g(x_{t_j/η})` (resp. `E g(X_{t_j})`) with a Student-t CI;
//! * the 5 % and 95 % empirical quantiles (linear interpolation between order statistics).
//!
//! Quantiles need every path's value at every save time: the per-block accumulator keeps them
//! (`paths × saves × systems × observables` values, bounded by validation to
//! [`MAX_STORED_VALUES`]) and blocks are concatenated in block order, so results are
//! bit-identical at any thread count. The first `sample_paths` paths of every system are also
//! kept whole (at save times) for the 2-D figure. `tr ∇²f` forms the Hessian and is only
//! computed for `d ≤ 64`.

mod budget;

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::header::RunHeader;
use super::setup::{self, LandscapeConfig, OracleConfig, StartConfig};
use super::verdict::{Observation, Verdict};
use crate::ensemble::{BlockView, Dynamics, Ensemble, Observer, Start, System};
use crate::error::{Error, Result};
use crate::landscape::Landscape;
use crate::linalg::Matrix;
use crate::optim::{AlgorithmKind, Discrete};
use crate::oracle::Oracle;
use crate::sde::{ModelKind, SdeForm, SdeModel};
use crate::stats::{mean_ci, Moments};

/// The embedded default configuration (`experiments/trajectories_two_basin.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../../../experiments/trajectories_two_basin.toml");

/// Bound on stored per-path values (8 bytes each).
pub const MAX_STORED_VALUES: usize = 20_000_000;
/// Most points stored per sample path: the surfaces figure draws every step up to this many
/// steps, every `⌈steps / MAX_SAMPLE_POINTS⌉`-th step beyond.
pub const MAX_SAMPLE_POINTS: usize = 20_000;
/// Largest dimension for which `tr ∇²f` is computed.
pub const MAX_TRACE_DIM: usize = 64;

fn default_substeps() -> usize {
    8
}
fn default_samples() -> usize {
    5
}
fn default_bound() -> f64 {
    1e6
}

/// The trajectories study's configuration (TOML; unknown keys are errors).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrajectoriesConfig {
    /// Figure and table title; empty or absent: generated from the parameters (see
    /// [`Self::display_title`]).
    #[serde(default)]
    pub title: String,
    /// Master seed.
    pub seed: u64,
    /// Monte Carlo paths.
    pub paths: usize,
    /// Paths per block.
    #[serde(default = "setup::default_block")]
    pub block_size: usize,
    /// Algorithms; each runs beside its own SDE.
    pub algorithms: Vec<AlgorithmKind>,
    /// Radius per SAM variant.
    #[serde(default)]
    pub rho: BTreeMap<AlgorithmKind, f64>,
    /// Learning rate `η`.
    pub eta: f64,
    /// Horizon `T`.
    pub horizon: f64,
    /// Number of save intervals (save times `t_j = j T / saves`).
    pub saves: usize,
    /// Euler–Maruyama sub-steps per `η`.
    #[serde(default = "default_substeps")]
    pub substeps: usize,
    /// Paths kept whole for the 2-D figure.
    #[serde(default = "default_samples")]
    pub sample_paths: usize,
    /// Confidence level of the mean's CI.
    #[serde(default = "setup::default_level")]
    pub level: f64,
    /// A path diverges when `‖x‖` exceeds this.
    #[serde(default = "default_bound")]
    pub divergence_bound: f64,
    /// Extent `[x₀ min, x₀ max, x₁ min, x₁ max]` of the surfaces figure (2-D landscapes;
    /// default: the sample paths' bounding box plus a margin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surface_extent: Option<[f64; 4]>,
    /// The objective.
    pub landscape: LandscapeConfig,
    /// The gradient oracle.
    pub oracle: OracleConfig,
    /// The initial condition.
    pub start: StartConfig,
}

impl TrajectoriesConfig {
    /// The title: `title` if given, else generated from the landscape, the noise and `η`.
    pub fn display_title(&self) -> String {
        if !self.title.trim().is_empty() {
            return self.title.clone();
        }
        format!(
            "Trajectories on the {}, {}, η = {}",
            self.landscape.describe(),
            self.oracle.describe(),
            setup::title_num(self.eta)
        )
    }
}

/// An observable `g`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Observable {
    /// `f(x)`.
    Loss,
    /// `‖∇f(x)‖`.
    GradNorm,
    /// `‖x‖`.
    Norm,
    /// `tr ∇²f(x)`.
    TraceHessian,
}

impl Observable {
    /// Axis label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Loss => "f(x)",
            Self::GradNorm => "‖∇f(x)‖",
            Self::Norm => "‖x‖",
            Self::TraceHessian => "tr ∇²f(x)",
        }
    }
}

/// Summary of one observable of one system over time.
#[derive(Debug, Clone, Serialize)]
pub struct Band {
    /// The observable.
    pub observable: Observable,
    /// Mean per save time.
    pub mean: Vec<f64>,
    /// Lower CI end of the mean.
    pub ci_lo: Vec<f64>,
    /// Upper CI end of the mean.
    pub ci_hi: Vec<f64>,
    /// 5 % quantile.
    pub q05: Vec<f64>,
    /// 95 % quantile.
    pub q95: Vec<f64>,
}

/// One system.
#[derive(Debug, Clone, Serialize)]
pub struct SystemTrajectories {
    /// Label (`usam`, `usam_sde`).
    pub label: String,
    /// Algorithm.
    pub algorithm: AlgorithmKind,
    /// `discrete` or `sde`.
    pub kind: String,
    /// Radius.
    pub rho: f64,
    /// Diverged paths (excluded from statistics from then on).
    pub diverged: u64,
    /// One band per observable.
    pub bands: Vec<Band>,
    /// The first `sample_paths` paths at `t = 0` and after every `sample_every` steps
    /// (`[path][point][coordinate]`; every step unless the run has more than
    /// [`MAX_SAMPLE_POINTS`] steps).
    pub samples: Vec<Vec<Vec<f64>>>,
}

/// The study's result (`trajectories.json`).
#[derive(Debug, Clone, Serialize)]
pub struct TrajectoriesReport {
    /// The shared run header.
    #[serde(flatten)]
    pub header: RunHeader<TrajectoriesConfig>,
    /// Landscape description.
    pub landscape: String,
    /// Save times.
    pub times: Vec<f64>,
    /// Steps between two stored points of the sample paths (1: every step).
    pub sample_every: usize,
    /// Systems (algorithms first, then SDEs, in `algorithms` order).
    pub systems: Vec<SystemTrajectories>,
    /// Always empty: this study makes no pass/fail claim.
    pub verdicts: Vec<Verdict>,
    /// Final-time comparison of means, discrete vs SDE (`consistent` / `differs`).
    pub observations: Vec<Observation>,
}

impl TrajectoriesReport {
    /// The study makes no pass/fail claim (its discrete-vs-SDE comparisons are observations),
    /// so this is `true` unless a verdict is ever added; diverged paths are warnings.
    pub fn all_pass(&self) -> bool {
        super::verdict::all_pass(&self.verdicts)
    }
}

/// A validated trajectories study.
pub struct TrajectoriesStudy {
    /// The configuration.
    pub config: TrajectoriesConfig,
    landscape: Box<dyn Landscape>,
    oracle: Oracle,
    start: Start,
    steps: usize,
    save_every: usize,
    observables: Vec<Observable>,
}

impl TrajectoriesStudy {
    /// Parses and validates TOML.
    pub fn from_toml(text: &str) -> Result<Self> {
        Self::new(setup::parse_toml(text)?)
    }

    /// The run's estimated memory and work ([`crate::study::budget`]), from the configuration
    /// alone.
    pub fn budget(
        config: &TrajectoriesConfig,
        threads: usize,
    ) -> Result<crate::study::budget::Budget> {
        budget::budget(config, threads)
    }

    /// Validates: sizes and the memory/work estimate first, then every field.
    pub fn new(config: TrajectoriesConfig) -> Result<Self> {
        Self::budget(&config, rayon::current_num_threads())?
            .check(&crate::study::budget::Limits::default())?;
        let c = &config;
        setup::check_ensemble(c.paths, 2, c.block_size, c.algorithms.len())?;
        setup::check_radii("rho", &c.rho, &c.algorithms)?;
        let eta = setup::positive("eta", c.eta)?;
        let horizon = setup::positive("horizon", c.horizon)?;
        let steps = setup::whole_steps("horizon", horizon, eta)?;
        if c.saves == 0 || steps % c.saves != 0 {
            return Err(Error::config(
                "saves",
                c.saves,
                format!("must be ≥ 1 and divide the number of steps T/η = {steps}"),
            ));
        }
        if c.substeps == 0 {
            return Err(Error::config("substeps", c.substeps, "must be ≥ 1"));
        }
        if !(c.level > 0.0 && c.level < 1.0) {
            return Err(Error::config("level", c.level, "must be in (0, 1)"));
        }
        setup::positive("divergence_bound", c.divergence_bound)?;
        if let Some(e) = c.surface_extent {
            for (i, v) in e.iter().enumerate() {
                setup::finite(&format!("surface_extent[{i}]"), *v)?;
            }
            if !(e[0] < e[1] && e[2] < e[3]) {
                return Err(Error::config(
                    "surface_extent",
                    format!("{e:?}"),
                    "must be [x0_min, x0_max, x1_min, x1_max] with min < max",
                ));
            }
        }
        let landscape = c.landscape.build()?;
        let d = landscape.dim();
        let oracle = c.oracle.build(landscape.as_ref())?;
        let start = c.start.build(d)?;
        let mut observables = vec![Observable::Loss, Observable::GradNorm, Observable::Norm];
        if d <= MAX_TRACE_DIM {
            observables.push(Observable::TraceHessian);
        }
        let stored = crate::study::budget::product(&[
            ("paths", c.paths),
            ("saves + 1", c.saves.saturating_add(1)),
            ("2 systems per algorithm", 2),
            ("algorithms", c.algorithms.len()),
            ("observables", observables.len()),
        ])?;
        if stored > MAX_STORED_VALUES {
            return Err(Error::config(
                "paths",
                c.paths,
                format!(
                    "too many stored values for the quantile bands: paths × (saves + 1) × systems × observables = {stored} > {MAX_STORED_VALUES}; lower paths or saves"
                ),
            ));
        }
        Ok(Self {
            steps,
            save_every: steps / c.saves,
            observables,
            config,
            landscape,
            oracle,
            start,
        })
    }

    /// The landscape (for figures).
    pub fn landscape(&self) -> &dyn Landscape {
        self.landscape.as_ref()
    }

    /// Path-steps (for progress).
    pub fn total_work(&self) -> u64 {
        (self.config.paths as u64).saturating_mul(self.steps as u64)
    }

    fn rho(&self, a: AlgorithmKind) -> f64 {
        if a == AlgorithmKind::Sgd {
            0.0
        } else {
            self.config.rho[&a]
        }
    }

    /// Runs the study.
    pub fn run(
        &self,
        threads: usize,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<TrajectoriesReport> {
        let t0 = Instant::now();
        let c = &self.config;
        let f = self.landscape.as_ref();
        let mut systems = Vec::new();
        for &a in &c.algorithms {
            systems.push(System {
                label: a.name().into(),
                dynamics: Dynamics::Discrete(Discrete {
                    kind: a,
                    eta: c.eta,
                    rho: self.rho(a),
                }),
            });
        }
        for &a in &c.algorithms {
            let model = SdeModel::new(
                ModelKind::own(a),
                f,
                &self.oracle,
                c.eta,
                self.rho(a),
                SdeForm::Auto,
                64,
            )?;
            systems.push(System {
                label: format!("{}_sde", a.name()),
                dynamics: Dynamics::Euler {
                    model,
                    substeps: c.substeps,
                },
            });
        }
        let obs = BandObserver {
            observables: self.observables.clone(),
            n_systems: systems.len(),
            n_saves: c.saves + 1,
            samples: c.sample_paths.min(c.paths),
            sample_every: sample_stride(self.steps),
        };
        let ens = Ensemble {
            landscape: f,
            oracle: &self.oracle,
            eta: c.eta,
            steps: self.steps,
            save_every: self.save_every,
            systems: &systems,
            paths: c.paths,
            block_size: c.block_size,
            seed: c.seed,
            level: 0,
            start: &self.start,
            divergence_bound: c.divergence_bound,
        };
        let out = ens.run(&obs, progress);
        let acc = out.acc;
        let na = c.algorithms.len();
        let no = self.observables.len();
        let mut warnings = Vec::new();
        let mut result = Vec::new();
        for (si, sys) in systems.iter().enumerate() {
            let alg = c.algorithms[si % na];
            if out.diverged[si] > 0 {
                warnings.push(format!(
                    "{} of {} paths of {} diverged (‖x‖ > {}); excluded from then on",
                    out.diverged[si], c.paths, sys.label, c.divergence_bound
                ));
            }
            let mut bands = Vec::new();
            for (oi, &o) in self.observables.iter().enumerate() {
                let mut b = Band {
                    observable: o,
                    mean: Vec::new(),
                    ci_lo: Vec::new(),
                    ci_hi: Vec::new(),
                    q05: Vec::new(),
                    q95: Vec::new(),
                };
                for j in 0..=c.saves {
                    let k = (j * systems.len() + si) * no + oi;
                    let m = mean_ci(&acc.moments[k], c.level);
                    b.mean.push(m.mean);
                    b.ci_lo.push(m.lo);
                    b.ci_hi.push(m.hi);
                    let mut v = acc.values[k].clone();
                    v.sort_by(|a, b| a.total_cmp(b));
                    b.q05.push(quantile(&v, 0.05));
                    b.q95.push(quantile(&v, 0.95));
                }
                bands.push(b);
            }
            result.push(SystemTrajectories {
                label: sys.label.clone(),
                algorithm: alg,
                kind: if si < na { "discrete" } else { "sde" }.into(),
                rho: self.rho(alg),
                diverged: out.diverged[si],
                bands,
                samples: acc.samples[si].clone(),
            });
        }
        // Final-time comparison (informational).
        let mut observations = Vec::new();
        for i in 0..na {
            for (oi, &o) in self.observables.iter().enumerate() {
                let k = |s: usize| (c.saves * systems.len() + s) * no + oi;
                let (a, b) = (
                    mean_ci(&acc.moments[k(i)], c.level),
                    mean_ci(&acc.moments[k(na + i)], c.level),
                );
                let diff = a.mean - b.mean;
                let hw = (a.half_width.powi(2) + b.half_width.powi(2)).sqrt();
                observations.push(Observation {
                    what: format!(
                        "{} vs {}_sde: E {} at T (difference discrete − SDE)",
                        c.algorithms[i],
                        c.algorithms[i],
                        o.label()
                    ),
                    measured: diff,
                    ci: Some([diff - hw, diff + hw]),
                    reference: "0 (first-order weak approximation at small η)".into(),
                    reading: if diff.abs() <= hw {
                        "consistent"
                    } else {
                        "differs"
                    }
                    .into(),
                });
            }
        }
        let times = (0..=c.saves)
            .map(|j| (j * self.save_every) as f64 * c.eta)
            .collect();
        Ok(TrajectoriesReport {
            header: RunHeader::new("trajectories", c.clone(), c.seed, threads, t0, warnings),
            landscape: f.describe(),
            times,
            sample_every: sample_stride(self.steps),
            systems: result,
            verdicts: Vec::new(),
            observations,
        })
    }
}

/// Empirical quantile of sorted values (linear interpolation; `NaN` if empty).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    if i + 1 < sorted.len() {
        sorted[i] * (1.0 - frac) + sorted[i + 1] * frac
    } else {
        sorted[i]
    }
}

/// Steps between stored points of the sample paths: 1 up to [`MAX_SAMPLE_POINTS`] steps.
pub(crate) fn sample_stride(steps: usize) -> usize {
    steps.div_ceil(MAX_SAMPLE_POINTS).max(1)
}

struct BandObserver {
    observables: Vec<Observable>,
    n_systems: usize,
    n_saves: usize,
    samples: usize,
    /// Steps between stored sample-path points.
    sample_every: usize,
}

impl BandObserver {
    /// Appends the current positions of the block's paths whose global index is below
    /// `samples` to the sample paths.
    fn record_samples(&self, acc: &mut BandAcc, view: &BlockView) {
        if view.first_path >= self.samples {
            return;
        }
        for s in 0..self.n_systems {
            let x = &view.states[s];
            for j in 0..x.ncols() {
                if view.first_path + j >= self.samples {
                    break;
                }
                let paths = &mut acc.samples[s];
                if paths.len() <= j {
                    paths.push(Vec::new());
                }
                paths[j].push(x.column(j).iter().copied().collect());
            }
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct BandAcc {
    /// `[(save · n_systems + system) · n_obs + obs]`.
    moments: Vec<Moments>,
    values: Vec<Vec<f64>>,
    /// `[system][path][save][coordinate]`.
    samples: Vec<Vec<Vec<Vec<f64>>>>,
}

impl Observer for BandObserver {
    type Acc = BandAcc;
    fn new_acc(&self) -> BandAcc {
        let n = self.n_saves * self.n_systems * self.observables.len();
        BandAcc {
            moments: vec![Moments::default(); n],
            values: vec![Vec::new(); n],
            samples: vec![Vec::new(); self.n_systems],
        }
    }
    #[allow(clippy::needless_range_loop)] // `j` indexes states, liveness and values together
    fn on_save(&self, acc: &mut BandAcc, save: usize, _t: f64, view: &BlockView) {
        let f = view.landscape;
        let d = f.dim();
        let p = view.states[0].ncols();
        let no = self.observables.len();
        let mut g = Matrix::zeros(d, p);
        let mut loss = vec![0.0; p];
        for s in 0..self.n_systems {
            let x = &view.states[s];
            f.loss_batch(x, &mut loss);
            f.grad_batch(x, &mut g);
            for (oi, &o) in self.observables.iter().enumerate() {
                let k = (save * self.n_systems + s) * no + oi;
                for j in 0..p {
                    if !view.alive[s][j] {
                        continue;
                    }
                    let v = match o {
                        Observable::Loss => loss[j],
                        Observable::GradNorm => g.column(j).norm(),
                        Observable::Norm => x.column(j).norm(),
                        Observable::TraceHessian => {
                            f.hessian(&x.as_slice()[j * d..(j + 1) * d]).trace()
                        }
                    };
                    acc.moments[k].push(v);
                    acc.values[k].push(v);
                }
            }
        }
        // Sample paths: the start here, then every `sample_every` steps in `on_step`.
        if save == 0 {
            self.record_samples(acc, view);
        }
    }
    fn on_step(&self, acc: &mut BandAcc, k: usize, _t: f64, view: &BlockView) {
        if k.is_multiple_of(self.sample_every) {
            self.record_samples(acc, view);
        }
    }
    fn merge(&self, total: &mut BandAcc, block: BandAcc) {
        for (a, b) in total.moments.iter_mut().zip(&block.moments) {
            a.merge(b);
        }
        for (a, b) in total.values.iter_mut().zip(block.values) {
            a.extend(b);
        }
        for (a, b) in total.samples.iter_mut().zip(block.samples) {
            a.extend(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        let v = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.0);
        assert!((quantile(&v, 0.05) - 0.2).abs() < 1e-12);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn default_config_validates() {
        let s = TrajectoriesStudy::from_toml(DEFAULT_CONFIG).unwrap();
        assert!(s.total_work() > 0);
    }
}
