//! A one-hidden-layer sigmoid network as a landscape over its parameters (Paper 1's small
//! networks: the breast-cancer classifier and the teacher–student regression).
//!
//! # Equations
//!
//! Data `a_n ∈ ℝ^{n_in}`, targets `y_n`, `n = 1..N`; parameters
//! `x = (W, b, w, c)` with `W ∈ ℝ^{h×n_in}`, `b ∈ ℝ^h`, `w ∈ ℝ^h`, `c ∈ ℝ` (`b`, `c` only with
//! biases). The network output and the objective are
//!
//! `ℓ_n = wᵀ s(W a_n + b) + c`, `s(z) = 1/(1 + e^{−z})` elementwise,
//! `f(x) = (1/N) Σ_n ψ(ℓ_n, y_n) + λ ‖x‖²`,
//!
//! with `ψ(ℓ, y) = ½ log(1 + e^{−yℓ})` (logistic, `y = ±1`: Paper 1's classifier
//! `(1/2N) Σ log(1 + e^{−ℓ_n y_n})`) or `ψ(ℓ, y) = (ℓ − y)²` (squared error).
//!
//! Gradient (backpropagation), with `z = W a + b`, `σ = s(z)`, `σ' = σ(1 − σ)`,
//! `r_n = ψ'(ℓ_n)/N`, `δ_n = r_n (w ⊙ σ'_n)`:
//! `∇_w = Σ_n r_n σ_n`, `∇_c = Σ_n r_n`, `∇_W = Σ_n δ_n a_nᵀ`, `∇_b = Σ_n δ_n`, plus `2λx`.
//!
//! Hessian–vector product `H v` for `v = (V, β, u, γ)` by Pearlmutter's R-operator
//! (`R{·}` = directional derivative along `v`), with `σ'' = σ'(1 − 2σ)`:
//! `R{z} = V a + β`, `R{σ} = σ' ⊙ R{z}`, `R{ℓ} = uᵀσ + wᵀR{σ} + γ`,
//! `R{r} = ψ''(ℓ) R{ℓ}/N`, `R{δ} = R{r}(w ⊙ σ') + r (u ⊙ σ') + r (w ⊙ σ'' ⊙ R{z})`, then
//! `(Hv)_w = Σ_n (R{r} σ + r R{σ})`, `(Hv)_c = Σ_n R{r}`, `(Hv)_W = Σ_n R{δ} a_nᵀ`,
//! `(Hv)_b = Σ_n R{δ}`, plus `2λv`. No Hessian is ever formed; [`Landscape::hessian`] builds
//! one column per unit vector (slow, for tests).
//!
//! # Cost and batching
//!
//! The data matrix `A` (`N × n_in`) is shared by every path, so a block of `P` paths is done
//! with matrix–matrix products over all paths at once: `Z = A [W₁ᵀ … W_Pᵀ]` (`N × hP`) and
//! `∇_W = Aᵀ Δ`. A gradient is 2 such products (`2·N·n_in·h` multiply–adds each per path), a
//! Hessian–vector product 3 (the forward pass, its R-pass and the backward R-pass); the rest is
//! `O(N h)` elementwise work. Scratch matrices live in a per-thread cache, so the hot loop
//! does not allocate after the first call at a given block size.
//!
//! Parameter layout in `x`: `W` column-major as an `n_in × h` matrix `Wᵀ` (unit `k`'s input
//! weights contiguous), then `b`, `w`, `c`.

use std::cell::RefCell;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::Landscape;
use crate::error::{Error, Result};
use crate::linalg::Matrix;

/// The per-sample loss `ψ(ℓ, y)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetLoss {
    /// `ψ = ½ log(1 + e^{−yℓ})`, labels `y = ±1`.
    HalfLogistic,
    /// `ψ = (ℓ − y)²`.
    Squared,
}

