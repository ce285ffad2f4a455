//! Bulk standard normals for a block of paths: one ChaCha8 stream per path, eight paths in
//! lock-step SIMD lanes, and a branch-free Box–Muller transform.
//!
//! # Streams
//!
//! Path `p`'s uniform bits are exactly the ChaCha8 keystream of
//! `ChaCha8Rng::seed_from_u64(seed)` with `set_stream(p)` (the same key, 64-bit stream
//! identifier and 64-bit block counter as `rand_chacha`; the test `keystream_matches_rand_chacha`
//! checks it word for word). All paths of a run share the key and differ in the stream, so
//! eight paths are computed at once, one per SIMD lane, with the counter in common (on
//! AVX-512, two consecutive blocks of the eight paths share each 512-bit instruction). Each
//! path owns its stream and consumes it in a fixed order, so its numbers do not depend on the
//! block size, on its lane, or on the thread count.
//!
//! # Transform
//!
//! Each ChaCha block of a path (16 words `w₀ … w₁₅`) gives five pairs of normals; pair
//! `q < 5` takes the three words `(w₃q, w₃q₊₁, w₃q₊₂)` and word `w₁₅` is not used:
//!
//! * radius word `a = w₃q + 2³² w₃q₊₁` (64 bits), `U = 1 − k/2⁵²` with `k` the top 52 bits of
//!   `a`, so `U ∈ (0, 1]` exactly on the 2⁻⁵² grid;
//! * angle word `l = w₃q₊₂` (32 bits), `Θ = 2π l/2³²`;
//!
//! and Box–Muller gives `Z₀ = R cos Θ`, `Z₁ = R sin Θ`, `R = √(−2 ln U)`. A generator call
//! takes two consecutive blocks, i.e. 20 normals per path.
//!
//! `ln` is fdlibm's (`e_log.c`: reduction, the one division `s = f/(2 + f)` and its
//! polynomial, with its select-free final formula; within 1 ulp of the standard library).
//! The angle's quadrant comes from the integer `l` (2³² is divisible by 4, so the grid is
//! symmetric under quarter turns and the reduction to `[−π/4, π/4]` is exact); there `sin` is
//! fdlibm's kernel (`k_sin.c`) and `cos = √(1 − sin²)` (`cos ≥ 1/√2` there; within 2 ulp of
//! the standard library). All of it is straight-line code that the compiler vectorises. No
//! fused multiply–add is used, so the numbers are bit-identical on every x86-64 processor,
//! whichever instruction set the dispatch picks (portable, AVX2 or AVX-512). The largest
//! `|Z|` is `√(2 · 52 ln 2) ≈ 8.49` (`P(|Z| > 8.49) ≈ 2·10⁻¹⁷`); the angle grid of 2³²
//! points per turn is far below any Monte Carlo resolution.
//!
//! Cost on the project's machine: see BENCHMARKS.md (≈ 2 ns per normal, eight paths at a
//! time and stored in place, against ≈ 5–6 ns for `rand_chacha` + `rand_distr`'s ziggurat).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Paths per SIMD group.
pub const LANES: usize = 8;
/// Normal pairs per ChaCha block and lane (16 words: five triples, the last word unused).
const PAIRS_PER_CHACHA: usize = 5;
/// Normals per generator call and lane: two consecutive ChaCha blocks (20 normals).
const PER_BLOCK: usize = 4 * PAIRS_PER_CHACHA;

