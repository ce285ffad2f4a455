//! Gradient oracles (docs/theory.md §1): what a stochastic algorithm sees instead of `∇f`.
//!
//! * **Full batch** — `∇f_γ = ∇f`, `Σ = 0`.
//! * **Additive Gaussian** — `∇f_γ(y) = ∇f(y) + Z_k`, `Z_k = S ξ_k`, `ξ_k ~ N(0, I)`; the same
//!   `Z_k` is used at both SAM points, so `H_γ = H` and `Σ = S Sᵀ` is constant. `S = σI` is the
//!   isotropic case.
//! * **Finite-sum subsampling** — draw `γ` of size `B` uniformly (without replacement by default),
//!   use `∇f_γ = (1/B) Σ_{i∈γ} ∇f_i` at both points. Exact covariance
//!   `Σ(x) = c_B (1/N) Σ_i (∇f_i − ∇f)(∇f_i − ∇f)ᵀ` with `c_B = 1/B` (with replacement) or
//!   `c_B = (N−B)/(B(N−1))` (without).
//!
//! One oracle value serves both a discrete algorithm (draws) and its SDE (covariance and a factor
//! `D` with `D Dᵀ = Σ`), so the two cannot disagree about the noise. For subsampling the factor is
//! `D(x) = √(c_B/N) [∇f_1 − ∇f, …, ∇f_N − ∇f]` (`d × N`), exact with no matrix square root.
//! An oracle is an enum rather than a trait object: the set is closed, and the engine needs to
//! know which noise it is to couple it (additive) or to draw index sets (subsampling).

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::landscape::{FiniteSum, Landscape};
use crate::linalg::Matrix;

/// Additive Gaussian noise `Z = S ξ`.
#[derive(Debug, Clone)]
pub struct AdditiveNoise {
    s: Matrix,
    sigma: Option<f64>,
}

impl AdditiveNoise {
    /// `S = σ I_d`.
    pub fn isotropic(d: usize, sigma: f64) -> Result<Self> {
        if !(sigma.is_finite() && sigma >= 0.0) {
            return Err(Error::config(
                "oracle.sigma",
                sigma,
                "must be finite and ≥ 0",
            ));
        }
        Ok(Self {
            s: Matrix::identity(d, d) * sigma,
            sigma: Some(sigma),
        })
    }
    /// A general `S` (`d × m`); `Σ = S Sᵀ`.
    pub fn general(s: Matrix) -> Result<Self> {
        if !crate::linalg::all_finite(&s) {
            return Err(Error::config(
                "oracle.s",
                "non-finite entry",
                "must be finite",
            ));
        }
        Ok(Self { s, sigma: None })
    }
    /// From a covariance `Σ` (must be PSD): `S` is its symmetric square root.
    pub fn from_covariance(sigma_matrix: &Matrix) -> Result<Self> {
        if sigma_matrix.nrows() != sigma_matrix.ncols() {
            return Err(Error::Dimension {
                what: "oracle.covariance must be square".into(),
                expected: sigma_matrix.nrows(),
                got: sigma_matrix.ncols(),
            });
        }
        if !crate::linalg::all_finite(sigma_matrix) {
            return Err(Error::config(
                "oracle.covariance",
                "non-finite entry",
                "must be finite",
            ));
        }
        let asym = (sigma_matrix - sigma_matrix.transpose()).abs().max();
        if asym > 1e-12 * (1.0 + sigma_matrix.abs().max()) {
            return Err(Error::config(
                "oracle.covariance",
                format!("max |Σ - Σᵀ| = {asym:.3e}"),
                "must be symmetric",
            ));
        }
        let root = crate::linalg::psd_sqrt(sigma_matrix);
        let tol = 1e-12 * (1.0 + sigma_matrix.abs().max());
        if root.min_eig < -tol {
            return Err(Error::NotPsd {
                what: "oracle.covariance".into(),
                min_eig: root.min_eig,
            });
        }
        Ok(Self {
            s: root.root,
            sigma: None,
        })
    }
    /// `S`.
    pub fn s(&self) -> &Matrix {
        &self.s
    }
    /// `Some(σ)` when `S = σ I`.
    pub fn sigma(&self) -> Option<f64> {
        self.sigma
    }
}

/// A source of uniform integers `0..n` for mini-batch draws.
///
/// * A path of the ensemble engine draws from its SIMD ChaCha8 word stream
///   ([`crate::ensemble::normals::PathWords`]) by Lemire's method ([`lemire_below`]): exactly
///   uniform, one 32-bit word per draw except with probability `< n/2³²`.
/// * A `ChaCha8Rng` (studies that step one path at a time: schedules, the general SDE form's
///   inner Monte Carlo) uses `rand`'s `random_range`, unchanged so that those studies keep
///   their numbers.
pub trait UniformBelow {
    /// A uniform integer in `0..n` (`n ≥ 1`).
    fn below(&mut self, n: u32) -> u32;
}

impl UniformBelow for ChaCha8Rng {
    #[inline]
    fn below(&mut self, n: u32) -> u32 {
        self.random_range(0..=n - 1)
    }
}

impl UniformBelow for crate::ensemble::normals::PathWords<'_> {
    #[inline(always)]
    fn below(&mut self, n: u32) -> u32 {
        lemire_below(n, || self.next_u32())
    }
}

