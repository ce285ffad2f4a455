//! The data of Paper 1's two network problems, as [`SigmoidNet`] landscapes.
//!
//! * **Breast-cancer classifier** — the Wisconsin Diagnostic Breast Cancer table (569 samples ×
//!   30 real features, 212 malignant / 357 benign; W. H. Wolberg, W. N. Street,
//!   O. L. Mangasarian, UCI Machine Learning Repository, CC BY 4.0), shipped in
//!   `data/breast_cancer_wisconsin_diagnostic.csv` (see `data/README.md` for its source,
//!   licence and attribution) and embedded at build time. Features are standardised (mean 0,
//!   population standard deviation 1 per column); labels are `y = +1` (malignant) and
//!   `y = −1` (benign). The objective is `(1/2N) Σ log(1 + e^{−ℓ_n y_n}) + λ‖x‖²` with biases.
//! * **Teacher–student** — `N` inputs `a_n ∈ ℝ^{n_in}` with entries `N(0, 1/n_in)`, targets from a
//!   random teacher `y_n = vᵀ act(U a_n)` (`U` entries `N(0, 1)`, `v` entries `N(0, 1/h_T)`,
//!   `act` sigmoid or identity), all from one seed; the student is a sigmoid network without
//!   biases and the objective `(1/N) Σ (ℓ_n − y_n)² + λ‖x‖²`.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::net::{NetLoss, SigmoidNet};
use crate::error::{Error, Result};
use crate::linalg::Matrix;

/// The embedded table: a header line `569,30,malignant,benign`, then 569 rows of 30 features
/// and the class (0 = malignant, 1 = benign).
const BREAST_CANCER_CSV: &str = include_str!("../../data/breast_cancer_wisconsin_diagnostic.csv");

/// The standardised breast-cancer features (`569 × 30`) and labels `±1` (+1 = malignant).
pub fn breast_cancer() -> Result<(Matrix, Vec<f64>)> {
    let bad = |line: usize, why: &str| {
        Error::Unsupported(format!(
            "embedded breast-cancer table, line {line}: {why} (the data file is corrupt)"
        ))
    };
    let mut lines = BREAST_CANCER_CSV.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| bad(1, "empty"))?
        .split(',')
        .collect();
    let n: usize = header[0]
        .trim()
        .parse()
        .map_err(|_| bad(1, "sample count"))?;
    let m: usize = header
        .get(1)
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| bad(1, "feature count"))?;
    let mut a = Matrix::zeros(n, m);
    let mut y = Vec::with_capacity(n);
    for (i, line) in lines.enumerate().take(n) {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != m + 1 {
            return Err(bad(i + 2, "wrong number of fields"));
        }
        for (j, f) in fields[..m].iter().enumerate() {
            a[(i, j)] = f.trim().parse().map_err(|_| bad(i + 2, "not a number"))?;
        }
        y.push(match fields[m].trim() {
            "0" => 1.0,
            "1" => -1.0,
            _ => return Err(bad(i + 2, "class must be 0 or 1")),
        });
    }
    if y.len() != n {
        return Err(bad(n + 1, "fewer rows than the header says"));
    }
    standardize(&mut a);
    Ok((a, y))
}

/// Centres every column and scales it to unit population standard deviation (constant
/// columns are only centred).
pub fn standardize(a: &mut Matrix) {
    let n = a.nrows() as f64;
    for mut c in a.column_iter_mut() {
        let mean = c.sum() / n;
        c.add_scalar_mut(-mean);
        let sd = (c.norm_squared() / n).sqrt();
        if sd > 0.0 {
            c /= sd;
        }
    }
}

/// Paper 1's breast-cancer classifier: `hidden` sigmoid units with biases, half-logistic loss,
/// weight decay `λ`.
pub fn breast_cancer_classifier(hidden: usize, weight_decay: f64) -> Result<SigmoidNet> {
    let (a, y) = breast_cancer()?;
    let (n, m) = a.shape();
    let label = format!(
        "2-layer sigmoid classifier on breast cancer (N = {n}, {m} standardised features, hidden {hidden}, λ = {weight_decay})"
    );
    SigmoidNet::new(
        a,
        y,
        hidden,
        true,
        NetLoss::HalfLogistic,
        weight_decay,
        label,
    )
}

