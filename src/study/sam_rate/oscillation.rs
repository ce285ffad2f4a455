//! The contrast Theorem 2's assumptions point at: with **normalized** SAM and a constant `ρ`
//! the iterates do not converge.
//!
//! Full batch on `f = ½xᵀHx` (minimum at 0, `H ≻ 0`):
//! `x ← x − η H(x + ρ Hx/‖Hx‖)` (SAM, [`MSam::full_step`] with `normalized = true`) beside
//! `x ← x − η H(x + ρ Hx)` (USAM, the same `η, ρ`).
//!
//! **Prediction.** Along the top eigenvector `v₁` (eigenvalue `λ₁`) the SAM map on `y = v₁ᵀx`
//! is `y ← (1 − ηλ₁)y − ηλ₁ρ sign(y)`; its period-2 orbit `y → −y` solves
//! `(1 − ηλ₁)y − ηλ₁ρ = −y`, i.e.
//!
//! `|y| = a := ηλ₁ρ / (2 − ηλ₁)`,
//!
//! and the two-step map `y ↦ (1 − ηλ₁)² y + ηλ₁ρ · ηλ₁` contracts to it (factor `(1 − ηλ₁)²`).
//! On the orbit `‖Hx‖ = λ₁a`, and a component along another eigenvector `v_i` is multiplied per
//! step by `1 − ηλ_i − (λ_i/λ₁)²(2 − ηλ₁)`, of modulus `< 1` for `λ_i < λ₁`, so it dies out:
//! SAM ends bouncing across the minimum along `v₁` at the distance `a ∝ ρ`, for ever (the
//! "bouncing across ravines" picture of Bartlett, Long & Bousquet, 2022). USAM instead contracts
//! by `1 − ηλ_i(1 + ρλ_i)` per step and converges to 0.
//!
//! Measured: `‖x_t‖` over the last `tail_fraction` of the steps (mean, min, max; and the mean of
//! the first and second half of the tail, to show it is not still decaying), and the alignment
//! `|v₁ᵀx|/‖x‖` there. Read as an observation against `a` (consistent within `tolerance`).

use serde::Serialize;

use super::config::OscillationConfig;
use super::probe::start;
use crate::landscape::{Landscape, Quadratic};
use crate::optim::msam::{MSam, MSamWorkspace};

/// One (algorithm, ρ) run.
#[derive(Debug, Clone, Serialize)]
pub struct OscillationRow {
    /// `sam` (normalized) or `usam`.
    pub algorithm: String,
    /// `ρ`.
    pub rho: f64,
    /// `a = ηλ₁ρ/(2 − ηλ₁)` (SAM's predicted distance; `0` for USAM, which converges).
    pub predicted: f64,
    /// Mean of `‖x_t‖` over the tail.
    pub tail_mean: f64,
    /// Minimum over the tail.
    pub tail_min: f64,
    /// Maximum over the tail.
    pub tail_max: f64,
    /// Mean over the first half of the tail.
    pub tail_first_half: f64,
    /// Mean over the second half of the tail.
    pub tail_second_half: f64,
    /// `‖x_T‖`.
    pub final_distance: f64,
    /// Mean of `|v₁ᵀx|/‖x‖` over the tail (`NaN` once `x = 0`).
    pub alignment: f64,
}

/// `‖x_t‖` at log-spaced steps (for the figure).
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// `sam` or `usam`.
    pub algorithm: String,
    /// `ρ`.
    pub rho: f64,
    /// Steps.
    pub steps: Vec<usize>,
    /// `‖x_t‖` there.
    pub distance: Vec<f64>,
}

/// The contrast's results.
#[derive(Debug, Clone, Serialize)]
pub struct OscillationReport {
    /// The quadratic.
    pub landscape: String,
    /// `λ₁ = λ_max`.
    pub lambda_max: f64,
    /// `η`.
    pub eta: f64,
    /// Steps per run.
    pub steps: usize,
    /// First step of the tail.
    pub tail_from: usize,
    /// One row per (algorithm, ρ).
    pub rows: Vec<OscillationRow>,
    /// Distance traces.
    pub traces: Vec<Trace>,
}

