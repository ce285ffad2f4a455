//! Configuration pieces shared by every study: landscape, oracle, start, and the checks that
//! turn a raw (deserialised) value into a validated object. Errors name the dotted field and
//! the offending value (`landscape.hessian.dim must be ≥ 1, got 0`).

use serde::{Deserialize, Serialize};

use super::budget::Budget;
use crate::ensemble::Start;
use crate::error::{Error, Result};
use crate::landscape::{Landscape, LeastSquares, Quadratic, TwoBasin, WarpedDoubleWell};
use crate::linalg::{Matrix, Vector};
use crate::optim::AlgorithmKind;
use crate::oracle::{AdditiveNoise, Oracle, Subsampling};

/// `Err` unless `v` is finite.
pub fn finite(field: &str, v: f64) -> Result<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Error::config(field, v, "must be finite"))
    }
}

/// `Err` unless `v` is finite and `> 0`.
pub fn positive(field: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(Error::config(field, v, "must be finite and > 0"))
    }
}

/// `Err` unless `v` is finite and `≥ 0`.
pub fn non_negative(field: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(Error::config(field, v, "must be finite and ≥ 0"))
    }
}

/// `Some(n)` when `a = n·b` for a whole `n ≥ 1` (relative tolerance 1e-9).
pub fn whole_multiple(a: f64, b: f64) -> Option<usize> {
    let r = a / b;
    let n = r.round();
    // Beyond 2^53 "whole" means nothing in f64 (and the count could not be run anyway).
    ((r - n).abs() < 1e-9 * r.max(1.0) && (1.0..=9_007_199_254_740_992.0).contains(&n))
        .then_some(n as usize)
}

/// `t/η` as a whole number of steps (≥ 1), or an error naming `field` and `t`.
pub fn whole_steps(field: &str, t: f64, eta: f64) -> Result<usize> {
    whole_multiple(t, eta).ok_or_else(|| {
        Error::config(
            field,
            t,
            format!("must be a whole number (≥ 1) of steps η = {eta}"),
        )
    })
}

/// Checks shared by every ensemble study: at least `min_paths` paths, blocks of ≥ 1 path, and
/// at least one algorithm.
pub fn check_ensemble(
    paths: usize,
    min_paths: usize,
    block_size: usize,
    algorithms: usize,
) -> Result<()> {
    if paths < min_paths {
        return Err(Error::config(
            "paths",
            paths,
            format!("must be ≥ {min_paths}"),
        ));
    }
    if block_size == 0 {
        return Err(Error::config("block_size", block_size, "must be > 0"));
    }
    if algorithms == 0 {
        return Err(Error::config("algorithms", "[]", "must not be empty"));
    }
    Ok(())
}

/// The radius `table.<alg>` of every SAM variant in `algorithms` (SGD needs none); each must
/// be given, finite and ≥ 0.
pub fn check_radii(
    table: &str,
    radii: &std::collections::BTreeMap<AlgorithmKind, f64>,
    algorithms: &[AlgorithmKind],
) -> Result<()> {
    for a in algorithms.iter().filter(|a| **a != AlgorithmKind::Sgd) {
        let field = format!("{table}.{a}");
        let r = radii.get(a).ok_or_else(|| {
            Error::config(
                &field,
                "nothing",
                "must be given for every SAM variant in `algorithms`",
            )
        })?;
        non_negative(&field, *r)?;
    }
    Ok(())
}

fn matrix_from_rows(field: &str, rows: &[Vec<f64>]) -> Result<Matrix> {
    let n = rows.len();
    if n == 0 {
        return Err(Error::config(field, "[]", "must not be empty"));
    }
    let m = rows[0].len();
    for (i, r) in rows.iter().enumerate() {
        if r.len() != m {
            return Err(Error::Dimension {
                what: format!("{field}[{i}] row length"),
                expected: m,
                got: r.len(),
            });
        }
        for (j, v) in r.iter().enumerate() {
            finite(&format!("{field}[{i}][{j}]"), *v)?;
        }
    }
    Ok(Matrix::from_fn(n, m, |i, j| rows[i][j]))
}