/// Lemire's unbiased bounded draw ("Fast random integer generation in an interval", 2019): a
/// uniform integer in `0..n` (`n ≥ 1`) from uniform 32-bit words. `w·n = 2³²·q + r`; the
/// `(2³² mod n)` smallest values of `r` are rejected, leaving exactly `⌊2³²/n⌋` words per `q`.
#[inline(always)]
pub fn lemire_below(n: u32, mut word: impl FnMut() -> u32) -> u32 {
    debug_assert!(n >= 1);
    let mut m = u64::from(word()) * u64::from(n);
    if (m as u32) < n {
        let threshold = n.wrapping_neg() % n;
        while (m as u32) < threshold {
            m = u64::from(word()) * u64::from(n);
        }
    }
    (m >> 32) as u32
}

/// [`Subsampling::draw`] without replacement for `B = out.len() ≤ K`, branch-free: the
/// sequence lives in a `K`-word array padded with `u32::MAX` (never an index, `t < N ≤ 2³²−1`),
/// so finding `t` and inserting are fixed-length selects the compiler keeps in registers
/// (`K = 4` is one 128-bit register) instead of loops whose length depends on the draw.
#[inline(always)]
fn ordered_floyd<const K: usize, R: UniformBelow + ?Sized>(n: usize, rng: &mut R, out: &mut [u32]) {
    let b = out.len();
    debug_assert!(b <= K && b <= n);
    let mut s = [u32::MAX; K];
    for len in 0..b {
        let j = (n - b + len) as u32;
        let t = rng.below(j + 1);
        let mut at = 0;
        for (p, &v) in s.iter().enumerate() {
            at = if v == t { p + 1 } else { at };
        }
        let value = if at > 0 { j } else { t };
        let prev = s;
        for p in 0..K {
            let shifted = if p == 0 { value } else { prev[p - 1] };
            s[p] = if p < at {
                prev[p]
            } else if p == at {
                value
            } else {
                shifted
            };
        }
    }
    if b == K {
        out.copy_from_slice(&s);
    } else {
        // Not `copy_from_slice` on a prefix: a call to `memcpy` for a few words.
        for (o, v) in out.iter_mut().zip(s) {
            *o = v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod floyd_avx512 {
    //! [`Subsampling::draw_block`]'s fast path (`B = 4` without replacement) for the eight
    //! paths of a word group at once, one path per 64-bit lane: the four Lemire products of
    //! every path, then [`ordered_floyd`]'s insertions as compares and blends. Used only when
    //! no path of the group may reject, so each path's indices are those of the scalar fast
    //! path, hence of [`Subsampling::draw`] (test `draw_block_matches_reference`).
    //!
    //! [`Subsampling::draw_block`]: super::Subsampling::draw_block
    //! [`Subsampling::draw`]: super::Subsampling::draw
    //! [`ordered_floyd`]: super::ordered_floyd
    use crate::ensemble::normals::LANES;
    use std::arch::x86_64::*;

    /// Whether the processor has AVX-512F.
    #[inline]
    pub(super) fn detected() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
    }

    /// Draws the batches of the eight paths whose next words are `w[l][0..4]` into `out`
    /// (path `l`'s four indices at `out[4l..4l+4]`), `N = n ≥ 4`. Returns `false` (nothing
    /// written) if some path's Lemire draw might reject (its low product word below the
    /// bound); the caller then takes the scalar path.
    ///
    /// # Safety
    /// AVX-512F; every `w[l]` has at least 4 words; `out.len() == 32`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn draw4(w: [&[u32]; LANES], n: u32, out: &mut [u32]) -> bool {
        const B: usize = 4;
        assert!(out.len() == LANES * B && w.iter().all(|wl| wl.len() >= B) && n as usize >= B);
        // a = [w₀ | w₁ | w₂ | w₃], c = [w₄ | … | w₇] (four words per path, path-major).
        let q = |l: usize| _mm_loadu_si128(w[l].as_ptr().cast());
        let a = _mm512_inserti32x4::<1>(_mm512_castsi128_si512(q(0)), q(1));
        let a = _mm512_inserti32x4::<3>(_mm512_inserti32x4::<2>(a, q(2)), q(3));
        let c = _mm512_inserti32x4::<1>(_mm512_castsi128_si512(q(4)), q(5));
        let c = _mm512_inserti32x4::<3>(_mm512_inserti32x4::<2>(c, q(6)), q(7));
        // Word i of every path in the low half of 64-bit lane l (index 4l + i of a‖c).
        let mut t = [_mm512_setzero_si512(); B];
        let mut reject: __mmask8 = 0;
        for (i, ti) in t.iter_mut().enumerate() {
            let idx: [i32; 16] =
                std::array::from_fn(|k| if k % 2 == 0 { (2 * k + i) as i32 } else { 0 });
            let wi = _mm512_maskz_permutex2var_epi32(
                0x5555,
                a,
                _mm512_loadu_si512(idx.as_ptr().cast()),
                c,
            );
            // Draw i is uniform in 0..=j, j = N − B + i: Lemire's product by j + 1.
            let bound = _mm512_set1_epi64(i64::from(n - B as u32 + i as u32 + 1));
            let m = _mm512_mul_epu32(wi, bound);
            let low = _mm512_and_si512(m, _mm512_set1_epi64(0xFFFF_FFFF));
            reject |= _mm512_cmplt_epu64_mask(low, bound);
            *ti = _mm512_srli_epi64::<32>(m);
        }
        if reject != 0 {
            return false;
        }
        // Ordered Floyd (see `ordered_floyd`): s holds the sequence, unused slots u64::MAX.
        let mut s = [_mm512_set1_epi64(-1); B];
        for (len, &tl) in t.iter().enumerate() {
            let j = _mm512_set1_epi64(i64::from(n - B as u32 + len as u32));
            // e[p]: t equals s[p] (at most one p), so `at = p + 1`.
            let mut e = [0 as __mmask8; B];
            for p in 0..len {
                e[p] = _mm512_cmpeq_epi64_mask(s[p], tl);
            }
            let any = e.iter().fold(0, |acc, &m| acc | m);
            let value = _mm512_mask_blend_epi64(any, tl, j);
            let prev = s;
            let mut keep: __mmask8 = 0; // p < at: some match at q ≥ p
            for p in (0..=len).rev() {
                if p < len {
                    keep |= e[p];
                }
                // at = p: value; at < p: the slot before moves up.
                let shifted = if p == 0 {
                    value
                } else {
                    _mm512_mask_blend_epi64(e[p - 1], prev[p - 1], value)
                };
                s[p] = _mm512_mask_blend_epi64(keep, shifted, prev[p]);
            }
        }
        // Back to path-major u32: out[4l + p] = s[p][l].
        let s01 = _mm512_inserti64x4::<1>(
            _mm512_castsi256_si512(_mm512_cvtepi64_epi32(s[0])),
            _mm512_cvtepi64_epi32(s[1]),
        );
        let s23 = _mm512_inserti64x4::<1>(
            _mm512_castsi256_si512(_mm512_cvtepi64_epi32(s[2])),
            _mm512_cvtepi64_epi32(s[3]),
        );
        for half in 0..2 {
            let idx: [i32; 16] = std::array::from_fn(|k| {
                let (l, p) = (half * 4 + k / 4, k % 4);
                ((p / 2) * 16 + (p % 2) * 8 + l) as i32
            });
            let v = _mm512_permutex2var_epi32(s01, _mm512_loadu_si512(idx.as_ptr().cast()), s23);
            _mm512_storeu_si512(out.as_mut_ptr().add(16 * half).cast(), v);
        }
        true
    }
}

/// Bounded draws already made (the fast path of [`Subsampling::draw_block`]): hands out the
/// precomputed indices in order, ignoring the bound (the caller computed each for it).
struct Replay<'a, I: Iterator<Item = u32>>(&'a mut I);

