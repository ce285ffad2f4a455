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
/// For `d ≤ 64` on processors with AVX-512F/VL this is a register-blocked kernel, `A` read
/// straight from its column-major storage (no packing): the rows are cut into segments of 8
/// (one 512-bit register) with a last segment of 1–4 rows in a 256-bit register (so `d = 20`
/// is 8 + 8 + 4 rows and no lane computes padding), and up to three segments × four columns
/// of accumulators are kept in registers while `k` runs over the columns of `A`. Each entry is
/// `Σ_k a_ik x_kj` in the order `k = 0, 1, …` with separate multiplies and adds — the same
/// rounding as the plain loop, which the tests check bit for bit. Otherwise it is nalgebra's
/// `gemm`.
pub fn square_times(a: &Matrix, x: &Matrix, out: &mut Matrix) {
    let d = a.nrows();
    assert!(
        a.ncols() == d && x.nrows() == d && out.shape() == x.shape(),
        "square_times: shapes"
    );
    #[cfg(target_arch = "x86_64")]
    {
        if d <= 64
            && d > 0
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            // SAFETY: AVX-512F/VL were detected; the slices have the asserted shapes.
            unsafe {
                avx512_product::square_times(a.as_slice(), d, x.as_slice(), out.as_mut_slice())
            };
            return;
        }
    }
    out.gemm(1.0, a, x, 0.0);
}

#[cfg(target_arch = "x86_64")]
mod avx512_product {
    //! The register-blocked `A X` of [`super::square_times`].
    use std::arch::x86_64::*;

    /// Rows `r0 ..` of `out[:, j .. j + C] = A x[:, j .. j + C]`: `Z` segments of 8 rows in
    /// 512-bit registers (the last one masked by `zmask`), then, when `Y`, one segment of
    /// ≤ 4 rows in a 256-bit register (masked by `ymask`).
    #[inline(always)]
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)] // [segment][column] tiles
    unsafe fn pass<const Z: usize, const Y: bool, const C: usize>(
        ap: *const f64,
        d: usize,
        xp: *const f64,
        op: *mut f64,
        r0: usize,
        j: usize,
        zmask: __mmask8,
        ymask: __mmask8,
    ) {
        let mut accz = [[_mm512_setzero_pd(); C]; Z];
        let mut accy = [_mm256_setzero_pd(); C];
        for k in 0..d {
            let col = ap.add(k * d + r0);
            let mut az = [_mm512_setzero_pd(); Z];
            for (s, a) in az.iter_mut().enumerate() {
                let m = if s + 1 == Z { zmask } else { 0xff };
                *a = _mm512_maskz_loadu_pd(m, col.add(8 * s));
            }
            let ay = if Y {
                _mm256_maskz_loadu_pd(ymask, col.add(8 * Z))
            } else {
                _mm256_setzero_pd()
            };
            for c in 0..C {
                let xv = *xp.add((j + c) * d + k);
                let xz = _mm512_set1_pd(xv);
                for s in 0..Z {
                    accz[s][c] = _mm512_add_pd(accz[s][c], _mm512_mul_pd(az[s], xz));
                }
                if Y {
                    let xy = _mm256_set1_pd(xv);
                    accy[c] = _mm256_add_pd(accy[c], _mm256_mul_pd(ay, xy));
                }
            }
        }
        for c in 0..C {
            let o = op.add((j + c) * d + r0);
            for s in 0..Z {
                let m = if s + 1 == Z { zmask } else { 0xff };
                _mm512_mask_storeu_pd(o.add(8 * s), m, accz[s][c]);
            }
            if Y {
                _mm256_mask_storeu_pd(o.add(8 * Z), ymask, accy[c]);
            }
        }
    }

    /// Every row segment of columns `j .. j + C`.
    #[inline(always)]
    unsafe fn columns<const C: usize>(
        ap: *const f64,
        d: usize,
        xp: *const f64,
        op: *mut f64,
        j: usize,
    ) {
        let full = d / 8;
        let rem = d % 8;
        // Segments: `full` of 8 rows, then a masked 512-bit one (5–7 rows) or a 256-bit one
        // (1–4 rows). Passes take up to three segments.
        let (zsegs, ytail) = match rem {
            0 => (full, 0),
            1..=4 => (full, rem),
            _ => (full + 1, 0),
        };
        let last_zmask: __mmask8 = if rem > 4 {
            ((1u16 << rem) - 1) as __mmask8
        } else {
            0xff
        };
        let ymask: __mmask8 = ((1u16 << ytail) - 1) as __mmask8;
        let mut s = 0;
        loop {
            let left = zsegs - s;
            let r0 = 8 * s;
            // The last pass takes the 256-bit tail with at most two 512-bit segments.
            let tail = ytail > 0 && left <= 2;
            let take = if tail { left } else { left.min(3) };
            let mask = if s + take == zsegs { last_zmask } else { 0xff };
            match (take, tail) {
                (3, false) => pass::<3, false, C>(ap, d, xp, op, r0, j, mask, 0),
                (2, false) => pass::<2, false, C>(ap, d, xp, op, r0, j, mask, 0),
                (1, false) => pass::<1, false, C>(ap, d, xp, op, r0, j, mask, 0),
                (2, true) => pass::<2, true, C>(ap, d, xp, op, r0, j, mask, ymask),
                (1, true) => pass::<1, true, C>(ap, d, xp, op, r0, j, mask, ymask),
                (0, true) => pass::<0, true, C>(ap, d, xp, op, r0, j, 0xff, ymask),
                _ => unreachable!("passes take 1–3 segments"),
            }
            s += take;
            if s >= zsegs && (tail || ytail == 0) {
                break;
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512vl")]
    pub(super) unsafe fn square_times(a: &[f64], d: usize, x: &[f64], out: &mut [f64]) {
        let p = x.len() / d;
        let (ap, xp, op) = (a.as_ptr(), x.as_ptr(), out.as_mut_ptr());
        let mut j = 0;
        while j + 4 <= p {
            columns::<4>(ap, d, xp, op, j);
            j += 4;
        }
        while j < p {
            columns::<1>(ap, d, xp, op, j);
            j += 1;
        }
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
        #[cfg(target_arch = "x86_64")]
        let kernel = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl");
        #[cfg(not(target_arch = "x86_64"))]
        let kernel = false;
        for d in [1, 3, 4, 5, 8, 9, 12, 13, 16, 20, 24, 25, 33, 64] {
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
                        if kernel {
                            assert_eq!(got.to_bits(), s.to_bits(), "d {d} p {p} ({i}, {j})");
                        } else {
                            // nalgebra's gemm (no AVX-512) may round differently: 1e-12 then
                            // (entries are O(10), sums of ≤ 64 products).
                            assert!((got - s).abs() < 1e-12, "d {d} p {p}");
                        }
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
