//! Unit tests for [`super`], against textbook / hand-worked / numpy-scipy reference values.

use super::*;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

fn assert_close(a: f64, b: f64, tol: f64) {
    assert!(close(a, b, tol), "{a} != {b} (tol {tol})");
}

fn assert_rel(a: f64, b: f64, rel: f64) {
    assert!(
        (a - b).abs() <= rel * b.abs(),
        "{a:e} != {b:e} (relative tolerance {rel:e})"
    );
}

fn units(pairs: &[(f64, f64)]) -> Vec<Unit> {
    pairs.iter().map(|&(n, d)| Unit::new(n, d)).collect()
}

// --- Wilson ---------------------------------------------------------------------------------

#[test]
fn wilson_textbook_values() {
    // Agresti & Coull (1998); reference values from the closed form with z = 1.959964.
    let (lo, hi) = wilson(5, 10);
    assert_close(lo, 0.2366, 5e-5);
    assert_close(hi, 0.7634, 5e-5);
    assert_close(lo, 0.236_593_089_011_479_4, 1e-12);
    assert_close(hi, 0.763_406_910_988_520_6, 1e-12);

    let (lo, hi) = wilson(0, 10);
    assert_eq!(lo, 0.0);
    assert_close(hi, 0.2775, 5e-5);
    assert_close(hi, 0.277_532_803_026_057_7, 1e-12);

    let (lo, hi) = wilson(10, 10);
    assert_close(lo, 0.7225, 5e-5);
    assert_close(lo, 0.722_467_196_973_942_1, 1e-12);
    assert_eq!(hi, 1.0);

    let (lo, hi) = wilson(1, 20);
    assert_close(lo, 0.008_881_448_702_335_523, 1e-12);
    assert_close(hi, 0.236_131_195_464_281_2, 1e-12);
}

#[test]
fn wilson_edge_cases() {
    assert_eq!(wilson(0, 0), (0.0, 1.0));
    assert_eq!(wilson(12, 10), wilson(10, 10));
    // Symmetry: the interval for k failures mirrors the one for k successes.
    let (lo, hi) = wilson(3, 17);
    let (lo2, hi2) = wilson(14, 17);
    assert_close(lo, 1.0 - hi2, 1e-12);
    assert_close(hi, 1.0 - lo2, 1e-12);
}

// --- normal distribution ------------------------------------------------------------------

#[test]
fn normal_cdf_known_values() {
    assert_close(normal_cdf(1.96), 0.975002, 1e-6);
    assert_close(normal_cdf(-1.0), 0.158655, 1e-6);
    assert_eq!(normal_cdf(0.0), 0.5);
    // Reference values: Python's math.erfc (double precision).
    let refs = [
        (1.96, 0.975_002_104_851_779_5),
        (-1.0, 0.158_655_253_931_457_07),
        (0.3, 0.617_911_422_188_952_6),
        (-0.3, 0.382_088_577_811_047_4),
        (0.5, 0.691_462_461_274_013_1),
        (2.5, 0.993_790_334_674_223_8),
        (-3.0, 0.001_349_898_031_630_095_7),
        (5.0, 0.999_999_713_348_428_1),
        (6.0, 0.999_999_999_013_412_3),
    ];
    for (x, want) in refs {
        assert_close(normal_cdf(x), want, 1e-15);
    }
    // The lower tail keeps relative precision.
    let tails = [
        (-8.0, 6.220_960_574_271_819e-16),
        (-10.0, 7.619_853_024_160_593e-24),
        (-20.0, 2.753_624_118_606_331_4e-89),
        (-30.0, 4.906_713_927_148_764e-198),
    ];
    for (x, want) in tails {
        assert_rel(normal_cdf(x), want, 1e-13);
    }
    assert_eq!(normal_cdf(38.0), 1.0);
    assert_eq!(normal_cdf(f64::INFINITY), 1.0);
    assert_eq!(normal_cdf(f64::NEG_INFINITY), 0.0);
    assert!(normal_cdf(f64::NAN).is_nan());
}

