//! Multi-scale training: over one seeded epoch every listed shorter side is drawn (one per
//! image, as torchvision's `GeneralizedRCNNTransform` and detectron2's `ResizeShortestEdge`
//! pick), the draws repeat for the same seed and epoch, and evaluation uses the last size.
use std::collections::BTreeMap;
use std::sync::Arc;

use datasets::dataset::{Dataset, DatasetSpec};
use datasets::loader::{DataLoader, LoaderConfig, Mode};
use datasets::shapes::{ShapesConfig, Split};
use datasets::transforms::{TransformConfig, MULTI_SCALE_MIN_SIZES};

/// 48 square 32 px images: a square image's resized side is the drawn `min_size` itself.
fn loader(mode: Mode, seed: u64, workers: usize) -> DataLoader {
    let config = ShapesConfig {
        num_train: 48,
        num_val: 4,
        image_size: 32,
        ..ShapesConfig::default()
    };
    let data = Arc::new(Dataset::open(&DatasetSpec::Shapes(config), Split::Train).unwrap());
    let transform = TransformConfig {
        min_size: MULTI_SCALE_MIN_SIZES.to_vec(),
        max_size: 1333,
        ..TransformConfig::default()
    };
    let loader_config = LoaderConfig {
        batch_size: 4,
        num_workers: workers,
        seed,
        ..LoaderConfig::default()
    };
    DataLoader::new(
        data.clone(),
        &data.coco.category_map(),
        transform,
        loader_config,
        mode,
    )
}

/// Drawn side per image id over one epoch.
fn sizes(loader: &DataLoader, epoch: u64) -> BTreeMap<u64, usize> {
    let mut out = BTreeMap::new();
    for batch in loader.epoch(epoch) {
        let batch = batch.unwrap();
        for (id, &(h, w)) in batch.image_ids.iter().zip(&batch.image_sizes) {
            assert_eq!(h, w, "square images stay square");
            out.insert(*id, h);
        }
    }
    out
}

#[test]
fn a_seeded_epoch_draws_every_listed_size_and_eval_uses_the_last() {
    assert_eq!(MULTI_SCALE_MIN_SIZES, [640, 672, 704, 736, 768, 800]);
    let train = loader(Mode::Train, 7, 2);
    let drawn = sizes(&train, 0);
    assert_eq!(drawn.len(), 48, "every image once");
    let mut counts = BTreeMap::new();
    for s in drawn.values() {
        *counts.entry(*s).or_insert(0) += 1;
    }
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        MULTI_SCALE_MIN_SIZES,
        "sizes drawn: {counts:?}"
    );
    // Per image, not per batch: some batch mixes sizes.
    let mixed = train.epoch(0).any(|b| {
        let b = b.unwrap();
        b.image_sizes.iter().any(|s| *s != b.image_sizes[0])
    });
    assert!(mixed, "sizes are drawn per image");
    // Deterministic: the same seed and epoch draw the same, whatever the thread count; another
    // epoch draws differently.
    assert_eq!(sizes(&loader(Mode::Train, 7, 0), 0), drawn);
    assert_ne!(sizes(&train, 1), drawn);
    // Evaluation: the last size for every image.
    let eval = sizes(&loader(Mode::Eval, 7, 2), 0);
    assert_eq!(eval.len(), 48);
    assert!(eval.values().all(|&s| s == 800), "{eval:?}");
}
