//! Exact batch-law operators of one subsampled step on an affine finite sum (least squares).
//!
//! On `f = (1/N) Σ_i f_i` with affine per-sample gradients `∇f_i(x) = H_i x − c_i` (least
//! squares: `H_i = a_i a_iᵀ`, `c_i = a_i b_i`), the update direction of SGD, USAM and m-USAM
//! with one mini-batch `γ` of size `B`, split into micro-batches `S_1 … S_{B/m}` of size `m`, is
//!
//! `d(x) = mean_j ∇f_{S_j}(x + ρ ∇f_{S_j}(x)) = A x − u`,
//! `A = A₀ + ρ A₁`, `u = u₀ + ρ u₁`, with
//! `A₀ = H_γ`, `u₀ = c_γ` (the batch's own averages), `A₁ = mean_j H_{S_j}²`,
//! `u₁ = mean_j H_{S_j} c_{S_j}`.
//!
//! SGD is `ρ = 0`; USAM is `m = B`; m-USAM any `m | B`. Everything the exact moment recursions
//! need is a fixed expectation over the batch law: the means `E[A_a]`, `E[u_a]` and the
//! second-order operators `E[A_a ⊗ A_b]`, `E[A_a ⊗ u_b]`, `E[u_a ⊗ A_b]`, `E[u_a ⊗ u_b]`
//! (`a, b ∈ {0, 1}`; `⊗` the Kronecker product, `vec` column-major, so
//! `vec(X M Yᵀ) = (Y ⊗ X) vec M`). [`BatchLaw`] computes them once.
//!
//! # How: positions and inclusion probabilities (not enumeration of batches)
//!
//! Write the batch as a sequence of `B` positions `γ_1 … γ_B` and the micro-batches as runs of
//! `m` consecutive positions. The oracle's draw is **exchangeable** (i.i.d. indices with
//! replacement; a uniform set in uniformly shuffled order without — see
//! [`crate::oracle::Subsampling::draw`]), so consecutive runs are a uniformly random partition.
//! Each piece is a sum of monomials over positions, e.g.
//! `A₁ = (1/(Bm)) Σ_j Σ_{p,p' ∈ run j} H_{γ_p} H_{γ_{p'}}`, and the expectation of a product of
//! two monomials depends only on which of its (at most four) positions coincide: with `k`
//! distinct positions the indices are `k` i.i.d. uniform draws (with replacement) or a uniform
//! `k`-tuple of *distinct* indices (without; the joint inclusion probability
//! `1/(N(N−1)⋯(N−k+1))`). So the monomial pairs are counted by coincidence pattern (integer
//! counts, exact), and each pattern is evaluated once:
//!
//! * i.i.d.: `(1/N^k) Σ_{i ∈ [N]^k} F(i)`;
//! * distinct: `(1/(N)_k) Σ_π μ(π) Σ_{i constant on the blocks of π} F(i)` — Möbius inversion on
//!   the lattice of set partitions `π` of the `k` labels, `μ(π) = Π_blocks (−1)^{|b|−1}(|b|−1)!`.
//!
//! `F` is multilinear in its per-occurrence atoms (`H_i` or `c_i`), so a block that occurs once
//! is summed in closed form (`Σ_i H_i = N H`); only blocks occurring twice or more are looped
//! over, at most two of them: the cost is `O(N²)` small-matrix products per pattern, whatever
//! `B` and `m` (a fraction of a second for `N = 32`; meant for `N` up to a few hundred).
//!
//! Why not enumerate the batches: `C(32, 4) = 35 960` sets is cheap, but with replacement it is
//! `N^B` ordered batches, and the m-sweep needs `B = 16` or `32` (`C(32, 16) ≈ 6·10⁸` sets,
//! times the partitions into micro-batches). The pattern computation is exact, independent of
//! `B`, and the tests check it against brute-force enumeration of every ordered batch on small
//! cases, with `A` and `u` read off the algorithm's own code ([`super::msam::MSam::direction`]).

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::landscape::Landscape;
use crate::linalg::{Matrix, Vector};

