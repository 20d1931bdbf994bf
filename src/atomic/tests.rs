use super::*;

#[test]
fn failed_write_leaves_neither_file_nor_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    let result = write_atomically(&path, |tmp| {
        std::fs::write(tmp, b"partial")?;
        anyhow::bail!("disk full")
    });
    assert!(result.is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn replaces_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    std::fs::write(&path, b"old").unwrap();
    write_atomically(&path, |tmp| Ok(std::fs::write(tmp, b"new")?)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
