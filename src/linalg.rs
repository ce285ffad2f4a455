//! Linear-algebra helpers on `f64` with runtime dimensions.
//!
//! The one non-trivial routine is the symmetric square root with clamping: for a symmetric
//! `Σ = Q Λ Qᵀ` it returns `D = Q max(Λ, 0)^{1/2} Qᵀ`, so that `D Dᵀ = Σ` whenever `Σ ⪰ 0`,
//! and reports how many eigenvalues were clamped to zero (docs/theory.md §3: `Σ_SAM` need not be PSD
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

/// `out = A X` for a square `A` (`d × d`) and a block `X` (`d × P`), all column-major.
///
/// For `d ≤ 64` on processors with AVX-512F/VL this is a register-blocked kernel, `A` read
/// straight from its column-major storage (no packing): the rows are cut into segments of 8
/// (one 512-bit register) with a last segment of 1–4 rows in a 256-bit register (so `d = 20`
/// is 8 + 8 + 4 rows and no lane computes padding), and up to three segments × four columns
/// of accumulators are kept in registers while `k` runs over the columns of `A`. Each entry is
/// `Σ_k a_ik x_kj` in the order `k = 0, 1, …` with separate multiplies and adds — the same
/// rounding as the plain loop, which the tests check bit for bit. Otherwise it is nalgebra's
/// `gemm`.
pub fn square_times(a: &Matrix, x: &Matrix, out: &mut Matrix) {
    if !square_times_fused(a, x, out, Fused::Plain, &mut |_, _| {}) {
        out.gemm(1.0, a, x, 0.0);
    }
}

/// An entrywise map fused into the stores of [`square_times_fused`]: with `p = A X` and
/// `z = c·n` (`c: Some`) or `z = n` (`c: None`), evaluated in this order (the same operations
/// as the separate passes of the discrete additive-noise step, so the same bits).
#[derive(Clone, Copy, Debug)]
pub enum Fused<'a> {
    /// `out = p`.
    Plain,
    /// `out = x + ρ(p + z)` (the USAM ascent point).
    Ascent {
        x: &'a [f64],
        n: &'a [f64],
        rho: f64,
        c: Option<f64>,
    },
    /// `out ← out + (−η)(p + z)` (the descent step, `out` holding the iterate).
    Descent {
        n: &'a [f64],
        eta: f64,
        c: Option<f64>,
    },
}

/// Columns per call of the `then` of [`square_times_fused`]: 16 columns of `d ≤ 64` rows are
/// at most 8 KiB, so a tile is still in the L1 cache when `then` reads it.
pub const THEN_TILE: usize = 16;

/// `out ← E(A X)` for the map `E` of `fused`, in the register-blocked kernel of
/// [`square_times`] (the map applied to the accumulators before they are stored, so the
/// product itself is never written), handing each finished tile of columns to
/// `then(j0..j1, out_tile)` while it is in the L1 cache (tiles in order, ≤ [`THEN_TILE`]
/// columns). Returns `false`, having done nothing, where that kernel does not run
/// (no AVX-512, `d > 64`): the caller then takes its unfused path.
pub fn square_times_fused(
    a: &Matrix,
    x: &Matrix,
    out: &mut Matrix,
    fused: Fused,
    then: &mut dyn FnMut(std::ops::Range<usize>, &[f64]),
) -> bool {
    let d = a.nrows();
    assert!(
        a.ncols() == d && x.nrows() == d && out.shape() == x.shape(),
        "square_times: shapes"
    );
    match fused {
        Fused::Plain => {}
        Fused::Ascent { x: xa, n, .. } => {
            assert!(
                xa.len() == x.len() && n.len() == x.len(),
                "square_times_fused: shapes"
            )
        }
        Fused::Descent { n, .. } => assert!(n.len() == x.len(), "square_times_fused: shapes"),
    }
    #[cfg(target_arch = "x86_64")]
    {
        if d <= 64
            && d > 0
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            use avx512_product::{Ascent, Descent, Plain};
            let (a, x, o) = (a.as_slice(), x.as_slice(), out.as_mut_slice());
            // SAFETY: AVX-512F/VL were detected; every slice has the asserted length `d · P`.
            unsafe {
                match fused {
                    Fused::Plain => avx512_product::square_times(a, d, x, o, &Plain, then),
                    Fused::Ascent { x: xa, n, rho, c } => {
                        let (xa, n) = (xa.as_ptr(), n.as_ptr());
                        match c {
                            Some(c) => {
                                let e = Ascent::<true>::new(xa, n, rho, c);
                                avx512_product::square_times(a, d, x, o, &e, then)
                            }
                            None => {
                                let e = Ascent::<false>::new(xa, n, rho, 1.0);
                                avx512_product::square_times(a, d, x, o, &e, then)
                            }
                        }
                    }
                    Fused::Descent { n, eta, c } => {
                        let n = n.as_ptr();
                        match c {
                            Some(c) => {
                                let e = Descent::<true>::new(n, eta, c);
                                avx512_product::square_times(a, d, x, o, &e, then)
                            }
                            None => {
                                let e = Descent::<false>::new(n, eta, 1.0);
                                avx512_product::square_times(a, d, x, o, &e, then)
                            }
                        }
                    }
                }
            }
            return true;
        }
    }
    let _ = (fused, then);
    false
}