/// Per-sample affine gradients `∇f_i(x) = H_i x − c_i`.
#[derive(Debug, Clone)]
pub struct AffineFiniteSum {
    d: usize,
    h: Vec<Matrix>,
    c: Vec<Vector>,
    h_sum: Matrix,
    c_sum: Vector,
}

impl AffineFiniteSum {
    /// Reads `H_i` (columns `∇²f_i e_k`) and `c_i = −∇f_i(0)` off a finite-sum landscape whose
    /// gradients are affine; `None` otherwise.
    pub fn from_landscape(f: &dyn Landscape) -> Option<Self> {
        if !f.affine_gradient() {
            return None;
        }
        let fs = f.as_finite_sum()?;
        let (d, n) = (f.dim(), fs.n_samples());
        let zero = vec![0.0; d];
        let (mut e, mut col) = (vec![0.0; d], vec![0.0; d]);
        let mut h = Vec::with_capacity(n);
        let mut c = Vec::with_capacity(n);
        for i in 0..n {
            let mut hi = Matrix::zeros(d, d);
            for k in 0..d {
                e.fill(0.0);
                e[k] = 1.0;
                fs.sample_hess_vec_into(i, &zero, &e, &mut col);
                hi.column_mut(k).copy_from_slice(&col);
            }
            fs.sample_grad_into(i, &zero, &mut col);
            h.push(hi);
            c.push(-Vector::from_column_slice(&col));
        }
        Some(Self::new(h, c))
    }

    /// From explicit `H_i` and `c_i` (all of dimension `d`).
    pub fn new(h: Vec<Matrix>, c: Vec<Vector>) -> Self {
        let d = c.first().map_or(0, |v| v.len());
        let h_sum = h.iter().fold(Matrix::zeros(d, d), |a, b| a + b);
        let c_sum = c.iter().fold(Vector::zeros(d), |a, b| a + b);
        Self {
            d,
            h,
            c,
            h_sum,
            c_sum,
        }
    }

    /// Dimension `d`.
    pub fn dim(&self) -> usize {
        self.d
    }
    /// Number of samples `N`.
    pub fn n_samples(&self) -> usize {
        self.h.len()
    }
    /// `H = (1/N) Σ_i H_i`.
    pub fn h_mean(&self) -> Matrix {
        &self.h_sum / self.n_samples() as f64
    }
    /// `q = (1/N) Σ_i c_i` (so `∇f(x) = H x − q`).
    pub fn c_mean(&self) -> Vector {
        &self.c_sum / self.n_samples() as f64
    }
    /// `H_i`.
    pub fn h_i(&self, i: usize) -> &Matrix {
        &self.h[i]
    }
    /// `c_i`.
    pub fn c_i(&self, i: usize) -> &Vector {
        &self.c[i]
    }
    /// The per-sample gradient covariance `Cov_i(∇f_i(x)) = (1/N) Σ_i (∇f_i − ∇f)(∇f_i − ∇f)ᵀ`.
    pub fn gradient_covariance(&self, x: &Vector) -> Matrix {
        let n = self.n_samples() as f64;
        let g = self.h_mean() * x - self.c_mean();
        let mut out = Matrix::zeros(self.d, self.d);
        for (hi, ci) in self.h.iter().zip(&self.c) {
            let dev = hi * x - ci - &g;
            out += &dev * dev.transpose();
        }
        out / n
    }
}

/// The mini-batch law: `B` of `N` samples, with or without replacement, split into `B/m`
/// micro-batches of `m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchShape {
    /// Number of samples `N`.
    pub n: usize,
    /// Batch size `B`.
    pub batch: usize,
    /// Micro-batch size `m` (divides `B`; `m = B` for SGD and USAM).
    pub micro: usize,
    /// Indices drawn with replacement.
    pub replacement: bool,
}

impl BatchShape {
    /// Checks `1 ≤ m | B` and `B ≤ N` without replacement.
    pub fn check(&self) -> Result<()> {
        if self.batch == 0 || (!self.replacement && self.batch > self.n) {
            return Err(Error::config(
                "oracle.batch",
                self.batch,
                format!("must be in 1..={} (N) without replacement", self.n),
            ));
        }
        if self.micro == 0 || !self.batch.is_multiple_of(self.micro) {
            return Err(Error::config(
                "micro_batch",
                self.micro,
                format!("must be ≥ 1 and divide the batch size {}", self.batch),
            ));
        }
        Ok(())
    }

