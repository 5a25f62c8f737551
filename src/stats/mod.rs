//! Statistics used by aggregation ([`crate::aggregate`]) and comparison ([`crate::compare`]).
//!
//! Everything here is deterministic: randomised procedures (bootstrap, permutation tests) take an
//! explicit seed and draw from [`rng`] (`ChaCha8Rng`), sums are accumulated in input order, and
//! maps are `BTreeMap`s, so a given input and seed always give bit-for-bit identical output.
//!
//! Contents:
//!
//! * proportions: [`wilson`] score interval, [`cohens_h`] effect size, [`two_proportion_z`] test;
//! * article-level resampling of ratio-of-sums estimates: [`Unit`], [`ratio`],
//!   [`bootstrap_ratio_ci`], [`diff_test`] (bootstrap CI + permutation p-value);
//! * the normal distribution: [`normal_cdf`], [`erf`], [`erfc`] (W. J. Cody's rational
//!   approximations, close to double precision);
//! * distributions and vocabularies: [`jsd`] (Jensen–Shannon divergence),
//!   [`log_odds_dirichlet`] and [`pooled_prior`] ("Fightin' Words");
//! * miscellany: [`spearman`], [`percentile_sorted`], [`ece`] (expected calibration error).

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Two-sided 95% standard-normal quantile, `Φ⁻¹(0.975)`.
pub const Z95: f64 = 1.959964;

/// Default total prior weight `α₀` for [`pooled_prior`].
pub const DEFAULT_ALPHA0: f64 = 1000.0;

/// Smallest number of distinct label assignments for which [`diff_test`] reports a p-value.
pub const MIN_PERMUTATION_ASSIGNMENTS: u128 = 20;

// ---------------------------------------------------------------------------------------------
// Proportions
// ---------------------------------------------------------------------------------------------

/// Wilson score interval for `k` successes in `n` trials at 95% (`z = 1.959964`).
///
/// With `p̂ = k/n`:
///
/// ```text
///            p̂ + z²/(2n)        z       ┌ p̂(1-p̂)     z²  ┐½
/// centre = ─────────────,  half = ───────── │ ─────── + ──── │
///            1 + z²/n           1 + z²/n  └    n       4n² ┘
/// ```
///
/// The interval is `(centre - half, centre + half)`, clamped to `[0, 1]`; the bound at an
/// observed extreme is exact (`k == 0` gives a lower bound of exactly `0`, `k == n` an upper
/// bound of exactly `1`). `n == 0` gives the uninformative `(0.0, 1.0)`. `k > n` is treated as
/// `k == n`.
///
/// Reference: E. B. Wilson (1927), "Probable inference, the law of succession, and statistical
/// inference", *JASA* 22(158); A. Agresti & B. Coull (1998), *The American Statistician* 52(2).
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let k = k.min(n);
    let nf = n as f64;
    let p = k as f64 / nf;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / nf;
    let centre = (p + z2 / (2.0 * nf)) / denom;
    let half = Z95 / denom * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt();
    let lo = if k == 0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let hi = if k == n {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    (lo, hi)
}

/// The seeded RNG used everywhere: `ChaCha8Rng::seed_from_u64(seed)`.
///
/// ChaCha8 is portable and its stream is fixed by the `rand_chacha` version, so results are
/// reproducible across platforms.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Cohen's h, the effect size for two proportions:
/// `h = 2·asin(√p₂) − 2·asin(√p₁)` (positive when `p₂ > p₁`).
///
/// The arcsine transform stabilises the variance, so equal `h` means roughly equal
/// detectability anywhere in `[0, 1]`. Conventional magnitudes: 0.2 small, 0.5 medium,
/// 0.8 large. Inputs are clamped to `[0, 1]` (to absorb rounding); NaN propagates.
///
/// Reference: J. Cohen (1988), *Statistical Power Analysis for the Behavioral Sciences*, 2nd ed.,
/// ch. 6.
pub fn cohens_h(p1: f64, p2: f64) -> f64 {
    let phi = |p: f64| 2.0 * p.clamp(0.0, 1.0).sqrt().asin();
    phi(p2) - phi(p1)
}

