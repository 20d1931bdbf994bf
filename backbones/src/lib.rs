//! ResNet/ResNeXt backbones (stages C2..C5) and the Feature Pyramid Network.
