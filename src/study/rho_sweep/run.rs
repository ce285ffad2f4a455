//! The ρ sweep's ensemble: one Monte Carlo run carrying every system at every ρ on a shared
//! Brownian path, an observer that accumulates the means the relative error needs, and the
//! reduction to relative errors with confidence intervals.
//!
//! Systems (all at the same `η`, coupled to one Brownian path per Monte Carlo path):
//! SGD and the SGD SDE once (they do not depend on `ρ`), and for every `ρ` the discrete USAM,
//! DNSAM and SAM, their own SDEs and their drift-only ablations. Every SDE runs twice, with
//! `r` and `r/2` Euler–Maruyama sub-steps (the resolution diagnostic).
//!
//! For a pair (algorithm, model) the observer accumulates at each save `k` the per-path
//! difference `g(x_k) − g(X^{(r)}_{kη})`, and for the denominator `g(x_k)`; for each model
//! `g(X^{(r)}) − g(X^{(r/2)})`. With `D_k`, `A_k`, `R_k` their means,
//!
//! `e = max_k |D_k| / mean_k |A_k|` (Paper 1's relative error, `k = 1..n` on the save grid),
//!
//! and its interval combines three simultaneous (Bonferroni over saves) Student-t intervals,
//! each at level `1 − (1 − level)/3`: the numerator's `[lo, hi]` from
//! [`crate::stats::max_abs_with_ci`], widened on both sides by the upper end of the resolution
//! diagnostic `max_k |R_k|` (an estimate of the Euler bias of the finer run, which a first-order
//! weak scheme halves from `r/2` to `r`), and the denominator's
//! `[mean_k (|A_k| − h_k)₊, mean_k (|A_k| + h_k)]`:
//! `e ∈ [lo_num / hi_den, hi_num / lo_den]`.

use std::time::Instant;

use crate::ensemble::{BlockView, Dynamics, Ensemble, Observer, Start, System};
use crate::landscape::Landscape;
use crate::linalg::Matrix;
use crate::optim::{AlgorithmKind, Discrete};
use crate::oracle::Oracle;
use crate::sde::{ModelKind, SdeForm, SdeModel};
use crate::stats::{max_abs_with_ci, mean_ci, Moments};
use crate::study::test_function::TestFunction;
use crate::Result;

/// One comparison of the sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairSpec {
    /// The discrete algorithm.
    pub algorithm: AlgorithmKind,
    /// The SDE model.
    pub model: ModelKind,
    /// Index into the radius grid; `None` for SGD vs the SGD SDE (independent of `ρ`).
    pub rho_index: Option<usize>,
}

/// The pairs of Paper 1's protocol, in table order: SGD vs the SGD SDE; for every `ρ`, each of
/// USAM, DNSAM, SAM vs the SGD SDE, its own SDE and its drift-only ablation; SAM also vs the
/// DNSAM and USAM SDEs.
pub fn protocol_pairs(n_rho: usize) -> Vec<PairSpec> {
    let mut v = vec![PairSpec {
        algorithm: AlgorithmKind::Sgd,
        model: ModelKind::own(AlgorithmKind::Sgd),
        rho_index: None,
    }];
    for ri in 0..n_rho {
        for alg in [
            AlgorithmKind::Usam,
            AlgorithmKind::Dnsam,
            AlgorithmKind::Sam,
        ] {
            let mut models = vec![
                ModelKind::own(AlgorithmKind::Sgd),
                ModelKind::own(alg),
                ModelKind::drift_only(alg),
            ];
            if alg == AlgorithmKind::Sam {
                models.push(ModelKind::own(AlgorithmKind::Dnsam));
                models.push(ModelKind::own(AlgorithmKind::Usam));
            }
            for model in models {
                v.push(PairSpec {
                    algorithm: alg,
                    model,
                    rho_index: Some(ri),
                });
            }
        }
    }
    v
}

/// Means accumulated by the observer, merged over blocks.
#[derive(Debug, Clone)]
pub struct SweepMeans {
    /// `[pair][save]`: `g(alg) − g(model@r)`.
    pub diff: Vec<Vec<Moments>>,
    /// `[pair][save]`: `g(alg)` over the same paths.
    pub alg: Vec<Vec<Moments>>,
    /// `[pair][save]`: `g(model@r) − g(model@r/2)`.
    pub res: Vec<Vec<Moments>>,
    /// `[pair]`: paths excluded because one of the pair's systems diverged.
    pub excluded: Vec<u64>,
}

