//! The tests' one source of arbitrary numbers: a xorshift64 generator, so
//! the crate's tests need no RNG dependency and every run sees the same
//! values for the same seed.

/// xorshift64 (13, 7, 17). A zero state would stay zero, so the seed's low
/// bit is forced on.
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// Spreads small seeds (0, 1, 2, …) over the state space first.
    pub(crate) fn spread(seed: u64) -> Self {
        Self::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut s = self.0;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        self.0 = s;
        s
    }

    /// A value in [-1, 1) with 24 random bits.
    pub(crate) fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// `n` values of [`Self::unit`].
    pub(crate) fn units(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.unit()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::XorShift;

    #[test]
    fn values_stay_in_range_and_differ_by_seed() {
        let a = XorShift::new(1).units(1000);
        assert!(a.iter().all(|v| (-1.0..1.0).contains(v)));
        assert_ne!(a, XorShift::new(2).units(1000));
        assert_eq!(a, XorShift::new(1).units(1000));
    }
}
