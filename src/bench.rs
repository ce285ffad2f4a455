//! `sde-check bench`: how fast the Monte Carlo engine is on this machine, never without its
//! answer.
//!
//! Five reference problems, each `paths` paths × `steps` steps of one system started at
//! `x₀ ~ N(0, I)` (defaults 10 000 × 1000), on Paper 1's `d = 20` Wishart quadratic
//! `f = ½ xᵀHx`, `H = AAᵀ/(2d)` (seed 1) with isotropic additive noise `Z = σξ`, `σ = 0.5`,
//! `ρ = 0.1`, `η = 0.01`, except the last:
//!
//! | problem | system | exact `E‖X_T‖²` |
//! |---|---|---|
//! | `usam_sde` | USAM SDE `dX = −(I + ρH)∇f dt + √η (I + ρH) σ dW`, Euler–Maruyama `h = η` | yes |
//! | `dnsam_sde` | DNSAM SDE (`ρ/‖∇f‖` in place of `ρ`), Euler–Maruyama `h = η` | — |
//! | `sam_sde` | SAM SDE, closed form with the tables `φ, a, c`, Euler–Maruyama `h = η` | — |
//! | `usam_discrete` | discrete USAM, `x ← x − η ∇f_γ(x + ρ∇f_γ(x))`, `∇f_γ = ∇f + σξ` | yes |
//! | `sgd_subsampling` | discrete SGD on least squares (`N = 32`, `d = 20`, noise 0.5, seed 3), mini-batches of `B = 4` without replacement | yes |
//!
//! Exact values: on the quadratic, one Euler–Maruyama step of the USAM SDE with `h = η` is
//! `x ← A x + η(I + ρH)σ ξ`, `A = I − η(H + ρH²)` — the discrete USAM recursion in law — so
//! both have the moments of [`LinearRecursion`]; subsampled SGD on least squares has those of
//! [`SubsamplingSgdMoments`]. `E‖X_T‖² = tr P_T + ‖m_T‖²`.
//!
//! Timing covers [`Ensemble::run`] only (not building the landscape, the SAM tables or the
//! exact moments). CPU seconds are the process's user + system time from `getrusage`
//! (every thread), so path-steps per CPU-second compare tools fairly on a shared machine.
//! A *path-step* is one update of one path, including its random numbers.

use std::time::Instant;

use rayon::ThreadPoolBuilder;
use serde::Serialize;

use crate::ensemble::{BlockView, Dynamics, Ensemble, Observer, Start, System};
use crate::error::{Error, Result};
use crate::landscape::{Landscape, LeastSquares, Quadratic};
use crate::linalg::{Matrix, Vector};
use crate::optim::moments::{LinearRecursion, SubsamplingSgdMoments};
use crate::optim::{AlgorithmKind, Discrete};
use crate::oracle::{AdditiveNoise, Oracle, Subsampling};
use crate::sde::{ModelKind, SdeForm, SdeModel};
use crate::stats::ci::{mean_ci, MeanCi};
use crate::stats::moments::Moments;

/// Dimension of every problem.
pub const DIM: usize = 20;
/// Seed of the Wishart quadratic.
pub const WISHART_SEED: u64 = 1;
/// Additive noise scale `σ`.
pub const SIGMA: f64 = 0.5;
/// SAM radius `ρ`.
pub const RHO: f64 = 0.1;
/// Learning rate `η` (and Euler–Maruyama step `h`).
pub const ETA: f64 = 0.01;
/// Least squares: samples `N`, label noise, data seed, batch `B`.
pub const LS_SAMPLES: usize = 32;
/// Label noise of the least-squares data.
pub const LS_NOISE: f64 = 0.5;
/// Seed of the least-squares data.
pub const LS_SEED: u64 = 3;
/// Mini-batch size.
pub const LS_BATCH: usize = 4;
/// Confidence level of the printed interval.
pub const LEVEL: f64 = 0.95;

/// One of the five reference problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchProblem {
    /// (a) USAM SDE, Euler–Maruyama.
    UsamSde,
    /// (b) DNSAM SDE, Euler–Maruyama.
    DnsamSde,
    /// (c) SAM SDE (closed form), Euler–Maruyama.
    SamSde,
    /// (d) Discrete USAM, additive noise.
    UsamDiscrete,
    /// (e) Discrete SGD, subsampled least squares.
    SgdSubsampling,
}

