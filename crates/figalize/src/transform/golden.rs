//! Every answer the original service gave, reproduced through the library.

use common::phrase::Phrase;
use common::testing::golden_rows as rows;

use super::figalize;
use crate::scheme::Schemes;

fn check(tsv: &str, expected_rows: usize) {
    let schemes = Schemes::builtin();
    let rows = rows(tsv);
    assert_eq!(rows.len(), expected_rows);
    let wrong: Vec<_> = rows
        .iter()
        .filter_map(|&(id, phrase, expected)| {
            let got = figalize(&Phrase::parse(phrase).unwrap(), schemes.get(id).unwrap());
            (got != expected).then(|| format!("{id} {phrase:?}: {got:?} != {expected:?}"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} rows differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn every_golden_word_is_reproduced() {
    check(include_str!("../../tests/data/figalize_words.tsv"), 4000);
}

#[test]
fn every_golden_phrase_is_reproduced() {
    check(include_str!("../../tests/data/figalize_phrases.tsv"), 600);
}
