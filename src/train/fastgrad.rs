//! A hand-written forward and backward pass of the top `k` BERT layers, mean pooling and a
//! logistic head, on packed tokens: the fast engine of [`super::tune::train_top`]
//! (`--tune-engine fast`).
//!
//! The math is [`super::tune`]'s (its candle-op layers are the reference, and a unit test
//! compares the loss and every parameter gradient with candle's autograd): per layer q/k/v
//! dense, scaled dot-product scores, softmax, context, attention-output dense, dropout,
//! residual + LayerNorm, feed-forward with erf GELU, dropout, residual + LayerNorm; then the mean
//! of each sentence's token states, dropout, a logistic head and the mean binary cross-entropy.
//!
//! Differences from the candle path are in layout only: sentences are concatenated without
//! padding (`[tokens × hidden]`, attention within each sentence), q/k/v are one fused
//! `[3·hidden × hidden]` product, every matrix product runs through [`crate::encode::f32mm`]
//! (weight gradients `dYᵀ·X` through a transposed copy of `dY`), attention and its backward run
//! per sentence in parallel (rayon). The forward keeps what the backward needs (inputs of every
//! product, attention probabilities, normalised LayerNorm inputs and their inverse deviations,
//! dropout masks). Dropout is the same definition (a seeded keep-mask scaled by `1/(1-p)`, drawn
//! in the same order: attention output, feed-forward output per layer, then the pooled vector)
//! but the masks cover packed tokens, so the random stream differs from candle's padded one;
//! with dropout 0 nothing is drawn and the two engines train the same model.

use rand::Rng;
use rayon::prelude::*;

use crate::encode::f32mm::PackedW;
use crate::encode::fast::erf;
use crate::heads::lora::mm;
use crate::heads::lora::FastTop;

/// Gradients of the mean loss, shaped as [`FastTop`]'s parameters.
#[derive(Debug, Clone)]
pub struct Grads {
    pub layers: Vec<Vec<Vec<f32>>>,
    pub head_w: Vec<f32>,
    pub head_b: f32,
}

/// A layer's weights packed for the forward (`x·Wᵀ`) and backward (`dY·W`) products.
struct Packs {
    qkv: PackedW,
    qkv_b: Vec<f32>,
    o: PackedW,
    f1: PackedW,
    f2: PackedW,
    qkv_t: PackedW,
    o_t: PackedW,
    f1_t: PackedW,
    f2_t: PackedW,
}

/// What one layer's forward keeps for its backward.
struct Saved {
    x: Vec<f32>,
    qkv: Vec<f32>,
    probs: Vec<f32>,
    ctx: Vec<f32>,
    m1: Option<Vec<f32>>,
    xn1: Vec<f32>,
    inv1: Vec<f32>,
    x1: Vec<f32>,
    u: Vec<f32>,
    g: Vec<f32>,
    m2: Option<Vec<f32>>,
    xn2: Vec<f32>,
    inv2: Vec<f32>,
}

/// Sentences of a packed batch: token counts and their row offsets.
struct Packed<'a> {
    lens: Vec<usize>,
    offs: Vec<usize>,
    /// Offsets of each sentence's attention probabilities (`heads × n × n`).
    poffs: Vec<usize>,
    rows: &'a [&'a [f32]],
}

impl<'a> Packed<'a> {
    fn new(rows: &'a [&'a [f32]], h: usize, heads: usize) -> Self {
        let lens: Vec<usize> = rows.iter().map(|r| r.len() / h).collect();
        let mut offs = Vec::with_capacity(lens.len());
        let mut poffs = Vec::with_capacity(lens.len());
        let (mut o, mut p) = (0, 0);
        for &n in &lens {
            offs.push(o);
            poffs.push(p);
            o += n;
            p += heads * n * n;
        }
        Self {
            lens,
            offs,
            poffs,
            rows,
        }
    }

    fn tokens(&self) -> usize {
        self.lens.iter().sum()
    }

    fn probs_len(&self, heads: usize) -> usize {
        self.lens.iter().map(|n| heads * n * n).sum()
    }
}

pub(crate) fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; a.len()];
    const B: usize = 32;
    for r0 in (0..rows).step_by(B) {
        for c0 in (0..cols).step_by(B) {
            for r in r0..(r0 + B).min(rows) {
                for c in c0..(c0 + B).min(cols) {
                    t[c * rows + r] = a[r * cols + c];
                }
            }
        }
    }
    t
}

/// `dyᵀ · x`: `[out × in]` from `dy` `[m × out]` and `x` `[m × in]`.
pub(crate) fn weight_grad(dy: &[f32], x: &[f32], m: usize, out: usize, inp: usize) -> Vec<f32> {
    let dyt = transpose(dy, m, out);
    let xp = PackedW::pack(x, m, inp);
    mm(&dyt, out, &xp, None)
}

fn col_sum(a: &[f32], cols: usize) -> Vec<f32> {
    let mut s = vec![0f32; cols];
    for r in a.chunks_exact(cols) {
        for (acc, &v) in s.iter_mut().zip(r) {
            *acc += v;
        }
    }
    s
}

fn mask(n: usize, p: f32, rng: &mut impl Rng) -> Vec<f32> {
    let scale = 1.0 / (1.0 - p);
    (0..n)
        .map(|_| if rng.gen::<f32>() < p { 0.0 } else { scale })
        .collect()
}

