//! One training run of the implicit-bias study and what is measured on it: the schedule is run
//! with the exact `α_eff` bookkeeping, checked for divergence every [`CHECK_EVERY`] steps, and
//! the final state is classified and compared with the dual-Newton prediction.

use nalgebra::DMatrix;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::config::{ClassifyConfig, ImplicitBiasConfig, MethodName};
use crate::landscape::dln::{initial_params, EffectiveInit, SparseRegression};
use crate::landscape::hyperbolic_entropy::{solve_min_entropy, NewtonSettings};
use crate::landscape::Landscape;
use crate::optim::msam::MSam;
use crate::optim::schedule::{Phase, Schedule};
use crate::oracle::Subsampling;

/// Divergence (non-finite or training loss above the bound) is checked this often.
pub const CHECK_EVERY: usize = 50;

/// Progress is reported in chunks of this many steps.
pub const PROGRESS_CHUNK: usize = 1000;

/// A training method (the base four, or m-SAM with a given `m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Full-batch GD (ERM).
    Gd,
    /// SGD, batch 1.
    Sgd,
    /// n-SAM (`m = n`).
    NSam,
    /// 1-SAM (`m = 1`).
    OneSam,
    /// m-SAM with this `m`.
    MSam(usize),
}

impl Method {
    /// The configured base method.
    pub fn from_name(m: MethodName) -> Self {
        match m {
            MethodName::Gd => Method::Gd,
            MethodName::Sgd => Method::Sgd,
            MethodName::NSam => Method::NSam,
            MethodName::OneSam => Method::OneSam,
        }
    }

    /// Key used in JSON/CSV (`gd`, `sgd`, `n_sam`, `one_sam`, `m_sam_5`).
    pub fn key(self) -> String {
        match self {
            Method::Gd => "gd".into(),
            Method::Sgd => "sgd".into(),
            Method::NSam => "n_sam".into(),
            Method::OneSam => "one_sam".into(),
            Method::MSam(m) => format!("m_sam_{m}"),
        }
    }

    /// Label used in tables and figures.
    pub fn label(self) -> String {
        match self {
            Method::Gd => "GD (ERM)".into(),
            Method::Sgd => "SGD (batch 1)".into(),
            Method::NSam => "n-SAM".into(),
            Method::OneSam => "1-SAM".into(),
            Method::MSam(m) => format!("{m}-SAM"),
        }
    }

    /// `true` for the methods with an ascent radius.
    pub fn has_rho(self) -> bool {
        !matches!(self, Method::Gd | Method::Sgd)
    }

    /// One phase of this method with radius `rho` for `steps` steps on `n` samples.
    pub fn phase(self, c: &ImplicitBiasConfig, rho: f64, steps: usize) -> Phase {
        let n = c.data.n;
        let eta = c.eta();
        let normalized = c.train.normalized;
        let (m, rho, sampling) = match self {
            Method::Gd => (n, 0.0, None),
            Method::Sgd => (
                1,
                0.0,
                Some(Subsampling {
                    batch: 1,
                    replacement: false,
                    n,
                }),
            ),
            Method::NSam => (n, rho, None),
            Method::OneSam => {
                let factor = if c.train.original_one_sam_ascent {
                    2.0
                } else {
                    1.0
                };
                (1, factor * rho, None)
            }
            Method::MSam(m) => (m, rho, None),
        };
        Phase {
            steps,
            alg: MSam {
                eta,
                rho,
                m,
                normalized,
            },
            sampling,
        }
    }
}

/// How a run ended (checked in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A non-finite value, or the training loss above `classify.divergence_loss`.
    Diverged,
    /// `‖β‖₂ < classify.collapse_norm` at the end.
    Collapsed,
    /// Final training loss above `classify.fit_loss`.
    Unconverged,
    /// Fits the training data but the population test loss exceeds `classify.far_test_loss`.
    FitsFar,
    /// Fits the training data near `β*`: the only outcome that enters medians.
    Ok,
}

impl Outcome {
    /// `true` for [`Outcome::Ok`].
    pub fn included(self) -> bool {
        self == Outcome::Ok
    }

    /// Name as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Diverged => "diverged",
            Outcome::Collapsed => "collapsed",
            Outcome::Unconverged => "unconverged",
            Outcome::FitsFar => "fits_far",
            Outcome::Ok => "ok",
        }
    }
}

/// Losses along a run at log-spaced steps.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Curve {
    /// Steps (1-based).
    pub step: Vec<usize>,
    /// Training loss.
    pub train_loss: Vec<f64>,
    /// Population test loss `½‖β − β*‖²`.
    pub test_loss: Vec<f64>,
    /// Sampled test loss.
    pub test_loss_sampled: Vec<f64>,
}

