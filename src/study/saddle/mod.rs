//! The saddle study: where SAM gets stuck, measured against the theory (saddle points in
//! Compagnoni et al., *An SDE for Modeling SAM: Theory and Insights*, ICML 2023; thresholds
//! derived in `docs/theory.md`).
//!
//! **Model.** `f(x) = ½ xᵀHx` with at least one negative eigenvalue; the saddle is `x = 0`,
//! `μ = min_{λ_i<0} |λ_i|` is "the" negative curvature `|λ|` of the predictions. Discrete
//! algorithms (one oracle draw per step, used at both SAM points; additive noise `Z = σξ`):
//! `x ← x − η ∇f_γ(x + ρ u)` with `u = 0` (GD/SGD), `∇f_γ` (USAM), `∇f_γ/‖∇f_γ‖` (SAM),
//! `∇f_γ/‖∇f‖` (DNSAM). Their SDEs/ODEs come from [`crate::sde`]: exact OU transitions
//! for the linear ones (SGD, USAM), Euler–Maruyama with `substeps` sub-steps otherwise.
//!
//! **Predictions** drawn over the simulations:
//! * full-batch USAM: `ẏ_i = −λ_i(1 + ρλ_i) y_i`, the saddle attracts iff `ρ μ > 1`;
//! * full-batch SAM (= DNSAM): the region `‖∇f(x)‖ < ρ μ` is forward invariant and attracted to
//!   the saddle for every `ρ > 0`; the discrete algorithm does not reach it but settles into a
//!   sign-flipping 2-cycle along the eigendirection of the **largest `|λ_i|`** (positive or
//!   negative), at `‖x‖ ≈ ηρ max_i|λ_i| / 2` (exactly `ηρ|λ_j|/(2 − ηλ_j)`, [`stall`]);
//! * mini-batch SAM with isotropic noise `σ`, valid while `‖∇f‖ ≪ σ`: USAM with
//!   `ρ_eff = ρ κ_d/σ`, attracted iff `ρ κ_d μ > σ` (`κ_d = (1 − 1/d) E[1/‖ξ‖]`, [`kappa`]).
//!
//! **Operational definitions** (radii in `[classify]`, `R` = `escape_radius`, `ε` =
//! `attraction_radius`, `c` = `converge_radius`; the "tail" is the last `tail_fraction` of the
//! steps):
//! * *escape*: `‖x_t‖ ≥ R` at some `t ≤ T` (a path that diverges has escaped); the escape time is
//!   the first such `t`. Paths that have not escaped by `T` are **censored** and counted as such.
//! * *converge*: not escaped and `‖x_T‖ < c`.
//! * *stall*: not escaped, `‖x_T‖ < ε`, `mean_tail ‖x‖ < ε` and `min_tail ‖x‖ ≥ c` (held near
//!   the saddle but not converging to it). The tail *mean* rather than its maximum, because with
//!   noise a stalled path fluctuates and its maximum over thousands of steps is a poor statistic.
//! * *undecided*: none of the above (e.g. drifting slowly at `T`).
//! * *attracted at `T`*: `‖x_T‖ < ε` (converged or stalled); its fraction over paths carries a
//!   **Wilson score** interval at level `verdict.level`.
//!
//! **Phase diagrams.** On a grid over `(ρ, |λ|)` (full batch; `H = diag(others, −|λ|)`) and over
//! `(ρ, σ)` (mini-batch SAM, additive noise), every cell runs `paths` discrete paths from the
//! configured start to `T` and reports the attraction fraction. With
//! `phase_rho_sigma.sde_substeps` set, the `(ρ, σ)` grid is also run for SAM's SDE (closed
//! form, Euler–Maruyama, `sde_paths` paths, an independent ensemble): a second panel
//! judged against the same prediction. Agreement measure: along each
//! row (fixed `|λ|` or `σ`) the simulated boundary `ρ_sim` is the smallest `ρ` at which the
//! fraction, linearly interpolated in `log ρ`, reaches ½; its interval comes from the same
//! crossing of the Wilson upper and lower curves. It is compared with the predicted `ρ_pred` in
//! decades, `Δ = log₁₀(ρ_sim/ρ_pred)`:
//! * USAM: `ρ_pred = 1/|λ|`; pass iff `max_rows |Δ| ≤ verdict.usam_tolerance_dex`.
//! * mini-batch SAM: `ρ_pred = σ/(κ_d μ)`; pass iff `max_rows |Δ| ≤ verdict.minibatch_tolerance_dex`.
//!   The prediction is a local-stability statement at the saddle. At finite `T` the crossing
//!   can move either way: just above `ρ_pred` the well is shallow and noise kicks paths out
//!   before `T`; just below it the escape rate `μ(1 − ρκ_dμ/σ)` is so small that paths are
//!   still inside `ε` at `T`. The start is a small ball so that `‖∇f(x₀)‖ ≪ σ` on the whole
//!   grid, and `ε` is large against the stationary spread of attracted paths (`≈ 0.03`–`0.1`
//!   for the default `σ ≤ 0.5`) and small against the distance at which escaping paths leave.
//! * The USAM tolerance covers the finite-`T` shift (paths with `ρ|λ|` just above 1 decay too
//!   slowly to reach `ε` by `T`) and the grid's resolution (half a cell, `0.042` dex on the
//!   default grid).
//! * full-batch SAM: the region is *sufficient*, not necessary (paths outside it can be drawn in
//!   after their positive-curvature component has decayed). The predicted fraction of a cell is
//!   the probability that `x₀` lies in the region, computed from `region_samples` draws of the
//!   start distribution; `ρ_pred` is its ½-crossing. Verdicts: (i) every path that starts in the
//!   region is attracted (`k = n`); (ii) `max_rows Δ ≤ verdict.region_tolerance_dex` (one-sided:
//!   the basin may be larger than the region, never smaller). How much larger is visible in the
//!   figure: for `H = diag(1, −|λ|)` the positive-curvature coordinate decays first, after which
//!   the path is attracted iff `|y₂| < ρ` (on the unstable axis the region *is* the basin:
//!   `|λ||y₂| < ρ|λ|`). So the simulated boundary is near `ρ ≈ ‖x₀‖ sin 45°`, independent of
//!   `|λ|`, while the region's ½-line moves to `ρ ∝ 1/|λ|` for small `|λ|`: the region is close to
//!   the basin when `|λ|` is comparable to the positive eigenvalue and conservative by up to a
//!   decade at `|λ| = 0.1`.
//!
//! **Curves.** The SDE of full-batch SAM/DNSAM is an ODE that reaches the saddle in finite time
//! and then chatters; its Euler–Maruyama "stall" level is `∝ h = η/substeps`, a property of the
//! integrator, not of the model (the discrete map's `ηρ max|λ|/2` is a property of the
//! algorithm).
//!
//! **Reference run** (`H = diag(1, −0.5)`, `η = 0.01`, 20 000 steps): each row names an
//! algorithm, `ρ`, `σ`, a start and the expected outcome; deterministic rows run one path, noisy
//! ones `reference.paths` paths and pass iff the Wilson lower bound of the fraction with the
//! expected outcome exceeds ½. The stall distance of full-batch SAM (tail mean of `‖x‖`) is
//! compared with `ηρ max_i|λ_i| / 2` (relative error ≤ `verdict.stall_tolerance`) — on the
//! reference rows and on the `[stall]` spectra, chosen so that this and the older `ηρ min|λ_−|`
//! differ (on `diag(1, −0.5)` they coincide); the report's `stall` table shows both, the exact
//! 2-cycle amplitude and the direction the cycle takes.
//!
//! Determinism: every run is one [`Ensemble`] whose per-path records are concatenated in block
//! order, so results are bit-identical at any thread count.