/// How the Hessian of a quadratic is given.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum HessianConfig {
    /// `H = AAᵀ/(2d)`, `A ∈ ℝ^{d×2d}` Gaussian from `seed`.
    Wishart {
        /// Dimension `d`.
        dim: usize,
        /// Seed of `A`.
        seed: u64,
    },
    /// `H = Q diag(eigenvalues) Qᵀ`, `Q` Haar-random from `rotation_seed` (identity if absent).
    Spectrum {
        /// Eigenvalues (any sign).
        eigenvalues: Vec<f64>,
        /// Seed of the rotation; absent: `Q = I`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rotation_seed: Option<u64>,
    },
    /// The matrix itself, row by row.
    Matrix {
        /// Rows of `H`.
        rows: Vec<Vec<f64>>,
    },
}

/// The objective.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LandscapeConfig {
    /// `f = ½ xᵀHx`.
    Quadratic {
        /// The Hessian.
        hessian: HessianConfig,
    },
    /// Finite-sum least squares on synthetic data.
    LeastSquares {
        /// Number of samples `N`.
        n_samples: usize,
        /// Dimension `d`.
        dim: usize,
        /// Label noise standard deviation.
        noise: f64,
        /// Data seed.
        seed: u64,
    },
    /// Two-basin soft-min of a flat and a sharp quadratic well of equal depth
    /// ([`crate::landscape::two_basin`]).
    TwoBasin {
        /// Dimension `d` (basin coordinate `x₀`, `d − 1` transverse directions).
        dim: usize,
        /// Curvature of the flat basin `a_f`.
        #[serde(default = "default_a_flat")]
        a_flat: f64,
        /// Curvature ratio `κ = a_s/a_f` (≥ 1).
        #[serde(default = "default_kappa")]
        kappa: f64,
        /// Minima at `x₀ = ±separation`.
        #[serde(default = "default_separation")]
        separation: f64,
        /// Soft-min temperature `τ`.
        #[serde(default = "default_tau")]
        tau: f64,
    },
    /// Warped double well with exactly equal depths and a smooth saddle
    /// ([`crate::landscape::WarpedDoubleWell`]).
    WarpedDoubleWell {
        /// Dimension `d`.
        dim: usize,
        /// Curvature of the flat basin `a_f`.
        #[serde(default = "default_a_flat")]
        a_flat: f64,
        /// Curvature ratio `κ = a_s/a_f` (> 1).
        #[serde(default = "default_kappa")]
        kappa: f64,
        /// Barrier height `ΔF`.
        #[serde(default = "default_barrier")]
        barrier: f64,
    },
    /// A landscape given in code through the library API (e.g.
    /// `ConvergenceStudy::with_landscape`); recorded by name in result files, and not buildable
    /// from a configuration file.
    Custom {
        /// The landscape's description.
        name: String,
    },
}

/// The default confidence level of every study's intervals and verdicts (serde default).
pub fn default_level() -> f64 {
    0.95
}

/// The default number of paths per block (the columns of one `d × block` matrix; serde default).
pub fn default_block() -> usize {
    256
}

fn default_barrier() -> f64 {
    1.0
}

fn default_a_flat() -> f64 {
    1.0
}
fn default_kappa() -> f64 {
    10.0
}
fn default_separation() -> f64 {
    1.0
}
fn default_tau() -> f64 {
    0.1
}

/// What the run-time estimates need to know of a landscape, from its configuration alone
/// ([`LandscapeConfig::budget`]).
#[derive(Debug, Clone, Copy)]
pub struct LandscapeSize {
    /// Dimension `d`.
    pub dim: usize,
    /// The field that sets `d` (for messages).
    pub dim_field: &'static str,
    /// Floating-point operations of one gradient at one point.
    pub grad_flops: f64,
    /// Samples `N` of a finite sum.
    pub n_samples: Option<usize>,
    /// `true` for the centred quadratic `½xᵀHx` (linear SDEs and exact moment recursions
    /// apply).
    pub quadratic: bool,
}

