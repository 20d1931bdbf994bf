//! Building one batch of the loader: decode its images, draw each one's augmentation, transform them
//! straight into the zero-padded `[B, 3, H, W]` buffer, and scale the targets with them.
use candle_core::{Device, Tensor};

use super::batch::{Batch, Targets};
use super::config::Mode;
use super::job::{JobOutput, LoaderError, Shared};
use crate::rng::SplitMix64;
use crate::transforms::{
    flip_boxes_horizontally, padded_size, resize_boxes, resize_normalize_into, resized_size,
};

/// Decodes and transforms this loader's shard of one batch (`members`: the whole batch).
/// Never panics on bad input.
pub(crate) fn build_batch(shared: &Shared, members: &[usize], epoch: u64, job: usize) -> JobOutput {
    let (cfg, tf, dataset) = (&shared.config, &shared.transform, &shared.dataset);
    let mine = cfg.shard.range(members.len());
    let mut skipped = Vec::new();
    let mut decoded = Vec::with_capacity(mine.len());
    for (slot, &i) in members.iter().enumerate() {
        if !mine.contains(&slot) {
            continue;
        }
        let item = &shared.items[i];
        match dataset.load_image(item.record) {
            Ok(image) => decoded.push((slot, item, image)),
            Err(source) => {
                let err = LoaderError::Image {
                    image_id: item.image_id,
                    record: item.record,
                    source,
                };
                if !cfg.skip_bad_images {
                    return (Err(err), skipped);
                }
                skipped.push(err.to_string());
            }
        }
    }
    if decoded.is_empty() {
        return (Ok(None), skipped);
    }
    // Per-image augmentation, keyed by position in the whole batch so any worker (and any
    // rank) draws the same.
    let plan = |slot: usize, (height, width): (usize, usize)| {
        let (min_size, flip) = match shared.mode {
            Mode::Eval => (*tf.min_size.last().unwrap_or(&800), false),
            Mode::Train => {
                let mut rng = SplitMix64::derive(cfg.seed, &[epoch, job as u64, slot as u64]);
                let flip = rng.next_f64() < cfg.flip_probability;
                let choice = rng.below(tf.min_size.len().max(1));
                (*tf.min_size.get(choice).unwrap_or(&800), flip)
            }
        };
        (flip, resized_size(height, width, min_size, tf.max_size))
    };
    let plans: Vec<(bool, (usize, usize))> = decoded
        .iter()
        .map(|(slot, _, image)| plan(*slot, (image.height, image.width)))
        .collect();
    let sizes: Vec<(usize, usize)> = plans.iter().map(|p| p.1).collect();
    // The other shards' images count towards the padded size as in the whole batch; their
    // sizes are the records' (a decoded image of another size is an error).
    let others = members
        .iter()
        .enumerate()
        .filter(|(slot, _)| !mine.contains(slot));
    let other_sizes = others.map(|(slot, &i)| {
        let info = &dataset.coco.images[shared.items[i].record];
        plan(slot, (info.height as usize, info.width as usize)).1
    });
    let all_sizes: Vec<(usize, usize)> = sizes.iter().copied().chain(other_sizes).collect();
    let (ph, pw) = padded_size(&all_sizes, tf.size_divisible);
    let per_image = 3 * ph * pw;
    let mut buffer = vec![0f32; decoded.len() * per_image];
    let mut original_sizes = Vec::with_capacity(decoded.len());
    let mut image_ids = Vec::with_capacity(decoded.len());
    let mut targets = Vec::with_capacity(decoded.len());
    for (b, ((_, item, image), (flip, size))) in decoded.iter().zip(&plans).enumerate() {
        let dst = &mut buffer[b * per_image..(b + 1) * per_image];
        resize_normalize_into(
            image,
            *size,
            *flip,
            tf.image_mean,
            tf.image_std,
            dst,
            (ph, pw),
        );
        let original = (image.height, image.width);
        let boxes = if *flip {
            flip_boxes_horizontally(&item.boxes, image.width)
        } else {
            item.boxes.clone()
        };
        let boxes = resize_boxes(&boxes, original, *size);
        let n = boxes.len();
        let flat: Vec<f32> = boxes.into_iter().flatten().collect();
        let target = (|| -> candle_core::Result<Targets> {
            Ok(Targets {
                boxes: Tensor::from_vec(flat, (n, 4), &Device::Cpu)?, // [N, 4]
                labels: Tensor::from_vec(item.labels.clone(), n, &Device::Cpu)?, // [N]
            })
        })();
        match target {
            Ok(t) => targets.push(t),
            Err(e) => return (Err(e.into()), skipped),
        }
        original_sizes.push(original);
        image_ids.push(item.image_id);
    }
    // [B, 3, H, W]
    let images = match Tensor::from_vec(buffer, (decoded.len(), 3, ph, pw), &Device::Cpu) {
        Ok(images) => images,
        Err(e) => return (Err(e.into()), skipped),
    };
    let batch = Batch {
        images,
        image_sizes: sizes,
        original_sizes,
        image_ids,
        targets,
    };
    (Ok(Some(batch)), skipped)
}
