use super::*;
use crate::weights::registry::Registry;

fn entry(hash_field: &str) -> RegistryEntry {
    let text = format!(
        r#"{{"weights": {{"t:x": {{"url": "https://example.org/models/x-0123abcd.pth", {hash_field},
        "kind": "backbone", "architecture": "resnet50", "frozen_bn_eps": 1e-5, "source": "t"}}}}}}"#
    );
    Registry::parse(&text, "test").unwrap().weights["t:x"].clone()
}

#[test]
fn mirror_replaces_scheme_and_host_and_keeps_the_path() {
    let url = "https://download.pytorch.org/models/resnet50-0676ba61.pth";
    assert_eq!(
        mirrored(url, Some("http://127.0.0.1:8080/")),
        "http://127.0.0.1:8080/models/resnet50-0676ba61.pth"
    );
    assert_eq!(
        mirrored(url, Some("https://mirror.example/pytorch")),
        "https://mirror.example/pytorch/models/resnet50-0676ba61.pth"
    );
    assert_eq!(mirrored(url, None), url);
    assert_eq!(mirrored(url, Some("")), url);
}

#[test]
fn sha256_matches_the_published_test_vector() {
    // FIPS 180-2 test vector: SHA-256("abc").
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("abc");
    std::fs::write(&path, b"abc").unwrap();
    assert_eq!(
        sha256_of_file(&path).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn a_prefix_checks_only_its_digits_and_a_full_hash_all_of_them() {
    let digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert!(verify(digest, &entry(r#""sha256_prefix": "ba7816bf""#)).is_ok());
    assert!(verify(digest, &entry(r#""sha256_prefix": "ba7816be""#)).is_err());
    assert!(verify(digest, &entry(&format!(r#""sha256": "{digest}""#))).is_ok());
    let other = format!("{}0", &digest[..63]);
    let err = verify(digest, &entry(&format!(r#""sha256": "{other}""#))).unwrap_err();
    assert!(err.to_string().contains("mismatch"), "{err}");
}

#[test]
fn the_cached_file_name_is_the_urls() {
    assert_eq!(
        entry(r#""sha256_prefix": "0123abcd""#).file_name().unwrap(),
        "x-0123abcd.pth"
    );
}