#[test]
fn erf_erfc_across_cody_ranges() {
    // (x, erfc(x), erf(x)) from Python's math module; the x values straddle Cody's range
    // boundaries 0.46875 and 4.
    let refs = [
        (0.1, 0.887_537_083_981_715_2, 0.112_462_916_018_284_9),
        (0.46875, 0.507_386_526_782_062, 0.492_613_473_217_937_97),
        (0.47, 0.506_254_949_113_917_9, 0.493_745_050_886_082_1),
        (1.0, 0.157_299_207_050_285_13, 0.842_700_792_949_714_9),
        (2.0, 0.004_677_734_981_047_265, 0.995_322_265_018_952_7),
        (3.9, 3.479_224_859_723_177e-8, 0.999_999_965_207_751_4),
        (4.0, 1.541_725_790_028_002e-8, 0.999_999_984_582_742_1),
        (4.1, 6.700_027_654_084_918e-9, 0.999_999_993_299_972_4),
        (10.0, 2.088_487_583_762_545e-45, 1.0),
        (26.0, 5.663_192_408_856_143e-296, 1.0),
    ];
    for (x, c, e) in refs {
        assert_rel(erfc(x), c, 1e-13);
        assert_close(erf(x), e, 1e-15);
        assert_close(erf(-x), -e, 1e-15);
        assert_close(erfc(-x), 2.0 - c, 1e-15);
    }
    assert_eq!(erf(0.0), 0.0);
    assert_eq!(erfc(0.0), 1.0);
    assert_eq!(erfc(30.0), 0.0);
    assert_eq!(erfc(-30.0), 2.0);
    assert_close(erf(1e-20), 1e-20 * 2.0 * CODY_SQRPI, 1e-35);
}

// --- proportions ----------------------------------------------------------------------------

#[test]
fn two_proportion_z_known_case() {
    // 45/100 vs 60/100: pooled p = 0.525, se = sqrt(0.525·0.475·0.02) = 0.0706223...,
    // z = 0.15/se = 2.12398, p = 0.03367 (scipy/statsmodels proportions_ztest gives the same).
    let (z, p) = two_proportion_z(45, 100, 60, 100);
    assert_close(z, 2.123_976_976_214_365_7, 1e-12);
    assert_close(p, 0.033_672_068_856_345_876, 1e-12);
    // Sign is second minus first; p is symmetric.
    let (z2, p2) = two_proportion_z(60, 100, 45, 100);
    assert_close(z2, -z, 1e-12);
    assert_close(p2, p, 1e-15);
    // 30/50 vs 20/50: z = -2 exactly in theory, p = 0.0455.
    let (z, p) = two_proportion_z(30, 50, 20, 50);
    assert_close(z, -2.0, 1e-12);
    assert_close(p, 0.045_500_263_896_358_47, 1e-12);
}

#[test]
fn two_proportion_z_degenerate() {
    assert_eq!(two_proportion_z(0, 0, 3, 10), (0.0, 1.0));
    assert_eq!(two_proportion_z(0, 10, 0, 20), (0.0, 1.0));
    assert_eq!(two_proportion_z(10, 10, 20, 20), (0.0, 1.0));
    let (z, p) = two_proportion_z(5, 10, 10, 20);
    assert_eq!(z, 0.0);
    assert_eq!(p, 1.0);
}

#[test]
fn cohens_h_values() {
    // 2·asin(√0.6) − 2·asin(√0.4) = 0.402715841580661...
    assert_close(cohens_h(0.4, 0.6), 0.402_715_841_580_661_54, 1e-12);
    assert_close(cohens_h(0.6, 0.4), -0.402_715_841_580_661_54, 1e-12);
    assert_close(cohens_h(0.0, 1.0), std::f64::consts::PI, 1e-12);
    assert_eq!(cohens_h(0.3, 0.3), 0.0);
}

// --- ratio and bootstrap ----------------------------------------------------------------------

#[test]
fn ratio_is_ratio_of_sums() {
    // (1/2 + 9/10 averaged would be 0.7; the ratio of sums is 10/12.)
    let u = units(&[(1.0, 2.0), (9.0, 10.0)]);
    assert_close(ratio(&u), 10.0 / 12.0, 1e-15);
    assert!(ratio(&[]).is_nan());
    assert!(ratio(&units(&[(0.0, 0.0)])).is_nan());
}

