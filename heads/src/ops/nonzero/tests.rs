use super::*;
use crate::ops::transfer::Recorder;
use candle_core::Device;

#[test]
fn returns_ascending_indices_of_set_entries() -> Result<()> {
    let mask = Tensor::new(&[0u8, 1, 1, 0, 0, 1], &Device::Cpu)?;
    assert_eq!(nonzero(&mask)?.to_vec1::<u32>()?, vec![1, 2, 5]);
    let none = Tensor::zeros(4, DType::U8, &Device::Cpu)?;
    assert_eq!(nonzero(&none)?.dims(), &[0]);
    let empty = Tensor::zeros(0, DType::U8, &Device::Cpu)?;
    assert_eq!(nonzero(&empty)?.dims(), &[0]);
    Ok(())
}

#[test]
fn strided_masks_are_read_in_logical_order() -> Result<()> {
    // Column 1 of [[0, 1], [1, 0], [0, 1]]: a strided view.
    let m = Tensor::new(&[[0u8, 1], [1, 0], [0, 1]], &Device::Cpu)?;
    assert_eq!(
        nonzero(&m.narrow(1, 1, 1)?.squeeze(1)?)?.to_vec1::<u32>()?,
        vec![0, 2]
    );
    Ok(())
}

#[test]
fn the_count_is_recorded_as_one_scalar_read() -> Result<()> {
    let mask = Tensor::new(&[1u8, 0, 1], &Device::Cpu)?;
    let scope = Recorder::start();
    nonzero(&mask)?;
    let r = scope.finish();
    assert_eq!((r.host_reads, r.largest_read, r.transfers), (1, 1, 0));
    assert!(r.read_sites.contains_key("nonzero: count"));
    Ok(())
}

#[test]
fn rejects_non_u8_masks_and_matrices() {
    let f = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
    assert!(nonzero(&f).unwrap_err().to_string().contains("nonzero"));
    let m = Tensor::zeros((2, 2), DType::U8, &Device::Cpu).unwrap();
    assert!(nonzero(&m).is_err());
}