    /// The finite-population factor of a uniform sample of `k` positions: `c_k = 1/k` with
    /// replacement, `(N − k)/(k(N − 1))` without (`Cov(∇f_S) = c_k Cov_i(∇f_i)`).
    pub fn factor(&self, k: usize) -> f64 {
        let (k, n) = (k as f64, self.n as f64);
        if self.replacement {
            1.0 / k
        } else if self.n <= 1 {
            0.0
        } else {
            (n - k) / (k * (n - 1.0))
        }
    }
}

/// One of the four random pieces of `d(x) = (A₀ + ρA₁) x − (u₀ + ρu₁)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    A0,
    A1,
    U0,
    U1,
}

/// An atom of a monomial: a per-sample Hessian or offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    H,
    C,
}

impl Piece {
    fn atoms(self) -> &'static [Atom] {
        match self {
            Piece::A0 => &[Atom::H],
            Piece::U0 => &[Atom::C],
            Piece::A1 => &[Atom::H, Atom::H],
            Piece::U1 => &[Atom::H, Atom::C],
        }
    }
    /// Columns of the piece (`d` for matrices, 1 for vectors).
    fn cols(self, d: usize) -> usize {
        match self {
            Piece::A0 | Piece::A1 => d,
            Piece::U0 | Piece::U1 => 1,
        }
    }
    /// The piece as `weight · Σ_{positions}` monomials: the common weight and the position
    /// lists (`[p]` for `H_γ`, `c_γ`; `[p, p']` in one micro-batch for `A₁`, `u₁`).
    fn monomials(self, s: &BatchShape) -> (f64, Vec<[u32; 2]>) {
        let (b, m) = (s.batch, s.micro);
        match self {
            Piece::A0 | Piece::U0 => (1.0 / b as f64, (0..b as u32).map(|p| [p, p]).collect()),
            Piece::A1 | Piece::U1 => {
                let mut v = Vec::with_capacity(b * m);
                for p in 0..b {
                    let g = p / m;
                    for q in g * m..(g + 1) * m {
                        v.push([p as u32, q as u32]);
                    }
                }
                (1.0 / (b * m) as f64, v)
            }
        }
    }
}

/// The exact batch-law operators of one step (see the module docs).
#[derive(Debug, Clone)]
pub struct BatchLaw {
    /// The batch law.
    pub shape: BatchShape,
    d: usize,
    /// `E[A_a]`, `a = 0, 1`.
    pub mean_a: [Matrix; 2],
    /// `E[u_a]`.
    pub mean_u: [Vector; 2],
    /// `E[A_a ⊗ A_b]` (`d² × d²`).
    pub aa: [[Matrix; 2]; 2],
    /// `E[A_a ⊗ u_b]` (`d² × d`).
    pub au: [[Matrix; 2]; 2],
    /// `E[u_a ⊗ A_b]` (`d² × d`).
    pub ua: [[Matrix; 2]; 2],
    /// `E[u_a ⊗ u_b]` (`d²`).
    pub uu: [[Vector; 2]; 2],
}

/// Set partitions of `{0, …, k−1}` as restricted-growth strings, with their Möbius weight
/// `μ(0̂, π) = Π_blocks (−1)^{|b|−1} (|b|−1)!`.
fn set_partitions(k: usize) -> Vec<(Vec<u8>, f64)> {
    fn rec(a: &mut Vec<u8>, k: usize, out: &mut Vec<Vec<u8>>) {
        if a.len() == k {
            out.push(a.clone());
            return;
        }
        let next = a.iter().copied().max().map_or(0, |m| m + 1);
        for v in 0..=next {
            a.push(v);
            rec(a, k, out);
            a.pop();
        }
    }
    let mut all = Vec::new();
    rec(&mut Vec::new(), k, &mut all);
    all.into_iter()
        .map(|p| {
            let nb = p.iter().copied().max().map_or(0, |m| m as usize + 1);
            let mut mu = 1.0;
            for b in 0..nb {
                let size = p.iter().filter(|&&v| v as usize == b).count();
                for j in 1..size {
                    mu *= -(j as f64);
                }
            }
            (p, mu)
        })
        .collect()
}

