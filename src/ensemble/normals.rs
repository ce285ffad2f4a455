//! Bulk standard normals for a block of paths: one ChaCha8 stream per path, eight paths in
//! lock-step SIMD lanes, and a branch-free Box–Muller transform.
//!
//! # Streams
//!
//! Path `p`'s uniform bits are exactly the ChaCha8 keystream of
//! `ChaCha8Rng::seed_from_u64(seed)` with `set_stream(p)` (the same key, 64-bit stream
//! identifier and 64-bit block counter as `rand_chacha`; the test `keystream_matches_rand_chacha`
//! checks it word for word). All paths of a run share the key and differ in the stream, so
//! eight paths are computed at once, one per SIMD lane, with the counter in common. Each path
//! owns its stream and consumes it in a fixed order, so its numbers do not depend on the block
//! size, on its lane, or on the thread count. Two consecutive blocks of every lane are made at
//! once (with AVX-512 one 512-bit instruction advances both, block `c` in the low and `c + 1`
//! in the high 256 bits); what a call does not use waits for the next call, so the stream
//! order is unchanged (test `normals_follow_the_documented_word_layout`).
//!
//! # Transform
//!
//! Each pair of 64-bit words `(a, b)` gives two normals by Box–Muller,
//! `Z₀ = R cos Θ`, `Z₁ = R sin Θ`, `R = √(−2 ln U)`, `Θ = 2πV`, with
//! `U = 1 − k/2⁵²` (`k` the top 52 bits of `a`, so `U ∈ (0, 1]` exactly on the 2⁻⁵² grid) and
//! `V = l/2⁵²` (`l` the top 52 bits of `b`). `ln` and `sin`/`cos` are evaluated here by
//! fdlibm's polynomials (`e_log.c`, `k_sin.c`, `k_cos.c`) in straight-line code that the
//! compiler vectorises, with exact argument reduction: the angle's quadrant comes from the
//! integer `l`, so `Θ` is reduced to `[−π/4, π/4]` without rounding. The functions agree with
//! the standard library to within 2 ulp (tests). No fused multiply–add is used, so the numbers
//! are bit-identical on every x86-64 processor, whichever instruction set the dispatch picks.
//! The largest `|Z|` is `√(2 · 52 ln 2) ≈ 8.49` (`P(|Z| > 8.49) ≈ 2·10⁻¹⁷`).
//!
//! Cost on the project's machine: see BENCHMARKS.md (≈ 1 ns per normal against ≈ 5–6 ns for
//! `rand_chacha` + `rand_distr`'s ziggurat).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// ChaCha8's eight rounds as four double rounds (columns, then diagonals) of the quarter
/// round `$qr(state, a, b, c, d)`, for the scalar and the SIMD states alike.
macro_rules! double_rounds {
    ($qr:ident, $x:expr) => {
        for _ in 0..4 {
            $qr($x, 0, 4, 8, 12);
            $qr($x, 1, 5, 9, 13);
            $qr($x, 2, 6, 10, 14);
            $qr($x, 3, 7, 11, 15);
            $qr($x, 0, 5, 10, 15);
            $qr($x, 1, 6, 11, 12);
            $qr($x, 2, 7, 8, 13);
            $qr($x, 3, 4, 9, 14);
        }
    };
}

/// Paths per SIMD group.
pub const LANES: usize = 8;
/// Normals per ChaCha block and lane (16 words → 8 × 64 bits → 8 normals).
const PER_CHACHA: usize = 8;
/// Normals per lane made at once: two consecutive ChaCha blocks (on AVX-512 one 512-bit
/// instruction computes both), block `counter`'s eight normals first — the stream order.
const PER_BLOCK: usize = 2 * PER_CHACHA;

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

