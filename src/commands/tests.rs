use super::*;

#[test]
fn devices_parse_or_explain() {
    assert!(matches!(parse_device("cpu"), Ok(Device::Cpu)));
    let err = parse_device("tpu").unwrap_err().to_string();
    assert!(err.contains("expected `cpu`, `cuda` or `cuda:N`"), "{err}");
}

#[test]
fn cuda_out_of_memory_names_the_batch_and_image_size_to_lower() {
    // cudarc's text for a failed cuMemAlloc, as candle wraps it, under anyhow context.
    let oom =
        candle_core::Error::Msg("DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")".into());
    let err = anyhow::Error::new(oom).context("training iteration 12");
    let msg = explain_out_of_memory(err, "training", 8, (Some(800), Some(1333))).to_string();
    for part in [
        "out of memory during training",
        "batch size 8",
        "--batch-size (try 4)",
        "800 px",
        "1333 px",
    ] {
        assert!(msg.contains(part), "missing {part:?} in {msg}");
    }
    let other = explain_out_of_memory(anyhow::anyhow!("disk full"), "training", 8, (None, None));
    assert_eq!(other.to_string(), "disk full");
}
