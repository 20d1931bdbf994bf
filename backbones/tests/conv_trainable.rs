//! The differentiable fused convolution (`conv_kernel::conv2d_trainable`:
//! `relu?(conv(x, w * scale) + bias + residual)` as one autograd node): its value and every
//! gradient against candle's composed ops and candle's autograd, on each kernel it dispatches
//! to; and what it saves: one output-sized tensor per conv in the graph, no gradient left in
//! the `GradStore` for operands that need none, no dX for a frozen input.
//!
//! Tolerance: relative error <= 1e-4 on gradients (sums over up to a few thousand terms in
//! another order), 1e-5 on values (5e-5 for Winograd F(4x4, 3x3), `common::conv_tolerance`),
//! as `conv_fused.rs`; a wrong tap, mask or scale gives errors of order 1.
mod common;

use backbones::block::BlockShape;
use backbones::conv_kernel::conv2d_trainable;
use backbones::{BlockForm, Bottleneck};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use common::{conv_tolerance, max_relative_error, ConvCase as Case};

/// Sizes where candle's own stride-2 backward works ((H + 2p - k) and (W + 2p - k) of one
/// parity), so that it can be the reference.
const CASES: [Case; 6] = [
    (2, 16, 9, 11, 24, 1, 1, 1, 0),  // 1x1 gemm, two images
    (1, 32, 13, 9, 64, 1, 1, 2, 0),  // 1x1 stride 2 (downsample)
    (2, 16, 9, 13, 16, 4, 3, 1, 1),  // direct grouped
    (1, 32, 11, 9, 32, 4, 3, 2, 1),  // direct grouped, stride 2
    (1, 64, 12, 10, 16, 1, 3, 1, 1), // Winograd
    (1, 3, 17, 21, 8, 1, 7, 2, 3),   // the stem (im2col)
];

fn random(dims: &[usize]) -> Tensor {
    Tensor::randn(0f32, 1.0, dims, &Device::Cpu).unwrap()
}

struct Inputs {
    x: Var,
    w: Var,
    bias: Var,
    residual: Var,
    scale: Tensor,
}

/// candle's ops: conv2d of x with `w * scale`, the bias, the residual, the ReLU.
fn composed(i: &Inputs, bias: &Tensor, residual: bool, relu: bool, c: Case) -> Tensor {
    let (_, _, _, _, cout, g, _, s, p) = c;
    let w =
        i.w.broadcast_mul(&i.scale.reshape((cout, 1, 1, 1)).unwrap());
    let y = i.x.conv2d(&w.unwrap(), p, s, 1, g).unwrap();
    let mut y = y
        .broadcast_add(&bias.reshape((1, cout, 1, 1)).unwrap())
        .unwrap();
    if residual {
        y = (y + i.residual.as_tensor()).unwrap();
    }
    if relu {
        y.relu().unwrap()
    } else {
        y
    }
}

#[test]
fn trainable_conv_matches_candle_values_and_gradients() {
    for case in CASES {
        let (n, c, h, w, cout, g, k, s, p) = case;
        let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
        let i = Inputs {
            x: Var::from_tensor(&random(&[n, c, h, w])).unwrap(),
            w: Var::from_tensor(&random(&[cout, c / g, k, k])).unwrap(),
            bias: Var::from_tensor(&random(&[cout])).unwrap(),
            residual: Var::from_tensor(&random(&[n, cout, ho, wo])).unwrap(),
            scale: (random(&[cout]).abs().unwrap() + 0.5).unwrap(),
        };
        let fixed_bias = i.bias.as_tensor().detach();
        // (bias trains, residual, relu): the fixed-bias forms are the frozen-BN convs, the
        // trained bias + residual form falls back to two nodes.
        for (trained_bias, residual, relu) in [
            (false, false, true),
            (false, true, true),
            (false, false, false),
            (true, false, true),
            (true, true, true),
        ] {
            let bias = if trained_bias {
                i.bias.as_tensor()
            } else {
                &fixed_bias
            };
            let ours = conv2d_trainable(
                i.x.as_tensor(),
                i.w.as_tensor(),
                Some(&i.scale),
                Some(bias),
                residual.then_some(i.residual.as_tensor()),
                relu,
                (s, p, g),
            )
            .unwrap();
            let reference = composed(&i, bias, residual, relu, case);
            let what =
                format!("case {case:?} bias trains {trained_bias} residual {residual} relu {relu}");
            let err = max_relative_error(&ours, &reference);
            assert!(err <= conv_tolerance(c, g, k, s), "{what}: value {err:.3e}");
            // A loss whose gradient differs at every output position.
            let weights = random(ours.dims());
            let g_ours = (&ours * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g_ref = (&reference * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let mut vars = vec![("x", &i.x), ("w", &i.w)];
            if trained_bias {
                vars.push(("bias", &i.bias));
            }
            if residual {
                vars.push(("residual", &i.residual));
            }
            for (name, var) in vars {
                let err = max_relative_error(
                    g_ours
                        .get(var)
                        .unwrap_or_else(|| panic!("{what}: no d{name}")),
                    g_ref.get(var).unwrap(),
                );
                assert!(err <= 1e-4, "{what}: d{name} {err:.3e}");
            }
            if !trained_bias {
                assert!(
                    g_ours.get(&i.bias).is_none(),
                    "{what}: a fixed bias got a gradient"
                );
            }
        }
    }
}

/// A trainable bottleneck (with downsample) on a frozen input, as layer2's first block in
/// training: the graph keeps one output-sized tensor per conv (conv1, conv2, conv3,
/// downsample), backward leaves gradients for the four weights only (none for the frozen
/// input, none for the frozen BN's shift or scale).
#[test]
fn trainable_block_keeps_one_tensor_per_conv_and_no_stray_gradients() {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let shape = BlockShape {
        in_channels: 16,
        width: 16,
        out_channels: 32,
        stride: 2,
        groups: 4,
    };
    let block = Bottleneck::new(shape, BlockForm::Grouped, 1e-5, vb).unwrap();
    let x = random(&[2, 16, 12, 10]); // a frozen stage's output: no gradient
    let y = block.forward(&x).unwrap();
    assert_eq!(y.dims(), [2, 32, 6, 5]);
    let activations: Vec<_> = y
        .sorted_nodes()
        .into_iter()
        .filter(|t| t.rank() == 4 && t.dim(0).unwrap() == 2)
        .map(|t| t.dims().to_vec())
        .collect();
    // conv1 [2, 16, 12, 10], conv2 [2, 16, 6, 5], downsample and conv3 [2, 32, 6, 5].
    assert_eq!(
        activations.len(),
        4,
        "activations in the graph: {activations:?}"
    );
    let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    let weights: Vec<_> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.starts_with("conv") || name == &"downsample.0.weight")
        .map(|(_, v)| v.as_tensor().id())
        .collect();
    assert_eq!(weights.len(), 4);
    let stored: Vec<_> = grads.get_ids().copied().collect();
    assert!(grads.get(&x).is_none(), "dX computed for a frozen input");
    for id in &weights {
        assert!(stored.contains(id), "a conv weight has no gradient");
    }
    // Backward removes every node's gradient once used: what remains are the leaves'. Any
    // more would be a gradient computed for an operand needing none and kept to the end.
    let strays: Vec<_> = stored
        .iter()
        .filter(|id| !weights.contains(id))
        .filter_map(|id| grads.get_id(*id))
        .map(|g| g.dims().to_vec())
        .collect();
    assert!(
        strays.is_empty(),
        "gradients of operands needing none: {strays:?}"
    );
}