/// The 64-bit stream identifiers of up to [`LANES`] paths as ChaCha's two nonce words per
/// lane (low, high; lanes without a path get 0).
fn nonces(streams: &[u64]) -> ([u32; LANES], [u32; LANES]) {
    let (mut lo, mut hi) = ([0u32; LANES], [0u32; LANES]);
    for (l, &s) in streams.iter().enumerate() {
        lo[l] = s as u32;
        hi[l] = (s >> 32) as u32;
    }
    (lo, hi)
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
                let (nonce_lo, nonce_hi) = nonces(chunk);
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
        self.fill_with(out, m, scale, |k, c, lo, hi, z| unsafe {
            avx2::normals_block(k, c, lo, hi, z)
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
            |k, c, lo, hi, z| unsafe { avx512::normals_block(k, c, lo, hi, z) },
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
        F: Fn(&[u32; 8], u64, &[u32; LANES], &[u32; LANES], &mut [[f64; LANES]; PER_BLOCK]),
    {
        self.fill_with_store(out, m, scale, block, store_lanes)
    }

    /// As [`Self::fill_with`]; `block(key, counter, lo, hi, z)` writes the normals of the
    /// ChaCha blocks `counter` and `counter + 1` into `z` (`z[t][lane]`);
    /// `store(z, out, m, take, scale)` writes the first `take` normals of a whole group of
    /// [`LANES`] paths, `out[l·m + t] = scale · z[t][l]` (a narrower last group is written
    /// here). The normals are generated straight into the group's spare buffer: what this call
    /// does not take is the next call's spare (no zero-fill, no copy).
    #[inline(always)]
    fn fill_with_store<F, S>(&mut self, out: &mut [f64], m: usize, scale: f64, block: F, store: S)
    where
        F: Fn(&[u32; 8], u64, &[u32; LANES], &[u32; LANES], &mut [[f64; LANES]; PER_BLOCK]),
        S: Fn(&[[f64; LANES]], &mut [f64], usize, usize, f64),
    {
        if m == 0 {
            return;
        }
        let key = self.key;
        for g in self.groups.iter_mut() {
            let (first, width) = (g.first, g.width);
            // Rows `z[..take]` to rows `i..i + take` of the group's columns.
            let put = |z: &[[f64; LANES]], out: &mut [f64], i: usize, take: usize| {
                if width == LANES {
                    let end = (first + LANES - 1) * m + i + take;
                    store(z, &mut out[first * m + i..end], m, take, scale);
                } else {
                    store_narrow(z, out, first, width, m, i, take, scale);
                }
            };
            let mut i = 0;
            if g.spare_pos < PER_BLOCK {
                let take = (PER_BLOCK - g.spare_pos).min(m);
                put(&g.spare[g.spare_pos..], out, 0, take);
                g.spare_pos += take;
                i = take;
            }
            while i < m {
                block(&key, g.counter, &g.nonce_lo, &g.nonce_hi, &mut g.spare);
                g.counter += 2;
                let take = PER_BLOCK.min(m - i);
                put(&g.spare, out, i, take);
                g.spare_pos = take;
                i += take;
            }
        }
    }
}

/// The first `width ≤ LANES` lanes of a group whose first path is `first`:
/// `out[(first + l)·m + i + t] = scale · z[t][l]`, `t < take`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn store_narrow(
    z: &[[f64; LANES]],
    out: &mut [f64],
    first: usize,
    width: usize,
    m: usize,
    i: usize,
    take: usize,
    scale: f64,
) {
    for l in 0..width {
        let col = &mut out[(first + l) * m + i..(first + l) * m + i + take];
        for (o, zt) in col.iter_mut().zip(z) {
            *o = scale * zt[l];
        }
    }
}

/// `out[l·m + t] = scale · z[t][l]` for every lane `l` and `t < take` (`out` starts at lane
/// 0's first slot and ends after lane `LANES − 1`'s last).
#[inline(always)]
fn store_lanes(z: &[[f64; LANES]], out: &mut [f64], m: usize, take: usize, scale: f64) {
    store_narrow(z, out, 0, LANES, m, 0, take, scale);
}

/// Words per ChaCha block and lane.
const WORDS_PER_BLOCK: usize = 16;
/// Words per lane that one refill appends: two consecutive ChaCha blocks, as for normals.
const REFILL_WORDS: usize = 2 * WORDS_PER_BLOCK;

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
    /// Appends the next two ChaCha blocks of every lane to its unread words.
    #[inline(never)]
    fn refill(&mut self, key: &[u32; 8]) {
        let w = words_block2(key, self.counter, &self.nonce_lo, &self.nonce_hi);
        self.counter += 2;
        for (l, wl) in w.iter().enumerate().take(self.width) {
            let v = &mut self.words[l];
            // Drop the words read so far only when the buffer would otherwise grow (a lane
            // that has consumed fewer words keeps its unread ones, however many).
            if self.pos[l] == v.len() {
                v.clear();
                self.pos[l] = 0;
            } else if v.len() + REFILL_WORDS > v.capacity() {
                v.drain(..self.pos[l]);
                self.pos[l] = 0;
            }
            v.extend_from_slice(wl);
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
                let (nonce_lo, nonce_hi) = nonces(chunk);
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

    /// Number of groups of [`LANES`] paths (path `j` is lane `j mod LANES` of group
    /// `⌊j / LANES⌋`; the last group may be partial).
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// The unread words of every lane of group `g` (lane `l` = path `g·LANES + l`), at least
    /// `w ≤ 16` per lane, if the group has all [`LANES`] paths (else `None`). A group with a
    /// lane short of `w` words is refilled first: a refill appends every lane's next ChaCha
    /// block behind its unread words, so each path's word sequence is the same whenever it
    /// happens. Nothing is consumed ([`BlockWords::advance_group`] does).
    #[inline(always)]
    pub fn peek_group(&mut self, g: usize, w: usize) -> Option<[&[u32]; LANES]> {
        debug_assert!(w <= WORDS_PER_BLOCK);
        let group = &mut self.groups[g];
        if group.width != LANES {
            return None;
        }
        let mut short = false;
        for l in 0..LANES {
            short |= group.words[l].len() - group.pos[l] < w;
        }
        if short {
            group.refill(&self.key);
        }
        let group = &self.groups[g];
        Some(std::array::from_fn(|l| &group.words[l][group.pos[l]..]))
    }

    /// Consumes `w` words of every lane of group `g` (after [`BlockWords::peek_group`]
    /// returned them).
    #[inline(always)]
    pub fn advance_group(&mut self, g: usize, w: usize) {
        let group = &mut self.groups[g];
        for l in 0..LANES {
            debug_assert!(group.pos[l] + w <= group.words[l].len());
            group.pos[l] += w;
        }
    }

    /// The word source of path `j`.
    #[inline]
    pub fn path(&mut self, j: usize) -> PathWords<'_> {
        let lane = j % LANES;
        let group = &mut self.groups[j / LANES];
        let (pos, len) = (group.pos[lane], group.words[lane].len());
        PathWords {
            key: &self.key,
            group,
            lane,
            pos,
            len,
        }
    }
}

/// One path's uniform words (see [`BlockWords`]). The read position lives in a register while
/// the path draws (written back when it is dropped or its group refills), so a word costs one
/// compare, one load and one increment.
#[derive(Debug)]
pub struct PathWords<'a> {
    key: &'a [u32; 8],
    group: &'a mut WordGroup,
    lane: usize,
    /// Next unread word and the lane's number of buffered words (`pos ≤ len`).
    pos: usize,
    len: usize,
}

