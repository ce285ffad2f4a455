//! A two-layer ReLU network on 1-D data, as a finite sum (Paper 2's "kinks" experiment):
//!
//! `f_θ(x) = Σ_{j=1}^m a_j relu(w_j x + b_j)`  (hidden biases `b_j`, **no output bias**, as in
//! the authors' notebook), loss `L(θ) = ½ Σ_{i=1}^N (f_θ(x_i) − y_i)²` (a sum, not a mean).
//!
//! Parameters are stored `θ = [w_1..w_m | b_1..b_m | a_1..a_m]` (`d = 3m`). With
//! `p_ij = w_j x_i + b_j`, `h_ij = relu(p_ij)`, `1_ij = [p_ij > 0]` (so `relu'(0) = 0`, as in
//! PyTorch) and residuals `r_i = f_θ(x_i) − y_i`:
//!
//! `∂L/∂a_j = Σ_i r_i h_ij`,  `∂L/∂b_j = Σ_i r_i a_j 1_ij`,  `∂L/∂w_j = Σ_i r_i a_j 1_ij x_i`.
//!
//! The Hessian (wherever no `p_ij = 0`) is `Σ_i J_iᵀJ_i + Σ_i r_i ∇²f_θ(x_i)`, where the only
//! non-zero second derivatives of `f_θ(x_i)` are `∂²/∂a_j∂w_j = 1_ij x_i` and
//! `∂²/∂a_j∂b_j = 1_ij`.
//!
//! As a [`FiniteSum`] the samples are `f_i = (N/2)(f_θ(x_i) − y_i)²`, so that their mean is
//! `L` itself. [`ReluNet1d::loss_grad`] is the allocation-free full-batch gradient (two passes
//! over the `N × m` pre-activations, residuals on the stack), used by `grad_into`.
//!
//! **Kinks.** `f_θ` is piecewise linear with a breakpoint at `x = −b_j/w_j` for each unit with
//! `w_j ≠ 0`; crossing it changes the slope by `a_j |w_j|` (from 0 to `a_j w_j` when `w_j > 0`,
//! from `a_j w_j` to 0 when `w_j < 0`). [`ReluNet1d::breakpoints`] lists them.

use rand::{Rng, RngExt};
use rand_distr::{Distribution, StandardNormal};

use super::{FiniteSum, Landscape};
use crate::error::{Error, Result};
use crate::linalg::Matrix;

/// Largest number of data points (the residuals live in a stack array of this size).
pub const MAX_POINTS: usize = 256;

/// The network and its data.
#[derive(Debug, Clone)]
pub struct ReluNet1d {
    x: Vec<f64>,
    y: Vec<f64>,
    m: usize,
    label: String,
}

/// Scales of the initialisation (the authors' notebook: `w_j = ±2.5` with a random sign,
/// `b_j ~ N(0, 2.5²)`, `a_j ~ N(0, 4²)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReluInit {
    /// `|w_j|` (the sign is random).
    pub hidden_weight: f64,
    /// Standard deviation of `b_j`.
    pub hidden_bias_std: f64,
    /// Standard deviation of `a_j`.
    pub output_std: f64,
}

/// A breakpoint of `f_θ`: its location `−b_j/w_j` and the slope change `a_j |w_j|` there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Breakpoint {
    /// Location on the `x` axis.
    pub x: f64,
    /// Signed change of `f_θ'` when crossing it from left to right.
    pub slope_change: f64,
}

impl ReluNet1d {
    /// Data `(x_i, y_i)` and `m` hidden units.
    pub fn new(x: Vec<f64>, y: Vec<f64>, m: usize) -> Result<Self> {
        if x.is_empty() || x.len() > MAX_POINTS {
            return Err(Error::config(
                "data.x",
                format!("{} points", x.len()),
                format!("must have between 1 and {MAX_POINTS} points"),
            ));
        }
        if y.len() != x.len() {
            return Err(Error::Dimension {
                what: "data.y (one target per x)".into(),
                expected: x.len(),
                got: y.len(),
            });
        }
        for (name, v) in [("data.x", &x), ("data.y", &y)] {
            if let Some(i) = v.iter().position(|t| !t.is_finite()) {
                return Err(Error::config(
                    format!("{name}[{i}]"),
                    v[i],
                    "must be finite",
                ));
            }
        }
        if m == 0 {
            return Err(Error::config("hidden", m, "must be ≥ 1"));
        }
        let label = format!("2-layer ReLU net (m = {m}, N = {})", x.len());
        Ok(Self { x, y, m, label })
    }

    /// `f(x) = Σ_{j=1}^m a_j relu(w_j x + b_j)` with `m` and `N` filled in.
    pub fn describe_model(&self) -> String {
        format!(
            "f(x) = Σ_{{j=1}}^{} a_j relu(w_j x + b_j) on N = {} points",
            self.m,
            self.x.len()
        )
    }

