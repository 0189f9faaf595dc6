//! Every answer of the original service, reproduced over HTTP.

use std::sync::Arc;

use serde_json::Value;

use common::testing::golden_rows as rows;

use crate::helpers::spawn_app;

#[tokio::test]
async fn every_golden_line_is_answered_as_the_original_did() {
    let app = Arc::new(spawn_app().await);
    let mut all = rows(include_str!("../data/figalize_words.tsv"));
    all.extend(rows(include_str!("../data/figalize_phrases.tsv")));
    assert_eq!(all.len(), 4600);

    let workers = 8;
    let chunk = all.len().div_ceil(workers);
    let mut tasks = tokio::task::JoinSet::new();
    for part in all.chunks(chunk).map(<[_]>::to_vec) {
        let app = Arc::clone(&app);
        tasks.spawn(async move {
            let mut wrong = Vec::new();
            for (id, phrase, expected) in part {
                let response = app.figalize(i64::try_from(id).unwrap(), phrase).await;
                assert_eq!(response.status(), 200, "{phrase:?}");
                let body: Value = response.json().await.unwrap();
                if body["data"] != expected {
                    wrong.push(format!("{id} {phrase:?}: {} != {expected:?}", body["data"]));
                }
            }
            wrong
        });
    }
    let mut wrong = Vec::new();
    while let Some(result) = tasks.join_next().await {
        wrong.extend(result.unwrap());
    }
    assert!(
        wrong.is_empty(),
        "{} lines differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
