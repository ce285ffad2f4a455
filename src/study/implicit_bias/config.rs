//! The implicit-bias study's TOML configuration (unknown keys are errors), the embedded default
//! [`DEFAULT_CONFIG`], and its validation (every error names the dotted field and the value).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::study::setup;

/// The embedded default configuration (`experiments/implicit_bias_dln.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../../../experiments/implicit_bias_dln.toml");

fn default_test_points() -> usize {
    1000
}
fn default_true() -> bool {
    true
}

/// The four base methods (m-SAM with other `m` is listed separately in `train.m_sam`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodName {
    /// Full-batch gradient descent (ERM).
    Gd,
    /// SGD with batch size 1 (one uniformly drawn example per step).
    Sgd,
    /// n-SAM: one ascent `ρ∇L` for the whole training set (full-batch USAM).
    NSam,
    /// 1-SAM: one ascent `ρ∇ℓ_j` per example, gradients at the perturbed points averaged.
    OneSam,
}

/// Which test loss the verdicts use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestMetric {
    /// `½‖β − β*‖²` (exact for Gaussian inputs; no sampling noise).
    Population,
    /// The loss on the sampled test set.
    Sampled,
}

/// The data of one problem (one per seed).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Training examples `n`.
    pub n: usize,
    /// Input dimension `d`.
    pub d: usize,
    /// Support size `k` of `β*` (its first `k` coordinates).
    pub k: usize,
    /// Test examples.
    #[serde(default = "default_test_points")]
    pub test_points: usize,
}

/// Training: initialisation, step, methods and the `ρ` grid.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Initialisation scale: `u = α·1`, `v = 0`.
    pub alpha: f64,
    /// `γ·d`: the step is `γ = step_times_d / d`.
    pub step_times_d: f64,
    /// Iterations of every run.
    pub steps: usize,
    /// Methods (must include `gd`, `n_sam`, `one_sam`, which the verdicts compare).
    pub methods: Vec<MethodName>,
    /// Micro-batch sizes `m` of additional m-SAM runs (each `1 < m < n`, dividing `n`).
    #[serde(default)]
    pub m_sam: Vec<usize>,
    /// The `ρ` grid of every SAM variant (increasing, > 0).
    pub rho: Vec<f64>,
    /// `false`: unnormalised ascents `ρ∇ℓ_S` (as in the paper's analysis); `true`: `ρ∇ℓ_S/‖∇ℓ_S‖`.
    #[serde(default)]
    pub normalized: bool,
    /// `true`: 1-SAM's ascent is `2ρ∇ℓ_j`, the convention of the paper's original code (its
    /// per-example loss was `r_j²`, without the ½); `false`: `ρ∇ℓ_j` with `ℓ_j = ½r_j²`.
    #[serde(default)]
    pub original_one_sam_ascent: bool,
    /// Which test loss the verdicts and figures use.
    pub test_metric: TestMetric,
}

/// How a run's outcome is classified (module docs of the study).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyConfig {
    /// Diverged: a non-finite value or a training loss above this (checked every 50 steps).
    pub divergence_loss: f64,
    /// Collapsed: `‖β‖₂ < collapse_norm` at the end (`‖β*‖₂ = 1`).
    pub collapse_norm: f64,
    /// Fits the training data: final training loss ≤ this; otherwise "unconverged".
    pub fit_loss: f64,
    /// Fits but far from `β*`: population test loss above this (`½‖β*‖² = ½` is β = 0's).
    pub far_test_loss: f64,
    /// A coordinate counts in `‖β‖₀` when `|β_i|` exceeds this.
    pub support_threshold: f64,
}

/// What is recorded beyond the final state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    /// Seed index whose training curves (and per-coordinate `α_eff`) are drawn.
    pub representative_seed: usize,
    /// Log-spaced steps at which the curves are recorded.
    pub curve_points: usize,
}

/// Thresholds of the verdicts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictConfig {
    /// Confidence level of intervals; sign tests are one-sided at `1 − level`.
    pub level: f64,
    /// `ρ` values (on the grid) at which 1-SAM must beat GD.
    pub benefit_rho: Vec<f64>,
    /// "No meaningful benefit": n-SAM's median test loss is at least `(1 − margin)` × GD's.
    pub nsam_margin: f64,
    /// The `ρ` (on the grid) at which `α_eff` and `Δ` are compared.
    pub reference_rho: f64,
    /// Bound on the median ℓ2 distance between the trained `β` and the dual-Newton prediction.
    pub dual_tolerance: f64,
    /// The distance bound applies at every grid `ρ ≤ dual_max_rho`.
    pub dual_max_rho: f64,
}