    /// Hidden units `m`.
    pub fn hidden(&self) -> usize {
        self.m
    }

    /// The inputs `x_i`.
    pub fn xs(&self) -> &[f64] {
        &self.x
    }

    /// The targets `y_i`.
    pub fn ys(&self) -> &[f64] {
        &self.y
    }

    /// A random initialisation drawn from `rng`: for each unit in turn, the sign of `w_j`, then
    /// `b_j`, then `a_j`.
    pub fn init<R: Rng + ?Sized>(&self, init: ReluInit, rng: &mut R) -> Vec<f64> {
        let m = self.m;
        let mut th = vec![0.0; 3 * m];
        for j in 0..m {
            let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
            th[j] = sign * init.hidden_weight;
            let zb: f64 = StandardNormal.sample(rng);
            th[m + j] = init.hidden_bias_std * zb;
            let za: f64 = StandardNormal.sample(rng);
            th[2 * m + j] = init.output_std * za;
        }
        th
    }

    /// `f_θ(x)`.
    pub fn predict(&self, th: &[f64], x: f64) -> f64 {
        let (w, rest) = th.split_at(self.m);
        let (b, a) = rest.split_at(self.m);
        w.iter()
            .zip(b)
            .zip(a)
            .map(|((w, b), a)| a * (w * x + b).max(0.0))
            .sum()
    }

    /// Residuals `r_i = f_θ(x_i) − y_i` into `r` (length `N`); returns `L = ½ Σ r_i²`.
    #[inline(always)]
    fn residuals(&self, th: &[f64], r: &mut [f64]) -> f64 {
        let m = self.m;
        let (w, rest) = th.split_at(m);
        let (b, a) = rest.split_at(m);
        // Unit-major: the inner loop over points updates independent accumulators
        // (vectorisable, no long floating-point dependency chain).
        r.fill(0.0);
        for j in 0..m {
            let (wj, bj, aj) = (w[j], b[j], a[j]);
            for (ri, xi) in r.iter_mut().zip(&self.x) {
                let p = wj * xi + bj;
                *ri += aj * if p > 0.0 { p } else { 0.0 };
            }
        }
        let mut loss = 0.0;
        for (ri, yi) in r.iter_mut().zip(&self.y) {
            *ri -= yi;
            loss += *ri * *ri;
        }
        0.5 * loss
    }

    /// Full-batch `L(θ)`; writes `out = ∇L(θ)`. Allocation-free. Uses AVX2 where the processor
    /// has it (the same operations in the same order as [`ReluNet1d::loss_grad_portable`], only
    /// four lanes at a time, so the result is bit-identical).
    pub fn loss_grad(&self, th: &[f64], out: &mut [f64]) -> f64 {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 was detected at run time.
                return unsafe { self.loss_grad_avx2(th, out) };
            }
        }
        self.loss_grad_portable(th, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn loss_grad_avx2(&self, th: &[f64], out: &mut [f64]) -> f64 {
        self.loss_grad_with(th, out)
    }

    /// [`ReluNet1d::loss_grad`] without processor-specific code (the reference).
    pub fn loss_grad_portable(&self, th: &[f64], out: &mut [f64]) -> f64 {
        self.loss_grad_with(th, out)
    }

    /// `L(θ)` alone (one forward pass); AVX2 where available, bit-identical to the portable path.
    fn loss_fast(&self, th: &[f64]) -> f64 {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 was detected at run time.
                return unsafe { self.loss_avx2(th) };
            }
        }
        self.loss_with(th)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn loss_avx2(&self, th: &[f64]) -> f64 {
        self.loss_with(th)
    }

    #[inline(always)]
    fn loss_with(&self, th: &[f64]) -> f64 {
        let mut r = [0.0f64; MAX_POINTS];
        self.residuals(th, &mut r[..self.x.len()])
    }

    #[inline(always)]
    fn loss_grad_with(&self, th: &[f64], out: &mut [f64]) -> f64 {
        let m = self.m;
        let n = self.x.len();
        let (w, rest) = th.split_at(m);
        let (b, a) = rest.split_at(m);
        let mut r = [0.0f64; MAX_POINTS];
        let (r, x) = (&mut r[..n], &self.x[..n]);
        let loss = self.residuals(th, r);
        // Backward, point-major: element-wise updates over the units.
        out.fill(0.0);
        let (gw, rest) = out.split_at_mut(m);
        let (gb, ga) = rest.split_at_mut(m);
        for (&xi, &ri) in x.iter().zip(r.iter()) {
            for j in 0..m {
                let p = w[j] * xi + b[j];
                let (h, on) = if p > 0.0 { (p, 1.0) } else { (0.0, 0.0) };
                ga[j] += ri * h;
                let t = ri * a[j] * on;
                gb[j] += t;
                gw[j] += t * xi;
            }
        }
        loss
    }

    /// Gradient of `f_θ(x)` with respect to `θ` (the Jacobian row at `x`).
    fn jacobian_row(&self, th: &[f64], x: f64, out: &mut [f64]) {
        let m = self.m;
        for j in 0..m {
            let p = th[j] * x + th[m + j];
            let on = if p > 0.0 { 1.0 } else { 0.0 };
            out[j] = th[2 * m + j] * on * x;
            out[m + j] = th[2 * m + j] * on;
            out[2 * m + j] = p.max(0.0);
        }
    }

    /// `∇²f_θ(x) v` (the `a`–`w` and `a`–`b` cross terms).
    fn output_hess_vec(&self, th: &[f64], x: f64, v: &[f64], out: &mut [f64]) {
        let m = self.m;
        for j in 0..m {
            let p = th[j] * x + th[m + j];
            let on = if p > 0.0 { 1.0 } else { 0.0 };
            out[j] = on * x * v[2 * m + j];
            out[m + j] = on * v[2 * m + j];
            out[2 * m + j] = on * (x * v[j] + v[m + j]);
        }
    }

    /// The breakpoints `−b_j/w_j` of every unit with `w_j ≠ 0`, with their slope changes
    /// `a_j |w_j|`, in unit order.
    pub fn breakpoints(&self, th: &[f64]) -> Vec<Breakpoint> {
        let m = self.m;
        (0..m)
            .filter(|&j| th[j] != 0.0)
            .map(|j| Breakpoint {
                x: -th[m + j] / th[j],
                slope_change: th[2 * m + j] * th[j].abs(),
            })
            .collect()
    }
}