/// Deterministic pseudo-random units with rate around 0.3 and varying lengths.
fn synthetic_units(n: usize, seed: u64) -> Vec<Unit> {
    let mut r = rng(seed);
    (0..n)
        .map(|_| {
            let den = r.gen_range(5..40) as f64;
            let rate: f64 = r.gen_range(0.1..0.5);
            Unit::new((den * rate).round(), den)
        })
        .collect()
}

#[test]
fn bootstrap_ci_contains_estimate_and_shrinks() {
    let small = synthetic_units(10, 1);
    let large = synthetic_units(400, 1);
    let (lo_s, hi_s) = bootstrap_ratio_ci(&small, 2000, 7).unwrap();
    let (lo_l, hi_l) = bootstrap_ratio_ci(&large, 2000, 7).unwrap();
    let (est_s, est_l) = (ratio(&small), ratio(&large));
    assert!(lo_s < est_s && est_s < hi_s, "{lo_s} {est_s} {hi_s}");
    assert!(lo_l < est_l && est_l < hi_l, "{lo_l} {est_l} {hi_l}");
    // Width scales like 1/√n: 40x the units should give roughly 1/6 of the width.
    assert!(
        hi_l - lo_l < 0.4 * (hi_s - lo_s),
        "{lo_s}-{hi_s} vs {lo_l}-{hi_l}"
    );
}

#[test]
fn bootstrap_ci_deterministic_and_seed_dependent() {
    let u = synthetic_units(30, 3);
    let a = bootstrap_ratio_ci(&u, 500, 11).unwrap();
    let b = bootstrap_ratio_ci(&u, 500, 11).unwrap();
    assert_eq!(a.0.to_bits(), b.0.to_bits());
    assert_eq!(a.1.to_bits(), b.1.to_bits());
    let c = bootstrap_ratio_ci(&u, 500, 12).unwrap();
    assert_ne!(a, c);
}

#[test]
fn bootstrap_ci_too_few_units() {
    assert_eq!(bootstrap_ratio_ci(&[], 100, 1), None);
    assert_eq!(bootstrap_ratio_ci(&units(&[(1.0, 3.0)]), 100, 1), None);
    assert_eq!(
        bootstrap_ratio_ci(&units(&[(1.0, 3.0), (2.0, 3.0)]), 0, 1),
        None
    );
    // All denominators zero: no resample is defined.
    assert_eq!(
        bootstrap_ratio_ci(&units(&[(0.0, 0.0), (0.0, 0.0)]), 100, 1),
        None
    );
    // Constant rate: the interval collapses onto it.
    let (lo, hi) =
        bootstrap_ratio_ci(&units(&[(1.0, 4.0), (2.0, 8.0), (3.0, 12.0)]), 200, 1).unwrap();
    assert_close(lo, 0.25, 1e-15);
    assert_close(hi, 0.25, 1e-15);
}

// --- diff test --------------------------------------------------------------------------------

#[test]
fn diff_test_identical_groups() {
    let a = units(&[(2.0, 10.0); 8]);
    let t = diff_test(&a, &a, 2000, 5);
    assert_eq!(t.diff, 0.0);
    assert!(t.p.unwrap() > 0.5, "{t:?}");
    let (lo, hi) = t.ci.unwrap();
    assert!(lo <= 0.0 && 0.0 <= hi);

    // Same distribution, different units: still no evidence of a difference.
    let a = synthetic_units(12, 21);
    let t = diff_test(&a, &a, 2000, 5);
    assert!(t.p.unwrap() > 0.5, "{t:?}");
}

#[test]
fn diff_test_separated_groups() {
    let a = units(&[
        (1.0, 10.0),
        (2.0, 12.0),
        (1.0, 9.0),
        (0.0, 8.0),
        (1.0, 11.0),
        (2.0, 10.0),
        (1.0, 10.0),
        (1.0, 7.0),
    ]);
    let b = units(&[
        (9.0, 10.0),
        (10.0, 12.0),
        (8.0, 9.0),
        (7.0, 8.0),
        (9.0, 11.0),
        (9.0, 10.0),
        (8.0, 10.0),
        (6.0, 7.0),
    ]);
    let t = diff_test(&a, &b, 2000, 42);
    assert_close(t.a, 9.0 / 77.0, 1e-15);
    assert_close(t.b, 66.0 / 77.0, 1e-15);
    assert_close(t.diff, 57.0 / 77.0, 1e-15);
    let p = t.p.unwrap();
    assert!(p < 0.01, "{t:?}");
    assert!(p >= 1.0 / 2001.0);
    let (lo, hi) = t.ci.unwrap();
    assert!(0.0 < lo && lo < t.diff && t.diff < hi, "{t:?}");

    // Swapping the groups flips the sign and keeps |diff| and the p-value's meaning.
    let s = diff_test(&b, &a, 2000, 42);
    assert_close(s.diff, -t.diff, 1e-15);
    assert!(s.p.unwrap() < 0.01);
}

