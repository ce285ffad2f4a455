//! The flatness study's Monte Carlo observers: [`BasinObserver`] tracks, per path and system,
//! the first sojourn in each basin's core (exit times, censoring) and the basin, `tr ∇²f` and `f`
//! at the horizon, plus the paired flat-indicator differences discrete − SDE;
//! [`TimeAverageObserver`] time-averages `f` after the burn-in (stationary part). Accumulators are
//! per block and merged in block order by the engine.

use super::ExitStats;
use crate::ensemble::{BlockView, Observer};
use crate::landscape::{Basin, TwoBasinLandscape};
use crate::stats::{mean_ci, Moments};

/// Per-path first-sojourn bookkeeping of one basin.
#[derive(Debug, Clone, Default)]
pub(super) struct ExitAcc {
    pub(super) times: Moments,
    pub(super) entered: u64,
    pub(super) censored: u64,
    pub(super) censored_time: f64,
}

impl ExitAcc {
    fn merge(&mut self, o: &ExitAcc) {
        self.times.merge(&o.times);
        self.entered += o.entered;
        self.censored += o.censored;
        self.censored_time += o.censored_time;
    }
    pub(super) fn stats(&self, level: f64) -> ExitStats {
        let n = self.times.n;
        let total = self.times.mean * n as f64 + self.censored_time;
        let mle = if n > 0 {
            total / n as f64
        } else {
            f64::INFINITY
        };
        let z = crate::stats::t_quantile(level, f64::INFINITY);
        let rel = if n > 0 {
            z / (n as f64).sqrt()
        } else {
            f64::INFINITY
        };
        ExitStats {
            entered: self.entered,
            exited: n,
            censored: self.censored,
            mean: mean_ci(&self.times, level),
            mle_mean: mle,
            mle_ci: [
                mle / (1.0 + rel),
                if rel < 1.0 {
                    mle / (1.0 - rel)
                } else {
                    f64::INFINITY
                },
            ],
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct SysAcc {
    pub(super) flat: Moments,
    pub(super) trace_h: Moments,
    pub(super) loss: Moments,
    pub(super) exits: [ExitAcc; 2],
}

/// Per-path state of one system: `[entered flat at, entered sharp at]` (NaN: not yet),
/// the current core (0 flat, 1 sharp, 2 none yet), `[exit of flat recorded, of sharp]`.
#[derive(Debug, Clone)]
pub(super) struct PathState {
    pub(super) entered: [f64; 2],
    pub(super) done: [bool; 2],
}

pub(super) struct BasinAcc {
    pub(super) sys: Vec<SysAcc>,
    pub(super) flat_diff: Vec<Moments>,
    pub(super) paths: Vec<Vec<PathState>>,
}

pub(super) struct BasinObserver<'a> {
    pub(super) landscape: &'a dyn TwoBasinLandscape,
    pub(super) n_systems: usize,
    pub(super) pairs: Vec<(usize, usize)>,
    pub(super) core: f64,
    pub(super) steps: usize,
    pub(super) horizon: f64,
}

impl BasinObserver<'_> {
    fn track(&self, acc: &mut BasinAcc, t: f64, view: &BlockView) {
        let d = self.landscape.dim();
        let p = view.states[0].ncols();
        if acc.paths.is_empty() {
            acc.paths = vec![
                vec![
                    PathState {
                        entered: [f64::NAN; 2],
                        done: [false; 2],
                    };
                    p
                ];
                self.n_systems
            ];
        }
        for s in 0..self.n_systems {
            let xs = view.states[s].as_slice();
            for j in 0..p {
                if !view.alive[s][j] {
                    continue;
                }
                let x = &xs[j * d..(j + 1) * d];
                if self.landscape.loss(x) > self.core {
                    continue;
                }
                let core = match self.landscape.basin(x) {
                    Basin::Flat => 0,
                    Basin::Sharp => 1,
                };
                let st = &mut acc.paths[s][j];
                let other = 1 - core;
                // Reaching core `core` ends a first sojourn in `other`.
                if st.entered[other].is_finite() && !st.done[other] {
                    st.done[other] = true;
                    acc.sys[s].exits[other].times.push(t - st.entered[other]);
                }
                if st.entered[core].is_nan() {
                    st.entered[core] = t;
                    acc.sys[s].exits[core].entered += 1;
                }
            }
        }
    }
}

impl Observer for BasinObserver<'_> {
    type Acc = BasinAcc;
    fn new_acc(&self) -> BasinAcc {
        BasinAcc {
            sys: vec![SysAcc::default(); self.n_systems],
            flat_diff: vec![Moments::default(); self.pairs.len()],
            paths: Vec::new(),
        }
    }
    fn on_step(&self, acc: &mut BasinAcc, _k: usize, t: f64, view: &BlockView) {
        self.track(acc, t, view);
    }
    #[allow(clippy::needless_range_loop)] // indices address several parallel arrays
    fn on_save(&self, acc: &mut BasinAcc, save: usize, t: f64, view: &BlockView) {
        if save == 0 {
            self.track(acc, t, view);
            return;
        }
        debug_assert_eq!(save, 1, "one save at the horizon ({} steps)", self.steps);
        let d = self.landscape.dim();
        let p = view.states[0].ncols();
        let mut flat = vec![vec![f64::NAN; p]; self.n_systems];
        for s in 0..self.n_systems {
            let xs = view.states[s].as_slice();
            for j in 0..p {
                let st = &acc.paths[s][j];
                for b in 0..2 {
                    if st.entered[b].is_finite() && !st.done[b] {
                        acc.sys[s].exits[b].censored += 1;
                        acc.sys[s].exits[b].censored_time += self.horizon - st.entered[b];
                    }
                }
                if !view.alive[s][j] {
                    continue;
                }
                let x = &xs[j * d..(j + 1) * d];
                let v = if self.landscape.basin(x) == Basin::Flat {
                    1.0
                } else {
                    0.0
                };
                flat[s][j] = v;
                let sa = &mut acc.sys[s];
                sa.flat.push(v);
                sa.trace_h.push(self.landscape.hessian_trace(x));
                sa.loss.push(self.landscape.loss(x));
            }
        }
        for (k, &(a, b)) in self.pairs.iter().enumerate() {
            for j in 0..p {
                if view.alive[a][j] && view.alive[b][j] {
                    acc.flat_diff[k].push(flat[a][j] - flat[b][j]);
                }
            }
        }
    }
    fn merge(&self, total: &mut BasinAcc, block: BasinAcc) {
        for (a, b) in total.sys.iter_mut().zip(&block.sys) {
            a.flat.merge(&b.flat);
            a.trace_h.merge(&b.trace_h);
            a.loss.merge(&b.loss);
            for k in 0..2 {
                a.exits[k].merge(&b.exits[k]);
            }
        }
        for (a, b) in total.flat_diff.iter_mut().zip(&block.flat_diff) {
            a.merge(b);
        }
    }
}

