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

/// What the flatness study needs of a two-basin landscape.
pub trait TwoBasinLandscape: Landscape {
    /// The basin of `x`.
    fn basin(&self, x: &[f64]) -> Basin;
    /// Barrier height `ΔF` above the (equal) minima.
    fn barrier(&self) -> f64;
    /// `tr ∇²f(x)`.
    fn hessian_trace(&self, x: &[f64]) -> f64;
    /// The saddle point between the basins.
    fn saddle(&self) -> Vec<f64>;
    /// Minimum of basin `b`.
    fn minimum(&self, b: Basin) -> Vec<f64>;
    /// `self` as a plain landscape.
    fn as_landscape(&self) -> &dyn Landscape;
}

impl TwoBasinLandscape for TwoBasin {
    fn basin(&self, x: &[f64]) -> Basin {
        TwoBasin::basin(self, x)
    }
    fn barrier(&self) -> f64 {
        TwoBasin::barrier(self)
    }
    fn hessian_trace(&self, x: &[f64]) -> f64 {
        TwoBasin::hessian_trace(self, x)
    }
    fn saddle(&self) -> Vec<f64> {
        let mut v = vec![0.0; self.dim];
        v[0] = self.ridge();
        v
    }
    fn minimum(&self, b: Basin) -> Vec<f64> {
        self.centre(b)
    }
    fn as_landscape(&self) -> &dyn Landscape {
        self
    }
}

/// A warped double well with **exactly** equal depths and a smooth saddle:
///
/// ```text
/// u(x₀) = A (1 − e^{−b x₀}),   V(x₀) = ΔF (1 − u²)²,   a(x₀) = 8 ΔF u'(x₀)²,
/// f(x)  = V(x₀) + ½ a(x₀) Σ_{i≥1} x_i².
/// ```
///
/// `V` vanishes exactly where `u = ±1`: at the flat minimum `x₀ = c_f > 0` and the sharp
/// minimum `x₀ = −c_s < 0`, so both minima have `f = 0`. There `V'' = 8ΔF u'² = a`, so the
/// Hessian is `a(c_f) I = a_f I` and `a(−c_s) I = a_s I`: every direction has the basin's
/// curvature. Since `u' = A b e^{−b x₀}`, `κ = a_s/a_f = e^{2b(c_f + c_s)}`. Solving
/// `u(c_f) = 1`, `u(−c_s) = −1` gives `B = e^{−b c_f} = 2/(1 + √κ)`, `A = 1/(1 − B)`, and
/// `a_f = 8ΔF (A b B)²` fixes `b`. The saddle is at the origin (`u = 0`) with curvature
/// `V''(0) = −4ΔF (A b)²`, of the order of the basin curvatures (the soft minimum's ridge is
/// much sharper, which breaks the SDEs' first-order-in-ρ expansion there), and the barrier is
/// exactly `ΔF` from both sides. With `g = ∇f`, `r² = Σ_{i≥1} x_i²`:
///
/// ```text
/// g₀ = V' + ½ a' r²,  g_i = a x_i;   H₀₀ = V'' + ½ a'' r²,  H₀ᵢ = a' x_i,  H_ij = a δ_ij,
/// V' = −4ΔF u (1 − u²) u',  V'' = −4ΔF [(1 − 3u²) u'² − b u (1 − u²) u'],  a' = −2b a,  a'' = 4b² a.
/// ```
///
/// Basin of `x`: flat iff `x₀ > 0` (the hyperplane through the saddle; the true separatrix bends
/// away from it by `O(r²)`). Caveat: for `x₀ → +∞`, `u → A` and `f` flattens to the plateau
/// `ΔF (A² − 1)²` (≈ 7.3 ΔF at κ = 10) with vanishing transverse curvature; paths reach it only
/// with probability `≈ e^{−7 ΔF/T}`, and the divergence bound catches runaways.
#[derive(Debug, Clone)]
pub struct WarpedDoubleWell {
    dim: usize,
    a_flat: f64,
    kappa: f64,
    barrier: f64,
    amp: f64,
    b: f64,
    c_flat: f64,
    c_sharp: f64,
}

