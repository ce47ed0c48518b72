//! Unit length: the one invariant every row and every query vector shares,
//! so a dot product is the cosine. Stored rows are scaled once here (at
//! load or update), query vectors once per request; the scan never divides.

use thiserror::Error;

/// Why a vector has no direction to search with.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
pub enum NotUnit {
    /// No components at all.
    #[error("the vector is empty")]
    Empty,
    /// Every component is zero.
    #[error("the vector is all zeros")]
    Zero,
    /// The norm overflowed (or a component was not finite).
    #[error("the vector's norm is not finite")]
    NonFinite,
}

/// Scales `v` to unit length in place, computing the norm in f64 so the
/// result is the correctly rounded unit vector for any f32 input.
///
/// # Errors
/// [`NotUnit`]: `v` is left unchanged.
pub fn scale_to_unit(v: &mut [f32]) -> Result<(), NotUnit> {
    if v.is_empty() {
        return Err(NotUnit::Empty);
    }
    // In eight partial sums, so the loop vectorises instead of waiting on
    // one f64 add per component (a load scales every row).
    let norm = semsearch_scan::int8::quantize::sum_of_squares(v).sqrt();
    if norm == 0.0 {
        return Err(NotUnit::Zero);
    }
    if !norm.is_finite() {
        return Err(NotUnit::NonFinite);
    }
    for x in v.iter_mut() {
        *x = (f64::from(*x) / norm) as f32;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_to_unit_length_and_refuses_what_has_no_direction() {
        let mut v = [3.0, 4.0];
        scale_to_unit(&mut v).expect("has a norm");
        assert_eq!(v, [0.6, 0.8]);
        assert_eq!(scale_to_unit(&mut []), Err(NotUnit::Empty));
        let mut zero = [0.0, -0.0];
        assert_eq!(scale_to_unit(&mut zero), Err(NotUnit::Zero));
        let mut inf = [f32::INFINITY, 1.0];
        assert_eq!(scale_to_unit(&mut inf), Err(NotUnit::NonFinite));
        assert_eq!(inf, [f32::INFINITY, 1.0], "left unchanged");
    }
}
