//! Summaries of measured durations: percentiles and rounding for the JSON report.

use serde::Serialize;
use std::time::Duration;

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Serialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile.
    pub p999_ms: Option<f64>,
    /// Largest sample.
    pub max_ms: Option<f64>,
}

impl Percentiles {
    /// Summarizes `nanos` (durations in nanoseconds), sorting it in place.
    pub fn from_nanos(nanos: &mut [u64]) -> Self {
        nanos.sort_unstable();
        let ms = |q| nearest_rank(nanos, q).map(|ns| round3(ns as f64 / 1e6));
        Percentiles {
            count: nanos.len(),
            p50_ms: ms(0.50),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: nanos.last().map(|&ns| round3(ns as f64 / 1e6)),
        }
    }
}

/// The sample at quantile `q` of `sorted` by the nearest-rank method; `None` when empty.
fn nearest_rank(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A duration as nanoseconds, saturating (a sample longer than 584 years is not expected).
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `x` rounded to three decimals, so the report stays readable.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `numerator / denominator` rounded, or `None` when the denominator is not positive (for
/// example no server CPU tick elapsed during a very short run).
pub fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| round3(numerator / denominator))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<u64> = (1..=1000).rev().map(|i| i * 1_000_000).collect();
        let p = Percentiles::from_nanos(&mut v);
        assert_eq!(p.count, 1000);
        assert_eq!(p.p50_ms, Some(500.0));
        assert_eq!(p.p99_ms, Some(990.0));
        assert_eq!(p.p999_ms, Some(999.0));
        assert_eq!(p.max_ms, Some(1000.0));
    }

    #[test]
    fn empty_and_single_samples() {
        assert_eq!(Percentiles::from_nanos(&mut []).p50_ms, None);
        let p = Percentiles::from_nanos(&mut [1_500_000]);
        assert_eq!((p.p50_ms, p.p999_ms), (Some(1.5), Some(1.5)));
    }

    #[test]
    fn ratio_needs_a_positive_denominator() {
        assert_eq!(ratio(10.0, 0.0), None);
        assert_eq!(ratio(10.0, 4.0), Some(2.5));
    }
}