impl BenchProblem {
    /// All five, in the order (a)–(e).
    pub const ALL: [BenchProblem; 5] = [
        Self::UsamSde,
        Self::DnsamSde,
        Self::SamSde,
        Self::UsamDiscrete,
        Self::SgdSubsampling,
    ];
    /// Name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::UsamSde => "usam_sde",
            Self::DnsamSde => "dnsam_sde",
            Self::SamSde => "sam_sde",
            Self::UsamDiscrete => "usam_discrete",
            Self::SgdSubsampling => "sgd_subsampling",
        }
    }
    /// Parses a name; the error names the flag and lists the choices.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|p| p.name()).collect();
                Error::config(
                    "--problem",
                    format!("\"{s}\""),
                    format!("must be one of {}", names.join(", ")),
                )
            })
    }
    /// One-line description.
    pub fn describe(self) -> &'static str {
        match self {
            Self::UsamSde => "USAM SDE, Euler–Maruyama h = η, d = 20 quadratic, σ = 0.5",
            Self::DnsamSde => "DNSAM SDE, Euler–Maruyama h = η, d = 20 quadratic, σ = 0.5",
            Self::SamSde => "SAM SDE (closed form), Euler–Maruyama h = η, d = 20 quadratic",
            Self::UsamDiscrete => "discrete USAM, additive noise, d = 20 quadratic, σ = 0.5",
            Self::SgdSubsampling => "discrete SGD, least squares N = 32, d = 20, B = 4",
        }
    }
}

/// What to run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchConfig {
    /// Problems, in order.
    pub problems: Vec<BenchProblem>,
    /// Paths per problem.
    pub paths: usize,
    /// Steps per path.
    pub steps: usize,
    /// Worker threads.
    pub threads: usize,
    /// Paths per block.
    pub block_size: usize,
    /// Master seed.
    pub seed: u64,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            problems: BenchProblem::ALL.to_vec(),
            paths: 10_000,
            steps: 1000,
            threads: 1,
            block_size: crate::study::setup::default_block(),
            seed: 2026,
        }
    }
}

impl BenchConfig {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        if self.paths < 2 {
            return Err(Error::config("--paths", self.paths, "must be ≥ 2"));
        }
        if self.steps == 0 {
            return Err(Error::config("--steps", self.steps, "must be ≥ 1"));
        }
        if self.threads == 0 {
            return Err(Error::config("--threads", self.threads, "must be ≥ 1"));
        }
        if self.block_size == 0 {
            return Err(Error::config("block_size", self.block_size, "must be ≥ 1"));
        }
        Ok(())
    }
}

/// One problem's figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// Problem name.
    pub problem: BenchProblem,
    /// What it is.
    pub description: &'static str,
    /// Wall-clock seconds of the run.
    pub wall_s: f64,
    /// CPU seconds (user + system, all threads) of the run; `NaN` where not measurable.
    pub cpu_s: f64,
    /// `paths × steps`.
    pub path_steps: u64,
    /// Path-steps per wall second.
    pub path_steps_per_s: f64,
    /// Path-steps per CPU second.
    pub path_steps_per_cpu_s: f64,
    /// `E‖X_T‖²` over the surviving paths, with its Student-t interval at [`LEVEL`].
    pub norm_sq: MeanCi,
    /// Standard error of `norm_sq.mean`.
    pub norm_sq_se: f64,
    /// The exact `E‖X_T‖²`, where known.
    pub exact: Option<f64>,
    /// Paths that diverged (excluded from `norm_sq`).
    pub diverged: u64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Crate version.
    pub samsde_version: &'static str,
    /// The configuration.
    pub config: BenchConfig,
    /// Per problem.
    pub results: Vec<BenchResult>,
}

/// `‖X_T‖²` of the surviving paths at the last save.
struct FinalNormSq;

impl Observer for FinalNormSq {
    type Acc = Moments;
    fn new_acc(&self) -> Moments {
        Moments::default()
    }
    fn on_save(&self, acc: &mut Moments, save: usize, _t: f64, view: &BlockView) {
        if save == 0 {
            return;
        }
        let x = &view.states[0];
        let d = x.nrows();
        for (col, &alive) in x.as_slice().chunks_exact(d).zip(&view.alive[0]) {
            if alive {
                acc.push(col.iter().map(|v| v * v).sum());
            }
        }
    }
    fn merge(&self, total: &mut Moments, block: Moments) {
        total.merge(&block);
    }
}