impl BatchLaw {
    /// Computes every operator for the batch law `shape` on the finite sum `fs`.
    pub fn new(fs: &AffineFiniteSum, shape: BatchShape) -> Result<Self> {
        shape.check()?;
        if shape.n != fs.n_samples() {
            return Err(Error::Dimension {
                what: "batch law sample count vs landscape".into(),
                expected: fs.n_samples(),
                got: shape.n,
            });
        }
        let d = fs.dim();
        let ev = Evaluator::new(fs, shape);
        let pieces_a = [Piece::A0, Piece::A1];
        let pieces_u = [Piece::U0, Piece::U1];
        let vec_of = |m: Matrix| Vector::from_column_slice(m.as_slice());
        let mean_a = pieces_a.map(|p| ev.first(p));
        let mean_u = pieces_u.map(|p| vec_of(ev.first(p)));
        let aa = pieces_a.map(|x| pieces_a.map(|y| ev.second(x, y)));
        let au = pieces_a.map(|x| pieces_u.map(|y| ev.second(x, y)));
        let ua = pieces_u.map(|x| pieces_a.map(|y| ev.second(x, y)));
        let uu = pieces_u.map(|x| pieces_u.map(|y| vec_of(ev.second(x, y))));
        Ok(Self {
            shape,
            d,
            mean_a,
            mean_u,
            aa,
            au,
            ua,
            uu,
        })
    }

    /// Dimension `d`.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// `E[A] = E[A₀] + ρ E[A₁]` and `E[u]`: the mean direction is `E[A] x − E[u]`.
    pub fn mean_direction(&self, rho: f64) -> (Matrix, Vector) {
        (
            &self.mean_a[0] + rho * &self.mean_a[1],
            &self.mean_u[0] + rho * &self.mean_u[1],
        )
    }

    /// `E[A ⊗ A]`, `E[A ⊗ u]`, `E[u ⊗ A]`, `E[u ⊗ u]` at radius `ρ`.
    #[allow(clippy::needless_range_loop)] // index loops mirror the formulas
    pub fn second_moments(&self, rho: f64) -> (Matrix, Matrix, Matrix, Vector) {
        let w = [[1.0, rho], [rho, rho * rho]];
        let d = self.d;
        let mut aa = Matrix::zeros(d * d, d * d);
        let mut au = Matrix::zeros(d * d, d);
        let mut ua = Matrix::zeros(d * d, d);
        let mut uu = Vector::zeros(d * d);
        for a in 0..2 {
            for b in 0..2 {
                aa += w[a][b] * &self.aa[a][b];
                au += w[a][b] * &self.au[a][b];
                ua += w[a][b] * &self.ua[a][b];
                uu += w[a][b] * &self.uu[a][b];
            }
        }
        (aa, au, ua, uu)
    }

