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
    aligned_buf, aligned_buf_in, aligned_capacity, checked_dim4,
    kernel::{place_row, PANEL_ROWS},
    QuantizeError, QuantizedMatrix, RowCode,
};

/// An int8 copy under construction: rows are appended in order, each with
/// the biased codes and [`RowCode`] that [`RowCode::quantize`] made for it.
#[derive(Debug)]
pub struct QuantizedBuilder {
    /// The copy so far, as [`QuantizedMatrix`] keeps it, except that `buf`
    /// may have room for more panels, the per-row lanes hold one entry per
    /// row pushed (padded to whole panels by [`Self::finish`]) and
    /// `unbounded_rows` is counted there.
    copy: QuantizedMatrix,
}

impl QuantizedBuilder {
    /// An empty copy of `dim`-long rows, with room for `expected_rows`
    /// reserved up front (more may be pushed; fewer leave the room unused,
    /// never touched).
    ///
    /// # Errors
    /// [`QuantizeError::ZeroDimension`] or [`QuantizeError::DimensionTooLarge`].
    pub fn new(dim: usize, expected_rows: usize) -> Result<Self, QuantizeError> {
        Self::new_in(dim, expected_rows, |_| None)
    }

    /// [`Self::new`], with the codes written into the buffer `spare`
    /// returns when asked for the bytes the copy needs (it may return
    /// `None`, or a buffer too small, which is then dropped).
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn new_in(
        dim: usize,
        expected_rows: usize,
        spare: impl FnOnce(usize) -> Option<Vec<u8>>,
    ) -> Result<Self, QuantizeError> {
        let dim4 = checked_dim4(dim)?;
        let panels = expected_rows.div_ceil(PANEL_ROWS);
        let bytes = panels.saturating_mul(PANEL_ROWS * dim4);
        let (buf, start) = aligned_buf_in(spare(aligned_capacity(bytes)).unwrap_or_default(), bytes);
        let rows_room = panels * PANEL_ROWS;
        let copy = QuantizedMatrix {
            buf,
            start,
            rows: 0,
            dim,
            dim4,
            scales: Vec::with_capacity(rows_room),
            residuals: Vec::with_capacity(rows_room),
            code_norms: Vec::with_capacity(rows_room),
            unbounded_rows: 0,
        };
        Ok(Self { copy })
    }

    /// Rows pushed so far.
    pub fn len(&self) -> usize {
        self.copy.rows
    }

    pub fn is_empty(&self) -> bool {
        self.copy.rows == 0
    }

    /// Appends one row: its `dim` biased codes and its [`RowCode`].
    ///
    /// # Errors
    /// [`QuantizeError::NotWholeRows`] when `codes` is not `dim` long (the
    /// row is not appended).
    pub fn push(&mut self, codes: &[u8], code: RowCode) -> Result<(), QuantizeError> {
        let c = &mut self.copy;
        if codes.len() != c.dim {
            return Err(QuantizeError::NotWholeRows { len: codes.len(), dim: c.dim });
        }
        let panel_bytes = PANEL_ROWS * c.dim4;
        let r = c.rows % PANEL_ROWS;
        if r == 0 {
            self.open_panel(panel_bytes);
        }
        let c = &mut self.copy;
        let panel_start = c.buf.len() - panel_bytes;
        place_row(&mut c.buf[panel_start..], r, codes);
        c.scales.push(code.scale);
        c.residuals.push(code.residual);
        c.code_norms.push(code.code_norm);
        c.rows += 1;
        Ok(())
    }

    /// Adds one panel of code 128 at the end, moving the panels to a new
    /// aligned buffer if the reserved room is used up.
    fn open_panel(&mut self, panel_bytes: usize) {
        let c = &mut self.copy;
        if c.buf.capacity() - c.buf.len() < panel_bytes {
            let used = c.buf.len() - c.start;
            let (mut grown, start) = aligned_buf((used + panel_bytes).saturating_mul(2));
            grown.extend_from_slice(&c.buf[c.start..]);
            (c.buf, c.start) = (grown, start);
        }
        c.buf.resize(c.buf.len() + panel_bytes, 128);
    }

