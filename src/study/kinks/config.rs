//! Configuration of the kinks study and its validation (errors name the field and the value).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::landscape::{ReluInit, ReluNet1d};
use crate::study::setup;

/// The embedded default configuration (`experiments/kinks.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../../../experiments/kinks.toml");

/// The whole study.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KinksConfig {
    /// Title of the report and figures; empty or absent: generated from the parameters (see
    /// [`Self::display_title`]).
    #[serde(default)]
    pub title: String,
    /// Master seed: seed number `s` draws its initialisation from an independent stream.
    pub seed: u64,
    /// Number of seeds (independent initialisations; every method starts from the same one).
    pub seeds: usize,
    /// Hidden units `m`.
    pub hidden: usize,
    /// The 1-D regression data.
    pub data: DataConfig,
    /// Initialisation scales.
    pub init: InitConfig,
    /// Largest learning rate `η_max` (the schedule starts there).
    pub lr_max: f64,
    /// Step budget `T` (also the horizon of the decaying schedules).
    pub max_steps: usize,
    /// A run stops as soon as its loss at the current iterate is `≤ loss_target`.
    pub loss_target: f64,
    /// A run whose loss exceeds this (or is not finite) is stopped and counted as diverged.
    pub divergence_loss: f64,
    /// The training methods, compared on the same initialisations.
    pub methods: Vec<MethodConfig>,
    /// How kinks are counted.
    pub kinks: KinkRule,
    /// Which comparisons are judged, at which level.
    pub verdict: KinksVerdictConfig,
}

/// Data points `(x_i, y_i)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Inputs.
    pub x: Vec<f64>,
    /// Targets.
    pub y: Vec<f64>,
}

/// Initialisation: `w_j = ±hidden_weight` (random sign), `b_j ~ N(0, hidden_bias_std²)`,
/// `a_j ~ N(0, output_std²)`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    /// `|w_j|`.
    pub hidden_weight: f64,
    /// Standard deviation of the hidden biases.
    pub hidden_bias_std: f64,
    /// Standard deviation of the output weights.
    pub output_std: f64,
}

/// Learning-rate schedule over the step budget `T`, step `t = 1, …, T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// `η_t = η_max`.
    Constant,
    /// `η_t = η_max (1 − t/T)` (the authors' notebook, for SAM only).
    Linear,
    /// `η_t = η_max (½ + ½ cos(π t/T))` (present but commented out in the notebook).
    Cosine,
}

impl Schedule {
    /// `η_t` for step `t` of `T`.
    pub fn eta(self, lr_max: f64, t: usize, total: usize) -> f64 {
        let u = t as f64 / total as f64;
        match self {
            Schedule::Constant => lr_max,
            Schedule::Linear => lr_max * (1.0 - u),
            Schedule::Cosine => lr_max * (0.5 + 0.5 * (std::f64::consts::PI * u).cos()),
        }
    }

    /// Name as in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::Linear => "linear",
            Schedule::Cosine => "cosine",
        }
    }
}

/// One training method: full-batch `θ ← θ − η_t ∇L(θ + ρ u)`, `u = ∇L/‖∇L‖` (normalized SAM),
/// `u = ∇L` (USAM), or no ascent when `ρ = 0` (GD).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodConfig {
    /// Name used in tables, files and `verdict` (letters, digits, `_`, `-`).
    pub name: String,
    /// Ascent radius `ρ` (`0`: GD).
    pub rho: f64,
    /// Normalized ascent `∇L/‖∇L‖` (SAM) rather than `∇L` (USAM).
    pub normalized: bool,
    /// Learning-rate schedule.
    pub schedule: Schedule,
}

/// Kink counting: breakpoints `−b_j/w_j` strictly inside the data range, merged when closer than
/// `merge_distance` (single linkage: a chain of gaps `< merge_distance` is one kink, its slope
/// change the sum of its units'), kept when `|slope change| > min_relative_slope_change ×` the
/// largest `|slope change|` among the merged breakpoints.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KinkRule {
    /// Merge distance on the `x` axis.
    pub merge_distance: f64,
    /// Relative slope-change threshold.
    pub min_relative_slope_change: f64,
}

/// The judged comparisons.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KinksVerdictConfig {
    /// The method claimed to have fewer kinks.
    pub sam: String,
    /// The methods it is compared with (one verdict each).
    pub against: Vec<String>,
    /// One-sided significance level of the sign test.
    pub alpha: f64,
    /// Level of the order-statistic median intervals.
    pub level: f64,
}