    /// The covariance form `vec Σ_w(x) = C₂ vec(x xᵀ) + C₁ x + C₀` of
    /// `Σ_w(x) = Σ_{a,b} w_ab Cov(d_a(x), d_b(x))`, `d_a(x) = A_a x − u_a`.
    ///
    /// `w = [[1, 0], [0, 0]]` is the batch gradient's covariance `Σ(x) = c_B Cov_i(∇f_i(x))`;
    /// `[[1, ρ], [ρ, 0]]` is `Σ + ρ(Σ̂ + Σ̂ᵀ)` with `Σ̂ = Cov(∇f_γ, mean_j H_{S_j}∇f_{S_j})`
    /// (the SDE's first-order diffusion); `[[1, ρ], [ρ, ρ²]]` is the direction's full covariance.
    ///
    /// With `vec(A_a x xᵀ A_bᵀ) = (A_b ⊗ A_a) vec(xxᵀ)`, `vec(A_a x u_bᵀ) = (u_b ⊗ A_a) x`,
    /// `vec(u_a xᵀ A_bᵀ) = (A_b ⊗ u_a) x`, `vec(u_a u_bᵀ) = u_b ⊗ u_a`, and the same with means
    /// subtracted.
    #[allow(clippy::needless_range_loop)] // index loops mirror the formulas
    pub fn covariance_form(&self, w: [[f64; 2]; 2]) -> (Matrix, Matrix, Vector) {
        let d = self.d;
        let mut c2 = Matrix::zeros(d * d, d * d);
        let mut c1 = Matrix::zeros(d * d, d);
        let mut c0 = Vector::zeros(d * d);
        for a in 0..2 {
            for b in 0..2 {
                if w[a][b] == 0.0 {
                    continue;
                }
                let (ma, mb) = (&self.mean_a[a], &self.mean_a[b]);
                let (va, vb) = (&self.mean_u[a], &self.mean_u[b]);
                c2 += w[a][b] * (&self.aa[b][a] - mb.kronecker(ma));
                c1 -= w[a][b]
                    * (&self.ua[b][a] + &self.au[b][a] - vb.kronecker(ma) - mb.kronecker(va));
                c0 += w[a][b] * (&self.uu[b][a] - vb.kronecker(va));
            }
        }
        (c2, c1, c0)
    }
}

/// Evaluates pattern expectations for one batch law.
struct Evaluator<'a> {
    fs: &'a AffineFiniteSum,
    shape: BatchShape,
    partitions: Vec<Vec<(Vec<u8>, f64)>>,
}

impl<'a> Evaluator<'a> {
    fn new(fs: &'a AffineFiniteSum, shape: BatchShape) -> Self {
        Self {
            fs,
            shape,
            partitions: (0..=4).map(set_partitions).collect(),
        }
    }

    /// `E[X]` for one piece.
    fn first(&self, x: Piece) -> Matrix {
        let (w, mono) = x.monomials(&self.shape);
        let na = x.atoms().len();
        let mut counts: HashMap<[u8; 4], u64> = HashMap::new();
        for pos in &mono {
            *counts.entry(canonical(&pos[..na], &[])).or_default() += 1;
        }
        self.sum_patterns(counts, w, x.atoms(), &[], (self.fs.d, x.cols(self.fs.d)))
    }

    /// `E[X ⊗ Y]`.
    fn second(&self, x: Piece, y: Piece) -> Matrix {
        let (wx, mx) = x.monomials(&self.shape);
        let (wy, my) = y.monomials(&self.shape);
        let (nx, ny) = (x.atoms().len(), y.atoms().len());
        let mut counts: HashMap<[u8; 4], u64> = HashMap::new();
        for px in &mx {
            for py in &my {
                *counts.entry(canonical(&px[..nx], &py[..ny])).or_default() += 1;
            }
        }
        let d = self.fs.d;
        self.sum_patterns(
            counts,
            wx * wy,
            x.atoms(),
            y.atoms(),
            (d * d, x.cols(d) * y.cols(d)),
        )
    }

    /// `Σ_patterns weight · count · E[pattern]`, patterns in sorted order (deterministic sum).
    fn sum_patterns(
        &self,
        counts: HashMap<[u8; 4], u64>,
        weight: f64,
        ax: &[Atom],
        ay: &[Atom],
        shape: (usize, usize),
    ) -> Matrix {
        let mut keys: Vec<_> = counts.into_iter().collect();
        keys.sort_unstable();
        let mut out = Matrix::zeros(shape.0, shape.1);
        let n_occ = ax.len() + ay.len();
        for (labels, count) in keys {
            let e = self.pattern(&labels[..n_occ], ax, ay, shape);
            out += (weight * count as f64) * e;
        }
        out
    }