impl Landscape for ReluNet1d {
    fn dim(&self) -> usize {
        3 * self.m
    }
    fn loss(&self, th: &[f64]) -> f64 {
        self.loss_fast(th)
    }
    fn grad_into(&self, th: &[f64], out: &mut [f64]) {
        self.loss_grad(th, out);
    }
    fn loss_grad_into(&self, th: &[f64], out: &mut [f64]) -> f64 {
        self.loss_grad(th, out)
    }
    fn hess_vec_into(&self, th: &[f64], v: &[f64], out: &mut [f64]) {
        let d = self.dim();
        let (mut jrow, mut hv) = (vec![0.0; d], vec![0.0; d]);
        out.fill(0.0);
        for (x, y) in self.x.iter().zip(&self.y) {
            let r = self.predict(th, *x) - y;
            self.jacobian_row(th, *x, &mut jrow);
            let jv: f64 = jrow.iter().zip(v).map(|(a, b)| a * b).sum();
            self.output_hess_vec(th, *x, v, &mut hv);
            for k in 0..d {
                out[k] += jv * jrow[k] + r * hv[k];
            }
        }
    }
    fn hessian(&self, th: &[f64]) -> Matrix {
        let d = self.dim();
        let mut h = Matrix::zeros(d, d);
        let (mut e, mut col) = (vec![0.0; d], vec![0.0; d]);
        for k in 0..d {
            e[k] = 1.0;
            self.hess_vec_into(th, &e, &mut col);
            for (i, c) in col.iter().enumerate() {
                h[(i, k)] = *c;
            }
            e[k] = 0.0;
        }
        h
    }
    fn describe(&self) -> String {
        self.label.clone()
    }
    fn as_finite_sum(&self) -> Option<&dyn FiniteSum> {
        Some(self)
    }
}