/// Process CPU time (user + system, every thread) in seconds.
pub fn cpu_seconds() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: getrusage writes one `rusage` struct into the zeroed one we pass.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0 {
            let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
            return tv(ru.ru_utime) + tv(ru.ru_stime);
        }
    }
    f64::NAN
}

/// The Wishart quadratic of problems (a)–(d).
pub fn quadratic() -> Quadratic {
    Quadratic::wishart(DIM, WISHART_SEED).expect("valid constants")
}

/// The least-squares data of problem (e).
pub fn least_squares() -> LeastSquares {
    LeastSquares::synthetic(LS_SAMPLES, DIM, LS_NOISE, LS_SEED).expect("valid constants")
}

/// The oracle of problem (e).
pub fn subsampling() -> Subsampling {
    Subsampling {
        batch: LS_BATCH,
        replacement: false,
        n: LS_SAMPLES,
    }
}

/// Exact `E‖X_T‖²` after `steps` steps from `x₀ ~ N(0, I)`, where known.
pub fn exact_norm_sq(problem: BenchProblem, steps: usize) -> Option<f64> {
    let m0 = Vector::zeros(DIM);
    let p0 = Matrix::identity(DIM, DIM);
    match problem {
        BenchProblem::UsamSde | BenchProblem::UsamDiscrete => {
            let f = quadratic();
            let oracle = Oracle::Additive(AdditiveNoise::isotropic(DIM, SIGMA).ok()?);
            let rec = LinearRecursion::of(AlgorithmKind::Usam, &f, &oracle, ETA, RHO)?;
            let (m, p) = rec.moments(&m0, &p0, steps, steps).pop()?;
            Some(p.trace() + m.norm_squared())
        }
        BenchProblem::SgdSubsampling => {
            let f = least_squares();
            let rec = SubsamplingSgdMoments::new(&f, subsampling().c_b(), ETA);
            let (_, mm) = rec.second_moment(&m0, &p0, steps);
            Some(mm.trace())
        }
        BenchProblem::DnsamSde | BenchProblem::SamSde => None,
    }
}

/// Runs one problem on a pool of `config.threads` threads.
pub fn run_problem(problem: BenchProblem, config: &BenchConfig) -> Result<BenchResult> {
    config.validate()?;
    let quad = quadratic();
    let ls = least_squares();
    let additive = Oracle::Additive(AdditiveNoise::isotropic(DIM, SIGMA)?);
    let sub = Oracle::Subsampling(subsampling());
    let (f, oracle): (&dyn Landscape, &Oracle) = match problem {
        BenchProblem::SgdSubsampling => (&ls, &sub),
        _ => (&quad, &additive),
    };
    let euler = |alg| -> Result<Dynamics> {
        let model = SdeModel::new(
            ModelKind::own(alg),
            f,
            oracle,
            ETA,
            RHO,
            SdeForm::ClosedForm,
            2,
        )?;
        Ok(Dynamics::Euler { model, substeps: 1 })
    };
    let discrete = |kind| {
        Dynamics::Discrete(Discrete {
            kind,
            eta: ETA,
            rho: RHO,
        })
    };
    let dynamics = match problem {
        BenchProblem::UsamSde => euler(AlgorithmKind::Usam)?,
        BenchProblem::DnsamSde => euler(AlgorithmKind::Dnsam)?,
        BenchProblem::SamSde => euler(AlgorithmKind::Sam)?,
        BenchProblem::UsamDiscrete => discrete(AlgorithmKind::Usam),
        BenchProblem::SgdSubsampling => discrete(AlgorithmKind::Sgd),
    };
    let systems = [System {
        label: problem.name().into(),
        dynamics,
    }];
    let start = Start::Gaussian {
        mean: Vector::zeros(DIM),
        std: 1.0,
    };
    let ens = Ensemble {
        landscape: f,
        oracle,
        eta: ETA,
        steps: config.steps,
        save_every: config.steps,
        systems: &systems,
        paths: config.paths,
        block_size: config.block_size,
        seed: config.seed,
        level: 0,
        start: &start,
        divergence_bound: 1e8,
    };
    let pool = ThreadPoolBuilder::new()
        .num_threads(config.threads)
        .build()
        .map_err(|e| Error::config("--threads", config.threads, e.to_string()))?;
    let exact = exact_norm_sq(problem, config.steps);
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let out = pool.install(|| ens.run(&FinalNormSq, None));
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu_s = cpu_seconds() - cpu0;
    let path_steps = ens.work();
    Ok(BenchResult {
        problem,
        description: problem.describe(),
        wall_s,
        cpu_s,
        path_steps,
        path_steps_per_s: path_steps as f64 / wall_s,
        path_steps_per_cpu_s: path_steps as f64 / cpu_s,
        norm_sq: mean_ci(&out.acc, LEVEL),
        norm_sq_se: out.acc.std_err(),
        exact,
        diverged: out.diverged[0],
    })
}