/// Per path, the time average of `f` over saves `burn < k ≤ steps`; one value per path.
pub(super) struct TimeAverageObserver {
    pub(super) n_systems: usize,
    pub(super) burn: usize,
    pub(super) steps: usize,
}

pub(super) struct AvgAcc {
    pub(super) avg: Vec<Moments>,
    pub(super) sums: Vec<Vec<f64>>,
    pub(super) alive_all: Vec<Vec<bool>>,
    pub(super) buf: Vec<f64>,
}

impl Observer for TimeAverageObserver {
    type Acc = AvgAcc;
    fn new_acc(&self) -> AvgAcc {
        AvgAcc {
            avg: vec![Moments::default(); self.n_systems],
            sums: Vec::new(),
            alive_all: Vec::new(),
            buf: Vec::new(),
        }
    }
    fn on_save(&self, acc: &mut AvgAcc, save: usize, _t: f64, view: &BlockView) {
        let p = view.states[0].ncols();
        if acc.sums.is_empty() {
            acc.sums = vec![vec![0.0; p]; self.n_systems];
            acc.alive_all = vec![vec![true; p]; self.n_systems];
            acc.buf = vec![0.0; p];
        }
        if save <= self.burn {
            return;
        }
        for s in 0..self.n_systems {
            view.landscape.loss_batch(&view.states[s], &mut acc.buf);
            for j in 0..p {
                acc.sums[s][j] += acc.buf[j];
                acc.alive_all[s][j] &= view.alive[s][j];
            }
        }
        if save == self.steps {
            let n = (self.steps - self.burn) as f64;
            for s in 0..self.n_systems {
                for j in 0..p {
                    if acc.alive_all[s][j] {
                        acc.avg[s].push(acc.sums[s][j] / n);
                    }
                }
            }
        }
    }
    fn merge(&self, total: &mut AvgAcc, block: AvgAcc) {
        for (a, b) in total.avg.iter_mut().zip(&block.avg) {
            a.merge(b);
        }
    }
}
