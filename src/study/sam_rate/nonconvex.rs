//! Theorem 2, smooth non-convex part: unnormalized stochastic SAM on the sigmoid loss.
//!
//! For each horizon `T`, `paths` independent paths of
//! `w_{t+1} = w_t − γ ∇f_B(w_t + ρ ∇f_B(w_t))` (one batch `B` of size `b` per step, drawn with
//! replacement, the same at both points; [`MSam`] with `m = b`) with `γ = 1/(β√T)`,
//! `ρ = 1/(βT^{1/4})`, from the same `w₀`. Per path the average `(1/T) Σ_{t<T} ‖∇f(w_t)‖²`
//! (exact full gradient at every iterate); over paths its mean with a Student-t interval.
//!
//! **The bound** `B(T) = (4β(f(w₀) − f⋆) + 8σ²/b)/√T` needs `f⋆` and `σ²`, neither known
//! exactly, so it is bracketed:
//! * strict `B₋`: `f⋆ ≈ f̂⋆` = the smallest loss seen (a long GD run with step `1/β` and every
//!   iterate of every path) — an **upper** estimate of `inf f`, so `f(w₀) − f̂⋆` is too small —
//!   and `σ̂²` = the largest variance seen ([`super::probe`]) — a **lower** estimate of the sup;
//!   hence `B₋ ≤ B`;
//! * lenient `B₊`: `f⋆ = 0` (the sigmoid loss is non-negative) and the analytic
//!   `σ² ≤ (1/16) mean ‖x_i‖²`; hence `B₊ ≥ B`.
//!
//! Verdict per `T`: pass when the upper end of the interval is `≤ B₋` (then also `≤ B`), fail
//! when its lower end is `> B₊` (then also `> B`), otherwise inconclusive.

use rayon::prelude::*;
use serde::Serialize;

use super::config::NonconvexConfig;
use super::probe::{draw_batch, probe_variance, start};
use crate::ensemble::rng::{path_rng, stream_id};
use crate::landscape::{FiniteSum, Landscape, SigmoidLoss};
use crate::optim::msam::{MSam, MSamWorkspace};
use crate::stats::{loglog_slope, mean_ci, MeanCi, Moments, SlopeFit};

/// Steps between progress reports.
const CHUNK: usize = 4096;
/// Run level of the first horizon's paths (stream numbers; the PL part uses its own levels).
pub const LEVEL: u64 = 1;

/// One horizon.
#[derive(Debug, Clone, Serialize)]
pub struct RatePoint {
    /// `T`.
    pub horizon: usize,
    /// `γ = 1/(β√T)`.
    pub gamma: f64,
    /// `ρ = 1/(βT^{1/4})`.
    pub rho: f64,
    /// Paths whose iterates stayed finite (the mean is over these).
    pub paths: usize,
    /// Paths with a non-finite iterate (never averaged in).
    pub diverged: usize,
    /// `(1/T) Σ_t E‖∇f(w_t)‖²` with its interval.
    pub avg_sq_grad: MeanCi,
    /// Standard error of the mean (for the slope fit).
    pub std_err: f64,
    /// Strict bound `B₋(T)`.
    pub bound_strict: f64,
    /// Lenient bound `B₊(T)`.
    pub bound_lenient: f64,
    /// Mean over paths of `f(w_T)`.
    pub mean_final_loss: f64,
}

/// The non-convex part's results.
#[derive(Debug, Clone, Serialize)]
pub struct NonconvexReport {
    /// The landscape.
    pub landscape: String,
    /// Mini-batch size `b`.
    pub batch: usize,
    /// Per-sample smoothness `β = max_i ‖x_i‖²/(6√3)`.
    pub beta: f64,
    /// `f(w₀)`.
    pub f0: f64,
    /// `f̂⋆`: the smallest loss seen (upper estimate of `inf f`).
    pub fstar_upper: f64,
    /// Where `f̂⋆` was found.
    pub fstar_source: String,
    /// `‖∇f‖` at the end of the GD run (how close it came to stationarity).
    pub gd_final_grad_norm: f64,
    /// Lower bound of `f⋆` used by the lenient bound (0).
    pub fstar_lower: f64,
    /// `σ̂²`: the largest per-sample gradient variance seen (lower estimate of the sup).
    pub sigma2_estimate: f64,
    /// Where `σ̂²` was attained.
    pub sigma2_source: String,
    /// Analytic upper bound `(1/16) mean ‖x_i‖²`.
    pub sigma2_upper: f64,
    /// One entry per horizon.
    pub points: Vec<RatePoint>,
    /// Fitted `ln(avg) = c + s ln T` (information: the theorem bounds the average, it does not
    /// say the average decays like `T^{−½}`).
    pub exponent: Option<SlopeFit>,
}

