//! Configuration of the ρ sweep: the problem, `(σ, η)`, the radius grid, two size profiles
//! (`quick`, `paper`) and the verdict thresholds. Raw serde structs (`deny_unknown_fields`)
//! and their validation; errors name the dotted field and the offending value.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::ensemble::Start;
use crate::error::{Error, Result};
use crate::landscape::datasets::{self, TeacherActivation};
use crate::landscape::{Landscape, Quadratic};
use crate::linalg::Vector;
use crate::study::setup;
use crate::study::test_function::TestFunction;

/// The objective and its initial condition.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProblemConfig {
    /// Paper 1's quadratic `f = ½xᵀHx`, `H = AAᵀ/(2d)`, `A ∈ ℝ^{d×2d}` Gaussian from
    /// `hessian_seed`; `x₀ ~ N(0, start_std² I)`: one draw from `start_seed` shared by every
    /// path, or (without `start_seed`) a fresh draw per path.
    Quadratic {
        /// Dimension `d`.
        dim: usize,
        /// Seed of `A`.
        hessian_seed: u64,
        /// Standard deviation of the random start.
        start_std: f64,
        /// Seed of the one shared start; absent: a fresh start per path.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_seed: Option<u64>,
    },
    /// The 2-layer sigmoid classifier on the breast-cancer table (biases, half-logistic loss
    /// plus `weight_decay ‖x‖²`); every path starts at one LeCun-normal initialisation
    /// (`W ~ N(0, init_scale²/30)`, `w ~ N(0, init_scale²/hidden)`, biases 0) from `init_seed`.
    Classifier {
        /// Hidden width.
        hidden: usize,
        /// `λ` in `+ λ‖x‖²`.
        weight_decay: f64,
        /// Seed of the initialisation.
        init_seed: u64,
        /// Scale of the initialisation.
        init_scale: f64,
    },
    /// The teacher–student regression (student without biases, squared loss plus
    /// `weight_decay ‖x‖²`); data and teacher from `data_seed`, one initialisation from
    /// `init_seed` shared by every path.
    TeacherStudent {
        /// Number of inputs `N`.
        n_samples: usize,
        /// Input dimension.
        input_dim: usize,
        /// Teacher width.
        teacher_hidden: usize,
        /// Teacher activation (`sigmoid` or `linear`).
        teacher: TeacherActivation,
        /// Student width.
        hidden: usize,
        /// `λ` in `+ λ‖x‖²`.
        weight_decay: f64,
        /// Seed of the inputs and the teacher.
        data_seed: u64,
        /// Seed of the student's initialisation.
        init_seed: u64,
        /// Scale of the initialisation.
        init_scale: f64,
    },
}

impl ProblemConfig {
    /// Short name (`quadratic`, `classifier`, `teacher_student`).
    pub fn name(&self) -> &'static str {
        match self {
            ProblemConfig::Quadratic { .. } => "quadratic",
            ProblemConfig::Classifier { .. } => "classifier",
            ProblemConfig::TeacherStudent { .. } => "teacher_student",
        }
    }

    /// Builds the landscape and the start.
    pub fn build(&self) -> Result<(Box<dyn Landscape>, Start)> {
        Ok(match self {
            ProblemConfig::Quadratic {
                dim,
                hessian_seed,
                start_std,
                start_seed,
            } => {
                if *dim == 0 {
                    return Err(Error::config("problem.dim", dim, "must be ≥ 1"));
                }
                let std = setup::non_negative("problem.start_std", *start_std)?;
                let start = match start_seed {
                    None => Start::Gaussian {
                        mean: Vector::zeros(*dim),
                        std,
                    },
                    Some(seed) => {
                        let mut rng = ChaCha8Rng::seed_from_u64(*seed);
                        Start::Point(Vector::from_fn(*dim, |_, _| {
                            let z: f64 = StandardNormal.sample(&mut rng);
                            std * z
                        }))
                    }
                };
                (Box::new(Quadratic::wishart(*dim, *hessian_seed)?), start)
            }
            ProblemConfig::Classifier {
                hidden,
                weight_decay,
                init_seed,
                init_scale,
            } => {
                if *hidden == 0 {
                    return Err(Error::config("problem.hidden", hidden, "must be ≥ 1"));
                }
                setup::non_negative("problem.weight_decay", *weight_decay)?;
                let scale = setup::positive("problem.init_scale", *init_scale)?;
                let net = datasets::breast_cancer_classifier(*hidden, *weight_decay)?;
                let x0 = net.init(*init_seed, scale);
                (Box::new(net), Start::Point(Vector::from_vec(x0)))
            }
            ProblemConfig::TeacherStudent {
                n_samples,
                input_dim,
                teacher_hidden,
                teacher,
                hidden,
                weight_decay,
                data_seed,
                init_seed,
                init_scale,
            } => {
                if *hidden == 0 {
                    return Err(Error::config("problem.hidden", hidden, "must be ≥ 1"));
                }
                setup::non_negative("problem.weight_decay", *weight_decay)?;
                let scale = setup::positive("problem.init_scale", *init_scale)?;
                let net = datasets::teacher_student(
                    *n_samples,
                    *input_dim,
                    *teacher_hidden,
                    *teacher,
                    *hidden,
                    *weight_decay,
                    *data_seed,
                )?;
                let x0 = net.init(*init_seed, scale);
                (Box::new(net), Start::Point(Vector::from_vec(x0)))
            }
        })
    }
}

