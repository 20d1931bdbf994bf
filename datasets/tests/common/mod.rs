//! Shared by the integration tests that read the real COCO subsets.
use std::path::PathBuf;

/// `../shared/data` beside the checkout, or None (the test is skipped) when it is absent; under
/// `CI=true` its absence fails the test.
pub fn shared_data() -> Option<PathBuf> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data"));
    if root.is_dir() {
        return Some(root);
    }
    eprintln!("shared data missing at {}", root.display());
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "shared data is required in CI"
    );
    eprintln!("skipped");
    None
}