struct PathOut {
    avg_sq_grad: f64,
    max_var: f64,
    min_loss: f64,
    final_loss: f64,
    diverged: bool,
}

#[allow(clippy::too_many_arguments)]
fn run_path(
    f: &SigmoidLoss,
    alg: MSam,
    w0: &[f64],
    steps: usize,
    batch: usize,
    seed: u64,
    stream: u64,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> PathOut {
    let d = f.dim();
    let n = f.n_samples();
    let mut rng = path_rng(seed, stream);
    let mut w = w0.to_vec();
    let (mut g, mut dir, mut ws) = (vec![0.0; d], vec![0.0; d], MSamWorkspace::new(d));
    let mut idx = vec![0u32; batch];
    let (mut sum, mut max_var, mut min_loss) = (0.0, 0.0f64, f64::INFINITY);
    let mut diverged = false;
    let mut reported = 0usize;
    for t in 0..steps {
        let (loss, var) = f.loss_grad_variance(&w, &mut g);
        if !loss.is_finite() || w.iter().any(|v| !v.is_finite()) {
            diverged = true;
            break;
        }
        sum += g.iter().map(|v| v * v).sum::<f64>();
        max_var = max_var.max(var);
        min_loss = min_loss.min(loss);
        draw_batch(&mut idx, n, &mut rng);
        alg.step(f, &idx, &mut w, &mut dir, &mut ws);
        if (t + 1).is_multiple_of(CHUNK) {
            if let Some(p) = progress {
                p(CHUNK as u64);
            }
            reported += CHUNK;
        }
    }
    if let Some(p) = progress {
        p((steps - reported) as u64);
    }
    let (final_loss, var) = f.loss_grad_variance(&w, &mut g);
    PathOut {
        avg_sq_grad: sum / steps as f64,
        max_var: max_var.max(if var.is_finite() { var } else { 0.0 }),
        min_loss: min_loss.min(if final_loss.is_finite() {
            final_loss
        } else {
            f64::INFINITY
        }),
        final_loss,
        diverged,
    }
}

/// Gradient descent with step `1/β` for `steps` steps from `w₀`: the smallest loss seen and the
/// final gradient norm.
fn gd_fstar(f: &SigmoidLoss, w0: &[f64], beta: f64, steps: usize) -> (f64, f64, f64) {
    let d = f.dim();
    let mut w = w0.to_vec();
    let mut g = vec![0.0; d];
    let (mut best, mut max_var) = (f64::INFINITY, 0.0f64);
    for _ in 0..steps {
        let (l, v) = f.loss_grad_variance(&w, &mut g);
        best = best.min(l);
        max_var = max_var.max(v);
        for (wi, gi) in w.iter_mut().zip(&g) {
            *wi -= gi / beta;
        }
    }
    let (l, v) = f.loss_grad_variance(&w, &mut g);
    best = best.min(l);
    max_var = max_var.max(v);
    (best, g.iter().map(|v| v * v).sum::<f64>().sqrt(), max_var)
}

/// Work units (steps) of this part.
pub fn work(c: &NonconvexConfig) -> u64 {
    c.horizons
        .iter()
        .map(|&t| (t * c.paths) as u64)
        .sum::<u64>()
        + c.fstar_gd_steps as u64
}

/// Runs the part.
pub fn run(
    c: &NonconvexConfig,
    seed: u64,
    level: f64,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> crate::error::Result<NonconvexReport> {
    let data = c.data.build("nonconvex")?;
    let f = SigmoidLoss::new(data);
    let d = f.dim();
    let beta = f.beta();
    let w0 = start(d, c.start_radius, seed, "sam-rate-nonconvex-start");
    let f0 = f.loss(&w0);
    let (gd_best, gd_grad, gd_var) = gd_fstar(&f, &w0, beta, c.fstar_gd_steps);
    if let Some(p) = progress {
        p(c.fstar_gd_steps as u64);
    }
    let jobs: Vec<(usize, usize)> = (0..c.horizons.len())
        .flat_map(|h| (0..c.paths).map(move |p| (h, p)))
        .collect();
    let outs: Vec<PathOut> = jobs
        .par_iter()
        .map(|&(h, p)| {
            let t = c.horizons[h];
            let tf = t as f64;
            let alg = MSam {
                eta: 1.0 / (beta * tf.sqrt()),
                rho: 1.0 / (beta * tf.powf(0.25)),
                m: c.batch,
                normalized: false,
            };
            let stream = stream_id(LEVEL + h as u64, p as u64);
            run_path(&f, alg, &w0, t, c.batch, seed, stream, progress)
        })
        .collect();
    // f̂⋆ and σ̂² over everything seen.
    let (probe_var, probe_at) =
        probe_variance(&f, &c.variance_probes, seed, "sam-rate-nonconvex-probe");
    let path_var = outs.iter().map(|o| o.max_var).fold(0.0, f64::max);
    let path_min = outs
        .iter()
        .filter(|o| !o.diverged)
        .map(|o| o.min_loss)
        .fold(f64::INFINITY, f64::min);
    let (sigma2, sigma2_source) = [
        (probe_var, probe_at),
        (path_var, "an iterate of a SAM path".to_string()),
        (gd_var, "an iterate of the GD run".to_string()),
    ]
    .into_iter()
    .fold((f64::NEG_INFINITY, String::new()), |a, b| {
        if b.0 > a.0 {
            b
        } else {
            a
        }
    });
    let (fstar, fstar_source) = if path_min < gd_best {
        (path_min, "an iterate of a SAM path".to_string())
    } else {
        (
            gd_best,
            format!("GD with step 1/β, {} steps", c.fstar_gd_steps),
        )
    };
    let sigma2_upper = f.variance_upper_bound();
    let b = c.batch as f64;
    let mut points = Vec::new();
    for (h, &t) in c.horizons.iter().enumerate() {
        let mut m = Moments::default();
        let mut fl = Moments::default();
        let mut diverged = 0;
        for o in &outs[h * c.paths..(h + 1) * c.paths] {
            if o.diverged {
                diverged += 1;
            } else {
                m.push(o.avg_sq_grad);
                fl.push(o.final_loss);
            }
        }
        let tf = t as f64;
        points.push(RatePoint {
            horizon: t,
            gamma: 1.0 / (beta * tf.sqrt()),
            rho: 1.0 / (beta * tf.powf(0.25)),
            paths: m.n as usize,
            diverged,
            avg_sq_grad: mean_ci(&m, level),
            std_err: m.std_err(),
            bound_strict: (4.0 * beta * (f0 - fstar) + 8.0 * sigma2 / b) / tf.sqrt(),
            bound_lenient: (4.0 * beta * f0 + 8.0 * sigma2_upper / b) / tf.sqrt(),
            mean_final_loss: fl.mean,
        });
    }
    let xs: Vec<f64> = points.iter().map(|p| p.horizon as f64).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.avg_sq_grad.mean).collect();
    let se: Vec<f64> = points.iter().map(|p| p.std_err).collect();
    let exponent = loglog_slope(&xs, &ys, Some(&se), level).ok();
    Ok(NonconvexReport {
        landscape: f.describe(),
        batch: c.batch,
        beta,
        f0,
        fstar_upper: fstar,
        fstar_source,
        gd_final_grad_norm: gd_grad,
        fstar_lower: 0.0,
        sigma2_estimate: sigma2,
        sigma2_source,
        sigma2_upper,
        points,
        exponent,
    })
}