/// What the run-time estimates need to know of an oracle ([`OracleConfig::budget`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct OracleSize {
    /// Brownian dimension `m` of its noise.
    pub m: usize,
    /// The noise is a general matrix `S` (`d × m` products per step).
    pub matrix: bool,
    /// Mini-batch size (0 without subsampling).
    pub batch: usize,
}

/// `d ≥ 1`, or an error naming `field`.
fn at_least_one(field: &str, v: usize) -> Result<usize> {
    if v == 0 {
        Err(Error::config(field, v, "must be ≥ 1"))
    } else {
        Ok(v)
    }
}

impl LandscapeConfig {
    /// The landscape's dimension and costs, checked without allocating anything, and the
    /// memory and work of building it added to `b` (under the field names it uses).
    pub fn budget(&self, b: &mut Budget) -> Result<LandscapeSize> {
        use super::budget::F64;
        Ok(match self {
            LandscapeConfig::Quadratic { hessian } => {
                let (d, field) = match hessian {
                    HessianConfig::Wishart { dim, .. } => {
                        (at_least_one("landscape.hessian.dim", *dim)?, "landscape.hessian.dim")
                    }
                    HessianConfig::Spectrum { eigenvalues, .. } => {
                        if eigenvalues.is_empty() {
                            return Err(Error::config(
                                "landscape.hessian.eigenvalues",
                                "[]",
                                "must not be empty",
                            ));
                        }
                        (eigenvalues.len(), "landscape.hessian.eigenvalues")
                    }
                    HessianConfig::Matrix { rows } => {
                        if rows.is_empty() {
                            return Err(Error::config("landscape.hessian.rows", "[]", "must not be empty"));
                        }
                        (rows.len(), "landscape.hessian.rows")
                    }
                };
                let df = d as f64;
                // Wishart: A (d × 2d), Aᵀ, AAᵀ and two d × d temporaries; a rotation: Q, its
                // Gaussian and QR factors; a given matrix: H, Hᵀ and |H − Hᵀ|.
                b.mem("landscape Hessian and its construction", &[field], 6.0 * df * df * F64);
                let build = match hessian {
                    HessianConfig::Wishart { .. } => 4.0 * df * df * df,
                    HessianConfig::Spectrum { rotation_seed: Some(_), .. } => 4.0 * df * df * df,
                    _ => 4.0 * df * df,
                };
                b.flops("building the landscape", &[field], build);
                LandscapeSize {
                    dim: d,
                    dim_field: field,
                    grad_flops: 2.0 * df * df,
                    n_samples: None,
                    quadratic: true,
                }
            }
            LandscapeConfig::LeastSquares { n_samples, dim, .. } => {
                let n = at_least_one("landscape.n_samples", *n_samples)?;
                let d = at_least_one("landscape.dim", *dim)?;
                let (nf, df) = (n as f64, d as f64);
                // A (N × d), Aᵀ, and H = AᵀA/N with its temporaries.
                b.mem(
                    "landscape data and Hessian",
                    &["landscape.n_samples", "landscape.dim"],
                    (3.0 * nf * df + 3.0 * df * df + 3.0 * nf) * F64,
                );
                b.flops(
                    "building the landscape",
                    &["landscape.n_samples", "landscape.dim"],
                    2.0 * nf * df * df + 4.0 * nf * df,
                );
                LandscapeSize {
                    dim: d,
                    dim_field: "landscape.dim",
                    grad_flops: 2.0 * df * df,
                    n_samples: Some(n),
                    quadratic: false,
                }
            }
            LandscapeConfig::TwoBasin { dim, .. } | LandscapeConfig::WarpedDoubleWell { dim, .. } => {
                let d = at_least_one("landscape.dim", *dim)?;
                LandscapeSize {
                    dim: d,
                    dim_field: "landscape.dim",
                    grad_flops: 40.0 * d as f64,
                    n_samples: None,
                    quadratic: false,
                }
            }
            LandscapeConfig::Custom { name } => {
                return Err(Error::config(
                    "landscape.kind",
                    format!("custom ({name})"),
                    "is a landscape given in code through the library API; a configuration file must name a built-in landscape",
                ))
            }
        })
    }