/// The teacher's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeacherActivation {
    /// `s(z) = 1/(1 + e^{−z})`.
    Sigmoid,
    /// `z` (a linear teacher).
    Linear,
}

/// Paper 1's teacher–student regression (see module docs): `n_samples` inputs in `ℝ^{n_in}`,
/// a teacher with `teacher_hidden` units, a student with `hidden` sigmoid units and a linear
/// read-out, squared loss, weight decay `λ`; data and teacher from `seed`.
pub fn teacher_student(
    n_samples: usize,
    n_in: usize,
    teacher_hidden: usize,
    activation: TeacherActivation,
    hidden: usize,
    weight_decay: f64,
    seed: u64,
) -> Result<SigmoidNet> {
    if n_samples == 0 {
        return Err(Error::config("problem.n_samples", n_samples, "must be ≥ 1"));
    }
    if n_in == 0 {
        return Err(Error::config("problem.input_dim", n_in, "must be ≥ 1"));
    }
    if teacher_hidden == 0 {
        return Err(Error::config(
            "problem.teacher_hidden",
            teacher_hidden,
            "must be ≥ 1",
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut normal = move || -> f64 { StandardNormal.sample(&mut rng) };
    let sa = (1.0 / n_in as f64).sqrt();
    // Row-major fills so the data do not depend on nalgebra's storage order.
    let mut a = Matrix::zeros(n_samples, n_in);
    for i in 0..n_samples {
        for j in 0..n_in {
            a[(i, j)] = sa * normal();
        }
    }
    let mut u = Matrix::zeros(teacher_hidden, n_in);
    for i in 0..teacher_hidden {
        for j in 0..n_in {
            u[(i, j)] = normal();
        }
    }
    let sv = (1.0 / teacher_hidden as f64).sqrt();
    let v: Vec<f64> = (0..teacher_hidden).map(|_| sv * normal()).collect();
    let y: Vec<f64> = (0..n_samples)
        .map(|i| {
            (0..teacher_hidden)
                .map(|k| {
                    let z: f64 = (0..n_in).map(|j| u[(k, j)] * a[(i, j)]).sum();
                    v[k] * match activation {
                        TeacherActivation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
                        TeacherActivation::Linear => z,
                    }
                })
                .sum()
        })
        .collect();
    let act = match activation {
        TeacherActivation::Sigmoid => "sigmoid",
        TeacherActivation::Linear => "linear",
    };
    let label = format!(
        "teacher–student ({n_samples} inputs in ℝ^{n_in}, {act} teacher of {teacher_hidden}, student {hidden} sigmoid units, λ = {weight_decay}, seed {seed})"
    );
    SigmoidNet::new(a, y, hidden, false, NetLoss::Squared, weight_decay, label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landscape::Landscape;

    #[test]
    fn breast_cancer_table_is_complete_and_standardised() {
        let (a, y) = breast_cancer().unwrap();
        assert_eq!(a.shape(), (569, 30));
        assert_eq!(y.iter().filter(|&&v| v == 1.0).count(), 212);
        assert_eq!(y.iter().filter(|&&v| v == -1.0).count(), 357);
        for c in a.column_iter() {
            assert!(c.mean().abs() < 1e-12);
            assert!(((c.norm_squared() / 569.0).sqrt() - 1.0).abs() < 1e-12);
        }
        let net = breast_cancer_classifier(30, 0.05).unwrap();
        assert_eq!(net.dim(), 30 * 30 + 30 + 30 + 1);
    }

    #[test]
    fn teacher_student_is_seeded() {
        let a = teacher_student(10, 5, 100, TeacherActivation::Sigmoid, 100, 0.005, 3).unwrap();
        let b = teacher_student(10, 5, 100, TeacherActivation::Sigmoid, 100, 0.005, 3).unwrap();
        assert_eq!(a.dim(), 600);
        let x = a.init(1, 1.0);
        assert_eq!(a.loss(&x), b.loss(&x));
        let c = teacher_student(10, 5, 100, TeacherActivation::Linear, 100, 0.005, 3).unwrap();
        assert_ne!(a.loss(&x), c.loss(&x));
    }
}

#[cfg(test)]
mod curvature {
    use super::*;
    use crate::landscape::{fd, Landscape};

    /// The documented sizes behind the choice of the teacher–student setting (docs/theory.md,
    /// section 7): at the shipped start the largest Hessian eigenvalue is ≈ 50 (so η = 0.01 with
    /// ρ = 0.3 makes USAM unstable, η(λ + ρλ²) ≫ 2), and the derivatives of the full-size networks
    /// match finite differences.
    #[test]
    fn teacher_student_curvature_and_derivatives() {
        let net = teacher_student(10, 5, 100, TeacherActivation::Sigmoid, 100, 0.005, 1).unwrap();
        let x = net.init(2, 1.0);
        let lmax = nalgebra::SymmetricEigen::new(net.hessian(&x))
            .eigenvalues
            .max();
        println!("teacher–student λ_max = {lmax}");
        assert!((35.0..70.0).contains(&lmax), "λ_max = {lmax}");
        assert!(0.01 * (lmax + 0.3 * lmax * lmax) > 2.0);
        // Central differences with step 1e-5: truncation O(1e-10), rounding O(1e-11); the
        // bound 1e-6 is relative to 1 + |entry|.
        assert!(fd::grad_error(&net, &x, 1e-5) < 1e-6);
    }

    #[test]
    fn classifier_gradient_matches_finite_differences() {
        let net = breast_cancer_classifier(30, 0.05).unwrap();
        let x = net.init(1, 1.0);
        let mut g = vec![0.0; net.dim()];
        net.grad_into(&x, &mut g);
        println!(
            "classifier at the shipped start: ‖x‖ = {:.3}, ‖∇f‖ = {:.3}",
            x.iter().map(|v| v * v).sum::<f64>().sqrt(),
            g.iter().map(|v| v * v).sum::<f64>().sqrt()
        );
        // Same tolerance argument as above; 961 coordinates.
        assert!(fd::grad_error(&net, &x, 1e-5) < 1e-6);
    }
}

#[cfg(test)]
mod cost {
    use super::*;
    use crate::landscape::Landscape;
    use std::time::Instant;

    /// Timing of the batched passes on the real classifier (not an assertion):
    /// `cargo test --release --lib landscape::datasets::cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn classifier_pass_timings() {
        let net = breast_cancer_classifier(30, 0.05).unwrap();
        let d = net.dim();
        for p in [1usize, 8, 16, 32] {
            let x0 = net.init(1, 1.0);
            let xs = Matrix::from_fn(d, p, |i, _| x0[i]);
            let mut xs2 = xs.clone();
            xs2[(0, 0)] += 1e-3;
            let vs = Matrix::from_fn(d, p, |i, j| ((i + j) as f64).sin());
            let mut out = Matrix::zeros(d, p);
            let reps = 200 / p.max(1) + 6;
            let per = |t: Instant| t.elapsed().as_secs_f64() / (reps * p) as f64 * 1e6;
            // Alternate two states so every call does its own forward pass.
            let t = Instant::now();
            for i in 0..reps {
                net.grad_batch(if i % 2 == 0 { &xs } else { &xs2 }, &mut out);
            }
            let tg = per(t);
            let t = Instant::now();
            for i in 0..reps {
                net.hess_vec_batch(if i % 2 == 0 { &xs } else { &xs2 }, &vs, &mut out);
            }
            let th = per(t);
            // What one SAM-SDE sub-step asks of the landscape: ∇f, H∇f and HΔW at one state
            // (the forward pass is computed once and reused).
            let mut g = Matrix::zeros(d, p);
            let t = Instant::now();
            for i in 0..reps {
                let x = if i % 2 == 0 { &xs } else { &xs2 };
                net.grad_batch(x, &mut g);
                net.hess_vec_batch(x, &g, &mut out);
                net.hess_vec_batch(x, &vs, &mut out);
            }
            let ts = per(t);
            println!(
                "P = {p:3}: grad {tg:.1} µs/path, HVP {th:.1} µs/path, grad + 2 HVP at one state {ts:.1} µs/path"
            );
        }
    }
}