mod budget;
mod config;
mod curves;
mod observer;
mod phase;
mod reference;
mod report;
mod stall;
mod stats;
mod verdicts;

use std::time::Instant;

use crate::ensemble::{Ensemble, Start, System};
use crate::error::{Error, Result};
use crate::landscape::Landscape;
use crate::optim::AlgorithmKind;
use crate::oracle::{AdditiveNoise, Oracle};
use crate::sde::sam_tables::kappa;

use super::header::RunHeader;
use super::setup;
use config::{max_abs, min_negative, positive_count, steps_of};
use observer::{PathAcc, PathObserver};
use report::definitions;

pub use super::verdict::{ClaimKind, Decision, Observation, Verdict};
pub use config::{
    CaseConfig, ClassifyConfig, CurvesConfig, LogGrid, PanelConfig, ReferenceConfig, ReferenceRow,
    RhoLambdaConfig, RhoSigmaConfig, SaddleConfig, StallCase, StallConfig, StartSpec,
    VerdictConfig, DEFAULT_CONFIG,
};
pub use observer::Outcome;
pub use report::{
    CellReport, CurveReport, EscapeReport, PanelReport, ReferenceRowReport, RowBoundary,
    SaddleReport, StallReport,
};
pub use stall::two_cycle_amplitude;
pub use stats::{crossing, quantile_sorted, wilson};

