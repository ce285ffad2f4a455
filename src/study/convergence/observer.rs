//! The Monte Carlo observer of the convergence study: at every save (every step by default) it
//! accumulates the moments of `g(alg) − g(model)` per pair and test function, and of
//! `g(model@r) − g(model@r/2)` for the resolution diagnostic; blocks merge in block order.

use super::TestFunction;
use crate::ensemble::{BlockView, Observer};
use crate::linalg::Matrix;
use crate::stats::Moments;

/// A value formed from the systems: `Σ c · g(system)` (one system with `c = 1`, or a Richardson
/// extrapolation `2 g(model@r) − g(model@r/2)`).
pub(super) type Combo = Vec<(usize, f64)>;

/// One system with coefficient 1.
pub(super) fn single(s: usize) -> Combo {
    vec![(s, 1.0)]
}

/// Accumulates, per save time (every step by default), the moments of `g(alg) − g(model)` for
/// every pair and test function, and of `g(model@r) − g(model@r/2)` for the resolution
/// diagnostic (each side a [`Combo`]).
pub(super) struct WeakErrorObserver {
    pub(super) tests: Vec<TestFunction>,
    pub(super) pairs: Vec<(Combo, Combo)>,
    /// Systems each pair's point depends on (algorithm, model, coarse model): a path dead in
    /// any of them is excluded, and counted once.
    pub(super) depends: Vec<Vec<usize>>,
    pub(super) resolution: Vec<(Combo, Combo)>,
    pub(super) n_systems: usize,
    pub(super) n_saves: usize,
}

pub(super) struct WeakAcc {
    pub(super) n_tests: usize,
    pub(super) n_pairs: usize,
    pub(super) n_res: usize,
    pub(super) pair: Vec<Moments>,
    pub(super) res: Vec<Moments>,
    pub(super) excluded: Vec<u64>,
    /// Workspaces of `on_save` (sized at the first save; not merged): gradients `d × P` and
    /// `g` values `[system][test][path]`, so the per-step observer does not allocate.
    pub(super) scratch: Matrix,
    pub(super) g: Vec<f64>,
}

impl WeakAcc {
    pub(super) fn pair(&self, save: usize, p: usize, t: usize) -> &Moments {
        &self.pair[(save * self.n_pairs + p) * self.n_tests + t]
    }
    pub(super) fn res(&self, save: usize, r: usize, t: usize) -> &Moments {
        &self.res[(save * self.n_res + r) * self.n_tests + t]
    }
}

impl Observer for WeakErrorObserver {
    type Acc = WeakAcc;
    fn new_acc(&self) -> WeakAcc {
        let nt = self.tests.len();
        WeakAcc {
            n_tests: nt,
            n_pairs: self.pairs.len(),
            n_res: self.resolution.len(),
            pair: vec![Moments::default(); (self.n_saves + 1) * self.pairs.len() * nt],
            res: vec![Moments::default(); (self.n_saves + 1) * self.resolution.len() * nt],
            excluded: vec![0; self.pairs.len()],
            scratch: Matrix::zeros(0, 0),
            g: Vec::new(),
        }
    }
    fn on_save(&self, acc: &mut WeakAcc, save: usize, _t: f64, view: &BlockView) {
        let f = view.landscape;
        let p = view.states[0].ncols();
        let nt = self.tests.len();
        if acc.scratch.shape() != (f.dim(), p) {
            acc.scratch = Matrix::zeros(f.dim(), p);
        }
        // g values: [system][test][path]
        acc.g.resize(self.n_systems * nt * p, 0.0);
        let (g, scratch) = (&mut acc.g, &mut acc.scratch);
        for s in 0..self.n_systems {
            for (t, tf) in self.tests.iter().enumerate() {
                let o = (s * nt + t) * p;
                tf.eval_batch(f, &view.states[s], &mut g[o..o + p], scratch);
            }
        }
        let g = &acc.g;
        let push = |list: &[(Combo, Combo)], dest: &mut Vec<Moments>, n: usize| {
            for (k, (a, b)) in list.iter().enumerate() {
                for t in 0..nt {
                    let m = &mut dest[(save * n + k) * nt + t];
                    let val = |c: &Combo, j: usize| -> f64 {
                        c.iter().map(|&(s, w)| w * g[(s * nt + t) * p + j]).sum()
                    };
                    let alive = |c: &Combo, j: usize| c.iter().all(|&(s, _)| view.alive[s][j]);
                    for j in 0..p {
                        if alive(a, j) && alive(b, j) {
                            m.push(val(a, j) - val(b, j));
                        }
                    }
                }
            }
        };
        if save == self.n_saves {
            // Death is permanent, so the final save sees every excluded path.
            for (k, deps) in self.depends.iter().enumerate() {
                acc.excluded[k] += (0..p)
                    .filter(|&j| deps.iter().any(|&s| !view.alive[s][j]))
                    .count() as u64;
            }
        }
        push(&self.pairs, &mut acc.pair, self.pairs.len());
        push(&self.resolution, &mut acc.res, self.resolution.len());
    }
    fn merge(&self, total: &mut WeakAcc, block: WeakAcc) {
        for (a, b) in total.pair.iter_mut().zip(&block.pair) {
            a.merge(b);
        }
        for (a, b) in total.res.iter_mut().zip(&block.res) {
            a.merge(b);
        }
        for (a, b) in total.excluded.iter_mut().zip(&block.excluded) {
            *a += b;
        }
    }
}
