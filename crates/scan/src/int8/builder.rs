//! The int8 copy built row by row, in panel order from the first row:
//! [`QuantizedBuilder`] is what a loader feeds while it reads.
//!
//! Why it exists: a loader used to keep every row's codes in one flat array
//! and lay them into panels once the last chunk was in, so the codes were
//! written (and their memory first touched) twice, and the layout pass sat
//! on the load's critical path after the network had gone quiet. Placing
//! each row into its panel as it arrives writes the copy once, while the
//! next chunk is on the wire. The bytes are those
//! [`QuantizedMatrix::from_rows`] lays out for the same rows (a test says so).

use super::{
    kernel::{padded_dim, place_row, PANEL_ROWS},
    QuantizeError, QuantizedMatrix, RowCode, MAX_DIM,
};

/// An int8 copy under construction: rows are appended in order, each with
/// the biased codes and [`RowCode`] that [`RowCode::quantize`] made for it.
#[derive(Debug)]
pub struct QuantizedBuilder {
    /// Codes, panel after panel, from `start` (64-byte aligned); holds
    /// whole panels only, the unused rows of the last one at code 128 (0).
    buf: Vec<u8>,
    start: usize,
    rows: usize,
    dim: usize,
    dim4: usize,
    scales: Vec<f32>,
    residuals: Vec<f32>,
    code_norms: Vec<f32>,
}

impl QuantizedBuilder {
    /// An empty copy of `dim`-long rows, with room for `expected_rows`
    /// reserved up front (more may be pushed; fewer leave the room unused,
    /// never touched).
    ///
    /// # Errors
    /// [`QuantizeError::ZeroDimension`] or [`QuantizeError::DimensionTooLarge`].
    pub fn new(dim: usize, expected_rows: usize) -> Result<Self, QuantizeError> {
        if dim == 0 {
            return Err(QuantizeError::ZeroDimension);
        }
        if dim > MAX_DIM {
            return Err(QuantizeError::DimensionTooLarge { dim, max: MAX_DIM });
        }
        let dim4 = padded_dim(dim);
        let panels = expected_rows.div_ceil(PANEL_ROWS);
        let (buf, start) = aligned_buf(panels.saturating_mul(PANEL_ROWS * dim4));
        let rows_room = panels * PANEL_ROWS;
        Ok(Self {
            buf,
            start,
            rows: 0,
            dim,
            dim4,
            scales: Vec::with_capacity(rows_room),
            residuals: Vec::with_capacity(rows_room),
            code_norms: Vec::with_capacity(rows_room),
        })
    }

    /// Rows pushed so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row: its `dim` biased codes and its [`RowCode`].
    ///
    /// # Errors
    /// [`QuantizeError::NotWholeRows`] when `codes` is not `dim` long (the
    /// row is not appended).
    pub fn push(&mut self, codes: &[u8], code: RowCode) -> Result<(), QuantizeError> {
        if codes.len() != self.dim {
            return Err(QuantizeError::NotWholeRows { len: codes.len(), dim: self.dim });
        }
        let panel_bytes = PANEL_ROWS * self.dim4;
        let r = self.rows % PANEL_ROWS;
        if r == 0 {
            self.open_panel(panel_bytes);
        }
        let panel_start = self.buf.len() - panel_bytes;
        place_row(&mut self.buf[panel_start..], r, codes);
        self.scales.push(code.scale);
        self.residuals.push(code.residual);
        self.code_norms.push(code.code_norm);
        self.rows += 1;
        Ok(())
    }

    /// Adds one panel of code 128 at the end, moving the panels to a new
    /// aligned buffer if the reserved room is used up.
    fn open_panel(&mut self, panel_bytes: usize) {
        if self.buf.capacity() - self.buf.len() < panel_bytes {
            let used = self.buf.len() - self.start;
            let (mut grown, start) = aligned_buf((used + panel_bytes).saturating_mul(2));
            grown.extend_from_slice(&self.buf[self.start..]);
            (self.buf, self.start) = (grown, start);
        }
        self.buf.resize(self.buf.len() + panel_bytes, 128);
    }