impl KinksConfig {
    /// The title: `title` if given, else generated from the width, the data, `η_max` and the
    /// judged SAM method's `ρ` (so it cannot go stale when they change).
    pub fn display_title(&self) -> String {
        if !self.title.trim().is_empty() {
            return self.title.clone();
        }
        let n = setup::title_num;
        let sam = match self.methods.iter().find(|m| m.name == self.verdict.sam) {
            Some(m) => format!(", {} ρ = {}", m.name, n(m.rho)),
            None => String::new(),
        };
        format!(
            "Kinks of 2-layer ReLU fits in 1-D (Paper 2): m = {} units, {} points, \
             η_max = {}{sam}",
            self.hidden,
            self.data.x.len(),
            n(self.lr_max)
        )
    }

    /// Validates every field; returns the network.
    pub fn validate(&self) -> Result<ReluNet1d> {
        if self.seeds == 0 {
            return Err(Error::config("seeds", self.seeds, "must be ≥ 1"));
        }
        if self.hidden == 0 {
            return Err(Error::config("hidden", self.hidden, "must be ≥ 1"));
        }
        let net = ReluNet1d::new(self.data.x.clone(), self.data.y.clone(), self.hidden)?;
        if self.data.x.len() < 2 {
            return Err(Error::config(
                "data.x",
                format!("{} point(s)", self.data.x.len()),
                "must have ≥ 2 points (kinks are counted inside the data range)",
            ));
        }
        setup::non_negative("init.hidden_weight", self.init.hidden_weight)?;
        setup::non_negative("init.hidden_bias_std", self.init.hidden_bias_std)?;
        setup::non_negative("init.output_std", self.init.output_std)?;
        setup::positive("lr_max", self.lr_max)?;
        if self.max_steps == 0 {
            return Err(Error::config("max_steps", self.max_steps, "must be ≥ 1"));
        }
        setup::non_negative("loss_target", self.loss_target)?;
        setup::positive("divergence_loss", self.divergence_loss)?;
        if self.methods.is_empty() {
            return Err(Error::config("methods", "[]", "must not be empty"));
        }
        for (i, m) in self.methods.iter().enumerate() {
            let ok = !m.name.is_empty()
                && m.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                return Err(Error::config(
                    format!("methods[{i}].name"),
                    format!("{:?}", m.name),
                    "must be non-empty letters, digits, '_' or '-'",
                ));
            }
            if self.methods[..i].iter().any(|o| o.name == m.name) {
                return Err(Error::config(
                    format!("methods[{i}].name"),
                    format!("{:?}", m.name),
                    "must be unique",
                ));
            }
            setup::non_negative(&format!("methods[{i}].rho"), m.rho)?;
        }
        setup::positive("kinks.merge_distance", self.kinks.merge_distance)?;
        let r = self.kinks.min_relative_slope_change;
        if !(0.0..1.0).contains(&r) {
            return Err(Error::config(
                "kinks.min_relative_slope_change",
                r,
                "must be in [0, 1)",
            ));
        }
        let v = &self.verdict;
        let known = |name: &str| self.methods.iter().any(|m| m.name == name);
        if !known(&v.sam) {
            return Err(Error::config(
                "verdict.sam",
                format!("{:?}", v.sam),
                "must name one of `methods`",
            ));
        }
        for (i, a) in v.against.iter().enumerate() {
            if !known(a) || *a == v.sam {
                return Err(Error::config(
                    format!("verdict.against[{i}]"),
                    format!("{a:?}"),
                    "must name one of `methods` other than verdict.sam",
                ));
            }
        }
        if !(v.alpha > 0.0 && v.alpha < 1.0) {
            return Err(Error::config("verdict.alpha", v.alpha, "must be in (0, 1)"));
        }
        if !(v.level > 0.0 && v.level < 1.0) {
            return Err(Error::config("verdict.level", v.level, "must be in (0, 1)"));
        }
        Ok(net)
    }

    /// The initialisation scales.
    pub fn relu_init(&self) -> ReluInit {
        ReluInit {
            hidden_weight: self.init.hidden_weight,
            hidden_bias_std: self.init.hidden_bias_std,
            output_std: self.init.output_std,
        }
    }
}
