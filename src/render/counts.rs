//! The table `store copy` and `merge` end with: per kind of record, how many the source held,
//! how many were copied, and how many the destination held already.

use comfy_table::Cell;

use super::eval::lines;
use super::table::plain_table;
use super::theme::Theme;

/// One row per kind: `(kind, [in source, copied, already there])`.
pub fn counts_table(rows: &[(&str, [u64; 3])], theme: &Theme) -> String {
    let mut table = plain_table(theme, &["KIND", "IN SOURCE", "COPIED", "ALREADY THERE"]);
    for (kind, [source, copied, there]) in rows {
        table.add_row(vec![
            Cell::new(kind),
            Cell::new(source),
            Cell::new(copied),
            Cell::new(there),
        ]);
    }
    lines(table, 1..4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_right_aligned_under_their_headers() {
        let text = counts_table(
            &[("traces", [1200, 700, 500]), ("spans", [9, 0, 9])],
            &Theme::plain(),
        );
        assert_eq!(
            text,
            "KIND    IN SOURCE  COPIED  ALREADY THERE\n\
             traces       1200     700            500\n\
             spans           9       0              9\n"
        );
    }
}
