//! The statistics that say whether experiment B is better than experiment A on a scorer.
//!
//! Cases are paired by id: each case ran in both, so what is compared is the change per case,
//! which removes the spread between easy and hard cases from the noise.
//!
//! - **Scores** (any number, higher is better): the mean of B − A over the paired cases, with a
//!   95% percentile bootstrap interval ([`RESAMPLES`] resamples of the cases, drawn by a
//!   generator with a fixed seed, so the same experiments always give the same interval).
//! - **Pass/fail**: McNemar's exact test on the cases that changed (passed in one, failed in
//!   the other): under "no difference" each change is a coin flip, so the two-sided p-value is
//!   the binomial tail of the smaller count, doubled.
//!
//! The verdict is "better" or "worse" only when the interval leaves zero (or p < 0.05) in that
//! direction; with fewer than [`MIN_PAIRS`] paired cases there is no verdict at all: a bootstrap
//! of two cases gives an interval that only looks precise.

/// How many bootstrap resamples an interval is drawn from.
pub const RESAMPLES: usize = 10_000;
/// The generator's seed: fixed, so a comparison is reproducible.
pub const SEED: u64 = 0x5eed_a6e7_7ace_2026;
/// The fewest paired cases that get a verdict.
pub const MIN_PAIRS: usize = 5;
/// The significance level of the verdicts (the interval is the matching 95% one).
pub const ALPHA: f64 = 0.05;

/// A mean change with its confidence interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

/// What a comparison says about B against A.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Better,
    Worse,
    /// The data cannot tell them apart.
    Indistinguishable,
    /// Fewer than [`MIN_PAIRS`] paired cases.
    TooFew,
}

impl Verdict {
    /// The plain words of a report: "B is better than A".
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Indistinguishable => "not distinguishable",
            Verdict::TooFew => "too few paired cases to tell",
        }
    }
}

/// The mean of `diffs` (B − A per case) and its 95% percentile bootstrap interval; `None` for
/// no cases or a non-finite change.
pub fn paired_bootstrap(diffs: &[f64], resamples: usize, seed: u64) -> Option<Interval> {
    if diffs.is_empty() || resamples == 0 || diffs.iter().any(|d| !d.is_finite()) {
        return None;
    }
    let n = diffs.len();
    let mean = diffs.iter().sum::<f64>() / n as f64;
    let mut rng = SplitMix64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| {
            let sum: f64 = (0..n).map(|_| diffs[rng.below(n)]).sum();
            sum / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    Some(Interval {
        mean,
        low: quantile(&means, ALPHA / 2.0),
        high: quantile(&means, 1.0 - ALPHA / 2.0),
    })
}

/// The verdict of a score interval over `pairs` cases.
pub fn score_verdict(interval: &Interval, pairs: usize) -> Verdict {
    if pairs < MIN_PAIRS {
        Verdict::TooFew
    } else if interval.low > 0.0 {
        Verdict::Better
    } else if interval.high < 0.0 {
        Verdict::Worse
    } else {
        Verdict::Indistinguishable
    }
}

/// McNemar's exact two-sided p-value for `regressed` cases (passed in A, failed in B) and
/// `improved` ones (failed in A, passed in B).
pub fn mcnemar_exact(regressed: u64, improved: u64) -> f64 {
    let n = regressed + improved;
    if n == 0 {
        return 1.0;
    }
    let k = regressed.min(improved);
    // P(X <= k) for X ~ Binomial(n, 1/2), summed in log space: 0.5^n underflows past n = 1074.
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut terms = Vec::with_capacity(k as usize + 1);
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        terms.push(ln_choose + ln_half_n);
    }
    let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let tail = top.exp() * terms.iter().map(|t| (t - top).exp()).sum::<f64>();
    (2.0 * tail).min(1.0)
}

/// The verdict of a pass/fail scorer over `pairs` cases.
pub fn pass_verdict(regressed: u64, improved: u64, pairs: usize) -> Verdict {
    if pairs < MIN_PAIRS {
        Verdict::TooFew
    } else if mcnemar_exact(regressed, improved) >= ALPHA || regressed == improved {
        Verdict::Indistinguishable
    } else if improved > regressed {
        Verdict::Better
    } else {
        Verdict::Worse
    }
}

/// The `q` quantile of sorted values, interpolated between the two nearest ranks.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let below = pos.floor() as usize;
    let above = pos.ceil() as usize;
    sorted[below] + (sorted[above] - sorted[below]) * (pos - below as f64)
}