#[test]
fn diff_test_same_seed_same_result() {
    let a = synthetic_units(9, 100);
    let b = synthetic_units(11, 200);
    let t1 = diff_test(&a, &b, 999, 3);
    let t2 = diff_test(&a, &b, 999, 3);
    assert_eq!(t1, t2);
    let bits = |t: &DiffTest| {
        let (lo, hi) = t.ci.unwrap();
        (lo.to_bits(), hi.to_bits(), t.p.unwrap().to_bits())
    };
    assert_eq!(bits(&t1), bits(&t2));
    assert_ne!(diff_test(&a, &b, 999, 4), t1);
}

#[test]
fn diff_test_small_groups() {
    let a = units(&[(1.0, 5.0), (2.0, 5.0)]);
    let b = units(&[(3.0, 5.0), (4.0, 5.0)]);
    // 2 vs 2: C(4,2) = 6 assignments, p-value withheld; CI still available.
    let t = diff_test(&a, &b, 500, 1);
    assert_eq!(t.p, None);
    assert!(t.ci.is_some());
    // 1 vs 5: C(6,1) = 6 assignments, and a single unit has no CI.
    let one = units(&[(1.0, 5.0)]);
    let five = units(&[(1.0, 5.0); 5]);
    let t = diff_test(&one, &five, 500, 1);
    assert_eq!(t.p, None);
    assert_eq!(t.ci, None);
    // 3 vs 3: C(6,3) = 20 assignments, enough.
    let a3 = units(&[(1.0, 5.0), (2.0, 5.0), (1.0, 5.0)]);
    let b3 = units(&[(3.0, 5.0), (4.0, 5.0), (4.0, 5.0)]);
    assert!(diff_test(&a3, &b3, 500, 1).p.is_some());
    // An empty side: the difference is undefined.
    let t = diff_test(&[], &b3, 500, 1);
    assert!(t.diff.is_nan());
    assert_eq!((t.ci, t.p), (None, None));
}

/// Exact two-sided permutation p-value by enumerating all C(n, na) relabellings.
fn exact_permutation_p(a: &[Unit], b: &[Unit]) -> f64 {
    let pooled: Vec<Unit> = a.iter().chain(b).copied().collect();
    let n = pooled.len();
    let obs = (ratio(b) - ratio(a)).abs();
    let (mut extreme, mut total) = (0u32, 0u32);
    for mask in 0u32..(1 << n) {
        if mask.count_ones() as usize != a.len() {
            continue;
        }
        let ga: Vec<Unit> = (0..n)
            .filter(|i| mask >> i & 1 == 1)
            .map(|i| pooled[i])
            .collect();
        let gb: Vec<Unit> = (0..n)
            .filter(|i| mask >> i & 1 == 0)
            .map(|i| pooled[i])
            .collect();
        total += 1;
        if (ratio(&gb) - ratio(&ga)).abs() >= obs - 1e-12 {
            extreme += 1;
        }
    }
    extreme as f64 / total as f64
}

#[test]
fn diff_test_p_matches_exact_permutation_distribution() {
    let a = units(&[(2.0, 10.0), (3.0, 9.0), (1.0, 12.0), (4.0, 10.0)]);
    let b = units(&[(4.0, 10.0), (5.0, 11.0), (3.0, 8.0), (6.0, 12.0)]);
    let exact = exact_permutation_p(&a, &b); // over C(8,4) = 70 relabellings
    let mc = diff_test(&a, &b, 20_000, 9).p.unwrap();
    // Monte-Carlo standard error is at most 0.5/√20000 ≈ 0.0035.
    assert!((mc - exact).abs() < 0.015, "mc {mc} exact {exact}");
    assert!(exact > 0.01 && exact < 0.5, "exact {exact}");
}

