//! The Monte Carlo ensemble engine: many paths of several coupled systems, in parallel blocks.
//!
//! A *system* is a discrete algorithm, an SDE model integrated by Euler–Maruyama with `r`
//! sub-steps (`h = η/r`), or a linear SDE advanced by its exact Ornstein–Uhlenbeck transition.
//! All systems of a run share each path's Brownian path `W` (common random numbers):
//!
//! * the finest Euler grid `h_min = η/r_max` gets increments `ΔW ~ N(0, h_min I_m)` from the
//!   path's ChaCha8 stream; coarser grids (`r` dividing `r_max`) sum them;
//! * with the additive oracle, the discrete step `k` uses `ξ_k = −(W_{(k+1)η} − W_{kη})/√η`
//!   (the coupling of docs/theory.md §4; the sign makes `−η S ξ_k` equal the SDE's `+√η S ΔW`), so both marginals
//!   are exact and the per-path difference has small variance;
//! * with the subsampling oracle, discrete systems draw mini-batch indices from an auxiliary
//!   stream, independent of `W` (independent ensembles, docs/theory.md §4); all discrete systems of a path
//!   share the same batches. A run whose systems are all discrete under subsampling draws no
//!   Brownian increments at all (nothing would read them).
//!
//! Paths are processed in fixed-size blocks (`d × P` matrices, one path per column) so that
//! landscapes with a batched form do one matrix–matrix product per evaluation; rayon runs
//! blocks in parallel; each block's observer accumulator is merged **in block order**, so the
//! output is bit-identical at any thread count. Workspaces are allocated once per block: the
//! time loop does not allocate (except the inner-Monte-Carlo SDE form, documented there).
//!
//! Reproducibility: same configuration and seed → bit-identical results at any thread count.
//! The Brownian draws of a path depend on the run's noise dimension and finest sub-step count,
//! i.e. on which systems are in the run: adding a model changes the realisation (not its law).
//!
//! Divergence: after every step a path of a system whose state is non-finite or has
//! `‖x‖ > divergence_bound` is marked dead, counted, and zeroed; observers skip dead paths.

pub mod normals;
pub mod rng;

use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use normals::BlockWords;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use normals::BlockNormals;

use crate::landscape::Landscape;
use crate::linalg::{Matrix, Vector};
use crate::optim::msam::{MSam, MSamWorkspace};
use crate::optim::{norm_sq, AlgorithmKind, Discrete, DiscreteWorkspace, StepNoise};
use crate::oracle::Oracle;
use crate::sde::linear::OuTransition;
use crate::sde::model::{ModelWorkspace, SdeModel};

/// `y += x` entrywise (equal shapes).
fn add_assign(y: &mut Matrix, x: &Matrix) {
    for (a, b) in y.as_mut_slice().iter_mut().zip(x.as_slice()) {
        *a += b;
    }
}

/// Blocks that run between two ordered merges ([`Ensemble::run`]): enough to keep every thread
/// busy, few enough that the accumulators alive at once stay small. A constant, not a multiple
/// of the thread count, so that shard files and the merge see the same sequence of calls.
pub const MERGE_CHUNK: usize = 64;

/// How a system advances.
#[derive(Debug, Clone)]
pub enum Dynamics {
    /// A discrete algorithm, one update per `η`.
    Discrete(Discrete),
    /// An SDE model by Euler–Maruyama with `substeps` sub-steps per `η`.
    Euler {
        /// The model.
        model: SdeModel,
        /// Sub-steps `r` per learning-rate step (`h = η/r`).
        substeps: usize,
    },
    /// A linear SDE by its exact transition over `η`.
    ExactOu(OuTransition),
    /// m-SAM / m-USAM ([`crate::optim::msam`]) on the path's mini-batch, split into consecutive
    /// micro-batches (the draw is exchangeable, so this is a uniformly random partition);
    /// subsampling oracle only.
    MicroBatch(MSam),
}

