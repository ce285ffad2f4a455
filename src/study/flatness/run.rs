//! The flatness study's two simulations: a two-basin ensemble (every algorithm and its SDE,
//! coupled to one Brownian path per Monte Carlo path) at given radii, and the stationary-loss
//! ensemble on the quadratic (exact OU transitions for the SDEs).

use super::observer::{BasinObserver, TimeAverageObserver};
use super::{FlatnessStudy, StationaryResult, SystemResult};
use crate::ensemble::{Dynamics, Ensemble, Start, System};
use crate::error::Result;
use crate::landscape::{Landscape, Quadratic};
use crate::linalg::Vector;
use crate::optim::{AlgorithmKind, Discrete};
use crate::oracle::{AdditiveNoise, Oracle};
use crate::sde::linear::LinearSde;
use crate::sde::{ModelKind, SdeForm, SdeModel};
use crate::stats::{mean_ci, Moments};

impl FlatnessStudy {
    /// One two-basin ensemble with radii `rho` (run index `level`): per-system results, the
    /// paired flat-indicator differences per algorithm, and warnings. Systems: the discrete
    /// algorithms, their first-order SDEs, then (with `second_order`) `sgd_sde2`/`usam_sde2`;
    /// the paired differences are discrete − SDE per algorithm, then for each second-order
    /// model discrete − SDE2 and SDE − SDE2.
    pub(super) fn two_basin_run(
        &self,
        rho: &dyn Fn(AlgorithmKind) -> f64,
        level_index: u64,
        tag: &str,
        second_order: bool,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<(Vec<SystemResult>, Vec<Moments>, Vec<String>)> {
        let c = &self.config;
        let level = c.verdict.level;
        let tb = self.landscape.as_ref();
        let f = tb.as_landscape();
        let mut systems = Vec::new();
        for &a in &c.algorithms {
            systems.push(System {
                label: a.name().into(),
                dynamics: Dynamics::Discrete(Discrete {
                    kind: a,
                    eta: c.eta,
                    rho: rho(a),
                }),
            });
        }
        for &a in &c.algorithms {
            let model = SdeModel::new(
                ModelKind::own(a),
                f,
                &self.oracle,
                c.eta,
                rho(a),
                SdeForm::Auto,
                64,
            )?;
            systems.push(System {
                label: format!("{}_sde", a.name()),
                dynamics: Dynamics::Euler {
                    model,
                    substeps: c.substeps,
                },
            });
        }
        let na = c.algorithms.len();
        let mut pairs: Vec<(usize, usize)> = (0..na).map(|i| (i, na + i)).collect();
        // (algorithm, kind) of every system.
        let mut meta: Vec<(AlgorithmKind, &str)> = c
            .algorithms
            .iter()
            .map(|&a| (a, "discrete"))
            .chain(c.algorithms.iter().map(|&a| (a, "sde")))
            .collect();
        if second_order {
            for (i, &a) in c.algorithms.iter().enumerate() {
                if !matches!(a, AlgorithmKind::Sgd | AlgorithmKind::Usam) {
                    continue;
                }
                let model = SdeModel::new(
                    ModelKind::second_order(a),
                    f,
                    &self.oracle,
                    c.eta,
                    rho(a),
                    SdeForm::Auto,
                    64,
                )?;
                let k = systems.len();
                systems.push(System {
                    label: format!("{}_sde2", a.name()),
                    dynamics: Dynamics::Euler {
                        model,
                        substeps: c.substeps,
                    },
                });
                meta.push((a, "sde2"));
                pairs.push((i, k));
                pairs.push((na + i, k));
            }
        }
        let observer = BasinObserver {
            landscape: tb,
            n_systems: systems.len(),
            pairs: pairs.clone(),
            core: c.core * tb.barrier(),
            steps: self.steps,
            horizon: c.horizon,
        };
        let ens = Ensemble {
            landscape: f,
            oracle: &self.oracle,
            eta: c.eta,
            steps: self.steps,
            save_every: self.steps,
            systems: &systems,
            paths: c.paths,
            block_size: c.block_size,
            seed: c.seed,
            level: level_index,
            start: &self.start,
            divergence_bound: c.divergence_bound,
        };
        let out = ens.run(&observer, progress);
        let mut warnings = Vec::new();
        let acc = out.acc;
        let mut results = Vec::new();
        for (si, sys) in systems.iter().enumerate() {
            let (alg, kind) = meta[si];
            if out.diverged[si] > 0 {
                warnings.push(format!(
                    "{tag}: {} of {} paths of {} diverged (‖x‖ > {}; first at step {}); they are excluded",
                    out.diverged[si],
                    c.paths,
                    sys.label,
                    c.divergence_bound,
                    out.first_divergence_step[si].unwrap_or(0)
                ));
            }
            let s = &acc.sys[si];
            results.push(SystemResult {
                label: sys.label.clone(),
                algorithm: alg,
                kind: kind.into(),
                rho: rho(alg),
                flat_fraction: mean_ci(&s.flat, level),
                exit_flat: s.exits[0].stats(level),
                exit_sharp: s.exits[1].stats(level),
                final_trace_hessian: mean_ci(&s.trace_h, level),
                final_loss: mean_ci(&s.loss, level),
                diverged: out.diverged[si],
            });
        }
        Ok((results, acc.flat_diff, warnings))
    }

    pub(super) fn stationary(
        &self,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<Vec<StationaryResult>> {
        let s = &self.config.stationary;
        let q = Quadratic::from_spectrum(&s.eigenvalues, None)?;
        let d = q.dim();
        let oracle = Oracle::Additive(AdditiveNoise::isotropic(d, s.sigma)?);
        let steps = (s.horizon / s.eta).round() as usize;
        let burn = (s.burn_in / s.eta).round() as usize;
        let tr_h: f64 = s.eigenvalues.iter().sum();
        let base = s.eta * s.sigma * s.sigma / 4.0;
        let mut systems = Vec::new();
        let mut meta = Vec::new();
        for (alg, rho) in [(AlgorithmKind::Usam, s.rho), (AlgorithmKind::Sgd, 0.0)] {
            let lin = LinearSde::of_model(ModelKind::own(alg), &q, &oracle, s.eta, rho)
                .expect("quadratic with additive noise is linear");
            systems.push(System {
                label: format!("{}_sde", alg.name()),
                dynamics: Dynamics::ExactOu(lin.transition(s.eta)),
            });
            let formula = base * (d as f64 + rho * tr_h);
            meta.push((formula, formula)); // exact for the SDE (module docs)
        }
        for (alg, rho) in [(AlgorithmKind::Usam, s.rho), (AlgorithmKind::Sgd, 0.0)] {
            systems.push(System {
                label: alg.name().into(),
                dynamics: Dynamics::Discrete(Discrete {
                    kind: alg,
                    eta: s.eta,
                    rho,
                }),
            });
            let exact: f64 = s
                .eigenvalues
                .iter()
                .map(|&l| base * (1.0 + rho * l) / (1.0 - s.eta * l * (1.0 + rho * l) / 2.0))
                .sum();
            meta.push((base * (d as f64 + rho * tr_h), exact));
        }
        let obs = TimeAverageObserver {
            n_systems: systems.len(),
            burn,
            steps,
        };
        let start = Start::Point(Vector::zeros(d));
        let ens = Ensemble {
            landscape: &q,
            oracle: &oracle,
            eta: s.eta,
            steps,
            save_every: 1,
            systems: &systems,
            paths: s.paths,
            block_size: self.config.block_size,
            seed: self.config.seed,
            level: 1,
            start: &start,
            divergence_bound: 1e6,
        };
        let out = ens.run(&obs, progress);
        Ok(systems
            .iter()
            .enumerate()
            .map(|(i, sys)| StationaryResult {
                system: sys.label.clone(),
                measured: mean_ci(&out.acc.avg[i], self.config.verdict.level),
                formula: meta[i].0,
                exact: meta[i].1,
            })
            .collect())
    }
}