/// The systems of one sweep and, per pair, the indices (algorithm, model@r, model@r/2).
pub struct SweepSystems {
    /// Every system, in run order.
    pub systems: Vec<System>,
    /// Per pair: (algorithm, fine model, coarse model) system indices.
    pub index: Vec<(usize, usize, usize)>,
}

/// Builds the systems for `pairs` at learning rate `eta` over the radius grid `rhos`.
pub fn build_systems(
    f: &dyn Landscape,
    oracle: &Oracle,
    eta: f64,
    rhos: &[f64],
    pairs: &[PairSpec],
    substeps: usize,
) -> Result<SweepSystems> {
    let mut systems: Vec<System> = Vec::new();
    let mut find_or_add = |label: String, make: &mut dyn FnMut() -> Result<Dynamics>| {
        if let Some(i) = systems.iter().position(|s| s.label == label) {
            return Ok::<usize, crate::Error>(i);
        }
        systems.push(System {
            label,
            dynamics: make()?,
        });
        Ok(systems.len() - 1)
    };
    let mut index = Vec::with_capacity(pairs.len());
    for p in pairs {
        // SGD and the SGD SDE do not depend on ρ: one copy, labelled without ρ.
        let rho_alg = p.rho_index.map_or(0.0, |i| rhos[i]);
        let alg_label = if p.algorithm == AlgorithmKind::Sgd {
            "sgd".to_string()
        } else {
            format!("{}@rho={}", p.algorithm, rho_alg)
        };
        let a = find_or_add(alg_label, &mut || {
            Ok(Dynamics::Discrete(Discrete {
                kind: p.algorithm,
                eta,
                rho: rho_alg,
            }))
        })?;
        let model_rho = if p.model.alg == AlgorithmKind::Sgd {
            0.0
        } else {
            rho_alg
        };
        let mut model_at = |r: usize| -> Result<usize> {
            let label = if p.model.alg == AlgorithmKind::Sgd {
                format!("{}@{r}", p.model.name())
            } else {
                format!("{}@rho={model_rho}@{r}", p.model.name())
            };
            find_or_add(label, &mut || {
                Ok(Dynamics::Euler {
                    model: SdeModel::new(
                        p.model,
                        f,
                        oracle,
                        eta,
                        model_rho,
                        SdeForm::ClosedForm,
                        2,
                    )?,
                    substeps: r,
                })
            })
        };
        let fine = model_at(substeps)?;
        let coarse = model_at(substeps / 2)?;
        index.push((a, fine, coarse));
    }
    Ok(SweepSystems { systems, index })
}

/// Accumulates [`SweepMeans`] per block.
pub struct SweepObserver {
    /// Test function.
    pub test: TestFunction,
    /// Per pair: (algorithm, fine model, coarse model) system indices.
    pub index: Vec<(usize, usize, usize)>,
    /// Number of systems.
    pub n_systems: usize,
    /// Saves after `t = 0`.
    pub n_saves: usize,
}

/// Per-block accumulator: the means and reusable scratch.
pub struct SweepAcc {
    means: SweepMeans,
    g: Vec<f64>,
    scratch: Matrix,
}

impl Observer for SweepObserver {
    type Acc = SweepAcc;
    fn new_acc(&self) -> SweepAcc {
        let np = self.index.len();
        let grid = || vec![vec![Moments::default(); self.n_saves + 1]; np];
        SweepAcc {
            means: SweepMeans {
                diff: grid(),
                alg: grid(),
                res: grid(),
                excluded: vec![0; np],
            },
            g: Vec::new(),
            scratch: Matrix::zeros(0, 0),
        }
    }

    fn on_save(&self, acc: &mut SweepAcc, save: usize, _t: f64, view: &BlockView) {
        let f = view.landscape;
        let p = view.states[0].ncols();
        if acc.scratch.shape() != (f.dim(), p) {
            acc.scratch = Matrix::zeros(f.dim(), p);
        }
        acc.g.resize(self.n_systems * p, 0.0);
        for s in 0..self.n_systems {
            self.test.eval_batch(
                f,
                &view.states[s],
                &mut acc.g[s * p..(s + 1) * p],
                &mut acc.scratch,
            );
        }
        let g = &acc.g;
        for (k, &(a, m, c)) in self.index.iter().enumerate() {
            for j in 0..p {
                let alive = view.alive[a][j] && view.alive[m][j] && view.alive[c][j];
                if save == self.n_saves && !alive {
                    acc.means.excluded[k] += 1;
                }
                if !alive {
                    continue;
                }
                let (ga, gm, gc) = (g[a * p + j], g[m * p + j], g[c * p + j]);
                acc.means.diff[k][save].push(ga - gm);
                acc.means.alg[k][save].push(ga);
                acc.means.res[k][save].push(gm - gc);
            }
        }
    }

