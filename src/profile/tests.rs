use super::*;

#[test]
fn an_off_clock_records_nothing() {
    let mut clock = StageClock::off();
    clock.lap(Stage::Data).unwrap();
    assert!(!clock.enabled());
    assert!(clock.finish().is_none());
}

#[test]
fn laps_are_printed_in_order_with_the_transfers() -> anyhow::Result<()> {
    let mut clock = StageClock::start(true, &Device::Cpu);
    clock.lap(Stage::Data)?;
    let t = candle_core::Tensor::zeros(300, candle_core::DType::F32, &Device::Cpu)?;
    heads::ops::transfer::read::<f32>("test", &t)?;
    clock.lap(Stage::Backbone)?;
    let p = clock.finish().expect("profiling was on");
    let line = p.to_string();
    assert!(line.starts_with("data "), "{line}");
    assert!(line.contains(", backbone "), "{line}");
    assert!(
        line.ends_with("; transfers 0 (0 B), host reads 1 (1.2 KiB), uploads 0 (0 B)"),
        "{line}"
    );
    Ok(())
}
