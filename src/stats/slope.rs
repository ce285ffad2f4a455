//! Log–log slope of the weak error against the step size, with a confidence interval.
//!
//! With `u_i = ln x_i` (the actual `eta` values, not their nominal grid) and `v_i = ln y_i`
//! (the measured errors), ordinary least squares gives
//!
//! ```text
//! ū = mean(u),  Sxx = Σ (u_i − ū)²,  w_i = (u_i − ū) / Sxx,
//! slope = Σ w_i v_i,   intercept = v̄ − slope · ū,
//! ```
//!
//! and two standard errors for the slope:
//!
//! ```text
//! se_regression  = sqrt( Σ r_i² / ((n − 2) Sxx) ),        r_i = v_i − intercept − slope·u_i
//! se_monte_carlo = sqrt( Σ w_i² (se_i / y_i)² )           (delta method: Var ln y_i ≈ (se_i/y_i)²)
//! ```
//!
//! The confidence interval at `level` is
//!
//! ```text
//! slope ± max( t_{n−2} · se_regression,  z · se_monte_carlo ).
//! ```
//!
//! **Why the larger of the two, and not their sum or root-sum-square.** The residual term
//! measures how far the points scatter around a straight line on the grid actually used. That
//! scatter has two sources: departure from a pure power law (the `C η^α` law only holds
//! asymptotically, so higher-order terms bend the curve at large `eta`) and Monte Carlo noise.
//! The Monte Carlo term measures the noise alone, from the per-point standard errors, and is
//! meaningful even with 2 points or when the few residuals happen to be small by chance. Since
//! the residuals already contain the noise, adding the two would count the noise twice; taking
//! the larger one keeps each source covered by whichever term sees it best: the regression term
//! when curvature dominates, the Monte Carlo term when noise dominates (where the residual
//! estimate from `n − 2` degrees of freedom is itself very noisy). The result is conservative,
//! never narrower than either interval alone.
//!
//! Caveats, stated so that users can judge the number:
//! * with exactly 2 points the regression term is undefined (0 degrees of freedom), so only the
//!   Monte Carlo term is used; with 2 points and no standard errors nothing is known about the
//!   uncertainty and the interval is `(−∞, +∞)`;
//! * the delta method assumes `se_i ≪ y_i`; near the Monte Carlo noise floor (`se_i / y_i` of
//!   order 1) it understates the uncertainty, and errors at the floor should not be fitted;
//! * the Monte Carlo term assumes independent estimates at different `eta` (independent
//!   ensembles). Common random numbers across `eta` would correlate them.

use serde::Serialize;

use super::ci::{t_quantile, z_quantile};
use crate::{Error, Result};

/// Least-squares fit of `ln y = intercept + slope · ln x` with a confidence interval for `slope`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SlopeFit {
    /// Fitted slope (the empirical weak order when `x = eta`, `y = error`).
    pub slope: f64,
    /// Fitted intercept of `ln y` (so `y ≈ exp(intercept) · x^slope`).
    pub intercept: f64,
    /// `slope ± max(t_{n−2} · se_regression, z · se_monte_carlo)` at the requested level.
    pub ci: [f64; 2],
    /// Classical OLS standard error from the residuals (`n − 2` dof); `NaN` if `n = 2`.
    pub se_regression: f64,
    /// Delta-method standard error from the per-point Monte Carlo errors; 0 if none given.
    pub se_monte_carlo: f64,
}

