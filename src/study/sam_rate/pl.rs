//! Theorem 2, Polyak–Łojasiewicz part: unnormalized stochastic SAM on logistic + ridge.
//!
//! Step sizes of the theorem (they do not depend on the horizon):
//! `γ_t = min{(8t + 4)/(3μ(t + 1)²), 1/(2β)}`, `ρ_t = √(γ_t/β)`, `t = 0, 1, …`, with the PL
//! constant `μ = λ` (the ridge) and per-sample smoothness `β = max_i ‖x_i‖²/4 + λ`. Each path
//! runs to the largest horizon and reads `f(w_T) − f⋆` at every configured `T` (`f⋆` by
//! Newton's method, exact to rounding).
//!
//! **The bound** `E f(w_T) − f⋆ ≤ 3β²(f(w₀) − f⋆)/(μ²T²) + 22βσ²/(μ²bT)`, as stated in Paper 2
//! (Theorem 2, second part; the constants as given in the paper's statement and on the
//! authors' slides — we have not re-derived them). Only `σ²` is uncertain here, so the bracket
//! is strict `B₋` (with `σ̂²`, the largest per-sample gradient variance seen along the paths
//! every `variance_every` steps, at every read-out and at the probes) and lenient `B₊` (with the
//! analytic `σ² ≤ mean ‖x_i‖²`); pass when the interval's upper end is `≤ B₋`, fail when its
//! lower end is `> B₊`.

use rayon::prelude::*;
use serde::Serialize;

use super::config::PlConfig;
use super::probe::{draw_batch, probe_variance, start};
use crate::ensemble::rng::{path_rng, stream_id};
use crate::landscape::{FiniteSum, Landscape, LogisticRidge};
use crate::optim::msam::{MSam, MSamWorkspace};
use crate::stats::{loglog_slope, mean_ci, MeanCi, Moments, SlopeFit};

/// Steps between progress reports.
const CHUNK: usize = 4096;
/// Run level of the PL paths (stream numbers).
pub const LEVEL: u64 = 100;

/// `γ_t = min{(8t + 4)/(3μ(t + 1)²), 1/(2β)}`.
pub fn gamma(t: usize, mu: f64, beta: f64) -> f64 {
    let tf = t as f64;
    ((8.0 * tf + 4.0) / (3.0 * mu * (tf + 1.0).powi(2))).min(1.0 / (2.0 * beta))
}