/// One system of a run: a label (for messages and RNG tags) and its dynamics.
#[derive(Debug, Clone)]
pub struct System {
    /// Unique label within the run, e.g. `usam_sde@16`.
    pub label: String,
    /// How it advances.
    pub dynamics: Dynamics,
}

/// Initial condition, shared by every system of a path.
#[derive(Debug, Clone)]
pub enum Start {
    /// Every path starts at `x₀`.
    Point(Vector),
    /// `x₀ ~ N(mean, std² I)`, drawn per path from an auxiliary stream.
    Gaussian {
        /// Mean.
        mean: Vector,
        /// Standard deviation per coordinate.
        std: f64,
    },
    /// `x₀ = center + r·u`, `u` uniform on the unit sphere, `r` such that `x₀` is uniform in the
    /// shell `r_min ≤ ‖x₀ − center‖ ≤ r_max` (`r = (r_min^d + U (r_max^d − r_min^d))^{1/d}`,
    /// `U ~ U(0, 1)`); `r_min = 0` is the ball, `r_min = r_max` the sphere. Drawn per path from
    /// the auxiliary stream `"start"` (Gaussian direction first, then `U`).
    Shell {
        /// Centre.
        center: Vector,
        /// Inner radius `r_min ≥ 0`.
        r_min: f64,
        /// Outer radius `r_max ≥ r_min`.
        r_max: f64,
    },
}

impl Start {
    /// Mean and covariance of `x₀`.
    pub fn moments(&self) -> (Vector, Matrix) {
        match self {
            Start::Point(x) => (x.clone(), Matrix::zeros(x.len(), x.len())),
            Start::Gaussian { mean, std } => (
                mean.clone(),
                Matrix::identity(mean.len(), mean.len()) * (std * std),
            ),
            Start::Shell {
                center,
                r_min,
                r_max,
            } => {
                // E r² = d/(d+2) · (b^{d+2} − a^{d+2}) / (b^d − a^d); Cov = E r²/d · I.
                let d = center.len();
                let df = d as f64;
                let e_r2 = if r_max > r_min {
                    df / (df + 2.0) * (r_max.powf(df + 2.0) - r_min.powf(df + 2.0))
                        / (r_max.powf(df) - r_min.powf(df))
                } else {
                    r_max * r_max
                };
                (center.clone(), Matrix::identity(d, d) * (e_r2 / df))
            }
        }
    }
    /// Dimension.
    pub fn dim(&self) -> usize {
        match self {
            Start::Point(x) => x.len(),
            Start::Gaussian { mean, .. } => mean.len(),
            Start::Shell { center, .. } => center.len(),
        }
    }
}

/// What observers see of a block after a step.
pub struct BlockView<'a> {
    /// Global index of the block's first path.
    pub first_path: usize,
    /// One `d × P` state matrix per system, in run order.
    pub states: &'a [Matrix],
    /// `alive[s][j]`: path `j` of system `s` has not diverged.
    pub alive: &'a [Vec<bool>],
    /// The landscape.
    pub landscape: &'a dyn Landscape,
}

/// Collects per-block statistics; blocks are merged in block order.
pub trait Observer: Sync {
    /// Per-block accumulator. Serialisable so that a block's result can be computed by one
    /// process (`--shard I/N`) and folded by another (`sde-check merge`, see [`crate::shard`]);
    /// a field that is only per-block scratch may be `#[serde(skip)]` (it must not enter
    /// [`Observer::merge`]).
    type Acc: Send + Serialize + DeserializeOwned;
    /// An empty accumulator.
    fn new_acc(&self) -> Self::Acc;
    /// Called at `t = 0` (`save = 0`) and after every `save_every` steps.
    fn on_save(&self, acc: &mut Self::Acc, save: usize, t: f64, view: &BlockView);
    /// Called after every step `k ≥ 1` (default: nothing).
    fn on_step(&self, _acc: &mut Self::Acc, _k: usize, _t: f64, _view: &BlockView) {}
    /// `total ← total ⊕ block`.
    fn merge(&self, total: &mut Self::Acc, block: Self::Acc);
}