/// `y = LayerNorm(x)` row by row; returns `(y, x̂, 1/σ)`.
fn ln_forward(
    x: &[f32],
    g: &[f32],
    b: &[f32],
    h: usize,
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let t = x.len() / h;
    let mut y = vec![0f32; x.len()];
    let mut xn = vec![0f32; x.len()];
    let mut inv = vec![0f32; t];
    y.par_chunks_mut(h)
        .zip(xn.par_chunks_mut(h))
        .zip(inv.par_iter_mut())
        .zip(x.par_chunks(h))
        .for_each(|(((y, xn), inv), x)| {
            let mean = x.iter().sum::<f32>() / h as f32;
            let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
            let iv = 1.0 / (var + eps).sqrt();
            *inv = iv;
            for k in 0..h {
                xn[k] = (x[k] - mean) * iv;
                y[k] = xn[k] * g[k] + b[k];
            }
        });
    (y, xn, inv)
}

/// Backward of [`ln_forward`]: returns `(dx, dγ, dβ)`.
fn ln_backward(
    dy: &[f32],
    xn: &[f32],
    inv: &[f32],
    g: &[f32],
    h: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut dx = vec![0f32; dy.len()];
    dx.par_chunks_mut(h)
        .zip(dy.par_chunks(h))
        .zip(xn.par_chunks(h))
        .zip(inv.par_iter())
        .for_each(|(((dx, dy), xn), &iv)| {
            let (mut s1, mut s2) = (0f32, 0f32);
            for k in 0..h {
                let d = dy[k] * g[k];
                s1 += d;
                s2 += d * xn[k];
            }
            let (m1, m2) = (s1 / h as f32, s2 / h as f32);
            for k in 0..h {
                dx[k] = iv * (dy[k] * g[k] - m1 - xn[k] * m2);
            }
        });
    let mut dg = vec![0f32; h];
    let mut db = vec![0f32; h];
    for (dy, xn) in dy.chunks_exact(h).zip(xn.chunks_exact(h)) {
        for k in 0..h {
            dg[k] += dy[k] * xn[k];
            db[k] += dy[k];
        }
    }
    (dx, dg, db)
}

/// Dot product in eight lanes (vectorises; a plain sequential sum does not).
/// Not the same function as `heads::math::dot8`: the tail is added onto the lane sum one by
/// one here (there it is summed apart, then added), so the two round differently.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

fn gelu(u: f32) -> f32 {
    0.5 * u * (1.0 + erf(u * std::f32::consts::FRAC_1_SQRT_2))
}

fn gelu_grad(u: f32) -> f32 {
    let cdf = 0.5 * (1.0 + erf(u * std::f32::consts::FRAC_1_SQRT_2));
    let pdf = (-0.5 * u * u).exp() * 0.398_942_3;
    cdf + u * pdf
}

/// Split `a` into consecutive mutable parts of the given lengths.
fn split_mut(mut a: &mut [f32], lens: impl Iterator<Item = usize>) -> Vec<&mut [f32]> {
    let mut out = Vec::new();
    for n in lens {
        let (x, rest) = std::mem::take(&mut a).split_at_mut(n);
        out.push(x);
        a = rest;
    }
    out
}

/// Attention of every sentence over its own tokens: `ctx` `[T × H]` and probabilities.
fn attention_forward(qkv: &[f32], pk: &Packed, heads: usize, h: usize) -> (Vec<f32>, Vec<f32>) {
    let t = pk.tokens();
    let dh = h / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    let mut ctx = vec![0f32; t * h];
    let mut probs = vec![0f32; pk.probs_len(heads)];
    let cparts = split_mut(&mut ctx, pk.lens.iter().map(|n| n * h));
    let pparts = split_mut(&mut probs, pk.lens.iter().map(|n| heads * n * n));
    cparts
        .into_par_iter()
        .zip(pparts)
        .enumerate()
        .for_each(|(s, (c, p))| {
            let (o, n) = (pk.offs[s], pk.lens[s]);
            let row = |i: usize| &qkv[(o + i) * 3 * h..(o + i + 1) * 3 * h];
            for hh in 0..heads {
                let ph = &mut p[hh * n * n..(hh + 1) * n * n];
                for i in 0..n {
                    let q = &row(i)[hh * dh..(hh + 1) * dh];
                    let pr = &mut ph[i * n..(i + 1) * n];
                    let mut mx = f32::NEG_INFINITY;
                    for (j, pj) in pr.iter_mut().enumerate() {
                        let k = &row(j)[h + hh * dh..h + (hh + 1) * dh];
                        let s = dot(q, k);
                        *pj = s * scale;
                        mx = mx.max(*pj);
                    }
                    let mut sum = 0f32;
                    for pj in pr.iter_mut() {
                        *pj = (*pj - mx).exp();
                        sum += *pj;
                    }
                    for pj in pr.iter_mut() {
                        *pj /= sum;
                    }
                    let cr = &mut c[i * h + hh * dh..i * h + (hh + 1) * dh];
                    for (j, &pj) in pr.iter().enumerate() {
                        let v = &row(j)[2 * h + hh * dh..2 * h + (hh + 1) * dh];
                        for (cd, &vd) in cr.iter_mut().zip(v) {
                            *cd += pj * vd;
                        }
                    }
                }
            }
        });
    (ctx, probs)
}