    fn merge(&self, total: &mut SweepAcc, block: SweepAcc) {
        let (t, b) = (&mut total.means, &block.means);
        for (tt, bb) in [
            (&mut t.diff, &b.diff),
            (&mut t.alg, &b.alg),
            (&mut t.res, &b.res),
        ] {
            for (x, y) in tt.iter_mut().zip(bb) {
                for (u, v) in x.iter_mut().zip(y) {
                    u.merge(v);
                }
            }
        }
        for (x, y) in t.excluded.iter_mut().zip(&b.excluded) {
            *x += y;
        }
    }
}

/// Paper 1's relative error of one pair, with its interval and diagnostics.
#[derive(Debug, Clone, Copy)]
pub struct RelativeError {
    /// `max_k |D_k| / mean_k |A_k|`.
    pub value: f64,
    /// Its interval (Monte Carlo and resolution, see module docs).
    pub ci: [f64; 2],
    /// Numerator `max_k |D_k|`.
    pub max_abs_diff: f64,
    /// Denominator `mean_k |A_k|`.
    pub mean_abs_alg: f64,
    /// Resolution diagnostic relative to the denominator: `max_k |R_k| / mean_k |A_k|`.
    pub resolution: f64,
    /// Its upper confidence bound (relative).
    pub resolution_hi: f64,
    /// Monte Carlo noise floor of the numerator, relative to the denominator.
    pub mc_floor: f64,
    /// Save index (1-based) where the numerator's maximum is attained.
    pub argmax_save: usize,
}

/// The relative error of pair `k` from the merged means (saves `1..=n`).
pub fn relative_error(means: &SweepMeans, k: usize, level: f64) -> RelativeError {
    let part = 1.0 - (1.0 - level) / 3.0;
    let diff = &means.diff[k][1..];
    let num = max_abs_with_ci(diff, part);
    let res = max_abs_with_ci(&means.res[k][1..], part);
    let alg = &means.alg[k][1..];
    let n = alg.len() as f64;
    let per_save = 1.0 - (1.0 - part) / n;
    let (mut den, mut den_lo, mut den_hi) = (0.0, 0.0, 0.0);
    for m in alg {
        let ci = mean_ci(m, per_save);
        let a = m.mean.abs();
        den += a / n;
        den_lo += (a - ci.half_width).max(0.0) / n;
        den_hi += (a + ci.half_width) / n;
    }
    let lo = (num.ci[0] - res.ci[1]).max(0.0);
    let hi = num.ci[1] + res.ci[1];
    RelativeError {
        value: num.value / den,
        ci: [
            lo / den_hi,
            if den_lo > 0.0 {
                hi / den_lo
            } else {
                f64::INFINITY
            },
        ],
        max_abs_diff: num.value,
        mean_abs_alg: den,
        resolution: res.value / den,
        resolution_hi: res.ci[1] / den,
        mc_floor: num.floor / den,
        argmax_save: num.argmax + 1,
    }
}

/// Everything one sweep run returns.
pub struct SweepRun {
    /// Merged means.
    pub means: SweepMeans,
    /// Per system: diverged paths and the label.
    pub diverged: Vec<(String, u64, Option<usize>)>,
    /// Wall time of the ensemble, seconds.
    pub seconds: f64,
}