/// A Monte Carlo run at one learning rate.
pub struct Ensemble<'a> {
    /// Landscape.
    pub landscape: &'a dyn Landscape,
    /// Oracle.
    pub oracle: &'a Oracle,
    /// Learning rate `η` (discrete step ↔ SDE time `η`).
    pub eta: f64,
    /// Number of steps `n = T/η`.
    pub steps: usize,
    /// Observers' `on_save` runs every `save_every` steps.
    pub save_every: usize,
    /// The systems.
    pub systems: &'a [System],
    /// Number of paths.
    pub paths: usize,
    /// Paths per block.
    pub block_size: usize,
    /// Master seed.
    pub seed: u64,
    /// Run index (selects the streams; different runs are independent).
    pub level: u64,
    /// Initial condition.
    pub start: &'a Start,
    /// A path is dead once `‖x‖` exceeds this (or is non-finite).
    pub divergence_bound: f64,
}

/// Result of a run.
#[derive(Debug)]
pub struct EnsembleOutput<A> {
    /// Merged observer accumulator.
    pub acc: A,
    /// Paths that diverged, per system.
    pub diverged: Vec<u64>,
    /// First divergence (step index) per system, if any.
    pub first_divergence_step: Vec<Option<usize>>,
    /// Eigenvalues clamped in diffusion square roots, per system.
    pub clamps: Vec<u64>,
}

/// One block's result: what the fold in block order consumes (and what a shard records).
#[derive(Serialize, Deserialize)]
#[serde(bound = "A: Serialize + DeserializeOwned")]
struct BlockResult<A> {
    acc: A,
    diverged: Vec<u64>,
    first: Vec<Option<usize>>,
    clamps: Vec<u64>,
}

enum Work {
    Discrete(DiscreteWorkspace),
    MicroBatch(MSamWorkspace, Vec<f64>),
    Euler(Box<ModelWorkspace>),
    Exact {
        zeta: Matrix,
        tmp: Matrix,
        normals: Box<BlockNormals>,
    },
}

