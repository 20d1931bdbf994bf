//! Validation errors of the detection ops and the checks that raise them.

use candle_core::{DType, Device, Tensor};

/// Why an op refused its inputs. Each message names the op, the argument, expected vs got.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("{op}: `{arg}` must have shape {expected}, got {got:?}")]
    Shape {
        op: &'static str,
        arg: &'static str,
        expected: String,
        got: Vec<usize>,
    },
    #[error("{op}: `{arg}` must have dtype {expected}, got {got:?}")]
    DType {
        op: &'static str,
        arg: &'static str,
        expected: &'static str,
        got: DType,
    },
    #[error("{op}: `{arg}` is on {got} but `{first_arg}` is on {expected}; all inputs must be on one device")]
    Device {
        op: &'static str,
        arg: &'static str,
        first_arg: &'static str,
        expected: String,
        got: String,
    },
    #[error(
        "{op}: `{arg}` is a CUDA tensor but this build has no `cuda` feature (hint: build with `--features cuda`)"
    )]
    CudaNotBuilt { op: &'static str, arg: &'static str },
    #[error("{op}: `{arg}` is on {device}, which this op does not support (CPU and CUDA only)")]
    UnsupportedDevice {
        op: &'static str,
        arg: &'static str,
        device: String,
    },
    #[error("{op}: `{arg}` {message}")]
    Invalid {
        op: &'static str,
        arg: &'static str,
        message: String,
    },
}

impl From<OpsError> for candle_core::Error {
    fn from(e: OpsError) -> Self {
        candle_core::Error::wrap(e)
    }
}

pub(crate) fn device_name(d: &Device) -> String {
    match d {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(_) => "cuda".to_string(),
        Device::Metal(_) => "metal".to_string(),
    }
}

/// Fails unless `t` has exactly `expected` dims (`None` = any size).
pub(crate) fn check_shape(
    op: &'static str,
    arg: &'static str,
    t: &Tensor,
    expected: &[Option<usize>],
) -> Result<(), OpsError> {
    let got = t.dims();
    let ok = got.len() == expected.len()
        && got
            .iter()
            .zip(expected)
            .all(|(g, e)| e.is_none_or(|e| e == *g));
    if ok {
        return Ok(());
    }
    let dims: Vec<String> = expected
        .iter()
        .enumerate()
        .map(|(i, e)| {
            e.map_or_else(
                || ["N", "C", "H", "W"][i.min(3)].to_string(),
                |e| e.to_string(),
            )
        })
        .collect();
    Err(OpsError::Shape {
        op,
        arg,
        expected: format!("[{}]", dims.join(", ")),
        got: got.to_vec(),
    })
}

pub(crate) fn check_dtype(
    op: &'static str,
    arg: &'static str,
    t: &Tensor,
    allowed: &[DType],
    expected: &'static str,
) -> Result<(), OpsError> {
    if allowed.contains(&t.dtype()) {
        Ok(())
    } else {
        Err(OpsError::DType {
            op,
            arg,
            expected,
            got: t.dtype(),
        })
    }
}

/// Checks that the device of `t` is supported by this build.
pub(crate) fn check_device_supported(
    op: &'static str,
    arg: &'static str,
    t: &Tensor,
) -> Result<(), OpsError> {
    match t.device() {
        Device::Cpu => Ok(()),
        Device::Cuda(_) if cfg!(feature = "cuda") => Ok(()),
        Device::Cuda(_) => Err(OpsError::CudaNotBuilt { op, arg }),
        d @ Device::Metal(_) => Err(OpsError::UnsupportedDevice {
            op,
            arg,
            device: device_name(d),
        }),
    }
}

/// Checks that every tensor is on a supported device and on the same one as the first.
pub(crate) fn check_same_device(
    op: &'static str,
    tensors: &[(&'static str, &Tensor)],
) -> Result<(), OpsError> {
    let Some((first_arg, first)) = tensors.first() else {
        return Ok(());
    };
    for (arg, t) in tensors {
        check_device_supported(op, arg, t)?;
        if !t.device().same_device(first.device()) {
            return Err(OpsError::Device {
                op,
                arg,
                first_arg,
                expected: device_name(first.device()),
                got: device_name(t.device()),
            });
        }
    }
    Ok(())
}