    /// The finished copy.
    ///
    /// # Errors
    /// [`QuantizeError::TooManyRows`] past `u32::MAX` rows.
    pub fn finish(self) -> Result<QuantizedMatrix, QuantizeError> {
        let Self { mut buf, mut start, rows, dim, dim4, mut scales, mut residuals, mut code_norms } = self;
        if u32::try_from(rows).is_err() {
            return Err(QuantizeError::TooManyRows { rows });
        }
        // Room reserved for keys that were skipped is given back (a copy,
        // to keep the codes on a cache line), when it is worth a copy.
        let used = buf.len() - start;
        if buf.capacity() - buf.len() > used / 8 + 4096 {
            let (mut exact, exact_start) = aligned_buf(used);
            exact.extend_from_slice(&buf[start..]);
            (buf, start) = (exact, exact_start);
        }
        let padded_rows = rows.div_ceil(PANEL_ROWS) * PANEL_ROWS;
        for lane in [&mut scales, &mut residuals, &mut code_norms] {
            lane.resize(padded_rows, 0.0);
            lane.shrink_to_fit();
        }
        let unbounded_rows = residuals.iter().filter(|r| r.is_infinite()).count();
        Ok(QuantizedMatrix { buf, start, rows, dim, dim4, scales, residuals, code_norms, unbounded_rows })
    }
}

/// An empty buffer with room for `bytes` after a 64-byte boundary, filled
/// up to that boundary, and the boundary's offset.
fn aligned_buf(bytes: usize) -> (Vec<u8>, usize) {
    let mut buf: Vec<u8> = Vec::with_capacity(bytes.saturating_add(63));
    let start = buf.as_ptr().align_offset(64).min(63);
    buf.resize(start, 128);
    (buf, start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::int8::tests::unit_rows;

    /// Every field of two copies, bit for bit.
    fn assert_same_copy(got: &QuantizedMatrix, want: &QuantizedMatrix) {
        assert_eq!((got.len(), got.dim(), got.unbounded_rows()), (want.len(), want.dim(), want.unbounded_rows()));
        assert_eq!(got.panels(), want.panels(), "the codes, panel for panel");
        for (a, b) in
            [(&got.scales, &want.scales), (&got.residuals, &want.residuals), (&got.code_norms, &want.code_norms)]
        {
            assert_eq!(
                a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
        assert_eq!(got.buf.as_ptr().wrapping_add(got.start).align_offset(64), 0, "codes start on a cache line");
    }

    fn build(matrix: &[f32], dim: usize, expected_rows: usize) -> QuantizedMatrix {
        let mut builder = QuantizedBuilder::new(dim, expected_rows).expect("valid dimension");
        let mut codes = Vec::new();
        for row in matrix.chunks_exact(dim) {
            codes.clear();
            let code = RowCode::quantize(row, &mut codes);
            builder.push(&codes, code).expect("a whole row");
        }
        builder.finish().expect("few rows")
    }

    #[test]
    fn rows_pushed_one_by_one_give_the_copy_from_rows_builds() {
        // Arrange: 37 rows (a partial last panel), one outside the bounded
        // range, and a dimension that is not a multiple of 4 (padded codes).
        let (n, dim) = (37, 10);
        let mut matrix = unit_rows(n, dim, 9);
        matrix[3 * dim] = f32::INFINITY;
        let want = QuantizedMatrix::from_rows(&matrix, dim).expect("valid shape");

        for expected_rows in [n, 0, 5, 100_000] {
            // Act: room for all, none, too few (it grows and realigns), far
            // too many (given back at the end).
            let got = build(&matrix, dim, expected_rows);

            // Assert
            assert_eq!(got.unbounded_rows(), 1);
            assert_same_copy(&got, &want);
            assert!(got.heap_bytes() < 2 * want.heap_bytes() + 8192, "room for {expected_rows}: {}", got.heap_bytes());
        }
    }

    #[test]
    fn an_empty_copy_and_a_wrong_row_length_are_told_apart() {
        let empty = QuantizedBuilder::new(8, 100).expect("valid dimension").finish().expect("no rows");
        assert_same_copy(&empty, &QuantizedMatrix::from_rows(&[], 8).expect("no rows"));

        let mut builder = QuantizedBuilder::new(8, 1).expect("valid dimension");
        let code = RowCode::quantize(&[0.5; 8], &mut Vec::new());
        assert_eq!(builder.push(&[128; 7], code), Err(QuantizeError::NotWholeRows { len: 7, dim: 8 }));
        assert!(builder.is_empty(), "a refused row is not appended");
        assert_eq!(QuantizedBuilder::new(0, 1).err(), Some(QuantizeError::ZeroDimension));
        assert_eq!(
            QuantizedBuilder::new(MAX_DIM + 1, 1).err(),
            Some(QuantizeError::DimensionTooLarge { dim: MAX_DIM + 1, max: MAX_DIM })
        );
    }
}
