//! Criterion benches of the ensemble hot loop on Paper 1's d = 20 Wishart quadratic with
//! isotropic additive noise (σ = 0.5): path-steps per second of one system at a time, on one
//! thread (a 1-thread rayon pool), 1024 paths in blocks of 256, 50 steps of η = 0.01.
//!
//! A *path-step* is one update of one path: one Euler–Maruyama step (`substeps = 1`), one
//! discrete step, or one exact OU transition, including its Brownian increments.
//!
//! A second group times the bulk normal generator alone (20 normals for each of 256 paths per
//! iteration, the Brownian increments of one block-step; the dispatched SIMD path and the
//! portable reference), a third the subsampled-SGD step of `sde-check bench`'s problem (e), a
//! fourth the `20 × 20 · 20 × 256` product (plain, and with problem (d)'s descent pass fused
//! into its stores) and the SAM table evaluation alone, a fifth problem (e)'s two kernels
//! (mini-batch draws and least-squares mini-batch gradients for a block of 256 paths).
//!
//! Run: `cargo bench --bench hot_loop` (figures recorded in BENCHMARKS.md).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use samsde::ensemble::normals::{BlockNormals, BlockWords};
use samsde::ensemble::{BlockView, Dynamics, Ensemble, Observer, Start, System};
use samsde::landscape::{FiniteSum, Quadratic};
use samsde::linalg::Vector;
use samsde::optim::{AlgorithmKind, Discrete};
use samsde::oracle::{AdditiveNoise, Oracle};
use samsde::sde::linear::LinearSde;
use samsde::sde::{ModelKind, SdeForm, SdeModel};

struct Null;
impl Observer for Null {
    type Acc = f64;
    fn new_acc(&self) -> f64 {
        0.0
    }
    fn on_save(&self, acc: &mut f64, _s: usize, _t: f64, v: &BlockView) {
        // Touch the state so the work cannot be optimised away.
        *acc += v.states[0][(0, 0)];
    }
    fn merge(&self, total: &mut f64, block: f64) {
        *total += block;
    }
}