    /// The expectation of one pattern: occurrences `ax ++ ay` at position labels `labels`
    /// (equal labels = the same position, distinct labels = distinct positions).
    fn pattern(&self, labels: &[u8], ax: &[Atom], ay: &[Atom], shape: (usize, usize)) -> Matrix {
        let k = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
        let n = self.shape.n as f64;
        let mut out = Matrix::zeros(shape.0, shape.1);
        if self.shape.replacement {
            // i.i.d. indices: every label its own block.
            let singletons: Vec<u8> = (0..k as u8).collect();
            self.block_sum(
                labels,
                &singletons,
                ax,
                ay,
                1.0 / n.powi(k as i32),
                &mut out,
            );
        } else {
            let falling: f64 = (0..k).map(|j| n - j as f64).product();
            for (pi, mu) in &self.partitions[k] {
                self.block_sum(labels, pi, ax, ay, mu / falling, &mut out);
            }
        }
        out
    }

    /// `out += coef · Σ_{i constant on the blocks of π} F(i)`; blocks met once are summed in
    /// closed form (multilinearity), the others looped over.
    fn block_sum(
        &self,
        labels: &[u8],
        pi: &[u8],
        ax: &[Atom],
        ay: &[Atom],
        coef: f64,
        out: &mut Matrix,
    ) {
        let occ_block: Vec<usize> = labels.iter().map(|&l| pi[l as usize] as usize).collect();
        let n_blocks = pi.iter().copied().max().map_or(0, |m| m as usize + 1);
        let mut uses = vec![0usize; n_blocks];
        for &b in &occ_block {
            uses[b] += 1;
        }
        let looped: Vec<usize> = (0..n_blocks).filter(|&b| uses[b] >= 2).collect();
        let n = self.shape.n;
        let mut idx = vec![0usize; n_blocks];
        let total = n.pow(looped.len() as u32);
        for t in 0..total {
            let mut r = t;
            for &b in &looped {
                idx[b] = r % n;
                r /= n;
            }
            let atom = |o: usize, a: Atom| -> Matrix {
                let b = occ_block[o];
                match (a, uses[b] >= 2) {
                    (Atom::H, true) => self.fs.h[idx[b]].clone(),
                    (Atom::H, false) => self.fs.h_sum.clone(),
                    (Atom::C, true) => {
                        Matrix::from_column_slice(self.fs.d, 1, self.fs.c[idx[b]].as_slice())
                    }
                    (Atom::C, false) => {
                        Matrix::from_column_slice(self.fs.d, 1, self.fs.c_sum.as_slice())
                    }
                }
            };
            let product = |atoms: &[Atom], offset: usize| -> Matrix {
                let mut p = atom(offset, atoms[0]);
                for (j, &a) in atoms.iter().enumerate().skip(1) {
                    let next = &p * atom(offset + j, a);
                    p = next;
                }
                p
            };
            let x = product(ax, 0);
            if ay.is_empty() {
                *out += coef * x;
            } else {
                let y = product(ay, ax.len());
                *out += coef * x.kronecker(&y);
            }
        }
    }
}

