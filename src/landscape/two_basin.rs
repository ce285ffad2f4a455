//! A smooth landscape with a **sharp** and a **flat** basin of (numerically) equal depth
//! (SPEC §5): the soft minimum of two isotropic quadratic wells,
//!
//! ```text
//! q_f(x) = ½ a_f ‖x − c_f‖²,   q_s(x) = ½ a_s ‖x − c_s‖²,   c_f = +c e₀,  c_s = −c e₀,
//! f(x)   = −τ log( e^{−q_f/τ} + e^{−q_s/τ} ),           a_s = κ a_f  (κ ≥ 1, default 10).
//! ```
//!
//! With the soft-max weights `w_i = e^{−q_i/τ} / Σ_j e^{−q_j/τ}` and `g_i = ∇q_i = a_i (x − c_i)`:
//!
//! ```text
//! ∇f  = w_f g_f + w_s g_s
//! ∇²f = (w_f a_f + w_s a_s) I − (w_f w_s / τ) δ δᵀ,   δ = g_f − g_s
//! ```
//!
//! (from `∇w_i = −(w_i/τ)(g_i − ∇f)`). The basin coordinate is `x₀`; every other coordinate is
//! a transverse direction with the basin's curvature, so near `c_s` the Hessian is `a_s I` (sharp
//! in every direction) and near `c_f` it is `a_f I` (flat in every direction). `d = 1`, `2` or
//! any `d`.
//!
//! **Why this form.** Both wells have minimum value 0, so the two minima have equal depth up to
//! the soft-min correction `f(c_i) = −τ log(1 + e^{−q_j(c_i)/τ})`, at most
//! `τ e^{−2 a_f c²/τ}` ([`TwoBasin::depth_mismatch`], e.g. `8e-5` for `a_f = 1`,
//! `c = 1`, `τ = 0.25`); the validated constructor rejects parameters where it exceeds `1e-3` of
//! the barrier. `τ` smooths the ridge `q_f = q_s` (a kink at `τ = 0`) so that the Hessian —
//! needed by every SAM-family SDE — stays bounded (`≤ a_s + ‖δ‖²/(4τ)`). A path is *in the flat
//! basin* iff `q_f(x) < q_s(x)` ([`TwoBasin::basin`]).
//!
//! **Barrier.** On the axis the ridge is at `x₀* = c (√a_f − √a_s)/(√a_f + √a_s)`, where both
//! wells equal `ΔF = 2 a_f a_s c² / (√a_f + √a_s)²`; the soft minimum lowers it by at most
//! `τ log 2`. Both basins have the same barrier height (equal depths, one ridge), so for SGD
//! (temperature `ησ²/2`) the basins differ only in curvature: Kramers prefactors and basin
//! volumes, which is what the flatness study measures against the SAM variants.

use super::Landscape;
use crate::error::{Error, Result};
use crate::linalg::Matrix;

/// Which basin a point belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basin {
    /// The flat basin (`q_f < q_s`), minimum at `+c e₀`, curvature `a_f`.
    Flat,
    /// The sharp basin, minimum at `−c e₀`, curvature `a_s`.
    Sharp,
}

/// `f = −τ log(e^{−q_f/τ} + e^{−q_s/τ})` (see the module docs).
#[derive(Debug, Clone)]
pub struct TwoBasin {
    dim: usize,
    a_flat: f64,
    a_sharp: f64,
    c: f64,
    tau: f64,
}

