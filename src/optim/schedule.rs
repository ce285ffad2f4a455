//! Schedules of m-SAM phases: switch the algorithm or `ρ` at chosen steps (ERM → SAM
//! fine-tuning, SAM → ERM), on any finite-sum landscape.
//!
//! A [`Schedule`] is a list of [`Phase`]s run one after the other; each phase is a number of
//! steps of one [`MSam`] configuration (GD/SGD are `ρ = 0`) with its batch rule: the full set
//! every step, or a drawn mini-batch ([`Subsampling`]). Within a step the batch is shuffled
//! before it is cut into micro-batches of size `m` whenever `1 < m < B` (for `m = 1` or
//! `m = B` the partition does not depend on the order, and no random number is spent), so a
//! full-batch schedule without such phases uses no randomness at all.
//!
//! [`Schedule::run`] drives the steps without allocating inside the loop and hands every step
//! to an observer `(step, x_before, x_after) → continue?`, which records what the caller
//! needs and may stop the run (divergence).

use rand_chacha::ChaCha8Rng;

use super::msam::{shuffle, MSam, MSamWorkspace};
use crate::error::{Error, Result};
use crate::landscape::FiniteSum;
use crate::oracle::Subsampling;

/// One phase: `steps` steps of `alg` with batches from `sampling` (`None`: the full set).
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// Number of steps (≥ 1).
    pub steps: usize,
    /// The algorithm (`rho = 0` for GD/SGD).
    pub alg: MSam,
    /// Mini-batch rule; `None` uses all `N` samples every step.
    pub sampling: Option<Subsampling>,
}

impl Phase {
    /// Batch size `B` of this phase on a landscape with `n` samples.
    pub fn batch(&self, n: usize) -> usize {
        self.sampling.map_or(n, |s| s.batch)
    }
}

/// A validated sequence of phases.
#[derive(Debug, Clone)]
pub struct Schedule {
    phases: Vec<Phase>,
}

impl Schedule {
    /// Checks every phase against a landscape with `n` samples: `steps ≥ 1`, batch in `1..=n`,
    /// `m` divides the batch. `field` names the configuration entry in errors.
    pub fn new(phases: Vec<Phase>, n: usize, field: &str) -> Result<Self> {
        if phases.is_empty() {
            return Err(Error::config(field, "[]", "needs at least one phase"));
        }
        for (i, p) in phases.iter().enumerate() {
            if p.steps == 0 {
                return Err(Error::config(
                    format!("{field}[{i}].steps"),
                    0,
                    "must be ≥ 1",
                ));
            }
            let b = p.batch(n);
            if b == 0 || b > n {
                return Err(Error::config(
                    format!("{field}[{i}].batch"),
                    b,
                    format!("must be in 1..={n} (the number of samples)"),
                ));
            }
            if let Some(s) = p.sampling {
                if s.n != n {
                    return Err(Error::config(
                        format!("{field}[{i}].batch"),
                        s.n,
                        format!("sampler built for {} samples, landscape has {n}", s.n),
                    ));
                }
            }
            p.alg.check(&format!("{field}[{i}].m"), b)?;
        }
        Ok(Self { phases })
    }

    /// A single phase.
    pub fn single(phase: Phase, n: usize, field: &str) -> Result<Self> {
        Self::new(vec![phase], n, field)
    }

    /// The phases.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// Total steps.
    pub fn total_steps(&self) -> usize {
        self.phases.iter().map(|p| p.steps).sum()
    }

    /// `true` if some phase draws random numbers (mini-batches or shuffled micro-batches).
    pub fn is_random(&self, n: usize) -> bool {
        self.phases.iter().any(|p| {
            let b = p.batch(n);
            p.sampling.is_some() || (p.alg.m > 1 && p.alg.m < b)
        })
    }

