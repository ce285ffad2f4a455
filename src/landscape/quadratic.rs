//! Quadratic landscape `f(x) = ½ xᵀ H x`, `∇f(x) = H x`, `∇²f = H` (symmetric `H`, any sign).
//!
//! Constructors:
//! * [`Quadratic::new`] — a given symmetric `H`;
//! * [`Quadratic::wishart`] — `H = A Aᵀ / (2d)` with `A ∈ ℝ^{d×2d}` standard Gaussian drawn from a
//!   ChaCha8 stream seeded with `seed` (Paper 1's test problem; PSD, spectrum ≈ Marchenko–Pastur
//!   on `[(1−1/√2)², (1+1/√2)²]`);
//! * [`Quadratic::from_spectrum`] — `H = Q diag(λ) Qᵀ` with `Q = I` or a Haar-random rotation from
//!   `seed`; negative `λ` give saddles.
//!
//! Batched queries are one matrix–matrix product `H X` per call ([`square_times`]).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::Landscape;
use crate::error::{Error, Result};
use crate::linalg::{quad_form, square_times, Matrix};

/// `f(x) = ½ xᵀ H x`.
#[derive(Debug, Clone)]
pub struct Quadratic {
    h: Matrix,
    label: String,
}

impl Quadratic {
    /// A quadratic with the given symmetric Hessian.
    ///
    /// ```
    /// use samsde::landscape::{Landscape, Quadratic};
    /// use samsde::linalg::Matrix;
    /// let q = Quadratic::new(Matrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, -0.5])).unwrap();
    /// assert_eq!(q.loss(&[2.0, 2.0]), 0.5 * (4.0 - 2.0));
    /// ```
    pub fn new(h: Matrix) -> Result<Self> {
        if h.nrows() != h.ncols() || h.nrows() == 0 {
            return Err(Error::Dimension {
                what: "landscape.hessian must be square".into(),
                expected: h.nrows(),
                got: h.ncols(),
            });
        }
        if !crate::linalg::all_finite(&h) {
            return Err(Error::config(
                "landscape.hessian",
                "non-finite entry",
                "must be finite",
            ));
        }
        let asym = (&h - h.transpose()).abs().max();
        if asym > 1e-12 * (1.0 + h.abs().max()) {
            return Err(Error::config(
                "landscape.hessian",
                format!("max |H - Hᵀ| = {asym:.3e}"),
                "must be symmetric",
            ));
        }
        let d = h.nrows();
        Ok(Self {
            h,
            label: format!("quadratic (d = {d}, given H)"),
        })
    }

