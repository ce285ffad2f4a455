//! The m-sharpness study: exact stationary laws of m-USAM and its SDE against the micro-batch
//! size, and configuration errors that name the field.
//!
//! Run: `cargo test --release --test msharpness`.

use samsde::landscape::LeastSquares;
use samsde::linalg::{Matrix, Vector};
use samsde::optim::batch_law::{AffineFiniteSum, BatchLaw, BatchShape};
use samsde::optim::batch_moments::{DiscreteMoments, MomentState};
use samsde::sde::musam::affine_sde;
use samsde::study::msharpness::{MSharpnessStudy, DEFAULT_CONFIG};
use samsde::study::setup::parse_toml;

fn study(text: &str) -> samsde::Result<MSharpnessStudy> {
    MSharpnessStudy::new(parse_toml(text)?)
}

/// The default: m = 1, 2, 4, 8, 16; the penalty grows as m shrinks (31× from m = 16 to 1, the
/// ratio of the finite-population factors), the stationary mean moves away from x* and the
/// stationary loss rises, in the discrete algorithm and in the SDE alike; SGD has no shift.
#[test]
fn default_study_shows_m_sharpness_through_the_sde() {
    let r = study(DEFAULT_CONFIG).unwrap().run(1).unwrap();
    let ms: Vec<usize> = r.rows.iter().map(|x| x.m).collect();
    assert_eq!(ms, [1, 2, 4, 8, 16]);
    for w in r.rows.windows(2) {
        assert!(w[0].penalty_at_minimizer > w[1].penalty_at_minimizer);
        assert!(w[0].mean_shift > w[1].mean_shift);
        assert!(w[0].loss_discrete > w[1].loss_discrete && w[0].loss_sde > w[1].loss_sde);
    }
    let (n, b) = (32.0, 16.0);
    let c = |m: f64| (n - m) / (m * (n - 1.0));
    let ratio = r.rows[0].penalty_at_minimizer / r.rows[4].penalty_at_minimizer;
    assert!((ratio - c(1.0) / c(b)).abs() < 1e-12 * ratio);
    assert!(
        r.sgd.mean_shift < 1e-12,
        "SGD's stationary mean is the minimizer"
    );
    assert!(r.rows[4].loss_discrete > r.sgd.loss_discrete);
    assert!(r.verdicts.iter().all(|v| v.passed()), "{:?}", r.verdicts);
}

/// The stationary laws are the limits of the time evolutions: the moment recursion iterated
/// 4 000 steps and the moment ODE at t = 200 (both from x₀ = 0) reach the fixed points
/// (contraction ≈ (1 − η λ_min)^k with λ_min ≈ 0.5: far below 1e-12).
#[test]
fn stationary_laws_are_the_long_run_limits() {
    let f = LeastSquares::synthetic(16, 3, 0.5, 2).unwrap();
    let fs = AffineFiniteSum::from_landscape(&f).unwrap();
    let law = BatchLaw::new(
        &fs,
        BatchShape {
            n: 16,
            batch: 8,
            micro: 2,
            replacement: false,
        },
    )
    .unwrap();
    let (eta, rho) = (0.05, 0.2);
    let s0 = MomentState::new(&Vector::zeros(3), &Matrix::zeros(3, 3));
    let rec = DiscreteMoments::new(&law, eta, rho);
    let long = rec.moments(&s0, 4000, 4000).pop().unwrap();
    let stat = rec.stationary().unwrap();
    assert!((&long.s - &stat.s).amax() < 1e-12 * stat.s.amax());
    let sde = affine_sde(&law, eta, rho, false);
    let long = sde.moments(&s0, 200.0, 1).pop().unwrap();
    let stat_sde = sde.stationary().unwrap();
    assert!((&long.s - &stat_sde.s).amax() < 1e-10 * stat_sde.s.amax());
    // Both stationary means solve E[A] m = E[u]: equal up to rounding.
    assert!((stat.mean() - stat_sde.mean()).amax() < 1e-12);
}

#[test]
fn configuration_errors_name_the_field() {
    let bad = [
        (
            DEFAULT_CONFIG.replace(
                "# micro_batches = [1, 2, 4, 8, 16]",
                "micro_batches = [1, 3]",
            ),
            "micro_batches[1]",
        ),
        (DEFAULT_CONFIG.replace("rho = 0.2", "rho = -0.1"), "rho"),
        (DEFAULT_CONFIG.replace("eta = 0.05", "eta = 0"), "eta"),
        (
            DEFAULT_CONFIG.replace(
                "kind = \"subsampling\"\nbatch = 16\nreplacement = false",
                "kind = \"full_batch\"",
            ),
            "oracle.kind",
        ),
        (
            DEFAULT_CONFIG.replace("batch = 16", "batch = 40"),
            "oracle.batch",
        ),
    ];
    for (text, field) in bad {
        let e = study(&text).err().expect("must be rejected").to_string();
        assert!(e.starts_with(field), "{field}: {e}");
    }
}

/// A step size (or radius) without a stationary law: the run fails naming the field(s), the
/// value and the row, with the blown-up spectral radius in scientific notation, not as the
/// 40-digit number `{:.4}` prints.
#[test]
fn unstable_step_size_is_named_with_readable_numbers() {
    for (from, to, field, row) in [
        ("eta = 0.05", "eta = 1e20", "eta ", "SGD"),
        ("eta = 0.05", "eta = 50.0", "eta ", "SGD"),
        ("rho = 0.2", "rho = 300.0", "eta and rho ", "m = 1"),
    ] {
        let s = study(&DEFAULT_CONFIG.replace(from, to)).expect("valid until it runs");
        let e = s.run(1).expect_err("no stationary law").to_string();
        assert!(e.starts_with(field), "{to}: {e}");
        assert!(
            e.contains(row) && e.contains("spectral radius"),
            "{to}: {e}"
        );
        let longest_digits = e
            .split(|c: char| !c.is_ascii_digit())
            .map(str::len)
            .max()
            .unwrap_or(0);
        assert!(
            longest_digits <= 8,
            "{to}: a number spelled out at length in {e}"
        );
    }
}