/// A validated, ready-to-run saddle study.
pub struct SaddleStudy {
    /// The configuration.
    pub config: SaddleConfig,
    /// `max_i|λ_i| / 2` of the reference spectrum: the stall distance is `ηρ` times this.
    stall_scale_reference: f64,
    curves_start: Start,
    rl_start: Start,
    rs_start: Start,
    rl_lambdas: Vec<f64>,
    rl_rhos: Vec<Vec<f64>>,
    rs_rhos: Vec<f64>,
    rs_sigmas: Vec<f64>,
}

impl SaddleStudy {
    /// Parses and validates TOML.
    pub fn from_toml(text: &str) -> Result<Self> {
        Self::new(setup::parse_toml(text)?)
    }

    /// The run's estimated memory and work ([`crate::study::budget`]), from the configuration
    /// alone.
    pub fn budget(config: &SaddleConfig, threads: usize) -> Result<crate::study::budget::Budget> {
        budget::budget(config, threads)
    }

    /// Validates the configuration: sizes and the memory/work estimate first, then every field.
    pub fn new(config: SaddleConfig) -> Result<Self> {
        Self::budget(&config, rayon::current_num_threads())?
            .check(&crate::study::budget::Limits::default())?;
        let c = &config;
        positive_count("block_size", c.block_size)?;
        let eta = setup::positive("eta", c.eta)?;
        let k = &c.classify;
        setup::positive("classify.escape_radius", k.escape_radius)?;
        setup::positive("classify.attraction_radius", k.attraction_radius)?;
        setup::positive("classify.converge_radius", k.converge_radius)?;
        setup::positive("classify.divergence_bound", k.divergence_bound)?;
        if !(k.tail_fraction > 0.0 && k.tail_fraction <= 1.0) {
            return Err(Error::config(
                "classify.tail_fraction",
                k.tail_fraction,
                "must be in (0, 1]",
            ));
        }
        if k.converge_radius >= k.attraction_radius {
            return Err(Error::config(
                "classify.converge_radius",
                k.converge_radius,
                format!("must be < attraction_radius = {}", k.attraction_radius),
            ));
        }
        if k.attraction_radius >= k.escape_radius {
            return Err(Error::config(
                "classify.attraction_radius",
                k.attraction_radius,
                format!("must be < escape_radius = {}", k.escape_radius),
            ));
        }
        if k.escape_radius >= k.divergence_bound {
            return Err(Error::config(
                "classify.divergence_bound",
                k.divergence_bound,
                format!("must be > escape_radius = {}", k.escape_radius),
            ));
        }
        let v = &c.verdict;
        if !(v.level > 0.0 && v.level < 1.0) {
            return Err(Error::config("verdict.level", v.level, "must be in (0, 1)"));
        }
        setup::positive("verdict.usam_tolerance_dex", v.usam_tolerance_dex)?;
        setup::positive("verdict.minibatch_tolerance_dex", v.minibatch_tolerance_dex)?;
        setup::positive("verdict.region_tolerance_dex", v.region_tolerance_dex)?;
        setup::positive("verdict.stall_tolerance", v.stall_tolerance)?;

        // Reference.
        let r = &c.reference;
        min_negative("reference.eigenvalues", &r.eigenvalues)?;
        let stall_scale_reference = max_abs(&r.eigenvalues) / 2.0;
        positive_count("reference.steps", r.steps)?;
        positive_count("reference.paths", r.paths)?;
        if r.rows.is_empty() {
            return Err(Error::config("reference.rows", "[]", "must not be empty"));
        }
        for (i, row) in r.rows.iter().enumerate() {
            setup::non_negative(&format!("reference.rows[{i}].rho"), row.rho)?;
            setup::non_negative(&format!("reference.rows[{i}].sigma"), row.sigma)?;
            StartSpec::Point {
                x: row.start.clone(),
            }
            .build(&format!("reference.rows[{i}].start"), r.eigenvalues.len())?;
            if row.expect == Outcome::Undecided {
                return Err(Error::config(
                    format!("reference.rows[{i}].expect"),
                    "\"undecided\"",
                    "must be escape, stall or converge",
                ));
            }
        }

        // Stall spectra.
        if let Some(st) = &c.stall {
            positive_count("stall.steps", st.steps)?;
            if st.cases.is_empty() {
                return Err(Error::config("stall.cases", "[]", "must not be empty"));
            }
            for (i, case) in st.cases.iter().enumerate() {
                let field = format!("stall.cases[{i}]");
                min_negative(&format!("{field}.eigenvalues"), &case.eigenvalues)?;
                setup::positive(&format!("{field}.rho"), case.rho)?;
                StartSpec::Point {
                    x: case.start.clone(),
                }
                .build(&format!("{field}.start"), case.eigenvalues.len())?;
            }
        }

        // Curves.
        let cv = &c.curves;
        min_negative("curves.eigenvalues", &cv.eigenvalues)?;
        let curves_start = cv.start.build("curves.start", cv.eigenvalues.len())?;
        let n = steps_of("curves.horizon", cv.horizon, eta)?;
        let every = steps_of("curves.save_dt", cv.save_dt, eta)?;
        if n % every != 0 {
            return Err(Error::config(
                "curves.save_dt",
                cv.save_dt,
                format!("must divide the horizon {}", cv.horizon),
            ));
        }
        positive_count("curves.paths", cv.paths)?;
        positive_count("curves.substeps", cv.substeps)?;
        if cv.cases.is_empty() {
            return Err(Error::config("curves.cases", "[]", "must not be empty"));
        }
        for (i, case) in cv.cases.iter().enumerate() {
            setup::non_negative(&format!("curves.cases[{i}].rho"), case.rho)?;
            setup::non_negative(&format!("curves.cases[{i}].sigma"), case.sigma)?;
        }

        // (ρ, |λ|).
        let rl = &c.phase_rho_lambda;
        for (i, v) in rl.other_eigenvalues.iter().enumerate() {
            setup::non_negative(&format!("phase_rho_lambda.other_eigenvalues[{i}]"), *v)?;
        }
        let rl_lambdas = rl.lambda.values("phase_rho_lambda.lambda")?;
        let rl_start = rl
            .start
            .build("phase_rho_lambda.start", rl.other_eigenvalues.len() + 1)?;
        steps_of("phase_rho_lambda.horizon", rl.horizon, eta)?;
        positive_count("phase_rho_lambda.paths", rl.paths)?;
        positive_count("phase_rho_lambda.region_samples", rl.region_samples)?;
        if let Some(e) = rl.attraction_radius {
            setup::positive("phase_rho_lambda.attraction_radius", e)?;
        }
        if rl.panels.is_empty() {
            return Err(Error::config(
                "phase_rho_lambda.panels",
                "[]",
                "must not be empty",
            ));
        }
        let mut rl_rhos = Vec::new();
        for (i, p) in rl.panels.iter().enumerate() {
            if p.algorithm == AlgorithmKind::Sgd {
                return Err(Error::config(
                    format!("phase_rho_lambda.panels[{i}].algorithm"),
                    "\"sgd\"",
                    "must be usam, sam or dnsam (GD has no ρ)",
                ));
            }
            rl_rhos.push(p.rho.values(&format!("phase_rho_lambda.panels[{i}].rho"))?);
        }

        // (ρ, σ).
        let rs = &c.phase_rho_sigma;
        min_negative("phase_rho_sigma.eigenvalues", &rs.eigenvalues)?;
        if rs.algorithm != AlgorithmKind::Sam {
            return Err(Error::config(
                "phase_rho_sigma.algorithm",
                format!("\"{}\"", rs.algorithm),
                "must be sam (the predicted boundary ρκ_d|λ| = σ is SAM's)",
            ));
        }
        let rs_rhos = rs.rho.values("phase_rho_sigma.rho")?;
        let rs_sigmas = rs.sigma.values("phase_rho_sigma.sigma")?;
        let rs_start = rs
            .start
            .build("phase_rho_sigma.start", rs.eigenvalues.len())?;
        steps_of("phase_rho_sigma.horizon", rs.horizon, eta)?;
        positive_count("phase_rho_sigma.paths", rs.paths)?;
        if let Some(e) = rs.attraction_radius {
            setup::positive("phase_rho_sigma.attraction_radius", e)?;
        }
        if let Some(r) = rs.sde_substeps {
            positive_count("phase_rho_sigma.sde_substeps", r)?;
        }
        if let Some(p) = rs.sde_paths {
            positive_count("phase_rho_sigma.sde_paths", p)?;
        }
        Ok(Self {
            config,
            stall_scale_reference,
            curves_start,
            rl_start,
            rs_start,
            rl_lambdas,
            rl_rhos,
            rs_rhos,
            rs_sigmas,
        })
    }

