use super::*;
use candle_core::Device;

#[test]
fn top_n_is_taken_per_level_and_sorted() -> Result<()> {
    let logits = Tensor::new(&[[0.1f32, 0.9, 0.5, /* level 1 */ 3.0, -1.0]], &Device::Cpu)?;
    let (index, level) = top_n_per_level(&logits, &[3, 2], 2)?;
    assert_eq!(index.to_vec2::<u32>()?, vec![vec![1, 2, 3, 4]]);
    assert_eq!(level.to_vec2::<u32>()?, vec![vec![0, 0, 1, 1]]);
    let (index, _) = top_n_per_level(&logits, &[3, 2], 1)?;
    assert_eq!(index.to_vec2::<u32>()?, vec![vec![1, 3]]);
    Ok(())
}