/// Everything measured on one run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RunRecord {
    /// Data seed index.
    pub seed: usize,
    /// Method key (`gd`, `one_sam`, …, or a fine-tuning arm `erm_then_one_sam`, `one_sam_then_erm`).
    pub method: String,
    /// Ascent radius (`0` for GD and SGD).
    pub rho: f64,
    /// Outcome class.
    pub outcome: Outcome,
    /// Steps done (fewer than scheduled only for diverged runs).
    pub steps_done: usize,
    /// Final training loss.
    pub train_loss: f64,
    /// Final population test loss `½‖β − β*‖²`.
    pub test_loss: f64,
    /// Final sampled test loss.
    pub test_loss_sampled: f64,
    /// `‖β‖₁`.
    pub beta_l1: f64,
    /// `#{i : |β_i| > support_threshold}`.
    pub support_size: usize,
    /// Coordinates outside the true support counted in `support_size`.
    pub false_positives: usize,
    /// Coordinates of the true support not counted.
    pub false_negatives: usize,
    /// Geometric mean of `α_eff` over coordinates (`None` if undefined somewhere).
    pub alpha_eff_geomean: Option<f64>,
    /// Mean `Δ = −ln(α_eff²/α²)` over the true support.
    pub delta_on: Option<f64>,
    /// Mean `Δ` over the other coordinates.
    pub delta_off: Option<f64>,
    /// `α_eff` per coordinate (`None` where a sign flip made it undefined).
    pub alpha_eff: Vec<Option<f64>>,
    /// (step, coordinate) pairs with a non-positive factor product.
    pub sign_flips: usize,
    /// `‖β_T − β̂‖₂`, `β̂ = argmin ψ_{α_eff}` on `{Xβ = y}` (dual Newton).
    pub dual_distance: Option<f64>,
    /// The same with the ½ dropped (`β̂ = α_eff² sinh(Xᵀλ)`): the convention check.
    pub dual_distance_without_half: Option<f64>,
    /// Why the dual prediction is missing, if it is.
    pub dual_note: Option<String>,
    /// Training curve (representative seed only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<Curve>,
}

impl RunRecord {
    /// The test loss the verdicts use.
    pub fn metric(&self, sampled: bool) -> f64 {
        if sampled {
            self.test_loss_sampled
        } else {
            self.test_loss
        }
    }
}

/// Log-spaced checkpoints `1 ≤ s ≤ steps` (about `points` of them, distinct, increasing).
pub fn checkpoints(steps: usize, points: usize) -> Vec<usize> {
    let mut out: Vec<usize> = (0..points)
        .map(|i| {
            let u = i as f64 / (points - 1) as f64;
            (steps as f64).powf(u).round() as usize
        })
        .map(|s| s.clamp(1, steps))
        .collect();
    out.dedup();
    out
}

/// The state after a schedule: parameters, the `α_eff` bookkeeping and what happened.
pub struct Trained {
    /// Final `(u, v)`.
    pub params: Vec<f64>,
    /// The product formula.
    pub eff: EffectiveInit,
    /// Steps done.
    pub steps_done: usize,
    /// Stopped for divergence.
    pub diverged: bool,
    /// Curve, if checkpoints were given.
    pub curve: Option<Curve>,
}

/// `l > bound`, or `l` is NaN.
fn too_large(l: f64, bound: f64) -> bool {
    l.is_nan() || l > bound
}

/// Runs `schedule` from `u = α`, `v = 0` (or from `start`, continuing `eff`).
#[allow(clippy::too_many_arguments)]
pub fn train(
    p: &SparseRegression,
    schedule: &Schedule,
    start: Option<(&[f64], &EffectiveInit)>,
    alpha: f64,
    divergence_loss: f64,
    rng: &mut ChaCha8Rng,
    curve_at: Option<&[usize]>,
    progress: &dyn Fn(u64),
) -> Trained {
    let f = &p.train;
    let d = f.input_dim();
    let (mut params, mut eff) = match start {
        Some((x, e)) => (x.to_vec(), e.clone()),
        None => (initial_params(d, alpha), EffectiveInit::new(d, alpha)),
    };
    let mut curve = curve_at.map(|_| Curve::default());
    let mut next = 0usize;
    let mut diverged = false;
    let mut beta = vec![0.0; d];
    let mut reported = 0usize;
    let steps_done = schedule.run(f, &mut params, rng, |k, before, after| {
        eff.record(before, after);
        if let (Some(c), Some(at)) = (curve.as_mut(), curve_at) {
            if next < at.len() && at[next] == k {
                f.beta_into(after, &mut beta);
                c.step.push(k);
                c.train_loss.push(f.loss(after));
                c.test_loss.push(p.population_test_loss(&beta));
                c.test_loss_sampled.push(p.sampled_test_loss(&beta));
                next += 1;
            }
        }
        if k % PROGRESS_CHUNK == 0 {
            progress((k - reported) as u64);
            reported = k;
        }
        if k % CHECK_EVERY == 0 {
            let l = f.loss(after);
            if too_large(l, divergence_loss) || after.iter().any(|v| !v.is_finite()) {
                diverged = true;
                return false;
            }
        }
        true
    });
    // The rest of the scheduled work counts as done (a diverged run stops early).
    progress((schedule.total_steps() - reported) as u64);
    if !diverged {
        let l = f.loss(&params);
        diverged = too_large(l, divergence_loss) || params.iter().any(|v| !v.is_finite());
    }
    Trained {
        params,
        eff,
        steps_done,
        diverged,
        curve,
    }
}