/// Two-proportion z-test with pooled variance; returns `(z, two-sided p)`.
///
/// Used when the units are sentences (independent Bernoulli trials) rather than articles.
/// With `p̂ᵢ = kᵢ/nᵢ` and pooled `p̂ = (k₁+k₂)/(n₁+n₂)`:
///
/// ```text
/// z = (p̂₂ − p̂₁) / √( p̂(1−p̂)(1/n₁ + 1/n₂) ),     p = 2·(1 − Φ(|z|)) = erfc(|z|/√2)
/// ```
///
/// The sign follows the rest of this module (second minus first, like [`cohens_h`] and
/// [`DiffTest::diff`]). When either sample is empty, or the pooled proportion is 0 or 1 (zero
/// variance: both samples are all-failure or all-success, so there is no difference), the
/// result is `(0.0, 1.0)`. `kᵢ > nᵢ` is treated as `kᵢ == nᵢ`.
///
/// Reference: A. Agresti (2013), *Categorical Data Analysis*, 3rd ed., §3.1.
pub fn two_proportion_z(k1: u64, n1: u64, k2: u64, n2: u64) -> (f64, f64) {
    if n1 == 0 || n2 == 0 {
        return (0.0, 1.0);
    }
    let (k1, k2) = (k1.min(n1), k2.min(n2));
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let pooled = (k1 + k2) as f64 / (n1f + n2f);
    let var = pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f);
    if var <= 0.0 {
        return (0.0, 1.0);
    }
    let z = (k2 as f64 / n2f - k1 as f64 / n1f) / var.sqrt();
    let p = erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0);
    (z, p)
}

// ---------------------------------------------------------------------------------------------
// Normal distribution: W. J. Cody's erf / erfc
// ---------------------------------------------------------------------------------------------

/// Standard normal CDF, `Φ(x) = ½·erfc(−x/√2)`.
///
/// Computed through [`erfc`] so that the lower tail keeps full relative precision
/// (e.g. `Φ(−10) ≈ 7.6e−24` rather than 0).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Error function `erf(x) = 2/√π ∫₀ˣ e^(−t²) dt`.
///
/// W. J. Cody's rational Chebyshev approximations (see [`erfc`]).
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let y = x.abs();
    if y <= CODY_THRESH {
        erf_small(x)
    } else {
        let r = 1.0 - erfc_pos(y);
        if x < 0.0 {
            -r
        } else {
            r
        }
    }
}

/// Complementary error function `erfc(x) = 1 − erf(x)`, accurate in the tails.
///
/// W. J. Cody's rational Chebyshev approximations (the `CALERF` routine of netlib's SPECFUN),
/// in three ranges of `y = |x|`:
///
/// * `y ≤ 0.46875`: `erf(x) ≈ x·R₁(x²)`, `erfc = 1 − erf`;
/// * `0.46875 < y ≤ 4`: `erfc(y) ≈ e^(−y²)·R₂(y)`;
/// * `y > 4`: `erfc(y) ≈ e^(−y²)/y · (1/√π − y⁻²·R₃(y⁻²))`;
///
/// and `erfc(−y) = 2 − erfc(y)`. `e^(−y²)` is evaluated as `e^(−s²)·e^(−(y−s)(y+s))` with `s`
/// the value of `y` truncated to a multiple of 1/16 (so `s²` is exact), which keeps the rounding
/// of `y²` out of the exponential. Accuracy is close to double precision (the tests check a
/// relative error below 1e−13 against the C library's `erfc`, deep into the tail).
///
/// Reference: W. J. Cody (1969), "Rational Chebyshev approximations for the error function",
/// *Mathematics of Computation* 23(107), 631–637; W. J. Cody (1993), "Algorithm 715: SPECFUN",
/// *ACM TOMS* 19(1), 22–32.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let y = x.abs();
    if y <= CODY_THRESH {
        return 1.0 - erf_small(x);
    }
    let r = erfc_pos(y);
    if x < 0.0 {
        2.0 - r
    } else {
        r
    }
}

