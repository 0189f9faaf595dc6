//! Helpers for the services' tests (feature `testing`).

use std::path::Path;

/// Compares `value` with the JSON snapshot at `path`; with `UPDATE_SNAPSHOTS=1` rewrites it.
///
/// Snapshots make every change of a public contract (an OpenAPI document) visible in review.
pub fn assert_snapshot(value: &serde_json::Value, path: &str) {
    let rendered = serde_json::to_string_pretty(value).expect("JSON renders") + "\n";
    let path = Path::new(path);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("a file has a folder")).expect("mkdir");
        std::fs::write(path, &rendered).expect("snapshot written");
        return;
    }
    let stored = std::fs::read_to_string(path).unwrap_or_else(|err| {
        panic!(
            "no snapshot at {} ({err}); run the tests with UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    assert!(
        stored == rendered,
        "{} differs from what the service serves now; review the change and run the tests \
         with UPDATE_SNAPSHOTS=1 to accept it.\n--- now ---\n{rendered}",
        path.display()
    );
}