/// ERM → 1-SAM fine-tuning and 1-SAM → ERM, over the same seeds, against continued ERM (the
/// main GD run, `train.steps` steps).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneConfig {
    /// Run this part (default true when the section is present).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The step at which both arms switch (`0 < switch_step < train.steps`).
    pub switch_step: usize,
    /// `ρ` grid of the 1-SAM phases (> 0, increasing).
    pub rho: Vec<f64>,
    /// Points on the line between the continued-ERM and the fine-tuned solution.
    pub line_points: usize,
    /// `t` range of the line (`t = 0` continued ERM, `t = 1` fine-tuned); must contain `[0, 1]`.
    pub line_range: [f64; 2],
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImplicitBiasConfig {
    /// Figure and table title; empty or absent: generated from the parameters (see
    /// [`Self::display_title`]).
    #[serde(default)]
    pub title: String,
    /// Master seed.
    pub seed: u64,
    /// Independent problems (data seeds `0 .. seeds`).
    pub seeds: usize,
    /// The data.
    pub data: DataConfig,
    /// Training.
    pub train: TrainConfig,
    /// Outcome classification.
    pub classify: ClassifyConfig,
    /// Recording.
    pub record: RecordConfig,
    /// Verdict thresholds.
    pub verdict: VerdictConfig,
    /// Fine-tuning (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune: Option<FinetuneConfig>,
}

fn on_grid(grid: &[f64], v: f64) -> bool {
    // `|g − ∞| ≤ 1e-12·∞` holds: a non-finite value is on no grid.
    v.is_finite()
        && grid
            .iter()
            .any(|g| (g - v).abs() <= 1e-12 * v.abs().max(1.0))
}

fn increasing_positive(field: &str, grid: &[f64]) -> Result<()> {
    if grid.is_empty() {
        return Err(Error::config(field, "[]", "must not be empty"));
    }
    for (i, r) in grid.iter().enumerate() {
        setup::positive(&format!("{field}[{i}]"), *r)?;
        if i > 0 && *r <= grid[i - 1] {
            return Err(Error::config(
                format!("{field}[{i}]"),
                r,
                format!("must be larger than the previous value {}", grid[i - 1]),
            ));
        }
    }
    Ok(())
}

impl ImplicitBiasConfig {
    /// The title: `title` if given, else generated from the data sizes and `α`.
    pub fn display_title(&self) -> String {
        if !self.title.trim().is_empty() {
            return self.title.clone();
        }
        format!(
            "Implicit bias of 1-SAM vs n-SAM on a diagonal linear network (n = {}, d = {}, k = {}, α = {})",
            self.data.n,
            self.data.d,
            self.data.k,
            crate::study::setup::title_num(self.train.alpha)
        )
    }

    /// The step `γ = step_times_d / d`.
    pub fn eta(&self) -> f64 {
        self.train.step_times_d / self.data.d as f64
    }