// Coefficients of Cody's CALERF, kept digit for digit as published (hence the
// `excessive_precision` allowances: rounding them by hand would only invite typos).
const CODY_THRESH: f64 = 0.46875;
/// Below this, `erf(x) = x·(2/√π)` to double precision (Cody's `XSMALL`).
const CODY_XSMALL: f64 = 1.11e-16;
/// Above this, `erfc(x)` underflows to 0 in double precision (Cody's `XBIG`).
const CODY_XBIG: f64 = 26.543;
/// 1/√π.
#[allow(clippy::excessive_precision)]
const CODY_SQRPI: f64 = 0.564_189_583_547_756_286_95;

#[allow(clippy::excessive_precision)]
const CODY_A: [f64; 5] = [
    3.161_123_743_870_565_6,
    1.138_641_541_510_501_56e2,
    3.774_852_376_853_020_21e2,
    3.209_377_589_138_469_47e3,
    1.857_777_061_846_031_53e-1,
];
#[allow(clippy::excessive_precision)]
const CODY_B: [f64; 4] = [
    2.360_129_095_234_412_09e1,
    2.440_246_379_344_441_73e2,
    1.282_616_526_077_372_28e3,
    2.844_236_833_439_170_62e3,
];
#[allow(clippy::excessive_precision)]
const CODY_C: [f64; 9] = [
    5.641_884_969_886_700_89e-1,
    8.883_149_794_388_375_94,
    6.611_919_063_714_162_95e1,
    2.986_351_381_974_001_31e2,
    8.819_522_212_417_690_90e2,
    1.712_047_612_634_070_58e3,
    2.051_078_377_826_071_47e3,
    1.230_339_354_797_997_25e3,
    2.153_115_354_744_038_46e-8,
];
#[allow(clippy::excessive_precision)]
const CODY_D: [f64; 8] = [
    1.574_492_611_070_983_47e1,
    1.176_939_508_913_124_99e2,
    5.371_811_018_620_098_58e2,
    1.621_389_574_566_690_19e3,
    3.290_799_235_733_459_63e3,
    4.362_619_090_143_247_16e3,
    3.439_367_674_143_721_64e3,
    1.230_339_354_803_749_42e3,
];
#[allow(clippy::excessive_precision)]
const CODY_P: [f64; 6] = [
    3.053_266_349_612_323_44e-1,
    3.603_448_999_498_044_39e-1,
    1.257_817_261_112_292_46e-1,
    1.608_378_514_874_227_66e-2,
    6.587_491_615_298_378_03e-4,
    1.631_538_713_730_209_78e-2,
];
#[allow(clippy::excessive_precision)]
const CODY_Q: [f64; 5] = [
    2.568_520_192_289_822_42,
    1.872_952_849_923_460_47,
    5.279_051_029_514_284_12e-1,
    6.051_834_131_244_131_91e-2,
    2.335_204_976_268_691_85e-3,
];

/// `erf(x)` for `|x| ≤ 0.46875`.
fn erf_small(x: f64) -> f64 {
    let y = x.abs();
    let ysq = if y > CODY_XSMALL { y * y } else { 0.0 };
    let mut num = CODY_A[4] * ysq;
    let mut den = ysq;
    for i in 0..3 {
        num = (num + CODY_A[i]) * ysq;
        den = (den + CODY_B[i]) * ysq;
    }
    x * (num + CODY_A[3]) / (den + CODY_B[3])
}