#[test]
fn binomial_threshold() {
    assert!(!binomial_at_least(4, 2, 20)); // 6
    assert!(binomial_at_least(6, 3, 20)); // 20
    assert!(!binomial_at_least(5, 2, 20)); // 10
    assert!(binomial_at_least(7, 2, 20)); // 21
    assert!(!binomial_at_least(19, 1, 20)); // 19
    assert!(binomial_at_least(20, 1, 20)); // 20
    assert!(!binomial_at_least(100, 0, 20)); // 1
    assert!(binomial_at_least(1000, 500, 20)); // no overflow
}

// --- JSD ----------------------------------------------------------------------------------------

#[test]
fn jsd_known_values() {
    assert_eq!(jsd(&[0.2, 0.3, 0.5], &[0.2, 0.3, 0.5]), 0.0);
    assert_close(jsd(&[1.0, 0.0], &[0.0, 1.0]), 1.0, 1e-15);
    assert_close(
        jsd(&[0.5, 0.5, 0.0, 0.0], &[0.0, 0.0, 0.3, 0.7]),
        1.0,
        1e-15,
    );
    // m = (0.75, 0.25); KL(p‖m) = ½log₂(2/3) + ½log₂2 = 0.2075187...,
    // KL(q‖m) = log₂(4/3) = 0.4150375...; JSD = ½(0.2075187 + 0.4150375) = 0.3112781.
    let v = jsd(&[0.5, 0.5], &[1.0, 0.0]);
    assert_close(v, 0.311_278, 1e-6);
    let exact = 0.5 * (0.5 * (2.0f64 / 3.0).log2() + 0.5 + (4.0f64 / 3.0).log2());
    assert_close(v, exact, 1e-15);
    // Symmetric, normalises counts, pads with zeros.
    assert_eq!(jsd(&[1.0, 0.0], &[0.5, 0.5]), v);
    assert_close(jsd(&[3.0, 3.0], &[7.0]), v, 1e-15);
}

#[test]
fn jsd_invalid_inputs() {
    assert!(jsd(&[0.0, 0.0], &[1.0]).is_nan());
    assert!(jsd(&[], &[1.0]).is_nan());
    assert!(jsd(&[-1.0, 2.0], &[1.0, 1.0]).is_nan());
    assert!(jsd(&[f64::NAN, 1.0], &[1.0, 1.0]).is_nan());
}

// --- log-odds ("Fightin' Words") ------------------------------------------------------------

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|&(w, c)| (w.to_string(), c)).collect()
}

#[test]
fn log_odds_worked_example() {
    // Corpus i: a×3, b×1        → nᵢ = 4
    // Corpus j: a×1, b×3, c×2   → nⱼ = 6
    // Prior:    α_a = 1, α_b = 1, α_c = 2   → α₀ = 4
    //
    // word a: i: (3+1)/(4+4−3−1) = 4/4 = 1        → ln = 0
    //         j: (1+1)/(6+4−1−1) = 2/8 = 0.25     → ln = −1.3862943611198906
    //         δ = 0 − (−1.3862943611198906) = 1.3862943611198906 (= ln 4)
    //         Var = 1/4 + 1/2 = 0.75; z = ln4/√0.75 = 1.6007548451372582
    // word b: i: (1+1)/(4+4−1−1) = 2/6            → ln(1/3) = −1.0986122886681098
    //         j: (3+1)/(6+4−3−1) = 4/6            → ln(2/3) = −0.4054651081081644
    //         δ = −0.6931471805599454 (= −ln 2)
    //         Var = 1/2 + 1/4 = 0.75; z = −0.8003774225686293
    // word c: i: (0+2)/(4+4−0−2) = 2/6, j: (2+2)/(6+4−2−2) = 4/6 → δ = −ln 2,
    //         Var = 1/2 + 1/4 = 0.75 → the same z as b; the tie is broken by word: b before c.
    let ci = counts(&[("a", 3), ("b", 1)]);
    let cj = counts(&[("a", 1), ("b", 3), ("c", 2)]);
    let prior: BTreeMap<String, f64> = [("a", 1.0), ("b", 1.0), ("c", 2.0)]
        .iter()
        .map(|&(w, a)| (w.to_string(), a))
        .collect();
    let out = log_odds_dirichlet(&ci, &cj, &prior);
    let words: Vec<&str> = out.iter().map(|r| r.word.as_str()).collect();
    assert_eq!(words, ["a", "b", "c"]);

    assert_close(out[0].delta, 1.386_294_361_119_890_6, 1e-9);
    assert_close(out[0].z, 1.600_754_845_137_258_2, 1e-9);
    assert_eq!((out[0].count_i, out[0].count_j), (3, 1));

    assert_close(out[1].delta, -0.693_147_180_559_945_4, 1e-9);
    assert_close(out[1].z, -0.800_377_422_568_629_3, 1e-9);
    assert_eq!((out[1].count_i, out[1].count_j), (1, 3));

    assert_close(out[2].delta, -0.693_147_180_559_945_4, 1e-9);
    assert_close(out[2].z, -0.800_377_422_568_629_3, 1e-9);
    assert_eq!((out[2].count_i, out[2].count_j), (0, 2));
}

