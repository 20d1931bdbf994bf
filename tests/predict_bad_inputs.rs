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