/// `erfc(y)` for `y > 0.46875`.
fn erfc_pos(y: f64) -> f64 {
    let r = if y <= 4.0 {
        let mut num = CODY_C[8] * y;
        let mut den = y;
        for i in 0..7 {
            num = (num + CODY_C[i]) * y;
            den = (den + CODY_D[i]) * y;
        }
        (num + CODY_C[7]) / (den + CODY_D[7])
    } else {
        if y >= CODY_XBIG {
            return 0.0;
        }
        let ysq = 1.0 / (y * y);
        let mut num = CODY_P[5] * ysq;
        let mut den = ysq;
        for i in 0..4 {
            num = (num + CODY_P[i]) * ysq;
            den = (den + CODY_Q[i]) * ysq;
        }
        let r = ysq * (num + CODY_P[4]) / (den + CODY_Q[4]);
        (CODY_SQRPI - r) / y
    };
    // exp(-y²) = exp(-s²)·exp(-(y-s)(y+s)) with s = trunc(16y)/16.
    let s = (y * 16.0).trunc() / 16.0;
    let del = (y - s) * (y + s);
    (-s * s).exp() * (-del).exp() * r
}

// ---------------------------------------------------------------------------------------------
// Ratio-of-sums estimates over resampling units
// ---------------------------------------------------------------------------------------------

/// A unit of resampling (an article): numerator and denominator sums, e.g.
/// `(loaded sentences, sentences)` or `(sum of probabilities, sentences)`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Unit {
    pub num: f64,
    pub den: f64,
}

impl Unit {
    pub fn new(num: f64, den: f64) -> Self {
        Unit { num, den }
    }
}

/// Ratio estimate `Σ num / Σ den` over units (a sentence-weighted rate when the units are
/// articles). NaN when `Σ den == 0` (including an empty slice).
pub fn ratio(units: &[Unit]) -> f64 {
    let (num, den) = sums(units.iter());
    ratio_of(num, den)
}

fn sums<'a>(units: impl Iterator<Item = &'a Unit>) -> (f64, f64) {
    units.fold((0.0, 0.0), |(n, d), u| (n + u.num, d + u.den))
}

fn ratio_of(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        f64::NAN
    } else {
        num / den
    }
}

/// Ratio of sums over one bootstrap resample: `units.len()` draws with replacement.
fn resample_ratio(units: &[Unit], rng: &mut ChaCha8Rng) -> f64 {
    let n = units.len();
    let (mut num, mut den) = (0.0, 0.0);
    for _ in 0..n {
        let u = &units[rng.gen_range(0..n)];
        num += u.num;
        den += u.den;
    }
    ratio_of(num, den)
}

/// The 2.5th and 97.5th percentiles of the finite values in `stats` (sorted in place).
fn percentile_interval(stats: &mut Vec<f64>) -> Option<(f64, f64)> {
    stats.retain(|v| v.is_finite());
    if stats.is_empty() {
        return None;
    }
    stats.sort_by(f64::total_cmp);
    Some((
        percentile_sorted(stats, 0.025),
        percentile_sorted(stats, 0.975),
    ))
}

/// Percentile bootstrap 95% CI of the ratio of sums [`ratio`] over `units`.
///
/// Units (articles) are resampled with replacement, which respects the clustering of sentences
/// within articles (a sentence-level interval would be too narrow). For each of `reps` resamples
/// of size `n = units.len()` the ratio `Σ num*/Σ den*` is computed; the interval is the 2.5th and
/// 97.5th percentiles of those ratios ([`percentile_sorted`], linear interpolation). Resamples
/// whose denominator sums to zero are skipped.
///
/// Returns `None` when `units.len() < 2` (a single unit always resamples to itself), when
/// `reps == 0`, or when no resample has a non-zero denominator.
///
/// Reference: B. Efron & R. Tibshirani (1993), *An Introduction to the Bootstrap*, ch. 13
/// (percentile intervals), and ch. 9 for resampling clusters.
pub fn bootstrap_ratio_ci(units: &[Unit], reps: usize, seed: u64) -> Option<(f64, f64)> {
    if units.len() < 2 || reps == 0 {
        return None;
    }
    let mut rng = rng(seed);
    let mut stats: Vec<f64> = (0..reps).map(|_| resample_ratio(units, &mut rng)).collect();
    percentile_interval(&mut stats)
}