/// Runs every configured problem in order.
pub fn run(config: &BenchConfig) -> Result<BenchReport> {
    config.validate()?;
    let results = config
        .problems
        .iter()
        .map(|&p| run_problem(p, config))
        .collect::<Result<Vec<_>>>()?;
    Ok(BenchReport {
        samsde_version: env!("CARGO_PKG_VERSION"),
        config: config.clone(),
        results,
    })
}

/// A plain-text table of the report.
pub fn table(r: &BenchReport) -> String {
    use std::fmt::Write;
    let c = &r.config;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "samsde {} · {} paths × {} steps · {} thread(s) · blocks of {} · seed {}",
        r.samsde_version, c.paths, c.steps, c.threads, c.block_size, c.seed
    );
    let _ = writeln!(
        s,
        "{:<16} {:>8} {:>8} {:>13} {:>13}   {:<34} {:>10}",
        "problem", "wall s", "cpu s", "steps/s", "steps/cpu-s", "E‖X_T‖² (95% CI)", "exact"
    );
    for x in &r.results {
        let exact = x.exact.map_or("—".to_string(), |e| format!("{e:.5}"));
        let ci = format!(
            "{:.5} [{:.5}, {:.5}]",
            x.norm_sq.mean, x.norm_sq.lo, x.norm_sq.hi
        );
        let _ = writeln!(
            s,
            "{:<16} {:>8.3} {:>8.3} {:>12.3}M {:>12.3}M   {:<34} {:>10}{}",
            x.problem.name(),
            x.wall_s,
            x.cpu_s,
            x.path_steps_per_s * 1e-6,
            x.path_steps_per_cpu_s * 1e-6,
            ci,
            exact,
            if x.diverged > 0 {
                format!("  ({} diverged)", x.diverged)
            } else {
                String::new()
            }
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small run of every problem: the estimate's 99.9 % interval contains the exact value
    /// where one exists (each check fails by chance with probability 0.1 %; the seed is fixed,
    /// so the test is deterministic), and nothing diverges.
    #[test]
    fn small_runs_agree_with_exact_values() {
        let config = BenchConfig {
            paths: 2000,
            steps: 50,
            threads: 2,
            block_size: 64,
            ..BenchConfig::default()
        };
        for p in BenchProblem::ALL {
            let r = run_problem(p, &config).unwrap();
            assert_eq!(r.diverged, 0, "{}", p.name());
            assert_eq!(r.path_steps, 100_000);
            if let Some(e) = r.exact {
                // 3.29 standard errors: two-sided 99.9 % normal quantile (n = 2000).
                let z = (r.norm_sq.mean - e) / r.norm_sq_se;
                assert!(z.abs() < 3.29, "{}: {:?} vs {e}", p.name(), r.norm_sq);
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_threads() {
        let mut config = BenchConfig {
            paths: 300,
            steps: 20,
            block_size: 32,
            ..BenchConfig::default()
        };
        for p in BenchProblem::ALL {
            config.threads = 1;
            let a = run_problem(p, &config).unwrap();
            config.threads = 2;
            let b = run_problem(p, &config).unwrap();
            assert_eq!(a.norm_sq.mean.to_bits(), b.norm_sq.mean.to_bits());
            assert_eq!(a.norm_sq.hi.to_bits(), b.norm_sq.hi.to_bits());
        }
    }

    #[test]
    fn bad_problem_names_the_flag() {
        let e = BenchProblem::parse("usam").unwrap_err().to_string();
        assert!(e.contains("--problem") && e.contains("usam_sde"), "{e}");
    }
}
