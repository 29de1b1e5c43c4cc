//! Order statistics of measured durations.

use std::time::Duration;

/// The `q`-quantile (0 ≤ q ≤ 1) by the nearest-rank method; `None` when empty.
pub fn quantile(samples: &[Duration], q: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_list(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let samples = ms_list(&[5, 1, 4, 2, 3]);
        assert_eq!(quantile(&samples, 0.5), Some(Duration::from_millis(3)));
        assert_eq!(quantile(&samples, 0.0), Some(Duration::from_millis(1)));
        assert_eq!(quantile(&samples, 1.0), Some(Duration::from_millis(5)));
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(
            quantile(&ms_list(&hundred), 0.99),
            Some(Duration::from_millis(99))
        );
        assert_eq!(quantile(&[], 0.5), None);
    }
}