/// Result of [`diff_test`]: the two ratios, their difference `b − a`, a bootstrap CI of the
/// difference and a permutation p-value.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DiffTest {
    /// [`ratio`] of group a.
    pub a: f64,
    /// [`ratio`] of group b.
    pub b: f64,
    /// `b − a`.
    pub diff: f64,
    /// Percentile bootstrap 95% CI of `b − a`; `None` when either side has fewer than 2 units.
    pub ci: Option<(f64, f64)>,
    /// Two-sided permutation p-value; `None` when too few label assignments exist (see
    /// [`diff_test`]).
    pub p: Option<f64>,
}

/// Difference of ratios `b − a` with a bootstrap CI and a two-sided permutation p-value.
///
/// * **Estimate**: `a = ratio(a)`, `b = ratio(b)`, `diff = b − a`.
/// * **CI**: percentile bootstrap 95% interval; in each of `reps` replicates each side is
///   resampled independently (units with replacement, keeping its size) and `b* − a*` is
///   recorded. `None` when either side has fewer than 2 units (or `reps == 0`). Replicates with
///   a zero denominator on either side are skipped.
/// * **p-value**: the units are pooled and, `reps` times, shuffled and re-split into groups of
///   the original sizes (a random relabelling); with `d*` the permuted difference,
///   `p = (1 + #{|d*| ≥ |diff|}) / (1 + reps)` (Phipson & Smyth 2010: counting the observed
///   labelling keeps the test valid, and `p` is never 0). The comparison allows a relative slack
///   of 1e−12 so that a relabelling equivalent to the observed one is not lost to rounding in
///   the sums; a permuted group with zero denominator counts as extreme (conservative).
///
/// `p` is `None` when the number of distinct label assignments `C(n_a + n_b, n_a)` is below
/// [`MIN_PERMUTATION_ASSIGNMENTS`] (20), e.g. 2 vs 2 (6 assignments) or 1 vs 5 (6): the
/// permutation distribution then has fewer than 20 equally likely points, so the exact p-value
/// can never fall below 1/20 = 0.05 — the test cannot detect anything at the usual level and a
/// Monte-Carlo estimate of it would only look precise. It is also `None` when `reps == 0` or
/// when the observed difference is undefined (a side with zero denominator).
///
/// The bootstrap and the permutations use separate streams (seeds `seed` and a fixed
/// derivation of it), so changing `reps` for one does not shift the other.
///
/// References: B. Efron & R. Tibshirani (1993), *An Introduction to the Bootstrap*, ch. 13 & 15;
/// B. Phipson & G. K. Smyth (2010), "Permutation p-values should never be zero", *Statistical
/// Applications in Genetics and Molecular Biology* 9(1).
pub fn diff_test(a: &[Unit], b: &[Unit], reps: usize, seed: u64) -> DiffTest {
    let ra = ratio(a);
    let rb = ratio(b);
    let diff = rb - ra;

    let ci = if a.len() < 2 || b.len() < 2 || reps == 0 {
        None
    } else {
        let mut rng = rng(seed);
        let mut stats: Vec<f64> = (0..reps)
            .map(|_| {
                let sa = resample_ratio(a, &mut rng);
                let sb = resample_ratio(b, &mut rng);
                sb - sa
            })
            .collect();
        percentile_interval(&mut stats)
    };

    let enough = binomial_at_least(a.len() + b.len(), a.len(), MIN_PERMUTATION_ASSIGNMENTS);
    let p = if !enough || reps == 0 || !diff.is_finite() {
        None
    } else {
        let mut pooled: Vec<Unit> = a.iter().chain(b.iter()).copied().collect();
        let na = a.len();
        let obs = diff.abs();
        let scale = ra.abs().max(rb.abs()).max(obs);
        let threshold = obs - 1e-12 * scale;
        // A distinct stream for the permutations (golden-ratio increment, as in SplitMix64).
        let mut rng = rng(seed ^ 0x9E37_79B9_7F4A_7C15);
        let mut extreme = 0usize;
        for _ in 0..reps {
            pooled.shuffle(&mut rng);
            let (ga, gb) = pooled.split_at(na);
            let d = ratio(gb) - ratio(ga);
            // NaN (a permuted side with zero denominator) counts as extreme.
            if d.is_nan() || d.abs() >= threshold {
                extreme += 1;
            }
        }
        Some((1 + extreme) as f64 / (1 + reps) as f64)
    };

    DiffTest {
        a: ra,
        b: rb,
        diff,
        ci,
        p,
    }
}

