//! fp32 matrix products for the fast engine's linear layers: `out = x · W + bias`.
//!
//! Replaces the `gemm` crate on this path because `gemm` 0.19 builds its AVX-512 kernels only
//! with its `nightly` feature, so on CPUs with AVX-512 it ran at half their fp32 FMA width
//! (see `benches/RESULTS.md`). Three kernels, chosen at run time:
//!
//! * **AVX-512F**: a tile of 8 rows × 48 columns (24 accumulators in `zmm` registers);
//! * **AVX2 + FMA**: a tile of 6 rows × 16 columns (12 accumulators in `ymm` registers);
//! * **portable**: `f32::mul_add` loops the compiler vectorises (NEON on aarch64).
//!
//! **Fixed summation order.** Every output element is one chain of fused multiply-adds over the
//! reduction dimension, in order, starting from the bias:
//! `acc = bias[j]; for k in 0..K { acc = fma(x[i,k], w[k,j], acc) }`. A fused multiply-add
//! rounds once, whatever the vector width, so the three kernels give the same bits (tested), and
//! since the work is split across threads by output rows only, so does any thread count.
//!
//! **Layout.** `W` (`[k × n]`, the transposed weight) is packed once at load time into panels of
//! 48 columns: panel `p` holds rows `0..k` of columns `48p..48p+48`, contiguous, so the kernels
//! read it sequentially. Rows of `x` are processed in blocks of 48 (one rayon task each); inside
//! a block every panel is swept by tiles, so a panel is reused from cache by the block's tiles.

use rayon::prelude::*;

/// Columns per packed panel (3 AVX-512 vectors, 6 AVX2 vectors).
const NR: usize = 48;
/// Rows per parallel task (a multiple of both kernels' tile heights).
const MB: usize = 48;

/// A `[k × n]` matrix packed in panels of [`NR`] columns (the last panel zero-padded).
#[derive(Debug, Clone)]
pub(crate) struct PackedW {
    data: Vec<f32>,
    k: usize,
    n: usize,
}

impl PackedW {
    /// Pack a row-major `[k × n]` matrix.
    pub(crate) fn pack(w_t: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w_t.len(), k * n, "matrix of {k} × {n} expected");
        let panels = n.div_ceil(NR);
        let mut data = vec![0.0f32; panels * k * NR];
        for p in 0..panels {
            let c0 = p * NR;
            let w = NR.min(n - c0);
            for r in 0..k {
                let dst = &mut data[(p * k + r) * NR..(p * k + r) * NR + w];
                dst.copy_from_slice(&w_t[r * n + c0..r * n + c0 + w]);
            }
        }
        Self { data, k, n }
    }

    /// Pack a matrix given by its `n` rows of `k` (`[n × k]`, i.e. the transpose of
    /// [`Self::pack`]'s input: a checkpoint's `[out × in]` layout). Same result as transposing
    /// and calling [`Self::pack`].
    pub(crate) fn pack_rows(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), k * n, "matrix of {n} × {k} expected");
        let panels = n.div_ceil(NR);
        let mut data = vec![0.0f32; panels * k * NR];
        for c in 0..n {
            let (p, j) = (c / NR, c % NR);
            let src = &w[c * k..(c + 1) * k];
            let dst = &mut data[p * k * NR..(p + 1) * k * NR];
            for (r, &v) in src.iter().enumerate() {
                dst[r * NR + j] = v;
            }
        }
        Self { data, k, n }
    }

    /// The row-major `[k × n]` matrix back (for int8 quantisation).
    pub(crate) fn unpack(&self) -> Vec<f32> {
        let (k, n) = (self.k, self.n);
        let mut w_t = vec![0.0f32; k * n];
        for p in 0..n.div_ceil(NR) {
            let c0 = p * NR;
            let w = NR.min(n - c0);
            for r in 0..k {
                w_t[r * n + c0..r * n + c0 + w]
                    .copy_from_slice(&self.data[(p * k + r) * NR..(p * k + r) * NR + w]);
            }
        }
        w_t
    }

    pub(crate) fn k(&self) -> usize {
        self.k
    }

    pub(crate) fn n(&self) -> usize {
        self.n
    }

    fn panel(&self, p: usize) -> &[f32] {
        &self.data[p * self.k * NR..(p + 1) * self.k * NR]
    }
}

/// A lazily packed copy of a weight matrix, for structs that keep their weights as plain
/// vectors (the tagger heads). Cloning gives an empty cache, and caches never take part in
/// equality, so a cloned or rebuilt head never reads another's packed weights; the owner must
/// not change the weights in place after the first use.
#[derive(Default)]
pub struct PackCache(std::sync::OnceLock<PackedW>);

