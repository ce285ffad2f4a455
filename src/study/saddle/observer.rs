//! Per-path bookkeeping: the ensemble [`Observer`] that records, for every path of every system,
//! the first time `‖x_t‖ ≥ R` (escape), `‖x_T‖`, the tail sum/min/max of `‖x‖` and
//! `‖∇f(x₀)‖`, optionally the saved `‖x‖` curve; and the [`Outcome`] classes derived from such a
//! record (escape, converge `‖x_T‖ < c`, stall, undecided; see the module docs of
//! [`super`]).

use serde::{Deserialize, Serialize};

use super::ClassifyConfig;
use crate::ensemble::{BlockView, Observer};

/// Outcome classes (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Reached `‖x‖ ≥ R`.
    Escape,
    /// Held near the saddle, not converging.
    Stall,
    /// `‖x_T‖ < c`.
    Converge,
    /// None of the above.
    Undecided,
}

impl Outcome {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Escape => "escape",
            Outcome::Stall => "stall",
            Outcome::Converge => "converge",
            Outcome::Undecided => "undecided",
        }
    }
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(super) struct PathRecord {
    pub(super) escape_time: Option<f64>,
    pub(super) diverged: bool,
    pub(super) final_norm: f64,
    pub(super) tail_sum: f64,
    pub(super) tail_n: usize,
    pub(super) tail_min: f64,
    pub(super) tail_max: f64,
    pub(super) grad0: f64,
}

pub(super) struct PathObserver {
    pub(super) n_systems: usize,
    pub(super) steps: usize,
    pub(super) tail_from: usize,
    pub(super) escape_radius: f64,
    pub(super) save_norms: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct PathAcc {
    pub(super) rec: Vec<Vec<PathRecord>>,
    pub(super) norms: Vec<Vec<Vec<f64>>>,
}

impl Observer for PathObserver {
    type Acc = PathAcc;
    fn new_acc(&self) -> PathAcc {
        PathAcc {
            rec: vec![Vec::new(); self.n_systems],
            norms: vec![Vec::new(); self.n_systems],
        }
    }
    fn on_save(&self, acc: &mut PathAcc, save: usize, _t: f64, view: &BlockView) {
        let p = view.states[0].ncols();
        if save == 0 {
            let f = view.landscape;
            let d = f.dim();
            let mut g = vec![0.0; d];
            for s in 0..self.n_systems {
                let xs = view.states[s].as_slice();
                acc.rec[s] = (0..p)
                    .map(|j| {
                        let x = &xs[j * d..(j + 1) * d];
                        f.grad_into(x, &mut g);
                        let n = x.iter().map(|v| v * v).sum::<f64>().sqrt();
                        PathRecord {
                            escape_time: (n >= self.escape_radius).then_some(0.0),
                            diverged: false,
                            final_norm: n,
                            tail_sum: 0.0,
                            tail_n: 0,
                            tail_min: f64::INFINITY,
                            tail_max: 0.0,
                            grad0: g.iter().map(|v| v * v).sum::<f64>().sqrt(),
                        }
                    })
                    .collect();
                if self.save_norms {
                    acc.norms[s] = (0..p).map(|_| Vec::new()).collect();
                }
            }
        }
        if self.save_norms {
            for s in 0..self.n_systems {
                for j in 0..p {
                    let n = if view.alive[s][j] {
                        view.states[s].column(j).norm()
                    } else {
                        f64::INFINITY
                    };
                    acc.norms[s][j].push(n);
                }
            }
        }
    }
    fn on_step(&self, acc: &mut PathAcc, k: usize, t: f64, view: &BlockView) {
        let tail = k >= self.tail_from;
        for s in 0..self.n_systems {
            for (j, r) in acc.rec[s].iter_mut().enumerate() {
                let n = if view.alive[s][j] {
                    view.states[s].column(j).norm()
                } else {
                    if !r.diverged {
                        r.diverged = true;
                    }
                    f64::INFINITY
                };
                if r.escape_time.is_none() && n >= self.escape_radius {
                    r.escape_time = Some(t);
                }
                if tail {
                    r.tail_sum += n;
                    r.tail_n += 1;
                    r.tail_min = r.tail_min.min(n);
                    r.tail_max = r.tail_max.max(n);
                }
                if k == self.steps {
                    r.final_norm = n;
                }
            }
        }
    }
    fn merge(&self, total: &mut PathAcc, block: PathAcc) {
        for (a, b) in total.rec.iter_mut().zip(block.rec) {
            a.extend(b);
        }
        for (a, b) in total.norms.iter_mut().zip(block.norms) {
            a.extend(b);
        }
    }
}

impl PathRecord {
    pub(super) fn tail_mean(&self) -> f64 {
        if self.tail_n == 0 {
            self.final_norm
        } else {
            self.tail_sum / self.tail_n as f64
        }
    }
    pub(super) fn outcome(&self, c: &ClassifyConfig) -> Outcome {
        if self.escape_time.is_some() {
            Outcome::Escape
        } else if self.final_norm < c.converge_radius {
            Outcome::Converge
        } else if self.final_norm < c.attraction_radius
            && self.tail_mean() < c.attraction_radius
            && self.tail_min >= c.converge_radius
        {
            Outcome::Stall
        } else {
            Outcome::Undecided
        }
    }
}