    /// Total path-steps (for progress bars).
    pub fn total_work(&self) -> u64 {
        let c = &self.config;
        let eta = c.eta;
        let st = |h: f64| (h / eta).round() as u64;
        let r = &c.reference;
        let mut w = 0u64;
        for row in &r.rows {
            let p = if row.sigma > 0.0 { r.paths } else { 1 };
            w += p as u64 * r.steps as u64;
        }
        let cv = &c.curves;
        let mut sigmas: Vec<u64> = cv.cases.iter().map(|k| k.sigma.to_bits()).collect();
        sigmas.sort_unstable();
        sigmas.dedup();
        w += sigmas.len() as u64 * cv.paths as u64 * st(cv.horizon);
        let rl = &c.phase_rho_lambda;
        w += (self.rl_lambdas.len() * rl.panels.len() * rl.paths) as u64 * st(rl.horizon);
        if let Some(sc) = &c.stall {
            w += (sc.cases.len() * sc.steps) as u64;
        }
        let rs = &c.phase_rho_sigma;
        w += (self.rs_sigmas.len() * rs.paths) as u64 * st(rs.horizon);
        if rs.sde_substeps.is_some() {
            w += (self.rs_sigmas.len() * rs.sde_paths.unwrap_or(rs.paths)) as u64 * st(rs.horizon);
        }
        w
    }

