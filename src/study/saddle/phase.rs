//! The phase diagrams: attraction fraction (`‖x_T‖ < ε`) on a grid over `(ρ, |λ|)` (full batch,
//! `H = diag(others, −|λ|)`) and over `(ρ, σ)` (mini-batch SAM with additive noise, optionally
//! also its SDE), with the predictions: USAM attracted iff `ρ|λ| > 1`; full-batch SAM attracted
//! if `‖∇f(x₀)‖ < ρ|λ|` (fraction of starts in that region); mini-batch SAM attracted iff
//! `ρ κ_d |λ| > σ`.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::config::min_negative;
use super::observer::PathRecord;
use super::stats::boundaries;
use super::{crossing, noise, wilson, CellReport, PanelReport};
use crate::ensemble::{Dynamics, Start, System};
use crate::error::Result;
use crate::landscape::Quadratic;
use crate::optim::{AlgorithmKind, Discrete};
use crate::oracle::Oracle;
use crate::sde::sam_tables::kappa;
use crate::sde::{ModelKind, SdeForm, SdeModel};

impl super::SaddleStudy {
    pub(super) fn run_rho_lambda(
        &self,
        level: &mut u64,
        progress: Option<&(dyn Fn(u64) + Sync)>,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<PanelReport>> {
        let c = &self.config;
        let rl = &c.phase_rho_lambda;
        let eps = rl.attraction_radius.unwrap_or(c.classify.attraction_radius);
        let steps = (rl.horizon / c.eta).round() as usize;
        let d = rl.other_eigenvalues.len() + 1;
        let samples = start_samples(&self.rl_start, d, rl.region_samples, c.seed);
        let mut panels = Vec::new();
        for (pi, panel) in rl.panels.iter().enumerate() {
            let rhos = &self.rl_rhos[pi];
            let mut cells = Vec::new();
            for &lambda in &self.rl_lambdas {
                let mut spec = rl.other_eigenvalues.clone();
                spec.push(-lambda);
                let f = Quadratic::from_spectrum(&spec, None)?;
                let systems: Vec<System> = rhos
                    .iter()
                    .enumerate()
                    .map(|(i, &rho)| System {
                        label: format!("{}#{i}", panel.algorithm),
                        dynamics: Dynamics::Discrete(Discrete {
                            kind: panel.algorithm,
                            eta: c.eta,
                            rho,
                        }),
                    })
                    .collect();
                let acc = self.run_ensemble(
                    &f,
                    &Oracle::FullBatch,
                    &systems,
                    steps,
                    steps,
                    rl.paths,
                    &self.rl_start,
                    *level,
                    false,
                    progress,
                );
                *level += 1;
                // Region prediction: ‖H x₀‖ < ρ μ, with μ = min(|λ|, other negatives) = |λ|.
                let grad_norms: Vec<f64> = samples
                    .iter()
                    .map(|x| {
                        x.iter()
                            .zip(&spec)
                            .map(|(xi, li)| (xi * li).powi(2))
                            .sum::<f64>()
                            .sqrt()
                    })
                    .collect();
                for (s, &rho) in rhos.iter().enumerate() {
                    let recs = &acc.rec[s];
                    let n = recs.len();
                    let k = recs.iter().filter(|q| q.final_norm < eps).count();
                    let region = panel.algorithm != AlgorithmKind::Usam;
                    let predicted = if region {
                        grad_norms.iter().filter(|&&g| g < rho * lambda).count() as f64
                            / grad_norms.len() as f64
                    } else if rho * lambda > 1.0 {
                        1.0
                    } else {
                        0.0
                    };
                    let (in_region, in_region_attracted) = if region {
                        let inr: Vec<&PathRecord> =
                            recs.iter().filter(|q| q.grad0 < rho * lambda).collect();
                        (
                            Some(inr.len()),
                            Some(inr.iter().filter(|q| q.final_norm < eps).count()),
                        )
                    } else {
                        (None, None)
                    };
                    if region && c.eta * rho * lambda.max(max_abs(&spec)) >= eps {
                        warnings.push(format!(
                            "phase_rho_lambda {}: at ρ = {rho:.3}, |λ| = {lambda:.3} the discrete stall distance ηρ max|λ_i| = {:.3} is not below ε = {eps}; such cells read as not attracted",
                            panel.algorithm,
                            c.eta * rho * lambda.max(max_abs(&spec))
                        ));
                    }
                    cells.push(CellReport {
                        rho,
                        y: lambda,
                        attracted: k,
                        paths: n,
                        fraction: k as f64 / n as f64,
                        ci: wilson(k, n, c.verdict.level),
                        predicted,
                        in_region,
                        in_region_attracted,
                    });
                }
            }
            let is_usam = panel.algorithm == AlgorithmKind::Usam;
            let boundaries = boundaries(rhos, &self.rl_lambdas, &cells, |y, row| {
                if is_usam {
                    Some(1.0 / y)
                } else {
                    let pred: Vec<f64> = row.iter().map(|q| q.predicted).collect();
                    crossing(rhos, &pred, 0.5)
                }
            });
            panels.push(PanelReport {
                name: format!("{}_rho_lambda", panel.algorithm),
                algorithm: panel.algorithm.name().into(),
                system: "discrete".into(),
                y_name: "lambda".into(),
                prediction: if is_usam {
                    "full-batch USAM: attracted iff ρ|λ| > 1".into()
                } else {
                    "full-batch SAM: attracted if ‖∇f(x₀)‖ < ρ|λ| (line: half the starts in the region)".into()
                },
                rhos: rhos.clone(),
                ys: self.rl_lambdas.clone(),
                cells,
                boundaries,
                attraction_radius: eps,
                horizon: rl.horizon,
            });
        }
        Ok(panels)
    }

    pub(super) fn run_rho_sigma(
        &self,
        level: &mut u64,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<Vec<PanelReport>> {
        let c = &self.config;
        let rs = &c.phase_rho_sigma;
        let eps = rs.attraction_radius.unwrap_or(c.classify.attraction_radius);
        let steps = (rs.horizon / c.eta).round() as usize;
        let d = rs.eigenvalues.len();
        let mu = min_negative("phase_rho_sigma.eigenvalues", &rs.eigenvalues)?;
        let kd = kappa(d);
        let f = Quadratic::from_spectrum(&rs.eigenvalues, None)?;
        let with_sde = rs.sde_substeps.is_some();
        let mut cells: [Vec<CellReport>; 2] = [Vec::new(), Vec::new()];
        for &sigma in &self.rs_sigmas {
            let oracle = noise(d, sigma)?;
            let discrete: Vec<System> = self
                .rs_rhos
                .iter()
                .enumerate()
                .map(|(i, &rho)| System {
                    label: format!("{}#{i}", rs.algorithm),
                    dynamics: Dynamics::Discrete(Discrete {
                        kind: rs.algorithm,
                        eta: c.eta,
                        rho,
                    }),
                })
                .collect();
            let mut runs = vec![(0usize, discrete, rs.paths)];
            if let Some(r) = rs.sde_substeps {
                // The algorithm's SDE, an independent ensemble (its own run level).
                let kind = ModelKind::own(rs.algorithm);
                let mut sde = Vec::new();
                for (i, &rho) in self.rs_rhos.iter().enumerate() {
                    sde.push(System {
                        label: format!("{}#{i}", kind.name()),
                        dynamics: Dynamics::Euler {
                            model: SdeModel::new(
                                kind,
                                &f,
                                &oracle,
                                c.eta,
                                rho,
                                SdeForm::ClosedForm,
                                2,
                            )?,
                            substeps: r,
                        },
                    });
                }
                runs.push((1, sde, rs.sde_paths.unwrap_or(rs.paths)));
            }
            for (slot, systems, paths) in runs {
                let acc = self.run_ensemble(
                    &f,
                    &oracle,
                    &systems,
                    steps,
                    steps,
                    paths,
                    &self.rs_start,
                    *level,
                    false,
                    progress,
                );
                *level += 1;
                for (s, recs) in acc.rec.iter().enumerate() {
                    let rho = self.rs_rhos[s];
                    let n = recs.len();
                    let k = recs.iter().filter(|q| q.final_norm < eps).count();
                    cells[slot].push(CellReport {
                        rho,
                        y: sigma,
                        attracted: k,
                        paths: n,
                        fraction: k as f64 / n as f64,
                        ci: wilson(k, n, c.verdict.level),
                        predicted: if rho * kd * mu > sigma { 1.0 } else { 0.0 },
                        in_region: None,
                        in_region_attracted: None,
                    });
                }
            }
        }
        let [discrete, sde] = cells;
        let mut out = Vec::new();
        for (cells, name, system) in [
            (
                discrete,
                "sam_rho_sigma".to_string(),
                "discrete".to_string(),
            ),
            (
                sde,
                "sam_sde_rho_sigma".to_string(),
                format!(
                    "sam_sde (closed form, Euler–Maruyama, {} sub-steps per η)",
                    rs.sde_substeps.unwrap_or(0)
                ),
            ),
        ] {
            if cells.is_empty() {
                continue;
            }
            let boundaries = boundaries(&self.rs_rhos, &self.rs_sigmas, &cells, |sigma, _| {
                Some(sigma / (kd * mu))
            });
            out.push(PanelReport {
                name,
                algorithm: rs.algorithm.name().into(),
                system,
                y_name: "sigma".into(),
                prediction: format!(
                    "mini-batch SAM: attracted iff ρ κ_d |λ| > σ (κ_{d} = {kd:.4})"
                ),
                rhos: self.rs_rhos.clone(),
                ys: self.rs_sigmas.clone(),
                cells,
                boundaries,
                attraction_radius: eps,
                horizon: rs.horizon,
            });
        }
        debug_assert!(with_sde == (out.len() == 2));
        Ok(out)
    }
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Deterministic draws of a start distribution (region predictions).
fn start_samples(start: &Start, d: usize, n: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5AD_D1E);
    (0..n)
        .map(|_| match start {
            Start::Point(x) => x.iter().copied().collect(),
            Start::Gaussian { mean, std } => (0..d)
                .map(|i| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    mean[i] + std * z
                })
                .collect(),
            Start::Shell {
                center,
                r_min,
                r_max,
            } => {
                let z: Vec<f64> = (0..d).map(|_| StandardNormal.sample(&mut rng)).collect();
                let norm = z.iter().map(|v| v * v).sum::<f64>().sqrt();
                let u: f64 = rng.random();
                let df = d as f64;
                let (a, b) = (r_min.powf(df), r_max.powf(df));
                let r = (a + u * (b - a)).powf(1.0 / df);
                (0..d).map(|i| center[i] + r * z[i] / norm).collect()
            }
        })
        .collect()
}