impl NetLoss {
    /// `(ψ, ψ', ψ'')` at `(ℓ, y)`.
    #[inline]
    fn eval(self, l: f64, y: f64) -> (f64, f64, f64) {
        match self {
            NetLoss::HalfLogistic => {
                let m = y * l;
                // log(1 + e^{−m}) = max(−m, 0) + log(1 + e^{−|m|}), stable for any m.
                let psi = 0.5 * ((-m).max(0.0) + (-m.abs()).exp().ln_1p());
                let s_neg = sigmoid(-m);
                (psi, -0.5 * y * s_neg, 0.5 * s_neg * (1.0 - s_neg))
            }
            NetLoss::Squared => {
                let e = l - y;
                (e * e, 2.0 * e, 2.0)
            }
        }
    }
}

#[inline]
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// A one-hidden-layer sigmoid network with a linear read-out on a fixed data set.
#[derive(Debug, Clone)]
pub struct SigmoidNet {
    /// Data `A` (`N × n_in`).
    a: Matrix,
    /// Targets `y_n`.
    y: Vec<f64>,
    hidden: usize,
    bias: bool,
    loss: NetLoss,
    /// `λ` in `+ λ‖x‖²`.
    weight_decay: f64,
    label: String,
    /// Identifies this network (and its clones) in the per-thread forward-pass cache.
    id: u64,
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Per-thread scratch of the batched passes, with the last forward pass kept for reuse.
#[derive(Default)]
struct Scratch {
    /// Network id and the exact states (`d × P`) the cached forward pass (`wt`, `s`, `l`)
    /// belongs to; `None` when nothing is cached.
    cached: Option<(u64, Matrix)>,
    r: Matrix,
    wt: Matrix,
    vt: Matrix,
    s: Matrix,
    rz: Matrix,
    delta: Matrix,
    gw: Matrix,
    l: Matrix,
    rl: Matrix,
}

fn ensure(m: &mut Matrix, r: usize, c: usize) {
    if m.nrows() != r || m.ncols() != c {
        *m = Matrix::zeros(r, c);
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl SigmoidNet {
    /// A network on data `a` (`N × n_in`) with targets `y`, `hidden` units, optional biases,
    /// per-sample loss `loss` and weight decay `λ` (`f = (1/N) Σ ψ + λ‖x‖²`).
    pub fn new(
        a: Matrix,
        y: Vec<f64>,
        hidden: usize,
        bias: bool,
        loss: NetLoss,
        weight_decay: f64,
        label: impl Into<String>,
    ) -> Result<Self> {
        if a.nrows() == 0 || a.ncols() == 0 {
            return Err(Error::config(
                "landscape.data",
                format!("{} × {}", a.nrows(), a.ncols()),
                "must have at least one sample and one feature",
            ));
        }
        if y.len() != a.nrows() {
            return Err(Error::Dimension {
                what: "landscape targets vs samples".into(),
                expected: a.nrows(),
                got: y.len(),
            });
        }
        if hidden == 0 {
            return Err(Error::config("landscape.hidden", hidden, "must be ≥ 1"));
        }
        if !(weight_decay.is_finite() && weight_decay >= 0.0) {
            return Err(Error::config(
                "landscape.weight_decay",
                weight_decay,
                "must be finite and ≥ 0",
            ));
        }
        if !crate::linalg::all_finite(&a) || y.iter().any(|v| !v.is_finite()) {
            return Err(Error::config(
                "landscape.data",
                "non-finite entry",
                "must be finite",
            ));
        }
        if loss == NetLoss::HalfLogistic && y.iter().any(|&v| v != 1.0 && v != -1.0) {
            return Err(Error::config(
                "landscape.data",
                "a label other than ±1",
                "logistic loss needs labels ±1",
            ));
        }
        Ok(Self {
            a,
            y,
            hidden,
            bias,
            loss,
            weight_decay,
            label: label.into(),
            id: next_id(),
        })
    }

    /// Number of samples `N`.
    pub fn n_samples(&self) -> usize {
        self.a.nrows()
    }
    /// Input dimension.
    pub fn n_in(&self) -> usize {
        self.a.ncols()
    }
    /// Hidden width `h`.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    fn n_w(&self) -> usize {
        self.n_in() * self.hidden
    }
    /// Offsets of `b`, `w`, `c` in `x` (`b` and `c` absent without biases).
    fn offsets(&self) -> (usize, usize, usize) {
        let h = self.hidden;
        let nw = self.n_w();
        if self.bias {
            (nw, nw + h, nw + 2 * h)
        } else {
            (nw, nw, nw + h)
        }
    }

    /// A standard initialisation from `seed`: `W ~ N(0, scale²/n_in)`, `w ~ N(0, scale²/h)`,
    /// biases 0 (LeCun-normal for `scale = 1`).
    pub fn init(&self, seed: u64, scale: f64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let d = self.dim();
        let mut x = vec![0.0; d];
        let (ob, ow, _) = self.offsets();
        let sw = scale / (self.n_in() as f64).sqrt();
        let sv = scale / (self.hidden as f64).sqrt();
        for v in x.iter_mut().take(self.n_w()) {
            let z: f64 = StandardNormal.sample(&mut rng);
            *v = sw * z;
        }
        let _ = ob;
        for v in x.iter_mut().skip(ow).take(self.hidden) {
            let z: f64 = StandardNormal.sample(&mut rng);
            *v = sv * z;
        }
        x
    }

    /// Forward pass of `P` paths: fills `sc.wt` (`n_in × hP`), `sc.s = s(Z)` (`N × hP`) and
    /// `sc.l` (`N × P`, the outputs `ℓ`). Skipped when the thread's last forward pass was of
    /// this network at exactly the same states: an SDE step asks for `∇f(X)`, `H(X)∇f` and
    /// `H(X)ΔW` at one `X`, so two of its three forward passes are reused.
    fn forward(&self, xs: &Matrix, sc: &mut Scratch) {
        if let Some((id, cached)) = &sc.cached {
            if *id == self.id && cached == xs {
                return;
            }
        }
        self.forward_pass(xs, sc);
        match &mut sc.cached {
            Some((id, cached)) if cached.shape() == xs.shape() => {
                *id = self.id;
                cached.copy_from(xs);
            }
            slot => *slot = Some((self.id, xs.clone())),
        }
    }

    fn forward_pass(&self, xs: &Matrix, sc: &mut Scratch) {
        let (n, n_in, h, d) = (self.n_samples(), self.n_in(), self.hidden, self.dim());
        let p = xs.ncols();
        let (ob, ow, oc) = self.offsets();
        ensure(&mut sc.wt, n_in, h * p);
        ensure(&mut sc.s, n, h * p);
        ensure(&mut sc.l, n, p);
        let nw = self.n_w();
        let xsl = xs.as_slice();
        for j in 0..p {
            sc.wt.as_mut_slice()[j * nw..(j + 1) * nw].copy_from_slice(&xsl[j * d..j * d + nw]);
        }
        sc.s.gemm(1.0, &self.a, &sc.wt, 0.0);
        let s = sc.s.as_mut_slice();
        for j in 0..p {
            let x = &xsl[j * d..(j + 1) * d];
            for k in 0..h {
                let b = if self.bias { x[ob + k] } else { 0.0 };
                for v in &mut s[(j * h + k) * n..(j * h + k + 1) * n] {
                    *v = sigmoid(*v + b);
                }
            }
            let c = if self.bias { x[oc] } else { 0.0 };
            let l = &mut sc.l.as_mut_slice()[j * n..(j + 1) * n];
            l.fill(c);
            for k in 0..h {
                let wk = x[ow + k];
                for (li, si) in l.iter_mut().zip(&s[(j * h + k) * n..(j * h + k + 1) * n]) {
                    *li += wk * si;
                }
            }
        }
    }

    fn check_block(&self, xs: &Matrix, out: &Matrix) {
        assert_eq!(xs.nrows(), self.dim(), "state rows vs parameter dimension");
        assert_eq!(out.shape(), xs.shape(), "output shape");
    }
}

impl Landscape for SigmoidNet {
    fn dim(&self) -> usize {
        let h = self.hidden;
        self.n_w() + h + if self.bias { h + 1 } else { 0 }
    }

    fn loss(&self, x: &[f64]) -> f64 {
        let xs = Matrix::from_column_slice(self.dim(), 1, x);
        let mut out = [0.0];
        self.loss_batch(&xs, &mut out);
        out[0]
    }

    fn grad_into(&self, x: &[f64], out: &mut [f64]) {
        let xs = Matrix::from_column_slice(self.dim(), 1, x);
        let mut o = Matrix::zeros(self.dim(), 1);
        self.grad_batch(&xs, &mut o);
        out.copy_from_slice(o.as_slice());
    }

    fn hess_vec_into(&self, x: &[f64], v: &[f64], out: &mut [f64]) {
        let d = self.dim();
        let xs = Matrix::from_column_slice(d, 1, x);
        let vs = Matrix::from_column_slice(d, 1, v);
        let mut o = Matrix::zeros(d, 1);
        self.hess_vec_batch(&xs, &vs, &mut o);
        out.copy_from_slice(o.as_slice());
    }

    /// Column by column from Hessian–vector products (`d` of them; slow, for tests).
    fn hessian(&self, x: &[f64]) -> Matrix {
        let d = self.dim();
        let mut h = Matrix::zeros(d, d);
        // Chunks of unit vectors bound the scratch size (N × h·chunk).
        let chunk = 64.min(d);
        let xs = Matrix::from_fn(d, chunk, |i, _| x[i]);
        let mut e = Matrix::zeros(d, chunk);
        let mut hv = Matrix::zeros(d, chunk);
        for start in (0..d).step_by(chunk) {
            let m = chunk.min(d - start);
            e.fill(0.0);
            for c in 0..m {
                e[(start + c, c)] = 1.0;
            }
            self.hess_vec_batch(&xs, &e, &mut hv);
            h.columns_mut(start, m).copy_from(&hv.columns(0, m));
        }
        (&h + h.transpose()) * 0.5
    }

    fn describe(&self) -> String {
        self.label.clone()
    }

    fn loss_batch(&self, xs: &Matrix, out: &mut [f64]) {
        let (n, p) = (self.n_samples(), xs.ncols());
        SCRATCH.with(|sc| {
            let sc = &mut *sc.borrow_mut();
            self.forward(xs, sc);
            for (j, o) in out.iter_mut().enumerate().take(p) {
                let l = &sc.l.as_slice()[j * n..(j + 1) * n];
                let data: f64 = l
                    .iter()
                    .zip(&self.y)
                    .map(|(&li, &yi)| self.loss.eval(li, yi).0)
                    .sum::<f64>()
                    / n as f64;
                let x = xs.column(j);
                *o = data + self.weight_decay * x.norm_squared();
            }
        });
    }

    fn grad_batch(&self, xs: &Matrix, out: &mut Matrix) {
        self.check_block(xs, out);
        let (n, n_in, h, d) = (self.n_samples(), self.n_in(), self.hidden, self.dim());
        let p = xs.ncols();
        let (ob, ow, oc) = self.offsets();
        let nw = self.n_w();
        let inv_n = 1.0 / n as f64;
        SCRATCH.with(|sc| {
            let sc = &mut *sc.borrow_mut();
            self.forward(xs, sc);
            ensure(&mut sc.delta, n, h * p);
            ensure(&mut sc.gw, n_in, h * p);
            ensure(&mut sc.rl, n, p);
            // r = ψ'(ℓ)/N, stored in `rl`.
            for j in 0..p {
                let l = &sc.l.as_slice()[j * n..(j + 1) * n];
                let r = &mut sc.rl.as_mut_slice()[j * n..(j + 1) * n];
                for ((ri, &li), &yi) in r.iter_mut().zip(l).zip(&self.y) {
                    *ri = self.loss.eval(li, yi).1 * inv_n;
                }
            }
            let xsl = xs.as_slice();
            let s = sc.s.as_slice();
            let delta = sc.delta.as_mut_slice();
            let o = out.as_mut_slice();
            for j in 0..p {
                let x = &xsl[j * d..(j + 1) * d];
                let r = &sc.rl.as_slice()[j * n..(j + 1) * n];
                let oj = &mut o[j * d..(j + 1) * d];
                let mut gc = 0.0;
                for &ri in r {
                    gc += ri;
                }
                for k in 0..h {
                    let sk = &s[(j * h + k) * n..(j * h + k + 1) * n];
                    let dk = &mut delta[(j * h + k) * n..(j * h + k + 1) * n];
                    let wk = x[ow + k];
                    let (mut gw, mut gb) = (0.0, 0.0);
                    for ((dv, &si), &ri) in dk.iter_mut().zip(sk).zip(r) {
                        gw += ri * si;
                        *dv = ri * wk * si * (1.0 - si);
                        gb += *dv;
                    }
                    oj[ow + k] = gw;
                    if self.bias {
                        oj[ob + k] = gb;
                    }
                }
                if self.bias {
                    oj[oc] = gc;
                }
            }
            // ∇_W = Aᵀ Δ for every path at once.
            sc.gw.gemm_tr(1.0, &self.a, &sc.delta, 0.0);
            let gw = sc.gw.as_slice();
            for j in 0..p {
                o[j * d..j * d + nw].copy_from_slice(&gw[j * nw..(j + 1) * nw]);
            }
        });
        crate::linalg::axpy(2.0 * self.weight_decay, xs, out);
    }

    fn hess_vec_batch(&self, xs: &Matrix, vs: &Matrix, out: &mut Matrix) {
        self.check_block(xs, out);
        assert_eq!(vs.shape(), xs.shape(), "direction shape");
        let (n, n_in, h, d) = (self.n_samples(), self.n_in(), self.hidden, self.dim());
        let p = xs.ncols();
        let (ob, ow, oc) = self.offsets();
        let nw = self.n_w();
        let inv_n = 1.0 / n as f64;
        SCRATCH.with(|sc| {
            let sc = &mut *sc.borrow_mut();
            self.forward(xs, sc);
            ensure(&mut sc.vt, n_in, h * p);
            ensure(&mut sc.rz, n, h * p);
            ensure(&mut sc.delta, n, h * p);
            ensure(&mut sc.gw, n_in, h * p);
            ensure(&mut sc.rl, n, p);
            ensure(&mut sc.r, n, p);
            let vsl = vs.as_slice();
            for j in 0..p {
                sc.vt.as_mut_slice()[j * nw..(j + 1) * nw].copy_from_slice(&vsl[j * d..j * d + nw]);
            }
            // R{z} = V a + β.
            sc.rz.gemm(1.0, &self.a, &sc.vt, 0.0);
            let xsl = xs.as_slice();
            let s = sc.s.as_slice();
            let rz = sc.rz.as_mut_slice();
            // R{ℓ} = uᵀσ + wᵀ(σ' ⊙ R{z}) + γ.
            for j in 0..p {
                let x = &xsl[j * d..(j + 1) * d];
                let v = &vsl[j * d..(j + 1) * d];
                let rl = &mut sc.rl.as_mut_slice()[j * n..(j + 1) * n];
                rl.fill(if self.bias { v[oc] } else { 0.0 });
                for k in 0..h {
                    let beta = if self.bias { v[ob + k] } else { 0.0 };
                    let (wk, uk) = (x[ow + k], v[ow + k]);
                    let sk = &s[(j * h + k) * n..(j * h + k + 1) * n];
                    let rzk = &mut rz[(j * h + k) * n..(j * h + k + 1) * n];
                    for ((rli, rzi), &si) in rl.iter_mut().zip(rzk.iter_mut()).zip(sk) {
                        *rzi += beta;
                        *rli += uk * si + wk * si * (1.0 - si) * *rzi;
                    }
                }
            }
            let delta = sc.delta.as_mut_slice();
            let o = out.as_mut_slice();
            for j in 0..p {
                let x = &xsl[j * d..(j + 1) * d];
                let v = &vsl[j * d..(j + 1) * d];
                let l = &sc.l.as_slice()[j * n..(j + 1) * n];
                let r = &mut sc.r.as_mut_slice()[j * n..(j + 1) * n];
                let rl = &mut sc.rl.as_mut_slice()[j * n..(j + 1) * n];
                let oj = &mut o[j * d..(j + 1) * d];
                let mut hc = 0.0;
                // r = ψ'(ℓ)/N and rl ← R{r} = ψ''(ℓ) R{ℓ}/N.
                for (((ri, rli), &li), &yi) in r.iter_mut().zip(rl.iter_mut()).zip(l).zip(&self.y) {
                    let (_, d1, d2) = self.loss.eval(li, yi);
                    *ri = d1 * inv_n;
                    *rli *= d2 * inv_n;
                    hc += *rli;
                }
                for k in 0..h {
                    let (wk, uk) = (x[ow + k], v[ow + k]);
                    let sk = &s[(j * h + k) * n..(j * h + k + 1) * n];
                    let rzk = &rz[(j * h + k) * n..(j * h + k + 1) * n];
                    let dk = &mut delta[(j * h + k) * n..(j * h + k + 1) * n];
                    let (mut hw, mut hb) = (0.0, 0.0);
                    for i in 0..n {
                        let si = sk[i];
                        let sp = si * (1.0 - si);
                        let spp = sp * (1.0 - 2.0 * si);
                        let ri = r[i];
                        let rri = rl[i];
                        hw += rri * si + ri * sp * rzk[i];
                        let rd = rri * wk * sp + ri * uk * sp + ri * wk * spp * rzk[i];
                        dk[i] = rd;
                        hb += rd;
                    }
                    oj[ow + k] = hw;
                    if self.bias {
                        oj[ob + k] = hb;
                    }
                }
                if self.bias {
                    oj[oc] = hc;
                }
            }
            sc.gw.gemm_tr(1.0, &self.a, &sc.delta, 0.0);
            let gw = sc.gw.as_slice();
            for j in 0..p {
                o[j * d..j * d + nw].copy_from_slice(&gw[j * nw..(j + 1) * nw]);
            }
        });
        crate::linalg::axpy(2.0 * self.weight_decay, vs, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landscape::fd;

    fn tiny(loss: NetLoss, bias: bool) -> SigmoidNet {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (n, n_in, h) = (7, 3, 4);
        let a = Matrix::from_fn(n, n_in, |_, _| StandardNormal.sample(&mut rng));
        let y: Vec<f64> = (0..n)
            .map(|i| match loss {
                NetLoss::HalfLogistic => {
                    if i % 3 == 0 {
                        1.0
                    } else {
                        -1.0
                    }
                }
                NetLoss::Squared => 0.3 * i as f64 - 1.0,
            })
            .collect();
        SigmoidNet::new(a, y, h, bias, loss, 0.05, "tiny").unwrap()
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for loss in [NetLoss::HalfLogistic, NetLoss::Squared] {
            for bias in [true, false] {
                let net = tiny(loss, bias);
                let x = net.init(3, 1.5);
                let mut x = x;
                // Non-zero biases too.
                for (i, v) in x.iter_mut().enumerate() {
                    *v += 0.1 * ((i as f64) * 0.7).sin();
                }
                // Central differences: truncation O(step²) ≈ 1e-10, rounding ≈ 1e-16/step ≈
                // 1e-11 on O(1) values; 1e-7 leaves room for the curvature of the sigmoid.
                let eg = fd::grad_error(&net, &x, 1e-5);
                let eh = fd::hess_error(&net, &x, 1e-5);
                assert!(eg < 1e-7, "{loss:?} bias {bias}: grad error {eg:e}");
                assert!(eh < 1e-7, "{loss:?} bias {bias}: hess error {eh:e}");
            }
        }
    }

    #[test]
    fn batch_matches_pointwise_and_hessian_is_symmetric() {
        let net = tiny(NetLoss::HalfLogistic, true);
        let d = net.dim();
        let xs = Matrix::from_fn(d, 3, |i, j| 0.3 * ((i * 7 + j * 3) as f64).sin());
        let vs = Matrix::from_fn(d, 3, |i, j| ((i + 2 * j) as f64).cos());
        let (mut g, mut hv) = (Matrix::zeros(d, 3), Matrix::zeros(d, 3));
        net.grad_batch(&xs, &mut g);
        net.hess_vec_batch(&xs, &vs, &mut hv);
        let mut losses = [0.0; 3];
        net.loss_batch(&xs, &mut losses);
        for j in 0..3 {
            let x: Vec<f64> = xs.column(j).iter().copied().collect();
            let v: Vec<f64> = vs.column(j).iter().copied().collect();
            let (mut g1, mut h1) = (vec![0.0; d], vec![0.0; d]);
            net.grad_into(&x, &mut g1);
            net.hess_vec_into(&x, &v, &mut h1);
            assert!((net.loss(&x) - losses[j]).abs() < 1e-14);
            for i in 0..d {
                assert!((g1[i] - g[(i, j)]).abs() < 1e-14);
                assert!((h1[i] - hv[(i, j)]).abs() < 1e-14);
            }
            // The R-operator Hessian is symmetric up to rounding.
            let h = net.hessian(&x);
            let mut raw = Matrix::zeros(d, d);
            net.hess_vec_batch(
                &Matrix::from_fn(d, d, |i, _| x[i]),
                &Matrix::identity(d, d),
                &mut raw,
            );
            assert!((&raw - raw.transpose()).abs().max() < 1e-12 * (1.0 + h.abs().max()));
        }
    }

    /// The per-thread forward-pass cache never serves a stale pass: interleaved calls on two
    /// networks and changing states give bit-identical results to a fresh thread (no cache).
    #[test]
    fn forward_cache_is_exact() {
        let a = tiny(NetLoss::HalfLogistic, true);
        let b = tiny(NetLoss::Squared, true);
        let d = a.dim();
        let x1 = Matrix::from_fn(d, 2, |i, j| 0.2 * ((i + 3 * j) as f64).sin());
        let mut x2 = x1.clone();
        x2[(5, 1)] += 1e-9;
        let v = Matrix::from_fn(d, 2, |i, j| ((2 * i + j) as f64).cos());
        let calls = |net: &SigmoidNet, x: &Matrix| {
            let (mut g, mut h) = (Matrix::zeros(d, 2), Matrix::zeros(d, 2));
            net.grad_batch(x, &mut g);
            net.hess_vec_batch(x, &v, &mut h);
            (g, h)
        };
        let fresh = |net: &SigmoidNet, x: &Matrix| {
            let (net, x) = (net.clone(), x.clone());
            let v = v.clone();
            std::thread::spawn(move || {
                let (mut g, mut h) = (Matrix::zeros(d, 2), Matrix::zeros(d, 2));
                net.grad_batch(&x, &mut g);
                net.hess_vec_batch(&x, &v, &mut h);
                (g, h)
            })
            .join()
            .unwrap()
        };
        for (net, x) in [
            (&a, &x1),
            (&b, &x1),
            (&a, &x1),
            (&a, &x2),
            (&b, &x2),
            (&a, &x1),
        ] {
            assert_eq!(calls(net, x), fresh(net, x));
        }
    }

    #[test]
    fn logistic_loss_is_stable_at_large_margins() {
        let (psi, d1, d2) = NetLoss::HalfLogistic.eval(800.0, -1.0);
        assert!((psi - 400.0).abs() < 1e-9 && (d1 - 0.5).abs() < 1e-12 && d2 >= 0.0);
        let (psi, d1, _) = NetLoss::HalfLogistic.eval(800.0, 1.0);
        assert!(psi == 0.0 && d1.abs() < 1e-300);
    }

    #[test]
    fn rejects_bad_input() {
        let a = Matrix::zeros(3, 2);
        assert!(
            SigmoidNet::new(a.clone(), vec![1.0; 2], 2, true, NetLoss::Squared, 0.0, "").is_err()
        );
        assert!(SigmoidNet::new(
            a.clone(),
            vec![0.5; 3],
            2,
            true,
            NetLoss::HalfLogistic,
            0.0,
            ""
        )
        .is_err());
        assert!(SigmoidNet::new(a, vec![1.0; 3], 0, true, NetLoss::Squared, 0.0, "").is_err());
    }
}