/// Relabels the positions of `a ++ b` by order of first appearance (`[5, 2, 5, 7]` →
/// `[0, 1, 0, 2]`); unused slots stay 0.
fn canonical(a: &[u32], b: &[u32]) -> [u8; 4] {
    let mut seen = [0u32; 4];
    let mut n_seen = 0usize;
    let mut out = [0u8; 4];
    for (o, &p) in a.iter().chain(b).enumerate() {
        let label = match seen[..n_seen].iter().position(|&s| s == p) {
            Some(l) => l,
            None => {
                seen[n_seen] = p;
                n_seen += 1;
                n_seen - 1
            }
        };
        out[o] = label as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landscape::{FiniteSum, LeastSquares};
    use crate::optim::msam::{MSam, MSamWorkspace};

    /// `(A₀, u₀, A₁, u₁)` of one ordered batch, read off m-USAM's own direction:
    /// `d(x; ρ) = (A₀ + ρA₁) x − (u₀ + ρu₁)` exactly on least squares, so `u = −d(0)` and
    /// `A e_k = d(e_k) + u`, at `ρ = 0` and `ρ = 1`.
    fn pieces(f: &LeastSquares, batch: &[u32], m: usize) -> [Matrix; 4] {
        let d = f.dim();
        let mut ws = MSamWorkspace::new(d);
        let mut out = vec![0.0; d];
        let mut affine = |rho: f64| -> (Matrix, Vector) {
            let alg = MSam {
                eta: 1.0,
                rho,
                m,
                normalized: false,
            };
            let zero = vec![0.0; d];
            alg.direction(f, batch, &zero, &mut out, &mut ws);
            let u = -Vector::from_column_slice(&out);
            let mut a = Matrix::zeros(d, d);
            for k in 0..d {
                let mut e = vec![0.0; d];
                e[k] = 1.0;
                alg.direction(f, batch, &e, &mut out, &mut ws);
                a.set_column(k, &(Vector::from_column_slice(&out) + &u));
            }
            (a, u)
        };
        let (a0, u0) = affine(0.0);
        let (a, u) = affine(1.0);
        let as_col = |v: &Vector| Matrix::from_column_slice(d, 1, v.as_slice());
        [a0.clone(), &a - &a0, as_col(&u0), as_col(&(&u - &u0))]
    }

    /// Every ordered batch of the law with its probability.
    fn ordered_batches(n: usize, b: usize, replacement: bool) -> Vec<Vec<u32>> {
        let mut out = Vec::new();
        let mut cur = Vec::new();
        fn rec(n: usize, b: usize, rep: bool, cur: &mut Vec<u32>, out: &mut Vec<Vec<u32>>) {
            if cur.len() == b {
                out.push(cur.clone());
                return;
            }
            for i in 0..n as u32 {
                if rep || !cur.contains(&i) {
                    cur.push(i);
                    rec(n, b, rep, cur, out);
                    cur.pop();
                }
            }
        }
        rec(n, b, replacement, &mut cur, &mut out);
        out
    }

    /// The pattern computation equals brute-force enumeration of every ordered batch (uniform
    /// over ordered batches = uniform set in uniform order, or i.i.d.), with `A`, `u` taken from
    /// `MSam::direction`: both sides are exact, so the tolerance is rounding (1e-11 relative to
    /// the largest entry; the sums have ~10³ terms of size ~10).
    #[test]
    fn operators_match_enumeration_of_every_ordered_batch() {
        let f = LeastSquares::synthetic(6, 2, 0.5, 11).unwrap();
        let fs = AffineFiniteSum::from_landscape(&f).unwrap();
        for replacement in [false, true] {
            for m in [1, 2, 4] {
                let shape = BatchShape {
                    n: 6,
                    batch: 4,
                    micro: m,
                    replacement,
                };
                let law = BatchLaw::new(&fs, shape).unwrap();
                let batches = ordered_batches(6, 4, replacement);
                let p = 1.0 / batches.len() as f64;
                let mut mean = [Matrix::zeros(2, 2), Matrix::zeros(2, 2)];
                let mut mean_u = [Matrix::zeros(2, 1), Matrix::zeros(2, 1)];
                let mut aa = [
                    [Matrix::zeros(4, 4), Matrix::zeros(4, 4)],
                    [Matrix::zeros(4, 4), Matrix::zeros(4, 4)],
                ];
                let mut au = [
                    [Matrix::zeros(4, 2), Matrix::zeros(4, 2)],
                    [Matrix::zeros(4, 2), Matrix::zeros(4, 2)],
                ];
                let mut ua = au.clone();
                let mut uu = [
                    [Matrix::zeros(4, 1), Matrix::zeros(4, 1)],
                    [Matrix::zeros(4, 1), Matrix::zeros(4, 1)],
                ];
                for b in &batches {
                    let [a0, a1, u0, u1] = pieces(&f, b, m);
                    let (av, uv) = ([a0, a1], [u0, u1]);
                    for a in 0..2 {
                        mean[a] += p * &av[a];
                        mean_u[a] += p * &uv[a];
                        for c in 0..2 {
                            aa[a][c] += p * av[a].kronecker(&av[c]);
                            au[a][c] += p * av[a].kronecker(&uv[c]);
                            ua[a][c] += p * uv[a].kronecker(&av[c]);
                            uu[a][c] += p * uv[a].kronecker(&uv[c]);
                        }
                    }
                }
                let close = |got: &[f64], want: &[f64], what: &str| {
                    let scale = want.iter().fold(1.0_f64, |s, v| s.max(v.abs()));
                    let err = got
                        .iter()
                        .zip(want)
                        .fold(0.0_f64, |e, (g, w)| e.max((g - w).abs()));
                    assert!(
                        err < 1e-11 * scale,
                        "{what}, m = {m}, replacement {replacement}: error {err:.2e} (scale {scale:.2e})"
                    );
                };
                for a in 0..2 {
                    close(law.mean_a[a].as_slice(), mean[a].as_slice(), "E[A]");
                    close(law.mean_u[a].as_slice(), mean_u[a].as_slice(), "E[u]");
                    for c in 0..2 {
                        close(law.aa[a][c].as_slice(), aa[a][c].as_slice(), "E[A⊗A]");
                        close(law.au[a][c].as_slice(), au[a][c].as_slice(), "E[A⊗u]");
                        close(law.ua[a][c].as_slice(), ua[a][c].as_slice(), "E[u⊗A]");
                        close(law.uu[a][c].as_slice(), uu[a][c].as_slice(), "E[u⊗u]");
                    }
                }
            }
        }
    }

    /// Closed forms: `E[A₀] = H`, `E[u₀] = q`, the batch gradient's covariance is
    /// `c_B Cov_i(∇f_i(x))` (the oracle's formula), and for `m = 1`, `E[A₁] = mean_i H_i²`.
    #[test]
    fn closed_forms_of_the_law() {
        let f = LeastSquares::synthetic(10, 3, 0.4, 2).unwrap();
        let fs = AffineFiniteSum::from_landscape(&f).unwrap();
        let x = Vector::from_vec(vec![0.3, -1.2, 0.5]);
        for replacement in [false, true] {
            let shape = BatchShape {
                n: 10,
                batch: 4,
                micro: 1,
                replacement,
            };
            let law = BatchLaw::new(&fs, shape).unwrap();
            assert!((&law.mean_a[0] - f.h()).abs().max() < 1e-12);
            assert!((&law.mean_u[0] - fs.c_mean()).abs().max() < 1e-12);
            let (c2, c1, c0) = law.covariance_form([[1.0, 0.0], [0.0, 0.0]]);
            let xx = &x * x.transpose();
            let v = c2 * Vector::from_column_slice(xx.as_slice()) + c1 * &x + c0;
            let sigma = Matrix::from_column_slice(3, 3, v.as_slice());
            let oracle = crate::oracle::Oracle::Subsampling(crate::oracle::Subsampling {
                batch: 4,
                replacement,
                n: 10,
            });
            let want = oracle.covariance(&f, x.as_slice());
            assert!((&sigma - &want).abs().max() < 1e-12 * (1.0 + want.abs().max()));
            let want_f = shape.factor(4) * fs.gradient_covariance(&x);
            assert!((&sigma - want_f).abs().max() < 1e-12 * (1.0 + want.abs().max()));
            let h2 = (0..10).fold(Matrix::zeros(3, 3), |s, i| s + fs.h_i(i) * fs.h_i(i)) / 10.0;
            assert!((&law.mean_a[1] - &h2).abs().max() < 1e-12 * h2.abs().max());
            assert_eq!(fs.n_samples(), f.n_samples());
        }
    }

    #[test]
    fn set_partition_counts_and_weights() {
        // Bell numbers 1, 1, 2, 5, 15; Σ_π μ(π) = 0 for k ≥ 2 (Möbius function of the lattice).
        for (k, bell) in [(0, 1), (1, 1), (2, 2), (3, 5), (4, 15)] {
            let p = set_partitions(k);
            assert_eq!(p.len(), bell);
            let s: f64 = p.iter().map(|(_, mu)| mu).sum();
            assert_eq!(s, if k <= 1 { 1.0 } else { 0.0 }, "k = {k}");
        }
        assert_eq!(canonical(&[5, 2], &[5, 7]), [0, 1, 0, 2]);
    }
}
