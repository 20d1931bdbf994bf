#!/usr/bin/env python3
"""torchvision's state-dict key names, written out without torch (installing torch is 5 GB).

    python3 scripts/torchvision_state_dict_keys.py tests/fixtures/torchvision_keys

The names follow torchvision's module tree (torchvision 0.13+; file and attribute names cited
beside each part), which is what `model.state_dict().keys()` lists:

- models/resnet.py `ResNet`: `conv1`, `bn1`, `layer1..4` (`nn.Sequential` of `Bottleneck`:
  `conv1, bn1, conv2, bn2, conv3, bn3`, and in each stage's block 0 `downsample` =
  `Sequential(conv1x1, norm_layer)` -> `downsample.0`, `downsample.1`), `fc`. `nn.BatchNorm2d`
  holds `weight, bias, running_mean, running_var, num_batches_tracked`.
- ops/misc.py `FrozenBatchNorm2d` (detection backbones, `norm_layer=FrozenBatchNorm2d`): buffers
  `weight, bias, running_mean, running_var` only.
- models/detection/backbone_utils.py `BackboneWithFPN`: `body` (the ResNet without `fc`, via
  IntermediateLayerGetter) and `fpn`.
- ops/feature_pyramid_network.py `FeaturePyramidNetwork`: `inner_blocks.i` and `layer_blocks.i`
  are `Conv2dNormActivation(..., norm_layer=None, activation_layer=None)`, a Sequential whose only
  member is the conv -> `inner_blocks.i.0.weight/bias`; `LastLevelMaxPool` has no parameters.
- models/detection/rpn.py `RPNHead(conv_depth=1)`: `conv = Sequential(Conv2dNormActivation(...,
  norm_layer=None))` -> `conv.0.0`, then `cls_logits`, `bbox_pred`. `AnchorGenerator`: none.
- models/detection/faster_rcnn.py `TwoMLPHead` (`fc6`, `fc7`) and `FastRCNNPredictor`
  (`cls_score`, `bbox_pred`); `MultiScaleRoIAlign`: no parameters.

Output: fasterrcnn_resnet50_fpn.txt (the detector) and resnet_1_1_1_1_imagenet.txt (an ImageNet
ResNet with one block per stage, the layout of the small ImageNet stand-in in tests/pretrained.rs).
Both sorted, one key per line.
"""
import os
import sys


def resnet_body(prefix, layers, batch_norm):
    bn = ["weight", "bias", "running_mean", "running_var"]
    if batch_norm:
        bn.append("num_batches_tracked")
    keys = [prefix + "conv1.weight"] + [prefix + "bn1." + b for b in bn]
    for stage, blocks in enumerate(layers, start=1):
        for block in range(blocks):
            p = f"{prefix}layer{stage}.{block}."
            for i in (1, 2, 3):
                keys.append(f"{p}conv{i}.weight")
                keys += [f"{p}bn{i}.{b}" for b in bn]
            if block == 0:  # stride or width change: every stage's first block downsamples
                keys.append(f"{p}downsample.0.weight")
                keys += [f"{p}downsample.1.{b}" for b in bn]
    return keys


def fasterrcnn_resnet50_fpn():
    keys = resnet_body("backbone.body.", [3, 4, 6, 3], batch_norm=False)
    for i in range(4):
        for kind in ("inner_blocks", "layer_blocks"):
            keys += [f"backbone.fpn.{kind}.{i}.0.weight", f"backbone.fpn.{kind}.{i}.0.bias"]
    for name in ("conv.0.0", "cls_logits", "bbox_pred"):
        keys += [f"rpn.head.{name}.weight", f"rpn.head.{name}.bias"]
    for name in ("box_head.fc6", "box_head.fc7", "box_predictor.cls_score",
                 "box_predictor.bbox_pred"):
        keys += [f"roi_heads.{name}.weight", f"roi_heads.{name}.bias"]
    return keys


def resnet_imagenet(layers):
    return resnet_body("", layers, batch_norm=True) + ["fc.weight", "fc.bias"]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/torchvision_keys"
    os.makedirs(out, exist_ok=True)
    files = {
        "fasterrcnn_resnet50_fpn.txt": fasterrcnn_resnet50_fpn(),
        "resnet_1_1_1_1_imagenet.txt": resnet_imagenet([1, 1, 1, 1]),
    }
    for name, keys in files.items():
        assert len(keys) == len(set(keys))
        with open(os.path.join(out, name), "w") as f:
            f.write("".join(k + "\n" for k in sorted(keys)))
        print(name, len(keys))


if __name__ == "__main__":
    main()
