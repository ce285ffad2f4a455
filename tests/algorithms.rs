//! The discrete algorithms' batched step against the formulas of docs/theory.md §2, written out by hand
//! for one path, with additive noise and with real mini-batches.
//!
//! Run: `cargo test --release --test algorithms`.

use samsde::landscape::{FiniteSum, Landscape, LeastSquares, Quadratic};
use samsde::linalg::{Matrix, Vector};
use samsde::optim::moments::LinearRecursion;
use samsde::optim::{AlgorithmKind, Discrete, DiscreteWorkspace, StepNoise};
use samsde::oracle::{AdditiveNoise, Oracle, Subsampling};

fn step(
    alg: AlgorithmKind,
    f: &dyn Landscape,
    oracle: &Oracle,
    x: &Matrix,
    noise: &StepNoise,
    eta: f64,
    rho: f64,
) -> Matrix {
    let mut x = x.clone();
    let mut ws = DiscreteWorkspace::new(f.dim(), x.ncols());
    Discrete {
        kind: alg,
        eta,
        rho,
    }
    .step(f, oracle, &mut x, noise, &mut ws);
    x
}

#[test]
fn additive_noise_steps_match_the_formulas() {
    let f = Quadratic::wishart(4, 7).unwrap();
    let h = f.h().clone();
    let oracle = Oracle::Additive(AdditiveNoise::isotropic(4, 0.3).unwrap());
    let (eta, rho) = (0.05, 0.2);
    let x = Matrix::from_column_slice(4, 2, &[0.5, -0.1, 0.3, 0.9, -1.0, 0.2, 0.0, 0.4]);
    let z = Matrix::from_column_slice(4, 2, &[0.1, 0.2, -0.3, 0.05, -0.2, 0.1, 0.3, -0.1]);
    let noise = StepNoise {
        z: Some(&z),
        ..Default::default()
    };
    for alg in AlgorithmKind::ALL {
        let got = step(alg, &f, &oracle, &x, &noise, eta, rho);
        for j in 0..2 {
            let (xj, zj) = (x.column(j).into_owned(), z.column(j).into_owned());
            let gz = &h * &xj + &zj; // ∇f_γ(x)
            let y = match alg {
                AlgorithmKind::Sgd => xj.clone(),
                AlgorithmKind::Usam => &xj + rho * &gz,
                AlgorithmKind::Sam => &xj + (rho / gz.norm()) * &gz,
                AlgorithmKind::Dnsam => &xj + (rho / (&h * &xj).norm()) * &gz,
                AlgorithmKind::Musam => unreachable!("not in ALL"),
            };
            let want: Vector = &xj - eta * (&h * y + &zj);
            // 1e-12: the hand formula and the batched step round differently (divisions by ‖∇f‖).
            assert!(
                (got.column(j) - &want).norm() < 1e-12,
                "{alg}: {} vs {}",
                got.column(j),
                want
            );
        }
    }
    // SGD and USAM are the linear recursion x ← A x − B ξ with Z = S ξ = −B ξ / η.
    for alg in [AlgorithmKind::Sgd, AlgorithmKind::Usam] {
        let rec = LinearRecursion::of(alg, &f, &oracle, eta, rho).unwrap();
        let got = step(alg, &f, &oracle, &x, &noise, eta, rho);
        let xi = &z / 0.3;
        let want = &rec.a * &x - &rec.b * xi;
        assert!((got - want).abs().max() < 1e-14, "{alg}");
    }
}

#[test]
fn subsampled_steps_use_the_same_batch_at_both_points() {
    let f = LeastSquares::synthetic(10, 3, 0.3, 2).unwrap();
    let s = Subsampling {
        batch: 3,
        replacement: false,
        n: 10,
    };
    let oracle = Oracle::Subsampling(s);
    let (eta, rho) = (0.1, 0.3);
    let x = Matrix::from_column_slice(3, 1, &[0.4, -0.2, 0.7]);
    let batch = [1u32, 4, 8];
    let noise = StepNoise {
        batches: Some(&batch),
        ..Default::default()
    };
    let grad_b = |p: &Vector| -> Vector {
        let mut g = Vector::zeros(3);
        let mut gi = [0.0; 3];
        for &i in &batch {
            f.sample_grad_into(i as usize, p.as_slice(), &mut gi);
            g += Vector::from_column_slice(&gi) / 3.0;
        }
        g
    };
    let xj = x.column(0).into_owned();
    let mut full = [0.0; 3];
    f.grad_into(xj.as_slice(), &mut full);
    let full = Vector::from_column_slice(&full);
    for alg in AlgorithmKind::ALL {
        let got = step(alg, &f, &oracle, &x, &noise, eta, rho);
        let g = grad_b(&xj);
        let y = match alg {
            AlgorithmKind::Sgd => xj.clone(),
            AlgorithmKind::Usam => &xj + rho * &g,
            AlgorithmKind::Sam => &xj + (rho / g.norm()) * &g,
            AlgorithmKind::Dnsam => &xj + (rho / full.norm()) * &g,
            AlgorithmKind::Musam => unreachable!("not in ALL"),
        };
        let want = &xj - eta * grad_b(&y);
        assert!((got.column(0) - want).norm() < 1e-12, "{alg}");
    }
}

/// A zero gradient gives a zero perturbation (norm guard), not NaN.
#[test]
fn norm_guard_at_a_critical_point() {
    let f = Quadratic::wishart(3, 1).unwrap();
    let x = Matrix::zeros(3, 1);
    for alg in AlgorithmKind::ALL {
        let got = step(
            alg,
            &f,
            &Oracle::FullBatch,
            &x,
            &StepNoise::default(),
            0.1,
            0.5,
        );
        assert!(got.iter().all(|v| *v == 0.0), "{alg}: {got}");
    }
}