impl PackCache {
    pub(crate) fn get_or_pack(&self, pack: impl FnOnce() -> PackedW) -> &PackedW {
        self.0.get_or_init(pack)
    }
}

impl Clone for PackCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for PackCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for PackCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PackCache")
    }
}

/// Which fp32 kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Kernel {
    /// The widest kernel this CPU supports, worked out once per process (the taggers ask on
    /// every sentence). `SLANT_F32_KERNEL=portable|avx2` forces a narrower one (tests,
    /// benchmarks); results are the same bits.
    pub(crate) fn detect() -> Self {
        static KERNEL: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *KERNEL.get_or_init(Self::probe)
    }

    /// What [`Kernel::detect`] returns, worked out (once per process).
    fn probe() -> Self {
        let forced = std::env::var("SLANT_F32_KERNEL").unwrap_or_default();
        if forced == "portable" {
            return Kernel::Portable;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if forced != "avx2" && std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Kernel::Avx2;
            }
        }
        Kernel::Portable
    }

    /// Every kernel this CPU can run (for tests).
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Self> {
        #[allow(unused_mut)]
        let mut v = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                v.push(Kernel::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                v.push(Kernel::Avx512);
            }
        }
        v
    }
}

/// `out[m × n] = x[m × k] · W + bias`, every element one in-order FMA chain from the bias.
/// Rows are split across rayon's pool (when it has more than one thread) in blocks of 48.
pub(crate) fn matmul_bias(
    kernel: Kernel,
    x: &[f32],
    m: usize,
    w: &PackedW,
    bias: &[f32],
    out: &mut [f32],
) {
    let (k, n) = (w.k, w.n);
    assert!(x.len() >= m * k, "x too short");
    assert!(out.len() >= m * n, "out too short");
    assert_eq!(bias.len(), n, "bias length");
    if m == 0 {
        return;
    }
    let block = |(b, o): (usize, &mut [f32])| {
        let r0 = b * MB;
        let rows = o.len() / n;
        rows_block(kernel, &x[r0 * k..(r0 + rows) * k], rows, w, bias, o);
    };
    let out = &mut out[..m * n];
    if rayon::current_num_threads() > 1 && m > MB {
        out.par_chunks_mut(MB * n).enumerate().for_each(block);
    } else {
        out.chunks_mut(MB * n).enumerate().for_each(block);
    }
}

/// One block of rows against every panel.
fn rows_block(kernel: Kernel, x: &[f32], m: usize, w: &PackedW, bias: &[f32], out: &mut [f32]) {
    let (k, n) = (w.k, w.n);
    let mut bias_pad = [0.0f32; NR];
    let mut tmp = [0.0f32; 8 * NR];
    for p in 0..n.div_ceil(NR) {
        let c0 = p * NR;
        let cw = NR.min(n - c0);
        let panel = w.panel(p);
        let bp: &[f32] = if cw == NR {
            &bias[c0..c0 + NR]
        } else {
            bias_pad[..cw].copy_from_slice(&bias[c0..]);
            &bias_pad
        };
        match kernel {
            Kernel::Portable => {
                for r0 in (0..m).step_by(8) {
                    let rows = 8.min(m - r0);
                    portable_tile(&x[r0 * k..], k, rows, panel, bp, &mut tmp);
                    scatter(&tmp, NR, rows, cw, &mut out[r0 * n + c0..], n);
                }
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                for h in 0..NR / 16 {
                    let hc0 = h * 16;
                    if hc0 >= cw {
                        break;
                    }
                    let hw = 16.min(cw - hc0);
                    for r0 in (0..m).step_by(6) {
                        let rows = 6.min(m - r0);
                        // SAFETY: AVX2 and FMA were detected (Kernel::detect/available); the
                        // tile reads `rows` rows of `k` floats of x, k rows of the panel at
                        // column offset hc0..hc0+16 (<= NR) and 16 bias floats; writes `tmp`.
                        unsafe {
                            avx2::tile(&x[r0 * k..], k, rows, &panel[hc0..], &bp[hc0..], &mut tmp)
                        };
                        scatter(&tmp, 16, rows, hw, &mut out[r0 * n + c0 + hc0..], n);
                    }
                }
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                for r0 in (0..m).step_by(8) {
                    let rows = 8.min(m - r0);
                    // SAFETY: AVX-512F was detected; bounds as for the AVX2 tile with 48 columns.
                    unsafe { avx512::tile(&x[r0 * k..], k, rows, panel, bp, &mut tmp) };
                    scatter(&tmp, NR, rows, cw, &mut out[r0 * n + c0..], n);
                }
            }
        }
    }
}