/// Backward of [`attention_forward`]: `dqkv` `[T × 3H]` from `dctx` `[T × H]`.
fn attention_backward(
    dctx: &[f32],
    qkv: &[f32],
    probs: &[f32],
    pk: &Packed,
    heads: usize,
    h: usize,
) -> Vec<f32> {
    let t = pk.tokens();
    let dh = h / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    let mut dqkv = vec![0f32; t * 3 * h];
    let parts = split_mut(&mut dqkv, pk.lens.iter().map(|n| n * 3 * h));
    parts.into_par_iter().enumerate().for_each(|(s, d)| {
        let (o, n, po) = (pk.offs[s], pk.lens[s], pk.poffs[s]);
        let row = |i: usize| &qkv[(o + i) * 3 * h..(o + i + 1) * 3 * h];
        let drow = |i: usize| &dctx[(o + i) * h..(o + i + 1) * h];
        let mut ds = vec![0f32; n * n];
        let (mut dq, mut dk, mut dv) = (vec![0f32; n * dh], vec![0f32; n * dh], vec![0f32; n * dh]);
        for hh in 0..heads {
            let ph = &probs[po + hh * n * n..po + (hh + 1) * n * n];
            let hs = hh * dh..(hh + 1) * dh;
            // dP = dctx · Vᵀ, then dS = P ⊙ (dP − rowsum(P ⊙ dP)).
            for i in 0..n {
                let dc = &drow(i)[hs.clone()];
                let mut pdp = 0f32;
                for j in 0..n {
                    let v = &row(j)[2 * h + hh * dh..2 * h + (hh + 1) * dh];
                    let dp = dot(dc, v);
                    ds[i * n + j] = dp;
                    pdp += dp * ph[i * n + j];
                }
                for j in 0..n {
                    ds[i * n + j] = ph[i * n + j] * (ds[i * n + j] - pdp) * scale;
                }
            }
            // dQ_i = Σ_j dS_ij k_j ; dK_j = Σ_i dS_ij q_i ; dV_j = Σ_i P_ij dctx_i.
            dq.iter_mut().for_each(|v| *v = 0.0);
            dk.iter_mut().for_each(|v| *v = 0.0);
            dv.iter_mut().for_each(|v| *v = 0.0);
            for i in 0..n {
                let q = &row(i)[hs.clone()];
                let dc = &drow(i)[hs.clone()];
                for j in 0..n {
                    let k = &row(j)[h + hh * dh..h + (hh + 1) * dh];
                    let (a, pij) = (ds[i * n + j], ph[i * n + j]);
                    for (x, &kv) in dq[i * dh..(i + 1) * dh].iter_mut().zip(k) {
                        *x += a * kv;
                    }
                    for (x, &qv) in dk[j * dh..(j + 1) * dh].iter_mut().zip(q) {
                        *x += a * qv;
                    }
                    for (x, &cv) in dv[j * dh..(j + 1) * dh].iter_mut().zip(dc) {
                        *x += pij * cv;
                    }
                }
            }
            for i in 0..n {
                let r = &mut d[i * 3 * h..(i + 1) * 3 * h];
                r[hh * dh..(hh + 1) * dh].copy_from_slice(&dq[i * dh..(i + 1) * dh]);
                r[h + hh * dh..h + (hh + 1) * dh].copy_from_slice(&dk[i * dh..(i + 1) * dh]);
                r[2 * h + hh * dh..2 * h + (hh + 1) * dh]
                    .copy_from_slice(&dv[i * dh..(i + 1) * dh]);
            }
        }
    });
    dqkv
}

/// `backward`: also pack the transposes the backward pass multiplies by (a forward-only pass
/// leaves them empty).
fn pack_layer(w: &[Vec<f32>], h: usize, inter: usize, backward: bool) -> Packs {
    let mut wqkv = Vec::with_capacity(3 * h * h);
    let mut bqkv = Vec::with_capacity(3 * h);
    for j in 0..3 {
        wqkv.extend_from_slice(&w[2 * j]);
        bqkv.extend_from_slice(&w[2 * j + 1]);
    }
    let packed_t = |m: &[f32], k: usize, n: usize| {
        if backward {
            PackedW::pack(m, k, n)
        } else {
            PackedW::pack(&[], 0, 0)
        }
    };
    Packs {
        qkv: PackedW::pack_rows(&wqkv, 3 * h, h),
        qkv_b: bqkv,
        o: PackedW::pack_rows(&w[6], h, h),
        f1: PackedW::pack_rows(&w[10], inter, h),
        f2: PackedW::pack_rows(&w[12], h, inter),
        qkv_t: packed_t(&wqkv, 3 * h, h),
        o_t: packed_t(&w[6], h, h),
        f1_t: packed_t(&w[10], inter, h),
        f2_t: packed_t(&w[12], h, inter),
    }
}

/// Mean binary cross-entropy of one logit (stable form).
fn bce1(z: f32, y: bool) -> f64 {
    let z = z as f64;
    z.max(0.0) - z * (y as u8 as f64) + (1.0 + (-z.abs()).exp()).ln()
}

impl FastTop {
    fn packs(&self, backward: bool) -> Vec<Packs> {
        self.layers
            .iter()
            .map(|w| pack_layer(w, self.hidden, self.inter, backward))
            .collect()
    }