    #[allow(clippy::too_many_arguments)]
    fn run_ensemble(
        &self,
        f: &dyn Landscape,
        oracle: &Oracle,
        systems: &[System],
        steps: usize,
        save_every: usize,
        paths: usize,
        start: &Start,
        level: u64,
        save_norms: bool,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> PathAcc {
        let c = &self.config;
        let tail_len = ((steps as f64 * c.classify.tail_fraction).round() as usize).clamp(1, steps);
        let obs = PathObserver {
            n_systems: systems.len(),
            steps,
            tail_from: steps + 1 - tail_len,
            escape_radius: c.classify.escape_radius,
            save_norms,
        };
        let ens = Ensemble {
            landscape: f,
            oracle,
            eta: c.eta,
            steps,
            save_every,
            systems,
            paths,
            block_size: c.block_size,
            seed: c.seed,
            level,
            start,
            divergence_bound: c.classify.divergence_bound,
        };
        // The engine reports path-steps per block, counting systems once.
        ens.run(&obs, progress).acc
    }

    /// Runs every part and judges it.
    pub fn run(
        &self,
        threads: usize,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<SaddleReport> {
        let t0 = Instant::now();
        let mut warnings = Vec::new();
        let mut level = 0u64;
        let reference = self.run_reference(&mut level, progress)?;
        let curves = self.run_curves(&mut level, progress)?;
        let mut phases = self.run_rho_lambda(&mut level, progress, &mut warnings)?;
        phases.extend(self.run_rho_sigma(&mut level, progress)?);
        let stall = self.run_stall(&mut level, progress)?;
        let verdicts = self.judge(&reference, &phases, &stall);
        let d = self.config.phase_rho_sigma.eigenvalues.len();
        Ok(SaddleReport {
            header: RunHeader::new(
                "saddle",
                self.config.clone(),
                self.config.seed,
                threads,
                t0,
                warnings,
            ),
            definitions: definitions(&self.config),
            kappa_d: kappa(d),
            reference,
            stall,
            curves,
            phases,
            verdicts,
            observations: Vec::new(),
        })
    }
}

fn noise(d: usize, sigma: f64) -> Result<Oracle> {
    Ok(if sigma == 0.0 {
        Oracle::FullBatch
    } else {
        Oracle::Additive(AdditiveNoise::isotropic(d, sigma)?)
    })
}
