//! Statistics for Monte Carlo weak-error estimates (SPEC §4).
//!
//! * [`moments`] — running mean and variance of a stream of per-path values (Welford), with a
//!   deterministic pairwise merge (Chan et al.) so that block results reduce bit-identically.
//! * [`ci`] — Student-t confidence intervals for a mean, and the weak error
//!   `max_j |E g(x_{k_j}) − E g(X_{t_j})|` with a simultaneous (Bonferroni) interval.
//! * [`sample_size`] — paths a weak-error slope needs to be conclusive, from a pilot run and the
//!   exact errors.
//! * [`slope`] — least-squares slope of `ln(error)` against `ln(eta)` with a confidence interval
//!   that accounts for both departure from a power law and Monte Carlo noise.
//! * [`nonparametric`] — for a few independent cases (seeds): exact binomial tails, the sign
//!   test, order-statistic median intervals, Clopper–Pearson, Wilcoxon signed-rank.
//!
//! Every estimate comes with an interval; degenerate input (too few samples, zero variance) gives
//! honest infinite or zero widths rather than a panic.

pub mod ci;
pub mod moments;
pub mod nonparametric;
pub mod sample_size;
pub mod slope;

pub use ci::{max_abs_with_ci, mean_ci, t_quantile, MaxAbsEstimate, MeanCi};
pub use moments::Moments;
pub use nonparametric::{
    binomial_lower_tail, binomial_upper_tail, clopper_pearson, median_ci, sign_test,
    wilcoxon_signed_rank, MedianCi, SignTest, Wilcoxon,
};
pub use slope::{loglog_slope, SlopeFit};
