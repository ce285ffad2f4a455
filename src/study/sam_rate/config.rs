//! Configuration of the SAM-rate study and its validation (errors name the field and value).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::landscape::Classification;
use crate::study::setup;

/// The embedded default configuration (`experiments/sam_rate.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../../../experiments/sam_rate.toml");

/// The whole study.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamRateConfig {
    /// Title of the report and figure; empty or absent: generated from the parameters (see
    /// [`Self::display_title`]).
    #[serde(default)]
    pub title: String,
    /// Master seed (mini-batch streams, probe directions, starts).
    pub seed: u64,
    /// Confidence level of every interval.
    pub level: f64,
    /// Theorem 2, smooth non-convex part (sigmoid loss).
    pub nonconvex: NonconvexConfig,
    /// Theorem 2, PL part (logistic + ridge).
    pub pl: PlConfig,
    /// The contrast: normalized SAM with a constant `ρ` on a quadratic.
    pub oscillation: OscillationConfig,
}

/// Synthetic classification data (see [`Classification::synthetic`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Samples `n`.
    pub n_samples: usize,
    /// Dimension `d`.
    pub dim: usize,
    /// Probability of flipping a label.
    pub label_noise: f64,
    /// Data seed.
    pub data_seed: u64,
}

impl DataConfig {
    /// Builds the data set; `section` prefixes error fields.
    pub fn build(&self, section: &str) -> Result<Classification> {
        if self.n_samples == 0 {
            return Err(Error::config(
                format!("{section}.data.n_samples"),
                self.n_samples,
                "must be ≥ 1",
            ));
        }
        if self.dim == 0 {
            return Err(Error::config(
                format!("{section}.data.dim"),
                self.dim,
                "must be ≥ 1",
            ));
        }
        if !(0.0..=0.5).contains(&self.label_noise) {
            return Err(Error::config(
                format!("{section}.data.label_noise"),
                self.label_noise,
                "must be in [0, 0.5]",
            ));
        }
        Classification::synthetic(self.n_samples, self.dim, self.label_noise, self.data_seed)
    }
}

/// Where the per-sample gradient variance is probed besides the iterates: `w = r·u` for every
/// radius `r` and `directions` random unit vectors `u`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Radii `r ≥ 0` (`0` probes the origin once).
    pub radii: Vec<f64>,
    /// Random directions per radius.
    pub directions: usize,
}

/// Non-convex part: unnormalized SAM with `γ = 1/(β√T)`, `ρ = 1/(βT^{1/4})` for each `T`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NonconvexConfig {
    /// The data of the sigmoid loss.
    pub data: DataConfig,
    /// Mini-batch size `b` (drawn uniformly with replacement; one batch per step, used at both
    /// points).
    pub batch: usize,
    /// Horizons `T` (one independent run of `paths` paths each).
    pub horizons: Vec<usize>,
    /// Paths per horizon.
    pub paths: usize,
    /// `‖w₀‖` (`0`: the origin; otherwise a random direction from the master seed).
    pub start_radius: f64,
    /// Steps of the gradient-descent run (step `1/β`) that estimates `f⋆` from above.
    pub fstar_gd_steps: usize,
    /// Variance probes.
    pub variance_probes: ProbeConfig,
}

/// PL part: unnormalized SAM with `γ_t = min{(8t+4)/(3μ(t+1)²), 1/(2β)}`, `ρ_t = √(γ_t/β)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlConfig {
    /// The data of the logistic loss.
    pub data: DataConfig,
    /// Ridge `λ` (the PL constant `μ = λ`).
    pub ridge: f64,
    /// Mini-batch size `b`.
    pub batch: usize,
    /// Horizons `T` at which `f(w_T) − f⋆` is read (one run to the largest; the schedule does
    /// not depend on `T`).
    pub horizons: Vec<usize>,
    /// Paths.
    pub paths: usize,
    /// `‖w₀‖` (`0`: the origin).
    pub start_radius: f64,
    /// The per-sample gradient variance is evaluated every this many steps along each path.
    pub variance_every: usize,
    /// Variance probes.
    pub variance_probes: ProbeConfig,
}

/// The contrast: full-batch normalized SAM `x ← x − η H(x + ρ Hx/‖Hx‖)` on `f = ½xᵀHx` with a
/// constant `ρ`, beside USAM with the same `η, ρ`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OscillationConfig {
    /// Eigenvalues of `H` (positive).
    pub eigenvalues: Vec<f64>,
    /// Seed of the random rotation `Q` in `H = Q diag(λ) Qᵀ` (absent: `Q = I`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_seed: Option<u64>,
    /// Learning rate `η` (needs `η λ_max < 2`).
    pub eta: f64,
    /// Radii `ρ`.
    pub rhos: Vec<f64>,
    /// Steps.
    pub steps: usize,
    /// `‖x₀‖` (random direction from the master seed).
    pub start_radius: f64,
    /// The tail (last fraction of the steps) over which the distance is averaged.
    pub tail_fraction: f64,
    /// Relative tolerance for reading the measured distance as consistent with the prediction.
    pub tolerance: f64,
}

