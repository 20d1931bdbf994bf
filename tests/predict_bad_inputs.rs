//! `detect predict` with awkward inputs: an output folder that holds the inputs (never written
//! over), and an unreadable image among good ones (the good ones are still drawn and written,
//! the failure is listed, the exit code is non-zero).
mod bad_input_support;

use std::path::Path;
use std::time::Duration;

use bad_input_support::{detect_with_deadline, text, write_model, write_png};

const DEADLINE: Duration = Duration::from_secs(180);

#[test]
fn drawing_into_the_input_folder_never_overwrites_an_input() {
    let dir = tempfile::tempdir().unwrap();
    write_model(&dir.path().join("model.safetensors"));
    // `a.png` would be drawn as `a.png`; `a.jpg` as `a-2.png`, which is also an input.
    write_png(&dir.path().join("a.png"));
    write_png(&dir.path().join("a-2.png"));
    std::fs::copy(dir.path().join("a.png"), dir.path().join("a.jpg")).unwrap();
    let originals: Vec<Vec<u8>> = ["a.png", "a.jpg", "a-2.png"]
        .iter()
        .map(|n| std::fs::read(dir.path().join(n)).unwrap())
        .collect();
    let args = [
        "predict",
        "a.png",
        "a.jpg",
        "a-2.png",
        "--weights",
        "model.safetensors",
        "--output",
        ".",
    ];
    let result = detect_with_deadline(&args, dir.path(), DEADLINE);
    assert!(result.status.success(), "{}", text(&result.stderr));
    for (name, before) in ["a.png", "a.jpg", "a-2.png"].iter().zip(&originals) {
        let after = std::fs::read(dir.path().join(name)).unwrap();
        assert!(&after == before, "input `{name}` was overwritten");
    }
    // Three drawings, one per input, none of them an input.
    let mut pngs: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png") && n != "a.png" && n != "a-2.png")
        .collect();
    pngs.sort();
    assert_eq!(pngs.len(), 3, "{pngs:?}");
}

#[test]
fn a_bad_image_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    write_model(&dir.path().join("model.safetensors"));
    write_png(&dir.path().join("good0.png"));
    std::fs::write(dir.path().join("bad.png"), b"not a png").unwrap();
    write_png(&dir.path().join("good1.png"));
    let args = [
        "predict",
        "good0.png",
        "bad.png",
        "missing.png",
        "good1.png",
        "--weights",
        "model.safetensors",
        "--output",
        "drawn",
        "--json",
        "dets.json",
        "--score-threshold",
        "0",
    ];
    let result = detect_with_deadline(&args, dir.path(), DEADLINE);
    let stderr = text(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    for name in ["good0.png", "good1.png"] {
        assert!(
            dir.path().join("drawn").join(name).is_file(),
            "{name} not drawn: {stderr}"
        );
    }
    // The failures are listed at the end, after the good images were handled.
    let summary = stderr
        .rfind("2 of 4 images failed")
        .unwrap_or_else(|| panic!("no failure summary: {stderr}"));
    let tail = &stderr[summary..];
    assert!(
        tail.contains("bad.png") && tail.contains("missing.png"),
        "{stderr}"
    );
    // The JSON holds the good images' detections (one box class, ids 1 and 2 by position).
    let results: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.path().join("dets.json")).unwrap()).unwrap();
    let printed = text(&result.stdout).lines().count();
    assert_eq!(results.len(), printed);
    assert!(text(&result.stdout)
        .lines()
        .all(|l| l.starts_with("good0.png\t") || l.starts_with("good1.png\t")));
    assert!(Path::new(&dir.path().join("dets.json")).is_file());
}
