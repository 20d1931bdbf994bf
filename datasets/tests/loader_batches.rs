//! The loader: deterministic order and content for a seed and epoch whatever the thread count,
//! aspect-ratio grouping, evaluation mode over every image, and targets that follow the image.
mod common;
use common::shared_data;
use std::sync::Arc;

use datasets::dataset::{Dataset, DatasetSpec};
use datasets::loader::{Batch, DataLoader, LoaderConfig, Mode, Shard};
use datasets::sampler::aspect_ratio_groups;
use datasets::shapes::{ShapesConfig, Split};
use datasets::transforms::{resize_boxes, resized_size, TransformConfig};

fn shapes(n: usize) -> Arc<Dataset> {
    let config = ShapesConfig {
        num_train: n,
        num_val: 8,
        image_size: 96,
        ..ShapesConfig::default()
    };
    Arc::new(Dataset::open(&DatasetSpec::Shapes(config), Split::Train).unwrap())
}

fn small_transform() -> TransformConfig {
    TransformConfig {
        min_size: vec![64, 80, 96],
        max_size: 160,
        ..TransformConfig::default()
    }
}

fn loader(dataset: &Arc<Dataset>, config: LoaderConfig, mode: Mode) -> DataLoader {
    let map = dataset.coco.category_map();
    DataLoader::new(dataset.clone(), &map, small_transform(), config, mode)
}

fn collect(loader: &DataLoader, epoch: u64) -> Vec<Batch> {
    loader.epoch(epoch).map(|b| b.unwrap()).collect()
}

fn flat(batch: &Batch) -> Vec<f32> {
    batch.images.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn same_seed_and_epoch_give_the_same_batches_whatever_the_thread_count() {
    let data = shapes(24);
    let base = LoaderConfig {
        batch_size: 4,
        seed: 5,
        ..LoaderConfig::default()
    };
    let one = loader(
        &data,
        LoaderConfig {
            num_workers: 0,
            ..base.clone()
        },
        Mode::Train,
    );
    let many = loader(
        &data,
        LoaderConfig {
            num_workers: 3,
            prefetch: 2,
            ..base.clone()
        },
        Mode::Train,
    );
    let (a, b) = (collect(&one, 2), collect(&many, 2));
    assert_eq!(a.len(), 6);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.image_ids, y.image_ids);
        assert_eq!(x.image_sizes, y.image_sizes);
        assert_eq!(flat(x), flat(y));
        for (s, t) in x.targets.iter().zip(&y.targets) {
            assert_eq!(
                s.boxes.to_vec2::<f32>().unwrap(),
                t.boxes.to_vec2::<f32>().unwrap()
            );
        }
    }
    // Another epoch or seed reorders; the same epoch again does not.
    assert_eq!(one.epoch_image_ids(2), many.epoch_image_ids(2));
    assert_ne!(one.epoch_image_ids(2), one.epoch_image_ids(3));
    let other_seed = loader(&data, LoaderConfig { seed: 6, ..base }, Mode::Train);
    assert_ne!(one.epoch_image_ids(2), other_seed.epoch_image_ids(2));
    // Every image once per epoch (24 images, batch 4, all square: one group).
    let mut ids: Vec<u64> = one.epoch_image_ids(2).concat();
    ids.sort();
    assert_eq!(ids, (1..=24).collect::<Vec<_>>());
}