    fn layer_forward(
        &self,
        l: usize,
        p: &Packs,
        x: Vec<f32>,
        pk: &Packed,
        drop: &mut Option<(f32, &mut rand_chacha::ChaCha8Rng)>,
        keep: bool,
    ) -> (Vec<f32>, Option<Saved>) {
        let (h, w) = (self.hidden, &self.layers[l]);
        let t = pk.tokens();
        let qkv = mm(&x, t, &p.qkv, Some(&p.qkv_b));
        let (ctx, probs) = attention_forward(&qkv, pk, self.heads, h);
        let mut a = mm(&ctx, t, &p.o, Some(&w[7]));
        let m1 = match drop.as_mut() {
            Some((pr, rng)) if *pr > 0.0 => {
                let m = mask(t * h, *pr, *rng);
                a.iter_mut().zip(&m).for_each(|(v, m)| *v *= m);
                Some(m)
            }
            _ => None,
        };
        a.iter_mut().zip(&x).for_each(|(v, x)| *v += x);
        let (x1, xn1, inv1) = ln_forward(&a, &w[8], &w[9], h, self.eps);
        let u = mm(&x1, t, &p.f1, Some(&w[11]));
        let mut g = u.clone();
        g.par_chunks_mut(self.inter)
            .for_each(|r| r.iter_mut().for_each(|v| *v = gelu(*v)));
        let mut f = mm(&g, t, &p.f2, Some(&w[13]));
        let m2 = match drop.as_mut() {
            Some((pr, rng)) if *pr > 0.0 => {
                let m = mask(t * h, *pr, *rng);
                f.iter_mut().zip(&m).for_each(|(v, m)| *v *= m);
                Some(m)
            }
            _ => None,
        };
        f.iter_mut().zip(&x1).for_each(|(v, x)| *v += x);
        let (out, xn2, inv2) = ln_forward(&f, &w[14], &w[15], h, self.eps);
        let saved = keep.then_some(Saved {
            x,
            qkv,
            probs,
            ctx,
            m1,
            xn1,
            inv1,
            x1,
            u,
            g,
            m2,
            xn2,
            inv2,
        });
        (out, saved)
    }

    /// Backward of one layer: gradients of its 16 tensors and `dx`.
    fn layer_backward(
        &self,
        l: usize,
        p: &Packs,
        s: &Saved,
        dout: &[f32],
        pk: &Packed,
    ) -> (Vec<f32>, Vec<Vec<f32>>) {
        let (h, i_) = (self.hidden, self.inter);
        let w = &self.layers[l];
        let t = pk.tokens();
        let mut g: Vec<Vec<f32>> = vec![Vec::new(); 16];
        let (dr2, dg2, db2) = ln_backward(dout, &s.xn2, &s.inv2, &w[14], h);
        g[14] = dg2;
        g[15] = db2;
        let mut df = dr2.clone();
        if let Some(m) = &s.m2 {
            df.iter_mut().zip(m).for_each(|(v, m)| *v *= m);
        }
        g[12] = weight_grad(&df, &s.g, t, h, i_);
        g[13] = col_sum(&df, h);
        let mut du = mm(&df, t, &p.f2_t, None);
        du.par_chunks_mut(i_)
            .zip(s.u.par_chunks(i_))
            .for_each(|(d, u)| {
                for (d, &u) in d.iter_mut().zip(u) {
                    *d *= gelu_grad(u);
                }
            });
        g[10] = weight_grad(&du, &s.x1, t, i_, h);
        g[11] = col_sum(&du, i_);
        let mut dx1 = mm(&du, t, &p.f1_t, None);
        dx1.iter_mut().zip(&dr2).for_each(|(a, b)| *a += b);
        let (dr1, dg1, db1) = ln_backward(&dx1, &s.xn1, &s.inv1, &w[8], h);
        g[8] = dg1;
        g[9] = db1;
        let mut da = dr1.clone();
        if let Some(m) = &s.m1 {
            da.iter_mut().zip(m).for_each(|(v, m)| *v *= m);
        }
        g[6] = weight_grad(&da, &s.ctx, t, h, h);
        g[7] = col_sum(&da, h);
        let dctx = mm(&da, t, &p.o_t, None);
        let dqkv = attention_backward(&dctx, &s.qkv, &s.probs, pk, self.heads, h);
        let gw = weight_grad(&dqkv, &s.x, t, 3 * h, h);
        let gb = col_sum(&dqkv, 3 * h);
        for j in 0..3 {
            g[2 * j] = gw[j * h * h..(j + 1) * h * h].to_vec();
            g[2 * j + 1] = gb[j * h..(j + 1) * h].to_vec();
        }
        let mut dx = mm(&dqkv, t, &p.qkv_t, None);
        dx.iter_mut().zip(&dr1).for_each(|(a, b)| *a += b);
        (dx, g)
    }

    fn pack_input(&self, pk: &Packed) -> Vec<f32> {
        let mut x = Vec::with_capacity(pk.tokens() * self.hidden);
        for r in pk.rows {
            x.extend_from_slice(r);
        }
        x
    }

    fn pool(&self, x: &[f32], pk: &Packed) -> Vec<f32> {
        let h = self.hidden;
        let mut pooled = vec![0f32; pk.lens.len() * h];
        for (s, pr) in pooled.chunks_exact_mut(h).enumerate() {
            let (o, n) = (pk.offs[s], pk.lens[s]);
            for r in x[o * h..(o + n) * h].chunks_exact(h) {
                pr.iter_mut().zip(r).for_each(|(a, b)| *a += b);
            }
            pr.iter_mut().for_each(|v| *v /= n as f32);
        }
        pooled
    }

