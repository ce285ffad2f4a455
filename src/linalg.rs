//! Linear-algebra helpers on `f64` with runtime dimensions.
//!
//! The one non-trivial routine is the symmetric square root with clamping: for a symmetric
//! `Σ = Q Λ Qᵀ` it returns `D = Q max(Λ, 0)^{1/2} Qᵀ`, so that `D Dᵀ = Σ` whenever `Σ ⪰ 0`,
//! and reports how many eigenvalues were clamped to zero (SPEC §3: `Σ_SAM` need not be PSD
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

/// `true` when every entry is finite.
pub fn all_finite(m: &Matrix) -> bool {
    m.iter().all(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

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