fn bench(c: &mut Criterion) {
    let d = 20;
    let f = Quadratic::wishart(d, 1).unwrap();
    let oracle = Oracle::Additive(AdditiveNoise::isotropic(d, 0.5).unwrap());
    let (eta, rho, paths, steps) = (0.01, 0.1, 1024, 50);
    let start = Start::Point(Vector::from_element(d, 1.0));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let euler = |alg| Dynamics::Euler {
        model: SdeModel::new(
            ModelKind::own(alg),
            &f,
            &oracle,
            eta,
            rho,
            SdeForm::Auto,
            64,
        )
        .unwrap(),
        substeps: 1,
    };
    let cases: Vec<(&str, Dynamics)> = vec![
        ("usam_sde_euler", euler(AlgorithmKind::Usam)),
        (
            "usam_sde_exact_ou",
            Dynamics::ExactOu(
                LinearSde::of_model(ModelKind::own(AlgorithmKind::Usam), &f, &oracle, eta, rho)
                    .unwrap()
                    .transition(eta),
            ),
        ),
        ("sam_sde_euler", euler(AlgorithmKind::Sam)),
        ("dnsam_sde_euler", euler(AlgorithmKind::Dnsam)),
        (
            "usam_discrete",
            Dynamics::Discrete(Discrete {
                kind: AlgorithmKind::Usam,
                eta,
                rho,
            }),
        ),
    ];
    let mut group = c.benchmark_group("path_steps_d20");
    group.throughput(Throughput::Elements((paths * steps) as u64));
    group.sample_size(20);
    for (name, dynamics) in cases {
        let systems = [System {
            label: name.into(),
            dynamics,
        }];
        let ens = Ensemble {
            landscape: &f,
            oracle: &oracle,
            eta,
            steps,
            save_every: steps,
            systems: &systems,
            paths,
            block_size: 256,
            seed: 1,
            level: 0,
            start: &start,
            divergence_bound: 1e6,
        };
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| pool.install(|| ens.run(&Null, None).acc))
        });
    }
    group.finish();

    let streams: Vec<u64> = (0..256).collect();
    let mut normals = BlockNormals::new(1, &streams);
    let mut out = vec![0.0; 20 * 256];
    let mut group = c.benchmark_group("normals");
    group.throughput(Throughput::Elements(20 * 256));
    group.bench_function("block_20x256", |b| {
        b.iter(|| {
            normals.fill(&mut out, 20, 0.1);
            out[7]
        })
    });
    // The portable reference (what a processor without AVX2 runs; the same numbers).
    group.bench_function("block_20x256_portable", |b| {
        b.iter(|| {
            normals.fill_portable(&mut out, 20, 0.1);
            out[7]
        })
    });
    group.finish();

    let ls = samsde::bench::least_squares();
    let sub = Oracle::Subsampling(samsde::bench::subsampling());
    let systems = [System {
        label: "sgd_subsampling".into(),
        dynamics: Dynamics::Discrete(Discrete {
            kind: AlgorithmKind::Sgd,
            eta,
            rho,
        }),
    }];
    let ens = Ensemble {
        landscape: &ls,
        oracle: &sub,
        eta,
        steps,
        save_every: steps,
        systems: &systems,
        paths,
        block_size: 256,
        seed: 1,
        level: 0,
        start: &start,
        divergence_bound: 1e6,
    };
    let mut group = c.benchmark_group("path_steps_least_squares");
    group.throughput(Throughput::Elements((paths * steps) as u64));
    group.sample_size(20);
    group.bench_function("sgd_subsampling", |b| {
        b.iter(|| pool.install(|| ens.run(&Null, None).acc))
    });
    group.finish();

    // The two per-path kernels of closed-form SAM and the quadratic problems alone: one
    // `H X` product of a 20 × 256 block (throughput in columns) and 256 evaluations of the
    // tables φ, a, c at `r = ‖∇f‖/σ` values typical of the bench (0 to 3).
    let h = f.h().clone();
    let x = samsde::linalg::Matrix::from_fn(d, 256, |i, j| ((i + 3 * j) % 7) as f64 - 3.0);
    let mut y = samsde::linalg::Matrix::zeros(d, 256);
    let mut group = c.benchmark_group("kernels_d20");
    group.throughput(Throughput::Elements(256));
    group.bench_function("square_times_20x256", |b| {
        b.iter(|| {
            samsde::linalg::square_times(&h, &x, &mut y);
            y[(3, 7)]
        })
    });
    // The same product with discrete USAM's descent pass fused into its stores
    // (`y ← y + (−η)(H x + c w)`; problem (d)'s second product).
    let w = samsde::linalg::Matrix::from_fn(d, 256, |i, j| ((2 * i + j) % 5) as f64 - 2.0);
    group.bench_function("square_times_fused_descent_20x256", |b| {
        b.iter(|| {
            let fused = samsde::linalg::Fused::Descent {
                n: w.as_slice(),
                eta: 1e-3,
                c: Some(-0.5),
            };
            samsde::linalg::square_times_fused(&h, &x, &mut y, fused, &mut |_, _| {});
            y[(3, 7)]
        })
    });
    let tables = samsde::sde::model::shared_tables(d);
    let rs: Vec<f64> = (0..256).map(|j| 3.0 * j as f64 / 255.0).collect();
    group.bench_function("sam_tables_eval_256", |b| {
        b.iter(|| rs.iter().map(|&r| tables.eval(r).phi).sum::<f64>())
    });
    group.finish();

    // Problem (e)'s two kernels alone, for one block-step of 256 paths: the mini-batch draws
    // (B = 4 of N = 32 without replacement, from the paths' SIMD ChaCha8 word streams) and the
    // least-squares mini-batch gradients of the block.
    let sampling = samsde::bench::subsampling();
    let streams: Vec<u64> = (0..256).collect();
    let mut words = BlockWords::new(1, &streams);
    let mut batches = vec![0u32; 4 * 256];
    let mut group = c.benchmark_group("sgd_subsampling_kernels");
    group.throughput(Throughput::Elements(256));
    group.bench_function("draw_block_256", |b| {
        b.iter(|| {
            for (j, chunk) in batches.chunks_exact_mut(4).enumerate() {
                sampling.draw(&mut words.path(j), chunk);
            }
            batches[5]
        })
    });
    let xs: Vec<f64> = (0..d * 256).map(|k| (k as f64 * 0.1).sin()).collect();
    let mut grads = vec![0.0; d * 256];
    let mut tmp = vec![0.0; d];
    group.bench_function("batch_grad_block_256", |b| {
        b.iter(|| {
            ls.batch_grad_block(&batches, &xs, &mut grads, &mut tmp);
            grads[7]
        })
    });
    // The engine's current forms: the whole block's draws at once (`Subsampling::draw_block`:
    // eight paths per AVX-512 pass for B = 4 where the processor has it, else the scalar
    // fixed-B fast path) and the fused SGD step `x ← x − η g` with each column's ‖x‖² (the
    // AVX-512 kernel where the processor has one). The step moves the states a little each
    // iteration; at η = 1e-3 they stay of order one over criterion's iterations.
    group.bench_function("draw_block_fast_256", |b| {
        b.iter(|| {
            sampling.draw_block(&mut words, &mut batches);
            batches[5]
        })
    });
    let mut states = xs.clone();
    let mut norm2 = vec![0.0; 256];
    group.bench_function("sgd_step_block_256", |b| {
        b.iter(|| {
            ls.sgd_step_block(
                &batches,
                1e-3,
                &mut states,
                &mut grads,
                &mut tmp,
                &mut norm2,
            );
            states[7]
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