/// Whether the binomial coefficient `C(n, k)` is at least `min` (computed exactly, stopping
/// early so that it never overflows).
fn binomial_at_least(n: usize, k: usize, min: u128) -> bool {
    if k > n {
        return min == 0;
    }
    let k = k.min(n - k) as u128;
    let n = n as u128;
    let mut c: u128 = 1;
    for i in 0..k {
        // C(n, i+1) = C(n, i)·(n−i)/(i+1), exact at every step.
        c = c * (n - i) / (i + 1);
        if c >= min {
            return true;
        }
    }
    c >= min
}

// ---------------------------------------------------------------------------------------------
// Distributions and vocabularies
// ---------------------------------------------------------------------------------------------

/// Jensen–Shannon divergence in bits between two discrete distributions.
///
/// Both inputs are normalised to sum to 1 first (so raw counts may be passed); with
/// `m = (p + q)/2`,
///
/// ```text
/// JSD(p‖q) = ½·KL(p‖m) + ½·KL(q‖m),   KL(p‖m) = Σᵢ pᵢ·log₂(pᵢ/mᵢ)   (terms with pᵢ = 0 are 0)
/// ```
///
/// The result lies in `[0, 1]`: 0 for identical distributions, 1 for disjoint supports. A
/// shorter slice is padded with zeros. Returns NaN when either input sums to zero or contains a
/// negative or non-finite entry.
///
/// Reference: J. Lin (1991), "Divergence measures based on the Shannon entropy", *IEEE Trans.
/// Information Theory* 37(1), 145–151.
pub fn jsd(p: &[f64], q: &[f64]) -> f64 {
    let valid = |v: &[f64]| v.iter().all(|x| x.is_finite() && *x >= 0.0);
    if !valid(p) || !valid(q) {
        return f64::NAN;
    }
    let sp: f64 = p.iter().sum();
    let sq: f64 = q.iter().sum();
    if sp <= 0.0 || sq <= 0.0 {
        return f64::NAN;
    }
    let len = p.len().max(q.len());
    let mut total = 0.0;
    for i in 0..len {
        let pi = p.get(i).copied().unwrap_or(0.0) / sp;
        let qi = q.get(i).copied().unwrap_or(0.0) / sq;
        let mi = 0.5 * (pi + qi);
        if pi > 0.0 {
            total += pi * (pi / mi).log2();
        }
        if qi > 0.0 {
            total += qi * (qi / mi).log2();
        }
    }
    (0.5 * total).clamp(0.0, 1.0)
}

/// Per-word result of [`log_odds_dirichlet`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogOdds {
    pub word: String,
    /// Log-odds ratio `δ` (corpus i minus corpus j), natural log.
    pub delta: f64,
    /// `δ / √Var(δ)`.
    pub z: f64,
    /// Count of the word in corpus i.
    pub count_i: u64,
    /// Count of the word in corpus j.
    pub count_j: u64,
}

