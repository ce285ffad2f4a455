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
    /// `∇³f[u, v] = k (a_s − a_f) [(δ·v) u + (δ·u) v + (u·v) δ] − (k/τ)(w_f − w_s)(δ·u)(δ·v) δ`,
    /// `k = w_f w_s/τ` (differentiate `∇²f u = ā u − k (δ·u) δ` along `v`, with
    /// `∂_v w_f = −k (δ·v)`, `∂_v ā = k (a_s − a_f)(δ·v)`,
    /// `∂_v k = (k/τ)(w_f − w_s)(δ·v)`, `∂_v δ = (a_f − a_s) v`).
    fn third_into(&self, x: &[f64], u: &[f64], v: &[f64], out: &mut [f64]) {
        let (wf, ws) = self.weights(x);
        let k = wf * ws / self.tau;
        let (mut du, mut dv, mut uv) = (0.0, 0.0, 0.0);
        for (i, ((&xi, &ui), &vi)) in x.iter().zip(u).zip(v).enumerate() {
            let di = self.delta_i(i, xi);
            du += di * ui;
            dv += di * vi;
            uv += ui * vi;
        }
        let c1 = k * (self.a_sharp - self.a_flat);
        let c2 = k / self.tau * (wf - ws) * du * dv;
        for (i, (((&xi, &ui), &vi), o)) in x.iter().zip(u).zip(v).zip(out.iter_mut()).enumerate() {
            let di = self.delta_i(i, xi);
            *o = c1 * (dv * ui + du * vi + uv * di) - c2 * di;
        }
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

/// A warped double well with **exactly** equal depths, a smooth saddle and a tame far field:
///
/// ```text
/// u(x₀) = A [(1 − e^{−b x₀}) + ε (e^{b x₀} − 1)],  V(x₀) = D (1 − u²)²,  a(x₀) = 8 D u'(x₀)²,
/// g(x)  = V(x₀) + ½ a(x₀) Σ_{i≥1} x_i²,    f(x) = M log(1 + g(x)/M).
/// ```
///
/// *Minima.* `g ≥ 0` vanishes exactly where `u = ±1` and `x_⊥ = 0`: at the flat minimum
/// `x₀ = c_f > 0` and the sharp minimum `x₀ = −c_s < 0`, so both minima have `f = 0` (equal
/// depths, exactly). There `∇g = 0`, `V'' = 8D u'² = a` and `f`'s Hessian equals `g`'s
/// (`h(g) = M log(1 + g/M)` has `h(0) = 0`, `h'(0) = 1`), so it is `a_f I` and `a_s I`: every
/// direction has the basin's curvature. With `y = b x₀`, `u' = A b (e^{−y} + ε e^{y})`; the four
/// conditions `u(c_f) = 1`, `u(−c_s) = −1`, `u'(−c_s)/u'(c_f) = √κ`, `8D u'(c_f)² = a_f` fix
/// `A`, `b`, `c_f`, `c_s` (one root search for `y_f = b c_f`, the rest in closed form).
///
/// *Saddle and barrier.* `u(0) = 0`: the saddle is at the origin, `g = D` there, so the barrier
/// is `ΔF = M log(1 + D/M)` from both basins; `M = 4 ΔF` (so `D = 4ΔF (e^{1/4} − 1) ≈ 1.14 ΔF`).
/// The saddle curvature `−4D (Ab(1 + ε))² M/(M + D)` is of the order of the basin curvatures
/// (the soft minimum's ridge is much sharper, which breaks the SDEs' first-order-in-ρ expansion
/// there).
///
/// *Far field.* `ε = 0.01` makes `u` grow exponentially on the flat side too (no plateau),
/// and the logarithm turns the exponential growth of `g` on both sides into **linear** growth of
/// `f`, with gradient bounded above and away from zero and bounded Hessian, so a large kick
/// (DNSAM's `ρ∇f_γ/‖∇f‖` near critical points) neither makes explicit steps blow up nor leaves
/// a path on a flat plateau where `ρ/‖∇f‖` keeps growing.
///
/// Derivatives, with `w = M/(M + g)` and primes on functions of `x₀`:
///
/// ```text
/// ∇f = w ∇g,   ∇²f = w ∇²g − (w²/M) ∇g ∇gᵀ,
/// ∂₀g = V' + ½ a' r²,  ∂_i g = a x_i;  ∂₀₀g = V'' + ½ a'' r²,  ∂₀ᵢg = a' x_i,  ∂_ij g = a δ_ij,
/// V' = −4D u (1 − u²) u',  V'' = −4D [(1 − 3u²) u'² + u (1 − u²) u''],
/// a' = 16D u' u'',  a'' = 16D (u''² + u' u'''),  u'' = A b² (ε e^{y} − e^{−y}),  u''' = A b³ (e^{−y} + ε e^{y}).
/// ```
///
/// Basin of `x`: flat iff `x₀ > 0` (the hyperplane through the saddle; the true separatrix bends
/// away from it by `O(r²)`).
#[derive(Debug, Clone)]
pub struct WarpedDoubleWell {
    dim: usize,
    a_flat: f64,
    kappa: f64,
    barrier: f64,
    d_inner: f64,
    m: f64,
    amp: f64,
    b: f64,
    eps: f64,
    c_flat: f64,
    c_sharp: f64,
}

/// `ε` of the linear term in `u`.
const WARP_EPS: f64 = 0.01;
/// `M / ΔF`.
const LOG_SCALE: f64 = 4.0;

impl WarpedDoubleWell {
    /// Builds and validates: `dim ≥ 1`, `a_flat > 0`, `1 < kappa < 1e6`, `barrier > 0`.
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
        if !(kappa.is_finite() && kappa > 1.0 && kappa < 1e6) {
            return Err(Error::config(
                "landscape.kappa",
                kappa,
                "must be in (1, 1e6) for the warped shape (a_sharp = kappa · a_flat)",
            ));
        }
        let eps = WARP_EPS;
        let sk = kappa.sqrt();
        // With y_f = b c_f, z = b c_s: the curvature ratio gives t = e^z as the larger root of
        // t² − R t + ε = 0, R = √κ (e^{−y_f} + ε e^{y_f}); then
        // F(y_f) = u(c_f)/A + u(−c_s)/A must vanish. F < 0 near 0; take its first root.
        let t_of = |yf: f64| {
            let r = sk * ((-yf).exp() + eps * yf.exp());
            0.5 * (r + (r * r - 4.0 * eps).max(0.0).sqrt())
        };
        let big_f = |yf: f64| {
            let t = t_of(yf);
            (1.0 - (-yf).exp()) + eps * (yf.exp() - 1.0) - ((t - 1.0) + eps * (1.0 - 1.0 / t))
        };
        let mut lo = 1e-9;
        let mut hi = f64::NAN;
        let mut y = 1e-9;
        while y < 20.0 {
            let next = y + 0.01;
            if big_f(next) >= 0.0 {
                (lo, hi) = (y, next);
                break;
            }
            y = next;
        }
        if hi.is_nan() {
            return Err(Error::config(
                "landscape.kappa",
                kappa,
                "no warped double well found for this curvature ratio",
            ));
        }
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if big_f(mid) < 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let yf = 0.5 * (lo + hi);
        let z = t_of(yf).ln();
        let amp = 1.0 / ((1.0 - (-yf).exp()) + eps * (yf.exp() - 1.0));
        let m = LOG_SCALE * barrier;
        let d_inner = m * ((barrier / m).exp() - 1.0);
        let b = (a_flat / (8.0 * d_inner)).sqrt() / (amp * ((-yf).exp() + eps * yf.exp()));
        Ok(Self {
            dim,
            a_flat,
            kappa,
            barrier,
            d_inner,
            m,
            amp,
            b,
            eps,
            c_flat: yf / b,
            c_sharp: z / b,
        })
    }

    /// `(u, u', u'', u''')` at `x₀` (`y = b x₀` clamped to `|y| ≤ 60`, far beyond any basin,
    /// so that nothing overflows; paths that far out are counted as diverged by the studies).
    fn warp(&self, x0: f64) -> [f64; 4] {
        let y = (self.b * x0).clamp(-60.0, 60.0);
        let (em, ep) = ((-y).exp(), self.eps * y.exp());
        let (a, b) = (self.amp, self.b);
        [
            a * ((1.0 - em) + (ep - self.eps)),
            a * b * (em + ep),
            a * b * b * (ep - em),
            a * b * b * b * (em + ep),
        ]
    }

    /// `[g, ∂₀₀g, a', a, ∂₀g]` at `x` (`∂_i g = a x_i` for `i ≥ 1`); no allocation.
    fn inner(&self, x: &[f64]) -> [f64; 5] {
        let [u, du, ddu, dddu] = self.warp(x[0]);
        let dd = self.d_inner;
        let w = 1.0 - u * u;
        let v = dd * w * w;
        let dv = -4.0 * dd * u * w * du;
        let ddv = -4.0 * dd * ((1.0 - 3.0 * u * u) * du * du + u * w * ddu);
        let a = 8.0 * dd * du * du;
        let da = 16.0 * dd * du * ddu;
        let dda = 16.0 * dd * (ddu * ddu + du * dddu);
        let r2: f64 = x[1..].iter().map(|v| v * v).sum();
        [
            v + 0.5 * a * r2,
            ddv + 0.5 * dda * r2,
            da,
            a,
            dv + 0.5 * da * r2,
        ]
    }

    /// Everything the third derivative needs: `[g, ∂₀g, ∂₀₀g, ∂₀₀₀g, a, a', a'', a''']` with
    /// `∂₀₀₀g = V''' + ½ a''' r²`, `V''' = −4D[−6u u'³ + 3(1 − 3u²) u' u'' + u(1 − u²) u''']`,
    /// `a''' = 16D (3 u'' u''' + u' u'''')`, `u'''' = A b⁴ (ε e^{y} − e^{−y}) = b² u''`.
    fn inner3(&self, x: &[f64]) -> [f64; 8] {
        let [u, du, ddu, dddu] = self.warp(x[0]);
        let ddddu = self.b * self.b * ddu;
        let dd = self.d_inner;
        let w = 1.0 - u * u;
        let v = dd * w * w;
        let dv = -4.0 * dd * u * w * du;
        let ddv = -4.0 * dd * ((1.0 - 3.0 * u * u) * du * du + u * w * ddu);
        let dddv = -4.0
            * dd
            * (-6.0 * u * du * du * du + 3.0 * (1.0 - 3.0 * u * u) * du * ddu + u * w * dddu);
        let a = 8.0 * dd * du * du;
        let da = 16.0 * dd * du * ddu;
        let dda = 16.0 * dd * (ddu * ddu + du * dddu);
        let ddda = 16.0 * dd * (3.0 * ddu * dddu + du * ddddu);
        let r2: f64 = x[1..].iter().map(|v| v * v).sum();
        [
            v + 0.5 * a * r2,
            dv + 0.5 * da * r2,
            ddv + 0.5 * dda * r2,
            dddv + 0.5 * ddda * r2,
            a,
            da,
            dda,
            ddda,
        ]
    }

    /// `M`, the scale of the logarithm.
    pub fn log_scale(&self) -> f64 {
        self.m
    }
}

