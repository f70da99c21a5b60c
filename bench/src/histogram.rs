//! A fixed-size log-linear latency histogram (about 1.6 % resolution, any `u64` value).
//!
//! Values below 128 are kept exactly; above, each power of two is split into 64 buckets and
//! a percentile reports the middle of its bucket. The maximum is kept exactly.

const LINEAR: u64 = 128;
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = LINEAR as usize + (64 - 7) * SUB as usize;

/// Counts of recorded values (for example latencies in microseconds).
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    /// Records one value.
    pub fn record(&mut self, value: u64) {
        self.counts[bucket_of(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value recorded, 0 if none.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0.0..=1.0), 0 if nothing was recorded.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_middle(bucket).min(self.max);
            }
        }
        self.max
    }
}

fn bucket_of(value: u64) -> usize {
    if value < LINEAR {
        return value as usize;
    }
    let exp = 63 - value.leading_zeros();
    let mantissa = value >> (exp - SUB_BITS);
    LINEAR as usize + (exp as usize - 7) * SUB as usize + (mantissa - SUB) as usize
}

fn bucket_middle(bucket: usize) -> u64 {
    if bucket < LINEAR as usize {
        return bucket as u64;
    }
    let offset = bucket - LINEAR as usize;
    let exp = (offset / SUB as usize) as u32 + 7;
    let mantissa = (offset % SUB as usize) as u64 + SUB;
    let shift = exp - SUB_BITS;
    let low = mantissa << shift;
    low + ((1u64 << shift) - 1) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_128_and_within_two_percent_above() {
        for v in [0u64, 1, 100, 127] {
            assert_eq!(bucket_middle(bucket_of(v)), v);
        }
        for v in [128u64, 129, 1000, 12_345, 999_999, 1 << 40, u64::MAX] {
            let m = bucket_middle(bucket_of(v));
            let err = (m as f64 - v as f64).abs() / v as f64;
            assert!(err < 0.02, "{v} -> {m}");
        }
        assert!(bucket_of(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles_of_one_to_a_thousand() {
        let mut h = Histogram::new();
        for v in 1..=1000u64 {
            h.record(v);
        }
        assert_eq!(h.count(), 1000);
        assert_eq!(h.max(), 1000);
        for (q, want) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.02, "q{q}: {got}");
        }
        assert_eq!(h.quantile(1.0), 1000);
        assert_eq!(Histogram::new().quantile(0.5), 0);
    }
}