    /// Paper 1's random quadratic `H = A Aᵀ/(2d)`, `A ∈ ℝ^{d×2d}` Gaussian from `seed`.
    pub fn wishart(d: usize, seed: u64) -> Result<Self> {
        if d == 0 {
            return Err(Error::config("landscape.hessian.dim", 0, "must be ≥ 1"));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Row-major fill so the matrix does not depend on nalgebra's storage order.
        let mut a = Matrix::zeros(d, 2 * d);
        for i in 0..d {
            for j in 0..2 * d {
                a[(i, j)] = StandardNormal.sample(&mut rng);
            }
        }
        let h = (&a * a.transpose()) / (2.0 * d as f64);
        let h = (&h + h.transpose()) * 0.5;
        Ok(Self {
            h,
            label: format!("quadratic (d = {d}, Wishart H = AAᵀ/2d, seed {seed})"),
        })
    }

    /// `H = Q diag(λ) Qᵀ`; `rotation_seed = None` gives `Q = I`.
    pub fn from_spectrum(eigenvalues: &[f64], rotation_seed: Option<u64>) -> Result<Self> {
        let d = eigenvalues.len();
        if d == 0 {
            return Err(Error::config(
                "landscape.hessian.eigenvalues",
                "[]",
                "must not be empty",
            ));
        }
        if let Some(v) = eigenvalues.iter().find(|v| !v.is_finite()) {
            return Err(Error::config(
                "landscape.hessian.eigenvalues",
                v,
                "must be finite",
            ));
        }
        let lambda = Matrix::from_diagonal(&nalgebra::DVector::from_column_slice(eigenvalues));
        let h = match rotation_seed {
            None => lambda,
            Some(seed) => {
                let q = haar_orthogonal(d, seed);
                let h = &q * lambda * q.transpose();
                (&h + h.transpose()) * 0.5
            }
        };
        Ok(Self {
            h,
            label: format!("quadratic (d = {d}, spectrum {eigenvalues:?})"),
        })
    }

    /// The Hessian `H`.
    pub fn h(&self) -> &Matrix {
        &self.h
    }
}

/// Haar-distributed orthogonal matrix: QR of a Gaussian matrix with the signs of `R`'s diagonal
/// fixed (Mezzadri 2007).
fn haar_orthogonal(d: usize, seed: u64) -> Matrix {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut g = Matrix::zeros(d, d);
    for i in 0..d {
        for j in 0..d {
            g[(i, j)] = StandardNormal.sample(&mut rng);
        }
    }
    let qr = g.qr();
    let (mut q, r) = (qr.q(), qr.r());
    for j in 0..d {
        if r[(j, j)] < 0.0 {
            q.column_mut(j).neg_mut();
        }
    }
    q
}

impl Landscape for Quadratic {
    fn dim(&self) -> usize {
        self.h.nrows()
    }
    fn loss(&self, x: &[f64]) -> f64 {
        0.5 * quad_form(&self.h, x)
    }
    fn grad_into(&self, x: &[f64], out: &mut [f64]) {
        self.hess_vec_into(x, x, out);
    }
    fn hess_vec_into(&self, _x: &[f64], v: &[f64], out: &mut [f64]) {
        let d = self.dim();
        out.fill(0.0);
        for (j, &vj) in v.iter().enumerate().take(d) {
            let col = &self.h.as_slice()[j * d..(j + 1) * d];
            for (o, &hij) in out.iter_mut().zip(col) {
                *o += hij * vj;
            }
        }
    }
    fn hessian(&self, _x: &[f64]) -> Matrix {
        self.h.clone()
    }
    fn describe(&self) -> String {
        self.label.clone()
    }
    fn loss_batch(&self, xs: &Matrix, out: &mut [f64]) {
        let d = self.dim();
        for (j, o) in out.iter_mut().enumerate().take(xs.ncols()) {
            *o = self.loss(&xs.as_slice()[j * d..(j + 1) * d]);
        }
    }
    fn grad_batch(&self, xs: &Matrix, out: &mut Matrix) {
        square_times(&self.h, xs, out);
    }
    fn hess_vec_batch(&self, _xs: &Matrix, vs: &Matrix, out: &mut Matrix) {
        square_times(&self.h, vs, out);
    }
    fn centred_quadratic(&self) -> Option<&Matrix> {
        Some(&self.h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landscape::fd;

    #[test]
    fn derivatives_match_finite_differences() {
        let x = [0.3, -1.2, 0.7, 2.0, -0.1];
        for q in [
            Quadratic::wishart(5, 3).unwrap(),
            Quadratic::from_spectrum(&[2.0, 1.0, -0.5, 0.1, -3.0], Some(9)).unwrap(),
        ] {
            assert!(fd::grad_error(&q, &x, 1e-5) < 1e-8, "{}", q.describe());
            assert!(fd::hess_error(&q, &x, 1e-5) < 1e-8, "{}", q.describe());
        }
    }

    #[test]
    fn spectrum_is_preserved_by_rotation() {
        let q = Quadratic::from_spectrum(&[3.0, -1.0, 0.5], Some(4)).unwrap();
        let mut e: Vec<f64> = nalgebra::SymmetricEigen::new(q.h().clone())
            .eigenvalues
            .iter()
            .copied()
            .collect();
        e.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for (a, b) in e.iter().zip([-1.0, 0.5, 3.0]) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn wishart_is_psd_and_value_stable() {
        let q = Quadratic::wishart(20, 1).unwrap();
        assert!(crate::linalg::min_eigenvalue(q.h()) > 0.0);
        // Pinned: catches an accidental change of the RNG stream or the construction.
        let q2 = Quadratic::wishart(20, 1).unwrap();
        assert_eq!(q.h(), q2.h());
    }

    #[test]
    fn batch_matches_pointwise() {
        let q = Quadratic::wishart(4, 2).unwrap();
        let xs = Matrix::from_fn(4, 3, |i, j| (i as f64) - 0.5 * j as f64);
        let mut out = Matrix::zeros(4, 3);
        q.grad_batch(&xs, &mut out);
        for j in 0..3 {
            let mut g = [0.0; 4];
            q.grad_into(&xs.as_slice()[4 * j..4 * j + 4], &mut g);
            for i in 0..4 {
                assert!((g[i] - out[(i, j)]).abs() < 1e-14);
            }
        }
    }

    #[test]
    fn rejects_asymmetric() {
        let h = Matrix::from_row_slice(2, 2, &[1.0, 2.0, 0.0, 1.0]);
        assert!(Quadratic::new(h).is_err());
    }
}
