//! Linear-algebra helpers on `f64` with runtime dimensions.
//!
//! The one non-trivial routine is the symmetric square root with clamping: for a symmetric
//! `Σ = Q Λ Qᵀ` it returns `D = Q max(Λ, 0)^{1/2} Qᵀ`, so that `D Dᵀ = Σ` whenever `Σ ⪰ 0`,
//! and reports how many eigenvalues were clamped to zero (docs/theory.md §3: `Σ_SAM` need not be PSD
//! for large `ρ`; clamps are counted and reported, never hidden).

use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Column vector of `f64`.
pub type Vector = DVector<f64>;
/// Matrix of `f64`.
pub type Matrix = DMatrix<f64>;

/// Result of a clamped symmetric square root.
#[derive(Debug, Clone)]
pub struct PsdSqrt {
    /// `D = Q max(Λ,0)^{1/2} Qᵀ`.
    pub root: Matrix,
    /// Number of eigenvalues below `-tol` that were clamped to zero.
    pub clamped: usize,
    /// Smallest eigenvalue of the input.
    pub min_eig: f64,
}

/// Symmetric square root with negative eigenvalues clamped to zero.
///
/// The input is symmetrised first (`(Σ + Σᵀ)/2`). Eigenvalues in `[-tol, 0)` with
/// `tol = 1e-12 · max|λ|` are rounding noise and are not counted as clamps.
pub fn psd_sqrt(sigma: &Matrix) -> PsdSqrt {
    let sym = (sigma + sigma.transpose()) * 0.5;
    let eig = SymmetricEigen::new(sym);
    let scale = eig.eigenvalues.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let tol = 1e-12 * scale.max(f64::MIN_POSITIVE);
    let mut clamped = 0;
    let mut min_eig = f64::INFINITY;
    let roots = eig.eigenvalues.map(|l| {
        min_eig = min_eig.min(l);
        if l < -tol {
            clamped += 1;
        }
        l.max(0.0).sqrt()
    });
    let q = &eig.eigenvectors;
    let root = q * Matrix::from_diagonal(&roots) * q.transpose();
    PsdSqrt {
        root,
        clamped,
        min_eig,
    }
}

/// Smallest eigenvalue of the symmetric part of `m`.
pub fn min_eigenvalue(m: &Matrix) -> f64 {
    let sym = (m + m.transpose()) * 0.5;
    SymmetricEigen::new(sym)
        .eigenvalues
        .iter()
        .fold(f64::INFINITY, |a, &b| a.min(b))
}

/// `y ← y + α x` entrywise (matrices of equal shape).
pub fn axpy(alpha: f64, x: &Matrix, y: &mut Matrix) {
    debug_assert_eq!(x.shape(), y.shape());
    for (yi, xi) in y.as_mut_slice().iter_mut().zip(x.as_slice()) {
        *yi += alpha * xi;
    }
}

/// `xᵀ H x` for a square `h` and a slice `x` (no allocation).
pub fn quad_form(h: &Matrix, x: &[f64]) -> f64 {
    let d = x.len();
    let mut s = 0.0;
    for (j, &xj) in x.iter().enumerate() {
        let col = &h.as_slice()[j * d..(j + 1) * d];
        s += xj * col.iter().zip(x).map(|(a, b)| a * b).sum::<f64>();
    }
    s
}