    /// Runs every phase from `x` (updated in place). `rng` draws batches and shuffles (unused
    /// by deterministic schedules). After each step `observe(step, before, after)` is called
    /// with the 1-based number of steps done; returning `false` stops the run. Returns the
    /// number of steps done.
    pub fn run<F>(
        &self,
        f: &dyn FiniteSum,
        x: &mut [f64],
        rng: &mut ChaCha8Rng,
        mut observe: F,
    ) -> usize
    where
        F: FnMut(usize, &[f64], &[f64]) -> bool,
    {
        let (n, d) = (f.n_samples(), f.dim());
        let mut ws = MSamWorkspace::new(d);
        let mut dir = vec![0.0; d];
        let mut before = vec![0.0; d];
        let bmax = self.phases.iter().map(|p| p.batch(n)).max().unwrap_or(n);
        let mut batch = vec![0u32; bmax];
        let mut done = 0;
        for p in &self.phases {
            let b = p.batch(n);
            let shuffled = p.alg.m > 1 && p.alg.m < b;
            let batch = &mut batch[..b];
            if p.sampling.is_none() {
                for (i, v) in batch.iter_mut().enumerate() {
                    *v = i as u32;
                }
            }
            for _ in 0..p.steps {
                if let Some(s) = &p.sampling {
                    s.draw(rng, batch);
                }
                if shuffled {
                    shuffle(batch, rng);
                }
                before.copy_from_slice(x);
                p.alg.step(f, batch, x, &mut dir, &mut ws);
                done += 1;
                if !observe(done, &before, x) {
                    return done;
                }
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landscape::{Landscape, LeastSquares};
    use rand::SeedableRng;

    fn gd(steps: usize, rho: f64, m: usize) -> Phase {
        Phase {
            steps,
            alg: MSam {
                eta: 0.1,
                rho,
                m,
                normalized: false,
            },
            sampling: None,
        }
    }

    #[test]
    fn phases_switch_at_the_chosen_step() {
        // Two phases equal running them one after the other by hand.
        let f = LeastSquares::synthetic(6, 3, 0.3, 2).unwrap();
        let s = Schedule::new(vec![gd(5, 0.0, 6), gd(7, 0.2, 1)], 6, "phases").unwrap();
        assert_eq!(s.total_steps(), 12);
        assert!(!s.is_random(6));
        let mut x = vec![1.0, -1.0, 0.5];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut seen = Vec::new();
        let done = s.run(&f, &mut x, &mut rng, |k, _, _| {
            seen.push(k);
            true
        });
        assert_eq!(done, 12);
        assert_eq!(seen, (1..=12).collect::<Vec<_>>());
        let mut y = vec![1.0, -1.0, 0.5];
        let mut ws = MSamWorkspace::new(3);
        let mut dir = vec![0.0; 3];
        let all: Vec<u32> = (0..6).collect();
        for k in 0..12 {
            let p = if k < 5 { gd(1, 0.0, 6) } else { gd(1, 0.2, 1) };
            p.alg.step(&f, &all, &mut y, &mut dir, &mut ws);
        }
        assert_eq!(x, y);
        // Stopping early.
        let mut z = vec![1.0, -1.0, 0.5];
        assert_eq!(s.run(&f, &mut z, &mut rng, |k, _, _| k < 3), 3);
        let _ = f.dim();
    }

    #[test]
    fn rejects_bad_phases_naming_the_field() {
        let e = Schedule::new(vec![gd(5, 0.1, 4)], 6, "finetune.phases").unwrap_err();
        assert!(e.to_string().contains("finetune.phases[0].m"), "{e}");
        let e = Schedule::new(vec![gd(0, 0.1, 1)], 6, "p").unwrap_err();
        assert!(e.to_string().contains("p[0].steps"), "{e}");
        let mut sgd = gd(3, 0.0, 1);
        sgd.sampling = Some(Subsampling {
            batch: 9,
            replacement: false,
            n: 6,
        });
        assert!(Schedule::new(vec![sgd], 6, "p").is_err());
    }

    #[test]
    fn random_schedules_are_reproducible_from_the_stream() {
        let f = LeastSquares::synthetic(8, 2, 0.3, 4).unwrap();
        let mut sgd = gd(50, 0.0, 1);
        sgd.sampling = Some(Subsampling {
            batch: 1,
            replacement: false,
            n: 8,
        });
        let s = Schedule::new(vec![sgd, gd(20, 0.1, 2)], 8, "p").unwrap();
        assert!(s.is_random(8));
        let run = |seed| {
            let mut x = vec![0.5, 0.5];
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            s.run(&f, &mut x, &mut rng, |_, _, _| true);
            x
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }
}
