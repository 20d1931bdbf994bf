use super::*;

#[test]
fn counts_reads_by_site_with_the_largest_and_no_transfer_on_cpu() -> Result<()> {
    let t = Tensor::arange(0f32, 10., &Device::Cpu)?;
    let scope = Recorder::start();
    assert_eq!(read::<f32>("a", &t)?.len(), 10);
    assert_eq!(read_scalar::<f32>("b", &t.get(3)?)?, 3.0);
    let _ = upload(vec![1u32, 2, 3], 3, &Device::Cpu)?;
    let r = scope.finish();
    assert_eq!(
        (r.host_reads, r.host_read_bytes, r.largest_read),
        (2, 44, 10)
    );
    assert_eq!(
        r.read_sites["a"],
        SiteReads {
            count: 1,
            largest: 10
        }
    );
    assert_eq!(
        r.read_sites["b"],
        SiteReads {
            count: 1,
            largest: 1
        }
    );
    assert_eq!((r.uploads, r.upload_bytes), (1, 12));
    assert_eq!((r.transfers, r.transfer_bytes), (0, 0));
    Ok(())
}

#[test]
fn nothing_is_recorded_outside_a_scope_and_scopes_nest() -> Result<()> {
    let t = Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu)?;
    read::<f32>("outside", &t)?;
    let outer = Recorder::start();
    read::<f32>("outer", &t)?;
    let inner = Recorder::start();
    read::<f32>("inner", &t)?;
    let inner = inner.finish();
    let outer = outer.finish();
    assert_eq!(inner.read_sites.keys().collect::<Vec<_>>(), vec![&"inner"]);
    assert_eq!(
        outer.read_sites.keys().collect::<Vec<_>>(),
        vec![&"inner", &"outer"]
    );
    Ok(())
}

#[test]
fn other_threads_do_not_leak_into_a_scope() -> Result<()> {
    let scope = Recorder::start();
    std::thread::spawn(|| {
        let t = Tensor::zeros(8, candle_core::DType::F32, &Device::Cpu).unwrap();
        let _inner = Recorder::start();
        read::<f32>("other thread", &t).unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(scope.finish().host_reads, 0);
    Ok(())
}

#[test]
fn read_scalar_of_many_values_is_an_error() {
    let t = Tensor::zeros(2, candle_core::DType::F32, &Device::Cpu).unwrap();
    let err = read_scalar::<f32>("loss", &t).unwrap_err().to_string();
    assert!(err.contains("loss: expected one value"), "{err}");
}