/// `out = A X` for a square `A` (`d × d`) and a block `X` (`d × P`), all column-major.
///
/// For `d ≤ 64` on processors with AVX-512F this is a register-blocked kernel (8 rows × 4
/// columns of accumulators, `A` read straight from its column-major storage, no packing)
/// that computes each entry as `Σ_k a_ik x_kj` in the order `k = 0, 1, …` with separate
/// multiplies and adds — the same rounding as the plain loop, which the tests check bit for
/// bit. Otherwise it is nalgebra's `gemm`.
pub fn square_times(a: &Matrix, x: &Matrix, out: &mut Matrix) {
    let d = a.nrows();
    assert!(
        a.ncols() == d && x.nrows() == d && out.shape() == x.shape(),
        "square_times: shapes"
    );
    #[cfg(target_arch = "x86_64")]
    {
        if d <= 64 && d > 0 && std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was detected; the slices have the asserted shapes.
            unsafe { square_times_avx512(a.as_slice(), d, x.as_slice(), out.as_mut_slice()) };
            return;
        }
    }
    out.gemm(1.0, a, x, 0.0);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn square_times_avx512(a: &[f64], d: usize, x: &[f64], out: &mut [f64]) {
    use std::arch::x86_64::*;
    let p = x.len() / d;
    let chunks = d.div_ceil(8);
    let tail = d - 8 * (chunks - 1);
    let mask_of = |rb: usize| -> __mmask8 {
        if rb + 1 == chunks {
            ((1u16 << tail) - 1) as __mmask8
        } else {
            0xff
        }
    };
    let ap = a.as_ptr();
    let xp = x.as_ptr();
    let op = out.as_mut_ptr();
    let mut j = 0;
    while j + 4 <= p {
        for rb in 0..chunks {
            let mask = mask_of(rb);
            let mut acc = [_mm512_setzero_pd(); 4];
            for k in 0..d {
                let col = _mm512_maskz_loadu_pd(mask, ap.add(k * d + rb * 8));
                for (c, acc_c) in acc.iter_mut().enumerate() {
                    let xv = _mm512_set1_pd(*xp.add((j + c) * d + k));
                    *acc_c = _mm512_add_pd(*acc_c, _mm512_mul_pd(col, xv));
                }
            }
            for (c, acc_c) in acc.iter().enumerate() {
                _mm512_mask_storeu_pd(op.add((j + c) * d + rb * 8), mask, *acc_c);
            }
        }
        j += 4;
    }
    while j < p {
        for rb in 0..chunks {
            let mask = mask_of(rb);
            let mut acc = _mm512_setzero_pd();
            for k in 0..d {
                let col = _mm512_maskz_loadu_pd(mask, ap.add(k * d + rb * 8));
                acc = _mm512_add_pd(acc, _mm512_mul_pd(col, _mm512_set1_pd(*xp.add(j * d + k))));
            }
            _mm512_mask_storeu_pd(op.add(j * d + rb * 8), mask, acc);
        }
        j += 1;
    }
}

/// `true` when every entry is finite.
pub fn all_finite(m: &Matrix) -> bool {
    m.iter().all(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel equals the plain loop `Σ_k a_ik x_kj` (k ascending) bit for bit, for sizes
    /// around the 8-row chunks and 4-column blocks.
    #[test]
    fn square_times_matches_plain_loop() {
        for d in [1, 3, 8, 9, 20, 33] {
            for p in [1, 4, 7, 13] {
                let a = Matrix::from_fn(d, d, |i, j| ((i * 7 + j * 3) % 11) as f64 * 0.37 - 1.1);
                let x = Matrix::from_fn(d, p, |i, j| ((i * 5 + j * 13) % 17) as f64 * 0.21 - 1.6);
                let mut out = Matrix::zeros(d, p);
                square_times(&a, &x, &mut out);
                for j in 0..p {
                    for i in 0..d {
                        let mut s = 0.0;
                        for k in 0..d {
                            s += a[(i, k)] * x[(k, j)];
                        }
                        let got = out[(i, j)];
                        // nalgebra's gemm (no AVX-512) may round differently: 1e-12 then.
                        assert!(got == s || (got - s).abs() < 1e-12, "d {d} p {p}");
                    }
                }
            }
        }
    }

    #[test]
    fn psd_sqrt_squares_back() {
        let a = Matrix::from_row_slice(3, 3, &[2.0, 0.5, 0.1, 0.5, 1.0, 0.2, 0.1, 0.2, 0.7]);
        let r = psd_sqrt(&a);
        assert_eq!(r.clamped, 0);
        let back = &r.root * &r.root.transpose();
        assert!((back - a).abs().max() < 1e-12);
    }

    #[test]
    fn psd_sqrt_counts_clamps() {
        let a = Matrix::from_diagonal(&Vector::from_vec(vec![1.0, -0.5, 4.0]));
        let r = psd_sqrt(&a);
        assert_eq!(r.clamped, 1);
        assert!((r.min_eig + 0.5).abs() < 1e-15);
        assert!((r.root[(2, 2)] - 2.0).abs() < 1e-14);
        assert!(r.root[(1, 1)].abs() < 1e-14);
    }
}