#[test]
fn training_flips_and_picks_min_sizes_with_boxes_following() {
    let data = shapes(16);
    let config = LoaderConfig {
        batch_size: 2,
        num_workers: 2,
        ..LoaderConfig::default()
    };
    let train = loader(&data, config.clone(), Mode::Train);
    let mut sizes = std::collections::BTreeSet::new();
    let (mut plain_seen, mut flipped_seen) = (0, 0);
    for batch in collect(&train, 0) {
        let (b, c, h, w) = batch.images.dims4().unwrap();
        assert_eq!((b, c, h % 32, w % 32), (2, 3, 0, 0));
        for (i, id) in batch.image_ids.iter().enumerate() {
            sizes.insert(batch.image_sizes[i]);
            let record = (*id - 1) as usize;
            let anns: Vec<_> = data
                .coco
                .annotations
                .iter()
                .filter(|a| a.image_id == *id)
                .collect();
            let got = batch.targets[i].boxes.to_vec2::<f32>().unwrap();
            let labels = batch.targets[i].labels.to_vec1::<u32>().unwrap();
            assert_eq!(got.len(), anns.len());
            let (oh, ow) = batch.original_sizes[i];
            assert_eq!((oh, ow), (96, 96));
            let (rh, rw) = batch.image_sizes[i];
            for ((g, a), l) in got.iter().zip(&anns).zip(&labels) {
                assert_eq!(*l as u64, a.category_id, "shapes ids are already 1..3");
                let [x, y, bw, bh] = a.bbox.map(|v| v as f32);
                let plain = resize_boxes(&[[x, y, x + bw, y + bh]], (oh, ow), (rh, rw))[0];
                let flipped =
                    resize_boxes(&[[96. - x - bw, y, 96. - x, y + bh]], (oh, ow), (rh, rw))[0];
                plain_seen += (g[..] == plain[..]) as usize;
                flipped_seen += (g[..] == flipped[..]) as usize;
                assert!(
                    g[..] == plain[..] || g[..] == flipped[..],
                    "image {id} record {record}: {g:?}"
                );
            }
        }
    }
    assert_eq!(sizes.len(), 3, "all three min sizes drawn: {sizes:?}");
    assert!(
        plain_seen > 0 && flipped_seen > 0,
        "{plain_seen} plain, {flipped_seen} flipped"
    );
}

#[test]
fn eval_mode_yields_every_image_in_order_without_augmentation() {
    let Some(root) = shared_data() else { return };
    let data = Arc::new(
        Dataset::from_files(
            &root.join("coco128/annotations.json"),
            &root.join("coco128/images"),
        )
        .unwrap(),
    );
    let config = LoaderConfig {
        batch_size: 5,
        num_workers: 2,
        ..LoaderConfig::default()
    };
    let eval = loader(&data, config.clone(), Mode::Eval);
    let batches = collect(&eval, 0);
    let ids: Vec<u64> = batches.iter().flat_map(|b| b.image_ids.clone()).collect();
    let expected: Vec<u64> = data.coco.images.iter().map(|i| i.id).collect();
    assert_eq!(
        ids, expected,
        "all 128 images in file order, 250 and 508 included"
    );
    assert_eq!(batches.last().unwrap().image_ids.len(), 128 % 5);
    for batch in &batches {
        for (i, &(h, w)) in batch.original_sizes.iter().enumerate() {
            assert_eq!(
                batch.image_sizes[i],
                resized_size(h, w, 96, 160),
                "eval uses the last min_size"
            );
        }
    }
    // Training leaves out the two images without annotations.
    let config_copy = config.clone();
    let train = loader(&data, config, Mode::Train);
    assert_eq!(train.num_images(), 126);
    assert_eq!(train.target_stats().empty_images_filtered, 2);
    assert_eq!(train.target_stats().crowd_excluded, 10);
    let config = LoaderConfig {
        filter_empty: false,
        ..config_copy
    };
    assert_eq!(loader(&data, config, Mode::Train).num_images(), 128);
}