impl<I: Iterator<Item = u32>> UniformBelow for Replay<'_, I> {
    #[inline(always)]
    fn below(&mut self, n: u32) -> u32 {
        let t = self.0.next().expect("one precomputed draw per call");
        debug_assert!(t < n);
        t
    }
}

/// Finite-sum mini-batch sampling.
#[derive(Debug, Clone, Copy)]
pub struct Subsampling {
    /// Batch size `B`.
    pub batch: usize,
    /// Draw with replacement (`c_B = 1/B`) or without (`c_B = (N−B)/(B(N−1))`).
    pub replacement: bool,
    /// Number of samples `N` of the landscape.
    pub n: usize,
}

impl Subsampling {
    /// `c_B`.
    pub fn c_b(&self) -> f64 {
        let (b, n) = (self.batch as f64, self.n as f64);
        if self.replacement {
            1.0 / b
        } else if self.n <= 1 {
            0.0
        } else {
            (n - b) / (b * (n - 1.0))
        }
    }

    /// Draws `B` sample indices into `out` (length `B`) as an **exchangeable** sequence: i.i.d.
    /// with replacement; without, a uniformly random *ordered* sample — every sequence of `B`
    /// distinct indices has probability `(N − B)!/N!` — so every position is a uniform index and
    /// consecutive runs of `m` positions form a uniformly random partition into micro-batches
    /// (what m-SAM needs, shared by every system of a path). `B` bounded draws from `rng`
    /// ([`UniformBelow`]), no allocation, `O(B²)` work.
    ///
    /// Without replacement this is the ordered variant of Floyd's algorithm (Bentley & Floyd,
    /// "Programming pearls: a sample of brilliance", CACM 1987): for `j = N − B, …, N − 1` draw
    /// `t` uniform in `0..=j`; if `t` is already in the sequence insert `j` right after `t`,
    /// else insert `t` at the front.
    ///
    /// *Why the ordered sample is uniform.* Induction on the length `L = j − (N − B) + 1`:
    /// suppose the sequence `S` before step `j` is a uniform ordered `(L−1)`-sample of
    /// `{0, …, j−1}`. Every ordered `L`-sample `T` of `{0, …, j}` arises from exactly one pair
    /// `(S, t)`: if `j ∉ T`, then `t = T₀ ∉ S` and `S = T₁…`; if `j = T₀`, then `t = j` (never in
    /// `S`) and `S = T₁…`; if `j = T_p` with `p ≥ 1`, then `t = T_{p−1} ∈ S` and `S` is `T`
    /// without `j`. So `P(T) = P(S) / (j + 1) = (j − L + 1)!/j! · 1/(j + 1) = (j + 1 − L)!/(j + 1)!`,
    /// the same for every `T`. At `j = N − 1`, `L = B`. Plain Floyd (insert `j` or `t` at the
    /// end) gives a uniform *set* but not uniform positions (index `N − 1` lands last with
    /// probability ≈ `B/N`); it needed a Fisher–Yates shuffle (`B − 1` more draws) on top.
    pub fn draw<R: UniformBelow + ?Sized>(&self, rng: &mut R, out: &mut [u32]) {
        let (b, n) = (self.batch, self.n);
        if self.replacement {
            for o in out.iter_mut() {
                *o = rng.below(n as u32);
            }
            return;
        }
        match b {
            0 => {}
            1..=4 => ordered_floyd::<4, R>(n, rng, out),
            5..=8 => ordered_floyd::<8, R>(n, rng, out),
            _ => {
                for len in 0..b {
                    let j = (n - b + len) as u32;
                    let t = rng.below(j + 1);
                    // Position after `t` if `t` is in the sequence (at most once), else the
                    // front.
                    let at = out[..len].iter().position(|&v| v == t).map_or(0, |p| p + 1);
                    out.copy_within(at..len, at + 1);
                    out[at] = if at > 0 { j } else { t };
                }
            }
        }
    }