/// SGD and USAM given the noise as `(c, W)` (the engine's isotropic case) give the bits of
/// the same step given `Z = c W` formed, and report `‖x_j‖²` as `norm_sq` sums it.
#[test]
fn scaled_noise_gives_the_formed_noise_bits() {
    let (d, p) = (7, 13); // d not a multiple of 4: the norms' remainder path too
    let f = Quadratic::wishart(d, 3).unwrap();
    let oracle = Oracle::Additive(AdditiveNoise::isotropic(d, 0.4).unwrap());
    let x = Matrix::from_fn(d, p, |i, j| ((3 * i + 5 * j) % 11) as f64 * 0.1 - 0.5);
    let w = Matrix::from_fn(d, p, |i, j| ((7 * i + 2 * j) % 13) as f64 * 0.03 - 0.2);
    let c = -0.4 / 0.05f64.sqrt();
    let z = w.map(|v| c * v);
    for kind in [AlgorithmKind::Sgd, AlgorithmKind::Usam] {
        let alg = Discrete {
            kind,
            eta: 0.05,
            rho: 0.1,
        };
        let (mut xa, mut xb) = (x.clone(), x.clone());
        let mut wa = DiscreteWorkspace::new(d, p);
        let mut wb = DiscreteWorkspace::new(d, p);
        let formed = StepNoise {
            z: Some(&z),
            ..Default::default()
        };
        let scaled = StepNoise {
            z_scaled: Some((c, &w)),
            ..Default::default()
        };
        alg.step(&f, &oracle, &mut xa, &formed, &mut wa);
        alg.step(&f, &oracle, &mut xb, &scaled, &mut wb);
        for (a, b) in xa.iter().zip(xb.iter()) {
            assert_eq!(a.to_bits(), b.to_bits(), "{kind:?}");
        }
        let norms = wb
            .column_norms_sq()
            .expect("the additive step sums the norms");
        for (j, n2) in norms.iter().enumerate() {
            assert_eq!(
                n2.to_bits(),
                samsde::optim::norm_sq(xb.column(j).as_slice()).to_bits()
            );
        }
    }
}

/// The additive-noise step on a quadratic, with its passes fused into the product kernel's
/// stores (`linalg::square_times_fused`), against the step written out by hand for each
/// column: `g = H x` summed `k = 0, 1, …` with separate multiplies and adds (the kernel's
/// documented order), `y = x + ρ(g + z)`, `x ← x + (−η)(H y + z)`, `z = c w` or `z` formed.
/// Bit for bit where the AVX-512 kernel runs; elsewhere the product is nalgebra's `gemm`
/// (another summation order), so then within 1e-12 (entries O(1), sums of ≤ 33 products).
/// Shapes around the kernel's 8-row segments, 4-column groups and 16-column tiles.
#[test]
fn fused_additive_step_matches_the_step_by_hand() {
    #[cfg(target_arch = "x86_64")]
    let exact = std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl");
    #[cfg(not(target_arch = "x86_64"))]
    let exact = false;
    let (eta, rho, c) = (0.05, 0.2, -1.3);
    for d in [1, 3, 4, 5, 7, 8, 12, 13, 20, 24, 33] {
        let f = Quadratic::wishart(d, 5).unwrap();
        let h = f.h().clone();
        let oracle = Oracle::Additive(AdditiveNoise::isotropic(d, 0.3).unwrap());
        for p in [1, 5, 16, 21] {
            let x = Matrix::from_fn(d, p, |i, j| ((3 * i + 5 * j) % 11) as f64 * 0.1 - 0.5);
            let w = Matrix::from_fn(d, p, |i, j| ((7 * i + 2 * j) % 13) as f64 * 0.03 - 0.2);
            let z = w.map(|v| c * v);
            let prod = |m: &Matrix, i: usize, j: usize| {
                let mut s = 0.0;
                for k in 0..d {
                    s += h[(i, k)] * m[(k, j)];
                }
                s
            };
            for kind in [AlgorithmKind::Sgd, AlgorithmKind::Usam] {
                let mut y = x.clone();
                if kind == AlgorithmKind::Usam {
                    y = Matrix::from_fn(d, p, |i, j| {
                        x[(i, j)] + rho * (prod(&x, i, j) + z[(i, j)])
                    });
                }
                let want =
                    Matrix::from_fn(d, p, |i, j| x[(i, j)] + -eta * (prod(&y, i, j) + z[(i, j)]));
                for noise in [
                    StepNoise {
                        z: Some(&z),
                        ..Default::default()
                    },
                    StepNoise {
                        z_scaled: Some((c, &w)),
                        ..Default::default()
                    },
                ] {
                    let mut got = x.clone();
                    let mut ws = DiscreteWorkspace::new(d, p);
                    let alg = Discrete { kind, eta, rho };
                    alg.step(&f, &oracle, &mut got, &noise, &mut ws);
                    let norms = ws
                        .column_norms_sq()
                        .expect("the additive step sums the norms");
                    for j in 0..p {
                        for i in 0..d {
                            let (a, b) = (got[(i, j)], want[(i, j)]);
                            if exact {
                                assert_eq!(a.to_bits(), b.to_bits(), "{kind:?} d {d} p {p}");
                            } else {
                                assert!((a - b).abs() < 1e-12, "{kind:?} d {d} p {p}");
                            }
                        }
                        let n2 = samsde::optim::norm_sq(got.column(j).as_slice());
                        assert_eq!(norms[j].to_bits(), n2.to_bits(), "norm d {d} p {p}");
                    }
                }
            }
        }
    }
}