impl Ensemble<'_> {
    /// Brownian dimension of the run.
    pub fn noise_dim(&self) -> usize {
        let d = self.landscape.dim();
        let mut m = self.oracle.noise_dim(d);
        for s in self.systems {
            match &s.dynamics {
                Dynamics::Euler { model, .. } if model.is_monte_carlo() => m = m.max(d),
                Dynamics::ExactOu(t) => m = m.max(t.g.ncols()),
                _ => {}
            }
        }
        m
    }

    /// Whether a system consumes the Brownian increments: Euler systems, exact transitions,
    /// and discrete systems under the additive oracle (their noise is coupled to `W`). A run
    /// of discrete systems under subsampling only draws mini-batches and skips the normals
    /// (nothing reads them, so no system's numbers change).
    fn needs_brownian(&self) -> bool {
        self.systems.iter().any(|s| match &s.dynamics {
            Dynamics::Euler { .. } | Dynamics::ExactOu(_) => true,
            Dynamics::Discrete(_) => self.oracle.is_additive(),
            Dynamics::MicroBatch(_) => false,
        })
    }

    /// Finest number of sub-steps (every Euler system's `r` must divide it).
    pub fn finest_substeps(&self) -> usize {
        self.systems
            .iter()
            .filter_map(|s| match &s.dynamics {
                Dynamics::Euler { substeps, .. } => Some(*substeps),
                _ => None,
            })
            .max()
            .unwrap_or(1)
    }

    /// Number of path-steps (paths × systems-independent steps), for progress and benchmarks.
    pub fn work(&self) -> u64 {
        (self.paths as u64).saturating_mul(self.steps as u64)
    }

    /// Runs all blocks (in parallel on the current rayon pool) and merges them in order.
    /// `progress` is called with the number of path-steps each finished block covered.
    pub fn run<O: Observer>(
        &self,
        observer: &O,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> EnsembleOutput<O::Acc> {
        let r_max = self.finest_substeps();
        for s in self.systems {
            if let Dynamics::Euler { substeps, .. } = &s.dynamics {
                assert!(
                    *substeps >= 1 && r_max.is_multiple_of(*substeps),
                    "sub-steps must divide the finest"
                );
            }
        }
        let block = self.block_size.max(1);
        let n_blocks = self.paths.div_ceil(block);
        let ns = self.systems.len();
        let mut out = EnsembleOutput {
            acc: observer.new_acc(),
            diverged: vec![0; ns],
            first_divergence_step: vec![None; ns],
            clamps: vec![0; ns],
        };
        // Blocks run in parallel chunks of `MERGE_CHUNK` blocks; each chunk's results are
        // merged in block order before the next starts, so at most one chunk of accumulators
        // is alive (memory independent of the number of paths) and the merge order — hence
        // every bit of the output — does not depend on the thread count. Each chunk is one
        // call of `crate::shard::units`: under a shard context only this shard's blocks (or,
        // when merging, none) are computed; the chunking does not depend on the thread count,
        // so shards and the merge see the same calls.
        let chunk = MERGE_CHUNK;
        let mut start = 0;
        while start < n_blocks {
            let end = n_blocks.min(start.saturating_add(chunk));
            let results: Vec<Option<BlockResult<O::Acc>>> = crate::shard::units(
                || self.describe(std::any::type_name::<O>(), end - start, r_max),
                end - start,
                |i| {
                    let first = (start + i) * block;
                    let p = block.min(self.paths - first);
                    let r = self.run_block(observer, first, p, r_max);
                    if let Some(cb) = progress {
                        cb((p as u64).saturating_mul(self.steps as u64));
                    }
                    r
                },
            );
            for r in results.into_iter().flatten() {
                observer.merge(&mut out.acc, r.acc);
                for s in 0..ns {
                    out.diverged[s] += r.diverged[s];
                    out.clamps[s] += r.clamps[s];
                    out.first_divergence_step[s] = match (out.first_divergence_step[s], r.first[s])
                    {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
            }
            start = end;
        }
        out
    }

    /// The parameters that identify a run (its shard fingerprint): everything that changes
    /// which numbers its blocks produce, except the landscape itself (fixed by the study's
    /// configuration, which the shards also compare).
    fn describe(&self, observer: &str, n_blocks: usize, r_max: usize) -> String {
        let labels: Vec<&str> = self.systems.iter().map(|s| s.label.as_str()).collect();
        let dynamics = crate::shard::fnv1a(format!("{:?}", self.systems).as_bytes());
        let start = crate::shard::fnv1a(format!("{:?}", self.start).as_bytes());
        let oracle = crate::shard::fnv1a(format!("{:?}", self.oracle).as_bytes());
        format!(
            "ensemble {observer}: systems [{}] (dynamics {dynamics:016x}), eta {:?}, {} steps, \
             save every {}, {} paths in {n_blocks} blocks of {}, seed {}, level {}, start \
             {start:016x}, bound {:?}, dim {}, noise dim {}, {r_max} finest sub-steps, oracle {oracle:016x}",
            labels.join(", "),
            self.eta,
            self.steps,
            self.save_every,
            self.paths,
            self.block_size,
            self.seed,
            self.level,
            self.divergence_bound,
            self.landscape.dim(),
            self.noise_dim(),
        )
    }

    fn run_block<O: Observer>(
        &self,
        observer: &O,
        first: usize,
        p: usize,
        r_max: usize,
    ) -> BlockResult<O::Acc> {
        let f = self.landscape;
        let d = f.dim();
        let m = if self.needs_brownian() {
            self.noise_dim()
        } else {
            0
        };
        let ns = self.systems.len();
        let streams: Vec<u64> = (first..first + p)
            .map(|j| rng::stream_id(self.level, j as u64))
            .collect();
        let mut main = BlockNormals::new(self.seed, &streams);
        // Mini-batch indices: path j's words are those of `aux_rng(seed, "batch", stream_j)`.
        let batch_streams = match self.oracle {
            Oracle::Subsampling(_) => &streams[..],
            _ => &[],
        };
        let mut batch_words = BlockWords::new(rng::aux_seed(self.seed, "batch"), batch_streams);
        let mut aux: Vec<Vec<ChaCha8Rng>> = self
            .systems
            .iter()
            .map(|sys| {
                let needs = match &sys.dynamics {
                    Dynamics::Euler { model, .. } => model.needs_aux_rng(),
                    Dynamics::ExactOu(_) | Dynamics::Discrete(_) | Dynamics::MicroBatch(_) => false,
                };
                if needs {
                    streams
                        .iter()
                        .map(|&s| rng::aux_rng(self.seed, &sys.label, s))
                        .collect()
                } else {
                    Vec::new()
                }
            })
            .collect();

        // Initial states.
        let mut x0 = Matrix::zeros(d, p);
        match self.start {
            Start::Point(x) => {
                for mut c in x0.column_iter_mut() {
                    c.copy_from(x);
                }
            }
            Start::Gaussian { mean, std } => {
                for (j, mut c) in x0.column_iter_mut().enumerate() {
                    let mut r = rng::aux_rng(self.seed, "start", streams[j]);
                    for i in 0..d {
                        let z: f64 = StandardNormal.sample(&mut r);
                        c[i] = mean[i] + std * z;
                    }
                }
            }
            Start::Shell {
                center,
                r_min,
                r_max,
            } => {
                let df = d as f64;
                for (j, mut c) in x0.column_iter_mut().enumerate() {
                    let mut r = rng::aux_rng(self.seed, "start", streams[j]);
                    let mut norm2 = 0.0;
                    for i in 0..d {
                        let z: f64 = StandardNormal.sample(&mut r);
                        c[i] = z;
                        norm2 += z * z;
                    }
                    let u: f64 = rand::RngExt::random(&mut r);
                    let (a, b) = (r_min.powf(df), r_max.powf(df));
                    let radius = (a + u * (b - a)).powf(1.0 / df);
                    let scale = radius / norm2.sqrt().max(f64::MIN_POSITIVE);
                    for i in 0..d {
                        c[i] = center[i] + scale * c[i];
                    }
                }
            }
        }
        let mut states: Vec<Matrix> = vec![x0; ns];
        let mut alive: Vec<Vec<bool>> = vec![vec![true; p]; ns];
        let mut diverged = vec![0u64; ns];
        let mut first_div: Vec<Option<usize>> = vec![None; ns];
        let mut work: Vec<Work> = self
            .systems
            .iter()
            .map(|s| match &s.dynamics {
                Dynamics::Discrete(_) => Work::Discrete(DiscreteWorkspace::new(d, p)),
                Dynamics::MicroBatch(_) => Work::MicroBatch(MSamWorkspace::new(d), vec![0.0; d]),
                Dynamics::Euler { model, .. } => {
                    Work::Euler(Box::new(model.workspace(f, self.oracle, p)))
                }
                Dynamics::ExactOu(_) => Work::Exact {
                    zeta: Matrix::zeros(d, p),
                    tmp: Matrix::zeros(d, p),
                    normals: Box::new(BlockNormals::new(
                        rng::aux_seed(self.seed, &s.label),
                        &streams,
                    )),
                },
            })
            .collect();

        // Resolution groups: distinct sub-step counts, each with its accumulated increment.
        let mut groups: Vec<usize> = self
            .systems
            .iter()
            .filter_map(|s| match &s.dynamics {
                Dynamics::Euler { substeps, .. } => Some(*substeps),
                _ => None,
            })
            .collect();
        groups.sort_unstable();
        groups.dedup();
        // Coarser groups sum the fine increments; the finest group uses them directly.
        let mut acc_dw: Vec<Matrix> = groups
            .iter()
            .map(|&r_g| {
                if r_g == r_max {
                    Matrix::zeros(0, 0)
                } else {
                    Matrix::zeros(m, p)
                }
            })
            .collect();
        let has_discrete = self
            .systems
            .iter()
            .any(|s| matches!(s.dynamics, Dynamics::Discrete(_) | Dynamics::MicroBatch(_)));
        let has_exact = self
            .systems
            .iter()
            .any(|s| matches!(s.dynamics, Dynamics::ExactOu(_)));
        // The whole-step increment W_{(k+1)η} − W_{kη}: needed by discrete systems (additive
        // coupling) and exact transitions; with one sub-step it is the fine increment itself.
        let need_total = (has_discrete || has_exact) && m > 0;
        // Isotropic additive noise for discrete systems that all form `Z = c ΔW` inside their
        // own update passes (SGD, USAM): no separate `Z` pass.
        let z_in_step = m == d
            && self.systems.iter().all(|s| match &s.dynamics {
                Dynamics::Discrete(alg) => {
                    matches!(alg.kind, AlgorithmKind::Sgd | AlgorithmKind::Usam)
                }
                Dynamics::MicroBatch(_) => false,
                _ => true,
            });
        // S ΔW is formed only for a general S: isotropic noise (S = σI) is a scalar factor that
        // the models and the coupling apply themselves.
        let general_s = match self.oracle {
            Oracle::Additive(a) if a.sigma().is_none() => Some(a.s()),
            _ => None,
        };
        let mut s_dw = Matrix::zeros(d, p);
        let mut dw_fine = Matrix::zeros(m, p);
        let mut dw_total = Matrix::zeros(if r_max > 1 { m } else { 0 }, p);
        let mut z = Matrix::zeros(d, p);
        let batch = self.oracle.batch();
        let mut batches = vec![0u32; batch * p];

        let eta = self.eta;
        let h_fine = eta / r_max as f64;
        let sd_fine = h_fine.sqrt();
        let mut acc = observer.new_acc();
        observer.on_save(
            &mut acc,
            0,
            0.0,
            &BlockView {
                first_path: first,
                states: &states,
                alive: &alive,
                landscape: f,
            },
        );

        for k in 0..self.steps {
            for j in 0..r_max {
                if m > 0 {
                    main.fill(dw_fine.as_mut_slice(), m, sd_fine);
                    if need_total && r_max > 1 {
                        if j == 0 {
                            dw_total.copy_from(&dw_fine);
                        } else {
                            add_assign(&mut dw_total, &dw_fine);
                        }
                    }
                }
                for (gi, &r_g) in groups.iter().enumerate() {
                    let window = r_max / r_g;
                    if r_g != r_max && m > 0 {
                        if j % window == 0 {
                            acc_dw[gi].copy_from(&dw_fine);
                        } else {
                            add_assign(&mut acc_dw[gi], &dw_fine);
                        }
                    }
                    if (j + 1) % window != 0 {
                        continue;
                    }
                    let dw = if r_g == r_max { &dw_fine } else { &acc_dw[gi] };
                    let h = eta / r_g as f64;
                    let sdw = match general_s {
                        Some(s) => {
                            s_dw.gemm(1.0, s, &dw.rows(0, s.ncols()), 0.0);
                            Some(&s_dw)
                        }
                        None => None,
                    };
                    for (si, sys) in self.systems.iter().enumerate() {
                        if let Dynamics::Euler { model, substeps } = &sys.dynamics {
                            if *substeps != r_g {
                                continue;
                            }
                            let Work::Euler(ws) = &mut work[si] else {
                                unreachable!()
                            };
                            model.euler_step(
                                f,
                                self.oracle,
                                &mut states[si],
                                dw,
                                sdw,
                                h,
                                ws,
                                &mut aux[si],
                            );
                        }
                    }
                }
            }
            let dw_total: &Matrix = if r_max > 1 { &dw_total } else { &dw_fine };
            // Discrete noise for this step.
            let noise = match self.oracle {
                Oracle::Additive(a) if has_discrete => {
                    // ξ = −ΔW/√η, Z = S ξ.
                    let c = -1.0 / eta.sqrt();
                    match a.sigma() {
                        Some(sigma) if z_in_step => StepNoise {
                            z_scaled: Some((c * sigma, dw_total)),
                            ..Default::default()
                        },
                        Some(sigma) => {
                            let c = c * sigma;
                            for (zi, wi) in z.as_mut_slice().iter_mut().zip(dw_total.as_slice()) {
                                *zi = c * wi;
                            }
                            StepNoise {
                                z: Some(&z),
                                ..Default::default()
                            }
                        }
                        None => {
                            z.gemm(c, a.s(), &dw_total.rows(0, a.s().ncols()), 0.0);
                            StepNoise {
                                z: Some(&z),
                                ..Default::default()
                            }
                        }
                    }
                }
                Oracle::Subsampling(sub) if has_discrete => {
                    sub.draw_block(&mut batch_words, &mut batches);
                    StepNoise {
                        batches: Some(&batches),
                        ..Default::default()
                    }
                }
                _ => StepNoise::default(),
            };
            for (si, sys) in self.systems.iter().enumerate() {
                match (&sys.dynamics, &mut work[si]) {
                    (Dynamics::Discrete(alg), Work::Discrete(ws)) => {
                        alg.step(f, self.oracle, &mut states[si], &noise, ws);
                    }
                    (Dynamics::MicroBatch(alg), Work::MicroBatch(ws, dir)) => {
                        let fs = f.as_finite_sum().expect("micro-batches need a finite sum");
                        let drawn = noise.batches.expect("micro-batches need subsampling");
                        let cols = states[si].as_mut_slice().chunks_exact_mut(d);
                        for (x, b) in cols.zip(drawn.chunks_exact(batch)) {
                            alg.step(fs, b, x, dir, ws);
                        }
                    }
                    (Dynamics::ExactOu(tr), Work::Exact { zeta, tmp, normals }) => {
                        normals.fill(zeta.as_mut_slice(), d, 1.0);
                        // x ← E x + √η (G ΔW + L ζ)
                        tmp.gemm(1.0, &tr.e, &states[si], 0.0);
                        if tr.g.ncols() > 0 && m > 0 {
                            tmp.gemm(tr.sqrt_eta, &tr.g, &dw_total.rows(0, tr.g.ncols()), 1.0);
                        }
                        tmp.gemm(tr.sqrt_eta, &tr.l, zeta, 1.0);
                        std::mem::swap(&mut states[si], tmp);
                    }
                    _ => {}
                }
            }
            // Divergence.
            for si in 0..ns {
                let bound2 = self.divergence_bound * self.divergence_bound;
                // ‖x‖² as the step's update pass summed it, where it did (the same sum).
                let stepped = match &work[si] {
                    Work::Discrete(ws) => ws.column_norms_sq(),
                    _ => None,
                };
                let cols = states[si].as_mut_slice().chunks_exact_mut(d.max(1));
                for (j, (c, live)) in cols.zip(alive[si].iter_mut()).enumerate() {
                    if !*live {
                        c.fill(0.0);
                        continue;
                    }
                    let n2 = match stepped {
                        Some(n) => n[j],
                        None => norm_sq(c),
                    };
                    if !n2.is_finite() || n2 > bound2 {
                        *live = false;
                        diverged[si] += 1;
                        first_div[si] = Some(first_div[si].map_or(k + 1, |v: usize| v.min(k + 1)));
                        c.fill(0.0);
                    }
                }
            }
            let t = (k + 1) as f64 * eta;
            let view = BlockView {
                first_path: first,
                states: &states,
                alive: &alive,
                landscape: f,
            };
            observer.on_step(&mut acc, k + 1, t, &view);
            if (k + 1) % self.save_every == 0 {
                observer.on_save(&mut acc, (k + 1) / self.save_every, t, &view);
            }
        }
        let clamps = work
            .iter()
            .map(|w| match w {
                Work::Euler(ws) => ws.clamps,
                _ => 0,
            })
            .collect();
        BlockResult {
            acc,
            diverged,
            first: first_div,
            clamps,
        }
    }
}
