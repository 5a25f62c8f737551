//! int8 linear layers for the fast engine (`--precision int8`).
//!
//! * **Weights**: int8, symmetric, one scale per output channel (`scale = max|w| / 127`),
//!   quantised once at load time from the fp32 checkpoint.
//! * **Activations**: quantised per row at run time (dynamic, symmetric, `max|x| / 127`, round
//!   half to even), so no calibration data is needed. With the VNNI kernel each task of
//!   8 rows quantises its rows (AVX-512, straight to the kernel's unsigned bytes) right
//!   before multiplying them; the bits are those of the scalar quantiser (tested).
//! * **Products**: exact `i32` sums of `i8 × i8` products, then
//!   `y = acc · scale_row · scale_channel + bias` in f32.
//!
//! Kernels, chosen at run time: AVX-512 VNNI (`vpdpbusd`, 64 products per instruction; the
//! signed activations are offset by +128 to unsigned and the offset is taken out again with the
//! weights' column sums), AVX2 (activations and weights widened to i16, `vpmaddwd`), and a
//! portable scalar loop. Integer sums are exact whatever their order (|acc| ≤ 127·127·k stays
//! far inside i32 for any BERT width), so every kernel gives **bit-identical** results, and so
//! does any split of the work across threads (tested).

use rayon::prelude::*;

/// Largest quantised magnitude (symmetric range, -128 is never produced).
const QMAX: f32 = 127.0;

/// An int8 linear layer `y = x·Wᵀ + b`, `W` stored `[out × in]` (one output channel per row).
#[derive(Debug)]
pub(crate) struct QLinear {
    /// `n_out × k_pad` int8 weights, each row zero-padded to a multiple of 64 (the scalar
    /// kernel's layout and the source of the packed ones).
    w: Vec<i8>,
    /// The same weights packed for the SIMD kernel in use (empty for the scalar kernel).
    packed: Vec<i8>,
    kernel: Kernel,
    /// Per output channel: f32 scale.
    scale: Vec<f32>,
    /// Per output channel: sum of the int8 weights (for the unsigned-offset VNNI kernel).
    wsum: Vec<i32>,
    bias: Vec<f32>,
    n_in: usize,
    n_out: usize,
    k_pad: usize,
}

/// Round `v` half to even, for |v| < 2^22 (all the quantiser needs): adding and removing
/// 1.5·2^23 leaves no fraction bits, and the FPU rounds to nearest even. Same result as
/// `f32::round_ties_even` there (tested), but vectorises (that one is a libm call without
/// SSE4.1).
#[inline(always)]
fn round_even(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (v + MAGIC) - MAGIC
}

/// Output channels per packed panel of the VNNI kernel (3 × 16 i32 lanes).
const VNNI_COLS: usize = 48;
/// Output channels per packed panel of the AVX2 kernel (2 × 8 i32 lanes).
const AVX2_COLS: usize = 16;

impl QLinear {
    /// Quantise an fp32 layer given as `w_t` (`[in × out]` row-major, the fast engine's layout),
    /// for the fastest kernel of this CPU.
    pub(crate) fn from_transposed(w_t: &[f32], bias: &[f32], n_in: usize, n_out: usize) -> Self {
        Self::with_kernel(w_t, bias, n_in, n_out, Kernel::detect())
    }

    /// As [`Self::from_transposed`] for a given kernel.
    pub(crate) fn with_kernel(
        w_t: &[f32],
        bias: &[f32],
        n_in: usize,
        n_out: usize,
        kernel: Kernel,
    ) -> Self {
        assert_eq!(w_t.len(), n_in * n_out);
        let mut rows = vec![0.0f32; n_in * n_out];
        for i in 0..n_in {
            for o in 0..n_out {
                rows[o * n_in + i] = w_t[i * n_out + o];
            }
        }
        Self::from_rows_with_kernel(&rows, bias, n_in, n_out, kernel)
    }

    /// Quantise an fp32 layer given as `w` (`[out × in]` row-major, a checkpoint's layout: one
    /// output channel per row), for the fastest kernel of this CPU. Same result as
    /// [`Self::from_transposed`] on the transpose.
    pub(crate) fn from_rows(w: &[f32], bias: &[f32], n_in: usize, n_out: usize) -> Self {
        Self::from_rows_with_kernel(w, bias, n_in, n_out, Kernel::detect())
    }