    /// Builds and validates.
    pub fn build(&self) -> Result<Box<dyn Landscape>> {
        Ok(match self {
            LandscapeConfig::Quadratic { hessian } => Box::new(match hessian {
                HessianConfig::Wishart { dim, seed } => {
                    if *dim == 0 {
                        return Err(Error::config("landscape.hessian.dim", dim, "must be ≥ 1"));
                    }
                    Quadratic::wishart(*dim, *seed)?
                }
                HessianConfig::Spectrum {
                    eigenvalues,
                    rotation_seed,
                } => {
                    for (i, v) in eigenvalues.iter().enumerate() {
                        finite(&format!("landscape.hessian.eigenvalues[{i}]"), *v)?;
                    }
                    Quadratic::from_spectrum(eigenvalues, *rotation_seed)?
                }
                HessianConfig::Matrix { rows } => {
                    Quadratic::new(matrix_from_rows("landscape.hessian.rows", rows)?)?
                }
            }),
            LandscapeConfig::LeastSquares {
                n_samples,
                dim,
                noise,
                seed,
            } => {
                if *n_samples == 0 {
                    return Err(Error::config(
                        "landscape.n_samples",
                        n_samples,
                        "must be ≥ 1",
                    ));
                }
                if *dim == 0 {
                    return Err(Error::config("landscape.dim", dim, "must be ≥ 1"));
                }
                non_negative("landscape.noise", *noise)?;
                Box::new(LeastSquares::synthetic(*n_samples, *dim, *noise, *seed)?)
            }
            LandscapeConfig::TwoBasin {
                dim,
                a_flat,
                kappa,
                separation,
                tau,
            } => Box::new(TwoBasin::new(*dim, *a_flat, *kappa, *separation, *tau)?),
            LandscapeConfig::WarpedDoubleWell {
                dim,
                a_flat,
                kappa,
                barrier,
            } => Box::new(WarpedDoubleWell::new(*dim, *a_flat, *kappa, *barrier)?),
            LandscapeConfig::Custom { name } => {
                return Err(Error::config(
                    "landscape.kind",
                    format!("custom ({name})"),
                    "is a landscape given in code through the library API; a configuration file must name a built-in landscape",
                ))
            }
        })
    }
}

/// The gradient oracle.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OracleConfig {
    /// No noise.
    FullBatch,
    /// `Z = σ ξ` (give `sigma`), `Z = S ξ` (give `s`, rows of `S`), or `Z ~ N(0, Σ)` (give
    /// `covariance`, rows of `Σ`; must be PSD). Exactly one of the three.
    Additive {
        /// Isotropic standard deviation `σ`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sigma: Option<f64>,
        /// Rows of `S`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        s: Option<Vec<Vec<f64>>>,
        /// Rows of `Σ`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        covariance: Option<Vec<Vec<f64>>>,
    },
    /// Mini-batches of size `batch` from a finite-sum landscape.
    Subsampling {
        /// Batch size `B`.
        batch: usize,
        /// Sample with replacement (default: without).
        #[serde(default)]
        replacement: bool,
    },
}