fn check_horizons(field: &str, h: &[usize]) -> Result<()> {
    if h.len() < 2 {
        return Err(Error::config(
            field,
            format!("{h:?}"),
            "must list at least 2 horizons (the decay exponent is fitted over them)",
        ));
    }
    for (i, w) in h.windows(2).enumerate() {
        if w[1] <= w[0] {
            return Err(Error::config(
                format!("{field}[{}]", i + 1),
                w[1],
                "must be strictly increasing",
            ));
        }
    }
    if h[0] == 0 {
        return Err(Error::config(format!("{field}[0]"), 0, "must be ≥ 1"));
    }
    Ok(())
}

fn check_probes(field: &str, p: &ProbeConfig) -> Result<()> {
    for (i, r) in p.radii.iter().enumerate() {
        setup::non_negative(&format!("{field}.radii[{i}]"), *r)?;
    }
    if p.directions == 0 && p.radii.iter().any(|r| *r > 0.0) {
        return Err(Error::config(
            format!("{field}.directions"),
            0,
            "must be ≥ 1 when a radius is positive",
        ));
    }
    Ok(())
}

impl SamRateConfig {
    /// The title: `title` if given, else generated from the three parts' data, batch sizes,
    /// ridge and `η` (so it cannot go stale when they change).
    pub fn display_title(&self) -> String {
        if !self.title.trim().is_empty() {
            return self.title.clone();
        }
        let n = setup::title_num;
        let (nc, pl, o) = (&self.nonconvex, &self.pl, &self.oscillation);
        format!(
            "SAM's convergence rate (Paper 2, Theorem 2): sigmoid loss (n = {}, d = {}, b = {}), \
             logistic + ridge (n = {}, d = {}, λ = {}, b = {}); contrast: normalized SAM on a \
             d = {} quadratic, η = {}",
            nc.data.n_samples,
            nc.data.dim,
            nc.batch,
            pl.data.n_samples,
            pl.data.dim,
            n(pl.ridge),
            pl.batch,
            o.eigenvalues.len(),
            n(o.eta)
        )
    }

    /// Validates every field that does not need the data.
    pub fn validate(&self) -> Result<()> {
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(Error::config("level", self.level, "must be in (0, 1)"));
        }
        let n = &self.nonconvex;
        if n.batch == 0 {
            return Err(Error::config("nonconvex.batch", n.batch, "must be ≥ 1"));
        }
        check_horizons("nonconvex.horizons", &n.horizons)?;
        if n.paths < 2 {
            return Err(Error::config(
                "nonconvex.paths",
                n.paths,
                "must be ≥ 2 (a confidence interval needs two values)",
            ));
        }
        setup::non_negative("nonconvex.start_radius", n.start_radius)?;
        check_probes("nonconvex.variance_probes", &n.variance_probes)?;
        let p = &self.pl;
        setup::positive("pl.ridge", p.ridge)?;
        if p.batch == 0 {
            return Err(Error::config("pl.batch", p.batch, "must be ≥ 1"));
        }
        check_horizons("pl.horizons", &p.horizons)?;
        if p.paths < 2 {
            return Err(Error::config(
                "pl.paths",
                p.paths,
                "must be ≥ 2 (a confidence interval needs two values)",
            ));
        }
        setup::non_negative("pl.start_radius", p.start_radius)?;
        if p.variance_every == 0 {
            return Err(Error::config("pl.variance_every", 0, "must be ≥ 1"));
        }
        check_probes("pl.variance_probes", &p.variance_probes)?;
        let o = &self.oscillation;
        if o.eigenvalues.is_empty() {
            return Err(Error::config(
                "oscillation.eigenvalues",
                "[]",
                "must not be empty",
            ));
        }
        for (i, v) in o.eigenvalues.iter().enumerate() {
            setup::positive(&format!("oscillation.eigenvalues[{i}]"), *v)?;
        }
        let eta = setup::positive("oscillation.eta", o.eta)?;
        let lmax = o.eigenvalues.iter().cloned().fold(0.0, f64::max);
        if eta * lmax >= 2.0 {
            return Err(Error::config(
                "oscillation.eta",
                eta,
                format!("must satisfy η λ_max < 2 (λ_max = {lmax}); beyond it even GD diverges"),
            ));
        }
        if o.rhos.is_empty() {
            return Err(Error::config("oscillation.rhos", "[]", "must not be empty"));
        }
        for (i, r) in o.rhos.iter().enumerate() {
            setup::positive(&format!("oscillation.rhos[{i}]"), *r)?;
        }
        if o.steps < 2 {
            return Err(Error::config("oscillation.steps", o.steps, "must be ≥ 2"));
        }
        setup::positive("oscillation.start_radius", o.start_radius)?;
        if !(o.tail_fraction > 0.0 && o.tail_fraction <= 1.0) {
            return Err(Error::config(
                "oscillation.tail_fraction",
                o.tail_fraction,
                "must be in (0, 1]",
            ));
        }
        setup::positive("oscillation.tolerance", o.tolerance)?;
        Ok(())
    }
}