/// Log-spaced steps `1 … steps` (about 40 per decade) plus the last 50 steps, sorted, unique.
fn trace_steps(steps: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..=((steps as f64).log10() * 40.0).ceil() as usize)
        .map(|k| 10f64.powf(k as f64 / 40.0).round() as usize)
        .filter(|&s| s >= 1 && s <= steps)
        .collect();
    v.extend(steps.saturating_sub(49).max(1)..=steps);
    v.sort_unstable();
    v.dedup();
    v
}

/// Work units (steps) of this part.
pub fn work(c: &OscillationConfig) -> u64 {
    2 * (c.rhos.len() * c.steps) as u64
}

/// Runs the part.
pub fn run(
    c: &OscillationConfig,
    seed: u64,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> crate::error::Result<OscillationReport> {
    let q = Quadratic::from_spectrum(&c.eigenvalues, c.rotation_seed)?;
    let d = q.dim();
    let h = q.hessian(&vec![0.0; d]);
    let eig = nalgebra::SymmetricEigen::new(h);
    let (k1, lambda_max) =
        eig.eigenvalues
            .iter()
            .enumerate()
            .fold(
                (0, f64::NEG_INFINITY),
                |a, (i, &v)| if v > a.1 { (i, v) } else { a },
            );
    let v1: Vec<f64> = eig.eigenvectors.column(k1).iter().copied().collect();
    let x0 = start(d, c.start_radius, seed, "sam-rate-oscillation-start");
    let tail_from = (c.steps - ((c.steps as f64 * c.tail_fraction).round() as usize).max(1)) + 1;
    let half = tail_from + (c.steps + 1 - tail_from) / 2;
    let marks = trace_steps(c.steps);
    let (mut rows, mut traces) = (Vec::new(), Vec::new());
    for &rho in &c.rhos {
        for (name, normalized) in [("sam", true), ("usam", false)] {
            let alg = MSam {
                eta: c.eta,
                rho,
                m: 1,
                normalized,
            };
            let mut x = x0.clone();
            let (mut dir, mut ws) = (vec![0.0; d], MSamWorkspace::new(d));
            let (mut sum, mut mn, mut mx, mut n) = (0.0, f64::INFINITY, 0.0f64, 0usize);
            let (mut s1, mut n1, mut s2, mut n2) = (0.0, 0usize, 0.0, 0usize);
            let (mut align, mut na) = (0.0, 0usize);
            let mut trace = Trace {
                algorithm: name.into(),
                rho,
                steps: Vec::new(),
                distance: Vec::new(),
            };
            let mut next_mark = 0;
            for t in 1..=c.steps {
                alg.full_step(&q, &mut x, &mut dir, &mut ws);
                let r = x.iter().map(|v| v * v).sum::<f64>().sqrt();
                if next_mark < marks.len() && marks[next_mark] == t {
                    trace.steps.push(t);
                    trace.distance.push(r);
                    next_mark += 1;
                }
                if t >= tail_from {
                    sum += r;
                    n += 1;
                    mn = mn.min(r);
                    mx = mx.max(r);
                    if t < half {
                        s1 += r;
                        n1 += 1;
                    } else {
                        s2 += r;
                        n2 += 1;
                    }
                    if r > 0.0 {
                        align += x.iter().zip(&v1).map(|(a, b)| a * b).sum::<f64>().abs() / r;
                        na += 1;
                    }
                }
            }
            if let Some(p) = progress {
                p(c.steps as u64);
            }
            let el = c.eta * lambda_max;
            rows.push(OscillationRow {
                algorithm: name.into(),
                rho,
                predicted: if normalized {
                    el * rho / (2.0 - el)
                } else {
                    0.0
                },
                tail_mean: sum / n as f64,
                tail_min: mn,
                tail_max: mx,
                tail_first_half: s1 / n1.max(1) as f64,
                tail_second_half: s2 / n2.max(1) as f64,
                final_distance: x.iter().map(|v| v * v).sum::<f64>().sqrt(),
                alignment: if na > 0 { align / na as f64 } else { f64::NAN },
            });
            traces.push(trace);
        }
    }
    Ok(OscillationReport {
        landscape: q.describe(),
        lambda_max,
        eta: c.eta,
        steps: c.steps,
        tail_from,
        rows,
        traces,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_steps_are_sorted_and_end_at_the_last_step() {
        let v = trace_steps(5000);
        assert!(v.windows(2).all(|w| w[0] < w[1]));
        assert_eq!((v[0], *v.last().unwrap()), (1, 5000));
        assert!(v.contains(&4951) && v.contains(&10));
    }
}