#[test]
fn log_odds_without_prior_drops_infinite_words() {
    // No prior: a: ln(2/1) − ln(1/2) = ln 4; b: ln(1/2) − ln(1/2) = 0; c is absent from
    // corpus i, so its log-odds is −∞ and it is omitted.
    let ci = counts(&[("a", 2), ("b", 1)]);
    let cj = counts(&[("a", 1), ("b", 1), ("c", 1), ("zero", 0)]);
    let out = log_odds_dirichlet(&ci, &cj, &BTreeMap::new());
    let words: Vec<&str> = out.iter().map(|r| r.word.as_str()).collect();
    assert_eq!(words, ["a", "b"]);
    assert_close(out[0].delta, 4f64.ln(), 1e-12);
    assert_close(out[0].z, 4f64.ln() / 1.5f64.sqrt(), 1e-12);
    assert_eq!(out[1].delta, 0.0);
}

#[test]
fn pooled_prior_caps_alpha0() {
    let ci = counts(&[("a", 3), ("b", 1)]);
    let cj = counts(&[("a", 1), ("b", 3), ("c", 2), ("zero", 0)]);
    // Pooled: a 4, b 4, c 2 (total 10). alpha0 = 1000 is capped at 10: α = pooled counts.
    let p = pooled_prior(&ci, &cj, DEFAULT_ALPHA0);
    assert_eq!(p.len(), 3);
    assert_close(p["a"], 4.0, 1e-12);
    assert_close(p["b"], 4.0, 1e-12);
    assert_close(p["c"], 2.0, 1e-12);
    // alpha0 = 5 < 10: α = 5 · relative frequency.
    let p = pooled_prior(&ci, &cj, 5.0);
    assert_close(p["a"], 2.0, 1e-12);
    assert_close(p["c"], 1.0, 1e-12);
    assert!(pooled_prior(&BTreeMap::new(), &BTreeMap::new(), 10.0).is_empty());
    assert!(pooled_prior(&ci, &cj, 0.0).is_empty());

    // With a pooled prior every observed word is kept.
    let out = log_odds_dirichlet(&ci, &cj, &pooled_prior(&ci, &cj, DEFAULT_ALPHA0));
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].word, "a");
    assert!(out.windows(2).all(|w| w[0].z >= w[1].z));
}

// --- Spearman -----------------------------------------------------------------------------------

#[test]
fn spearman_with_ties() {
    // x = [1, 2, 2, 3, 4] → ranks [1, 2.5, 2.5, 4, 5]
    // y = [1, 3, 2, 4, 4] → ranks [1, 3, 2, 4.5, 4.5]
    // Both rank means are 3; deviations dx = [−2, −½, −½, 1, 2], dy = [−2, 0, −1, 1.5, 1.5].
    // Σdx·dy = 4 + 0 + ½ + 1.5 + 3 = 9, Σdx² = 9.5, Σdy² = 9.5 → ρ = 9/9.5 = 18/19
    // = 0.9473684210526315 (what scipy.stats.spearmanr returns).
    let rho = spearman(&[1.0, 2.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0, 4.0]).unwrap();
    assert_close(rho, 18.0 / 19.0, 1e-12);
}

