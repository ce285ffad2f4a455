//! A binary-classification data set `(x_i, y_i)`, `x_i ∈ ℝ^d`, `y_i ∈ {−1, +1}`, shared by the
//! margin-based finite sums ([`super::SigmoidLoss`], [`super::LogisticRidge`]): each sample enters
//! its loss only through the margin `m_i(w) = y_i x_iᵀw`.
//!
//! Synthetic data from a seed: `x_i ~ N(0, I_d)`, a teacher `w⋆ ~ N(0, I_d)`, clean labels
//! `sign(x_iᵀw⋆)`, each flipped independently with probability `label_noise` (so that the data
//! are, for a positive noise level, typically not linearly separable).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Error, Result};
use crate::linalg::Matrix;

/// `n` labelled points in dimension `d` (features stored sample-major).
#[derive(Debug, Clone)]
pub struct Classification {
    x: Vec<f64>,
    y: Vec<f64>,
    sq_norms: Vec<f64>,
    d: usize,
}

impl Classification {
    /// From explicit data: `x` is `n` rows of length `d`, `y` has length `n` with entries `±1`.
    pub fn new(x: Vec<Vec<f64>>, y: Vec<f64>) -> Result<Self> {
        let n = x.len();
        if n == 0 {
            return Err(Error::config("landscape.n_samples", 0, "must be ≥ 1"));
        }
        let d = x[0].len();
        if d == 0 {
            return Err(Error::config("landscape.dim", 0, "must be ≥ 1"));
        }
        if y.len() != n {
            return Err(Error::Dimension {
                what: "landscape labels y".into(),
                expected: n,
                got: y.len(),
            });
        }
        let mut flat = Vec::with_capacity(n * d);
        for (i, row) in x.iter().enumerate() {
            if row.len() != d {
                return Err(Error::Dimension {
                    what: format!("landscape features x[{i}]"),
                    expected: d,
                    got: row.len(),
                });
            }
            if row.iter().any(|v| !v.is_finite()) {
                return Err(Error::config(
                    format!("landscape.x[{i}]"),
                    format!("{row:?}"),
                    "must be finite",
                ));
            }
            flat.extend_from_slice(row);
        }
        for (i, &v) in y.iter().enumerate() {
            if v != 1.0 && v != -1.0 {
                return Err(Error::config(
                    format!("landscape.y[{i}]"),
                    v,
                    "must be +1 or −1",
                ));
            }
        }
        Ok(Self::from_flat(flat, y, d))
    }

    fn from_flat(x: Vec<f64>, y: Vec<f64>, d: usize) -> Self {
        let sq_norms = x
            .chunks_exact(d)
            .map(|r| r.iter().map(|v| v * v).sum())
            .collect();
        Self { x, y, sq_norms, d }
    }