#[cfg(target_arch = "x86_64")]
mod avx512_product {
    //! The register-blocked `A X` of [`super::square_times`], with the map of
    //! [`super::Fused`] applied to each accumulator before it is stored.
    use std::arch::x86_64::*;

    /// The map applied to the product `p` of the rows at flat index `i ..` (`m`: the lanes
    /// in the column) before they are stored at `out + i`.
    pub(super) trait Epilogue {
        unsafe fn zmm(&self, p: __m512d, out: *const f64, i: usize, m: __mmask8) -> __m512d;
        unsafe fn ymm(&self, p: __m256d, out: *const f64, i: usize, m: __mmask8) -> __m256d;
    }

    /// `out = p`.
    pub(super) struct Plain;
    impl Epilogue for Plain {
        #[inline(always)]
        unsafe fn zmm(&self, p: __m512d, _: *const f64, _: usize, _: __mmask8) -> __m512d {
            p
        }
        #[inline(always)]
        unsafe fn ymm(&self, p: __m256d, _: *const f64, _: usize, _: __mmask8) -> __m256d {
            p
        }
    }

    /// `out = x + ρ(p + z)`, `z = c·n` (`SCALED`) or `n`.
    pub(super) struct Ascent<const SCALED: bool> {
        x: *const f64,
        n: *const f64,
        rho: f64,
        c: f64,
    }
    impl<const SCALED: bool> Ascent<SCALED> {
        pub(super) fn new(x: *const f64, n: *const f64, rho: f64, c: f64) -> Self {
            Self { x, n, rho, c }
        }
    }
    impl<const SCALED: bool> Epilogue for Ascent<SCALED> {
        #[inline(always)]
        unsafe fn zmm(&self, p: __m512d, _: *const f64, i: usize, m: __mmask8) -> __m512d {
            let x = _mm512_maskz_loadu_pd(m, self.x.add(i));
            let mut z = _mm512_maskz_loadu_pd(m, self.n.add(i));
            if SCALED {
                z = _mm512_mul_pd(_mm512_set1_pd(self.c), z);
            }
            _mm512_add_pd(
                x,
                _mm512_mul_pd(_mm512_set1_pd(self.rho), _mm512_add_pd(p, z)),
            )
        }
        #[inline(always)]
        unsafe fn ymm(&self, p: __m256d, _: *const f64, i: usize, m: __mmask8) -> __m256d {
            let x = _mm256_maskz_loadu_pd(m, self.x.add(i));
            let mut z = _mm256_maskz_loadu_pd(m, self.n.add(i));
            if SCALED {
                z = _mm256_mul_pd(_mm256_set1_pd(self.c), z);
            }
            _mm256_add_pd(
                x,
                _mm256_mul_pd(_mm256_set1_pd(self.rho), _mm256_add_pd(p, z)),
            )
        }
    }