/// Classifies a final state (see [`Outcome`]).
pub fn classify(
    c: &ClassifyConfig,
    diverged: bool,
    beta: &[f64],
    train: f64,
    test: f64,
) -> Outcome {
    let norm = beta.iter().map(|b| b * b).sum::<f64>().sqrt();
    if diverged || !train.is_finite() || !test.is_finite() {
        Outcome::Diverged
    } else if norm < c.collapse_norm {
        Outcome::Collapsed
    } else if train > c.fit_loss {
        Outcome::Unconverged
    } else if test > c.far_test_loss {
        Outcome::FitsFar
    } else {
        Outcome::Ok
    }
}

/// Measures a trained state (losses, support, `α_eff`, the dual prediction).
pub fn measure(
    c: &ImplicitBiasConfig,
    p: &SparseRegression,
    design: &DMatrix<f64>,
    seed: usize,
    method: String,
    rho: f64,
    t: Trained,
) -> RunRecord {
    let f = &p.train;
    let beta = f.beta(&t.params);
    let train_loss = f.loss(&t.params);
    let test_loss = p.population_test_loss(&beta);
    let test_loss_sampled = p.sampled_test_loss(&beta);
    let outcome = classify(&c.classify, t.diverged, &beta, train_loss, test_loss);
    let thr = c.classify.support_threshold;
    let k = p.k;
    let support_size = beta.iter().filter(|b| b.abs() > thr).count();
    let false_positives = beta[k..].iter().filter(|b| b.abs() > thr).count();
    let false_negatives = beta[..k].iter().filter(|b| b.abs() <= thr).count();
    let a = t.eff.alpha_eff();
    let delta = t.eff.delta();
    let defined = !t.diverged && a.iter().all(|v| v.is_finite() && *v > 0.0);
    let alpha_eff_geomean =
        defined.then(|| (a.iter().map(|v| v.ln()).sum::<f64>() / a.len() as f64).exp());
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (delta_on, delta_off) = if defined {
        (
            Some(mean(&delta[..k])),
            (k < delta.len()).then(|| mean(&delta[k..])),
        )
    } else {
        (None, None)
    };
    let (mut dual_distance, mut dual_distance_without_half, mut dual_note) = (None, None, None);
    if !defined {
        dual_note = Some(if t.diverged {
            "diverged".into()
        } else {
            "α_eff undefined (a factor product ≤ 0: s or q changed sign)".into()
        });
    } else {
        let dist = |b: &[f64]| -> f64 {
            b.iter()
                .zip(&beta)
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f64>()
                .sqrt()
        };
        match solve_min_entropy(design, f.targets(), &a, NewtonSettings::default()) {
            Ok(sol) => dual_distance = Some(dist(&sol.beta)),
            Err(e) => dual_note = Some(e.to_string()),
        }
        let a2: Vec<f64> = a.iter().map(|v| v * std::f64::consts::SQRT_2).collect();
        if let Ok(sol) = solve_min_entropy(design, f.targets(), &a2, NewtonSettings::default()) {
            dual_distance_without_half = Some(dist(&sol.beta));
        }
    }
    RunRecord {
        seed,
        method,
        rho,
        outcome,
        steps_done: t.steps_done,
        train_loss,
        test_loss,
        test_loss_sampled,
        beta_l1: beta.iter().map(|b| b.abs()).sum(),
        support_size,
        false_positives,
        false_negatives,
        alpha_eff_geomean,
        delta_on,
        delta_off,
        alpha_eff: a.iter().map(|v| v.is_finite().then_some(*v)).collect(),
        sign_flips: t.eff.sign_flips(),
        dual_distance,
        dual_distance_without_half,
        dual_note,
        curve: t.curve,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_are_log_spaced_distinct_and_end_at_the_last_step() {
        let c = checkpoints(10_000, 50);
        assert_eq!(c[0], 1);
        assert_eq!(*c.last().unwrap(), 10_000);
        assert!(c.windows(2).all(|w| w[0] < w[1]));
        assert!(c.len() > 40);
        assert_eq!(checkpoints(3, 10), vec![1, 2, 3]);
    }

    #[test]
    fn outcome_classes_in_order() {
        let c = ClassifyConfig {
            divergence_loss: 1e3,
            collapse_norm: 0.05,
            fit_loss: 1e-5,
            far_test_loss: 0.25,
            support_threshold: 0.01,
        };
        let b = [0.5, 0.5];
        assert_eq!(classify(&c, true, &b, 0.0, 0.0), Outcome::Diverged);
        assert_eq!(classify(&c, false, &b, f64::NAN, 0.0), Outcome::Diverged);
        assert_eq!(
            classify(&c, false, &[0.01, 0.0], 0.4, 0.5),
            Outcome::Collapsed
        );
        assert_eq!(classify(&c, false, &b, 1e-3, 0.01), Outcome::Unconverged);
        assert_eq!(classify(&c, false, &b, 1e-9, 0.3), Outcome::FitsFar);
        assert_eq!(classify(&c, false, &b, 1e-9, 0.01), Outcome::Ok);
    }
}