impl TwoBasin {
    /// Builds and validates: `dim ≥ 1`, `a_flat > 0`, `kappa = a_sharp/a_flat ≥ 1`,
    /// `separation = c > 0`, `tau > 0`, depth mismatch ≤ `1e-3 ΔF`.
    ///
    /// ```
    /// use samsde::landscape::{Landscape, TwoBasin};
    /// let f = TwoBasin::new(2, 1.0, 10.0, 1.0, 0.1).unwrap();
    /// assert!(f.loss(&[1.0, 0.0]).abs() < 1e-9 && f.loss(&[-1.0, 0.0]).abs() < 1e-9);
    /// ```
    pub fn new(dim: usize, a_flat: f64, kappa: f64, separation: f64, tau: f64) -> Result<Self> {
        if dim == 0 {
            return Err(Error::config("landscape.dim", dim, "must be ≥ 1"));
        }
        let pos = |field: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(Error::config(field, v, "must be finite and > 0"))
            }
        };
        pos("landscape.a_flat", a_flat)?;
        pos("landscape.separation", separation)?;
        pos("landscape.tau", tau)?;
        if !(kappa.is_finite() && kappa >= 1.0) {
            return Err(Error::config(
                "landscape.kappa",
                kappa,
                "must be finite and ≥ 1 (a_sharp = kappa · a_flat)",
            ));
        }
        let f = Self {
            dim,
            a_flat,
            a_sharp: kappa * a_flat,
            c: separation,
            tau,
        };
        if f.depth_mismatch() > 1e-3 * f.barrier() {
            return Err(Error::config(
                "landscape.tau",
                tau,
                format!(
                    "too large: the basin depths differ by {:.2e} (> 1e-3 of the barrier {:.3}); lower tau or raise separation",
                    f.depth_mismatch(),
                    f.barrier()
                ),
            ));
        }
        Ok(f)
    }

    /// Curvature of the flat basin `a_f`.
    pub fn a_flat(&self) -> f64 {
        self.a_flat
    }
    /// Curvature of the sharp basin `a_s`.
    pub fn a_sharp(&self) -> f64 {
        self.a_sharp
    }
    /// Half-separation `c`.
    pub fn separation(&self) -> f64 {
        self.c
    }
    /// Smoothing temperature `τ`.
    pub fn tau(&self) -> f64 {
        self.tau
    }
    /// Minimum of basin `b` (`±c e₀`).
    pub fn centre(&self, b: Basin) -> Vec<f64> {
        let mut v = vec![0.0; self.dim];
        v[0] = match b {
            Basin::Flat => self.c,
            Basin::Sharp => -self.c,
        };
        v
    }
    /// Ridge position on the axis, `x₀* = c (√a_f − √a_s)/(√a_f + √a_s)`.
    pub fn ridge(&self) -> f64 {
        let (sf, ss) = (self.a_flat.sqrt(), self.a_sharp.sqrt());
        self.c * (sf - ss) / (sf + ss)
    }
    /// Barrier height of the two wells at the ridge, `ΔF = 2 a_f a_s c²/(√a_f + √a_s)²`
    /// (the soft minimum lowers it by at most `τ log 2`).
    pub fn barrier(&self) -> f64 {
        let (sf, ss) = (self.a_flat.sqrt(), self.a_sharp.sqrt());
        2.0 * self.a_flat * self.a_sharp * self.c * self.c / ((sf + ss) * (sf + ss))
    }
    /// Upper bound on `|f(c_f) − f(c_s)|`: `τ e^{−2 a_f c²/τ}`.
    pub fn depth_mismatch(&self) -> f64 {
        self.tau * (-2.0 * self.a_flat * self.c * self.c / self.tau).exp()
    }

    /// `(q_f(x), q_s(x))`.
    pub fn wells(&self, x: &[f64]) -> (f64, f64) {
        let mut rf = 0.0;
        let mut rs = 0.0;
        for (i, &v) in x.iter().enumerate() {
            let (df, ds) = if i == 0 {
                (v - self.c, v + self.c)
            } else {
                (v, v)
            };
            rf += df * df;
            rs += ds * ds;
        }
        (0.5 * self.a_flat * rf, 0.5 * self.a_sharp * rs)
    }

    /// The basin of `x`: flat iff `q_f(x) < q_s(x)`.
    pub fn basin(&self, x: &[f64]) -> Basin {
        let (qf, qs) = self.wells(x);
        if qf < qs {
            Basin::Flat
        } else {
            Basin::Sharp
        }
    }

    /// Soft-max weights `(w_f, w_s)`.
    fn weights(&self, x: &[f64]) -> (f64, f64) {
        let (qf, qs) = self.wells(x);
        let m = qf.min(qs);
        let ef = (-(qf - m) / self.tau).exp();
        let es = (-(qs - m) / self.tau).exp();
        let z = ef + es;
        (ef / z, es / z)
    }

    /// `tr ∇²f(x) = d (w_f a_f + w_s a_s) − w_f w_s ‖δ‖²/τ` without forming the Hessian.
    pub fn hessian_trace(&self, x: &[f64]) -> f64 {
        let (wf, ws) = self.weights(x);
        let mut dd = 0.0;
        for (i, &v) in x.iter().enumerate() {
            let d = self.delta_i(i, v);
            dd += d * d;
        }
        self.dim as f64 * (wf * self.a_flat + ws * self.a_sharp) - wf * ws * dd / self.tau
    }

    /// `δ_i = (g_f − g_s)_i`.
    fn delta_i(&self, i: usize, v: f64) -> f64 {
        if i == 0 {
            self.a_flat * (v - self.c) - self.a_sharp * (v + self.c)
        } else {
            (self.a_flat - self.a_sharp) * v
        }
    }
}