    /// Raw logits of sentences given by their bottom states (each `n_tokens × hidden`, at
    /// least one token), in input order, in batches of `batch_size` sentences.
    pub fn logits(&self, states: &[&[f32]], batch_size: usize) -> Vec<f32> {
        let packs = self.packs(false);
        let mut out = Vec::with_capacity(states.len());
        for chunk in states.chunks(batch_size.max(1)) {
            let pk = Packed::new(chunk, self.hidden, self.heads);
            let mut x = self.pack_input(&pk);
            for (l, p) in packs.iter().enumerate() {
                x = self.layer_forward(l, p, x, &pk, &mut None, false).0;
            }
            let pooled = self.pool(&x, &pk);
            out.extend(pooled.chunks_exact(self.hidden).map(|p| self.head_logit(p)));
        }
        out
    }

    /// Mean binary cross-entropy of the batch `rows` with labels `y` and the gradient of every
    /// parameter. `drop`: dropout probability and the generator of its masks.
    pub fn loss_and_grads(
        &self,
        rows: &[&[f32]],
        y: &[bool],
        mut drop: Option<(f32, &mut rand_chacha::ChaCha8Rng)>,
    ) -> (f32, Grads) {
        let h = self.hidden;
        let packs = self.packs(true);
        let pk = Packed::new(rows, h, self.heads);
        let mut x = self.pack_input(&pk);
        let mut saved = Vec::with_capacity(self.k());
        for (l, p) in packs.iter().enumerate() {
            let (out, s) = self.layer_forward(l, p, x, &pk, &mut drop, true);
            x = out;
            saved.push(s.expect("kept"));
        }
        let b = rows.len();
        let mut pooled = self.pool(&x, &pk);
        let m3 = match drop.as_mut() {
            Some((pr, rng)) if *pr > 0.0 => {
                let m = mask(b * h, *pr, *rng);
                pooled.iter_mut().zip(&m).for_each(|(v, m)| *v *= m);
                Some(m)
            }
            _ => None,
        };
        let z: Vec<f32> = pooled
            .chunks_exact(h)
            .map(|p| p.iter().zip(&self.head_w).map(|(a, b)| a * b).sum::<f32>() + self.head_b)
            .collect();
        let loss = z.iter().zip(y).map(|(&z, &y)| bce1(z, y)).sum::<f64>() / b as f64;
        let dz: Vec<f32> = z
            .iter()
            .zip(y)
            .map(|(&z, &y)| (crate::heads::math::sigmoid(z) - y as u8 as f32) / b as f32)
            .collect();
        let mut head_w = vec![0f32; h];
        for (p, &d) in pooled.chunks_exact(h).zip(&dz) {
            head_w.iter_mut().zip(p).for_each(|(g, p)| *g += d * p);
        }
        let head_b = dz.iter().sum::<f32>();
        // d(token state) = dz · w (⊙ mask) / n, for every token of the sentence.
        let mut dx = vec![0f32; x.len()];
        for (s, &d) in dz.iter().enumerate() {
            let (o, n) = (pk.offs[s], pk.lens[s]);
            let mut dp: Vec<f32> = self.head_w.iter().map(|w| d * w / n as f32).collect();
            if let Some(m) = &m3 {
                dp.iter_mut()
                    .zip(&m[s * h..(s + 1) * h])
                    .for_each(|(v, m)| *v *= m);
            }
            for r in dx[o * h..(o + n) * h].chunks_exact_mut(h) {
                r.copy_from_slice(&dp);
            }
        }
        let mut layers = vec![Vec::new(); self.k()];
        for l in (0..self.k()).rev() {
            let (d, g) = self.layer_backward(l, &packs[l], &saved[l], &dx, &pk);
            dx = d;
            layers[l] = g;
        }
        (
            loss as f32,
            Grads {
                layers,
                head_w,
                head_b,
            },
        )
    }
}

