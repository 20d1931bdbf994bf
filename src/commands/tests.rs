use super::*;

#[test]
fn devices_parse_or_explain() {
    assert!(matches!(parse_device("cpu"), Ok(Device::Cpu)));
    let err = parse_device("tpu").unwrap_err().to_string();
    assert!(err.contains("expected `cpu`, `cuda` or `cuda:N`"), "{err}");
}