/// SplitMix64: small, fast and fully specified here, so an interval does not change when a
/// dependency changes its generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-40 for any dataset).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 30 paired cases: B scores 0.1 higher on most, lower on a few.
    fn diffs() -> Vec<f64> {
        (0..30)
            .map(|i| match i % 6 {
                0 => -0.2,
                1 | 2 => 0.0,
                3 => 0.1,
                4 => 0.3,
                _ => 0.2,
            })
            .collect()
    }

    #[test]
    fn the_interval_is_the_naive_bootstrap_and_close_to_the_normal_one() {
        let d = diffs();
        let got = paired_bootstrap(&d, RESAMPLES, SEED).unwrap();
        // The same procedure written out plainly, with its own copy of the generator.
        let mut state = SEED;
        let mut next = || {
            state = state.wrapping_add(0x9e3779b97f4a7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
            z ^ (z >> 31)
        };
        let mut means = Vec::new();
        for _ in 0..RESAMPLES {
            let mut sum = 0.0;
            for _ in 0..d.len() {
                let i = ((next() as u128 * d.len() as u128) >> 64) as usize;
                sum += d[i];
            }
            means.push(sum / d.len() as f64);
        }
        means.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let at = |q: f64| {
            let pos = q * (means.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            means[lo] + (means[hi] - means[lo]) * (pos - lo as f64)
        };
        assert_eq!(got.low, at(0.025));
        assert_eq!(got.high, at(0.975));
        // The mean is 1/15, and the normal interval mean ± 1.96·s/√n is close to the bootstrap's.
        let n = d.len() as f64;
        let mean = d.iter().sum::<f64>() / n;
        assert!((got.mean - mean).abs() < 1e-12 && (mean - 1.0 / 15.0).abs() < 1e-12);
        let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let half = 1.96 * (var / n).sqrt();
        assert!((got.low - (mean - half)).abs() < 0.2 * half, "{got:?}");
        assert!((got.high - (mean + half)).abs() < 0.2 * half, "{got:?}");
        assert_eq!(score_verdict(&got, d.len()), Verdict::Better);
    }

    #[test]
    fn the_same_seed_gives_the_same_interval_and_zero_change_is_no_change() {
        let d = diffs();
        assert_eq!(paired_bootstrap(&d, 2000, 7), paired_bootstrap(&d, 2000, 7));
        let zero = paired_bootstrap(&[0.0; 20], RESAMPLES, SEED).unwrap();
        assert_eq!((zero.low, zero.high), (0.0, 0.0));
        assert_eq!(score_verdict(&zero, 20), Verdict::Indistinguishable);
        let worse: Vec<f64> = d.iter().map(|x| -x).collect();
        let worse = paired_bootstrap(&worse, RESAMPLES, SEED).unwrap();
        assert_eq!(score_verdict(&worse, 30), Verdict::Worse);
        assert_eq!(paired_bootstrap(&[], 10, 1), None);
        assert_eq!(paired_bootstrap(&[f64::NAN], 10, 1), None);
        let two = paired_bootstrap(&[1.0, 1.0], RESAMPLES, SEED).unwrap();
        assert_eq!(score_verdict(&two, 2), Verdict::TooFew);
    }

    /// The two-sided exact p-value from whole-number binomial coefficients.
    fn exact(b: u64, c: u64) -> f64 {
        let n = b + c;
        let choose = |k: u64| -> u128 {
            (0..k).fold(1u128, |acc, i| acc * u128::from(n - i) / u128::from(i + 1))
        };
        let tail: u128 = (0..=b.min(c)).map(choose).sum();
        (2.0 * tail as f64 / 2f64.powi(n as i32)).min(1.0)
    }

    #[test]
    fn mcnemar_matches_the_binomial_tail_computed_exactly() {
        for (b, c) in [
            (0, 0),
            (1, 0),
            (2, 8),
            (8, 2),
            (3, 3),
            (0, 10),
            (5, 20),
            (12, 30),
        ] {
            let got = mcnemar_exact(b, c);
            let want = if b + c == 0 { 1.0 } else { exact(b, c) };
            assert!((got - want).abs() < 1e-12, "({b}, {c}): {got} vs {want}");
        }
        // Known values: 10 changes all one way gives p = 2/1024.
        assert!((mcnemar_exact(0, 10) - 2.0 / 1024.0).abs() < 1e-15);
        assert_eq!(mcnemar_exact(3, 3), 1.0);
        // Large counts neither underflow nor overflow.
        let p = mcnemar_exact(2000, 2200);
        assert!(p > 0.0 && p < 0.01, "{p}");
        assert_eq!(pass_verdict(0, 10, 40), Verdict::Better);
        assert_eq!(pass_verdict(10, 0, 40), Verdict::Worse);
        assert_eq!(pass_verdict(2, 4, 40), Verdict::Indistinguishable);
        assert_eq!(pass_verdict(0, 3, 3), Verdict::TooFew);
    }
}