/// Runs the ensemble of a sweep.
#[allow(clippy::too_many_arguments)]
pub fn run_sweep(
    f: &dyn Landscape,
    oracle: &Oracle,
    start: &Start,
    sweep: &SweepSystems,
    eta: f64,
    steps: usize,
    save_every: usize,
    paths: usize,
    block_size: usize,
    seed: u64,
    divergence_bound: f64,
    test: TestFunction,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> SweepRun {
    let t0 = Instant::now();
    let observer = SweepObserver {
        test,
        index: sweep.index.clone(),
        n_systems: sweep.systems.len(),
        n_saves: steps / save_every,
    };
    let ens = Ensemble {
        landscape: f,
        oracle,
        eta,
        steps,
        save_every,
        systems: &sweep.systems,
        paths,
        block_size,
        seed,
        level: 0,
        start,
        divergence_bound,
    };
    let out = ens.run(&observer, progress);
    let diverged = sweep
        .systems
        .iter()
        .zip(out.diverged.iter().zip(&out.first_divergence_step))
        .map(|(s, (&n, &first))| (s.label.clone(), n, first))
        .collect();
    SweepRun {
        means: out.acc.means,
        diverged,
        seconds: t0.elapsed().as_secs_f64(),
    }
}

/// Wall time per path and Euler sub-step of one SDE model alone on a block of `p` paths
/// (`steps` steps of `substeps` sub-steps each, one thread; the fastest of three runs after a
/// warm-up). Informational: it is how the
/// report states the cost of the Hessian–vector-product form of a model.
#[allow(clippy::too_many_arguments)]
pub fn time_model(
    f: &dyn Landscape,
    oracle: &Oracle,
    start: &Start,
    model: ModelKind,
    eta: f64,
    rho: f64,
    p: usize,
    steps: usize,
    substeps: usize,
) -> Result<f64> {
    let systems = [System {
        label: model.name(),
        dynamics: Dynamics::Euler {
            model: SdeModel::new(model, f, oracle, eta, rho, SdeForm::ClosedForm, 2)?,
            substeps,
        },
    }];
    struct Nothing;
    impl Observer for Nothing {
        type Acc = ();
        fn new_acc(&self) {}
        fn on_save(&self, _: &mut (), _: usize, _: f64, _: &BlockView) {}
        fn merge(&self, _: &mut (), _: ()) {}
    }
    let ens = Ensemble {
        landscape: f,
        oracle,
        eta,
        steps,
        save_every: steps,
        systems: &systems,
        paths: p,
        block_size: p,
        seed: 0,
        level: 0,
        start,
        divergence_bound: f64::INFINITY,
    };
    // One warm-up run (scratch allocation, caches), then the fastest of three: on a shared
    // machine the minimum is the least disturbed measurement.
    ens.run(&Nothing, None);
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t0 = Instant::now();
        ens.run(&Nothing, None);
        best = best.min(t0.elapsed().as_secs_f64());
    }
    Ok(best / (p * steps * substeps) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(values: &[f64]) -> Vec<Moments> {
        // Two identical samples per save: mean = value, variance 0 (a zero-width interval).
        values
            .iter()
            .map(|&v| Moments::from_slice(&[v, v]))
            .collect()
    }

    /// The relative error is max_k |D_k| / mean_k |A_k| over saves 1..=n (save 0 is t = 0), and
    /// with zero variance and no resolution error its interval is the point itself.
    #[test]
    fn relative_error_formula() {
        let means = SweepMeans {
            diff: vec![exact(&[0.0, 0.1, -0.3, 0.2])],
            alg: vec![exact(&[5.0, 2.0, -1.0, 3.0])],
            res: vec![exact(&[0.0, 0.0, 0.0, 0.0])],
            excluded: vec![0],
        };
        let e = relative_error(&means, 0, 0.95);
        assert!((e.value - 0.3 / 2.0).abs() < 1e-15);
        assert_eq!(e.ci, [e.value, e.value]);
        assert_eq!(e.argmax_save, 2);
        // A resolution error widens the interval on both sides by its upper end.
        let means = SweepMeans {
            res: vec![exact(&[0.0, 0.01, 0.0, -0.02])],
            ..means
        };
        let e = relative_error(&means, 0, 0.95);
        assert!((e.ci[0] - 0.28 / 2.0).abs() < 1e-15 && (e.ci[1] - 0.32 / 2.0).abs() < 1e-15);
        assert!((e.resolution - 0.01).abs() < 1e-15);
    }

    #[test]
    fn protocol_has_the_papers_pairs() {
        let p = protocol_pairs(4);
        assert_eq!(p.len(), 1 + 4 * 11);
        let sam: Vec<String> = p
            .iter()
            .filter(|q| q.algorithm == AlgorithmKind::Sam && q.rho_index == Some(0))
            .map(|q| q.model.name())
            .collect();
        assert_eq!(
            sam,
            [
                "sgd_sde",
                "sam_sde",
                "sam_drift_only",
                "dnsam_sde",
                "usam_sde"
            ]
        );
    }
}