/// Log-odds ratio with an informative Dirichlet prior ("Fightin' Words").
///
/// For each word `w` with `yᵢ_w`, `yⱼ_w` occurrences in corpora of `nᵢ`, `nⱼ` tokens, and prior
/// pseudo-counts `α_w` with `α₀ = Σ_w α_w` (summed over every positive finite entry of `prior`):
///
/// ```text
/// δ_w = ln[(yᵢ_w + α_w) / (nᵢ + α₀ − yᵢ_w − α_w)] − ln[(yⱼ_w + α_w) / (nⱼ + α₀ − yⱼ_w − α_w)]
/// Var(δ_w) ≈ 1/(yᵢ_w + α_w) + 1/(yⱼ_w + α_w)
/// z_w = δ_w / √Var(δ_w)
/// ```
///
/// (Monroe et al., eqs. 16, 18–20.) Positive `z` marks words characteristic of corpus i.
/// `nᵢ`, `nⱼ` are the totals of `counts_i`, `counts_j`.
///
/// The vocabulary is every word with a positive count in either corpus (a word never observed
/// carries no evidence). A word missing from `prior` gets `α_w = 0`; if that leaves a zero
/// inside a logarithm (the word is absent from one corpus), its log-odds is infinite and the
/// word is omitted — use a prior that covers the vocabulary, such as [`pooled_prior`], to keep
/// every word. The output is sorted by `z` descending, then by word ascending.
///
/// Reference: B. L. Monroe, M. P. Colaresi & K. M. Quinn (2008), "Fightin' Words: Lexical
/// feature selection and evaluation for identifying the content of political conflict",
/// *Political Analysis* 16(4), 372–403.
pub fn log_odds_dirichlet(
    counts_i: &BTreeMap<String, u64>,
    counts_j: &BTreeMap<String, u64>,
    prior: &BTreeMap<String, f64>,
) -> Vec<LogOdds> {
    let positive = |a: f64| a.is_finite() && a > 0.0;
    let n_i: f64 = counts_i.values().map(|&c| c as f64).sum();
    let n_j: f64 = counts_j.values().map(|&c| c as f64).sum();
    let alpha0: f64 = prior.values().copied().filter(|&a| positive(a)).sum();

    let mut vocab: Vec<&String> = counts_i
        .iter()
        .chain(counts_j.iter())
        .filter(|(_, &c)| c > 0)
        .map(|(w, _)| w)
        .collect();
    vocab.sort();
    vocab.dedup();

    let mut out: Vec<LogOdds> = vocab
        .into_iter()
        .filter_map(|w| {
            let ci = counts_i.get(w).copied().unwrap_or(0);
            let cj = counts_j.get(w).copied().unwrap_or(0);
            let a = prior
                .get(w)
                .copied()
                .filter(|&a| positive(a))
                .unwrap_or(0.0);
            let (yi, yj) = (ci as f64 + a, cj as f64 + a);
            let delta = (yi / (n_i + alpha0 - yi)).ln() - (yj / (n_j + alpha0 - yj)).ln();
            let var = 1.0 / yi + 1.0 / yj;
            let z = delta / var.sqrt();
            (delta.is_finite() && z.is_finite()).then(|| LogOdds {
                word: w.clone(),
                delta,
                z,
                count_i: ci,
                count_j: cj,
            })
        })
        .collect();
    out.sort_by(|x, y| y.z.total_cmp(&x.z).then_with(|| x.word.cmp(&y.word)));
    out
}

