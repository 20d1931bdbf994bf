use super::*;

fn touch(dir: &Path, name: &str) {
    std::fs::write(dir.join(name), b"x").unwrap();
}

fn names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_folder_gives_its_images_sorted_by_name_without_subfolders() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "b.png",
        "a.jpg",
        "C.JPEG",
        "a10.jpeg",
        "a2.Png",
        "notes.txt",
        "png",
    ] {
        touch(dir.path(), name);
    }
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    touch(&dir.path().join("sub"), "0.jpg");
    // A folder whose name looks like an image is still a folder, not an image.
    std::fs::create_dir(dir.path().join("d.jpg")).unwrap();
    let found = image_paths(&[dir.path().to_path_buf()]).unwrap();
    // Byte order: upper case before lower case, "a10" before "a2".
    assert_eq!(
        names(&found),
        ["C.JPEG", "a.jpg", "a10.jpeg", "a2.Png", "b.png"]
    );
    assert!(found.iter().all(|p| p.parent() == Some(dir.path())));
}

#[test]
fn files_keep_their_place_among_folders() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    touch(&folder, "y.png");
    touch(&folder, "x.png");
    // A file is taken as given, even one that does not exist (reported when it is read).
    let given = [
        dir.path().join("z.jpg"),
        folder.clone(),
        dir.path().join("missing.gif"),
    ];
    let found = image_paths(&given).unwrap();
    assert_eq!(names(&found), ["z.jpg", "x.png", "y.png", "missing.gif"]);
}

#[test]
fn a_folder_without_images_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    touch(dir.path(), "readme.txt");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    touch(&dir.path().join("sub"), "a.jpg");
    let err = image_paths(&[dir.path().to_path_buf()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&dir.path().display().to_string())
            && err.contains("holds no .jpg, .jpeg or .png file"),
        "{err}"
    );
}
