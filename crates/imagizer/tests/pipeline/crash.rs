//! imagizer killed in the middle of a batch loses no job.

use std::time::Duration;

use common::testing::{start_binary, wait_until_async_within};

use crate::helpers::{Lane, file_of, phrase};

const BINARY: &str = env!("CARGO_BIN_EXE_imagizer");
const JOBS: usize = 200;

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_in_the_middle_of_200_jobs_then_a_restart_stores_all_200() {
    let lane = Lane::new();
    lane.create_topics().await;
    let lane = &lane;
    futures_util::future::join_all(
        (0..JOBS).map(|n| async move { lane.publish(&phrase(n)).await }),
    )
    .await;
    let env = lane.imagizer_env();
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    vars.push(("IMAGIZER_PARALLELISM", "2"));

    let first = start_binary(BINARY, &vars);
    wait_until_async_within("the first images", Duration::from_mins(1), || async {
        !lane.objects().await.is_empty()
    })
    .await;
    first.kill();
    let stored_at_kill = lane.objects().await.len();
    assert!(
        stored_at_kill < JOBS,
        "killed mid-batch: {stored_at_kill} of {JOBS} done"
    );

    let second = start_binary(BINARY, &vars);
    wait_until_async_within("all images", Duration::from_mins(2), || async {
        lane.objects().await.len() == JOBS
    })
    .await;
    let expected: std::collections::BTreeSet<String> =
        (0..JOBS).map(|n| file_of(&phrase(n))).collect();
    assert_eq!(lane.objects().await, expected);
    let status = second.terminate();
    assert!(status.success(), "exit status {status}");
    // SIGTERM committed everything that was done.
    assert_eq!(lane.committed(), i64::try_from(JOBS).unwrap());

    // So a new consumer in the group redoes nothing.
    let third = start_binary(BINARY, &vars);
    lane.publish(&phrase(JOBS)).await;
    wait_until_async_within("one more image", Duration::from_mins(1), || async {
        lane.objects().await.len() == JOBS + 1
    })
    .await;
    let metrics = reqwest::get(format!("http://{}/metrics", third.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let jobs = |outcome: &str| {
        let prefix = format!("figachechnaya_imagizer_jobs_total{{outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix}"))
            .to_owned()
    };
    assert_eq!(jobs("rendered"), "1");
    assert_eq!(jobs("skipped"), "0", "no job done before SIGTERM came back");
    assert!(third.terminate().success());
}