    /// Synthetic data from `seed` (see the module docs).
    pub fn synthetic(n: usize, d: usize, label_noise: f64, seed: u64) -> Result<Self> {
        if n == 0 {
            return Err(Error::config("landscape.n_samples", n, "must be ≥ 1"));
        }
        if d == 0 {
            return Err(Error::config("landscape.dim", d, "must be ≥ 1"));
        }
        if !(0.0..=0.5).contains(&label_noise) {
            return Err(Error::config(
                "landscape.label_noise",
                label_noise,
                "must be in [0, 0.5]",
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let teacher: Vec<f64> = (0..d).map(|_| StandardNormal.sample(&mut rng)).collect();
        let mut x = Vec::with_capacity(n * d);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let row: Vec<f64> = (0..d).map(|_| StandardNormal.sample(&mut rng)).collect();
            let score: f64 = row.iter().zip(&teacher).map(|(a, b)| a * b).sum();
            let clean = if score >= 0.0 { 1.0 } else { -1.0 };
            let flip = rng.random::<f64>() < label_noise;
            y.push(if flip { -clean } else { clean });
            x.extend_from_slice(&row);
        }
        Ok(Self::from_flat(x, y, d))
    }

    /// Number of samples `n`.
    pub fn n(&self) -> usize {
        self.y.len()
    }

    /// Dimension `d`.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// Features `x_i`.
    pub fn x(&self, i: usize) -> &[f64] {
        &self.x[i * self.d..(i + 1) * self.d]
    }

    /// `Σ_i c_i x_i x_iᵀ` added to `h` (the Hessian of a margin loss: `c_i` its curvature at
    /// the margin, divided by `n`), samples in index order.
    pub fn add_weighted_gram(&self, h: &mut Matrix, c: impl Fn(usize) -> f64) {
        let d = self.d;
        for i in 0..self.n() {
            let xi = self.x(i);
            let ci = c(i);
            for r in 0..d {
                for k in 0..d {
                    h[(r, k)] += ci * xi[r] * xi[k];
                }
            }
        }
    }

    /// Label `y_i ∈ {−1, +1}`.
    pub fn y(&self, i: usize) -> f64 {
        self.y[i]
    }

    /// Margin `m_i(w) = y_i x_iᵀw`.
    pub fn margin(&self, i: usize, w: &[f64]) -> f64 {
        self.y[i] * self.x(i).iter().zip(w).map(|(a, b)| a * b).sum::<f64>()
    }

    /// `‖x_i‖²`.
    pub fn sq_norm(&self, i: usize) -> f64 {
        self.sq_norms[i]
    }

    /// `max_i ‖x_i‖²`.
    pub fn max_sq_norm(&self) -> f64 {
        self.sq_norms.iter().cloned().fold(0.0, f64::max)
    }

    /// `(1/n) Σ_i ‖x_i‖²`.
    pub fn mean_sq_norm(&self) -> f64 {
        self.sq_norms.iter().sum::<f64>() / self.n() as f64
    }

    /// One pass over the data for a margin loss `f_i(w) = φ(m_i) (+ w-only terms)`, with
    /// `φ'(m_i)` given by `dphi`: returns `(Σ_i φ-part, V)` and writes
    /// `out = (1/n) Σ_i φ'(m_i) y_i x_i`, where `V = (1/n) Σ_i ‖g_i − ḡ‖²` is the per-sample
    /// gradient variance of the data part (`g_i = φ'(m_i) y_i x_i`, `ḡ` their mean), computed as
    /// `(1/n) Σ φ'(m_i)² ‖x_i‖² − ‖ḡ‖²` (clamped at 0 against rounding). `phi_and_dphi(m)`
    /// returns `(φ(m), φ'(m))`.
    pub(crate) fn margin_pass(
        &self,
        w: &[f64],
        out: &mut [f64],
        phi_and_dphi: impl Fn(f64) -> (f64, f64),
    ) -> (f64, f64) {
        out.fill(0.0);
        let (mut loss, mut sq) = (0.0, 0.0);
        for i in 0..self.n() {
            let xi = self.x(i);
            let m = self.y[i] * xi.iter().zip(w).map(|(a, b)| a * b).sum::<f64>();
            let (phi, dphi) = phi_and_dphi(m);
            loss += phi;
            let c = dphi * self.y[i];
            sq += c * c * self.sq_norms[i];
            for (o, a) in out.iter_mut().zip(xi) {
                *o += c * a;
            }
        }
        let inv = 1.0 / self.n() as f64;
        out.iter_mut().for_each(|o| *o *= inv);
        let gbar_sq: f64 = out.iter().map(|v| v * v).sum();
        (loss, (sq * inv - gbar_sq).max(0.0))
    }
}

/// Numerically stable logistic function `σ(z) = 1/(1 + e^{−z})`.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Numerically stable `softplus(z) = ln(1 + e^z)`.
pub fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_data_are_reproducible_and_labelled() {
        let a = Classification::synthetic(50, 4, 0.1, 3).unwrap();
        let b = Classification::synthetic(50, 4, 0.1, 3).unwrap();
        assert_eq!(a.x, b.x);
        assert_eq!(a.y, b.y);
        assert!(a.y.iter().all(|&v| v == 1.0 || v == -1.0));
        assert!((a.sq_norm(7) - a.x(7).iter().map(|v| v * v).sum::<f64>()).abs() < 1e-14);
        assert!(a.max_sq_norm() >= a.mean_sq_norm());
    }

    #[test]
    fn bad_inputs_name_the_field() {
        let e = Classification::synthetic(5, 2, 0.7, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("label_noise") && e.contains("0.7"), "{e}");
        let e = Classification::new(vec![vec![1.0]], vec![0.5])
            .unwrap_err()
            .to_string();
        assert!(e.contains("y[0]"), "{e}");
    }

    #[test]
    fn stable_scalar_functions() {
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-16);
        assert!((sigmoid(3.0) + sigmoid(-3.0) - 1.0).abs() < 1e-15);
        assert!(sigmoid(-800.0) >= 0.0 && sigmoid(800.0) <= 1.0);
        assert!((softplus(0.0) - 2f64.ln()).abs() < 1e-15);
        assert!((softplus(800.0) - 800.0).abs() < 1e-12);
        assert!(softplus(-800.0) >= 0.0 && softplus(-800.0) < 1e-300);
    }
}