/// Fit `ln y = intercept + slope · ln x` by least squares on the given points.
///
/// `y_se` are the Monte Carlo standard errors of `y` (same length) or `None`.
///
/// # Errors
/// [`Error::Config`] if there are fewer than 2 points, any `x ≤ 0`, `y ≤ 0`, non-finite input,
/// a negative or non-finite standard error, all `x` equal, or `level ∉ (0, 1)`;
/// [`Error::Dimension`] if the lengths of `x`, `y` (and `y_se`) differ.
///
/// ```
/// use samsde::stats::loglog_slope;
/// let x = [0.1, 0.05, 0.025, 0.0125];
/// let y: Vec<f64> = x.iter().map(|e: &f64| 3.0 * e.powf(1.5)).collect();
/// let fit = loglog_slope(&x, &y, None, 0.95).unwrap();
/// assert!((fit.slope - 1.5).abs() < 1e-12);
/// ```
pub fn loglog_slope(x: &[f64], y: &[f64], y_se: Option<&[f64]>, level: f64) -> Result<SlopeFit> {
    validate(x, y, y_se, level)?;
    let n = x.len();
    let nf = n as f64;
    let u: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let v: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    let ubar = u.iter().sum::<f64>() / nf;
    let vbar = v.iter().sum::<f64>() / nf;
    let sxx: f64 = u.iter().map(|ui| (ui - ubar).powi(2)).sum();
    // Relative to the spread of ln x: all x equal up to rounding leaves the slope undefined.
    if sxx <= 1e-24 * ubar.abs().max(1.0).powi(2) * nf {
        return Err(Error::config(
            "slope fit: x",
            format!("{x:?}"),
            "must contain at least two distinct values",
        ));
    }
    let w: Vec<f64> = u.iter().map(|ui| (ui - ubar) / sxx).collect();
    let slope: f64 = w.iter().zip(&v).map(|(wi, vi)| wi * (vi - vbar)).sum();
    let intercept = vbar - slope * ubar;

    let se_regression = if n > 2 {
        let rss: f64 = u
            .iter()
            .zip(&v)
            .map(|(ui, vi)| (vi - intercept - slope * ui).powi(2))
            .sum();
        (rss / ((nf - 2.0) * sxx)).sqrt()
    } else {
        f64::NAN
    };
    let se_monte_carlo = match y_se {
        Some(se) => w
            .iter()
            .zip(se.iter().zip(y))
            .map(|(wi, (si, yi))| (wi * si / yi).powi(2))
            .sum::<f64>()
            .sqrt(),
        None => 0.0,
    };

    let mc_half = z_quantile(level) * se_monte_carlo;
    let half = if n > 2 {
        (t_quantile(level, nf - 2.0) * se_regression).max(mc_half)
    } else if y_se.is_some() {
        mc_half
    } else {
        // Two points, no standard errors: the data say nothing about the uncertainty.
        f64::INFINITY
    };
    Ok(SlopeFit {
        slope,
        intercept,
        ci: [slope - half, slope + half],
        se_regression,
        se_monte_carlo,
    })
}