impl PathWords<'_> {
    /// The path's next uniform 32-bit word.
    #[inline(always)]
    pub fn next_u32(&mut self) -> u32 {
        if self.pos == self.len {
            self.refill();
        }
        debug_assert!(self.lane < LANES && self.pos < self.group.words[self.lane].len());
        // SAFETY: `lane < LANES` (`BlockWords::path`) and `pos < len` = the lane's buffered
        // words (refilled above when equal; the buffer only changes in `refill`, which
        // resets `len`).
        let w = unsafe {
            *self
                .group
                .words
                .get_unchecked(self.lane)
                .get_unchecked(self.pos)
        };
        self.pos += 1;
        w
    }

    /// The path's next `W` words without consuming them, if that many are buffered (else
    /// `None`; [`PathWords::next_u32`] refills).
    #[inline(always)]
    pub fn peek<const W: usize>(&self) -> Option<[u32; W]> {
        if self.len - self.pos < W {
            return None;
        }
        let words = &self.group.words[self.lane][self.pos..self.pos + W];
        Some(std::array::from_fn(|i| words[i]))
    }

    /// Consumes `w` words that [`PathWords::peek`] returned.
    #[inline(always)]
    pub fn advance(&mut self, w: usize) {
        debug_assert!(self.pos + w <= self.len);
        self.pos += w;
    }

    #[cold]
    #[inline(never)]
    fn refill(&mut self) {
        let l = self.lane;
        self.group.pos[l] = self.pos;
        self.group.refill(self.key);
        self.pos = self.group.pos[l];
        self.len = self.group.words[l].len();
    }
}

impl Drop for PathWords<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.group.pos[self.lane] = self.pos;
    }
}

/// The ChaCha8 blocks `counter` and `counter + 1` of each lane's stream, lane-major:
/// `w[lane][i]` is word `i` of block `counter` for `i < 16` and word `i − 16` of block
/// `counter + 1` after it (the SIMD kernels where the processor has them; bit for bit
/// [`chacha8_lanes`], test `words_match_rand_chacha`).
fn words_block2(
    key: &[u32; 8],
    counter: u64,
    nonce_lo: &[u32; LANES],
    nonce_hi: &[u32; LANES],
) -> [[u32; REFILL_WORDS]; LANES] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            // SAFETY: AVX-512F/VL (and so AVX2) were detected at run time.
            return unsafe { avx512::words_block2(key, counter, nonce_lo, nonce_hi) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected at run time.
            let blocks = unsafe {
                [
                    avx2::words_block(key, counter, nonce_lo, nonce_hi),
                    avx2::words_block(key, counter.wrapping_add(1), nonce_lo, nonce_hi),
                ]
            };
            return lane_major(&blocks);
        }
    }
    words_block2_portable(key, counter, nonce_lo, nonce_hi)
}

/// [`words_block2`] without SIMD.
fn words_block2_portable(
    key: &[u32; 8],
    counter: u64,
    nonce_lo: &[u32; LANES],
    nonce_hi: &[u32; LANES],
) -> [[u32; REFILL_WORDS]; LANES] {
    lane_major(&[
        chacha8_lanes(key, counter, nonce_lo, nonce_hi),
        chacha8_lanes(key, counter.wrapping_add(1), nonce_lo, nonce_hi),
    ])
}

/// Two blocks `b[k][i][lane]` as `w[lane][16k + i]`.
fn lane_major(b: &[[[u32; LANES]; WORDS_PER_BLOCK]; 2]) -> [[u32; REFILL_WORDS]; LANES] {
    std::array::from_fn(|l| std::array::from_fn(|i| b[i / WORDS_PER_BLOCK][i % WORDS_PER_BLOCK][l]))
}

