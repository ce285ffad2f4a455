//! Distance-to-saddle curves and escape times: every case runs as the discrete algorithm and as
//! its SDE/ODE (exact OU transitions for the linear models SGD/USAM, Euler–Maruyama with
//! `substeps` sub-steps otherwise); reported are the mean, median and 10–90 % band of `‖x‖`, the
//! fraction attracted at `T` (`‖x_T‖ < ε`) and the escape-time distribution.

use super::stats::escape_report;
use super::{noise, quantile_sorted, wilson, CurveReport};
use crate::ensemble::{Dynamics, Start, System};
use crate::error::Result;
use crate::landscape::Quadratic;
use crate::optim::Discrete;
use crate::sde::linear::LinearSde;
use crate::sde::{ModelKind, SdeForm, SdeModel};

impl super::SaddleStudy {
    pub(super) fn run_curves(
        &self,
        level: &mut u64,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<Vec<CurveReport>> {
        let c = &self.config;
        let cv = &c.curves;
        let f = Quadratic::from_spectrum(&cv.eigenvalues, cv.rotation_seed)?;
        let d = cv.eigenvalues.len();
        let steps = (cv.horizon / c.eta).round() as usize;
        let every = (cv.save_dt / c.eta).round() as usize;
        let mut sigmas: Vec<f64> = cv.cases.iter().map(|k| k.sigma).collect();
        sigmas.sort_by(f64::total_cmp);
        sigmas.dedup();
        let mut out: Vec<Option<CurveReport>> = vec![None; 2 * cv.cases.len()];
        for &sigma in &sigmas {
            let oracle = noise(d, sigma)?;
            let idx: Vec<usize> = (0..cv.cases.len())
                .filter(|&i| cv.cases[i].sigma == sigma)
                .collect();
            let mut systems = Vec::new();
            let mut meta = Vec::new();
            for &i in &idx {
                let case = &cv.cases[i];
                systems.push(System {
                    label: format!("{}#{i}", case.algorithm),
                    dynamics: Dynamics::Discrete(Discrete {
                        kind: case.algorithm,
                        eta: c.eta,
                        rho: case.rho,
                    }),
                });
                meta.push((
                    i,
                    0usize,
                    "discrete".to_string(),
                    "discrete map".to_string(),
                ));
                let kind = ModelKind::own(case.algorithm);
                let (dynamics, integrator) =
                    match LinearSde::of_model(kind, &f, &oracle, c.eta, case.rho) {
                        Some(lin) => (
                            Dynamics::ExactOu(lin.transition(c.eta)),
                            "exact_ou".to_string(),
                        ),
                        None => (
                            Dynamics::Euler {
                                model: SdeModel::new(
                                    kind,
                                    &f,
                                    &oracle,
                                    c.eta,
                                    case.rho,
                                    SdeForm::Auto,
                                    64,
                                )?,
                                substeps: cv.substeps,
                            },
                            format!("euler_maruyama(substeps={})", cv.substeps),
                        ),
                    };
                systems.push(System {
                    label: format!("{}#{i}", kind.name()),
                    dynamics,
                });
                meta.push((i, 1usize, kind.name(), integrator));
            }
            let deterministic = sigma == 0.0 && matches!(self.curves_start, Start::Point(_));
            let paths = if deterministic { 1 } else { cv.paths };
            let acc = self.run_ensemble(
                &f,
                &oracle,
                &systems,
                steps,
                every,
                paths,
                &self.curves_start,
                *level,
                true,
                progress,
            );
            *level += 1;
            for (s, (i, slot, system, integrator)) in meta.into_iter().enumerate() {
                let case = &cv.cases[i];
                let recs = &acc.rec[s];
                let norms = &acc.norms[s];
                let n_saves = norms.first().map_or(0, |v| v.len());
                let times: Vec<f64> = (0..n_saves).map(|j| (j * every) as f64 * c.eta).collect();
                let mut mean = Vec::with_capacity(n_saves);
                let (mut med, mut q10, mut q90) = (Vec::new(), Vec::new(), Vec::new());
                let mut col = Vec::with_capacity(paths);
                for j in 0..n_saves {
                    col.clear();
                    col.extend(norms.iter().map(|v| v[j]));
                    let alive: Vec<f64> = col.iter().copied().filter(|v| v.is_finite()).collect();
                    mean.push(if alive.is_empty() {
                        f64::NAN
                    } else {
                        alive.iter().sum::<f64>() / alive.len() as f64
                    });
                    col.sort_by(f64::total_cmp);
                    med.push(quantile_sorted(&col, 0.5));
                    q10.push(quantile_sorted(&col, 0.1));
                    q90.push(quantile_sorted(&col, 0.9));
                }
                let eps = c.classify.attraction_radius;
                let attracted = recs.iter().filter(|q| q.final_norm < eps).count();
                let n = recs.len();
                let escape = escape_report(recs, c.verdict.level);
                out[2 * i + slot] = Some(CurveReport {
                    label: format!(
                        "{} ρ={} σ={} {}",
                        case.algorithm,
                        case.rho,
                        case.sigma,
                        if slot == 0 { "discrete" } else { "SDE/ODE" }
                    ),
                    algorithm: case.algorithm.name().into(),
                    system,
                    integrator,
                    rho: case.rho,
                    sigma: case.sigma,
                    times,
                    mean,
                    median: med,
                    q10,
                    q90,
                    attracted,
                    fraction_attracted: attracted as f64 / n as f64,
                    fraction_ci: wilson(attracted, n, c.verdict.level),
                    escape,
                });
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.expect("every case run"))
            .collect())
    }
}