    /// `out ← out + (−η)(p + z)`, `z = c·n` (`SCALED`) or `n`.
    pub(super) struct Descent<const SCALED: bool> {
        n: *const f64,
        eta: f64,
        c: f64,
    }
    impl<const SCALED: bool> Descent<SCALED> {
        pub(super) fn new(n: *const f64, eta: f64, c: f64) -> Self {
            Self { n, eta, c }
        }
    }
    impl<const SCALED: bool> Epilogue for Descent<SCALED> {
        #[inline(always)]
        unsafe fn zmm(&self, p: __m512d, out: *const f64, i: usize, m: __mmask8) -> __m512d {
            let x = _mm512_maskz_loadu_pd(m, out.add(i));
            let mut z = _mm512_maskz_loadu_pd(m, self.n.add(i));
            if SCALED {
                z = _mm512_mul_pd(_mm512_set1_pd(self.c), z);
            }
            _mm512_add_pd(
                x,
                _mm512_mul_pd(_mm512_set1_pd(-self.eta), _mm512_add_pd(p, z)),
            )
        }
        #[inline(always)]
        unsafe fn ymm(&self, p: __m256d, out: *const f64, i: usize, m: __mmask8) -> __m256d {
            let x = _mm256_maskz_loadu_pd(m, out.add(i));
            let mut z = _mm256_maskz_loadu_pd(m, self.n.add(i));
            if SCALED {
                z = _mm256_mul_pd(_mm256_set1_pd(self.c), z);
            }
            _mm256_add_pd(
                x,
                _mm256_mul_pd(_mm256_set1_pd(-self.eta), _mm256_add_pd(p, z)),
            )
        }
    }

