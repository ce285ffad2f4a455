//! Fine-tuning on the same problems: ERM → 1-SAM and 1-SAM → ERM, switching at
//! `finetune.switch_step` of the `train.steps` budget, against continued ERM (GD for all
//! `train.steps`), and the losses on the straight line `w(t) = (1 − t) w_ERM + t w_ERM→1-SAM`
//! in parameter space (`t = 0` continued ERM, `t = 1` fine-tuned).
//!
//! One job per seed: continued ERM once, then every `ρ` of `finetune.rho`. "Monotone along the
//! line" is judged on `t ∈ [0, 1]` at [`SEGMENT_POINTS`] points: the population test loss never
//! turns back by more than [`MONOTONE_RTOL`] (relative; rounding of a loss of order 1e-3).

use nalgebra::DMatrix;
use serde::Serialize;

use super::config::ImplicitBiasConfig;
use super::run::{measure, train, Method, RunRecord};
use crate::ensemble::rng::{aux_rng, stream_id};
use crate::landscape::dln::SparseRegression;
use crate::landscape::Landscape;
use crate::optim::schedule::Schedule;

/// Points on `[0, 1]` for the monotonicity judgement.
pub const SEGMENT_POINTS: usize = 51;
/// Relative tolerance of the monotonicity judgement: a turn smaller than this fraction of the
/// loss is rounding, not a bump (losses are sums of 30 squares evaluated in double precision).
pub const MONOTONE_RTOL: f64 = 1e-9;

/// Arm keys in records.
pub const ERM_THEN_SAM: &str = "erm_then_one_sam";
/// Arm keys in records.
pub const SAM_THEN_ERM: &str = "one_sam_then_erm";

/// Losses along the line between two solutions.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Line {
    /// `t` values.
    pub t: Vec<f64>,
    /// Training loss at `w(t)`.
    pub train_loss: Vec<f64>,
    /// Population test loss at `w(t)`.
    pub test_loss: Vec<f64>,
}

/// One seed and `ρ` of the fine-tuning part.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct FinetuneRecord {
    /// Data seed index.
    pub seed: usize,
    /// 1-SAM radius of both arms.
    pub rho: f64,
    /// GD for `switch_step`, then 1-SAM.
    pub erm_then_sam: RunRecord,
    /// 1-SAM for `switch_step`, then GD.
    pub sam_then_erm: RunRecord,
    /// Continued ERM's training loss at the switch step.
    pub switch_train_loss: f64,
    /// Losses on `w(t)` over `finetune.line_range` (`None` if the fine-tuned run diverged).
    pub line: Option<Line>,
    /// The population test loss is monotone on `t ∈ [0, 1]` (`None` if diverged).
    pub monotone: Option<bool>,
}

/// Stream numbers of the fine-tuning runs (full batch: no randomness is drawn; kept distinct
/// from the main runs' anyway).
const FINETUNE_LEVEL: u64 = 1 << 20;

fn line_losses(p: &SparseRegression, a: &[f64], b: &[f64], ts: &[f64]) -> Line {
    let f = &p.train;
    let mut w = vec![0.0; a.len()];
    let mut line = Line {
        t: ts.to_vec(),
        train_loss: Vec::with_capacity(ts.len()),
        test_loss: Vec::with_capacity(ts.len()),
    };
    for &t in ts {
        for ((wi, ai), bi) in w.iter_mut().zip(a).zip(b) {
            *wi = (1.0 - t) * ai + t * bi;
        }
        line.train_loss.push(f.loss(&w));
        line.test_loss.push(p.population_test_loss(&f.beta(&w)));
    }
    line
}

/// `true` if `v` is monotone (either direction) up to a relative turn of `MONOTONE_RTOL` (1e-9).
pub fn monotone(v: &[f64]) -> bool {
    let tol = |a: f64, b: f64| MONOTONE_RTOL * a.abs().max(b.abs()) + 1e-300;
    let up = v.windows(2).all(|w| w[1] >= w[0] - tol(w[0], w[1]));
    let down = v.windows(2).all(|w| w[1] <= w[0] + tol(w[0], w[1]));
    up || down
}