/// Informative prior for [`log_odds_dirichlet`] from the pooled corpus:
/// `α_w = α₀' · (yᵢ_w + yⱼ_w) / (nᵢ + nⱼ)` with `α₀' = min(alpha0, nᵢ + nⱼ)`.
///
/// `alpha0` is the total prior weight (pseudo-tokens); [`DEFAULT_ALPHA0`] (1000) is a good
/// default. It is capped at the pooled token count so that the prior never outweighs the data
/// it was estimated from (on small corpora a weight of 1000 would shrink every δ towards 0).
/// Only words with a positive pooled count get an entry; empty corpora (or a non-positive or
/// non-finite `alpha0`) give an empty map.
pub fn pooled_prior(
    counts_i: &BTreeMap<String, u64>,
    counts_j: &BTreeMap<String, u64>,
    alpha0: f64,
) -> BTreeMap<String, f64> {
    let mut pooled: BTreeMap<String, u64> = BTreeMap::new();
    for (w, &c) in counts_i.iter().chain(counts_j.iter()) {
        if c > 0 {
            *pooled.entry(w.clone()).or_insert(0) += c;
        }
    }
    let total: f64 = pooled.values().map(|&c| c as f64).sum();
    if total <= 0.0 || !alpha0.is_finite() || alpha0 <= 0.0 {
        return BTreeMap::new();
    }
    let a0 = alpha0.min(total);
    pooled
        .into_iter()
        .map(|(w, c)| (w, a0 * c as f64 / total))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Miscellany
// ---------------------------------------------------------------------------------------------

/// Ranks starting at 1, ties given the average of the ranks they span.
fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]).then(i.cmp(&j)));
    let mut ranks = vec![0.0; v.len()];
    let mut start = 0;
    while start < idx.len() {
        let mut end = start + 1;
        while end < idx.len() && v[idx[end]] == v[idx[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1 ..= end; their mean is (start + 1 + end)/2.
        let r = (start + 1 + end) as f64 / 2.0;
        for &i in &idx[start..end] {
            ranks[i] = r;
        }
        start = end;
    }
    ranks
}

/// Spearman rank correlation: Pearson's correlation of the ranks, ties given average ranks
/// (the same definition as `scipy.stats.spearmanr`).
///
/// ```text
/// ρ = Σ (rxᵢ − r̄x)(ryᵢ − r̄y) / √( Σ (rxᵢ − r̄x)² · Σ (ryᵢ − r̄y)² )
/// ```
///
/// `None` when the slices differ in length, have fewer than 3 pairs, contain a non-finite value,
/// or either side is constant (zero rank variance).
///
/// Reference: C. Spearman (1904), "The proof and measurement of association between two
/// things", *American Journal of Psychology* 15(1).
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 3 {
        return None;
    }
    if x.iter().chain(y.iter()).any(|v| !v.is_finite()) {
        return None;
    }
    let rx = average_ranks(x);
    let ry = average_ranks(y);
    let n = x.len() as f64;
    // The mean rank is (n+1)/2 whatever the ties.
    let mean = (n + 1.0) / 2.0;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        let (dx, dy) = (a - mean, b - mean);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    Some((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// Percentile of an ascending-sorted slice with linear interpolation (numpy's default
/// `method="linear"`): with `h = (n − 1)·q`, the result is
/// `x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])`.
///
/// `q` is a fraction in `[0, 1]` (0.25 for the first quartile), clamped to that range. Returns
/// NaN for an empty slice or a NaN `q`.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    let q = q.clamp(0.0, 1.0);
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = h - lo as f64;
    if frac == 0.0 {
        sorted[lo]
    } else {
        sorted[lo] + frac * (sorted[hi] - sorted[lo])
    }
}

/// Expected calibration error of binary probabilities with `bins` equal-width bins.
///
/// `probs[i]` is the predicted probability that `labels[i]` is true. Predictions are binned by
/// probability (`[0, 1/B), [1/B, 2/B), …, [(B−1)/B, 1]`, probabilities clamped to `[0, 1]`) and
///
/// ```text
/// ECE = Σ_b (n_b / N) · | mean(labels in b) − mean(probs in b) |
/// ```
///
/// i.e. the sample-weighted gap between observed frequency and mean predicted probability.
/// Returns 0.0 for empty input.
///
/// # Panics
/// If `probs` and `labels` differ in length or `bins == 0`.
///
/// Reference: M. P. Naeini, G. F. Cooper & M. Hauskrecht (2015), "Obtaining well calibrated
/// probabilities using Bayesian binning", *AAAI*; C. Guo et al. (2017), "On calibration of
/// modern neural networks", *ICML*.
pub fn ece(probs: &[f64], labels: &[bool], bins: usize) -> f64 {
    assert_eq!(
        probs.len(),
        labels.len(),
        "ece: probs and labels differ in length"
    );
    assert!(bins > 0, "ece: bins must be positive");
    if probs.is_empty() {
        return 0.0;
    }
    let mut count = vec![0usize; bins];
    let mut sum_p = vec![0.0f64; bins];
    let mut sum_y = vec![0.0f64; bins];
    for (&p, &y) in probs.iter().zip(labels) {
        let p = p.clamp(0.0, 1.0);
        let b = ((p * bins as f64) as usize).min(bins - 1);
        count[b] += 1;
        sum_p[b] += p;
        sum_y[b] += if y { 1.0 } else { 0.0 };
    }
    let n = probs.len() as f64;
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| (sum_y[b] - sum_p[b]).abs() / n)
        .sum()
}

#[cfg(test)]
mod tests;