    /// Rows `r0 ..` of `out[:, j .. j + C] = A x[:, j .. j + C]`: `Z` segments of 8 rows in
    /// 512-bit registers (the last one masked by `zmask`), then, when `Y`, one segment of
    /// ≤ 4 rows in a 256-bit register (masked by `ymask`).
    #[inline(always)]
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)] // [segment][column] tiles
    unsafe fn pass<E: Epilogue, const Z: usize, const Y: bool, const C: usize>(
        epi: &E,
        ap: *const f64,
        d: usize,
        xp: *const f64,
        op: *mut f64,
        r0: usize,
        j: usize,
        zmask: __mmask8,
        ymask: __mmask8,
    ) {
        let mut accz = [[_mm512_setzero_pd(); C]; Z];
        let mut accy = [_mm256_setzero_pd(); C];
        for k in 0..d {
            let col = ap.add(k * d + r0);
            let mut az = [_mm512_setzero_pd(); Z];
            for (s, a) in az.iter_mut().enumerate() {
                let m = if s + 1 == Z { zmask } else { 0xff };
                *a = _mm512_maskz_loadu_pd(m, col.add(8 * s));
            }
            let ay = if Y {
                _mm256_maskz_loadu_pd(ymask, col.add(8 * Z))
            } else {
                _mm256_setzero_pd()
            };
            for c in 0..C {
                let xv = *xp.add((j + c) * d + k);
                let xz = _mm512_set1_pd(xv);
                for s in 0..Z {
                    accz[s][c] = _mm512_add_pd(accz[s][c], _mm512_mul_pd(az[s], xz));
                }
                if Y {
                    let xy = _mm256_set1_pd(xv);
                    accy[c] = _mm256_add_pd(accy[c], _mm256_mul_pd(ay, xy));
                }
            }
        }
        for c in 0..C {
            let i0 = (j + c) * d + r0;
            let o = op.add(i0);
            for s in 0..Z {
                let m = if s + 1 == Z { zmask } else { 0xff };
                let v = epi.zmm(accz[s][c], op, i0 + 8 * s, m);
                _mm512_mask_storeu_pd(o.add(8 * s), m, v);
            }
            if Y {
                let v = epi.ymm(accy[c], op, i0 + 8 * Z, ymask);
                _mm256_mask_storeu_pd(o.add(8 * Z), ymask, v);
            }
        }
    }

    /// Every row segment of columns `j .. j + C`.
    #[inline(always)]
    unsafe fn columns<E: Epilogue, const C: usize>(
        epi: &E,
        ap: *const f64,
        d: usize,
        xp: *const f64,
        op: *mut f64,
        j: usize,
    ) {
        let full = d / 8;
        let rem = d % 8;
        // Segments: `full` of 8 rows, then a masked 512-bit one (5–7 rows) or a 256-bit one
        // (1–4 rows). Passes take up to three segments.
        let (zsegs, ytail) = match rem {
            0 => (full, 0),
            1..=4 => (full, rem),
            _ => (full + 1, 0),
        };
        let last_zmask: __mmask8 = if rem > 4 {
            ((1u16 << rem) - 1) as __mmask8
        } else {
            0xff
        };
        let ymask: __mmask8 = ((1u16 << ytail) - 1) as __mmask8;
        let mut s = 0;
        loop {
            let left = zsegs - s;
            let r0 = 8 * s;
            // The last pass takes the 256-bit tail with at most two 512-bit segments.
            let tail = ytail > 0 && left <= 2;
            let take = if tail { left } else { left.min(3) };
            let mask = if s + take == zsegs { last_zmask } else { 0xff };
            match (take, tail) {
                (3, false) => pass::<E, 3, false, C>(epi, ap, d, xp, op, r0, j, mask, 0),
                (2, false) => pass::<E, 2, false, C>(epi, ap, d, xp, op, r0, j, mask, 0),
                (1, false) => pass::<E, 1, false, C>(epi, ap, d, xp, op, r0, j, mask, 0),
                (2, true) => pass::<E, 2, true, C>(epi, ap, d, xp, op, r0, j, mask, ymask),
                (1, true) => pass::<E, 1, true, C>(epi, ap, d, xp, op, r0, j, mask, ymask),
                (0, true) => pass::<E, 0, true, C>(epi, ap, d, xp, op, r0, j, 0xff, ymask),
                _ => unreachable!("passes take 1–3 segments"),
            }
            s += take;
            if s >= zsegs && (tail || ytail == 0) {
                break;
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512vl")]
    pub(super) unsafe fn square_times<E: Epilogue>(
        a: &[f64],
        d: usize,
        x: &[f64],
        out: &mut [f64],
        epi: &E,
        then: &mut dyn FnMut(std::ops::Range<usize>, &[f64]),
    ) {
        let p = x.len() / d;
        let (ap, xp, op) = (a.as_ptr(), x.as_ptr(), out.as_mut_ptr());
        let mut j0 = 0;
        while j0 < p {
            let j1 = (j0 + super::THEN_TILE).min(p);
            let mut j = j0;
            while j + 4 <= j1 {
                columns::<E, 4>(epi, ap, d, xp, op, j);
                j += 4;
            }
            while j < j1 {
                columns::<E, 1>(epi, ap, d, xp, op, j);
                j += 1;
            }
            // The tile just written, read through the same pointer the kernel wrote with.
            then(
                j0..j1,
                std::slice::from_raw_parts(op.add(j0 * d), (j1 - j0) * d),
            );
            j0 = j1;
        }
    }
}

/// `true` when every entry is finite.
pub fn all_finite(m: &Matrix) -> bool {
    m.iter().all(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel equals the plain loop `Σ_k a_ik x_kj` (k ascending) bit for bit, for sizes
    /// around the 8-row chunks and 4-column blocks.
    #[test]
    fn square_times_matches_plain_loop() {
        #[cfg(target_arch = "x86_64")]
        let kernel = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl");
        #[cfg(not(target_arch = "x86_64"))]
        let kernel = false;
        for d in [1, 3, 4, 5, 8, 9, 12, 13, 16, 20, 24, 25, 33, 64] {
            for p in [1, 4, 7, 13] {
                let a = Matrix::from_fn(d, d, |i, j| ((i * 7 + j * 3) % 11) as f64 * 0.37 - 1.1);
                let x = Matrix::from_fn(d, p, |i, j| ((i * 5 + j * 13) % 17) as f64 * 0.21 - 1.6);
                let mut out = Matrix::zeros(d, p);
                square_times(&a, &x, &mut out);
                for j in 0..p {
                    for i in 0..d {
                        let mut s = 0.0;
                        for k in 0..d {
                            s += a[(i, k)] * x[(k, j)];
                        }
                        let got = out[(i, j)];
                        if kernel {
                            assert_eq!(got.to_bits(), s.to_bits(), "d {d} p {p} ({i}, {j})");
                        } else {
                            // nalgebra's gemm (no AVX-512) may round differently: 1e-12 then
                            // (entries are O(10), sums of ≤ 64 products).
                            assert!((got - s).abs() < 1e-12, "d {d} p {p}");
                        }
                    }
                }
            }
        }
    }

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