    /// [`Subsampling::draw`] for every path of a block: path `j`'s `B` indices go to
    /// `out[jB..(j+1)B]`, drawn from its own word stream in `words` (path order; each path's
    /// draws depend only on its own stream, so not on the block size or the thread count).
    ///
    /// Without replacement and `B ∈ {2, 4, 8}` a path whose next `B` words are buffered takes
    /// a fast path: the `B` Lemire products are formed at once (independent of each other),
    /// and if none of them falls in the zone where Lemire's method might reject
    /// (`low word < bound`, probability `< N/2³²` each) the indices are exactly those of
    /// [`Subsampling::draw`] on the same words; otherwise the path runs [`Subsampling::draw`]
    /// from the same position, so the result never depends on which path was taken (test
    /// `draw_block_matches_reference`).
    pub fn draw_block(&self, words: &mut crate::ensemble::normals::BlockWords, out: &mut [u32]) {
        debug_assert_eq!(out.len(), self.batch * words.paths());
        if self.batch == 0 {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            use crate::ensemble::normals::LANES;
            if !self.replacement
                && self.batch == 4
                && self.n <= u32::MAX as usize
                && floyd_avx512::detected()
            {
                let width = LANES * self.batch;
                for g in 0..words.groups() {
                    let first = g * LANES;
                    let done = words.peek_group(g, 4).is_some_and(|w| {
                        // SAFETY: AVX-512F was detected; `w` holds ≥ 4 words per lane and
                        // the group's `LANES · B` indices fit (a full group).
                        unsafe {
                            floyd_avx512::draw4(w, self.n as u32, &mut out[first * 4..][..width])
                        }
                    });
                    if done {
                        words.advance_group(g, 4);
                        continue;
                    }
                    let last = (first + LANES).min(words.paths());
                    for j in first..last {
                        self.draw_one(words, j, &mut out[j * 4..(j + 1) * 4]);
                    }
                }
                return;
            }
        }
        for (j, chunk) in out.chunks_exact_mut(self.batch).enumerate() {
            self.draw_one(words, j, chunk);
        }
    }

    /// Path `j`'s batch of [`Subsampling::draw_block`] by the scalar code: the fixed-`B` fast
    /// path where it applies, else [`Subsampling::draw`].
    #[inline(always)]
    fn draw_one(
        &self,
        words: &mut crate::ensemble::normals::BlockWords,
        j: usize,
        chunk: &mut [u32],
    ) {
        let mut path = words.path(j);
        let done = match (self.replacement, self.batch) {
            (false, 2) => self.draw_fast::<2>(&mut path, chunk),
            (false, 4) => self.draw_fast::<4>(&mut path, chunk),
            (false, 8) => self.draw_fast::<8>(&mut path, chunk),
            _ => false,
        };
        if !done {
            self.draw(&mut path, chunk);
        }
    }

    /// The fast path of [`Subsampling::draw_block`] for `B` known at compile time; `false`
    /// (nothing consumed) when it does not apply.
    #[inline(always)]
    fn draw_fast<const B: usize>(
        &self,
        path: &mut crate::ensemble::normals::PathWords<'_>,
        out: &mut [u32],
    ) -> bool {
        let Some(w) = path.peek::<B>() else {
            return false;
        };
        let n = self.n;
        let mut t = [0u32; B];
        let mut maybe_reject = false;
        for i in 0..B {
            // Draw i is uniform in 0..=j with j = N − B + i (see `draw`).
            let bound = (n - B + i + 1) as u32;
            let m = u64::from(w[i]) * u64::from(bound);
            maybe_reject |= (m as u32) < bound;
            t[i] = (m >> 32) as u32;
        }
        if maybe_reject {
            return false;
        }
        path.advance(B);
        let mut words = t.into_iter();
        ordered_floyd::<B, _>(n, &mut Replay(&mut words), out);
        true
    }