/// Run sizes of one profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// Discrete steps `n` (horizon `T = nη`).
    pub steps: usize,
    /// Monte Carlo paths.
    pub paths: usize,
    /// The means are compared every `save_every` steps (the paper's max over all steps is
    /// approximated on this grid; 1 is exact).
    pub save_every: usize,
    /// Euler–Maruyama sub-steps per `η` for every SDE (`h = η/substeps`); the resolution
    /// diagnostic reruns each SDE at half.
    pub substeps: usize,
    /// Paths per block (the unit of parallel work).
    pub block_size: usize,
}

/// Verdict thresholds (the acceptance of Paper 1's picture).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictConfig {
    /// Confidence level of every interval.
    #[serde(default = "setup::default_level")]
    pub level: f64,
    /// For `ρ ≤ η` every SDE's error is within this factor of the others'.
    #[serde(default = "default_equal_factor")]
    pub equal_factor: f64,
    /// At the largest `ρ` the SGD SDE's error is at least this multiple of the own SDE's.
    #[serde(default = "default_sgd_factor")]
    pub sgd_factor: f64,
}

fn default_equal_factor() -> f64 {
    3.0
}
fn default_sgd_factor() -> f64 {
    10.0
}

impl Default for VerdictConfig {
    fn default() -> Self {
        Self {
            level: setup::default_level(),
            equal_factor: default_equal_factor(),
            sgd_factor: default_sgd_factor(),
        }
    }
}

fn default_profile() -> String {
    "quick".into()
}
fn default_test_function() -> TestFunction {
    TestFunction::NormPlusGradNorm
}
fn default_bound() -> f64 {
    1e6
}

/// The ρ-sweep configuration (TOML; unknown keys are errors).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RhoSweepConfig {
    /// Figure and table title; empty or absent: generated from the parameters (see
    /// [`Self::display_title`]).
    #[serde(default)]
    pub title: String,
    /// Master seed (Brownian paths, random starts).
    pub seed: u64,
    /// The objective and start.
    pub problem: ProblemConfig,
    /// Additive isotropic noise `Z = σξ` of the oracle.
    pub sigma: f64,
    /// The fixed learning rate `η`.
    pub eta: f64,
    /// The radii `ρ` swept (each > 0).
    pub rhos: Vec<f64>,
    /// Test function `g` (Paper 1: `‖x‖ + ‖∇f(x)‖`).
    #[serde(default = "default_test_function")]
    pub test_function: TestFunction,
    /// Which profile runs: `quick` or `paper`.
    #[serde(default = "default_profile")]
    pub profile: String,
    /// Small run with the same qualitative picture (default).
    pub quick: ProfileConfig,
    /// The paper's steps and grid.
    pub paper: ProfileConfig,
    /// A path diverges when `‖x‖` exceeds this (it is then counted and excluded).
    #[serde(default = "default_bound")]
    pub divergence_bound: f64,
    /// Verdict thresholds.
    #[serde(default)]
    pub verdict: VerdictConfig,
}