const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// The 256-bit ChaCha key that `ChaCha8Rng::seed_from_u64(seed)` uses, as eight words.
pub fn key_of_seed(seed: u64) -> [u32; 8] {
    let bytes = ChaCha8Rng::seed_from_u64(seed).get_seed();
    let mut key = [0u32; 8];
    for (k, c) in key.iter_mut().zip(bytes.chunks_exact(4)) {
        *k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    key
}

/// One group of up to [`LANES`] paths advancing in lock-step.
#[derive(Debug, Clone)]
struct Group {
    nonce_lo: [u32; LANES],
    nonce_hi: [u32; LANES],
    /// Next ChaCha block index (shared by the lanes).
    counter: u64,
    /// Normals of the last block not yet handed out: `spare[i][lane]`, `i ≥ spare_pos`.
    spare: [[f64; LANES]; PER_BLOCK],
    spare_pos: usize,
    /// First path (column) of the group within the block and number of real lanes.
    first: usize,
    width: usize,
}

/// Standard normals for the paths of one block, each path from its own ChaCha8 stream.
#[derive(Debug, Clone)]
pub struct BlockNormals {
    key: [u32; 8],
    groups: Vec<Group>,
}

impl BlockNormals {
    /// Streams `streams[j]` under `seed`, one per path (column) `j` of the block.
    pub fn new(seed: u64, streams: &[u64]) -> Self {
        let key = key_of_seed(seed);
        let groups = streams
            .chunks(LANES)
            .enumerate()
            .map(|(g, chunk)| {
                let mut nonce_lo = [0u32; LANES];
                let mut nonce_hi = [0u32; LANES];
                for (l, &s) in chunk.iter().enumerate() {
                    nonce_lo[l] = s as u32;
                    nonce_hi[l] = (s >> 32) as u32;
                }
                Group {
                    nonce_lo,
                    nonce_hi,
                    counter: 0,
                    spare: [[0.0; LANES]; PER_BLOCK],
                    spare_pos: PER_BLOCK,
                    first: g * LANES,
                    width: chunk.len(),
                }
            })
            .collect();
        Self { key, groups }
    }

    /// Number of paths.
    pub fn paths(&self) -> usize {
        self.groups.iter().map(|g| g.width).sum()
    }

    /// Fills `out` (`m × P`, column-major, one path per column) with `scale` times the next
    /// `m` normals of each path's stream.
    pub fn fill(&mut self, out: &mut [f64], m: usize, scale: f64) {
        assert_eq!(out.len(), m * self.paths(), "BlockNormals::fill: shape");
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                // SAFETY: AVX-512F/VL (and so AVX2) were detected at run time.
                return unsafe { self.fill_avx512(out, m, scale) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 was detected at run time.
                return unsafe { self.fill_avx2(out, m, scale) };
            }
        }
        self.fill_with(out, m, scale, normals_block)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fill_avx2(&mut self, out: &mut [f64], m: usize, scale: f64) {
        // SAFETY (of the calls inside): AVX2 is enabled for this function.
        self.fill_with(out, m, scale, |k, c, lo, hi| unsafe {
            avx2::normals_block(k, c, lo, hi)
        })
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,avx512f,avx512vl")]
    unsafe fn fill_avx512(&mut self, out: &mut [f64], m: usize, scale: f64) {
        // SAFETY (of the calls inside): the features are enabled for this function.
        self.fill_with_store(
            out,
            m,
            scale,
            |k, c, lo, hi| unsafe { avx512::normals_block(k, c, lo, hi) },
            |z, out, m, take, scale| unsafe { avx512::store_lanes(z, out, m, take, scale) },
        )
    }

    /// The portable path (also the reference the SIMD path is tested against).
    pub fn fill_portable(&mut self, out: &mut [f64], m: usize, scale: f64) {
        assert_eq!(out.len(), m * self.paths(), "BlockNormals::fill: shape");
        self.fill_with(out, m, scale, normals_block)
    }

    #[inline(always)]
    fn fill_with<F>(&mut self, out: &mut [f64], m: usize, scale: f64, block: F)
    where
        F: Fn(&[u32; 8], u64, &[u32; LANES], &[u32; LANES]) -> [[f64; LANES]; PER_BLOCK],
    {
        self.fill_with_store(out, m, scale, block, store_lanes)
    }

    /// As [`Self::fill_with`]; `store(z, out, m, take, scale)` writes the first `take` normals
    /// of a whole block of [`LANES`] paths, `out[l·m + t] = scale · z[t][l]` (a narrower last
    /// group is written here).
    #[inline(always)]
    fn fill_with_store<F, S>(&mut self, out: &mut [f64], m: usize, scale: f64, block: F, store: S)
    where
        F: Fn(&[u32; 8], u64, &[u32; LANES], &[u32; LANES]) -> [[f64; LANES]; PER_BLOCK],
        S: Fn(&[[f64; LANES]; PER_BLOCK], &mut [f64], usize, usize, f64),
    {
        if m == 0 {
            return;
        }
        let key = self.key;
        for g in self.groups.iter_mut() {
            let mut i = 0;
            while i < m && g.spare_pos < PER_BLOCK {
                for l in 0..g.width {
                    out[(g.first + l) * m + i] = scale * g.spare[g.spare_pos][l];
                }
                g.spare_pos += 1;
                i += 1;
            }
            while i < m {
                let z = block(&key, g.counter, &g.nonce_lo, &g.nonce_hi);
                g.counter += 2;
                let take = PER_BLOCK.min(m - i);
                if g.width == LANES {
                    let end = (g.first + LANES - 1) * m + i + take;
                    store(&z, &mut out[g.first * m + i..end], m, take, scale);
                } else {
                    for l in 0..g.width {
                        let col = &mut out[(g.first + l) * m + i..(g.first + l) * m + i + take];
                        for (t, o) in col.iter_mut().enumerate() {
                            *o = scale * z[t][l];
                        }
                    }
                }
                if take < PER_BLOCK {
                    g.spare = z;
                    g.spare_pos = take;
                }
                i += take;
            }
        }
    }
}

/// `out[l·m + t] = scale · z[t][l]` for every lane `l` and `t < take` (`out` starts at lane
/// 0's first slot and ends after lane `LANES − 1`'s last).
#[inline(always)]
fn store_lanes(z: &[[f64; LANES]; PER_BLOCK], out: &mut [f64], m: usize, take: usize, scale: f64) {
    for l in 0..LANES {
        for (t, o) in out[l * m..l * m + take].iter_mut().enumerate() {
            *o = scale * z[t][l];
        }
    }
}

/// Words per ChaCha block and lane.
const WORDS_PER_BLOCK: usize = 16;

/// One group of up to [`LANES`] paths whose uniform words come from the same ChaCha block
/// counter; each lane keeps the words it has not consumed yet.
#[derive(Debug, Clone)]
struct WordGroup {
    nonce_lo: [u32; LANES],
    nonce_hi: [u32; LANES],
    /// Next ChaCha block index (shared by the lanes).
    counter: u64,
    /// Lane `l`'s words not yet handed out are `words[l][pos[l]..]`.
    words: [Vec<u32>; LANES],
    pos: [usize; LANES],
    width: usize,
}

impl WordGroup {
    /// Appends the next ChaCha block of every lane to its unread words.
    #[inline(never)]
    fn refill(&mut self, key: &[u32; 8]) {
        let w = words_block(key, self.counter, &self.nonce_lo, &self.nonce_hi);
        self.counter += 1;
        for l in 0..self.width {
            let v = &mut self.words[l];
            // Drop the words read so far only when the buffer would otherwise grow (a lane
            // that has consumed fewer words keeps its unread ones, however many).
            if self.pos[l] == v.len() {
                v.clear();
                self.pos[l] = 0;
            } else if v.len() + WORDS_PER_BLOCK > v.capacity() {
                v.drain(..self.pos[l]);
                self.pos[l] = 0;
            }
            v.extend(w.iter().map(|row| row[l]));
        }
    }
}

/// Uniform 32-bit words for the paths of one block, each path from its own ChaCha8 stream:
/// path `j`'s words are exactly `next_u32` of `ChaCha8Rng::seed_from_u64(seed)` with
/// `set_stream(streams[j])` (test `words_match_rand_chacha`). Eight paths share one SIMD
/// ChaCha computation (the kernels of [`BlockNormals`]); unlike normals, paths may consume
/// different numbers of words (rejection sampling), so each lane keeps its unread words and a
/// lane that runs dry refills its whole group. A path's words therefore do not depend on the
/// block size, its lane, the other paths or the thread count.
#[derive(Debug, Clone)]
pub struct BlockWords {
    key: [u32; 8],
    groups: Vec<WordGroup>,
}

impl BlockWords {
    /// Streams `streams[j]` under `seed`, one per path `j` of the block.
    pub fn new(seed: u64, streams: &[u64]) -> Self {
        let key = key_of_seed(seed);
        let groups = streams
            .chunks(LANES)
            .map(|chunk| {
                let mut nonce_lo = [0u32; LANES];
                let mut nonce_hi = [0u32; LANES];
                for (l, &s) in chunk.iter().enumerate() {
                    nonce_lo[l] = s as u32;
                    nonce_hi[l] = (s >> 32) as u32;
                }
                WordGroup {
                    nonce_lo,
                    nonce_hi,
                    counter: 0,
                    words: std::array::from_fn(|_| Vec::with_capacity(8 * WORDS_PER_BLOCK)),
                    pos: [0; LANES],
                    width: chunk.len(),
                }
            })
            .collect();
        Self { key, groups }
    }

    /// Number of paths.
    pub fn paths(&self) -> usize {
        self.groups.iter().map(|g| g.width).sum()
    }

    /// The word source of path `j`.
    #[inline]
    pub fn path(&mut self, j: usize) -> PathWords<'_> {
        PathWords {
            key: &self.key,
            group: &mut self.groups[j / LANES],
            lane: j % LANES,
        }
    }
}

/// One path's uniform words (see [`BlockWords`]).
#[derive(Debug)]
pub struct PathWords<'a> {
    key: &'a [u32; 8],
    group: &'a mut WordGroup,
    lane: usize,
}

impl PathWords<'_> {
    /// The path's next uniform 32-bit word.
    #[inline(always)]
    pub fn next_u32(&mut self) -> u32 {
        let l = self.lane;
        if self.group.pos[l] == self.group.words[l].len() {
            self.group.refill(self.key);
        }
        let w = self.group.words[l][self.group.pos[l]];
        self.group.pos[l] += 1;
        w
    }
}

/// The ChaCha8 block `counter` of each lane's stream, `w[i][lane]` (the SIMD kernel where the
/// processor has one; bit for bit [`chacha8_lanes`]).
fn words_block(
    key: &[u32; 8],
    counter: u64,
    nonce_lo: &[u32; LANES],
    nonce_hi: &[u32; LANES],
) -> [[u32; LANES]; WORDS_PER_BLOCK] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            // SAFETY: AVX-512F/VL (and so AVX2) were detected at run time.
            return unsafe { avx2::words_block::<true>(key, counter, nonce_lo, nonce_hi) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected at run time.
            return unsafe { avx2::words_block::<false>(key, counter, nonce_lo, nonce_hi) };
        }
    }
    chacha8_lanes(key, counter, nonce_lo, nonce_hi)
}

/// The ChaCha8 blocks `counter` and `counter + 1` of every lane, then Box–Muller on each
/// block's words: pair `q` of a block takes words `3q`, `3q + 1` (radius) and `3q + 2`
/// (angle), `q < 5`; word 15 is not used. `z[i][lane]`, block `counter`'s ten normals first.
#[inline(always)]
fn normals_block(
    key: &[u32; 8],
    counter: u64,
    nonce_lo: &[u32; LANES],
    nonce_hi: &[u32; LANES],
) -> [[f64; LANES]; PER_BLOCK] {
    let mut z = [[0.0; LANES]; PER_BLOCK];
    for half in 0..2 {
        let w = chacha8_lanes(key, counter.wrapping_add(half as u64), nonce_lo, nonce_hi);
        for q in 0..PAIRS_PER_CHACHA {
            for l in 0..LANES {
                let a = (w[3 * q][l] as u64) | ((w[3 * q + 1][l] as u64) << 32);
                let (z0, z1) = box_muller(a, w[3 * q + 2][l]);
                let i = 2 * PAIRS_PER_CHACHA * half + 2 * q;
                z[i][l] = z0;
                z[i + 1][l] = z1;
            }
        }
    }
    z
}

