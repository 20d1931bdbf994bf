use super::*;
use std::time::Duration;

fn touch(path: &Path, age_seconds: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(age_seconds))
        .unwrap();
}

#[test]
fn picks_the_most_recent_final_model() {
    let dir = tempfile::tempdir().unwrap();
    touch(&dir.path().join("runs/b-old/model_final.safetensors"), 3600);
    touch(&dir.path().join("runs/a-new/model_final.safetensors"), 10);
    touch(
        &dir.path()
            .join("runs/c-unfinished/model_0000100.safetensors"),
        0,
    );
    let found = find_latest_model(dir.path()).unwrap();
    assert_eq!(found, dir.path().join("runs/a-new/model_final.safetensors"));
}

#[test]
fn no_model_is_an_error_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    touch(&dir.path().join("runs/x/model_0000100.safetensors"), 0);
    let message = find_latest_model(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains("runs/*/model_final.safetensors"),
        "{message}"
    );
    assert!(
        message.contains("hint:") && message.contains("--weights"),
        "{message}"
    );
}