/// AdamW exactly as candle-nn's `AdamW::step` (decoupled weight decay `θ·(1 − lr·λ)`, bias
/// corrections `1/(1 − βᵗ)` on both moments, `eps` added to `√v̂`), on plain vectors.
#[derive(Debug, Clone)]
pub struct AdamW {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    t: i32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl AdamW {
    /// candle-nn's defaults (`beta1` 0.9, `beta2` 0.999, `eps` 1e-8) with `lr` and
    /// `weight_decay`.
    pub fn new(lr: f64, weight_decay: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            t: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    /// One step over `params` with their gradients `grads` (same order and lengths every step).
    pub fn step(&mut self, params: &mut [&mut [f32]], grads: &[&[f32]]) {
        assert_eq!(params.len(), grads.len(), "one gradient per parameter");
        if self.m.is_empty() {
            self.m = params.iter().map(|p| vec![0f32; p.len()]).collect();
            self.v = self.m.clone();
        }
        self.t += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let scale_m = (1.0 / (1.0 - b1.powi(self.t))) as f32;
        let scale_v = (1.0 / (1.0 - b2.powi(self.t))) as f32;
        let decay = (1.0 - self.lr * self.weight_decay) as f32;
        let (lr, eps) = (self.lr as f32, self.eps as f32);
        let (b1f, b2f, c1, c2) = (b1 as f32, b2 as f32, (1.0 - b1) as f32, (1.0 - b2) as f32);
        for (((p, g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            assert_eq!(p.len(), g.len(), "gradient length");
            for i in 0..p.len() {
                m[i] = m[i] * b1f + g[i] * c1;
                v[i] = v[i] * b2f + g[i] * g[i] * c2;
                let mh = m[i] * scale_m;
                let vh = v[i] * scale_v;
                p[i] = p[i] * decay - mh / (vh.sqrt() + eps) * lr;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};
    use rand::Rng;

    use super::*;
    use crate::heads::lora::{TLayer, TunedTop, LAYER_TENSORS};
    use crate::train::tune::{Batch, TuneEngine, TuneOpts};

    /// A random `k`-layer top of hidden size `h` (LayerNorm gains near 1), with a random head.
    fn random_top(h: usize, inter: usize, heads: usize, k: usize, seed: u64) -> TunedTop {
        let mut rng = crate::stats::rng(seed);
        let mut u = |n: usize, lo: f32, hi: f32| -> Vec<f32> {
            (0..n).map(|_| rng.gen_range(lo..hi)).collect()
        };
        let var = |v: Vec<f32>, shape: &[usize]| {
            Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap()).unwrap()
        };
        let mut layers = Vec::new();
        for _ in 0..k {
            let mut t = Vec::new();
            for name in LAYER_TENSORS {
                let (shape, fan_in): (Vec<usize>, usize) = match name {
                    "intermediate.dense.weight" => (vec![inter, h], h),
                    "intermediate.dense.bias" => (vec![inter], 1),
                    "output.dense.weight" => (vec![h, inter], inter),
                    n if n.ends_with("weight") && !n.contains("LayerNorm") => (vec![h, h], h),
                    _ => (vec![h], 1),
                };
                let n: usize = shape.iter().product();
                let b = 1.5 / (fan_in as f32).sqrt();
                let v = if name.contains("LayerNorm.weight") {
                    u(n, 0.7, 1.3)
                } else if fan_in == 1 {
                    u(n, -0.3, 0.3)
                } else {
                    u(n, -b, b)
                };
                t.push(var(v, &shape));
            }
            layers.push(TLayer { t });
        }
        let hw = u(h, -1.0, 1.0);
        TunedTop {
            first_layer: 0,
            layers,
            head_w: var(hw, &[h]),
            head_b: var(vec![0.1], &[1]),
            heads,
            eps: 1e-12,
            threshold: 0.5,
            temperature: 1.0,
        }
    }

    fn random_rows(lens: &[usize], h: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = crate::stats::rng(seed);
        lens.iter()
            .map(|&n| (0..n * h).map(|_| rng.gen_range(-2.0..2.0)).collect())
            .collect()
    }

    /// Loss and gradients (layer tensors, then head weight and bias) by candle's autograd.
    fn candle_grads(top: &TunedTop, rows: &[&[f32]], y: &[bool]) -> (f32, Vec<Vec<f32>>) {
        let batch = Batch::new(rows, top.hidden()).unwrap();
        let z = top.logits_t(&batch, None).unwrap();
        let yt: Vec<f32> = y.iter().map(|&v| v as u8 as f32).collect();
        let yt = Tensor::from_vec(yt, y.len(), &Device::Cpu).unwrap();
        let loss = crate::train::bce_with_logits(&z, &yt).unwrap();
        let grads = loss.backward().unwrap();
        let mut vars = top.vars_layers();
        vars.push(top.head_w.clone());
        vars.push(top.head_b.clone());
        let g = vars
            .iter()
            .map(|v| {
                grads
                    .get(v.as_tensor())
                    .expect("gradient exists")
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
            })
            .collect();
        (loss.to_scalar::<f32>().unwrap(), g)
    }

    fn flat(g: &Grads) -> Vec<Vec<f32>> {
        let mut v: Vec<Vec<f32>> = g.layers.iter().flatten().cloned().collect();
        v.push(g.head_w.clone());
        v.push(vec![g.head_b]);
        v
    }

    fn names(k: usize) -> Vec<String> {
        let mut n: Vec<String> = (0..k)
            .flat_map(|l| LAYER_TENSORS.iter().map(move |t| format!("layer {l} {t}")))
            .collect();
        n.push("head.weight".into());
        n.push("head.bias".into());
        n
    }

    /// Loss and every gradient of the fast engine against candle autograd; returns the worst
    /// ratio `max|a-b| / max|b|` over the tensors.
    fn check_against_candle(top: &TunedTop, rows: &[&[f32]], y: &[bool]) -> f32 {
        let (lc, gc) = candle_grads(top, rows, y);
        let (lf, gf) = top.to_fast().unwrap().loss_and_grads(rows, y, None);
        assert!(
            (lc - lf).abs() <= 1e-5 * lc.abs().max(1.0),
            "loss {lf} vs candle {lc}"
        );
        let gf = flat(&gf);
        assert_eq!(gf.len(), gc.len());
        let mut worst = 0f32;
        let amax = |v: &[f32]| v.iter().fold(0f32, |m, v| m.max(v.abs()));
        let overall = gc.iter().map(|g| amax(g)).fold(0f32, f32::max);
        for ((name, a), b) in names(top.k()).iter().zip(&gf).zip(&gc) {
            assert_eq!(a.len(), b.len(), "{name}: length");
            let scale = amax(b);
            if name.ends_with("key.bias") {
                // A key bias adds the same q·b to every score of a query row, which softmax
                // ignores: its gradient is zero but for rounding, in both engines.
                assert!(
                    scale <= 1e-5 * overall && amax(a) <= 1e-5 * overall,
                    "{name}: {} (fast) and {scale} (candle) should be ~0",
                    amax(a)
                );
                continue;
            }
            assert!(scale > 0.0, "{name}: candle gradient is zero");
            let diff = a.iter().zip(b).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                diff <= 1e-3 * scale + 1e-5,
                "{name}: max |fast - candle| {diff:e}, max |candle| {scale:e}"
            );
            if std::env::var_os("SLANT_GRADCHECK_VERBOSE").is_some() {
                eprintln!("{name}: max|diff| {diff:e} max|candle| {scale:e}");
            }
            worst = worst.max(diff / scale);
        }
        worst
    }

    #[test]
    fn gradients_match_candle_autograd_on_a_small_random_top() {
        for (k, seed) in [(1, 1), (2, 2), (3, 3)] {
            let (h, heads) = (24, 3);
            let top = random_top(h, 40, heads, k, seed);
            let rows = random_rows(&[3, 7, 12, 1], h, seed + 10);
            let rows: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
            let worst = check_against_candle(&top, &rows, &[true, false, true, false]);
            eprintln!("k={k}: worst max|fast-candle|/max|candle| {worst:e}");
        }
    }

    #[test]
    fn gradients_match_candle_autograd_on_the_real_encoder() {
        let Some(dir) = crate::encode::fetched_encoder_dir() else {
            return;
        };
        let enc = crate::encode::Encoder::load(&dir, Default::default()).expect("encoder loads");
        let texts = [
            "Yes.",
            "The senator said the bill was a disaster.",
            "Critics claimed the radical plan would wreck the economy and hurt working families.",
        ];
        let l = enc.layers();
        let k = 2;
        let bottom = enc.states_after(&texts, l - k, 4).unwrap();
        let rows: Vec<&[f32]> = bottom.iter().map(Vec::as_slice).collect();
        let lens: Vec<usize> = rows.iter().map(|r| r.len() / enc.hidden_size()).collect();
        let top = TunedTop::from_encoder(enc.dir(), l - k, k).unwrap();
        let mut rng = crate::stats::rng(4);
        let hw: Vec<f32> = (0..enc.hidden_size())
            .map(|_| rng.gen_range(-0.5..0.5))
            .collect();
        top.head_w
            .set(&Tensor::from_vec(hw, enc.hidden_size(), &Device::Cpu).unwrap())
            .unwrap();
        let worst = check_against_candle(&top, &rows, &[false, true, true]);
        eprintln!("real encoder, k={k}, tokens {lens:?}: worst ratio {worst:e}");
    }

    #[test]
    fn gradients_match_finite_differences_on_a_tiny_top() {
        let (h, heads) = (8, 2);
        let top = random_top(h, 12, heads, 2, 7);
        let rows = random_rows(&[1, 3, 5], h, 8);
        let rows: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let y = [true, false, true];
        let base = top.to_fast().unwrap();
        let (_, g) = base.loss_and_grads(&rows, &y, None);
        let g = flat(&g);
        let loss_at = |t: usize, i: usize, d: f32| -> f64 {
            let mut m = base.clone();
            let nl = m.layers.len() * 16;
            if t < nl {
                m.layers[t / 16][t % 16][i] += d;
            } else if t == nl {
                m.head_w[i] += d;
            } else {
                m.head_b += d;
            }
            m.loss_and_grads(&rows, &y, None).0 as f64
        };
        let eps = 1e-2f32;
        for (t, (name, gt)) in names(2).iter().zip(&g).enumerate() {
            // The weight with the largest gradient of each tensor.
            let (i, &gi) = gt
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .unwrap();
            let fd = ((loss_at(t, i, eps) - loss_at(t, i, -eps)) / (2.0 * eps as f64)) as f32;
            assert!(
                (fd - gi).abs() <= 3e-2 * gi.abs() + 3e-4,
                "{name}[{i}]: analytic {gi:e}, finite difference {fd:e}"
            );
        }
    }

    #[test]
    fn dropout_masks_are_seeded_and_change_the_gradients() {
        let top = random_top(16, 24, 2, 2, 9).to_fast().unwrap();
        let rows = random_rows(&[4, 6], 16, 10);
        let rows: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let y = [true, false];
        let run = |seed| {
            let mut rng = crate::stats::rng(seed);
            let (l, g) = top.loss_and_grads(&rows, &y, Some((0.3, &mut rng)));
            (l, flat(&g))
        };
        let (a, b, c) = (run(1), run(1), run(2));
        assert_eq!(a.1, b.1, "same seed, same gradients");
        assert_ne!(a.1, c.1, "another seed, other masks");
        let (l0, g0) = top.loss_and_grads(&rows, &y, None);
        assert_ne!(flat(&g0), a.1);
        let mut rng = crate::stats::rng(1);
        let (l00, g00) = top.loss_and_grads(&rows, &y, Some((0.0, &mut rng)));
        assert_eq!((l0, flat(&g0)), (l00, flat(&g00)), "p = 0 is no dropout");
    }

    #[test]
    fn malformed_sentences_are_refused_with_a_clear_error() {
        let top = random_top(8, 12, 2, 1, 30);
        let good = vec![0.5f32; 16];
        let (empty, ragged) = (Vec::<f32>::new(), vec![0.5f32; 12]);
        for (bad, what) in [(&empty, "empty"), (&ragged, "not a multiple of hidden")] {
            for engine in [TuneEngine::Fast, TuneEngine::Candle] {
                let x: Vec<&[f32]> = vec![good.as_slice(), bad.as_slice()];
                let opts = TuneOpts {
                    layers: 1,
                    epochs: 1,
                    engine,
                    ..TuneOpts::default()
                };
                let err = crate::train::tune::train_top(&top, &x, &[true, false], None, &opts)
                    .expect_err(what)
                    .to_string();
                assert!(err.contains("token states"), "{what}: {err}");
            }
            let x: Vec<&[f32]> = vec![good.as_slice(), bad.as_slice()];
            assert!(top.logits_on(&x, 8, TuneEngine::Fast).is_err(), "{what}");
        }
    }

    #[test]
    fn adamw_equals_candle_nn() {
        use candle_nn::Optimizer;
        let mut rng = crate::stats::rng(3);
        let p0: Vec<f32> = (0..50).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let var =
            Var::from_tensor(&Tensor::from_vec(p0.clone(), 50, &Device::Cpu).unwrap()).unwrap();
        let mut copt = candle_nn::AdamW::new(
            vec![var.clone()],
            candle_nn::ParamsAdamW {
                lr: 1e-2,
                weight_decay: 0.05,
                ..Default::default()
            },
        )
        .unwrap();
        let mut fopt = AdamW::new(1e-2, 0.05);
        let mut p = p0;
        for step in 0..20 {
            let lr = 1e-2 * (1.0 - step as f64 / 25.0);
            copt.set_learning_rate(lr);
            fopt.lr = lr;
            // Loss Σ (p - c)² · scale, gradient 2 (p - c) · scale, from the candle weights.
            let cur = var.as_tensor().to_vec1::<f32>().unwrap();
            let g: Vec<f32> = cur
                .iter()
                .enumerate()
                .map(|(i, v)| 2.0 * (v - i as f32 / 50.0) * (1.0 + i as f32))
                .collect();
            let loss = ((var.as_tensor()
                - Tensor::from_vec(
                    (0..50).map(|i| i as f32 / 50.0).collect::<Vec<_>>(),
                    50,
                    &Device::Cpu,
                )
                .unwrap())
            .unwrap()
            .sqr()
            .unwrap()
                * Tensor::from_vec(
                    (0..50).map(|i| 1.0 + i as f32).collect::<Vec<_>>(),
                    50,
                    &Device::Cpu,
                )
                .unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
            copt.step(&loss.backward().unwrap()).unwrap();
            fopt.step(&mut [p.as_mut_slice()], &[g.as_slice()]);
            let c = var.as_tensor().to_vec1::<f32>().unwrap();
            for (a, b) in p.iter().zip(&c) {
                assert!((a - b).abs() <= 1e-6, "step {step}: {a} vs candle {b}");
            }
            // Keep both on the same weights so rounding does not build up.
            p.copy_from_slice(&c);
        }
    }

    #[test]
    fn both_engines_train_the_same_model_without_dropout() {
        let (h, heads) = (16, 2);
        let mut rng = crate::stats::rng(21);
        let lens: Vec<usize> = (0..60).map(|_| rng.gen_range(1..9)).collect();
        let xs = random_rows(&lens, h, 22);
        // Labels from a fixed direction of the mean state (learnable).
        let y: Vec<bool> = xs
            .iter()
            .map(|r| r.iter().step_by(3).sum::<f32>() > 0.0)
            .collect();
        let x: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
        let (tr, dv) = (40, 60);
        let run = |engine| {
            let top = random_top(h, 24, heads, 2, 23);
            let opts = TuneOpts {
                layers: 2,
                epochs: 3,
                batch_size: 8,
                lr_layers: 1e-3,
                lr_head: 1e-2,
                weight_decay: 1e-2,
                dropout: 0.0,
                seed: 5,
                engine,
            };
            let dev = (&x[tr..dv], &y[tr..dv]);
            let losses =
                crate::train::tune::train_top(&top, &x[..tr], &y[..tr], Some(dev), &opts).unwrap();
            let z = top.logits(&x[tr..dv], 64).unwrap();
            // The fast forward's logits (in input order) equal candle's.
            let zf = top.logits_on(&x[tr..dv], 7, TuneEngine::Fast).unwrap();
            for (a, b) in zf.iter().zip(&z) {
                assert!((a - b).abs() <= 1e-4, "fast forward {a} vs candle {b}");
            }
            (losses, z)
        };
        let (lc, zc) = run(TuneEngine::Candle);
        let (lf, zf) = run(TuneEngine::Fast);
        assert_eq!(lc.len(), 3);
        assert!(
            lc[2] < lc[0] || lc[1] < lc[0],
            "training lowers the dev loss: {lc:?}"
        );
        for (a, b) in lf.iter().zip(&lc) {
            assert!(
                (a - b).abs() <= 1e-4,
                "dev losses fast {lf:?} vs candle {lc:?}"
            );
        }
        for (a, b) in zf.iter().zip(&zc) {
            assert!((a - b).abs() <= 1e-3, "dev logits fast {a} vs candle {b}");
        }
    }
}