/// The ChaCha8 block `counter` of each lane's stream (`rand_chacha`'s layout: constants, key,
/// 64-bit block counter, 64-bit stream identifier).
#[inline(always)]
pub fn chacha8_lanes(
    key: &[u32; 8],
    counter: u64,
    nonce_lo: &[u32; LANES],
    nonce_hi: &[u32; LANES],
) -> [[u32; LANES]; 16] {
    let mut init = [[0u32; LANES]; 16];
    for i in 0..4 {
        init[i] = [SIGMA[i]; LANES];
    }
    for i in 0..8 {
        init[4 + i] = [key[i]; LANES];
    }
    init[12] = [counter as u32; LANES];
    init[13] = [(counter >> 32) as u32; LANES];
    init[14] = *nonce_lo;
    init[15] = *nonce_hi;
    let mut x = init;
    for _ in 0..4 {
        quarter_round(&mut x, 0, 4, 8, 12);
        quarter_round(&mut x, 1, 5, 9, 13);
        quarter_round(&mut x, 2, 6, 10, 14);
        quarter_round(&mut x, 3, 7, 11, 15);
        quarter_round(&mut x, 0, 5, 10, 15);
        quarter_round(&mut x, 1, 6, 11, 12);
        quarter_round(&mut x, 2, 7, 8, 13);
        quarter_round(&mut x, 3, 4, 9, 14);
    }
    for (xi, ii) in x.iter_mut().zip(&init) {
        for l in 0..LANES {
            xi[l] = xi[l].wrapping_add(ii[l]);
        }
    }
    x
}

#[inline(always)]
#[allow(clippy::needless_range_loop)] // four rows of one array, indexed by lane
fn quarter_round(x: &mut [[u32; LANES]; 16], a: usize, b: usize, c: usize, d: usize) {
    for l in 0..LANES {
        let (mut va, mut vb, mut vc, mut vd) = (x[a][l], x[b][l], x[c][l], x[d][l]);
        va = va.wrapping_add(vb);
        vd = (vd ^ va).rotate_left(16);
        vc = vc.wrapping_add(vd);
        vb = (vb ^ vc).rotate_left(12);
        va = va.wrapping_add(vb);
        vd = (vd ^ va).rotate_left(8);
        vc = vc.wrapping_add(vd);
        vb = (vb ^ vc).rotate_left(7);
        x[a][l] = va;
        x[b][l] = vb;
        x[c][l] = vc;
        x[d][l] = vd;
    }
}

const ONE_BITS: u64 = 0x3FF0_0000_0000_0000;
/// `2π · 2⁻³²` (exact: a power-of-two multiple of `2π`'s double): turns the reduced integer
/// angle into radians.
const TWO_PI_ULP: f64 = std::f64::consts::TAU / 4_294_967_296.0;

/// Two standard normals from a 64-bit word `a` (radius) and a 32-bit word `b` (angle)
/// (Box–Muller, see the module docs).
#[inline(always)]
pub fn box_muller(a: u64, b: u32) -> (f64, f64) {
    // U = 1 − k/2⁵² ∈ (0, 1], exact.
    let u = 2.0 - f64::from_bits(ONE_BITS | (a >> 12));
    let r = (-2.0 * ln_unit(u)).sqrt();
    let (c, s) = cos_sin_turns(b);
    (r * c, r * s)
}

/// `i as f64` for `|i| < 2⁵¹`, with integer operations that vectorise without AVX-512.
#[inline(always)]
fn small_int_to_f64(i: i64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 · 2⁵²
    f64::from_bits(MAGIC.to_bits().wrapping_add(i as u64)) - MAGIC
}

mod ln_consts {
    pub(crate) const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    pub(crate) const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    pub(crate) const LG1: f64 = f64::from_bits(0x3FE5_5555_5555_5593);
    pub(crate) const LG2: f64 = f64::from_bits(0x3FD9_9999_9997_FA04);
    pub(crate) const LG3: f64 = f64::from_bits(0x3FD2_4924_9422_9359);
    pub(crate) const LG4: f64 = f64::from_bits(0x3FCC_71C5_1D8E_78AF);
    pub(crate) const LG5: f64 = f64::from_bits(0x3FC7_4664_96CB_03DE);
    pub(crate) const LG6: f64 = f64::from_bits(0x3FC3_9A09_D078_C69F);
    pub(crate) const LG7: f64 = f64::from_bits(0x3FC2_F112_DF3E_5244);
}

mod trig_consts {
    pub(crate) const S1: f64 = f64::from_bits(0xBFC5_5555_5555_5549);
    pub(crate) const S2: f64 = f64::from_bits(0x3F81_1111_1110_F8A6);
    pub(crate) const S3: f64 = f64::from_bits(0xBF2A_01A0_19C1_61D5);
    pub(crate) const S4: f64 = f64::from_bits(0x3EC7_1DE3_57B1_FE7D);
    pub(crate) const S5: f64 = f64::from_bits(0xBE5A_E5E6_8A2B_9CEB);
    pub(crate) const S6: f64 = f64::from_bits(0x3DE5_D93A_5ACF_D57C);
}

/// `ln x` for a positive normal `x` (fdlibm `e_log.c`'s reduction and polynomial; of its two
/// final formulas the one without `f²/2`, `k ln 2 − ((s(f − R) − k ln2_lo) − f)`, for every
/// `x`, so no select is needed; within 1 ulp of the standard library, test `ln_matches_std`).
#[inline(always)]
pub(crate) fn ln_unit(x: f64) -> f64 {
    use ln_consts::*;
    let bits = x.to_bits();
    let hx_full = (bits >> 32) as i64;
    let hx = hx_full & 0x000f_ffff;
    let i = (hx + 0x95f64) & 0x10_0000;
    // k = exponent − 1023 (+1 when the mantissa is ≥ √2 and x is halved).
    let k = (hx_full >> 20) - 1023 + (i >> 20);
    let xm = f64::from_bits((((hx | (i ^ 0x3ff0_0000)) as u64) << 32) | (bits & 0xffff_ffff));
    let f = xm - 1.0;
    let s = f / (2.0 + f);
    let dk = small_int_to_f64(k);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    dk * LN2_HI - ((s * (f - r) - dk * LN2_LO) - f)
}