/// The first `t` at which `γ_t` is below its cap `1/(2β)` (`(8t + 4)/(t + 1)²` decreases in
/// `t`, so a bisection finds it).
pub fn decay_start(mu: f64, beta: f64) -> usize {
    let cap = 1.0 / (2.0 * beta);
    let uncapped = |t: usize| {
        let tf = t as f64;
        (8.0 * tf + 4.0) / (3.0 * mu * (tf + 1.0).powi(2))
    };
    if uncapped(0) < cap {
        return 0;
    }
    let (mut lo, mut hi) = (0usize, 1usize << 52);
    // Invariant: uncapped(lo) ≥ cap > uncapped(hi) (or hi is the search limit).
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if uncapped(mid) >= cap {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// One read-out horizon.
#[derive(Debug, Clone, Serialize)]
pub struct PlPoint {
    /// `T`.
    pub horizon: usize,
    /// `γ_{T−1}` (the last step size used).
    pub gamma_last: f64,
    /// `ρ_{T−1}`.
    pub rho_last: f64,
    /// Paths with finite iterates.
    pub paths: usize,
    /// Paths that diverged (never averaged in).
    pub diverged: usize,
    /// `E f(w_T) − f⋆` with its interval.
    pub gap: MeanCi,
    /// Standard error of the mean.
    pub std_err: f64,
    /// Strict bound (with `σ̂²`).
    pub bound_strict: f64,
    /// Lenient bound (with the analytic `σ²` bound).
    pub bound_lenient: f64,
}

/// The PL part's results.
#[derive(Debug, Clone, Serialize)]
pub struct PlReport {
    /// The landscape.
    pub landscape: String,
    /// Mini-batch size `b`.
    pub batch: usize,
    /// `β = max_i ‖x_i‖²/4 + λ`.
    pub beta: f64,
    /// `μ = λ`.
    pub mu: f64,
    /// `f(w₀)`.
    pub f0: f64,
    /// `f⋆ = f(w⋆)` (Newton).
    pub fstar: f64,
    /// Step at which `γ_t` leaves its cap `1/(2β)`.
    pub decay_starts_at: usize,
    /// `σ̂²` (largest per-sample gradient variance seen).
    pub sigma2_estimate: f64,
    /// Where it was attained.
    pub sigma2_source: String,
    /// Analytic upper bound `mean ‖x_i‖²`.
    pub sigma2_upper: f64,
    /// `V(w⋆)`: the per-sample gradient variance at the minimiser (information: (A1) needs the
    /// supremum over all `w`, which is attained far from `w⋆`).
    pub sigma2_at_optimum: f64,
    /// One entry per horizon.
    pub points: Vec<PlPoint>,
    /// Fitted `ln gap = c + s ln T` (information; the bound's noise term falls like `1/T`).
    pub exponent: Option<SlopeFit>,
}

struct PathOut {
    gaps: Vec<f64>,
    max_var: f64,
    diverged: bool,
}

#[allow(clippy::too_many_arguments)]
fn run_path(
    f: &LogisticRidge,
    c: &PlConfig,
    beta: f64,
    fstar: f64,
    w0: &[f64],
    seed: u64,
    stream: u64,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> PathOut {
    let d = f.dim();
    let n = f.n_samples();
    let mu = f.lambda();
    let t_max = *c.horizons.last().expect("validated: ≥ 2 horizons");
    let mut rng = path_rng(seed, stream);
    let mut w = w0.to_vec();
    let (mut g, mut dir, mut ws) = (vec![0.0; d], vec![0.0; d], MSamWorkspace::new(d));
    let mut idx = vec![0u32; c.batch];
    let mut gaps = Vec::with_capacity(c.horizons.len());
    let mut next = 0usize;
    let mut max_var = 0.0f64;
    let mut reported = 0usize;
    let mut diverged = false;
    for t in 0..t_max {
        if t.is_multiple_of(c.variance_every) {
            let (_, v) = f.loss_grad_variance(&w, &mut g);
            if v.is_finite() {
                max_var = max_var.max(v);
            }
        }
        let gamma_t = gamma(t, mu, beta);
        let alg = MSam {
            eta: gamma_t,
            rho: (gamma_t / beta).sqrt(),
            m: c.batch,
            normalized: false,
        };
        draw_batch(&mut idx, n, &mut rng);
        alg.step(f, &idx, &mut w, &mut dir, &mut ws);
        if t + 1 == c.horizons[next] {
            let (l, v) = f.loss_grad_variance(&w, &mut g);
            if !l.is_finite() {
                diverged = true;
                break;
            }
            max_var = max_var.max(v);
            gaps.push(l - fstar);
            next += 1;
        }
        if (t + 1).is_multiple_of(CHUNK) {
            if let Some(p) = progress {
                p(CHUNK as u64);
            }
            reported += CHUNK;
        }
    }
    if let Some(p) = progress {
        p((t_max - reported) as u64);
    }
    PathOut {
        gaps,
        max_var,
        diverged,
    }
}

/// Work units (steps) of this part.
pub fn work(c: &PlConfig) -> u64 {
    (c.paths * c.horizons.last().copied().unwrap_or(0)) as u64
}

/// Runs the part.
pub fn run(
    c: &PlConfig,
    seed: u64,
    level: f64,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> crate::error::Result<PlReport> {
    let data = c.data.build("pl")?;
    // `pl.ridge` > 0 was validated with the configuration.
    let f = LogisticRidge::new(data, c.ridge)?;
    let d = f.dim();
    let (beta, mu) = (f.beta(), f.lambda());
    let (wstar, fstar) = f.minimize()?;
    let sigma2_at_optimum = f.loss_grad_variance(&wstar, &mut vec![0.0; d]).1;
    let w0 = start(d, c.start_radius, seed, "sam-rate-pl-start");
    let f0 = f.loss(&w0);
    let outs: Vec<PathOut> = (0..c.paths)
        .into_par_iter()
        .map(|p| {
            run_path(
                &f,
                c,
                beta,
                fstar,
                &w0,
                seed,
                stream_id(LEVEL, p as u64),
                progress,
            )
        })
        .collect();
    let (probe_var, probe_at) = probe_variance(&f, &c.variance_probes, seed, "sam-rate-pl-probe");
    let path_var = outs.iter().map(|o| o.max_var).fold(0.0, f64::max);
    let (sigma2, sigma2_source) = if path_var >= probe_var {
        (
            path_var,
            format!(
                "an iterate of a SAM path (checked every {} steps)",
                c.variance_every
            ),
        )
    } else {
        (probe_var, probe_at)
    };
    let sigma2_upper = f.variance_upper_bound();
    let b = c.batch as f64;
    let decay_starts_at = decay_start(mu, beta);
    let points = c
        .horizons
        .iter()
        .enumerate()
        .map(|(k, &t)| {
            let mut m = Moments::default();
            let mut diverged = 0;
            for o in &outs {
                match o.gaps.get(k) {
                    Some(g) if !o.diverged => m.push(*g),
                    _ => diverged += 1,
                }
            }
            let tf = t as f64;
            let bound = |s2: f64| {
                3.0 * beta * beta * (f0 - fstar) / (mu * mu * tf * tf)
                    + 22.0 * beta * s2 / (mu * mu * b * tf)
            };
            let gl = gamma(t - 1, mu, beta);
            PlPoint {
                horizon: t,
                gamma_last: gl,
                rho_last: (gl / beta).sqrt(),
                paths: m.n as usize,
                diverged,
                gap: mean_ci(&m, level),
                std_err: m.std_err(),
                bound_strict: bound(sigma2),
                bound_lenient: bound(sigma2_upper),
            }
        })
        .collect::<Vec<_>>();
    let xs: Vec<f64> = points.iter().map(|p| p.horizon as f64).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.gap.mean).collect();
    let se: Vec<f64> = points.iter().map(|p| p.std_err).collect();
    let exponent = loglog_slope(&xs, &ys, Some(&se), level).ok();
    Ok(PlReport {
        landscape: f.describe(),
        batch: c.batch,
        beta,
        mu,
        f0,
        fstar,
        decay_starts_at,
        sigma2_estimate: sigma2,
        sigma2_source,
        sigma2_upper,
        sigma2_at_optimum,
        points,
        exponent,
    })
}
