//! # samsde — check SDE models of Sharpness-Aware Minimization against the discrete algorithms
//!
//! The discrete algorithms, with one oracle draw `γ` per step reused at both points:
//! `x ← x − η ∇f_γ(x + ρ u)`, `u ∈ {0, ∇f_γ, ∇f_γ/‖∇f_γ‖, ∇f_γ/‖∇f‖}` for SGD, USAM, SAM,
//! DNSAM. Their SDE models: `dX = −b(X) dt + √η D(X) dW`, e.g. USAM
//! `b = (I + ρH)∇f`, `D = (I + ρH)S`. A model is an order-`α` weak approximation if
//! `max_k |E g(x_k) − E g(X_{kη})| ≤ C η^α`; this crate measures that error, with
//! confidence intervals, and its order in `η`. The mathematics each module implements is
//! written out in `docs/theory.md` (Compagnoni et al., *An SDE for Modeling SAM: Theory and
//! Insights*, ICML 2023; Andriushchenko & Flammarion, *Towards Understanding Sharpness-Aware
//! Minimization*, ICML 2022).
//!
//! # Example
//!
//! Run a study from its configuration and read the verdicts (the command line does the same,
//! plus files and figures):
//!
//! ```no_run
//! use samsde::study::convergence::{ConvergenceStudy, DEFAULT_CONFIG};
//!
//! let study = ConvergenceStudy::from_toml(DEFAULT_CONFIG)?;
//! let report = study.run(2, None)?; // 2 threads, no progress callback
//! for v in &report.verdicts {
//!     println!("{}", v.line(true));
//! }
//! # Ok::<(), samsde::Error>(())
//! ```
//!
//! Your own objective: implement [`landscape::Landscape`] (`loss`, `grad_into`,
//! `hess_vec_into`, `hessian`, `describe`) and pass it to
//! [`study::convergence::ConvergenceStudy::with_landscape`]; `examples/custom_landscape.rs` does
//! this end to end (`cargo run --release --example custom_landscape`).
//!
//! Data flows one way: configuration → validated study ([`study`]) → landscape
//! ([`landscape`]), oracle ([`oracle`]), algorithms ([`optim`]) and SDE models ([`sde`]) →
//! Monte Carlo engine ([`ensemble`]) → statistics ([`stats`]) → report → JSON/CSV/figures
//! ([`report`], [`plot`], [`output`]). Nothing below `study` knows about files or the CLI.
//!
//! | module | what |
//! |---|---|
//! | [`landscape`] | `f`, `∇f`, `∇²f`, Hessian–vector products; quadratics, finite-sum least squares, diagonal linear networks and their minimum-entropy interpolator |
//! | [`oracle`] | additive Gaussian, subsampling (exact covariance), full batch |
//! | [`optim`] | the four discrete algorithms on blocks of paths; m-SAM and schedules; exact moment recursions |
//! | [`sde`] | SDE models (closed forms, inner Monte Carlo form), SAM tables `φ, a, c`, OU |
//! | [`ensemble`] | rayon engine: blocks of paths, per-path ChaCha8 streams, coupling, observers |
//! | [`stats`] | moments, Student-t CIs, simultaneous max-error CI, log–log slope with CI; sign test, order-statistic median CIs |
//! | [`study`] | one file per study: config → validate → run → report |
//! | [`report`], [`plot`], [`output`] | tables, CSV, figures, atomic file writing |
//! | [`shard`] | `--shard I/N` and `sde-check merge`: Monte Carlo work split over processes, merged bit for bit |
//! | [`reproduce`] | `sde-check reproduce`: every study, one claims report (Markdown, HTML, JSON) |
//! | [`linalg`], [`error`] | helpers, typed errors carrying the offending field and value |

pub mod bench;
pub mod ensemble;
pub mod error;
pub mod landscape;
pub mod linalg;
pub mod optim;
pub mod oracle;
pub mod output;
pub mod plot;
pub mod registry;
pub mod report;
pub mod reproduce;
pub mod sde;
pub mod shard;
pub mod stats;
pub mod study;

pub use error::{Error, Result};