impl OracleConfig {
    /// The oracle's sizes on a `d`-dimensional landscape (`dim_field` sets `d`; `n_samples`
    /// for subsampling), with the memory of building it added to `b`; checked without
    /// allocating.
    pub fn budget(
        &self,
        d: usize,
        dim_field: &str,
        n_samples: Option<usize>,
        b: &mut Budget,
    ) -> Result<OracleSize> {
        use super::budget::F64;
        let df = d as f64;
        Ok(match self {
            OracleConfig::FullBatch => OracleSize::default(),
            OracleConfig::Additive { s, covariance, .. } => {
                if let Some(rows) = s {
                    let m = rows.first().map_or(0, Vec::len);
                    b.mem("oracle.s", &["oracle.s"], 2.0 * df * m as f64 * F64);
                    OracleSize {
                        m,
                        matrix: true,
                        batch: 0,
                    }
                } else if covariance.is_some() {
                    b.mem(
                        "oracle.covariance square root",
                        &["oracle.covariance"],
                        8.0 * df * df * F64,
                    );
                    b.flops(
                        "oracle.covariance square root",
                        &["oracle.covariance"],
                        20.0 * df * df * df,
                    );
                    OracleSize {
                        m: d,
                        matrix: true,
                        batch: 0,
                    }
                } else {
                    // σI is stored as a d × d matrix (and its identity while building it).
                    b.mem("oracle noise matrix σI", &[dim_field], 2.0 * df * df * F64);
                    OracleSize {
                        m: d,
                        matrix: false,
                        batch: 0,
                    }
                }
            }
            OracleConfig::Subsampling { batch, .. } => OracleSize {
                m: n_samples.unwrap_or(1).max(d),
                matrix: false,
                batch: *batch,
            },
        })
    }

    /// Builds and validates against the landscape.
    pub fn build(&self, f: &dyn Landscape) -> Result<Oracle> {
        let d = f.dim();
        let oracle = match self {
            OracleConfig::FullBatch => Oracle::FullBatch,
            OracleConfig::Additive {
                sigma,
                s,
                covariance,
            } => {
                let given = sigma.is_some() as u8 + s.is_some() as u8 + covariance.is_some() as u8;
                if given != 1 {
                    return Err(Error::config(
                        "oracle",
                        format!("{given} of sigma/s/covariance"),
                        "additive noise needs exactly one of sigma, s, covariance",
                    ));
                }
                if let Some(sigma) = sigma {
                    non_negative("oracle.sigma", *sigma)?;
                    Oracle::Additive(AdditiveNoise::isotropic(d, *sigma)?)
                } else if let Some(rows) = s {
                    let m = matrix_from_rows("oracle.s", rows)?;
                    if m.nrows() != d {
                        return Err(Error::Dimension {
                            what: "oracle.s rows vs landscape dimension".into(),
                            expected: d,
                            got: m.nrows(),
                        });
                    }
                    Oracle::Additive(AdditiveNoise::general(m)?)
                } else {
                    let c = matrix_from_rows("oracle.covariance", covariance.as_ref().unwrap())?;
                    if c.nrows() != d || c.ncols() != d {
                        return Err(Error::Dimension {
                            what: "oracle.covariance size vs landscape dimension".into(),
                            expected: d,
                            got: if c.nrows() != d { c.nrows() } else { c.ncols() },
                        });
                    }
                    Oracle::Additive(AdditiveNoise::from_covariance(&c)?)
                }
            }
            OracleConfig::Subsampling { batch, replacement } => {
                let n = f.as_finite_sum().map(|fs| fs.n_samples()).ok_or_else(|| {
                    Error::config(
                        "oracle.kind",
                        "\"subsampling\"",
                        format!(
                            "needs a finite-sum landscape (least_squares), not {}",
                            f.describe()
                        ),
                    )
                })?;
                Oracle::Subsampling(Subsampling {
                    batch: *batch,
                    replacement: *replacement,
                    n,
                })
            }
        };
        oracle.validate(f)?;
        Ok(oracle)
    }
}

/// The initial condition `x₀`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StartConfig {
    /// A given point.
    Point {
        /// Coordinates of `x₀`.
        x: Vec<f64>,
    },
    /// `x₀ = value · 1` (every coordinate equal).
    Constant {
        /// The common coordinate.
        value: f64,
    },
    /// `x₀ ~ N(0, std² I)` per path (random start).
    Gaussian {
        /// Standard deviation per coordinate.
        std: f64,
    },
}