    /// Checks every field (see the field docs).
    pub fn validate(&self) -> Result<()> {
        if self.seeds < 2 {
            return Err(Error::config(
                "seeds",
                self.seeds,
                "must be ≥ 2 (paired tests over seeds)",
            ));
        }
        let dd = &self.data;
        if dd.d == 0 {
            return Err(Error::config("data.d", dd.d, "must be ≥ 1"));
        }
        if dd.n == 0 || dd.n > dd.d {
            return Err(Error::config(
                "data.n",
                dd.n,
                format!(
                    "must be in 1..=d = {} (over-parametrised regression: many interpolators)",
                    dd.d
                ),
            ));
        }
        if dd.k == 0 || dd.k > dd.d {
            return Err(Error::config(
                "data.k",
                dd.k,
                format!("must be in 1..={}", dd.d),
            ));
        }
        if dd.test_points == 0 {
            return Err(Error::config("data.test_points", 0, "must be ≥ 1"));
        }
        let t = &self.train;
        setup::positive("train.alpha", t.alpha)?;
        setup::positive("train.step_times_d", t.step_times_d)?;
        if t.steps < 2 {
            return Err(Error::config("train.steps", t.steps, "must be ≥ 2"));
        }
        for need in [MethodName::Gd, MethodName::NSam, MethodName::OneSam] {
            if !t.methods.contains(&need) {
                return Err(Error::config(
                    "train.methods",
                    format!("{:?}", t.methods),
                    "must include gd, n_sam and one_sam (the verdicts compare them)",
                ));
            }
        }
        for (i, a) in t.methods.iter().enumerate() {
            if t.methods[..i].contains(a) {
                return Err(Error::config(
                    "train.methods",
                    format!("{a:?}"),
                    "is listed twice",
                ));
            }
        }
        for (i, &m) in t.m_sam.iter().enumerate() {
            if m <= 1 || m >= dd.n || !dd.n.is_multiple_of(m) {
                return Err(Error::config(
                    format!("train.m_sam[{i}]"),
                    m,
                    format!("must satisfy 1 < m < n = {} and divide n (m = 1 is one_sam, m = n is n_sam)", dd.n),
                ));
            }
            if t.m_sam[..i].contains(&m) {
                return Err(Error::config(
                    format!("train.m_sam[{i}]"),
                    m,
                    "is listed twice",
                ));
            }
        }
        increasing_positive("train.rho", &t.rho)?;
        let c = &self.classify;
        setup::positive("classify.divergence_loss", c.divergence_loss)?;
        setup::non_negative("classify.collapse_norm", c.collapse_norm)?;
        setup::positive("classify.fit_loss", c.fit_loss)?;
        setup::positive("classify.far_test_loss", c.far_test_loss)?;
        setup::positive("classify.support_threshold", c.support_threshold)?;
        if c.fit_loss >= c.divergence_loss {
            return Err(Error::config(
                "classify.fit_loss",
                c.fit_loss,
                format!("must be < divergence_loss = {}", c.divergence_loss),
            ));
        }
        let r = &self.record;
        if r.representative_seed >= self.seeds {
            return Err(Error::config(
                "record.representative_seed",
                r.representative_seed,
                format!("must be < seeds = {}", self.seeds),
            ));
        }
        if r.curve_points < 2 {
            return Err(Error::config(
                "record.curve_points",
                r.curve_points,
                "must be ≥ 2",
            ));
        }
        // The checkpoints are distinct steps: more points than steps cannot be drawn (and each
        // point is allocated before the duplicates are dropped).
        if r.curve_points > self.train.steps.saturating_add(1) {
            return Err(Error::config(
                "record.curve_points",
                r.curve_points,
                format!(
                    "must be ≤ train.steps + 1 = {}",
                    self.train.steps.saturating_add(1)
                ),
            ));
        }
        let v = &self.verdict;
        if !(v.level > 0.5 && v.level < 1.0) {
            return Err(Error::config(
                "verdict.level",
                v.level,
                "must be in (0.5, 1)",
            ));
        }
        if v.benefit_rho.is_empty() {
            return Err(Error::config(
                "verdict.benefit_rho",
                "[]",
                "must not be empty",
            ));
        }
        for (i, b) in v.benefit_rho.iter().enumerate() {
            if !on_grid(&t.rho, *b) {
                return Err(Error::config(
                    format!("verdict.benefit_rho[{i}]"),
                    b,
                    "must be one of train.rho",
                ));
            }
        }
        if !(v.nsam_margin >= 0.0 && v.nsam_margin < 1.0) {
            return Err(Error::config(
                "verdict.nsam_margin",
                v.nsam_margin,
                "must be in [0, 1)",
            ));
        }
        if !on_grid(&t.rho, v.reference_rho) {
            return Err(Error::config(
                "verdict.reference_rho",
                v.reference_rho,
                "must be one of train.rho",
            ));
        }
        setup::positive("verdict.dual_tolerance", v.dual_tolerance)?;
        setup::positive("verdict.dual_max_rho", v.dual_max_rho)?;
        if !t.rho.iter().any(|r| *r <= v.dual_max_rho) {
            return Err(Error::config(
                "verdict.dual_max_rho",
                v.dual_max_rho,
                "must be ≥ the smallest train.rho",
            ));
        }
        if let Some(f) = self.finetune.as_ref().filter(|f| f.enabled) {
            if f.switch_step == 0 || f.switch_step >= t.steps {
                return Err(Error::config(
                    "finetune.switch_step",
                    f.switch_step,
                    format!("must be in 1..{} (train.steps)", t.steps),
                ));
            }
            increasing_positive("finetune.rho", &f.rho)?;
            if f.line_points < 3 {
                return Err(Error::config(
                    "finetune.line_points",
                    f.line_points,
                    "must be ≥ 3",
                ));
            }
            let [a, b] = f.line_range;
            if !(a.is_finite() && b.is_finite() && a <= 0.0 && b >= 1.0) {
                return Err(Error::config(
                    "finetune.line_range",
                    format!("[{a}, {b}]"),
                    "must be finite and contain [0, 1]",
                ));
            }
        }
        Ok(())
    }

    /// The fine-tuning section, if present and enabled.
    pub fn finetune(&self) -> Option<&FinetuneConfig> {
        self.finetune.as_ref().filter(|f| f.enabled)
    }
}
