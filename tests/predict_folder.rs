//! `detect predict FOLDER` (issue 13): every .jpg/.jpeg/.png directly inside, in name order,
//! decoded on a second thread while the model runs; an empty folder is an error; a bad file
//! among good ones is reported and the others still run; images/s is printed at the end.
mod bad_input_support;

use std::path::Path;
use std::time::Duration;

use bad_input_support::{detect_with_deadline, text, write_model, write_png};

const DEADLINE: Duration = Duration::from_secs(180);

/// The file names of the printed detection lines, each once, in the order first printed.
fn printed_files(stdout: &str) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    for line in stdout.lines() {
        let file = line.split('\t').next().unwrap().to_string();
        if files.last() != Some(&file) {
            files.push(file);
        }
    }
    files
}

fn drawn(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn predict_runs_on_the_images_of_a_folder_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    write_model(&dir.path().join("model.safetensors"));
    let images = dir.path().join("images");
    std::fs::create_dir_all(images.join("sub")).unwrap();
    // Written out of order; `c.JPG` holds PNG bytes (formats are told apart by content).
    for name in ["b.png", "c.JPG", "a.png", "sub/d.png"] {
        write_png(&images.join(name));
    }
    std::fs::write(images.join("notes.txt"), "not an image").unwrap();
    let args = [
        "predict",
        "images",
        "--weights",
        "model.safetensors",
        "--output",
        "drawn",
        "--score-threshold",
        "0",
    ];
    let result = detect_with_deadline(&args, dir.path(), DEADLINE);
    let stderr = text(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    // Name order; the upper-case extension still counts as an image.
    assert_eq!(
        printed_files(&text(&result.stdout)),
        ["a.png", "b.png", "c.JPG"],
        "{stderr}"
    );
    assert_eq!(
        drawn(&dir.path().join("drawn")),
        ["a.png", "b.png", "c.png"]
    );
    assert!(
        stderr.contains("3 images in") && stderr.contains("images/s"),
        "{stderr}"
    );
}

#[test]
fn an_empty_folder_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    write_model(&dir.path().join("model.safetensors"));
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    std::fs::write(dir.path().join("empty/readme.txt"), "no images here").unwrap();
    let args = ["predict", "empty", "--weights", "model.safetensors"];
    let result = detect_with_deadline(&args, dir.path(), DEADLINE);
    let stderr = text(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the folder `empty` holds no .jpg, .jpeg or .png file"),
        "{stderr}"
    );
}

#[test]
fn a_bad_file_in_a_folder_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    write_model(&dir.path().join("model.safetensors"));
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    write_png(&images.join("a.png"));
    std::fs::write(images.join("b.png"), b"not a png").unwrap();
    write_png(&images.join("c.png"));
    let args = [
        "predict",
        "images",
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
    assert_eq!(drawn(&dir.path().join("drawn")), ["a.png", "c.png"]);
    let summary = stderr
        .rfind("1 of 3 images failed")
        .unwrap_or_else(|| panic!("no failure summary: {stderr}"));
    assert!(stderr[summary..].contains("b.png"), "{stderr}");
    // The throughput counts the images that ran.
    assert!(stderr.contains("2 images in"), "{stderr}");
    assert_eq!(printed_files(&text(&result.stdout)), ["a.png", "c.png"]);
    assert!(dir.path().join("dets.json").is_file());
}