    /// `out = ∇f_γ(x) = (1/B) Σ_{i∈γ} ∇f_i(x)`; `tmp` is scratch of length `d`.
    pub fn grad(
        &self,
        f: &dyn FiniteSum,
        batch: &[u32],
        x: &[f64],
        out: &mut [f64],
        tmp: &mut [f64],
    ) {
        f.batch_grad_into(batch, x, out, tmp);
    }

    /// `out = ∇²f_γ(x) v`; `tmp` is scratch of length `d`.
    pub fn hess_vec(
        &self,
        f: &dyn FiniteSum,
        batch: &[u32],
        x: &[f64],
        v: &[f64],
        out: &mut [f64],
        tmp: &mut [f64],
    ) {
        out.fill(0.0);
        for &i in batch {
            f.sample_hess_vec_into(i as usize, x, v, tmp);
            for (o, t) in out.iter_mut().zip(tmp.iter()) {
                *o += t;
            }
        }
        let inv = 1.0 / batch.len() as f64;
        out.iter_mut().for_each(|o| *o *= inv);
    }
}

/// A gradient oracle.
#[derive(Debug, Clone)]
pub enum Oracle {
    /// No noise.
    FullBatch,
    /// Additive Gaussian noise.
    Additive(AdditiveNoise),
    /// Finite-sum subsampling.
    Subsampling(Subsampling),
}

impl Oracle {
    /// Checks that the oracle fits the landscape (dimensions, finite-sum structure, batch size).
    pub fn validate(&self, f: &dyn Landscape) -> Result<()> {
        match self {
            Oracle::FullBatch => Ok(()),
            Oracle::Additive(a) => {
                if a.s.nrows() != f.dim() {
                    return Err(Error::Dimension {
                        what: "oracle noise matrix rows vs landscape dimension".into(),
                        expected: f.dim(),
                        got: a.s.nrows(),
                    });
                }
                Ok(())
            }
            Oracle::Subsampling(s) => {
                let fs = f.as_finite_sum().ok_or_else(|| {
                    Error::config(
                        "oracle.kind",
                        "\"subsampling\"",
                        format!("needs a finite-sum landscape; {} is not one", f.describe()),
                    )
                })?;
                if s.n != fs.n_samples() {
                    return Err(Error::Dimension {
                        what: "oracle sample count vs landscape".into(),
                        expected: fs.n_samples(),
                        got: s.n,
                    });
                }
                if s.batch == 0 || (!s.replacement && s.batch > s.n) {
                    return Err(Error::config(
                        "oracle.batch",
                        s.batch,
                        format!("must be in 1..={} (N) without replacement", s.n),
                    ));
                }
                Ok(())
            }
        }
    }

    /// Dimension of the Brownian motion driving the SGD SDE (`m` with `D ∈ ℝ^{d×m}`).
    pub fn noise_dim(&self, d: usize) -> usize {
        match self {
            Oracle::FullBatch => 0,
            Oracle::Additive(a) => a.s.ncols(),
            Oracle::Subsampling(s) => s.n.max(d),
        }
    }

    /// `true` for the additive oracle, whose discrete noise can be coupled to the Brownian path.
    pub fn is_additive(&self) -> bool {
        matches!(self, Oracle::Additive(_))
    }

    /// `Some(σ)` for isotropic additive noise; `Some(0)` for full batch.
    pub fn isotropic_sigma(&self) -> Option<f64> {
        match self {
            Oracle::FullBatch => Some(0.0),
            Oracle::Additive(a) => a.sigma,
            Oracle::Subsampling(_) => None,
        }
    }

    /// Exact covariance `Σ(x)` of `∇f_γ(x)`.
    pub fn covariance(&self, f: &dyn Landscape, x: &[f64]) -> Matrix {
        let d = f.dim();
        match self {
            Oracle::FullBatch => Matrix::zeros(d, d),
            Oracle::Additive(a) => &a.s * a.s.transpose(),
            Oracle::Subsampling(s) => {
                let fac = self.subsampling_factor(s, f, x);
                &fac * fac.transpose()
            }
        }
    }

    fn subsampling_factor(&self, s: &Subsampling, f: &dyn Landscape, x: &[f64]) -> Matrix {
        let fs = f.as_finite_sum().expect("validated: finite sum");
        let d = f.dim();
        let mut g = vec![0.0; d];
        f.grad_into(x, &mut g);
        let mut fac = Matrix::zeros(d, s.n);
        let scale = (s.c_b() / s.n as f64).sqrt();
        for i in 0..s.n {
            let col = &mut fac.as_mut_slice()[i * d..(i + 1) * d];
            fs.sample_grad_into(i, x, col);
            for (c, gk) in col.iter_mut().zip(&g) {
                *c = (*c - gk) * scale;
            }
        }
        fac
    }

    /// A factor `D(x)` (`d × noise_dim`) with `D Dᵀ = Σ(x)` exactly.
    pub fn sgd_factor(&self, f: &dyn Landscape, x: &[f64]) -> Matrix {
        let d = f.dim();
        match self {
            Oracle::FullBatch => Matrix::zeros(d, 0),
            Oracle::Additive(a) => a.s.clone(),
            Oracle::Subsampling(s) => {
                let mut fac = self.subsampling_factor(s, f, x);
                if fac.ncols() < d {
                    fac = fac.resize_horizontally(d, 0.0);
                }
                fac
            }
        }
    }

