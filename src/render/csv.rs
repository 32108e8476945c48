//! `measurements.csv`: the tidy table as CSV, with a fixed float format so the file is
//! byte-identical wherever it is written.

use polars::prelude::*;

/// Writes the table as CSV: a header, then one row per record, floats in scientific notation
/// with six digits after the point.
pub fn write_csv(df: &mut DataFrame, out: &mut Vec<u8>) -> PolarsResult<()> {
    CsvWriter::new(out)
        .include_header(true)
        .with_float_scientific(Some(true))
        .with_float_precision(Some(6))
        .finish(df)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_header_and_fixed_float_format() {
        let mut df = df!(
            "machine_id" => ["a", "b"],
            "center_s" => [Some(2.0f64), None],
        )
        .unwrap();
        let mut csv = Vec::new();
        write_csv(&mut df, &mut csv).unwrap();
        let text = String::from_utf8(csv).unwrap();
        assert_eq!(text, "machine_id,center_s\na,2.000000e0\nb,\n");
    }
}