fn validate(x: &[f64], y: &[f64], y_se: Option<&[f64]>, level: f64) -> Result<()> {
    if x.len() != y.len() {
        return Err(Error::Dimension {
            what: "slope fit: y (one error per x)".into(),
            expected: x.len(),
            got: y.len(),
        });
    }
    if let Some(se) = y_se {
        if se.len() != x.len() {
            return Err(Error::Dimension {
                what: "slope fit: y_se (one standard error per x)".into(),
                expected: x.len(),
                got: se.len(),
            });
        }
    }
    if x.len() < 2 {
        return Err(Error::config(
            "slope fit: number of points",
            x.len(),
            "must be at least 2",
        ));
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(Error::config(
            "slope fit: level",
            level,
            "must be in (0, 1)",
        ));
    }
    for (i, &xi) in x.iter().enumerate() {
        if !(xi.is_finite() && xi > 0.0) {
            return Err(Error::config(
                format!("slope fit: x[{i}]"),
                xi,
                "must be positive and finite",
            ));
        }
    }
    for (i, &yi) in y.iter().enumerate() {
        if !(yi.is_finite() && yi > 0.0) {
            return Err(Error::config(
                format!("slope fit: y[{i}]"),
                yi,
                "must be positive and finite (a zero or negative error has no logarithm)",
            ));
        }
    }
    if let Some(se) = y_se {
        for (i, &si) in se.iter().enumerate() {
            if !(si.is_finite() && si >= 0.0) {
                return Err(Error::config(
                    format!("slope fit: y_se[{i}]"),
                    si,
                    "must be non-negative and finite",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    /// The η grid of docs/theory.md §4: halving from 0.1, five levels.
    const ETA: [f64; 5] = [0.1, 0.05, 0.025, 0.0125, 0.00625];

    #[test]
    fn exact_power_law() {
        let y: Vec<f64> = ETA.iter().map(|e| 3.0 * e.powf(1.5)).collect();
        let fit = loglog_slope(&ETA, &y, None, 0.95).unwrap();
        // Exact data: only rounding of ln and the sums, ~1e-15 relative per term.
        assert!((fit.slope - 1.5).abs() < 1e-12, "{fit:?}");
        assert!((fit.intercept - 3.0_f64.ln()).abs() < 1e-12, "{fit:?}");
        assert!(fit.ci[1] - fit.ci[0] < 1e-10, "{fit:?}");
        assert!(fit.ci[0] <= 1.5 + 1e-12 && 1.5 - 1e-12 <= fit.ci[1]);
        assert_eq!(fit.se_monte_carlo, 0.0);
    }

    #[test]
    fn uses_actual_x_values_not_a_grid() {
        // Irregular x: the fit must use them as given.
        let x = [0.3, 0.11, 0.07, 0.013, 0.002];
        let y: Vec<f64> = x.iter().map(|e: &f64| 0.5 * e.powf(0.75)).collect();
        let fit = loglog_slope(&x, &y, None, 0.95).unwrap();
        assert!((fit.slope - 0.75).abs() < 1e-12, "{fit:?}");
    }

    #[test]
    fn noisy_case_contains_true_slope() {
        // y = 2 η (slope 1) with 5 % relative Gaussian noise and the matching standard errors.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let truth: Vec<f64> = ETA.iter().map(|e| 2.0 * e).collect();
        let se: Vec<f64> = truth.iter().map(|t| 0.05 * t).collect();
        let y: Vec<f64> = truth
            .iter()
            .zip(&se)
            .map(|(t, s)| t + s * rng.sample::<f64, _>(StandardNormal))
            .collect();
        let fit = loglog_slope(&ETA, &y, Some(&se), 0.95).unwrap();
        assert!(fit.ci[0] <= 1.0 && 1.0 <= fit.ci[1], "{fit:?}");
        // 5 % noise over 1.2 decades: Sxx = 10 (ln 2)² ≈ 4.8, se_mc = 0.05/√Sxx ≈ 0.023, so the
        // CI width is about 0.1–0.3; a width of 0.5 would mean the interval is useless.
        assert!(fit.ci[1] - fit.ci[0] < 0.5, "{fit:?}");
        assert!(fit.se_monte_carlo > 0.0 && fit.se_regression > 0.0);
    }

    #[test]
    fn curvature_without_noise_is_caught_by_the_residual_term() {
        // y = η + 5η²: not a power law on this grid; no MC noise, so only the residual term
        // can give the interval its width.
        let y: Vec<f64> = ETA.iter().map(|e| e + 5.0 * e * e).collect();
        let se = [0.0; 5];
        let fit = loglog_slope(&ETA, &y, Some(&se), 0.95).unwrap();
        assert_eq!(fit.se_monte_carlo, 0.0);
        assert!(fit.se_regression > 1e-3, "{fit:?}");
        assert!(fit.ci[1] - fit.ci[0] > 1e-2, "{fit:?}");
    }

    #[test]
    fn two_points() {
        let x = [0.1, 0.05];
        let y = [0.2, 0.1];
        let fit = loglog_slope(&x, &y, Some(&[0.01, 0.005]), 0.95).unwrap();
        assert!((fit.slope - 1.0).abs() < 1e-12);
        assert!(fit.se_regression.is_nan());
        // se_mc = sqrt(Σ w² (0.05)²), w = ±1/(2·(ln2/2)) → |w| = 1/ln 2.
        let se_mc = (2.0_f64).sqrt() * 0.05 / 2.0_f64.ln();
        assert!((fit.se_monte_carlo - se_mc).abs() < 1e-12, "{fit:?}");
        let half = 1.959_963_984_540_054 * se_mc;
        assert!((fit.ci[1] - fit.slope - half).abs() < 1e-9, "{fit:?}");
        // Without standard errors nothing bounds the uncertainty.
        let fit = loglog_slope(&x, &y, None, 0.95).unwrap();
        assert_eq!(fit.ci, [f64::NEG_INFINITY, f64::INFINITY]);
    }

    #[test]
    fn rejects_bad_input() {
        let ok = [0.1, 0.05, 0.025];
        /// (x, y, y_se, level)
        type Case = (Vec<f64>, Vec<f64>, Option<Vec<f64>>, f64);
        let cases: Vec<Case> = vec![
            (vec![0.1], vec![0.1], None, 0.95),                   // 1 point
            (vec![], vec![], None, 0.95),                         // 0 points
            (vec![0.1, 0.0, 0.02], ok.to_vec(), None, 0.95),      // x = 0
            (vec![0.1, -0.05, 0.02], ok.to_vec(), None, 0.95),    // x < 0
            (ok.to_vec(), vec![0.1, 0.0, 0.02], None, 0.95),      // y = 0
            (ok.to_vec(), vec![0.1, -1.0, 0.02], None, 0.95),     // y < 0
            (ok.to_vec(), vec![0.1, f64::NAN, 0.02], None, 0.95), // NaN
            (vec![0.1, f64::INFINITY, 0.02], ok.to_vec(), None, 0.95), // inf
            (ok.to_vec(), ok.to_vec(), Some(vec![0.1, -0.1, 0.1]), 0.95), // se < 0
            (
                ok.to_vec(),
                ok.to_vec(),
                Some(vec![0.1, f64::NAN, 0.1]),
                0.95,
            ), // se NaN
            (ok.to_vec(), ok.to_vec(), Some(vec![0.1, 0.1]), 0.95), // se length
            (ok.to_vec(), vec![0.1, 0.2], None, 0.95),            // y length
            (vec![0.1, 0.1, 0.1], ok.to_vec(), None, 0.95),       // equal x
            (ok.to_vec(), ok.to_vec(), None, 1.0),                // level
            (ok.to_vec(), ok.to_vec(), None, f64::NAN),           // level
        ];
        for (i, (x, y, se, level)) in cases.iter().enumerate() {
            let r = loglog_slope(x, y, se.as_deref(), *level);
            assert!(r.is_err(), "case {i} should fail: {r:?}");
        }
        let msg = loglog_slope(&ok, &[0.1, 0.0, 0.02], None, 0.95)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("y[1]") && msg.contains("got 0"), "{msg}");
    }

    /// Coverage of the 95 % slope CI over 400 synthetic data sets with known slope 1.0 and
    /// Gaussian noise of known, heteroscedastic relative size (3 %–15 %), the standard errors
    /// passed to the fit. The empirical coverage must be ≥ 0.90: at n = 400 the binomial
    /// half-width of a 95 % proportion is 1.96·sqrt(.95·.05/400) ≈ 0.02, and the interval is
    /// conservative by construction (the larger of two approximately valid half-widths), so the
    /// expected coverage is ≥ 0.95 and 0.90 is more than 4 binomial sd below it.
    ///
    /// Negative control on the same data: a ±1 standard-error interval (nominal 68 %) must
    /// cover at most 80 % — so 400 data sets do distinguish a too-narrow interval.
    #[test]
    fn slope_ci_coverage() {
        let mut rng = ChaCha8Rng::seed_from_u64(2024);
        let alpha = 1.0;
        let rel = [0.03, 0.05, 0.08, 0.12, 0.15];
        let reps = 400;
        let (mut hit, mut hit_narrow) = (0, 0);
        for _ in 0..reps {
            let truth: Vec<f64> = ETA.iter().map(|e| 0.7 * e.powf(alpha)).collect();
            let se: Vec<f64> = truth.iter().zip(&rel).map(|(t, r)| r * t).collect();
            let y: Vec<f64> = truth
                .iter()
                .zip(&se)
                .map(|(t, s)| t + s * rng.sample::<f64, _>(StandardNormal))
                .collect();
            let fit = loglog_slope(&ETA, &y, Some(&se), 0.95).unwrap();
            if fit.ci[0] <= alpha && alpha <= fit.ci[1] {
                hit += 1;
            }
            if (fit.slope - alpha).abs() <= fit.se_monte_carlo {
                hit_narrow += 1;
            }
        }
        let cov = hit as f64 / reps as f64;
        let cov_narrow = hit_narrow as f64 / reps as f64;
        assert!(cov >= 0.90, "coverage {cov}");
        assert!(cov_narrow <= 0.80, "negative control coverage {cov_narrow}");
    }
}