impl RhoSweepConfig {
    /// The title: `title` if given, else generated from the problem, `η` and `σ`.
    pub fn display_title(&self) -> String {
        if !self.title.trim().is_empty() {
            return self.title.clone();
        }
        let n = crate::study::setup::title_num;
        let problem = match &self.problem {
            ProblemConfig::Quadratic { dim, .. } => format!("the d = {dim} quadratic"),
            ProblemConfig::Classifier { hidden, .. } => {
                format!("the breast-cancer classifier ({hidden} hidden units)")
            }
            ProblemConfig::TeacherStudent { .. } => "the teacher–student network".to_string(),
            #[allow(unreachable_patterns)]
            _ => self.problem.name().to_string(),
        };
        format!(
            "ρ sweep on {problem} (η = {}, σ = {})",
            n(self.eta),
            n(self.sigma)
        )
    }

    /// The active profile.
    pub fn active(&self) -> &ProfileConfig {
        if self.profile == "paper" {
            &self.paper
        } else {
            &self.quick
        }
    }
    /// The active profile, mutably.
    pub fn active_mut(&mut self) -> &mut ProfileConfig {
        if self.profile == "paper" {
            &mut self.paper
        } else {
            &mut self.quick
        }
    }

    /// Checks every field that does not need the landscape.
    pub fn validate(&self) -> Result<()> {
        if self.profile != "quick" && self.profile != "paper" {
            return Err(Error::config(
                "profile",
                format!("{:?}", self.profile),
                "must be \"quick\" or \"paper\"",
            ));
        }
        setup::positive("sigma", self.sigma)?;
        setup::positive("eta", self.eta)?;
        if self.rhos.is_empty() {
            return Err(Error::config("rhos", "[]", "must list at least one radius"));
        }
        for (i, r) in self.rhos.iter().enumerate() {
            setup::positive(&format!("rhos[{i}]"), *r)?;
        }
        for w in self.rhos.windows(2) {
            if w[1] <= w[0] {
                return Err(Error::config(
                    "rhos",
                    format!("{:?}", self.rhos),
                    "must be strictly increasing",
                ));
            }
        }
        for (name, p) in [("quick", &self.quick), ("paper", &self.paper)] {
            if p.steps == 0 {
                return Err(Error::config(
                    format!("{name}.steps"),
                    p.steps,
                    "must be ≥ 1",
                ));
            }
            if p.paths < 2 {
                return Err(Error::config(
                    format!("{name}.paths"),
                    p.paths,
                    "must be ≥ 2 (confidence intervals need two paths)",
                ));
            }
            if p.paths >= 1 << crate::ensemble::rng::LEVEL_SHIFT {
                return Err(Error::config(
                    format!("{name}.paths"),
                    p.paths,
                    "must be < 2^40",
                ));
            }
            if p.save_every == 0 || p.steps % p.save_every != 0 {
                return Err(Error::config(
                    format!("{name}.save_every"),
                    p.save_every,
                    format!("must be ≥ 1 and divide steps = {}", p.steps),
                ));
            }
            if p.substeps < 2 || p.substeps % 2 != 0 {
                return Err(Error::config(
                    format!("{name}.substeps"),
                    p.substeps,
                    "must be even and ≥ 2 (the resolution diagnostic reruns at half; h = η alone is not a test)",
                ));
            }
            // Every profile's sub-step count is checked, not only the active one's: the
            // recorded configuration may be re-run with `--profile`.
            crate::study::budget::count(
                &format!("{name}.steps × {name}.substeps"),
                p.substeps as f64 * p.steps as f64,
                crate::study::budget::MAX_COUNT,
            )?;
            if p.block_size == 0 {
                return Err(Error::config(
                    format!("{name}.block_size"),
                    p.block_size,
                    "must be > 0",
                ));
            }
        }
        setup::positive("divergence_bound", self.divergence_bound)?;
        let v = &self.verdict;
        if !(v.level > 0.0 && v.level < 1.0) {
            return Err(Error::config("verdict.level", v.level, "must be in (0, 1)"));
        }
        if !(v.equal_factor.is_finite() && v.equal_factor >= 1.0) {
            return Err(Error::config(
                "verdict.equal_factor",
                v.equal_factor,
                "must be finite and ≥ 1",
            ));
        }
        if !(v.sgd_factor.is_finite() && v.sgd_factor >= 1.0) {
            return Err(Error::config(
                "verdict.sgd_factor",
                v.sgd_factor,
                "must be finite and ≥ 1",
            ));
        }
        Ok(())
    }
}
