use super::*;

/// The text cudarc 0.19 gives a failed cuMemAlloc (`DriverError`'s Debug), as candle wraps it.
const DRIVER_OOM: &str = "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")";

#[test]
fn recognises_driver_cudnn_and_cublas_allocation_failures() {
    for text in [
        DRIVER_OOM,
        "cuDNN convolution forward (input [2, 3, 8, 8]): CudnnError(CUDNN_STATUS_ALLOC_FAILED)",
        "CublasError(CUBLAS_STATUS_ALLOC_FAILED)",
    ] {
        let e = candle_core::Error::Msg(text.to_string());
        assert!(is_out_of_memory(&e), "{text}");
    }
}

#[test]
fn other_errors_are_not_out_of_memory() {
    for text in [
        "DriverError(CUDA_ERROR_NO_DEVICE, \"no CUDA-capable device is detected\")",
        "shape mismatch in conv2d",
        "CudnnError(CUDNN_STATUS_BAD_PARAM)",
    ] {
        let e = candle_core::Error::Msg(text.to_string());
        assert!(!is_out_of_memory(&e), "{text}");
        assert!(OutOfMemory::from_error(&e, "training", 4, (Some(800), Some(1333))).is_none());
    }
}

#[test]
fn found_under_candle_context() {
    let inner = candle_core::Error::Msg(DRIVER_OOM.to_string());
    let e = inner.context("while running the backbone");
    assert!(is_out_of_memory(&e));
}

#[test]
fn message_names_batch_and_image_size_to_lower() {
    let e = candle_core::Error::Msg(DRIVER_OOM.to_string());
    let oom = OutOfMemory::from_error(&e, "training", 16, (Some(800), Some(1333))).expect("an OOM");
    let msg = oom.to_string();
    for part in [
        "ran out of memory during training",
        "batch size 16",
        "shorter side of 800 px",
        "at most 1333 px",
        "--batch-size (try 8)",
        "--min-size / --max-size",
        "CUDA_ERROR_OUT_OF_MEMORY",
    ] {
        assert!(msg.contains(part), "missing {part:?} in {msg}");
    }
}

#[test]
fn message_without_size_options_names_the_model_defaults() {
    let e = candle_core::Error::Msg(DRIVER_OOM.to_string());
    let msg = OutOfMemory::from_error(&e, "evaluation", 1, (None, None))
        .expect("an OOM")
        .to_string();
    assert!(
        msg.contains("batch size 1 and the model's default image size"),
        "{msg}"
    );
    assert!(msg.contains("--batch-size (try 1)"), "{msg}");
}