#[test]
fn aspect_ratio_grouping_keeps_batches_within_one_group() {
    let Some(root) = shared_data() else { return };
    let data = Arc::new(
        Dataset::from_files(
            &root.join("coco128/annotations.json"),
            &root.join("coco128/images"),
        )
        .unwrap(),
    );
    let config = LoaderConfig {
        batch_size: 4,
        aspect_ratio_group_factor: Some(3),
        ..LoaderConfig::default()
    };
    let train = loader(&data, config, Mode::Train);
    let by_id: std::collections::HashMap<u64, (u32, u32)> = data
        .coco
        .images
        .iter()
        .map(|i| (i.id, (i.width, i.height)))
        .collect();
    for epoch in 0..3 {
        let plan = train.epoch_image_ids(epoch);
        assert_eq!(
            plan.len(),
            126 / 4,
            "torchvision: len(sampler) // batch_size"
        );
        for batch in &plan {
            let sizes: Vec<(u32, u32)> = batch.iter().map(|id| by_id[id]).collect();
            let groups = aspect_ratio_groups(&sizes, 3);
            assert!(
                groups.iter().all(|&g| g == groups[0]),
                "epoch {epoch}: {batch:?} {sizes:?}"
            );
        }
    }
    // Both portrait and landscape batches occur.
    let first: Vec<bool> = train
        .epoch_image_ids(0)
        .iter()
        .map(|b| by_id[&b[0]].0 > by_id[&b[0]].1)
        .collect();
    assert!(first.contains(&true) && first.contains(&false));
    // The batches really come out in the planned order.
    let loaded: Vec<Vec<u64>> = train
        .epoch(1)
        .take(3)
        .map(|b| b.unwrap().image_ids)
        .collect();
    assert_eq!(loaded, train.epoch_image_ids(1)[..3].to_vec());
}

#[test]
fn an_epoch_started_at_batch_k_yields_the_later_batches_unchanged() {
    // What a resumed run relies on: the batches from k on equal an uninterrupted epoch's
    // (same images, same flips and sizes: augmentation is keyed by the batch index).
    let data = shapes(16);
    for workers in [0, 2] {
        let l = loader(
            &data,
            LoaderConfig {
                batch_size: 2,
                seed: 3,
                num_workers: workers,
                ..LoaderConfig::default()
            },
            Mode::Train,
        );
        let whole = collect(&l, 1);
        let from: Vec<Batch> = l.epoch_from(1, 5).map(|b| b.unwrap()).collect();
        assert_eq!(from.len(), whole.len() - 5, "workers {workers}");
        for (a, b) in whole[5..].iter().zip(&from) {
            assert_eq!(a.image_ids, b.image_ids, "workers {workers}");
            assert_eq!(flat(a), flat(b), "workers {workers}");
        }
        assert_eq!(l.epoch_from(1, whole.len()).count(), 0);
    }
}

#[test]
fn shards_of_a_batch_together_are_the_whole_batch() {
    // Multi-scale sizes: the images of one batch differ in size, so each shard must pad to
    // the whole batch's size and draw each image's scale and flip by its place in it.
    let data = shapes(16);
    let base = LoaderConfig {
        batch_size: 4,
        seed: 3,
        num_workers: 1,
        ..LoaderConfig::default()
    };
    let whole = collect(&loader(&data, base.clone(), Mode::Train), 1);
    let shard = |index| {
        let config = LoaderConfig {
            shard: Shard { index, count: 2 },
            ..base.clone()
        };
        collect(&loader(&data, config, Mode::Train), 1)
    };
    let (first, second) = (shard(0), shard(1));
    assert_eq!(whole.len(), 4);
    assert_eq!((first.len(), second.len()), (4, 4));
    let mut distinct_sizes = 0;
    for ((w, a), b) in whole.iter().zip(&first).zip(&second) {
        let ids: Vec<u64> = a.image_ids.iter().chain(&b.image_ids).copied().collect();
        assert_eq!(ids, w.image_ids);
        let sizes: Vec<_> = a
            .image_sizes
            .iter()
            .chain(&b.image_sizes)
            .copied()
            .collect();
        assert_eq!(sizes, w.image_sizes);
        distinct_sizes += usize::from(w.image_sizes.iter().any(|s| *s != w.image_sizes[0]));
        assert_eq!(a.images.dims4().unwrap().0, 2);
        let joined = candle_core::Tensor::cat(&[&a.images, &b.images], 0).unwrap();
        assert_eq!(
            joined.dims(),
            w.images.dims(),
            "each shard pads as the whole batch"
        );
        assert_eq!(
            joined.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            flat(w)
        );
        for (s, t) in a.targets.iter().chain(&b.targets).zip(&w.targets) {
            assert_eq!(
                s.boxes.to_vec2::<f32>().unwrap(),
                t.boxes.to_vec2::<f32>().unwrap()
            );
        }
    }
    assert!(
        distinct_sizes > 0,
        "some batch mixes sizes (else padding is not tested)"
    );
}