    /// The finished copy.
    ///
    /// # Errors
    /// [`QuantizeError::TooManyRows`] past `u32::MAX` rows.
    pub fn finish(self) -> Result<QuantizedMatrix, QuantizeError> {
        let mut c = self.copy;
        if u32::try_from(c.rows).is_err() {
            return Err(QuantizeError::TooManyRows { rows: c.rows });
        }
        // Room reserved for keys that were skipped is given back (a copy,
        // to keep the codes on a cache line), when it is worth a copy.
        let used = c.buf.len() - c.start;
        if c.buf.capacity() - c.buf.len() > used / 8 + 4096 {
            let (mut exact, start) = aligned_buf(used);
            exact.extend_from_slice(&c.buf[c.start..]);
            (c.buf, c.start) = (exact, start);
        }
        let padded_rows = c.rows.div_ceil(PANEL_ROWS) * PANEL_ROWS;
        for lane in [&mut c.scales, &mut c.residuals, &mut c.code_norms] {
            lane.resize(padded_rows, 0.0);
            lane.shrink_to_fit();
        }
        c.unbounded_rows = c.residuals.iter().filter(|r| r.is_infinite()).count();
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::int8::{tests::unit_rows, MAX_DIM};

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
        push_all(QuantizedBuilder::new(dim, expected_rows).expect("valid dimension"), matrix, dim)
    }

    /// Pushes every row of `matrix` as a loader does, and finishes.
    fn push_all(mut builder: QuantizedBuilder, matrix: &[f32], dim: usize) -> QuantizedMatrix {
        let mut codes = Vec::new();
        for row in matrix.chunks_exact(dim) {
            codes.clear();
            let code = RowCode::quantize(row, &mut codes);
            builder.push(&codes, code).expect("a whole row");
        }
        builder.finish().expect("few rows")
    }

    /// 37 rows (a partial last panel), one outside the bounded range, and a
    /// dimension that is not a multiple of 4 (padded codes); and their copy.
    fn awkward_rows() -> (Vec<f32>, usize, QuantizedMatrix) {
        let (n, dim) = (37, 10);
        let mut matrix = unit_rows(n, dim, 9);
        matrix[3 * dim] = f32::INFINITY;
        let want = QuantizedMatrix::from_rows(&matrix, dim).expect("valid shape");
        (matrix, dim, want)
    }

    #[test]
    fn rows_pushed_one_by_one_give_the_copy_from_rows_builds() {
        let (matrix, dim, want) = awkward_rows();
        let n = matrix.len() / dim;

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

    /// A copy written into a retired copy's buffer (every byte of it
    /// dirty) equals a fresh one bit for bit, and is written in place
    /// exactly when the buffer has the room.
    #[test]
    fn a_copy_written_into_a_used_buffer_is_the_fresh_copy() {
        let (matrix, dim, want) = awkward_rows();
        let n = matrix.len() / dim;
        let mut asked = 0;
        let _ = QuantizedBuilder::new_in(dim, n, |bytes| {
            asked = bytes;
            None
        })
        .expect("valid dimension");
        assert!(asked >= n * 12 + 63, "asks for the codes and the alignment: {asked}");
        for cap in [asked - 1, asked, 3 * asked] {
            let dirty = vec![0x55u8; cap];
            let ptr = dirty.as_ptr();
            let builder = QuantizedBuilder::new_in(dim, n, |_| Some(dirty)).expect("valid dimension");
            assert_eq!(
                builder.copy.buf.as_ptr() == ptr,
                cap >= asked,
                "in place exactly when it fits: {cap} of {asked}"
            );
            assert_same_copy(&push_all(builder, &matrix, dim), &want);
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