#[test]
fn spearman_monotone_and_degenerate() {
    let x = [0.1, 0.5, 0.2, 9.0];
    let y = [1.0, 25.0, 4.0, 1e6];
    assert_close(spearman(&x, &y).unwrap(), 1.0, 1e-15);
    let neg: Vec<f64> = y.iter().map(|v| -v).collect();
    assert_close(spearman(&x, &neg).unwrap(), -1.0, 1e-15);
    // Without ties: 1 − 6Σd²/(n(n²−1)) with ranks [1,2,3,4,5] vs [2,1,4,3,5]: Σd² = 4 → 0.8.
    let rho = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0]).unwrap();
    assert_close(rho, 0.8, 1e-12);
    assert_eq!(spearman(&[1.0, 2.0], &[1.0, 2.0]), None);
    assert_eq!(spearman(&[1.0, 2.0, 3.0], &[1.0, 2.0]), None);
    assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
    assert_eq!(spearman(&[1.0, f64::NAN, 3.0], &[1.0, 2.0, 3.0]), None);
}

// --- percentile ---------------------------------------------------------------------------------

#[test]
fn percentile_matches_numpy_linear() {
    let v = [1.0, 2.0, 3.0, 4.0];
    // numpy.percentile([1,2,3,4], [0, 25, 50, 90, 100]) = [1, 1.75, 2.5, 3.7, 4]
    assert_eq!(percentile_sorted(&v, 0.25), 1.75);
    assert_eq!(percentile_sorted(&v, 0.5), 2.5);
    assert_close(percentile_sorted(&v, 0.9), 3.7, 1e-12);
    assert_eq!(percentile_sorted(&v, 0.0), 1.0);
    assert_eq!(percentile_sorted(&v, 1.0), 4.0);
    assert_eq!(percentile_sorted(&v, 1.5), 4.0);
    assert_eq!(percentile_sorted(&[7.0], 0.3), 7.0);
    assert!(percentile_sorted(&[], 0.5).is_nan());
}

// --- ECE ------------------------------------------------------------------------------------------

#[test]
fn ece_hand_example() {
    // 2 bins. Bin [0, 0.5): probs 0.1, 0.2 (mean 0.15), labels F, T (freq 0.5) → gap 0.35,
    // weight 2/5 → 0.14. Bin [0.5, 1]: probs 0.6, 0.8, 0.9 (mean 0.7667), labels T, T, F
    // (freq 0.6667) → gap 0.1, weight 3/5 → 0.06. ECE = 0.20.
    let probs = [0.1, 0.2, 0.6, 0.8, 0.9];
    let labels = [false, true, true, true, false];
    assert_close(ece(&probs, &labels, 2), 0.2, 1e-12);
    // A single bin only compares the overall mean (0.52) with the base rate (0.6).
    assert_close(ece(&probs, &labels, 1), 0.08, 1e-12);
}

#[test]
fn ece_edges() {
    // Perfectly calibrated within bins.
    let probs = [0.25, 0.25, 0.25, 0.25, 1.0];
    let labels = [true, false, false, false, true];
    assert_close(ece(&probs, &labels, 4), 0.0, 1e-15);
    // p = 1.0 lands in the last bin, p = 0 in the first.
    assert_close(ece(&[0.0, 1.0], &[true, false], 10), 1.0, 1e-15);
    assert_eq!(ece(&[], &[], 10), 0.0);
}

#[test]
#[should_panic]
fn ece_length_mismatch_panics() {
    ece(&[0.5], &[true, false], 10);
}

// --- serialisation --------------------------------------------------------------------------------

#[test]
fn result_structs_serialise() {
    let t = DiffTest {
        a: 0.25,
        b: 0.5,
        diff: 0.25,
        ci: Some((0.1, 0.4)),
        p: None,
    };
    let s = serde_json::to_string(&t).unwrap();
    assert_eq!(
        s,
        r#"{"a":0.25,"b":0.5,"diff":0.25,"ci":[0.1,0.4],"p":null}"#
    );
    let u: Unit = serde_json::from_str(r#"{"num":1.0,"den":4.0}"#).unwrap();
    assert_eq!(u, Unit::new(1.0, 4.0));
    let l = LogOdds {
        word: "x".into(),
        delta: 1.0,
        z: 2.0,
        count_i: 3,
        count_j: 4,
    };
    assert!(serde_json::to_string(&l).unwrap().contains(r#""word":"x""#));
}