/// The ChaCha8 blocks `counter` and `counter + 1` for every lane, then Box–Muller on their
/// 16 words each: `z[i][lane]`, block `counter`'s eight normals first.
#[inline(always)]
fn normals_block(
    key: &[u32; 8],
    counter: u64,
    nonce_lo: &[u32; LANES],
    nonce_hi: &[u32; LANES],
    z: &mut [[f64; LANES]; PER_BLOCK],
) {
    for half in 0..2 {
        let w = chacha8_lanes(key, counter.wrapping_add(half), nonce_lo, nonce_hi);
        let zh = &mut z[PER_CHACHA * half as usize..PER_CHACHA * (half as usize + 1)];
        for q in 0..PER_CHACHA / 2 {
            for l in 0..LANES {
                let a = (w[4 * q][l] as u64) | ((w[4 * q + 1][l] as u64) << 32);
                let b = (w[4 * q + 2][l] as u64) | ((w[4 * q + 3][l] as u64) << 32);
                let (z0, z1) = box_muller(a, b);
                zh[2 * q][l] = z0;
                zh[2 * q + 1][l] = z1;
            }
        }
    }
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
    double_rounds!(quarter_round, &mut x);
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
/// `2π · 2⁻⁵²`: turns the reduced integer angle into radians.
const TWO_PI_ULP: f64 = std::f64::consts::TAU / 4_503_599_627_370_496.0;

/// Two standard normals from two 64-bit words (Box–Muller, see the module docs).
#[inline(always)]
pub fn box_muller(a: u64, b: u64) -> (f64, f64) {
    // U = 1 − k/2⁵² ∈ (0, 1], exact.
    let u = 2.0 - f64::from_bits(ONE_BITS | (a >> 12));
    let r = (-2.0 * ln_unit(u)).sqrt();
    let (c, s) = cos_sin_turns(b >> 12);
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
    pub(crate) const C1: f64 = f64::from_bits(0x3FA5_5555_5555_554C);
    pub(crate) const C2: f64 = f64::from_bits(0xBF56_C16C_16C1_5177);
    pub(crate) const C3: f64 = f64::from_bits(0x3EFA_01A0_19CB_1590);
    pub(crate) const C4: f64 = f64::from_bits(0xBE92_7E4F_809C_52AD);
    pub(crate) const C5: f64 = f64::from_bits(0x3E21_EE9E_BDB4_B1C4);
    pub(crate) const C6: f64 = f64::from_bits(0xBDA8_FAE9_BE88_38D4);
}

/// `ln x` for a positive normal `x` (fdlibm `e_log.c`, branches turned into selects).
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
    let hfsq = 0.5 * f * f;
    let big = dk * LN2_HI - ((hfsq - (s * (hfsq + r) + dk * LN2_LO)) - f);
    let small = dk * LN2_HI - ((s * (f - r) - dk * LN2_LO) - f);
    if ((hx - 0x6147a) | (0x6b851 - hx)) > 0 {
        big
    } else {
        small
    }
}

