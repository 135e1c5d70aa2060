//! The table `store copy` and `merge` end with: per kind of record, how many the source held,
//! how many were copied, and how many the destination held already.

use super::table::{Column, Grid};
use super::theme::Theme;

/// One row per kind: `(kind, [in source, copied, already there])`. Four short columns: it fits
/// any width agentrace renders to (40 and up).
pub fn counts_table(rows: &[(&str, [u64; 3])], theme: &Theme, width: usize) -> String {
    let mut grid = Grid::new(
        theme,
        vec![
            Column::left("KIND"),
            Column::right("IN SOURCE"),
            Column::right("COPIED"),
            Column::right("ALREADY THERE"),
        ],
    );
    for (kind, [source, copied, there]) in rows {
        grid.row(vec![
            (*kind).into(),
            source.to_string().into(),
            copied.to_string().into(),
            there.to_string().into(),
        ]);
    }
    grid.render(width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_right_aligned_under_their_headers() {
        let text = counts_table(
            &[("traces", [1200, 700, 500]), ("spans", [9, 0, 9])],
            &Theme::plain(),
            80,
        );
        assert_eq!(
            text,
            "KIND    IN SOURCE  COPIED  ALREADY THERE\n\
             traces       1200     700            500\n\
             spans           9       0              9\n"
        );
    }
}