impl WarpedDoubleWell {
    /// Builds and validates: `dim ≥ 1`, `a_flat > 0`, `kappa > 1`, `barrier > 0`.
    ///
    /// ```
    /// use samsde::landscape::{Landscape, WarpedDoubleWell, Basin, TwoBasinLandscape};
    /// let f = WarpedDoubleWell::new(2, 1.0, 10.0, 1.0).unwrap();
    /// assert!(f.loss(&f.minimum(Basin::Flat)).abs() < 1e-12);
    /// assert!(f.loss(&f.minimum(Basin::Sharp)).abs() < 1e-12);
    /// assert!((f.loss(&[0.0, 0.0]) - 1.0).abs() < 1e-12);
    /// ```
    pub fn new(dim: usize, a_flat: f64, kappa: f64, barrier: f64) -> Result<Self> {
        if dim == 0 {
            return Err(Error::config("landscape.dim", dim, "must be ≥ 1"));
        }
        for (field, v) in [("landscape.a_flat", a_flat), ("landscape.barrier", barrier)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::config(field, v, "must be finite and > 0"));
            }
        }
        if !(kappa.is_finite() && kappa > 1.0) {
            return Err(Error::config(
                "landscape.kappa",
                kappa,
                "must be finite and > 1 for the warped shape (a_sharp = kappa · a_flat)",
            ));
        }
        let sk = kappa.sqrt();
        let bb = 2.0 / (1.0 + sk);
        let amp = 1.0 / (1.0 - bb);
        let b = (a_flat / (8.0 * barrier)).sqrt() / (amp * bb);
        let c_flat = -bb.ln() / b;
        let c_sharp = (bb * sk).ln() / b;
        Ok(Self {
            dim,
            a_flat,
            kappa,
            barrier,
            amp,
            b,
            c_flat,
            c_sharp,
        })
    }

    /// `(u, u', V, V', V'', a)` at `x₀`.
    fn parts(&self, x0: f64) -> [f64; 6] {
        let e = (-self.b * x0).exp();
        let u = self.amp * (1.0 - e);
        let du = self.amp * self.b * e;
        let w = 1.0 - u * u;
        let df = self.barrier;
        let v = df * w * w;
        let dv = -4.0 * df * u * w * du;
        let ddv = -4.0 * df * ((1.0 - 3.0 * u * u) * du * du - self.b * u * w * du);
        let a = 8.0 * df * du * du;
        [u, du, v, dv, ddv, a]
    }

    fn r2(x: &[f64]) -> f64 {
        x[1..].iter().map(|v| v * v).sum()
    }
}