/// `(cos 2πt, sin 2πt)` for `t = l/2⁵²`, `l < 2⁵²`: exact quadrant reduction, then fdlibm's
/// kernels on `[−π/4, π/4]`.
#[inline(always)]
pub(crate) fn cos_sin_turns(l: u64) -> (f64, f64) {
    use trig_consts::*;
    // Nearest quarter turn n ∈ 0..=4 and the remainder in [−1/8, 1/8) turns, exactly.
    let n = (l + (1 << 49)) >> 50;
    let rem = l as i64 - (n << 50) as i64;
    let x = small_int_to_f64(rem) * TWO_PI_ULP;
    let z = x * x;
    // sin (k_sin.c)
    let v = z * x;
    let rs = S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)));
    let sin = x + v * (S1 + z * rs);
    // cos (k_cos.c): qx = 0 for |x| < 0.3, |x|/4 rounded down to its high word up to 0.78125,
    // 0.28125 beyond.
    let rc = z * (C1 + z * (C2 + z * (C3 + z * (C4 + z * (C5 + z * C6)))));
    let ix = (x.to_bits() >> 32) & 0x7fff_ffff;
    let qx = if ix < 0x3FD3_3333 {
        0.0
    } else if ix > 0x3fe9_0000 {
        0.28125
    } else {
        f64::from_bits((ix - 0x0020_0000) << 32)
    };
    let hz = 0.5 * z - qx;
    let cos = (1.0 - qx) - (hz - z * rc);
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
    use super::{LANES, ONE_BITS, PER_BLOCK, PER_CHACHA, SIGMA, TWO_PI_ULP};
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
    /// One quarter round.
    #[inline(always)]
    unsafe fn qr(x: &mut [__m256i; 16], a: usize, b: usize, c: usize, d: usize) {
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
        let hfsq = _mm256_mul_pd(_mm256_mul_pd(pd(0.5), f), f);
        let dk_hi = _mm256_mul_pd(dk, pd(LN2_HI));
        let dk_lo = _mm256_mul_pd(dk, pd(LN2_LO));
        let big = _mm256_sub_pd(
            dk_hi,
            _mm256_sub_pd(
                _mm256_sub_pd(
                    hfsq,
                    _mm256_add_pd(_mm256_mul_pd(s, _mm256_add_pd(hfsq, r)), dk_lo),
                ),
                f,
            ),
        );
        let small = _mm256_sub_pd(
            dk_hi,
            _mm256_sub_pd(
                _mm256_sub_pd(_mm256_mul_pd(s, _mm256_sub_pd(f, r)), dk_lo),
                f,
            ),
        );
        let sel = _mm256_or_si256(
            _mm256_sub_epi64(hx, epi(0x6147a)),
            _mm256_sub_epi64(epi(0x6b851), hx),
        );
        let use_big = _mm256_cmpgt_epi64(sel, _mm256_setzero_si256());
        _mm256_blendv_pd(small, big, _mm256_castsi256_pd(use_big))
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

    /// `(cos 2πt, sin 2πt)`, `t = l/2⁵²` (the portable `cos_sin_turns`, operation for operation).
    #[inline(always)]
    unsafe fn cos_sin4(l: __m256i) -> (__m256d, __m256d) {
        use super::trig_consts::*;
        let n = _mm256_srli_epi64::<50>(_mm256_add_epi64(l, epi(1 << 49)));
        let rem = _mm256_sub_epi64(l, _mm256_slli_epi64::<50>(n));
        let x = _mm256_mul_pd(small_int_to_f64(rem), pd(TWO_PI_ULP));
        let z = _mm256_mul_pd(x, x);
        let v = _mm256_mul_pd(z, x);
        let rs = poly(z, &[S2, S3, S4, S5, S6]);
        let sin = _mm256_add_pd(
            x,
            _mm256_mul_pd(v, _mm256_add_pd(pd(S1), _mm256_mul_pd(z, rs))),
        );
        let rc = _mm256_mul_pd(z, poly(z, &[C1, C2, C3, C4, C5, C6]));
        let ix = _mm256_and_si256(
            _mm256_srli_epi64::<32>(_mm256_castpd_si256(x)),
            epi(0x7fff_ffff),
        );
        let mid = _mm256_castsi256_pd(_mm256_slli_epi64::<32>(_mm256_sub_epi64(
            ix,
            epi(0x0020_0000),
        )));
        let lt = _mm256_cmpgt_epi64(epi(0x3FD3_3333), ix);
        let gt = _mm256_cmpgt_epi64(ix, epi(0x3fe9_0000));
        let qx = _mm256_blendv_pd(mid, pd(0.28125), _mm256_castsi256_pd(gt));
        let qx = _mm256_andnot_pd(_mm256_castsi256_pd(lt), qx);
        let hz = _mm256_sub_pd(_mm256_mul_pd(pd(0.5), z), qx);
        let cos = _mm256_sub_pd(
            _mm256_sub_pd(pd(1.0), qx),
            _mm256_sub_pd(hz, _mm256_mul_pd(z, rc)),
        );
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

    #[inline(always)]
    unsafe fn box_muller4(a: __m256i, b: __m256i) -> (__m256d, __m256d) {
        let f1 = _mm256_castsi256_pd(_mm256_or_si256(
            epi(ONE_BITS as i64),
            _mm256_srli_epi64::<12>(a),
        ));
        let u = _mm256_sub_pd(pd(2.0), f1);
        let r = _mm256_sqrt_pd(_mm256_mul_pd(pd(-2.0), ln4(u)));
        let (c, s) = cos_sin4(_mm256_srli_epi64::<12>(b));
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
        z: &mut [[f64; LANES]; PER_BLOCK],
    ) {
        for blk in 0..2 {
            let x = chacha8(key, counter.wrapping_add(blk), nonce_lo, nonce_hi);
            let zb = &mut z[PER_CHACHA * blk as usize..PER_CHACHA * (blk as usize + 1)];
            for q in 0..PER_CHACHA / 2 {
                let (wa_lo, wa_hi, wb_lo, wb_hi) =
                    (x[4 * q], x[4 * q + 1], x[4 * q + 2], x[4 * q + 3]);
                for half in 0..2 {
                    let (a, b) = if half == 0 {
                        (
                            _mm256_unpacklo_epi32(wa_lo, wa_hi),
                            _mm256_unpacklo_epi32(wb_lo, wb_hi),
                        )
                    } else {
                        (
                            _mm256_unpackhi_epi32(wa_lo, wa_hi),
                            _mm256_unpackhi_epi32(wb_lo, wb_hi),
                        )
                    };
                    let (z0, z1) = box_muller4(a, b);
                    _mm256_storeu_pd(zb[2 * q].as_mut_ptr().add(4 * half), z0);
                    _mm256_storeu_pd(zb[2 * q + 1].as_mut_ptr().add(4 * half), z1);
                }
            }
        }
    }

    /// The raw words of the ChaCha8 block of eight lanes in path order, `w[i][path]`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn words_block(
        key: &[u32; 8],
        counter: u64,
        nonce_lo: &[u32; LANES],
        nonce_hi: &[u32; LANES],
    ) -> [[u32; LANES]; 16] {
        let x = chacha8(key, counter, nonce_lo, nonce_hi);
        // Lane `l` runs path `π(l)`; `π` is an involution, so path `p` sits in lane `π(p)`.
        let pi = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
        let mut w = [[0u32; LANES]; 16];
        for (wi, xi) in w.iter_mut().zip(x) {
            _mm256_storeu_si256(wi.as_mut_ptr().cast(), _mm256_permutevar8x32_epi32(xi, pi));
        }
        w
    }

    /// A lane vector in ChaCha lane order: lane `l` holds path `π(l)`'s value,
    /// `π = [0, 1, 4, 5, 2, 3, 6, 7]` (see `normals_block`).
    #[inline(always)]
    pub(super) unsafe fn permuted(n: &[u32; LANES]) -> __m256i {
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
    }

    /// The ChaCha8 block of eight lanes, lane `l` running path `π(l)` (see `normals_block`).
    #[inline(always)]
    pub(super) unsafe fn chacha8(
        key: &[u32; 8],
        counter: u64,
        nonce_lo: &[u32; LANES],
        nonce_hi: &[u32; LANES],
    ) -> [__m256i; 16] {
        let perm = |n: &[u32; LANES]| permuted(n);
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
        double_rounds!(qr, &mut x);
        for i in 0..16 {
            x[i] = _mm256_add_epi32(x[i], init[i]);
        }
        x
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! ChaCha8 on 512-bit registers (two blocks per instruction, AVX-512 rotates) and Box–Muller
    //! on eight doubles per register; operation for operation the portable code (tests
    //! `simd_matches_portable`, `word_kernels_match_portable`).
    use super::{LANES, ONE_BITS, PER_BLOCK, PER_CHACHA, TWO_PI_ULP};
    use std::arch::x86_64::*;

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
        let hfsq = _mm512_mul_pd(_mm512_mul_pd(pd(0.5), f), f);
        let dk_hi = _mm512_mul_pd(dk, pd(LN2_HI));
        let dk_lo = _mm512_mul_pd(dk, pd(LN2_LO));
        let big = _mm512_sub_pd(
            dk_hi,
            _mm512_sub_pd(
                _mm512_sub_pd(
                    hfsq,
                    _mm512_add_pd(_mm512_mul_pd(s, _mm512_add_pd(hfsq, r)), dk_lo),
                ),
                f,
            ),
        );
        let small = _mm512_sub_pd(
            dk_hi,
            _mm512_sub_pd(
                _mm512_sub_pd(_mm512_mul_pd(s, _mm512_sub_pd(f, r)), dk_lo),
                f,
            ),
        );
        let sel = _mm512_or_si512(
            _mm512_sub_epi64(hx, epi(0x6147a)),
            _mm512_sub_epi64(epi(0x6b851), hx),
        );
        let use_big = _mm512_cmpgt_epi64_mask(sel, _mm512_setzero_si512());
        _mm512_mask_blend_pd(use_big, small, big)
    }

    #[inline(always)]
    unsafe fn cos_sin8(l: __m512i) -> (__m512d, __m512d) {
        use super::trig_consts::*;
        let n = _mm512_srli_epi64::<50>(_mm512_add_epi64(l, epi(1 << 49)));
        let rem = _mm512_sub_epi64(l, _mm512_slli_epi64::<50>(n));
        let x = _mm512_mul_pd(small_int_to_f64(rem), pd(TWO_PI_ULP));
        let z = _mm512_mul_pd(x, x);
        let v = _mm512_mul_pd(z, x);
        let rs = poly(z, &[S2, S3, S4, S5, S6]);
        let sin = _mm512_add_pd(
            x,
            _mm512_mul_pd(v, _mm512_add_pd(pd(S1), _mm512_mul_pd(z, rs))),
        );
        let rc = _mm512_mul_pd(z, poly(z, &[C1, C2, C3, C4, C5, C6]));
        let ix = _mm512_and_si512(
            _mm512_srli_epi64::<32>(_mm512_castpd_si512(x)),
            epi(0x7fff_ffff),
        );
        let mid = _mm512_slli_epi64::<32>(_mm512_sub_epi64(ix, epi(0x0020_0000)));
        let lt = _mm512_cmpgt_epi64_mask(epi(0x3FD3_3333), ix);
        let gt = _mm512_cmpgt_epi64_mask(ix, epi(0x3fe9_0000));
        let qx = _mm512_mask_blend_epi64(gt, mid, _mm512_castpd_si512(pd(0.28125)));
        let qx = _mm512_castsi512_pd(_mm512_mask_blend_epi64(lt, qx, _mm512_setzero_si512()));
        let hz = _mm512_sub_pd(_mm512_mul_pd(pd(0.5), z), qx);
        let cos = _mm512_sub_pd(
            _mm512_sub_pd(pd(1.0), qx),
            _mm512_sub_pd(hz, _mm512_mul_pd(z, rc)),
        );
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
        let (c, s) = cos_sin8(_mm512_srli_epi64::<12>(b));
        (_mm512_mul_pd(r, c), _mm512_mul_pd(r, s))
    }

    /// The portable `store_lanes` by 8 × 8 transposes in registers: one (masked) 512-bit
    /// store per lane and group of eight rows instead of scalar ones; the same
    /// multiplications, so the same bits.
    #[inline(always)]
    pub(super) unsafe fn store_lanes(
        z: &[[f64; LANES]],
        out: &mut [f64],
        m: usize,
        take: usize,
        scale: f64,
    ) {
        debug_assert!(take <= z.len() && out.len() == (LANES - 1) * m + take);
        let sv = _mm512_set1_pd(scale);
        let o = out.as_mut_ptr();
        for r0 in (0..take).step_by(8) {
            let rows = (take - r0).min(8);
            let r: [__m512d; 8] = std::array::from_fn(|t| {
                if r0 + t < z.len() {
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
            let h = super::avx2::permuted(n);
            _mm512_inserti64x4::<1>(_mm512_castsi256_si512(h), h)
        };
        let two = |lo: u32, hi: u32| {
            _mm512_inserti64x4::<1>(
                _mm512_castsi256_si512(_mm256_set1_epi32(lo as i32)),
                _mm256_set1_epi32(hi as i32),
            )
        };
        let next = counter.wrapping_add(1);
        // The initial state, word by word: built where it is used (the constant and key words
        // are broadcasts the compiler rematerialises) rather than kept in an array, which
        // needed a 1 KiB zero-fill and copy per call.
        let (ctr_lo, ctr_hi) = (
            two(counter as u32, next as u32),
            two((counter >> 32) as u32, (next >> 32) as u32),
        );
        let (n_lo, n_hi) = (perm(nonce_lo), perm(nonce_hi));
        let init = |i: usize| match i {
            0..=3 => _mm512_set1_epi32(super::SIGMA[i] as i32),
            4..=11 => _mm512_set1_epi32(key[i - 4] as i32),
            12 => ctr_lo,
            13 => ctr_hi,
            14 => n_lo,
            _ => n_hi,
        };
        let mut x: [__m512i; 16] = std::array::from_fn(init);
        double_rounds!(qr16, &mut x);
        for (i, xi) in x.iter_mut().enumerate() {
            *xi = _mm512_add_epi32(*xi, init(i));
        }
        x
    }

    /// `super::words_block2`: both blocks from [`chacha8_x2`] (word `i` of the 8 lanes of
    /// block `counter` in the low, of block `counter + 1` in the high 256 bits of `x[i]`),
    /// then a 16 × 16 transpose of 32-bit words in registers, so that each output row is one
    /// lane's 16 words of one block.
    #[target_feature(enable = "avx2,avx512f,avx512vl")]
    pub(super) unsafe fn words_block2(
        key: &[u32; 8],
        counter: u64,
        nonce_lo: &[u32; LANES],
        nonce_hi: &[u32; LANES],
    ) -> [[u32; super::REFILL_WORDS]; LANES] {
        let r = chacha8_x2(key, counter, nonce_lo, nonce_hi);
        // Stage 1: t[2k], t[2k+1] interleave rows 2k, 2k+1 (per 128 bits: columns 0–1, 2–3).
        let t: [__m512i; 16] = std::array::from_fn(|i| {
            let (a, b) = (r[i & !1], r[i | 1]);
            if i % 2 == 0 {
                _mm512_unpacklo_epi32(a, b)
            } else {
                _mm512_unpackhi_epi32(a, b)
            }
        });
        // Stage 2: u[4g + c] holds, in 128-bit lane k, rows 4g … 4g + 3 of column 4k + c.
        let u: [__m512i; 16] = std::array::from_fn(|i| {
            let (g, c) = (i / 4, i % 4);
            let (a, b) = (t[4 * g + c / 2], t[4 * g + 2 + c / 2]);
            if c % 2 == 0 {
                _mm512_unpacklo_epi64(a, b)
            } else {
                _mm512_unpackhi_epi64(a, b)
            }
        });
        // Stages 3–4: column 4k + c = 128-bit lane k of u[c], u[4 + c], u[8 + c], u[12 + c].
        let mut col = [_mm512_setzero_si512(); 16];
        for c in 0..4 {
            let v = _mm512_shuffle_i32x4::<0x88>(u[c], u[4 + c]);
            let w = _mm512_shuffle_i32x4::<0xDD>(u[c], u[4 + c]);
            let v2 = _mm512_shuffle_i32x4::<0x88>(u[8 + c], u[12 + c]);
            let w2 = _mm512_shuffle_i32x4::<0xDD>(u[8 + c], u[12 + c]);
            col[c] = _mm512_shuffle_i32x4::<0x88>(v, v2);
            col[8 + c] = _mm512_shuffle_i32x4::<0xDD>(v, v2);
            col[4 + c] = _mm512_shuffle_i32x4::<0x88>(w, w2);
            col[12 + c] = _mm512_shuffle_i32x4::<0xDD>(w, w2);
        }
        // Column j < 8 is lane j of block `counter`, column 8 + j lane j of the next block;
        // lane `l` runs path `π(l)` (`π` an involution, see `avx2::chacha8`).
        const PI: [usize; LANES] = [0, 1, 4, 5, 2, 3, 6, 7];
        let mut out = [[0u32; super::REFILL_WORDS]; LANES];
        for (p, o) in out.iter_mut().enumerate() {
            _mm512_storeu_si512(o.as_mut_ptr().cast(), col[PI[p]]);
            _mm512_storeu_si512(o.as_mut_ptr().add(16).cast(), col[8 + PI[p]]);
        }
        out
    }

    /// The portable `normals_block` (two ChaCha blocks) with both blocks in one 512-bit
    /// register per word ([`chacha8_x2`]); lanes in the order of `avx2::normals_block`.
    #[inline(always)]
    pub(super) unsafe fn normals_block(
        key: &[u32; 8],
        counter: u64,
        nonce_lo: &[u32; LANES],
        nonce_hi: &[u32; LANES],
        z: &mut [[f64; LANES]; PER_BLOCK],
    ) {
        let x = chacha8_x2(key, counter, nonce_lo, nonce_hi);
        for q in 0..PER_CHACHA / 2 {
            let (wa_lo, wa_hi, wb_lo, wb_hi) = (x[4 * q], x[4 * q + 1], x[4 * q + 2], x[4 * q + 3]);
            // 64-bit words of paths 0–1, 2–3 (lo) and 4–5, 6–7 (hi) per 128 bits: block
            // `counter` in the low 256 bits, block `counter + 1` in the high 256 bits.
            let (a_lo, a_hi) = (
                _mm512_unpacklo_epi32(wa_lo, wa_hi),
                _mm512_unpackhi_epi32(wa_lo, wa_hi),
            );
            let (b_lo, b_hi) = (
                _mm512_unpacklo_epi32(wb_lo, wb_hi),
                _mm512_unpackhi_epi32(wb_lo, wb_hi),
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
                let i = PER_CHACHA * blk + 2 * q;
                _mm512_storeu_pd(z[i].as_mut_ptr(), z0);
                _mm512_storeu_pd(z[i + 1].as_mut_ptr(), z1);
            }
        }
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

    /// The two-block word kernels (AVX-512 transpose, AVX2, portable) give the same words.
    #[test]
    fn word_kernels_match_portable() {
        let key = key_of_seed(2026);
        let streams: [u64; LANES] = [0, 1, 7, (1 << 40) | 3, u64::MAX, 12345, 1 << 33, 99];
        let (lo, hi) = nonces(&streams);
        for counter in [0u64, 1, 5, u32::MAX as u64, u64::MAX - 1] {
            let reference = words_block2_portable(&key, counter, &lo, &hi);
            assert_eq!(words_block2(&key, counter, &lo, &hi), reference, "dispatch");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 was detected.
                let blocks = unsafe {
                    [
                        avx2::words_block(&key, counter, &lo, &hi),
                        avx2::words_block(&key, counter.wrapping_add(1), &lo, &hi),
                    ]
                };
                assert_eq!(lane_major(&blocks), reference, "avx2");
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
        for i in 0..200_000u64 {
            let l = if i < 16 {
                // Quadrant boundaries and ends.
                [
                    0,
                    1,
                    1 << 49,
                    (1 << 50) - 1,
                    1 << 50,
                    1 << 51,
                    3 << 50,
                    (1 << 52) - 1,
                ][i as usize % 8]
                    + (i / 8)
            } else {
                rng.next_u64() >> 12
            };
            let (c, s) = cos_sin_turns(l);
            let theta = l as f64 * TWO_PI_ULP;
            // std evaluates at the rounded θ (error ≤ ulp(2π)/2 ≈ 4.4e-16 in the argument).
            worst = worst
                .max((c - theta.cos()).abs())
                .max((s - theta.sin()).abs());
            assert!((c * c + s * s - 1.0).abs() < 4e-16, "{l}");
        }
        assert!(worst < 1e-15, "worst {worst}");
    }

    /// The SIMD path (where the processor has it) gives the portable path's numbers bit for bit.
    #[test]
    fn simd_matches_portable() {
        let streams: Vec<u64> = (0..21).map(|j| (3u64 << 40) | j).collect();
        let mut a = BlockNormals::new(11, &streams);
        let mut b = a.clone();
        for m in [1, 7, 20, 3, 64] {
            let mut x = vec![0.0; m * 21];
            let mut y = vec![0.0; m * 21];
            a.fill(&mut x, m, 0.3);
            b.fill_portable(&mut y, m, 0.3);
            for (p, q) in x.iter().zip(&y) {
                assert_eq!(p.to_bits(), q.to_bits(), "m = {m}");
            }
        }
    }

    /// The AVX2 kernel (what a processor without AVX-512 runs) against the portable code.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx2_matches_portable() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let streams: Vec<u64> = (0..21).map(|j| (5u64 << 40) | j).collect();
        let mut a = BlockNormals::new(12, &streams);
        let mut b = a.clone();
        for m in [1, 7, 20, 3, 64, 16, 9] {
            let mut x = vec![0.0; m * 21];
            let mut y = vec![0.0; m * 21];
            // SAFETY: AVX2 was detected above.
            unsafe { a.fill_avx2(&mut x, m, 0.3) };
            b.fill_portable(&mut y, m, 0.3);
            for (p, q) in x.iter().zip(&y) {
                assert_eq!(p.to_bits(), q.to_bits(), "m = {m}");
            }
        }
    }

    /// The stream layout of the module docs, against `rand_chacha` directly: path `p`'s
    /// normals are Box–Muller on consecutive word quadruples `(a_lo, a_hi, b_lo, b_hi)` of its
    /// ChaCha8 stream, block after block, whatever the number drawn per call (two blocks are
    /// made at once; the second one's normals wait in the spare buffer).
    #[test]
    fn normals_follow_the_documented_word_layout() {
        let seed = 2026;
        let streams: Vec<u64> = (0..11).map(|j| (1u64 << 40) | (7 * j)).collect();
        let mut g = BlockNormals::new(seed, &streams);
        let per_call = [20, 20, 3, 16, 1, 9];
        let total: usize = per_call.iter().sum();
        let mut got = vec![Vec::new(); streams.len()];
        for &m in &per_call {
            let mut v = vec![0.0; m * streams.len()];
            g.fill(&mut v, m, 1.0);
            for (j, col) in v.chunks_exact(m).enumerate() {
                got[j].extend_from_slice(col);
            }
        }
        for (j, &s) in streams.iter().enumerate() {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            r.set_stream(s);
            let mut word = || r.next_u32() as u64;
            let mut expect = Vec::new();
            while expect.len() < total {
                let a = word() | (word() << 32);
                let b = word() | (word() << 32);
                let (z0, z1) = box_muller(a, b);
                expect.extend([z0, z1]);
            }
            for (t, (x, e)) in got[j].iter().zip(&expect).enumerate() {
                assert_eq!(x.to_bits(), e.to_bits(), "path {j} normal {t}");
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
