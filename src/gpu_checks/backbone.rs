//! Backbone + FPN on CUDA against the CPU, same weights and input: the reduced ResNeXt-FPN of
//! the backbone parity fixture (torchvision weights, two inputs, one of odd size), and a full
//! `resnext50_32x4d` FPN (32 groups, random weights) on a 128x160 image. Limit per level:
//! `max|Δ| / max|ref| <= 1e-3` (parity definition for backbone/FPN), C2..C5 and P2..P6.
use std::collections::HashMap;
use std::path::Path;

use backbones::{
    BackboneConfig, BackboneWithFpn, BlockForm, CheckedWeights, ResNextConfig, WeightMap,
};
use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};

use super::compare::{max_rel_diff, Check, Rng};

pub const BACKBONE_LIMIT: f64 = 1e-3;
const LEVELS: [&str; 9] = ["C2", "C3", "C4", "C5", "P2", "P3", "P4", "P5", "P6"];

/// The reduced ResNeXt of `backbones/tests/fixtures/gen.py` (cardinality 4).
fn tiny_config(eps: f64) -> BackboneConfig {
    BackboneConfig {
        body: ResNextConfig {
            layers: [2, 1, 2, 1],
            groups: 4,
            width_per_group: 32,
            stem_channels: 8,
            planes: [4, 8, 16, 32],
            block_form: BlockForm::Grouped,
            bn_eps: eps,
        },
        fpn_channels: 16,
        trainable_layers: 3,
    }
}

/// C2..C5 then P2..P6.
fn levels(model: &BackboneWithFpn, x: &Tensor) -> Result<Vec<Tensor>> {
    let c = model.body.forward(x)?;
    let p = model.fpn.forward(&c)?;
    Ok(c.into_iter().chain(p).collect())
}

fn compare(
    name: &str,
    cpu: Result<Vec<Tensor>>,
    gpu: Result<Vec<Tensor>>,
    limit: f64,
) -> Vec<Check> {
    match (cpu, gpu) {
        (Ok(a), Ok(b)) => LEVELS
            .iter()
            .zip(a.iter().zip(&b))
            .map(|(level, (a, b))| match max_rel_diff(b, a) {
                Ok(e) => Check::within(format!("{name} {level}"), "max|Δ|/max|ref|", e, limit),
                Err(e) => Check::failed(format!("{name} {level}"), &e),
            })
            .collect(),
        (Err(e), _) | (_, Err(e)) => vec![Check::failed(name.to_string(), &e)],
    }
}

/// Both fixture inputs ("a" 1e-5 eps, "b" odd size with eps 0) through the fixture weights.
pub fn fixture_backbone(root: &Path, cuda: &Device) -> Vec<Check> {
    let dir = root.join("backbones/tests/fixtures");
    let mut out = Vec::new();
    for (tag, eps) in [("a", 1e-5), ("b", 0.0)] {
        let run = |dev: &Device| -> Result<Vec<Tensor>> {
            let outputs =
                candle_core::safetensors::load(dir.join("tiny_outputs.safetensors"), dev)?;
            let map = WeightMap::load(dir.join("tiny_weights.safetensors"), dev)
                .map_err(|e| candle_core::Error::Msg(e.to_string()))?
                .to_detector_names();
            let weights = CheckedWeights::new(map, &[]);
            let model = BackboneWithFpn::new(
                &tiny_config(eps),
                weights.var_builder(DType::F32, dev).pp("backbone"),
            )?;
            let x = outputs
                .get(&format!("{tag}.input"))
                .ok_or_else(|| candle_core::Error::Msg(format!("no {tag}.input in the fixture")))?;
            levels(&model, x)
        };
        out.extend(compare(
            &format!("backbone+FPN fixture {tag}"),
            run(&Device::Cpu),
            run(cuda),
            BACKBONE_LIMIT,
        ));
    }
    out
}

/// `resnext50_32x4d` + FPN with random weights (made on the CPU, copied to CUDA).
pub fn resnext50(cuda: &Device) -> Vec<Check> {
    let name = "backbone+FPN resnext50_32x4d 128x160";
    match resnext50_levels(cuda, None) {
        Ok((a, b)) => compare(name, Ok(a), Ok(b), BACKBONE_LIMIT),
        Err(e) => vec![Check::failed(name, &e)],
    }
}

/// The same network under `--precision bf16` on both devices (CPU: f32 kernels on
/// bf16-rounded operands; CUDA: cuDNN in bf16), per level against each other. Limit
/// [`BF16_BACKBONE_LIMIT`].
pub fn resnext50_bf16(cuda: &Device) -> Vec<Check> {
    let name = "backbone+FPN resnext50_32x4d 128x160 bf16";
    match resnext50_levels(cuda, Some(DType::BF16)) {
        Ok((a, b)) => compare(name, Ok(a), Ok(b), BF16_BACKBONE_LIMIT),
        Err(e) => vec![Check::failed(name, &e)],
    }
}

/// Two bf16 computations of the same network differ where a sum lands on the other side of a
/// bf16 rounding boundary (different summation order: one step, 2^-8 relative), and those
/// differences travel through the ~50 layers. The CPU's bf16 levels differ from its f32 ones
/// by 0.8-1.2e-2 of the level's largest value (measured by the test
/// `bf16_backbone_check_runs_and_bf16_levels_stay_near_f32`); two bf16 runs of the same operands should not differ more than each differs from f32,
/// with room for the largest of independent errors (sqrt 2 x 1.2e-2 ~ 1.7e-2): 3e-2.
pub const BF16_BACKBONE_LIMIT: f64 = 3e-2;

/// `resnext50_32x4d` + FPN with random weights made on the CPU, the same copied to `cuda`, and
/// a 128x160 input.
pub fn resnext50_models(cuda: &Device) -> Result<(BackboneWithFpn, BackboneWithFpn, Tensor)> {
    let config = BackboneConfig::from_name("resnext50_32x4d")
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let varmap = VarMap::new();
    let cpu_model = BackboneWithFpn::new(
        &config,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )?;
    let tensors: HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("varmap lock poisoned".into()))?
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.as_tensor().to_device(cuda)?)))
        .collect::<Result<_>>()?;
    let gpu_model =
        BackboneWithFpn::new(&config, VarBuilder::from_tensors(tensors, DType::F32, cuda))?;
    let x = Rng::new(3).tensor(&[1, 3, 128, 160], -2.0, 2.0)?;
    Ok((cpu_model, gpu_model, x))
}

/// C2..C5 then P2..P6 of `model` on `x` (moved to the model's device) under autocast to
/// `autocast`, in f32.
pub fn levels_under(
    model: &BackboneWithFpn,
    x: &Tensor,
    device: &Device,
    autocast: Option<DType>,
) -> Result<Vec<Tensor>> {
    let _autocast = backbones::autocast::scope(autocast)?;
    levels(model, &x.to_device(device)?)?
        .iter()
        .map(heads::widened)
        .collect()
}

/// [`resnext50_models`]' levels on the CPU and on `cuda`, both under autocast to `autocast`.
fn resnext50_levels(cuda: &Device, autocast: Option<DType>) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
    let (cpu_model, gpu_model, x) = resnext50_models(cuda)?;
    Ok((
        levels_under(&cpu_model, &x, &Device::Cpu, autocast)?,
        levels_under(&gpu_model, &x, cuda, autocast)?,
    ))
}
