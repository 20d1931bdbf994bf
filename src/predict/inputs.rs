//! The images `detect predict` runs on, from the paths given: a file is taken as it is (a
//! missing or unreadable one is reported when its turn comes, like any bad image), a folder
//! gives its `.jpg`, `.jpeg` and `.png` files (any letter case), sorted by name in byte order
//! (as `ls` in the C locale sorts them), without looking into subfolders. A folder without
//! such a file is an error: nothing would run.
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The file extensions a folder is searched for, compared without regard to case.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// The image files `paths` name, folders expanded in place (see the module docs).
pub fn image_paths(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(folder_images(path)?);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// The images directly inside `folder`, sorted by file name.
fn folder_images(folder: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(folder)
        .with_context(|| format!("cannot list the folder `{}`", folder.display()))?;
    let mut images = Vec::new();
    for entry in entries {
        let entry =
            entry.with_context(|| format!("cannot list the folder `{}`", folder.display()))?;
        let path = entry.path();
        if is_image_name(&path) && path.is_file() {
            images.push(path);
        }
    }
    anyhow::ensure!(
        !images.is_empty(),
        "the folder `{}` holds no .jpg, .jpeg or .png file (subfolders are not searched)",
        folder.display()
    );
    images.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(images)
}

/// Whether `path`'s extension is one of [`IMAGE_EXTENSIONS`], in any letter case.
fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

#[cfg(test)]
mod tests;