impl Landscape for WarpedDoubleWell {
    fn dim(&self) -> usize {
        self.dim
    }
    fn loss(&self, x: &[f64]) -> f64 {
        let [_, _, v, _, _, a] = self.parts(x[0]);
        v + 0.5 * a * Self::r2(x)
    }
    fn grad_into(&self, x: &[f64], out: &mut [f64]) {
        let [_, _, _, dv, _, a] = self.parts(x[0]);
        out[0] = dv + 0.5 * (-2.0 * self.b * a) * Self::r2(x);
        for i in 1..self.dim {
            out[i] = a * x[i];
        }
    }
    fn hess_vec_into(&self, x: &[f64], v: &[f64], out: &mut [f64]) {
        let [_, _, _, _, ddv, a] = self.parts(x[0]);
        let da = -2.0 * self.b * a;
        let dda = 4.0 * self.b * self.b * a;
        let mut o0 = (ddv + 0.5 * dda * Self::r2(x)) * v[0];
        for i in 1..self.dim {
            o0 += da * x[i] * v[i];
            out[i] = da * x[i] * v[0] + a * v[i];
        }
        out[0] = o0;
    }
    fn hessian(&self, x: &[f64]) -> Matrix {
        let [_, _, _, _, ddv, a] = self.parts(x[0]);
        let da = -2.0 * self.b * a;
        let dda = 4.0 * self.b * self.b * a;
        let r2 = Self::r2(x);
        Matrix::from_fn(self.dim, self.dim, |i, j| match (i, j) {
            (0, 0) => ddv + 0.5 * dda * r2,
            (0, j) => da * x[j],
            (i, 0) => da * x[i],
            (i, j) if i == j => a,
            _ => 0.0,
        })
    }
    fn describe(&self) -> String {
        format!(
            "warped double well (d = {}, a_flat = {}, a_sharp = {} (κ = {}), flat minimum at x₀ = {:.3}, sharp at x₀ = −{:.3}, saddle at 0, barrier ΔF = {})",
            self.dim,
            self.a_flat,
            self.a_flat * self.kappa,
            self.kappa,
            self.c_flat,
            self.c_sharp,
            self.barrier
        )
    }
}

impl TwoBasinLandscape for WarpedDoubleWell {
    fn basin(&self, x: &[f64]) -> Basin {
        if x[0] > 0.0 {
            Basin::Flat
        } else {
            Basin::Sharp
        }
    }
    fn barrier(&self) -> f64 {
        self.barrier
    }
    fn hessian_trace(&self, x: &[f64]) -> f64 {
        let [_, _, _, _, ddv, a] = self.parts(x[0]);
        ddv + 0.5 * 4.0 * self.b * self.b * a * Self::r2(x) + (self.dim - 1) as f64 * a
    }
    fn saddle(&self) -> Vec<f64> {
        vec![0.0; self.dim]
    }
    fn minimum(&self, b: Basin) -> Vec<f64> {
        let mut v = vec![0.0; self.dim];
        v[0] = match b {
            Basin::Flat => self.c_flat,
            Basin::Sharp => -self.c_sharp,
        };
        v
    }
    fn as_landscape(&self) -> &dyn Landscape {
        self
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
    fn warped_derivatives_minima_and_curvatures() {
        for d in [1, 2, 4] {
            let f = WarpedDoubleWell::new(d, 1.0, 10.0, 1.0).unwrap();
            let pts: Vec<Vec<f64>> = vec![
                (0..d).map(|i| if i == 0 { 0.9 } else { 0.2 }).collect(),
                (0..d)
                    .map(|i| if i == 0 { -0.7 } else { -0.1 * i as f64 })
                    .collect(),
                (0..d).map(|i| if i == 0 { 0.05 } else { 0.3 }).collect(),
            ];
            for x in &pts {
                assert!(grad_error(&f, x, 1e-6) < 1e-6, "d={d} x={x:?}");
                assert!(hess_error(&f, x, 1e-6) < 1e-5, "d={d} x={x:?}");
                let tr = f.hessian(x).trace();
                assert!((tr - f.hessian_trace(x)).abs() < 1e-9 * (1.0 + tr.abs()));
            }
            for (b, a) in [(Basin::Flat, 1.0), (Basin::Sharp, 10.0)] {
                let m = f.minimum(b);
                assert!(f.loss(&m).abs() < 1e-12);
                let mut g = vec![0.0; d];
                f.grad_into(&m, &mut g);
                assert!(g.iter().all(|v| v.abs() < 1e-12), "{g:?}");
                let h = f.hessian(&m);
                for i in 0..d {
                    assert!((h[(i, i)] - a).abs() < 1e-9, "{b:?} {i}: {}", h[(i, i)]);
                }
                assert_eq!(TwoBasinLandscape::basin(&f, &m), b);
            }
            assert!((f.loss(&f.saddle()) - 1.0).abs() < 1e-12);
        }
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