impl Landscape for TwoBasin {
    fn dim(&self) -> usize {
        self.dim
    }
    fn loss(&self, x: &[f64]) -> f64 {
        let (qf, qs) = self.wells(x);
        let m = qf.min(qs);
        m - self.tau * ((-(qf - m) / self.tau).exp() + (-(qs - m) / self.tau).exp()).ln()
    }
    fn grad_into(&self, x: &[f64], out: &mut [f64]) {
        let (wf, ws) = self.weights(x);
        for (i, (&v, o)) in x.iter().zip(out.iter_mut()).enumerate() {
            let (gf, gs) = if i == 0 {
                (self.a_flat * (v - self.c), self.a_sharp * (v + self.c))
            } else {
                (self.a_flat * v, self.a_sharp * v)
            };
            *o = wf * gf + ws * gs;
        }
    }
    fn hess_vec_into(&self, x: &[f64], v: &[f64], out: &mut [f64]) {
        let (wf, ws) = self.weights(x);
        let abar = wf * self.a_flat + ws * self.a_sharp;
        let k = wf * ws / self.tau;
        let mut dv = 0.0;
        for (i, (&xi, &vi)) in x.iter().zip(v).enumerate() {
            dv += self.delta_i(i, xi) * vi;
        }
        for (i, ((&xi, &vi), o)) in x.iter().zip(v).zip(out.iter_mut()).enumerate() {
            *o = abar * vi - k * dv * self.delta_i(i, xi);
        }
    }
    fn hessian(&self, x: &[f64]) -> Matrix {
        let (wf, ws) = self.weights(x);
        let abar = wf * self.a_flat + ws * self.a_sharp;
        let k = wf * ws / self.tau;
        let d = self.dim;
        Matrix::from_fn(d, d, |i, j| {
            let diag = if i == j { abar } else { 0.0 };
            diag - k * self.delta_i(i, x[i]) * self.delta_i(j, x[j])
        })
    }
    fn describe(&self) -> String {
        format!(
            "two-basin soft-min (d = {}, a_flat = {}, a_sharp = {} (κ = {}), minima at x₀ = ±{}, τ = {}, barrier ΔF ≈ {:.3})",
            self.dim,
            self.a_flat,
            self.a_sharp,
            self.a_sharp / self.a_flat,
            self.c,
            self.tau,
            self.barrier()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landscape::fd::{grad_error, hess_error};

    #[test]
    fn derivatives_match_finite_differences() {
        for d in [1, 2, 5] {
            let f = TwoBasin::new(d, 1.0, 10.0, 1.0, 0.1).unwrap();
            // Points in both basins, near the ridge (where the Hessian's rank-one term matters).
            let r = f.ridge();
            let pts: Vec<Vec<f64>> = vec![
                (0..d).map(|i| if i == 0 { 0.9 } else { 0.1 }).collect(),
                (0..d).map(|i| if i == 0 { -1.1 } else { -0.05 }).collect(),
                (0..d)
                    .map(|i| if i == 0 { r + 0.01 } else { 0.03 * i as f64 })
                    .collect(),
                (0..d)
                    .map(|i| if i == 0 { r - 0.02 } else { 0.0 })
                    .collect(),
            ];
            for x in &pts {
                assert!(grad_error(&f, x, 1e-6) < 1e-6, "d={d} x={x:?}");
                assert!(hess_error(&f, x, 1e-6) < 1e-5, "d={d} x={x:?}");
                let tr = f.hessian(x).trace();
                assert!((tr - f.hessian_trace(x)).abs() < 1e-9 * (1.0 + tr.abs()));
            }
        }
    }

    #[test]
    fn basins_have_equal_depth_and_the_chosen_curvatures() {
        let f = TwoBasin::new(3, 0.5, 20.0, 2.0, 0.1).unwrap();
        let (cf, cs) = (f.centre(Basin::Flat), f.centre(Basin::Sharp));
        assert!((f.loss(&cf) - f.loss(&cs)).abs() <= f.depth_mismatch());
        let hf = f.hessian(&cf);
        let hs = f.hessian(&cs);
        for i in 0..3 {
            assert!((hf[(i, i)] - 0.5).abs() < 1e-9);
            assert!((hs[(i, i)] - 10.0).abs() < 1e-9);
        }
        assert_eq!(f.basin(&cf), Basin::Flat);
        assert_eq!(f.basin(&cs), Basin::Sharp);
        // The ridge is where both wells agree and equal the barrier.
        let mut x = vec![0.0; 3];
        x[0] = f.ridge();
        let (qf, qs) = f.wells(&x);
        assert!((qf - qs).abs() < 1e-12 && (qf - f.barrier()).abs() < 1e-12);
    }

    #[test]
    fn validation_names_the_field() {
        let e = TwoBasin::new(2, 1.0, 0.5, 1.0, 0.1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("landscape.kappa"), "{e}");
        let e = TwoBasin::new(2, 1.0, 10.0, 1.0, 5.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("landscape.tau"), "{e}");
    }
}
