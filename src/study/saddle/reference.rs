//! The saddle study's reference run on `H = diag(1, −0.5)`: each row (algorithm, `ρ`, `σ`, start,
//! expected outcome) runs one path if deterministic, `reference.paths` paths if noisy, and passes
//! iff the Wilson lower bound of the fraction with the expected outcome exceeds ½.

use std::collections::BTreeMap;

use super::{noise, quantile_sorted, wilson, Decision, Outcome, ReferenceRowReport};
use crate::ensemble::{Dynamics, Start, System};
use crate::error::Result;
use crate::landscape::Quadratic;
use crate::linalg::Vector;
use crate::optim::Discrete;

impl super::SaddleStudy {
    pub(super) fn run_reference(
        &self,
        level: &mut u64,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<Vec<ReferenceRowReport>> {
        let c = &self.config;
        let r = &c.reference;
        let f = Quadratic::from_spectrum(&r.eigenvalues, None)?;
        let d = r.eigenvalues.len();
        // Group rows by (σ, start): one ensemble each, one system per row.
        let mut groups: BTreeMap<Vec<u64>, Vec<usize>> = BTreeMap::new();
        for (i, row) in r.rows.iter().enumerate() {
            let mut key = vec![row.sigma.to_bits()];
            key.extend(row.start.iter().map(|v| v.to_bits()));
            groups.entry(key).or_default().push(i);
        }
        let mut out: Vec<Option<ReferenceRowReport>> = vec![None; r.rows.len()];
        for idx in groups.values() {
            let first = &r.rows[idx[0]];
            let oracle = noise(d, first.sigma)?;
            let paths = if first.sigma > 0.0 { r.paths } else { 1 };
            let systems: Vec<System> = idx
                .iter()
                .map(|&i| {
                    let row = &r.rows[i];
                    System {
                        label: format!("{}#{i}", row.algorithm),
                        dynamics: Dynamics::Discrete(Discrete {
                            kind: row.algorithm,
                            eta: c.eta,
                            rho: row.rho,
                        }),
                    }
                })
                .collect();
            let start = Start::Point(Vector::from_column_slice(&first.start));
            let acc = self.run_ensemble(
                &f, &oracle, &systems, r.steps, r.steps, paths, &start, *level, false, progress,
            );
            *level += 1;
            for (s, &i) in idx.iter().enumerate() {
                let row = &r.rows[i];
                let recs = &acc.rec[s];
                let mut counts: BTreeMap<String, usize> = [
                    Outcome::Escape,
                    Outcome::Stall,
                    Outcome::Converge,
                    Outcome::Undecided,
                ]
                .iter()
                .map(|o| (o.name().to_string(), 0))
                .collect();
                for rec in recs {
                    *counts
                        .get_mut(rec.outcome(&c.classify).name())
                        .expect("all outcomes") += 1;
                }
                let k = counts[row.expect.name()];
                let n = recs.len();
                let ci = wilson(k, n, c.verdict.level);
                let pass = if n == 1 { k == 1 } else { ci[0] > 0.5 };
                let mut finals: Vec<f64> = recs.iter().map(|q| q.final_norm).collect();
                finals.sort_by(f64::total_cmp);
                let mut tails: Vec<f64> = recs.iter().map(|q| q.tail_mean()).collect();
                tails.sort_by(f64::total_cmp);
                let mut esc: Vec<f64> = recs.iter().filter_map(|q| q.escape_time).collect();
                esc.sort_by(f64::total_cmp);
                out[i] = Some(ReferenceRowReport {
                    algorithm: row.algorithm.name().into(),
                    rho: row.rho,
                    sigma: row.sigma,
                    start: row.start.clone(),
                    expected: row.expect,
                    paths: n,
                    counts,
                    fraction_expected: k as f64 / n as f64,
                    ci,
                    final_norm_median: quantile_sorted(&finals, 0.5),
                    tail_mean_norm_median: quantile_sorted(&tails, 0.5),
                    escape_time_median: (!esc.is_empty()).then(|| quantile_sorted(&esc, 0.5)),
                    verdict: Decision::from_bool(pass),
                });
            }
        }
        Ok(out.into_iter().map(|r| r.expect("every row run")).collect())
    }
}