impl StartConfig {
    /// Builds and validates against the dimension.
    pub fn build(&self, d: usize) -> Result<Start> {
        Ok(match self {
            StartConfig::Point { x } => {
                if x.len() != d {
                    return Err(Error::Dimension {
                        what: "start.x length vs landscape dimension".into(),
                        expected: d,
                        got: x.len(),
                    });
                }
                for (i, v) in x.iter().enumerate() {
                    finite(&format!("start.x[{i}]"), *v)?;
                }
                Start::Point(Vector::from_column_slice(x))
            }
            StartConfig::Constant { value } => {
                Start::Point(Vector::from_element(d, finite("start.value", *value)?))
            }
            StartConfig::Gaussian { std } => Start::Gaussian {
                mean: Vector::zeros(d),
                std: non_negative("start.std", *std)?,
            },
        })
    }
}

/// Parses TOML into a config type, turning serde's message into a crate error that names the
/// field where it can ([`super::parse_errors`]).
pub fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| super::parse_errors::toml_error(text, &e))
}

/// A number as a title shows it: Rust's shortest round-trip form, in plain notation (`0.5`,
/// `20`, `0.001`) and in scientific notation below 10⁻³ or from 10⁶ on (`5e-5`, `2e6`), where
/// plain notation would spell out zeros.
pub fn title_num(v: f64) -> String {
    let a = v.abs();
    if v != 0.0 && a.is_finite() && !(1e-3..1e6).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

impl LandscapeConfig {
    /// A short description from the configuration alone, for generated titles
    /// (`d = 20 Wishart quadratic`, `least-squares problem (N = 32, d = 4)`, …).
    pub fn describe(&self) -> String {
        let n = title_num;
        match self {
            LandscapeConfig::Quadratic { hessian } => match hessian {
                HessianConfig::Wishart { dim, .. } => format!("d = {dim} Wishart quadratic"),
                HessianConfig::Spectrum { eigenvalues, .. } => format!(
                    "quadratic with spectrum ({})",
                    eigenvalues
                        .iter()
                        .map(|&v| n(v))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                HessianConfig::Matrix { rows } => format!("d = {} quadratic", rows.len()),
            },
            LandscapeConfig::LeastSquares { n_samples, dim, .. } => {
                format!("least-squares problem (N = {n_samples}, d = {dim})")
            }
            LandscapeConfig::TwoBasin {
                dim, kappa, tau, ..
            } => format!(
                "{dim}-D soft-min two-basin (κ = {}, τ = {})",
                n(*kappa),
                n(*tau)
            ),
            LandscapeConfig::WarpedDoubleWell {
                dim,
                kappa,
                barrier,
                ..
            } => format!(
                "{dim}-D warped double well (κ = {}, ΔF = {})",
                n(*kappa),
                n(*barrier)
            ),
            LandscapeConfig::Custom { name } => name.clone(),
        }
    }
}

impl OracleConfig {
    /// A short description of the noise for generated titles (`σ = 0.5`, `B = 4 of N`, …).
    pub fn describe(&self) -> String {
        match self {
            OracleConfig::FullBatch => "full batch".into(),
            OracleConfig::Additive { sigma: Some(s), .. } => format!("σ = {}", title_num(*s)),
            OracleConfig::Additive { s: Some(_), .. } => "additive noise S ξ".into(),
            OracleConfig::Additive { .. } => "additive noise N(0, Σ)".into(),
            OracleConfig::Subsampling { batch, .. } => format!("mini-batches of B = {batch}"),
            #[allow(unreachable_patterns)]
            _ => "stochastic gradients".into(),
        }
    }
}

#[cfg(test)]
mod title_num_tests {
    use super::title_num;

    #[test]
    fn titles_spell_small_and_large_numbers_in_scientific_notation() {
        assert_eq!(title_num(0.5), "0.5");
        assert_eq!(title_num(20.0), "20");
        assert_eq!(title_num(0.001), "0.001");
        assert_eq!(title_num(0.0), "0");
        assert_eq!(title_num(5e-5), "5e-5");
        assert_eq!(title_num(-1e-5), "-1e-5");
        assert_eq!(title_num(2e6), "2e6");
    }
}