/// Work (steps) of one seed's fine-tuning job.
pub fn work_per_seed(c: &ImplicitBiasConfig) -> u64 {
    c.finetune().map_or(0, |f| {
        (c.train.steps as u64).saturating_mul(1 + 2 * f.rho.len() as u64)
    })
}

/// Runs one seed's fine-tuning job.
pub fn run_seed(
    c: &ImplicitBiasConfig,
    p: &SparseRegression,
    design: &DMatrix<f64>,
    seed: usize,
    progress: &dyn Fn(u64),
) -> Vec<FinetuneRecord> {
    let Some(ft) = c.finetune() else {
        return Vec::new();
    };
    let (steps, switch) = (c.train.steps, ft.switch_step);
    let n = c.data.n;
    let alpha = c.train.alpha;
    let div = c.classify.divergence_loss;
    let mut rng = aux_rng(
        c.seed,
        "implicit_bias.finetune",
        stream_id(FINETUNE_LEVEL, seed as u64),
    );
    let schedule = |phases| Schedule::new(phases, n, "finetune").expect("validated");
    // Continued ERM (bit-identical to the main GD run), with its loss at the switch step.
    let head = train(
        p,
        &schedule(vec![Method::Gd.phase(c, 0.0, switch)]),
        None,
        alpha,
        div,
        &mut rng,
        None,
        progress,
    );
    let switch_loss = if head.diverged {
        f64::NAN
    } else {
        p.train.loss(&head.params)
    };
    let erm_run = train(
        p,
        &schedule(vec![Method::Gd.phase(c, 0.0, steps - switch)]),
        Some((&head.params, &head.eff)),
        alpha,
        div,
        &mut rng,
        None,
        progress,
    );
    let ts: Vec<f64> = (0..ft.line_points)
        .map(|i| {
            ft.line_range[0]
                + (ft.line_range[1] - ft.line_range[0]) * i as f64 / (ft.line_points - 1) as f64
        })
        .collect();
    let seg: Vec<f64> = (0..SEGMENT_POINTS)
        .map(|i| i as f64 / (SEGMENT_POINTS - 1) as f64)
        .collect();
    let mut out = Vec::with_capacity(ft.rho.len());
    for &rho in &ft.rho {
        let b = schedule(vec![
            Method::Gd.phase(c, 0.0, switch),
            Method::OneSam.phase(c, rho, steps - switch),
        ]);
        let tb = train(p, &b, None, alpha, div, &mut rng, None, progress);
        let (line, mono) = if tb.diverged || erm_run.diverged {
            (None, None)
        } else {
            let line = line_losses(p, &erm_run.params, &tb.params, &ts);
            let segment = line_losses(p, &erm_run.params, &tb.params, &seg);
            (Some(line), Some(monotone(&segment.test_loss)))
        };
        let erm_then_sam = measure(c, p, design, seed, ERM_THEN_SAM.into(), rho, tb);
        let cs = schedule(vec![
            Method::OneSam.phase(c, rho, switch),
            Method::Gd.phase(c, 0.0, steps - switch),
        ]);
        let tc = train(p, &cs, None, alpha, div, &mut rng, None, progress);
        let sam_then_erm = measure(c, p, design, seed, SAM_THEN_ERM.into(), rho, tc);
        out.push(FinetuneRecord {
            seed,
            rho,
            erm_then_sam,
            sam_then_erm,
            switch_train_loss: switch_loss,
            line,
            monotone: mono,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotone_either_way_up_to_rounding() {
        assert!(monotone(&[3.0, 2.0, 2.0, 1.0]));
        assert!(monotone(&[1.0, 2.0, 5.0]));
        assert!(monotone(&[1.0, 1.0 + 1e-12, 1.0 - 1e-13 + 1e-12, 2.0]));
        assert!(!monotone(&[1.0, 0.5, 0.7]));
        assert!(!monotone(&[1.0, 1.0 + 1e-6, 0.9]));
    }
}