    /// As [`Self::from_rows`] for a given kernel.
    pub(crate) fn from_rows_with_kernel(
        w_rows: &[f32],
        bias: &[f32],
        n_in: usize,
        n_out: usize,
        kernel: Kernel,
    ) -> Self {
        assert_eq!(w_rows.len(), n_in * n_out);
        assert_eq!(bias.len(), n_out);
        let k_pad = n_in.div_ceil(64) * 64;
        let mut w = vec![0i8; n_out * k_pad];
        let mut scale = vec![0.0f32; n_out];
        let mut wsum = vec![0i32; n_out];
        for o in 0..n_out {
            let src = &w_rows[o * n_in..(o + 1) * n_in];
            let amax = src.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
            let s = amax / QMAX;
            scale[o] = s;
            if s > 0.0 {
                let inv = QMAX / amax;
                let dst = &mut w[o * k_pad..o * k_pad + n_in];
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = round_even(v * inv).clamp(-QMAX, QMAX) as i8;
                }
                wsum[o] = dst.iter().map(|&q| q as i32).sum();
            }
        }
        // Panels of `cols` channels; within a panel, for each group of `g` inputs, the `g`
        // weights of channel 0, then of channel 1, ... (channels past n_out are zero).
        let pack = |cols: usize, g: usize| -> Vec<i8> {
            let panels = n_out.div_ceil(cols);
            let mut p = vec![0i8; panels * cols * k_pad];
            for pi in 0..panels {
                for s in 0..k_pad / g {
                    for j in 0..cols {
                        let c = pi * cols + j;
                        if c >= n_out {
                            continue;
                        }
                        for t in 0..g {
                            p[((pi * (k_pad / g) + s) * cols + j) * g + t] =
                                w[c * k_pad + s * g + t];
                        }
                    }
                }
            }
            p
        };
        let packed = match kernel {
            Kernel::Scalar => Vec::new(),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => pack(AVX2_COLS, 2),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => pack(VNNI_COLS, 4),
        };
        Self {
            w,
            packed,
            kernel,
            scale,
            wsum,
            bias: bias.to_vec(),
            n_in,
            n_out,
            k_pad,
        }
    }

    /// `out[m × n_out] = x[m × n_in] · Wᵀ + b` with activations quantised per row.
    pub(crate) fn forward(&self, x: &[f32], m: usize, out: &mut [f32]) {
        let (k, n, kp) = (self.n_in, self.n_out, self.k_pad);
        assert!(x.len() >= m * k && out.len() >= m * n);
        if m == 0 {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if self.kernel == Kernel::Avx512Vnni {
            // Each task quantises its own rows (straight to the kernel's unsigned bytes) and
            // multiplies them while they are in L1.
            out[..m * n]
                .par_chunks_mut(ROWS * n)
                .zip(x[..m * k].par_chunks(ROWS * k))
                // SAFETY: only chosen when the CPU has AVX-512 F, BW and VNNI.
                .for_each(|(o, xr)| unsafe { vnni::rows_f32(self, xr, o) });
            return;
        }
        let mut xq = vec![0i8; m * kp];
        let mut sx = vec![0.0f32; m];
        xq.par_chunks_mut(kp)
            .zip(sx.par_iter_mut())
            .zip(x[..m * k].par_chunks(k))
            .for_each(|((q, s), row)| *s = quantize_row(row, &mut q[..k]));
        out[..m * n]
            .par_chunks_mut(ROWS * n)
            .zip(xq.par_chunks(ROWS * kp))
            .zip(sx.par_chunks(ROWS))
            .for_each(|((o, q), s)| self.rows(q, s, o));
    }

    /// Up to `ROWS` rows: `q` their int8 activations (`k_pad` each), `s` their scales, `o` their
    /// output rows.
    fn rows(&self, q: &[i8], s: &[f32], o: &mut [f32]) {
        let r = s.len();
        let n = self.n_out;
        let mut acc = vec![0i32; ROWS * n];
        self.dots(q, r, &mut acc);
        for ((orow, arow), &sx) in o.chunks_exact_mut(n).zip(acc.chunks_exact(n)).zip(s) {
            for (((y, &a), &sw), &b) in orow.iter_mut().zip(arow).zip(&self.scale).zip(&self.bias) {
                *y = a as f32 * (sx * sw) + b;
            }
        }
    }

    /// `acc[i × n + c] = Σ_k q[i, k] · w[c, k]` for the `r ≤ ROWS` rows of `q`.
    fn dots(&self, q: &[i8], r: usize, acc: &mut [i32]) {
        match self.kernel {
            Kernel::Scalar => scalar_dots(self, q, r, acc),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: this kernel is only chosen when the CPU has AVX2 (`Kernel::detect` /
            // `Kernel::available`).
            Kernel::Avx2 => unsafe { avx2::dots(self, q, r, acc) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: only chosen when the CPU has AVX-512 F, BW and VNNI.
            Kernel::Avx512Vnni => unsafe { vnni::dots(self, q, r, acc) },
        }
    }
}

/// Quantise one row to int8 (symmetric); returns its scale (0 for an all-zero row).
fn quantize_row(row: &[f32], q: &mut [i8]) -> f32 {
    let amax = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if amax == 0.0 || !amax.is_finite() {
        q.fill(0);
        return if amax.is_finite() { 0.0 } else { f32::NAN };
    }
    let inv = QMAX / amax;
    for (d, &v) in q.iter_mut().zip(row) {
        *d = round_even(v * inv).clamp(-QMAX, QMAX) as i8;
    }
    amax / QMAX
}

/// Rows of activations per work item (and per kernel tile).
const ROWS: usize = 8;

/// Which integer dot-product kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
}

impl Kernel {
    /// The fastest kernel this CPU supports (`SLANT_INT8_KERNEL=scalar|avx2` forces a slower one,
    /// for tests and benchmarks; results are the same).
    pub(crate) fn detect() -> Self {
        let forced = std::env::var("SLANT_INT8_KERNEL").unwrap_or_default();
        if forced == "scalar" {
            return Kernel::Scalar;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if forced != "avx2"
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
            {
                return Kernel::Avx512Vnni;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Kernel::Avx2;
            }
        }
        Kernel::Scalar
    }

    /// Every kernel this CPU can run (for tests).
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Self> {
        let mut v = vec![Kernel::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                v.push(Kernel::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
            {
                v.push(Kernel::Avx512Vnni);
            }
        }
        v
    }
}

/// Reference kernel: plain i32 dot products.
fn scalar_dots(l: &QLinear, q: &[i8], r: usize, acc: &mut [i32]) {
    let (n, kp) = (l.n_out, l.k_pad);
    for i in 0..r {
        let xr = &q[i * kp..(i + 1) * kp];
        for c in 0..n {
            let wr = &l.w[c * kp..(c + 1) * kp];
            acc[i * n + c] = xr.iter().zip(wr).map(|(&a, &b)| a as i32 * b as i32).sum();
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{QLinear, AVX2_COLS, ROWS};
    use std::arch::x86_64::*;

    /// AVX2: output channels in the lanes. Per pair of inputs, the pair of activations of a row
    /// (i8 widened to i16) is broadcast and multiplied with 16 channels' weight pairs (i8
    /// widened to i16) by `vpmaddwd`, which adds each pair of products into an i32 lane.
    /// Tiles of 4 rows × 16 channels held in 8 registers.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn dots(l: &QLinear, q: &[i8], r: usize, acc: &mut [i32]) {
        let (n, kp) = (l.n_out, l.k_pad);
        assert!(q.len() >= r * kp && acc.len() >= ROWS * n);
        let panels = n.div_ceil(AVX2_COLS);
        assert!(l.packed.len() >= panels * AVX2_COLS * kp);
        // Activations widened to i16, missing rows zero.
        let mut xw = vec![0i16; ROWS * kp];
        for (d, &v) in xw.iter_mut().zip(&q[..r * kp]) {
            *d = v as i16;
        }
        let steps = kp / 2;
        let mut tile = [0i32; 4 * AVX2_COLS];
        for half in 0..r.div_ceil(4) {
            let xp = xw.as_ptr().add(half * 4 * kp);
            for p in 0..panels {
                let wp = l.packed.as_ptr().add(p * steps * AVX2_COLS * 2);
                let mut a = [_mm256_setzero_si256(); 8];
                for s in 0..steps {
                    let w = _mm256_loadu_si256(wp.add(s * AVX2_COLS * 2) as *const __m256i);
                    let w0 = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(w));
                    let w1 = _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(w));
                    for i in 0..4 {
                        let pair = (xp.add(i * kp + 2 * s) as *const i32).read_unaligned();
                        let x = _mm256_set1_epi32(pair);
                        a[2 * i] = _mm256_add_epi32(a[2 * i], _mm256_madd_epi16(x, w0));
                        a[2 * i + 1] = _mm256_add_epi32(a[2 * i + 1], _mm256_madd_epi16(x, w1));
                    }
                }
                for (j, v) in a.iter().enumerate() {
                    _mm256_storeu_si256(tile.as_mut_ptr().add(j * 8) as *mut __m256i, *v);
                }
                let cols = AVX2_COLS.min(n - p * AVX2_COLS);
                for i in 0..4.min(r - half * 4) {
                    let row = half * 4 + i;
                    acc[row * n + p * AVX2_COLS..row * n + p * AVX2_COLS + cols]
                        .copy_from_slice(&tile[i * AVX2_COLS..i * AVX2_COLS + cols]);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{QLinear, ROWS, VNNI_COLS};
    use std::arch::x86_64::*;

    /// Unsigned copy of `r` rows of activations: `q + 128` as u8 (XOR of the sign bit); the
    /// rows past `r` (up to [`ROWS`]) are 0.
    fn unsigned(q: &[i8], r: usize, kp: usize) -> Vec<u8> {
        let mut xu = vec![0u8; ROWS * kp];
        for (d, &v) in xu.iter_mut().zip(&q[..r * kp]) {
            *d = (v as u8) ^ 0x80;
        }
        xu
    }

    /// [`super::quantize_row`] fused with the +128 offset: quantises `row` into `xu` (`q + 128`
    /// as u8, `xu.len() == row.len()`) and returns the scale. Bit-identical to the scalar
    /// quantiser (max is exact in any order; `v · inv` is the same product; `vcvtps2dq` rounds
    /// half to even like [`super::round_even`]); rows with NaN or infinity take the scalar path.
    ///
    /// # Safety
    /// Mask of the first `min(left, 16)` lanes of a 16-lane vector.
    fn lanes16(left: usize) -> u16 {
        if left >= 16 {
            0xffff
        } else {
            (1u16 << left) - 1
        }
    }

    /// The CPU must support AVX-512 F and BW.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn quantize_row_u8(row: &[f32], xu: &mut [u8]) -> f32 {
        let k = row.len();
        assert_eq!(xu.len(), k);
        let abs_mask = _mm512_set1_epi32(0x7fff_ffff);
        let mut amax = _mm512_setzero_ps();
        let mut bad: u16 = 0;
        let mut i = 0;
        while i < k {
            let mask = lanes16(k - i);
            let v = _mm512_maskz_loadu_ps(mask, row.as_ptr().add(i));
            let a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), abs_mask));
            // Not finite: |v| >= inf or NaN (unordered).
            bad |= _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(a, _mm512_set1_ps(f32::INFINITY));
            amax = _mm512_max_ps(amax, a);
            i += 16;
        }
        let amax = _mm512_reduce_max_ps(amax);
        if bad != 0 || amax == 0.0 {
            let mut q = vec![0i8; k];
            let s = super::quantize_row(row, &mut q);
            for (d, &v) in xu.iter_mut().zip(&q) {
                *d = (v as u8) ^ 0x80;
            }
            return s;
        }
        let inv = super::QMAX / amax;
        let invv = _mm512_set1_ps(inv);
        let lo = _mm512_set1_epi32(-127);
        let hi = _mm512_set1_epi32(127);
        let off = _mm512_set1_epi32(128);
        let mut i = 0;
        while i < k {
            let mask = lanes16(k - i);
            let v = _mm512_maskz_loadu_ps(mask, row.as_ptr().add(i));
            let q = _mm512_cvtps_epi32(_mm512_mul_ps(v, invv));
            let q = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, lo), hi), off);
            _mm512_mask_cvtepi32_storeu_epi8(xu.as_mut_ptr().add(i) as *mut _, mask, q);
            i += 16;
        }
        amax / super::QMAX
    }

    /// Quantise up to [`ROWS`] rows of `x` (`n_in` floats each) and multiply them, fused:
    /// the same bits as quantising with [`super::quantize_row`] and calling [`rows_u8`].
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and VNNI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn rows_f32(l: &QLinear, x: &[f32], o: &mut [f32]) {
        let (k, kp) = (l.n_in, l.k_pad);
        let r = x.len() / k;
        assert!(r <= ROWS && r * k == x.len());
        let mut xu = vec![0u8; ROWS * kp];
        let mut sx = [0.0f32; ROWS];
        for i in 0..r {
            sx[i] = quantize_row_u8(&x[i * k..(i + 1) * k], &mut xu[i * kp..i * kp + k]);
        }
        rows_u8(l, &xu, &sx[..r], o);
    }

    /// The offset i32 sums of [`ROWS`] rows of `xu` (row stride `k_pad`) against packed panel
    /// `p`: 24 accumulators, one `vpdpbusd` per 4 inputs per 16 channels.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and VNNI; `xu` holds `ROWS × k_pad` bytes and panel
    /// `p` exists in `l.packed`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn panel_sums(l: &QLinear, xu: *const u8, p: usize) -> [[__m512i; 3]; ROWS] {
        let kp = l.k_pad;
        let steps = kp / 4;
        let wp = l.packed.as_ptr().add(p * steps * VNNI_COLS * 4);
        let mut a = [[_mm512_setzero_si512(); 3]; ROWS];
        for s in 0..steps {
            let wq = wp.add(s * VNNI_COLS * 4);
            let b0 = _mm512_loadu_si512(wq as *const _);
            let b1 = _mm512_loadu_si512(wq.add(64) as *const _);
            let b2 = _mm512_loadu_si512(wq.add(128) as *const _);
            for (i, ai) in a.iter_mut().enumerate() {
                let quad = (xu.add(i * kp + 4 * s) as *const i32).read_unaligned();
                let x = _mm512_set1_epi32(quad);
                ai[0] = _mm512_dpbusd_epi32(ai[0], x, b0);
                ai[1] = _mm512_dpbusd_epi32(ai[1], x, b1);
                ai[2] = _mm512_dpbusd_epi32(ai[2], x, b2);
            }
        }
        a
    }

    /// AVX-512 VNNI: output channels in the lanes. Activations are offset to unsigned
    /// (`q + 128`); per group of 4 inputs, a row's 4 activations are broadcast and `vpdpbusd`
    /// adds the 4 `u8 × i8` products with 16 channels' weights into each i32 lane (exact, no
    /// saturation); `128 · Σ w` is subtracted at the end. Tiles of 8 rows × 48 channels held in
    /// 24 registers.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn dots(l: &QLinear, q: &[i8], r: usize, acc: &mut [i32]) {
        let (n, kp) = (l.n_out, l.k_pad);
        assert!(q.len() >= r * kp && acc.len() >= ROWS * n);
        let panels = n.div_ceil(VNNI_COLS);
        assert!(l.packed.len() >= panels * VNNI_COLS * kp);
        let xu = unsigned(q, r, kp);
        let mut tile = [0i32; ROWS * VNNI_COLS];
        for p in 0..panels {
            let a = panel_sums(l, xu.as_ptr(), p);
            for (i, ai) in a.iter().enumerate() {
                for (v, av) in ai.iter().enumerate() {
                    _mm512_storeu_si512(
                        tile.as_mut_ptr().add(i * VNNI_COLS + v * 16) as *mut _,
                        *av,
                    );
                }
            }
            let cols = VNNI_COLS.min(n - p * VNNI_COLS);
            for i in 0..r {
                for j in 0..cols {
                    let c = p * VNNI_COLS + j;
                    acc[i * n + c] = tile[i * VNNI_COLS + j] - 128 * l.wsum[c];
                }
            }
        }
    }

    /// As [`dots`] (on activations already offset to unsigned: `xu`, [`ROWS`] rows of
    /// `k_pad`) followed by [`QLinear::rows`]'s epilogue, fused: each tile's i32 sums are
    /// corrected for the +128 offset, converted and scaled in registers
    /// (`acc as f32 · (scale_row · scale_channel) + bias`, the same three roundings as the
    /// scalar epilogue, no FMA), and stored straight from the registers into the output rows
    /// (masked stores for a last, partial panel).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn rows_u8(l: &QLinear, xu: &[u8], sx: &[f32], o: &mut [f32]) {
        let (n, kp) = (l.n_out, l.k_pad);
        let r = sx.len();
        assert!(r <= ROWS && xu.len() >= ROWS * kp && o.len() >= r * n);
        let panels = n.div_ceil(VNNI_COLS);
        assert!(l.packed.len() >= panels * VNNI_COLS * kp);
        for p in 0..panels {
            let c0 = p * VNNI_COLS;
            let cols = VNNI_COLS.min(n - c0);
            // Per 16-lane vector of the panel: which lanes are real channels (masked-off lanes
            // are neither read nor written, so the pointers may run past the end).
            let masks: [u16; 3] = std::array::from_fn(|v| {
                let lanes = cols.saturating_sub(v * 16).min(16);
                ((1u32 << lanes) - 1) as u16
            });
            let corr: [__m512i; 3] = std::array::from_fn(|v| {
                let w =
                    _mm512_maskz_loadu_epi32(masks[v], l.wsum.as_ptr().wrapping_add(c0 + v * 16));
                _mm512_slli_epi32::<7>(w)
            });
            let scale: [__m512; 3] = std::array::from_fn(|v| {
                _mm512_maskz_loadu_ps(masks[v], l.scale.as_ptr().wrapping_add(c0 + v * 16))
            });
            let bias: [__m512; 3] = std::array::from_fn(|v| {
                _mm512_maskz_loadu_ps(masks[v], l.bias.as_ptr().wrapping_add(c0 + v * 16))
            });
            let a = panel_sums(l, xu.as_ptr(), p);
            for (i, ai) in a.iter().enumerate().take(r) {
                let sv = _mm512_set1_ps(sx[i]);
                let orow = o.as_mut_ptr().add(i * n + c0);
                for (v, av) in ai.iter().enumerate() {
                    if masks[v] == 0 {
                        continue;
                    }
                    let exact = _mm512_sub_epi32(*av, corr[v]);
                    let f = _mm512_cvtepi32_ps(exact);
                    let sw = _mm512_mul_ps(sv, scale[v]);
                    let y = _mm512_add_ps(_mm512_mul_ps(f, sw), bias[v]);
                    _mm512_mask_storeu_ps(orow.wrapping_add(v * 16), masks[v], y);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_layer(k: usize, n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let w_t: Vec<f32> = (0..k * n).map(|_| rng.gen_range(-0.2f32..0.2)).collect();
        let b: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        (w_t, b)
    }

    #[test]
    fn every_kernel_gives_the_scalar_integer_sums() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        // Odd sizes: rows not a multiple of 4, channels not of 2/4, k not of 16/64.
        for &(m, k, n) in &[
            (1, 5, 1),
            (7, 40, 9),
            (9, 384, 13),
            (4, 130, 6),
            (13, 1536, 3),
        ] {
            let (w_t, b) = random_layer(k, n, m as u64);
            let l = QLinear::from_transposed(&w_t, &b, k, n);
            // Extreme int8 values included (±127 everywhere is the worst case for overflow).
            let q: Vec<i8> = (0..m * l.k_pad)
                .map(|i| {
                    if i % l.k_pad >= k {
                        0
                    } else if i % 11 == 0 {
                        127
                    } else {
                        rng.gen_range(-127i8..=127)
                    }
                })
                .collect();
            for start in (0..m).step_by(ROWS) {
                let r = ROWS.min(m - start);
                let qs = &q[start * l.k_pad..(start + r) * l.k_pad];
                let mut want = vec![0i32; r * n];
                scalar_dots(&l, qs, r, &mut want);
                // The reference itself, checked against a naive i64 sum.
                for i in 0..r {
                    for c in 0..n {
                        let s: i64 = (0..k)
                            .map(|j| qs[i * l.k_pad + j] as i64 * l.w[c * l.k_pad + j] as i64)
                            .sum();
                        assert_eq!(want[i * n + c] as i64, s);
                    }
                }
                for kern in Kernel::available() {
                    let lk = QLinear::with_kernel(&w_t, &b, k, n, kern);
                    let mut got = vec![0i32; ROWS * n];
                    lk.dots(qs, r, &mut got);
                    got.truncate(r * n);
                    assert_eq!(got, want, "{kern:?} m={m} k={k} n={n}");
                }
            }
        }
    }

    #[test]
    fn every_kernel_gives_the_same_output_bits() {
        // The VNNI kernel fuses the epilogue (offset correction, scales, bias) in registers;
        // the others run it as a separate pass. Same roundings, so the same bits.
        for &(m, k, n) in &[(1, 5, 1), (7, 40, 9), (19, 384, 100), (9, 1536, 48)] {
            let (w_t, b) = random_layer(k, n, 3 + m as u64);
            let (x, _) = random_layer(m, k, 11 + n as u64);
            let mut want: Option<Vec<f32>> = None;
            for kern in Kernel::available() {
                let l = QLinear::with_kernel(&w_t, &b, k, n, kern);
                let mut out = vec![f32::NAN; m * n];
                l.forward(&x, m, &mut out);
                let bits: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
                match &want {
                    None => want = Some(out),
                    Some(w) => assert_eq!(
                        bits,
                        w.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        "{kern:?} m={m} k={k} n={n}"
                    ),
                }
            }
        }
    }

    #[test]
    fn int8_linear_is_close_to_fp32_and_thread_independent() {
        let (m, k, n) = (23, 384, 50);
        let (w_t, b) = random_layer(k, n, 3);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let x: Vec<f32> = (0..m * k).map(|_| rng.gen_range(-2.0f32..2.0)).collect();
        let l = QLinear::from_transposed(&w_t, &b, k, n);
        let mut got = vec![0.0f32; m * n];
        l.forward(&x, m, &mut got);
        let mut worst = 0.0f32;
        for i in 0..m {
            for c in 0..n {
                let want: f32 = b[c] + (0..k).map(|j| x[i * k + j] * w_t[j * n + c]).sum::<f32>();
                worst = worst.max((got[i * n + c] - want).abs());
            }
        }
        // Sums of 384 products of ~U(-2,2)·U(-0.2,0.2): magnitude ~2.3; int8 error ~1%.
        assert!(worst < 0.1, "max abs error {worst}");
        assert!(worst > 0.0, "int8 should not be exact");
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut again = vec![0.0f32; m * n];
            pool.install(|| l.forward(&x, m, &mut again));
            assert_eq!(
                again.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn fused_unsigned_quantiser_equals_the_scalar_one() {
        #[cfg(target_arch = "x86_64")]
        {
            if !Kernel::available().contains(&Kernel::Avx512Vnni) {
                eprintln!("skipping: no AVX-512 VNNI");
                return;
            }
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
            let mut rows: Vec<Vec<f32>> = Vec::new();
            for &k in &[1usize, 5, 16, 17, 40, 384, 1536] {
                rows.push((0..k).map(|_| rng.gen_range(-3.0f32..3.0)).collect());
                // Ties: with amax 127 every integer and half-integer is exact after scaling.
                rows.push((0..k).map(|i| (i as f32 * 0.5) % 127.0 - 63.5).collect());
                let mut t: Vec<f32> = (0..k).map(|i| ((i % 255) as f32 - 127.0) * 0.5).collect();
                t[0] = 127.0;
                rows.push(t);
                rows.push(vec![0.0; k]);
                let mut nan: Vec<f32> = (0..k).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
                nan[k / 2] = f32::NAN;
                rows.push(nan);
                let mut inf: Vec<f32> = (0..k).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
                inf[k - 1] = f32::NEG_INFINITY;
                rows.push(inf);
            }
            for row in &rows {
                let mut q = vec![0i8; row.len()];
                let want = quantize_row(row, &mut q);
                let mut u = vec![0u8; row.len()];
                // SAFETY: AVX-512 F/BW checked above (VNNI implies them in `available`).
                let got = unsafe { vnni::quantize_row_u8(row, &mut u) };
                assert_eq!(got.to_bits(), want.to_bits(), "scale, k={}", row.len());
                let qu: Vec<u8> = q.iter().map(|&v| (v as u8) ^ 0x80).collect();
                assert_eq!(u, qu, "k={}", row.len());
            }
        }
    }

    #[test]
    fn from_rows_equals_from_transposed() {
        for &(k, n) in &[(5, 1), (40, 9), (384, 100), (130, 48)] {
            let (w_t, b) = random_layer(k, n, 5 + k as u64);
            let mut rows = vec![0.0f32; k * n];
            for i in 0..k {
                for o in 0..n {
                    rows[o * k + i] = w_t[i * n + o];
                }
            }
            for kern in Kernel::available() {
                let a = QLinear::with_kernel(&w_t, &b, k, n, kern);
                let r = QLinear::from_rows_with_kernel(&rows, &b, k, n, kern);
                assert_eq!(a.w, r.w);
                assert_eq!(a.packed, r.packed);
                assert_eq!(a.wsum, r.wsum);
                assert_eq!(a.scale, r.scale);
                assert_eq!(a.bias, r.bias);
            }
        }
    }

    /// Throughput of [`QLinear::forward`] on the encoder's four shapes (GOP/s, one thread):
    /// `cargo test --release --lib int8_shapes_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn int8_shapes_throughput() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let m = 512;
        for &(name, k, n) in &[
            ("qkv", 384, 1152),
            ("out", 384, 384),
            ("ff1", 384, 1536),
            ("ff2", 1536, 384),
        ] {
            let (w_t, b) = random_layer(k, n, 1);
            let (x, _) = random_layer(m, k, 2);
            let l = QLinear::from_transposed(&w_t, &b, k, n);
            let mut out = vec![0.0f32; m * n];
            let reps = 40;
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t = std::time::Instant::now();
                pool.install(|| {
                    for _ in 0..reps {
                        l.forward(&x, m, &mut out);
                    }
                });
                best = best.min(t.elapsed().as_secs_f64());
            }
            let ops = 2.0 * (m * k * n * reps) as f64;
            eprintln!("{name} k={k} n={n}: {:.1} GOP/s", ops / best / 1e9);
        }
        // As in the encoder: 6 layers × 4 maps, each used once per batch (weights from L3).
        let shapes = [(384, 1152), (384, 384), (384, 1536), (1536, 384)];
        let layers: Vec<QLinear> = (0..24)
            .map(|i| {
                let (k, n) = shapes[i % 4];
                let (w_t, b) = random_layer(k, n, i as u64);
                QLinear::from_transposed(&w_t, &b, k, n)
            })
            .collect();
        let (x, _) = random_layer(m, 1536, 2);
        let mut out = vec![0.0f32; m * 1536];
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = std::time::Instant::now();
            pool.install(|| {
                for _ in 0..5 {
                    for l in &layers {
                        l.forward(&x, m, &mut out);
                    }
                }
            });
            best = best.min(t.elapsed().as_secs_f64());
        }
        let ops: usize = shapes.iter().map(|&(k, n)| 2 * m * k * n * 6 * 5).sum();
        eprintln!("24 layers in turn: {:.1} GOP/s", ops as f64 / best / 1e9);
    }

    #[test]
    fn round_even_matches_std() {
        let mut x = -300.0f32;
        while x < 300.0 {
            assert_eq!(round_even(x), x.round_ties_even(), "{x}");
            x += 0.125;
        }
        for v in [
            0.5f32,
            1.5,
            2.5,
            -0.5,
            -1.5,
            126.5,
            -126.5,
            0.49999997,
            1e6 + 0.5,
        ] {
            assert_eq!(round_even(v), v.round_ties_even(), "{v}");
        }
    }

    #[test]
    fn quantize_row_round_trips_within_half_a_step() {
        let row = [0.0f32, 1.0, -2.54, 0.3, 2.54, -0.011];
        let mut q = [0i8; 6];
        let s = quantize_row(&row, &mut q);
        assert_eq!(q[4], 127);
        assert_eq!(q[2], -127);
        for (&v, &qi) in row.iter().zip(&q) {
            assert!((qi as f32 * s - v).abs() <= s / 2.0 + 1e-6);
        }
        let mut z = [1i8; 3];
        assert_eq!(quantize_row(&[0.0; 3], &mut z), 0.0);
        assert_eq!(z, [0; 3]);
    }
}