impl FiniteSum for ReluNet1d {
    fn n_samples(&self) -> usize {
        self.x.len()
    }
    fn sample_loss(&self, i: usize, th: &[f64]) -> f64 {
        0.5 * self.x.len() as f64 * (self.predict(th, self.x[i]) - self.y[i]).powi(2)
    }
    fn sample_grad_into(&self, i: usize, th: &[f64], out: &mut [f64]) {
        let c = self.x.len() as f64 * (self.predict(th, self.x[i]) - self.y[i]);
        self.jacobian_row(th, self.x[i], out);
        out.iter_mut().for_each(|o| *o *= c);
    }
    fn sample_hess_vec_into(&self, i: usize, th: &[f64], v: &[f64], out: &mut [f64]) {
        let d = self.dim();
        let nf = self.x.len() as f64;
        let x = self.x[i];
        let r = self.predict(th, x) - self.y[i];
        let mut hv = vec![0.0; d];
        self.jacobian_row(th, x, out);
        let jv: f64 = out.iter().zip(v).map(|(a, b)| a * b).sum();
        self.output_hess_vec(th, x, v, &mut hv);
        for k in 0..d {
            out[k] = nf * (jv * out[k] + r * hv[k]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landscape::fd;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn net() -> (ReluNet1d, Vec<f64>) {
        let x = vec![-1.3, -0.6, 0.1, 0.4, 1.2];
        let y = vec![0.5, -0.2, 1.0, 0.3, -0.7];
        let n = ReluNet1d::new(x, y, 6).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let init = ReluInit {
            hidden_weight: 1.0,
            hidden_bias_std: 1.0,
            output_std: 1.0,
        };
        let th = n.init(init, &mut rng);
        (n, th)
    }

    /// Smallest |p_ij| over units and points: finite differences of step `h` are exact for a
    /// piecewise-quadratic `L` only when no pre-activation changes sign within `h·(1 + |x|)`.
    fn min_preactivation(n: &ReluNet1d, th: &[f64]) -> f64 {
        let m = n.hidden();
        n.xs()
            .iter()
            .flat_map(|x| (0..m).map(move |j| (th[j] * x + th[m + j]).abs()))
            .fold(f64::INFINITY, f64::min)
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let (n, th) = net();
        assert!(min_preactivation(&n, &th) > 1e-3);
        assert!(fd::grad_error(&n, &th, 1e-6) < 1e-7);
        assert!(fd::hess_error(&n, &th, 1e-6) < 1e-6);
    }

    #[test]
    fn fast_gradient_equals_per_sample_sum_and_loss() {
        let (n, th) = net();
        let d = n.dim();
        let (mut g, mut gi, mut sum) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
        let l = n.loss_grad(&th, &mut g);
        assert!((l - n.loss(&th)).abs() < 1e-12 * l.max(1.0));
        let nf = n.n_samples() as f64;
        let mut mean_loss = 0.0;
        for i in 0..n.n_samples() {
            n.sample_grad_into(i, &th, &mut gi);
            mean_loss += n.sample_loss(i, &th) / nf;
            for k in 0..d {
                sum[k] += gi[k] / nf;
            }
        }
        assert!((mean_loss - l).abs() < 1e-12 * l.max(1.0));
        for k in 0..d {
            assert!((sum[k] - g[k]).abs() < 1e-11 * (1.0 + g[k].abs()));
        }
        // Per-sample Hessian–vector products average to the full one.
        let v: Vec<f64> = (0..d).map(|k| ((k * 7 % 5) as f64 - 2.0) / 3.0).collect();
        let (mut hv, mut hvi, mut hsum) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
        n.hess_vec_into(&th, &v, &mut hv);
        for i in 0..n.n_samples() {
            n.sample_hess_vec_into(i, &th, &v, &mut hvi);
            for k in 0..d {
                hsum[k] += hvi[k] / nf;
            }
        }
        for k in 0..d {
            assert!((hsum[k] - hv[k]).abs() < 1e-11 * (1.0 + hv[k].abs()));
        }
    }

    #[test]
    fn simd_and_portable_paths_are_bit_identical() {
        let (n, th) = net();
        let d = n.dim();
        let (mut g1, mut g2) = (vec![0.0; d], vec![0.0; d]);
        let l1 = n.loss_grad(&th, &mut g1);
        let l2 = n.loss_grad_portable(&th, &mut g2);
        assert_eq!(l1.to_bits(), l2.to_bits());
        assert_eq!(n.loss(&th).to_bits(), n.loss_with(&th).to_bits());
        for (a, b) in g1.iter().zip(&g2) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }

    #[test]
    fn breakpoints_are_where_the_slope_jumps() {
        let (n, th) = net();
        let bps = n.breakpoints(&th);
        let mut checked = 0;
        for bp in &bps {
            // Only breakpoints with no other one within 1e-3, so the jump is this unit's alone.
            if bps.iter().any(|o| o.x != bp.x && (o.x - bp.x).abs() < 1e-3) {
                continue;
            }
            let h = 1e-7;
            let slope = |x0: f64| (n.predict(&th, x0 + h) - n.predict(&th, x0 - h)) / (2.0 * h);
            let jump = slope(bp.x + 1e-4) - slope(bp.x - 1e-4);
            // Central differences of a linear piece are exact up to rounding ~1e-16/1e-7.
            assert!((jump - bp.slope_change).abs() < 1e-5 * (1.0 + bp.slope_change.abs()));
            checked += 1;
        }
        assert!(checked >= 4, "only {checked} isolated breakpoints");
    }

    #[test]
    fn bad_data_name_the_field() {
        let e = ReluNet1d::new(vec![0.0, 1.0], vec![0.0], 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.y"), "{e}");
        let e = ReluNet1d::new(vec![0.0, f64::NAN], vec![0.0, 1.0], 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.x[1]"), "{e}");
    }
}
