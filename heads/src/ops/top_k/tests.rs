use super::*;
use candle_core::Device;

fn naive(values: &[f32], k: usize) -> Vec<u32> {
    // Reference: a full stable sort, numbers descending, then NaN.
    let mut order: Vec<u32> = (0..values.len() as u32).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (values[a as usize], values[b as usize]);
        match (x.is_nan(), y.is_nan()) {
            (false, false) => y.partial_cmp(&x).unwrap(),
            (a_nan, b_nan) => a_nan.cmp(&b_nan),
        }
    });
    order.truncate(k);
    order
}

#[test]
fn best_first_ties_by_lower_index_nan_last() -> Result<()> {
    let rows = [
        [0.5f32, 2.0, 0.5, f32::NAN, -1.0],
        [3.0, 3.0, 1.0, 2.0, 2.0],
    ];
    let x = Tensor::new(&rows, &Device::Cpu)?;
    assert_eq!(
        top_k(&x, 3)?.to_vec2::<u32>()?,
        vec![vec![1, 0, 2], vec![0, 1, 3]]
    );
    assert_eq!(top_k(&x, 9)?.to_vec2::<u32>()?[0], vec![1, 0, 2, 4, 3]);
    assert_eq!(top_k(&x, 0)?.dims(), &[2, 0]);
    Ok(())
}

#[test]
fn matches_a_full_sort_on_random_rows_with_ties() -> Result<()> {
    let mut state = 12345u64;
    let values: Vec<f32> = (0..3 * 1000)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((state >> 40) % 97) as f32 / 7.0 // many ties
        })
        .collect();
    let x = Tensor::from_vec(values.clone(), (3, 1000), &Device::Cpu)?;
    let got = top_k(&x, 100)?.to_vec2::<u32>()?;
    for (r, row) in got.iter().enumerate() {
        assert_eq!(
            row,
            &naive(&values[r * 1000..(r + 1) * 1000], 100),
            "row {r}"
        );
    }
    Ok(())
}

#[test]
fn rejects_other_shapes_and_dtypes() {
    let v = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
    assert!(top_k(&v, 1).unwrap_err().to_string().contains("top_k"));
    let u = Tensor::zeros((1, 3), DType::U32, &Device::Cpu).unwrap();
    assert!(top_k(&u, 1).is_err());
}