impl Landscape for WarpedDoubleWell {
    fn dim(&self) -> usize {
        self.dim
    }
    fn loss(&self, x: &[f64]) -> f64 {
        let [g, ..] = self.inner(x);
        self.m * (g / self.m).ln_1p()
    }
    fn grad_into(&self, x: &[f64], out: &mut [f64]) {
        let [g, _, _, a, g0] = self.inner(x);
        let w = self.m / (self.m + g);
        out[0] = w * g0;
        for i in 1..self.dim {
            out[i] = w * a * x[i];
        }
    }
    fn hess_vec_into(&self, x: &[f64], v: &[f64], out: &mut [f64]) {
        let [g, g00, da, a, g0] = self.inner(x);
        let w = self.m / (self.m + g);
        let k = w * w / self.m;
        let mut dgv = g0 * v[0];
        let mut o0 = g00 * v[0];
        for i in 1..self.dim {
            dgv += a * x[i] * v[i];
            o0 += da * x[i] * v[i];
        }
        for i in 1..self.dim {
            out[i] = w * (da * x[i] * v[0] + a * v[i]) - k * dgv * a * x[i];
        }
        out[0] = w * o0 - k * dgv * g0;
    }
    fn hessian(&self, x: &[f64]) -> Matrix {
        let [g, g00, da, a, g0] = self.inner(x);
        let w = self.m / (self.m + g);
        let k = w * w / self.m;
        let dg = |i: usize| if i == 0 { g0 } else { a * x[i] };
        Matrix::from_fn(self.dim, self.dim, |i, j| {
            let hg = match (i, j) {
                (0, 0) => g00,
                (0, j) => da * x[j],
                (i, 0) => da * x[i],
                (i, j) if i == j => a,
                _ => 0.0,
            };
            w * hg - k * dg(i) * dg(j)
        })
    }
    /// With `φ(g) = M log(1 + g/M)` (`φ' = w`, `φ'' = −w²/M`, `φ''' = 2w³/M²`) and `G = ∇g`:
    /// `∇³f[u, v] = φ' ∇³g[u, v] + φ'' [(G·u) ∇²g v + (G·v) ∇²g u + (u·∇²g v) G]
    /// + φ''' (G·u)(G·v) G`, where `∇³g[u, v]₀ = ∂₀₀₀g u₀v₀ + a'' Σ_i x_i (u₀v_i + u_i v₀)
    /// + a' Σ_i u_i v_i` and `∇³g[u, v]_i = a'' x_i u₀v₀ + a' (u₀v_i + u_i v₀)` (`i ≥ 1`).
    fn third_into(&self, x: &[f64], u: &[f64], v: &[f64], out: &mut [f64]) {
        let [g, g0, g00, g000, a, da, dda, _] = self.inner3(x);
        let w = self.m / (self.m + g);
        let (p2, p3) = (-w * w / self.m, 2.0 * w * w * w / (self.m * self.m));
        // G·u, G·v, the x-weighted sums and u·v over the transverse coordinates.
        let (mut gu, mut gv) = (g0 * u[0], g0 * v[0]);
        let (mut xu, mut xv, mut uv_perp) = (0.0, 0.0, 0.0);
        for i in 1..self.dim {
            gu += a * x[i] * u[i];
            gv += a * x[i] * v[i];
            xu += x[i] * u[i];
            xv += x[i] * v[i];
            uv_perp += u[i] * v[i];
        }
        let u_hg_v = g00 * u[0] * v[0] + da * (u[0] * xv + v[0] * xu) + a * uv_perp;
        let t0 = g000 * u[0] * v[0] + dda * (u[0] * xv + v[0] * xu) + da * uv_perp;
        let hgv0 = g00 * v[0] + da * xv;
        let hgu0 = g00 * u[0] + da * xu;
        out[0] = w * t0 + p2 * (gu * hgv0 + gv * hgu0 + u_hg_v * g0) + p3 * gu * gv * g0;
        for i in 1..self.dim {
            let ti = dda * x[i] * u[0] * v[0] + da * (u[0] * v[i] + u[i] * v[0]);
            let hgv = da * x[i] * v[0] + a * v[i];
            let hgu = da * x[i] * u[0] + a * u[i];
            let gi = a * x[i];
            out[i] = w * ti + p2 * (gu * hgv + gv * hgu + u_hg_v * gi) + p3 * gu * gv * gi;
        }
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
        let [g, g00, _, a, g0] = self.inner(x);
        let w = self.m / (self.m + g);
        let n2 = g0 * g0 + a * a * x[1..].iter().map(|v| v * v).sum::<f64>();
        w * (g00 + (self.dim - 1) as f64 * a) - w * w / self.m * n2
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
            // Tame far field: bounded gradient far out on both sides and across.
            let mut g = vec![0.0; d];
            for x0 in [-50.0, -10.0, 10.0, 50.0] {
                let mut x = vec![0.0; d];
                x[0] = x0;
                if d > 1 {
                    x[1] = 3.0;
                }
                f.grad_into(&x, &mut g);
                let n = g.iter().map(|v| v * v).sum::<f64>().sqrt();
                assert!(n.is_finite() && n < 20.0, "x0 = {x0}: |∇f| = {n}");
            }
        }
    }

    /// The analytic third-derivative products against central differences of the analytic
    /// Hessian–vector products, at points in both basins, near the ridge/saddle and on the
    /// walls, in d = 1, 2, 4; and `∇ tr(∇²f Σ)` against a difference of the full Hessian's
    /// trace (isotropic and a general factor `S`). Tolerances: a central difference with step
    /// `s = 1e-5` has truncation `≈ s² |∇⁵f|/6` and rounding `≈ 1e-16 |∇²f|/s`, both below
    /// `1e-7` relative on the warped well; the soft minimum's ridge is much sharper
    /// (`|∇⁵f| ~ ‖δ‖⁵/τ⁴`, large at `τ = 0.1`), hence its looser `1e-5`.
    #[test]
    fn third_derivatives_match_finite_differences() {
        use crate::landscape::fd::{grad_trace_error, third_error};
        use crate::landscape::NoiseCov;
        for d in [1usize, 2, 4] {
            let warped = WarpedDoubleWell::new(d, 1.0, 10.0, 1.0).unwrap();
            let soft = TwoBasin::new(d, 1.0, 10.0, 1.0, 0.1).unwrap();
            let r = soft.ridge();
            let pts: Vec<Vec<f64>> = vec![
                (0..d).map(|i| if i == 0 { 0.9 } else { 0.2 }).collect(),
                (0..d)
                    .map(|i| if i == 0 { -0.7 } else { -0.1 * i as f64 })
                    .collect(),
                (0..d).map(|i| if i == 0 { 0.05 } else { 0.3 }).collect(),
                (0..d)
                    .map(|i| if i == 0 { r + 0.01 } else { 0.03 * i as f64 })
                    .collect(),
                (0..d).map(|i| if i == 0 { 2.5 } else { -0.4 }).collect(),
            ];
            let u: Vec<f64> = (0..d).map(|i| 0.7 - 0.3 * i as f64).collect();
            let v: Vec<f64> = (0..d).map(|i| -0.4 + 0.5 * i as f64).collect();
            let s = Matrix::from_fn(d, 2, |i, j| 0.3 + 0.2 * i as f64 - 0.5 * j as f64);
            for x in &pts {
                for (f, tol) in [(&warped as &dyn Landscape, 1e-7), (&soft, 1e-5)] {
                    let e = third_error(f, x, &u, &v, 1e-5);
                    assert!(e < tol, "{} x={x:?}: {e:e}", f.describe());
                    let e = third_error(f, x, &v, &v, 1e-5);
                    assert!(e < tol, "{} x={x:?}: {e:e}", f.describe());
                    for cov in [NoiseCov::Isotropic(0.7), NoiseCov::Factor(&s)] {
                        let e = grad_trace_error(f, x, cov, 1e-5);
                        assert!(e < tol, "{} x={x:?} {cov:?}: {e:e}", f.describe());
                    }
                }
            }
        }
    }

    /// The check is not vacuous: the warped well's product with the `φ'''` term of the chain
    /// rule dropped differs from the difference quotient by far more than the tolerance.
    #[test]
    fn third_derivative_check_catches_a_dropped_term() {
        struct Cut(WarpedDoubleWell);
        impl Landscape for Cut {
            fn dim(&self) -> usize {
                self.0.dim()
            }
            fn loss(&self, x: &[f64]) -> f64 {
                self.0.loss(x)
            }
            fn grad_into(&self, x: &[f64], out: &mut [f64]) {
                self.0.grad_into(x, out)
            }
            fn hess_vec_into(&self, x: &[f64], v: &[f64], out: &mut [f64]) {
                self.0.hess_vec_into(x, v, out)
            }
            fn hessian(&self, x: &[f64]) -> Matrix {
                self.0.hessian(x)
            }
            fn describe(&self) -> String {
                "cut".into()
            }
            fn third_into(&self, x: &[f64], u: &[f64], v: &[f64], out: &mut [f64]) {
                self.0.third_into(x, u, v, out);
                let [g, g0, _, _, a, ..] = self.0.inner3(x);
                let w = self.0.m / (self.0.m + g);
                let p3 = 2.0 * w * w * w / (self.0.m * self.0.m);
                let gvec: Vec<f64> = (0..x.len())
                    .map(|i| if i == 0 { g0 } else { a * x[i] })
                    .collect();
                let dot = |p: &[f64], q: &[f64]| p.iter().zip(q).map(|(a, b)| a * b).sum::<f64>();
                let (gu, gv) = (dot(&gvec, u), dot(&gvec, v));
                for (o, gi) in out.iter_mut().zip(&gvec) {
                    *o -= p3 * gu * gv * gi;
                }
            }
        }
        let f = Cut(WarpedDoubleWell::new(2, 1.0, 10.0, 1.0).unwrap());
        let e = crate::landscape::fd::third_error(&f, &[0.4, 0.3], &[1.0, 0.5], &[0.2, -1.0], 1e-5);
        assert!(e > 1e-3, "{e:e}");
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