/// `(cos 2πt, sin 2πt)` for `t = l/2³²`: exact quadrant reduction, fdlibm's `sin` kernel on
/// `[−π/4, π/4]`, and `cos = √(1 − sin²)` there (`cos ≥ 1/√2`, so the square root loses
/// nothing; within 2 ulp of the standard library, test `cos_sin_match_std`).
#[inline(always)]
pub(crate) fn cos_sin_turns(l: u32) -> (f64, f64) {
    use trig_consts::*;
    // Nearest quarter turn n ∈ 0..=4 and the remainder in [−1/8, 1/8) turns, exactly.
    let l = l as u64;
    let n = (l + (1 << 29)) >> 30;
    let rem = l as i64 - (n << 30) as i64;
    let x = small_int_to_f64(rem) * TWO_PI_ULP;
    let z = x * x;
    // sin (k_sin.c)
    let v = z * x;
    let rs = S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)));
    let sin = x + v * (S1 + z * rs);
    let cos = (1.0 - sin * sin).sqrt();
    // Rotate by n quarter turns: odd n swaps; cos is negated for n ∈ {1, 2}, sin for {2, 3}.
    let swap = (n & 1).wrapping_neg();
    let (cb, sb) = (cos.to_bits(), sin.to_bits());
    let c = (cb & !swap) | (sb & swap);
    let s = (sb & !swap) | (cb & swap);
    let c = c ^ (((n + 1) & 2) << 62);
    let s = s ^ ((n & 2) << 62);
    (f64::from_bits(c), f64::from_bits(s))
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The same block and transform with AVX2 intrinsics, operation for operation (so the
    //! results are bit-identical to the portable code; test `simd_matches_portable`).
    use super::{LANES, ONE_BITS, PAIRS_PER_CHACHA, PER_BLOCK, SIGMA, TWO_PI_ULP};
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn rotl16(x: __m256i) -> __m256i {
        _mm256_shuffle_epi8(
            x,
            _mm256_setr_epi8(
                2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10,
                11, 8, 9, 14, 15, 12, 13,
            ),
        )
    }
    #[inline(always)]
    unsafe fn rotl8(x: __m256i) -> __m256i {
        _mm256_shuffle_epi8(
            x,
            _mm256_setr_epi8(
                3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14, 3, 0, 1, 2, 7, 4, 5, 6, 11,
                8, 9, 10, 15, 12, 13, 14,
            ),
        )
    }
    #[inline(always)]
    unsafe fn rotl<const L: i32, const R: i32>(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_slli_epi32::<L>(x), _mm256_srli_epi32::<R>(x))
    }
    /// One quarter round; `ROL` uses AVX-512VL's rotate (callers enable it).
    #[inline(always)]
    unsafe fn qr<const ROL: bool>(x: &mut [__m256i; 16], a: usize, b: usize, c: usize, d: usize) {
        if ROL {
            return super::avx512::qr(x, a, b, c, d);
        }
        x[a] = _mm256_add_epi32(x[a], x[b]);
        x[d] = rotl16(_mm256_xor_si256(x[d], x[a]));
        x[c] = _mm256_add_epi32(x[c], x[d]);
        x[b] = rotl::<12, 20>(_mm256_xor_si256(x[b], x[c]));
        x[a] = _mm256_add_epi32(x[a], x[b]);
        x[d] = rotl8(_mm256_xor_si256(x[d], x[a]));
        x[c] = _mm256_add_epi32(x[c], x[d]);
        x[b] = rotl::<7, 25>(_mm256_xor_si256(x[b], x[c]));
    }

    #[inline(always)]
    unsafe fn pd(v: f64) -> __m256d {
        _mm256_set1_pd(v)
    }
    #[inline(always)]
    unsafe fn epi(v: i64) -> __m256i {
        _mm256_set1_epi64x(v)
    }

    /// `ln x` for four positive normal `x` (the portable `ln_unit`, operation for operation).
    #[inline(always)]
    unsafe fn ln4(x: __m256d) -> __m256d {
        use super::ln_consts::*;
        let bits = _mm256_castpd_si256(x);
        let hx_full = _mm256_srli_epi64::<32>(bits);
        let hx = _mm256_and_si256(hx_full, epi(0x000f_ffff));
        let i = _mm256_and_si256(_mm256_add_epi64(hx, epi(0x95f64)), epi(0x10_0000));
        let k = _mm256_sub_epi64(
            _mm256_add_epi64(_mm256_srli_epi64::<20>(hx_full), _mm256_srli_epi64::<20>(i)),
            epi(1023),
        );
        let hi = _mm256_or_si256(hx, _mm256_xor_si256(i, epi(0x3ff0_0000)));
        let xm = _mm256_castsi256_pd(_mm256_or_si256(
            _mm256_slli_epi64::<32>(hi),
            _mm256_and_si256(bits, epi(0xffff_ffff)),
        ));
        let f = _mm256_sub_pd(xm, pd(1.0));
        let s = _mm256_div_pd(f, _mm256_add_pd(pd(2.0), f));
        let dk = small_int_to_f64(k);
        let z = _mm256_mul_pd(s, s);
        let w = _mm256_mul_pd(z, z);
        let t1 = _mm256_mul_pd(
            w,
            _mm256_add_pd(
                pd(LG2),
                _mm256_mul_pd(w, _mm256_add_pd(pd(LG4), _mm256_mul_pd(w, pd(LG6)))),
            ),
        );
        let t2 = _mm256_mul_pd(
            z,
            _mm256_add_pd(
                pd(LG1),
                _mm256_mul_pd(
                    w,
                    _mm256_add_pd(
                        pd(LG3),
                        _mm256_mul_pd(w, _mm256_add_pd(pd(LG5), _mm256_mul_pd(w, pd(LG7)))),
                    ),
                ),
            ),
        );
        let r = _mm256_add_pd(t2, t1);
        let dk_hi = _mm256_mul_pd(dk, pd(LN2_HI));
        let dk_lo = _mm256_mul_pd(dk, pd(LN2_LO));
        _mm256_sub_pd(
            dk_hi,
            _mm256_sub_pd(
                _mm256_sub_pd(_mm256_mul_pd(s, _mm256_sub_pd(f, r)), dk_lo),
                f,
            ),
        )
    }

    #[inline(always)]
    unsafe fn small_int_to_f64(i: __m256i) -> __m256d {
        const MAGIC: f64 = 6_755_399_441_055_744.0;
        _mm256_sub_pd(
            _mm256_castsi256_pd(_mm256_add_epi64(_mm256_castpd_si256(pd(MAGIC)), i)),
            pd(MAGIC),
        )
    }

    /// `c[0] + z(c[1] + z(… + z c[last]))`.
    #[inline(always)]
    unsafe fn poly(z: __m256d, c: &[f64]) -> __m256d {
        let mut acc = pd(c[c.len() - 1]);
        for &ci in c[..c.len() - 1].iter().rev() {
            acc = _mm256_add_pd(pd(ci), _mm256_mul_pd(z, acc));
        }
        acc
    }

    /// `(cos 2πt, sin 2πt)`, `t = l/2³²` for `l < 2³²` in each 64-bit lane (the portable
    /// `cos_sin_turns`, operation for operation).
    #[inline(always)]
    pub(super) unsafe fn cos_sin4(l: __m256i) -> (__m256d, __m256d) {
        use super::trig_consts::*;
        let n = _mm256_srli_epi64::<30>(_mm256_add_epi64(l, epi(1 << 29)));
        let rem = _mm256_sub_epi64(l, _mm256_slli_epi64::<30>(n));
        let x = _mm256_mul_pd(small_int_to_f64(rem), pd(TWO_PI_ULP));
        let z = _mm256_mul_pd(x, x);
        let v = _mm256_mul_pd(z, x);
        let rs = poly(z, &[S2, S3, S4, S5, S6]);
        let sin = _mm256_add_pd(
            x,
            _mm256_mul_pd(v, _mm256_add_pd(pd(S1), _mm256_mul_pd(z, rs))),
        );
        let cos = _mm256_sqrt_pd(_mm256_sub_pd(pd(1.0), _mm256_mul_pd(sin, sin)));
        let swap = _mm256_sub_epi64(_mm256_setzero_si256(), _mm256_and_si256(n, epi(1)));
        let (cb, sb) = (_mm256_castpd_si256(cos), _mm256_castpd_si256(sin));
        let c = _mm256_or_si256(_mm256_andnot_si256(swap, cb), _mm256_and_si256(swap, sb));
        let s = _mm256_or_si256(_mm256_andnot_si256(swap, sb), _mm256_and_si256(swap, cb));
        let c = _mm256_xor_si256(
            c,
            _mm256_slli_epi64::<62>(_mm256_and_si256(_mm256_add_epi64(n, epi(1)), epi(2))),
        );
        let s = _mm256_xor_si256(s, _mm256_slli_epi64::<62>(_mm256_and_si256(n, epi(2))));
        (_mm256_castsi256_pd(c), _mm256_castsi256_pd(s))
    }

    /// Box–Muller on four lanes: `a` the 64-bit radius words, `b` the 32-bit angle words
    /// (zero-extended).
    #[inline(always)]
    unsafe fn box_muller4(a: __m256i, b: __m256i) -> (__m256d, __m256d) {
        let f1 = _mm256_castsi256_pd(_mm256_or_si256(
            epi(ONE_BITS as i64),
            _mm256_srli_epi64::<12>(a),
        ));
        let u = _mm256_sub_pd(pd(2.0), f1);
        let r = _mm256_sqrt_pd(_mm256_mul_pd(pd(-2.0), ln4(u)));
        let (c, s) = cos_sin4(b);
        (_mm256_mul_pd(r, c), _mm256_mul_pd(r, s))
    }

    /// The portable `normals_block` for eight lanes at once. ChaCha lane `l` runs path
    /// `π(l)`, `π = [0, 1, 4, 5, 2, 3, 6, 7]`, so that `unpacklo/hi` of two word vectors give
    /// the 64-bit words of paths 0–3 and 4–7 in order.
    #[inline(always)]
    pub(super) unsafe fn normals_block(
        key: &[u32; 8],
        counter: u64,
        nonce_lo: &[u32; LANES],
        nonce_hi: &[u32; LANES],
    ) -> [[f64; LANES]; PER_BLOCK] {
        let mut z = [[0.0; LANES]; PER_BLOCK];
        let zero = _mm256_setzero_si256();
        for blk in 0..2 {
            let x = chacha8::<false>(key, counter.wrapping_add(blk as u64), nonce_lo, nonce_hi);
            for q in 0..PAIRS_PER_CHACHA {
                let (wa_lo, wa_hi, wb) = (x[3 * q], x[3 * q + 1], x[3 * q + 2]);
                let i = 2 * PAIRS_PER_CHACHA * blk + 2 * q;
                for half in 0..2 {
                    let (a, b) = if half == 0 {
                        (
                            _mm256_unpacklo_epi32(wa_lo, wa_hi),
                            _mm256_unpacklo_epi32(wb, zero),
                        )
                    } else {
                        (
                            _mm256_unpackhi_epi32(wa_lo, wa_hi),
                            _mm256_unpackhi_epi32(wb, zero),
                        )
                    };
                    let (z0, z1) = box_muller4(a, b);
                    _mm256_storeu_pd(z[i].as_mut_ptr().add(4 * half), z0);
                    _mm256_storeu_pd(z[i + 1].as_mut_ptr().add(4 * half), z1);
                }
            }
        }
        z
    }

    /// The raw words of the ChaCha8 block of eight lanes in path order, `w[i][path]`
    /// (`ROL`: AVX-512VL rotates).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn words_block<const ROL: bool>(
        key: &[u32; 8],
        counter: u64,
        nonce_lo: &[u32; LANES],
        nonce_hi: &[u32; LANES],
    ) -> [[u32; LANES]; 16] {
        let x = if ROL {
            // SAFETY: the caller detected AVX-512F/VL.
            unsafe { words_rol(key, counter, nonce_lo, nonce_hi) }
        } else {
            chacha8::<false>(key, counter, nonce_lo, nonce_hi)
        };
        // Lane `l` runs path `π(l)`; `π` is an involution, so path `p` sits in lane `π(p)`.
        let pi = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
        let mut w = [[0u32; LANES]; 16];
        for (wi, xi) in w.iter_mut().zip(x) {
            _mm256_storeu_si256(wi.as_mut_ptr().cast(), _mm256_permutevar8x32_epi32(xi, pi));
        }
        w
    }

    #[target_feature(enable = "avx2,avx512f,avx512vl")]
    unsafe fn words_rol(
        key: &[u32; 8],
        counter: u64,
        nonce_lo: &[u32; LANES],
        nonce_hi: &[u32; LANES],
    ) -> [__m256i; 16] {
        chacha8::<true>(key, counter, nonce_lo, nonce_hi)
    }

    /// The ChaCha8 block of eight lanes, lane `l` running path `π(l)` (see `normals_block`),
    /// with the given quarter round.
    #[inline(always)]
    pub(super) unsafe fn chacha8<const ROL: bool>(
        key: &[u32; 8],
        counter: u64,
        nonce_lo: &[u32; LANES],
        nonce_hi: &[u32; LANES],
    ) -> [__m256i; 16] {
        let perm = |n: &[u32; LANES]| {
            _mm256_setr_epi32(
                n[0] as i32,
                n[1] as i32,
                n[4] as i32,
                n[5] as i32,
                n[2] as i32,
                n[3] as i32,
                n[6] as i32,
                n[7] as i32,
            )
        };
        let mut init = [_mm256_setzero_si256(); 16];
        for i in 0..4 {
            init[i] = _mm256_set1_epi32(SIGMA[i] as i32);
        }
        for i in 0..8 {
            init[4 + i] = _mm256_set1_epi32(key[i] as i32);
        }
        init[12] = _mm256_set1_epi32(counter as u32 as i32);
        init[13] = _mm256_set1_epi32((counter >> 32) as u32 as i32);
        init[14] = perm(nonce_lo);
        init[15] = perm(nonce_hi);
        let mut x = init;
        for _ in 0..4 {
            qr::<ROL>(&mut x, 0, 4, 8, 12);
            qr::<ROL>(&mut x, 1, 5, 9, 13);
            qr::<ROL>(&mut x, 2, 6, 10, 14);
            qr::<ROL>(&mut x, 3, 7, 11, 15);
            qr::<ROL>(&mut x, 0, 5, 10, 15);
            qr::<ROL>(&mut x, 1, 6, 11, 12);
            qr::<ROL>(&mut x, 2, 7, 8, 13);
            qr::<ROL>(&mut x, 3, 4, 9, 14);
        }
        for i in 0..16 {
            x[i] = _mm256_add_epi32(x[i], init[i]);
        }
        x
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! ChaCha8 with AVX-512VL rotates and Box–Muller on eight doubles per register; operation
    //! for operation the portable code (test `simd_matches_portable`).
    use super::{LANES, ONE_BITS, PAIRS_PER_CHACHA, PER_BLOCK, TWO_PI_ULP};
    use std::arch::x86_64::*;

    #[inline(always)]
    pub(super) unsafe fn qr(x: &mut [__m256i; 16], a: usize, b: usize, c: usize, d: usize) {
        x[a] = _mm256_add_epi32(x[a], x[b]);
        x[d] = _mm256_rol_epi32::<16>(_mm256_xor_si256(x[d], x[a]));
        x[c] = _mm256_add_epi32(x[c], x[d]);
        x[b] = _mm256_rol_epi32::<12>(_mm256_xor_si256(x[b], x[c]));
        x[a] = _mm256_add_epi32(x[a], x[b]);
        x[d] = _mm256_rol_epi32::<8>(_mm256_xor_si256(x[d], x[a]));
        x[c] = _mm256_add_epi32(x[c], x[d]);
        x[b] = _mm256_rol_epi32::<7>(_mm256_xor_si256(x[b], x[c]));
    }

    #[inline(always)]
    unsafe fn pd(v: f64) -> __m512d {
        _mm512_set1_pd(v)
    }
    #[inline(always)]
    unsafe fn epi(v: i64) -> __m512i {
        _mm512_set1_epi64(v)
    }
    #[inline(always)]
    unsafe fn small_int_to_f64(i: __m512i) -> __m512d {
        const MAGIC: f64 = 6_755_399_441_055_744.0;
        _mm512_sub_pd(
            _mm512_castsi512_pd(_mm512_add_epi64(_mm512_castpd_si512(pd(MAGIC)), i)),
            pd(MAGIC),
        )
    }
    #[inline(always)]
    unsafe fn poly(z: __m512d, c: &[f64]) -> __m512d {
        let mut acc = pd(c[c.len() - 1]);
        for &ci in c[..c.len() - 1].iter().rev() {
            acc = _mm512_add_pd(pd(ci), _mm512_mul_pd(z, acc));
        }
        acc
    }

    #[inline(always)]
    unsafe fn ln8(x: __m512d) -> __m512d {
        use super::ln_consts::*;
        let bits = _mm512_castpd_si512(x);
        let hx_full = _mm512_srli_epi64::<32>(bits);
        let hx = _mm512_and_si512(hx_full, epi(0x000f_ffff));
        let i = _mm512_and_si512(_mm512_add_epi64(hx, epi(0x95f64)), epi(0x10_0000));
        let k = _mm512_sub_epi64(
            _mm512_add_epi64(_mm512_srli_epi64::<20>(hx_full), _mm512_srli_epi64::<20>(i)),
            epi(1023),
        );
        let hi = _mm512_or_si512(hx, _mm512_xor_si512(i, epi(0x3ff0_0000)));
        let xm = _mm512_castsi512_pd(_mm512_or_si512(
            _mm512_slli_epi64::<32>(hi),
            _mm512_and_si512(bits, epi(0xffff_ffff)),
        ));
        let f = _mm512_sub_pd(xm, pd(1.0));
        let s = _mm512_div_pd(f, _mm512_add_pd(pd(2.0), f));
        let dk = small_int_to_f64(k);
        let z = _mm512_mul_pd(s, s);
        let w = _mm512_mul_pd(z, z);
        let t1 = _mm512_mul_pd(w, poly(w, &[LG2, LG4, LG6]));
        let t2 = _mm512_mul_pd(z, poly(w, &[LG1, LG3, LG5, LG7]));
        let r = _mm512_add_pd(t2, t1);
        let dk_hi = _mm512_mul_pd(dk, pd(LN2_HI));
        let dk_lo = _mm512_mul_pd(dk, pd(LN2_LO));
        _mm512_sub_pd(
            dk_hi,
            _mm512_sub_pd(
                _mm512_sub_pd(_mm512_mul_pd(s, _mm512_sub_pd(f, r)), dk_lo),
                f,
            ),
        )
    }

    /// `(cos 2πt, sin 2πt)`, `t = l/2³²` (the portable `cos_sin_turns`).
    #[inline(always)]
    unsafe fn cos_sin8(l: __m512i) -> (__m512d, __m512d) {
        use super::trig_consts::*;
        let n = _mm512_srli_epi64::<30>(_mm512_add_epi64(l, epi(1 << 29)));
        let rem = _mm512_sub_epi64(l, _mm512_slli_epi64::<30>(n));
        let x = _mm512_mul_pd(small_int_to_f64(rem), pd(TWO_PI_ULP));
        let z = _mm512_mul_pd(x, x);
        let v = _mm512_mul_pd(z, x);
        let rs = poly(z, &[S2, S3, S4, S5, S6]);
        let sin = _mm512_add_pd(
            x,
            _mm512_mul_pd(v, _mm512_add_pd(pd(S1), _mm512_mul_pd(z, rs))),
        );
        let cos = _mm512_sqrt_pd(_mm512_sub_pd(pd(1.0), _mm512_mul_pd(sin, sin)));
        let swap = _mm512_sub_epi64(_mm512_setzero_si512(), _mm512_and_si512(n, epi(1)));
        let (cb, sb) = (_mm512_castpd_si512(cos), _mm512_castpd_si512(sin));
        let c = _mm512_or_si512(_mm512_andnot_si512(swap, cb), _mm512_and_si512(swap, sb));
        let s = _mm512_or_si512(_mm512_andnot_si512(swap, sb), _mm512_and_si512(swap, cb));
        let c = _mm512_xor_si512(
            c,
            _mm512_slli_epi64::<62>(_mm512_and_si512(_mm512_add_epi64(n, epi(1)), epi(2))),
        );
        let s = _mm512_xor_si512(s, _mm512_slli_epi64::<62>(_mm512_and_si512(n, epi(2))));
        (_mm512_castsi512_pd(c), _mm512_castsi512_pd(s))
    }

    #[inline(always)]
    unsafe fn box_muller8(a: __m512i, b: __m512i) -> (__m512d, __m512d) {
        let f1 = _mm512_castsi512_pd(_mm512_or_si512(
            epi(ONE_BITS as i64),
            _mm512_srli_epi64::<12>(a),
        ));
        let u = _mm512_sub_pd(pd(2.0), f1);
        let r = _mm512_sqrt_pd(_mm512_mul_pd(pd(-2.0), ln8(u)));
        let (c, s) = cos_sin8(b);
        (_mm512_mul_pd(r, c), _mm512_mul_pd(r, s))
    }

    /// The portable `store_lanes` by 8 × 8 transposes in registers: one (masked) 512-bit
    /// store per lane and group of eight rows instead of scalar ones; the same
    /// multiplications, so the same bits.
    #[inline(always)]
    pub(super) unsafe fn store_lanes(
        z: &[[f64; LANES]; PER_BLOCK],
        out: &mut [f64],
        m: usize,
        take: usize,
        scale: f64,
    ) {
        debug_assert!(take <= PER_BLOCK && out.len() == (LANES - 1) * m + take);
        let sv = _mm512_set1_pd(scale);
        let o = out.as_mut_ptr();
        for r0 in (0..take).step_by(8) {
            let rows = (take - r0).min(8);
            let r: [__m512d; 8] = std::array::from_fn(|t| {
                if r0 + t < PER_BLOCK {
                    _mm512_loadu_pd(z[r0 + t].as_ptr())
                } else {
                    _mm512_setzero_pd()
                }
            });
            store8x8(&r, o.add(r0), m, rows, sv);
        }
    }

    /// `o[l·m + t] = scale · r[t][l]` for `t < rows`, by an 8 × 8 transpose.
    #[inline(always)]
    unsafe fn store8x8(r: &[__m512d; 8], o: *mut f64, m: usize, rows: usize, sv: __m512d) {
        // Pairs: a[2k] = (r[2k][0], r[2k+1][0], r[2k][2], r[2k+1][2], …), a[2k+1] the odd lanes.
        let a = [
            _mm512_unpacklo_pd(r[0], r[1]),
            _mm512_unpackhi_pd(r[0], r[1]),
            _mm512_unpacklo_pd(r[2], r[3]),
            _mm512_unpackhi_pd(r[2], r[3]),
            _mm512_unpacklo_pd(r[4], r[5]),
            _mm512_unpackhi_pd(r[4], r[5]),
            _mm512_unpacklo_pd(r[6], r[7]),
            _mm512_unpackhi_pd(r[6], r[7]),
        ];
        // Quads: rows 0–3 (or 4–7) of lanes {0, 4}, {2, 6} (from the unpacklo pairs) and
        // {1, 5}, {3, 7} (from the unpackhi pairs).
        let lo2 = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
        let hi2 = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
        let b = [
            _mm512_permutex2var_pd(a[0], lo2, a[2]), // lanes 0, 4 of rows 0–3
            _mm512_permutex2var_pd(a[1], lo2, a[3]), // lanes 1, 5
            _mm512_permutex2var_pd(a[0], hi2, a[2]), // lanes 2, 6
            _mm512_permutex2var_pd(a[1], hi2, a[3]), // lanes 3, 7
            _mm512_permutex2var_pd(a[4], lo2, a[6]), // the same for rows 4–7
            _mm512_permutex2var_pd(a[5], lo2, a[7]),
            _mm512_permutex2var_pd(a[4], hi2, a[6]),
            _mm512_permutex2var_pd(a[5], hi2, a[7]),
        ];
        let lo4 = _mm512_setr_epi64(0, 1, 2, 3, 8, 9, 10, 11);
        let hi4 = _mm512_setr_epi64(4, 5, 6, 7, 12, 13, 14, 15);
        let mask: __mmask8 = ((1u16 << rows) - 1) as __mmask8;
        for q in 0..4 {
            // Lane q and lane q + 4.
            let lane_q = _mm512_permutex2var_pd(b[q], lo4, b[q + 4]);
            let lane_q4 = _mm512_permutex2var_pd(b[q], hi4, b[q + 4]);
            _mm512_mask_storeu_pd(o.add(q * m), mask, _mm512_mul_pd(sv, lane_q));
            _mm512_mask_storeu_pd(o.add((q + 4) * m), mask, _mm512_mul_pd(sv, lane_q4));
        }
    }

    #[inline(always)]
    unsafe fn qr16(x: &mut [__m512i; 16], a: usize, b: usize, c: usize, d: usize) {
        x[a] = _mm512_add_epi32(x[a], x[b]);
        x[d] = _mm512_rol_epi32::<16>(_mm512_xor_si512(x[d], x[a]));
        x[c] = _mm512_add_epi32(x[c], x[d]);
        x[b] = _mm512_rol_epi32::<12>(_mm512_xor_si512(x[b], x[c]));
        x[a] = _mm512_add_epi32(x[a], x[b]);
        x[d] = _mm512_rol_epi32::<8>(_mm512_xor_si512(x[d], x[a]));
        x[c] = _mm512_add_epi32(x[c], x[d]);
        x[b] = _mm512_rol_epi32::<7>(_mm512_xor_si512(x[b], x[c]));
    }

    /// The ChaCha8 blocks `counter` (low 256 bits of each register) and `counter + 1` (high
    /// 256 bits) of eight lanes, lane `l` of each half running path `π(l)` as in
    /// `avx2::chacha8`: two blocks per 512-bit instruction.
    #[inline(always)]
    unsafe fn chacha8_x2(
        key: &[u32; 8],
        counter: u64,
        nonce_lo: &[u32; LANES],
        nonce_hi: &[u32; LANES],
    ) -> [__m512i; 16] {
        let perm = |n: &[u32; LANES]| {
            let h = _mm256_setr_epi32(
                n[0] as i32,
                n[1] as i32,
                n[4] as i32,
                n[5] as i32,
                n[2] as i32,
                n[3] as i32,
                n[6] as i32,
                n[7] as i32,
            );
            _mm512_inserti64x4::<1>(_mm512_castsi256_si512(h), h)
        };
        let two = |lo: u32, hi: u32| {
            _mm512_inserti64x4::<1>(
                _mm512_castsi256_si512(_mm256_set1_epi32(lo as i32)),
                _mm256_set1_epi32(hi as i32),
            )
        };
        let next = counter.wrapping_add(1);
        let mut init = [_mm512_setzero_si512(); 16];
        for (v, &c) in init[..4].iter_mut().zip(&super::SIGMA) {
            *v = _mm512_set1_epi32(c as i32);
        }
        for (v, &k) in init[4..12].iter_mut().zip(key) {
            *v = _mm512_set1_epi32(k as i32);
        }
        init[12] = two(counter as u32, next as u32);
        init[13] = two((counter >> 32) as u32, (next >> 32) as u32);
        init[14] = perm(nonce_lo);
        init[15] = perm(nonce_hi);
        let mut x = init;
        for _ in 0..4 {
            qr16(&mut x, 0, 4, 8, 12);
            qr16(&mut x, 1, 5, 9, 13);
            qr16(&mut x, 2, 6, 10, 14);
            qr16(&mut x, 3, 7, 11, 15);
            qr16(&mut x, 0, 5, 10, 15);
            qr16(&mut x, 1, 6, 11, 12);
            qr16(&mut x, 2, 7, 8, 13);
            qr16(&mut x, 3, 4, 9, 14);
        }
        for i in 0..16 {
            x[i] = _mm512_add_epi32(x[i], init[i]);
        }
        x
    }

    #[inline(always)]
    pub(super) unsafe fn normals_block(
        key: &[u32; 8],
        counter: u64,
        nonce_lo: &[u32; LANES],
        nonce_hi: &[u32; LANES],
    ) -> [[f64; LANES]; PER_BLOCK] {
        let x = chacha8_x2(key, counter, nonce_lo, nonce_hi);
        let mut z = [[0.0; LANES]; PER_BLOCK];
        let zero = _mm512_setzero_si512();
        for q in 0..PAIRS_PER_CHACHA {
            let (wa_lo, wa_hi, wb) = (x[3 * q], x[3 * q + 1], x[3 * q + 2]);
            // 64-bit words of paths 0–3 (lo) and 4–7 (hi) of block `counter` in the low
            // 256 bits, of block `counter + 1` in the high 256 bits.
            let (a_lo, a_hi) = (
                _mm512_unpacklo_epi32(wa_lo, wa_hi),
                _mm512_unpackhi_epi32(wa_lo, wa_hi),
            );
            let (b_lo, b_hi) = (
                _mm512_unpacklo_epi32(wb, zero),
                _mm512_unpackhi_epi32(wb, zero),
            );
            for blk in 0..2 {
                let (a, b) = if blk == 0 {
                    (
                        _mm512_shuffle_i64x2::<0x44>(a_lo, a_hi),
                        _mm512_shuffle_i64x2::<0x44>(b_lo, b_hi),
                    )
                } else {
                    (
                        _mm512_shuffle_i64x2::<0xEE>(a_lo, a_hi),
                        _mm512_shuffle_i64x2::<0xEE>(b_lo, b_hi),
                    )
                };
                let (z0, z1) = box_muller8(a, b);
                let i = 2 * PAIRS_PER_CHACHA * blk + 2 * q;
                _mm512_storeu_pd(z[i].as_mut_ptr(), z0);
                _mm512_storeu_pd(z[i + 1].as_mut_ptr(), z1);
            }
        }
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use statrs::distribution::{ContinuousCDF, Normal};

    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    /// Word for word the `rand_chacha` stream of `seed_from_u64(seed)` + `set_stream(s)`.
    #[test]
    fn keystream_matches_rand_chacha() {
        let seed = 2026;
        let key = key_of_seed(seed);
        let streams: [u64; LANES] = [0, 1, 7, (1 << 40) | 3, u64::MAX, 12345, 1 << 33, 99];
        let lo = streams.map(|s| s as u32);
        let hi = streams.map(|s| (s >> 32) as u32);
        for (l, &s) in streams.iter().enumerate() {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            r.set_stream(s);
            for counter in 0..6u64 {
                let w = chacha8_lanes(&key, counter, &lo, &hi);
                for (i, wi) in w.iter().enumerate() {
                    assert_eq!(wi[l], r.next_u32(), "stream {s} block {counter} word {i}");
                }
            }
        }
    }

    /// The word layout of the module docs, against `rand_chacha` directly: each ChaCha block
    /// of 16 words gives five pairs from words (3q, 3q + 1, 3q + 2), word 15 unused.
    #[test]
    fn normals_follow_the_documented_word_layout() {
        let (seed, stream) = (2026, (1u64 << 40) | 7);
        let mut g = BlockNormals::new(seed, &[stream]);
        let mut v = vec![0.0; 45];
        g.fill(&mut v, 45, 1.0);
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(stream);
        let mut expect = Vec::new();
        while expect.len() < 45 {
            let w: Vec<u32> = (0..16).map(|_| r.next_u32()).collect();
            for q in 0..PAIRS_PER_CHACHA {
                let a = (w[3 * q] as u64) | ((w[3 * q + 1] as u64) << 32);
                let (z0, z1) = box_muller(a, w[3 * q + 2]);
                expect.extend([z0, z1]);
            }
        }
        for (i, (x, e)) in v.iter().zip(&expect).enumerate() {
            assert_eq!(x.to_bits(), e.to_bits(), "normal {i}");
        }
    }

    /// Each path's words are its `rand_chacha` stream word for word, whatever the block size,
    /// lane or how the other paths consume theirs (paths here take different amounts).
    #[test]
    fn words_match_rand_chacha() {
        let seed = 77;
        let streams: Vec<u64> = (0..19).map(|j| (5u64 << 40) | (3 * j)).collect();
        let mut words = BlockWords::new(seed, &streams);
        assert_eq!(words.paths(), 19);
        let mut refs: Vec<ChaCha8Rng> = streams
            .iter()
            .map(|&s| {
                let mut r = ChaCha8Rng::seed_from_u64(seed);
                r.set_stream(s);
                r
            })
            .collect();
        for round in 0..40 {
            for (j, r) in refs.iter_mut().enumerate() {
                // Path j takes 1 + (j + round) mod 7 words this round.
                for _ in 0..1 + (j + round) % 7 {
                    assert_eq!(words.path(j).next_u32(), r.next_u32(), "path {j}");
                }
            }
        }
    }

    #[test]
    fn ln_matches_std() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut worst = 0;
        for i in 0..200_000u64 {
            let x = if i < 100_000 {
                2.0 - f64::from_bits(ONE_BITS | (rng.next_u64() >> 12))
            } else {
                // Near 1, where cancellation would show.
                1.0 - (i - 100_000) as f64 * 2f64.powi(-52)
            };
            worst = worst.max(ulps(ln_unit(x), x.ln()));
        }
        // fdlibm's log is accurate to < 1 ulp; two implementations may differ by 1.
        assert!(worst <= 1, "worst {worst} ulp");
        assert_eq!(ln_unit(1.0), 0.0);
        assert!((ln_unit(2f64.powi(-52)) + 52.0 * std::f64::consts::LN_2).abs() < 1e-13);
    }

    #[test]
    fn cos_sin_match_std() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut worst = 0.0_f64;
        let mut worst_ulp = 0;
        for i in 0..400_000u64 {
            let l: u32 = if i < 16 {
                // Quadrant and octant boundaries and ends.
                [
                    0,
                    1,
                    1 << 29,
                    (1 << 30) - 1,
                    1 << 30,
                    1 << 31,
                    3 << 30,
                    u32::MAX - 1,
                ][i as usize % 8]
                    + (i / 8) as u32
            } else if i < 200_000 {
                rng.next_u32()
            } else {
                // Either side of the octant boundaries, where cos = √(1 − sin²) is least
                // accurate.
                let k = (i - 200_000) as u32 % 20_000;
                let oct = [1u32 << 29, 3 << 29, 5 << 29, 7 << 29][(i as usize) % 4];
                if i % 2 == 0 {
                    oct.wrapping_add(k)
                } else {
                    oct.wrapping_sub(k)
                }
            };
            let (c, s) = cos_sin_turns(l);
            // θ = 2πl/2³² reduced to the nearest quarter turn exactly, as the kernel does;
            // std then evaluates sin/cos at the same rounded remainder angle.
            let n = ((l as u64 + (1 << 29)) >> 30) & 3;
            let x = (l as i64 - (((l as i64) + (1 << 29)) >> 30 << 30)) as f64 * TWO_PI_ULP;
            let (cx, sx) = (x.cos(), x.sin());
            let (ce, se) = match n {
                0 => (cx, sx),
                1 => (-sx, cx),
                2 => (-cx, -sx),
                _ => (sx, -cx),
            };
            worst_ulp = worst_ulp.max(ulps(c, ce)).max(ulps(s, se));
            let theta = l as f64 * TWO_PI_ULP;
            // Against std at the rounded θ (error ≤ ulp(2π)/2 ≈ 4.4e-16 in the argument).
            worst = worst
                .max((c - theta.cos()).abs())
                .max((s - theta.sin()).abs());
            assert!((c * c + s * s - 1.0).abs() < 4e-16, "{l}");
        }
        assert!(worst < 1e-15, "worst {worst}");
        // Error budget of cos = √(1 − sin²) near |x| = π/4, the worst case: sin's own error
        // (< 1 ulp) doubled in sin², the roundings of sin² and 1 − sin², relative to
        // 1 − sin² ≈ 1/2, halved by the root, plus the root's rounding: ≈ 1.75 ulp of cos;
        // std's cos/sin are themselves within 1/2 ulp or so, so 2 ulp against std is the
        // bound (sin alone stays within 1).
        assert!(worst_ulp <= 2, "worst {worst_ulp} ulp");
    }

    /// The angle grid is symmetric: a quarter turn maps `(c, s)` to `(−s, c)` exactly, and
    /// the mirror `l → 2³² − l` to `(c, −s)` exactly except at the four odd multiples of 2²⁹
    /// (the reduction interval is half-open, so there sin and cos swap kernels: 1 ulp), so
    /// `Z₀`, `Z₁` and `±Z` have the same law on the grid; the radius reaches
    /// `√(2 · 52 ln 2) ≈ 8.49` at the smallest `U`.
    #[test]
    fn box_muller_is_exactly_symmetric_and_reaches_the_tail() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for _ in 0..100_000 {
            let l = rng.next_u32();
            let (c, s) = cos_sin_turns(l);
            let (cq, sq) = cos_sin_turns(l.wrapping_add(1 << 30));
            assert_eq!(
                (cq.to_bits(), sq.to_bits()),
                ((-s).to_bits(), c.to_bits()),
                "{l}"
            );
            let (cm, sm) = cos_sin_turns(l.wrapping_neg());
            assert_eq!(cm, c, "{l}");
            assert_eq!(sm, -s, "{l}");
        }
        let (z0, z1) = box_muller(u64::MAX, 0);
        let r_max = (2.0 * 52.0 * std::f64::consts::LN_2).sqrt();
        assert!((z0 - r_max).abs() < 1e-14 && z1 == 0.0, "{z0} {z1}");
        // U = 1 (k = 0) gives exactly zero.
        assert_eq!(box_muller(0, 12345), (0.0, 0.0));
    }

    /// The SIMD path (where the processor has it) gives the portable path's numbers bit for bit.
    #[test]
    fn simd_matches_portable() {
        let streams: Vec<u64> = (0..21).map(|j| (3u64 << 40) | j).collect();
        let mut a = BlockNormals::new(11, &streams);
        let mut b = a.clone();
        let mut c = a.clone();
        for m in [1, 7, 20, 3, 64, 19, 21, 40] {
            let mut x = vec![0.0; m * 21];
            let mut y = vec![0.0; m * 21];
            a.fill(&mut x, m, 0.3);
            b.fill_portable(&mut y, m, 0.3);
            for (p, q) in x.iter().zip(&y) {
                assert_eq!(p.to_bits(), q.to_bits(), "m = {m}");
            }
            // The AVX2 path too (the dispatch above prefers AVX-512 where it exists).
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut w = vec![0.0; m * 21];
                // SAFETY: AVX2 was detected at run time.
                unsafe { c.fill_avx2(&mut w, m, 0.3) };
                for (p, q) in w.iter().zip(&y) {
                    assert_eq!(p.to_bits(), q.to_bits(), "AVX2, m = {m}");
                }
            }
        }
    }

    /// The numbers of a path do not depend on the block it is in, its lane, or how many are
    /// drawn per call (spares carry over between calls).
    #[test]
    fn path_numbers_do_not_depend_on_layout() {
        let streams: Vec<u64> = (100..113).collect();
        let mut one = BlockNormals::new(5, &streams);
        let mut a = vec![0.0; 7 * 13];
        one.fill(&mut a, 7, 1.0);
        let mut b3 = vec![0.0; 3 * 13];
        one.fill(&mut b3, 3, 1.0);
        // Path 104 alone, drawing 10 at once.
        let mut single = BlockNormals::new(5, &[104]);
        let mut c = vec![0.0; 10];
        single.fill(&mut c, 10, 1.0);
        let j = 4;
        let mut seq: Vec<f64> = a[j * 7..j * 7 + 7].to_vec();
        seq.extend_from_slice(&b3[j * 3..j * 3 + 3]);
        assert_eq!(seq, c);
    }

    /// Moments and a Kolmogorov–Smirnov test of 10⁶ normals from 64 paths.
    #[test]
    fn normals_have_the_standard_normal_law() {
        let paths = 64;
        let per = 15_625; // 64 × 15625 = 10⁶
        let streams: Vec<u64> = (0..paths as u64).collect();
        let mut g = BlockNormals::new(9, &streams);
        let mut v = vec![0.0; per * paths];
        g.fill(&mut v, per, 1.0);
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let m2 = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let m3 = v.iter().map(|x| (x - mean).powi(3)).sum::<f64>() / n;
        let m4 = v.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n;
        // Standard errors at n = 10⁶: mean 1e-3, variance √2·1e-3, third moment √15·1e-3,
        // fourth moment √96·1e-3; each bound is 5 standard errors.
        assert!(mean.abs() < 5e-3, "mean {mean}");
        assert!((m2 - 1.0).abs() < 5.0 * 1.42e-3, "var {m2}");
        assert!(m3.abs() < 5.0 * 3.9e-3, "m3 {m3}");
        assert!((m4 - 3.0).abs() < 5.0 * 9.8e-3, "m4 {m4}");
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let phi = Normal::new(0.0, 1.0).unwrap();
        let ks = v
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let c = phi.cdf(x);
                (c - i as f64 / n).abs().max(((i + 1) as f64 / n - c).abs())
            })
            .fold(0.0, f64::max);
        // KS critical value at level 0.001: 1.95/√n.
        assert!(ks < 1.95 / n.sqrt(), "KS {ks}");
        // Tail mass beyond 3: 2(1 − Φ(3)) = 2.6998e-3, binomial sd 5.2e-5; 5 sd.
        let tail = v.iter().filter(|x| x.abs() > 3.0).count() as f64 / n;
        assert!((tail - 2.6998e-3).abs() < 5.0 * 5.2e-5, "tail {tail}");
    }

    /// Neighbouring paths are uncorrelated and a path's consecutive normals are uncorrelated.
    #[test]
    fn streams_are_uncorrelated() {
        let streams: Vec<u64> = (0..16).collect();
        let mut g = BlockNormals::new(3, &streams);
        let per = 50_000;
        let mut v = vec![0.0; per * 16];
        g.fill(&mut v, per, 1.0);
        let corr = |a: &[f64], b: &[f64]| {
            a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / a.len() as f64
        };
        // sd of a sample correlation at n = 5·10⁴ is 4.5e-3; 5 sd.
        for j in 0..15 {
            let c = corr(&v[j * per..(j + 1) * per], &v[(j + 1) * per..(j + 2) * per]);
            assert!(c.abs() < 0.0224, "paths {j},{}: {c}", j + 1);
            let col = &v[j * per..(j + 1) * per];
            let lag = corr(&col[..per - 1], &col[1..]);
            assert!(lag.abs() < 0.0224, "path {j} lag-1: {lag}");
        }
    }
}