/// Copy a tile (`rows` rows of stride `ts` in `tmp`) into `out` (row stride `ld`), keeping
/// `cw` columns.
#[inline]
fn scatter(tmp: &[f32], ts: usize, rows: usize, cw: usize, out: &mut [f32], ld: usize) {
    for r in 0..rows {
        out[r * ld..r * ld + cw].copy_from_slice(&tmp[r * ts..r * ts + cw]);
    }
}

/// Portable tile: up to 8 rows × NR columns into `tmp` (row stride NR).
fn portable_tile(x: &[f32], k: usize, rows: usize, panel: &[f32], bias: &[f32], tmp: &mut [f32]) {
    for r in 0..rows {
        let mut acc = [0.0f32; NR];
        acc.copy_from_slice(&bias[..NR]);
        let xr = &x[r * k..(r + 1) * k];
        for (kk, &a) in xr.iter().enumerate() {
            let wr = &panel[kk * NR..(kk + 1) * NR];
            for (c, &wv) in acc.iter_mut().zip(wr) {
                *c = a.mul_add(wv, *c);
            }
        }
        tmp[r * NR..(r + 1) * NR].copy_from_slice(&acc);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::NR;
    use std::arch::x86_64::*;

    /// Up to 8 rows × 48 columns; `tmp` receives the tile with row stride 48.
    ///
    /// # Safety
    /// The CPU must support AVX-512F. `x` holds `rows` rows of `k` floats, `panel` `k` rows of
    /// 48, `bias` 48 floats, `tmp` 8 × 48.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile(
        x: &[f32],
        k: usize,
        rows: usize,
        panel: &[f32],
        bias: &[f32],
        tmp: &mut [f32],
    ) {
        assert!(rows <= 8 && x.len() >= rows * k && panel.len() >= k * NR);
        assert!(bias.len() >= NR && tmp.len() >= 8 * NR);
        match rows {
            8 => rows_n::<8>(x, k, panel, bias, tmp),
            7 => rows_n::<7>(x, k, panel, bias, tmp),
            6 => rows_n::<6>(x, k, panel, bias, tmp),
            5 => rows_n::<5>(x, k, panel, bias, tmp),
            4 => rows_n::<4>(x, k, panel, bias, tmp),
            3 => rows_n::<3>(x, k, panel, bias, tmp),
            2 => rows_n::<2>(x, k, panel, bias, tmp),
            1 => rows_n::<1>(x, k, panel, bias, tmp),
            _ => {}
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn rows_n<const R: usize>(
        x: &[f32],
        k: usize,
        panel: &[f32],
        bias: &[f32],
        tmp: &mut [f32],
    ) {
        let xp = x.as_ptr();
        let mut bp = panel.as_ptr();
        let b0 = _mm512_loadu_ps(bias.as_ptr());
        let b1 = _mm512_loadu_ps(bias.as_ptr().add(16));
        let b2 = _mm512_loadu_ps(bias.as_ptr().add(32));
        let mut acc = [[b0, b1, b2]; R];
        for kk in 0..k {
            let w0 = _mm512_loadu_ps(bp);
            let w1 = _mm512_loadu_ps(bp.add(16));
            let w2 = _mm512_loadu_ps(bp.add(32));
            for (r, a) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*xp.add(r * k + kk));
                a[0] = _mm512_fmadd_ps(xv, w0, a[0]);
                a[1] = _mm512_fmadd_ps(xv, w1, a[1]);
                a[2] = _mm512_fmadd_ps(xv, w2, a[2]);
            }
            bp = bp.add(NR);
        }
        let tp = tmp.as_mut_ptr();
        for (r, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(tp.add(r * NR), a[0]);
            _mm512_storeu_ps(tp.add(r * NR + 16), a[1]);
            _mm512_storeu_ps(tp.add(r * NR + 32), a[2]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::NR;
    use std::arch::x86_64::*;

    /// Up to 6 rows × 16 columns of a panel (starting at the slice's first column, row stride
    /// 48): 12 accumulators, 2 weight vectors and one broadcast fit the 16 `ymm` registers
    /// without spilling. `tmp` receives the tile with row stride 16.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA. `x` holds `rows` rows of `k` floats, `panel` at least
    /// `(k - 1) × 48 + 16` floats, `bias` 16 floats, `tmp` 6 × 16.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile(
        x: &[f32],
        k: usize,
        rows: usize,
        panel: &[f32],
        bias: &[f32],
        tmp: &mut [f32],
    ) {
        assert!(rows <= 6 && x.len() >= rows * k);
        assert!(k == 0 || panel.len() >= (k - 1) * NR + 16);
        assert!(bias.len() >= 16 && tmp.len() >= 6 * 16);
        match rows {
            6 => rows_n::<6>(x, k, panel, bias, tmp),
            5 => rows_n::<5>(x, k, panel, bias, tmp),
            4 => rows_n::<4>(x, k, panel, bias, tmp),
            3 => rows_n::<3>(x, k, panel, bias, tmp),
            2 => rows_n::<2>(x, k, panel, bias, tmp),
            1 => rows_n::<1>(x, k, panel, bias, tmp),
            _ => {}
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn rows_n<const R: usize>(
        x: &[f32],
        k: usize,
        panel: &[f32],
        bias: &[f32],
        tmp: &mut [f32],
    ) {
        let xp = x.as_ptr();
        let mut bp = panel.as_ptr();
        let b0 = _mm256_loadu_ps(bias.as_ptr());
        let b1 = _mm256_loadu_ps(bias.as_ptr().add(8));
        let mut acc = [[b0, b1]; R];
        for kk in 0..k {
            let w0 = _mm256_loadu_ps(bp);
            let w1 = _mm256_loadu_ps(bp.add(8));
            for (r, a) in acc.iter_mut().enumerate() {
                let xv = _mm256_set1_ps(*xp.add(r * k + kk));
                a[0] = _mm256_fmadd_ps(xv, w0, a[0]);
                a[1] = _mm256_fmadd_ps(xv, w1, a[1]);
            }
            bp = bp.add(NR);
        }
        let tp = tmp.as_mut_ptr();
        for (r, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(tp.add(r * 16), a[0]);
            _mm256_storeu_ps(tp.add(r * 16 + 8), a[1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..len).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
    }

    #[test]
    fn pack_rows_equals_pack_of_the_transpose() {
        for &(k, n) in &[(1, 1), (5, 47), (384, 100), (7, 96)] {
            let w_t = random(k * n, (k * n) as u64);
            let mut rows = vec![0.0f32; k * n];
            for r in 0..k {
                for c in 0..n {
                    rows[c * k + r] = w_t[r * n + c];
                }
            }
            let a = PackedW::pack(&w_t, k, n);
            let b = PackedW::pack_rows(&rows, n, k);
            assert_eq!((a.k, a.n), (b.k, b.n));
            assert_eq!(a.data, b.data);
        }
    }

    /// The definition: one in-order FMA chain per output, from the bias.
    fn reference(x: &[f32], m: usize, w_t: &[f32], k: usize, n: usize, bias: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = bias[j];
                for kk in 0..k {
                    acc = x[i * k + kk].mul_add(w_t[kk * n + j], acc);
                }
                out[i * n + j] = acc;
            }
        }
        out
    }

    #[test]
    fn pack_round_trips() {
        for &(k, n) in &[(3, 5), (7, 48), (4, 100), (384, 1152)] {
            let w = random(k * n, 1);
            assert_eq!(PackedW::pack(&w, k, n).unpack(), w, "{k} × {n}");
        }
    }

    #[test]
    fn every_kernel_gives_the_reference_bits() {
        // Shapes cover full and partial tiles, row blocks and panels (n not a multiple of 48).
        for &(m, k, n) in &[
            (1, 1, 1),
            (5, 7, 13),
            (8, 16, 48),
            (61, 384, 1152),
            (50, 96, 100),
            (97, 1536, 384),
        ] {
            let x = random(m * k, 2);
            let w_t = random(k * n, 3);
            let bias = random(n, 4);
            let want = reference(&x, m, &w_t, k, n, &bias);
            let packed = PackedW::pack(&w_t, k, n);
            for kernel in Kernel::available() {
                let mut out = vec![f32::NAN; m * n];
                matmul_bias(kernel, &x, m, &packed, &bias, &mut out);
                let same = out
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{kernel:?} differs from the reference at {m}×{k}×{n}");
            }
        }
    }

    #[test]
    fn thread_count_does_not_change_bits() {
        let (m, k, n) = (203, 384, 1152);
        let x = random(m * k, 5);
        let w = PackedW::pack(&random(k * n, 6), k, n);
        let bias = random(n, 7);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = vec![0.0f32; m * n];
            pool.install(|| matmul_bias(Kernel::detect(), &x, m, &w, &bias, &mut out));
            out
        };
        let one = run(1);
        for t in [2, 3] {
            assert!(
                run(t)
                    .iter()
                    .zip(&one)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{t} threads differ from 1"
            );
        }
    }
}