    /// The constant noise factor `S` (`Z = Sξ`) when the noise does not depend on the state:
    /// `S` for the additive oracle, a zero column for full batch, `None` for subsampling.
    pub fn constant_factor(&self, d: usize) -> Option<Matrix> {
        match self {
            Oracle::FullBatch => Some(Matrix::zeros(d, 1)),
            Oracle::Additive(a) => Some(a.s.clone()),
            Oracle::Subsampling(_) => None,
        }
    }

    /// Batch size for subsampling, else 0.
    pub fn batch(&self) -> usize {
        match self {
            Oracle::Subsampling(s) => s.batch,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landscape::LeastSquares;
    use rand::SeedableRng;

    #[test]
    fn c_b_values() {
        let s = Subsampling {
            batch: 4,
            replacement: false,
            n: 10,
        };
        assert!((s.c_b() - 6.0 / 36.0).abs() < 1e-15);
        let s = Subsampling {
            batch: 4,
            replacement: true,
            n: 10,
        };
        assert!((s.c_b() - 0.25).abs() < 1e-15);
        let s = Subsampling {
            batch: 10,
            replacement: false,
            n: 10,
        };
        assert_eq!(s.c_b(), 0.0);
    }

    /// Two deliberately wrong orderings of Floyd's algorithm, to show that the tests below can
    /// fail: plain Floyd (a uniform set, positions not uniform) and "insert `j` at the front"
    /// (also a uniform set, positions not uniform either).
    fn wrong_draw<R: UniformBelow>(variant: u8, n: usize, rng: &mut R, out: &mut [u32]) {
        let b = out.len();
        for len in 0..b {
            let j = (n - b + len) as u32;
            let t = rng.below(j + 1);
            let seen = out[..len].contains(&t);
            let value = if seen { j } else { t };
            if variant == 0 {
                out[len] = value;
            } else {
                let at = if seen { 0 } else { len };
                out.copy_within(at..len, at + 1);
                out[at] = value;
            }
        }
    }

    /// Replays a fixed list of bounded draws (for exhaustive enumeration).
    struct Scripted(Vec<u32>, usize);
    impl UniformBelow for Scripted {
        fn below(&mut self, n: u32) -> u32 {
            let v = self.0[self.1];
            assert!(v < n);
            self.1 += 1;
            v
        }
    }

    /// Counts of every ordered sample over all `N!/(N−B)!` equally likely draw sequences
    /// `t_j ∈ 0..=j` (`j = N−B … N−1`).
    fn enumerate(n: usize, b: usize, draw: impl Fn(&mut Scripted, &mut [u32])) -> Vec<u32> {
        let mut counts = std::collections::BTreeMap::<Vec<u32>, u32>::new();
        let total: usize = (n - b + 1..=n).product();
        for code in 0..total {
            let (mut c, mut script) = (code, Vec::new());
            for j in n - b..n {
                script.push((c % (j + 1)) as u32);
                c /= j + 1;
            }
            let mut out = vec![0u32; b];
            draw(&mut Scripted(script, 0), &mut out);
            *counts.entry(out).or_default() += 1;
        }
        counts.into_values().collect()
    }

    /// Exact, not statistical: each of the `N!/(N−B)!` equally likely sequences of bounded
    /// draws gives a different ordered sample, so every ordered sample of `B` distinct indices
    /// has probability exactly `(N−B)!/N!`. Both wrong variants fail it (some ordered samples
    /// twice, others never).
    #[test]
    fn ordered_floyd_is_a_bijection_onto_ordered_samples() {
        // B ≤ 4, 5 ≤ B ≤ 8 and B > 8 take three code paths; all are covered.
        for (n, b) in [
            (1, 1),
            (4, 4),
            (5, 2),
            (6, 3),
            (7, 4),
            (8, 1),
            (8, 5),
            (9, 6),
            (9, 9),
        ] {
            let s = Subsampling {
                batch: b,
                replacement: false,
                n,
            };
            let counts = enumerate(n, b, |r, out| s.draw(r, out));
            let perms: usize = (n - b + 1..=n).product();
            assert_eq!(counts.len(), perms, "N = {n}, B = {b}");
            assert!(counts.iter().all(|&c| c == 1), "N = {n}, B = {b}");
        }
        for variant in [0, 1] {
            let counts = enumerate(6, 3, |r, out| wrong_draw(variant, 6, r, out));
            assert!(counts.len() < 120, "variant {variant} must not be uniform");
        }
    }

    /// Uniform at every position (see `position_counts`), for the draw and not for the
    /// wrong variants.
    fn position_counts(mut draw: impl FnMut(&mut ChaCha8Rng, &mut [u32])) -> [[u32; 7]; 3] {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut counts = [[0u32; 7]; 3];
        let mut out = [0u32; 3];
        for _ in 0..56_000 {
            draw(&mut rng, &mut out);
            for (pos, &i) in out.iter().enumerate() {
                counts[pos][i as usize] += 1;
            }
        }
        counts
    }

    /// Counts ~ Binomial(56 000, 1/7) per (position, index): sd ≈ 82.8, tolerance 450 ≈ 5.4 sd
    /// per cell (21 cells).
    fn uniform_at_every_position(counts: &[[u32; 7]; 3]) -> bool {
        counts
            .iter()
            .flatten()
            .all(|&c| (c as f64 - 8000.0).abs() < 450.0)
    }

    #[test]
    fn draws_without_replacement_are_distinct_and_uniform() {
        let s = Subsampling {
            batch: 3,
            replacement: false,
            n: 7,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut counts = [0u32; 7];
        let mut out = [0u32; 3];
        let trials = 70_000;
        for _ in 0..trials {
            s.draw(&mut rng, &mut out);
            assert!(out[0] != out[1] && out[0] != out[2] && out[1] != out[2]);
            for &i in &out {
                counts[i as usize] += 1;
            }
        }
        // Each index appears with probability 3/7; count ~ Binomial(70000, 3/7), sd ≈ 131.
        // 5 sd = 655 is the tolerance.
        let expected = trials as f64 * 3.0 / 7.0;
        for c in counts {
            assert!((c as f64 - expected).abs() < 655.0, "{c} vs {expected}");
        }
    }

    /// The draw is exchangeable: every index is equally likely at every position. Plain Floyd
    /// puts index `N − 1` at the last position with probability ≈ `B/N` (count ≈ 24 000 vs
    /// 8 000) and fails, as does the "insert `j` at the front" variant.
    #[test]
    fn draws_are_uniform_at_every_position() {
        let s = Subsampling {
            batch: 3,
            replacement: false,
            n: 7,
        };
        let counts = position_counts(|r, out| s.draw(r, out));
        assert!(uniform_at_every_position(&counts), "{counts:?}");
        for variant in [0, 1] {
            let counts = position_counts(|r, out| wrong_draw(variant, 7, r, out));
            assert!(!uniform_at_every_position(&counts), "{variant}: {counts:?}");
        }
    }

    /// The joint law of ordered pairs `(out₀, out₁)` of a real stream (N = 6, B = 2): each of
    /// the 30 pairs of distinct indices has probability 1/30. 90 000 draws: counts ~
    /// Binomial(90 000, 1/30), mean 3000, sd ≈ 53.9; tolerance 300 ≈ 5.6 sd per cell (30
    /// cells). Plain Floyd gives (t, 5) for t < 5 twice as often as (5, t) and fails.
    #[test]
    fn ordered_pairs_are_uniform() {
        let s = Subsampling {
            batch: 2,
            replacement: false,
            n: 6,
        };
        let pair_counts = |draw: &dyn Fn(&mut ChaCha8Rng, &mut [u32])| {
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            let mut counts = [[0u32; 6]; 6];
            let mut out = [0u32; 2];
            for _ in 0..90_000 {
                draw(&mut rng, &mut out);
                counts[out[0] as usize][out[1] as usize] += 1;
            }
            counts
        };
        let uniform = |counts: &[[u32; 6]; 6]| {
            (0..6).all(|a| {
                (0..6).all(|b| {
                    let expected = if a == b { 0.0 } else { 3000.0 };
                    (counts[a][b] as f64 - expected).abs() < 300.0
                })
            })
        };
        let counts = pair_counts(&|r, out| s.draw(r, out));
        assert!(uniform(&counts), "{counts:?}");
        let counts = pair_counts(&|r, out| wrong_draw(0, 6, r, out));
        assert!(!uniform(&counts), "plain Floyd: {counts:?}");
    }

    /// Lemire's draw rejects exactly the words whose low product half falls below
    /// `2³² mod n` and then takes the next word.
    #[test]
    fn lemire_rejects_and_retries() {
        // n = 3: threshold 2³² mod 3 = 1, so only w = 0 (product 0) is rejected.
        let mut words = [0u32, 0, u32::MAX, 7].into_iter();
        assert_eq!(lemire_below(3, || words.next().unwrap()), 2);
        assert_eq!(words.next(), Some(7));
        // Without rejection the result is ⌊w n / 2³²⌋ (here w n = 5·2³² + 10, low half 10 ≥ n).
        let w = 0x8000_0001u32;
        assert_eq!(lemire_below(10, || w), 5);
        assert_eq!(lemire_below(1, || 123), 0);
    }

    /// The scalar reference of the engine's draws: the path's stream through
    /// `ChaCha8Rng::next_u32`, bounded by Lemire's method.
    struct Reference(ChaCha8Rng);
    impl UniformBelow for Reference {
        fn below(&mut self, n: u32) -> u32 {
            use rand::Rng;
            lemire_below(n, || self.0.next_u32())
        }
    }

    /// The engine's draws (SIMD lane words + Lemire) are exactly those of the scalar reference
    /// (the same stream through `ChaCha8Rng::next_u32` + Lemire), path by path, whatever the
    /// block the path is in — and they are uniform at every position without replacement:
    /// counts ~ Binomial(64 × 1000, 1/7) per (position, index), sd ≈ 88.5; tolerance 500 ≈ 5.6 sd.
    #[test]
    fn engine_draws_match_reference_and_are_uniform() {
        use crate::ensemble::normals::BlockWords;
        let s = Subsampling {
            batch: 3,
            replacement: false,
            n: 7,
        };
        let seed = 11;
        let streams: Vec<u64> = (0..64)
            .map(|j| crate::ensemble::rng::stream_id(2, j))
            .collect();
        let mut block = BlockWords::new(seed, &streams);
        // The last 13 paths again, as a block of their own.
        let mut tail = BlockWords::new(seed, &streams[51..]);
        let mut refs: Vec<Reference> = streams
            .iter()
            .map(|&st| Reference(crate::ensemble::rng::path_rng(seed, st)))
            .collect();
        let mut counts = [[0u32; 7]; 3];
        let (mut a, mut b, mut c) = ([0u32; 3], [0u32; 3], [0u32; 3]);
        for _ in 0..1000 {
            for (j, r) in refs.iter_mut().enumerate() {
                s.draw(&mut block.path(j), &mut a);
                s.draw(r, &mut b);
                assert_eq!(a, b, "path {j}");
                if j >= 51 {
                    s.draw(&mut tail.path(j - 51), &mut c);
                    assert_eq!(a, c, "path {j} in another block");
                }
                assert!(a[0] != a[1] && a[0] != a[2] && a[1] != a[2]);
                for (pos, &i) in a.iter().enumerate() {
                    counts[pos][i as usize] += 1;
                }
            }
        }
        let expected = 64_000.0 / 7.0;
        for row in counts {
            for k in row {
                assert!((k as f64 - expected).abs() < 500.0, "{counts:?}");
            }
        }
    }

    /// The block draw (with its fixed-`B` fast path) gives, path by path, exactly the indices
    /// of [`Subsampling::draw`] on the scalar reference stream (`ChaCha8Rng::next_u32` +
    /// Lemire), for batch sizes with and without a fast path and for a huge `N` (≈ 3·2³⁰),
    /// where a quarter of the words are rejected and most draws leave the fast path — so the
    /// fallback and the lanes that fall behind after a rejection are exercised too. 13 paths:
    /// one full SIMD group of eight and a partial one.
    #[test]
    fn draw_block_matches_reference() {
        use crate::ensemble::normals::BlockWords;
        for (n, batch, replacement) in [
            (32, 4, false),
            (7, 2, false),
            (20, 8, false),
            (9, 3, false),
            (5, 4, true),
            (3 << 30, 4, false),
            (3 << 30, 2, false),
        ] {
            let s = Subsampling {
                batch,
                replacement,
                n,
            };
            let seed = 5;
            let streams: Vec<u64> = (0..13)
                .map(|j| crate::ensemble::rng::stream_id(1, j))
                .collect();
            let mut block = BlockWords::new(seed, &streams);
            let mut refs: Vec<Reference> = streams
                .iter()
                .map(|&st| Reference(crate::ensemble::rng::path_rng(seed, st)))
                .collect();
            let mut out = vec![0u32; batch * streams.len()];
            let mut want = vec![0u32; batch];
            for round in 0..300 {
                s.draw_block(&mut block, &mut out);
                for (j, r) in refs.iter_mut().enumerate() {
                    s.draw(r, &mut want);
                    let got = &out[j * batch..(j + 1) * batch];
                    assert_eq!(got, &want[..], "N {n}, B {batch}, round {round}, path {j}");
                }
            }
        }
    }

    /// The exact covariance formula agrees with the empirical covariance of drawn mini-batch
    /// gradients, with and without replacement.
    #[test]
    fn subsampling_covariance_matches_draws() {
        let ls = LeastSquares::synthetic(8, 2, 0.5, 3).unwrap();
        let x = [0.4, -0.3];
        for replacement in [false, true] {
            let s = Subsampling {
                batch: 3,
                replacement,
                n: 8,
            };
            let oracle = Oracle::Subsampling(s);
            let exact = oracle.covariance(&ls, &x);
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let mut batch = [0u32; 3];
            let (mut g, mut tmp) = ([0.0; 2], [0.0; 2]);
            let n = 200_000;
            let (mut m, mut mm) = ([0.0; 2], [[0.0; 2]; 2]);
            for _ in 0..n {
                s.draw(&mut rng, &mut batch);
                s.grad(&ls, &batch, &x, &mut g, &mut tmp);
                for a in 0..2 {
                    m[a] += g[a] / n as f64;
                    for b in 0..2 {
                        mm[a][b] += g[a] * g[b] / n as f64;
                    }
                }
            }
            let mut full = [0.0; 2];
            ls.grad_into(&x, &mut full);
            for a in 0..2 {
                // Unbiased: mean of ∇f_γ is ∇f. Relative tolerance 2% of the scale of Σ
                // (MC relative error at n = 2e5 is ~0.3%, so this is > 5 sd).
                let scale = exact.abs().max().sqrt();
                assert!((m[a] - full[a]).abs() < 0.02 * scale, "{replacement}");
                for b in 0..2 {
                    let emp = mm[a][b] - m[a] * m[b];
                    assert!(
                        (emp - exact[(a, b)]).abs() < 0.02 * exact.abs().max(),
                        "replacement {replacement}: {emp} vs {}",
                        exact[(a, b)]
                    );
                }
            }
            let fac = oracle.sgd_factor(&ls, &x);
            assert!((&fac * fac.transpose() - exact).abs().max() < 1e-12);
        }
    }

    #[test]
    fn from_covariance_rejects_non_psd() {
        let c = Matrix::from_row_slice(2, 2, &[1.0, 2.0, 2.0, 1.0]);
        match AdditiveNoise::from_covariance(&c) {
            Err(Error::NotPsd { min_eig, .. }) => assert!((min_eig + 1.0).abs() < 1e-12),
            other => panic!("{other:?}"),
        }
    }
}
