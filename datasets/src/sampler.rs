//! Which images go into which batch, per epoch: a seeded shuffle, then torchvision's
//! aspect-ratio grouping (`references/detection/group_by_aspect_ratio.py`).
//!
//! Grouping: images are binned by `height / width` (torchvision's aspect ratio) with bin edges `2^linspace(-1, 1, 2k + 1)`
//! (k = the group factor; torchvision's default is 3, giving 8 groups), `group =
//! bisect_right(edges, ratio)`. Walking the shuffled order, each group fills its own buffer and a
//! batch is emitted when a buffer holds `batch_size` images. The epoch has `N / batch_size`
//! batches; when the walk ends short of that, the fullest leftover buffers are completed by
//! repeating their group's images in epoch order (torchvision's `GroupedBatchSampler`).
use crate::rng::SplitMix64;

/// Upper bin edges for `height / width` ratios with group factor `k` (`[1.0]` when `k == 0`).
pub fn aspect_ratio_bins(k: usize) -> Vec<f64> {
    if k == 0 {
        return vec![1.0];
    }
    let n = 2 * k + 1;
    (0..n)
        .map(|i| {
            let e = if i == n - 1 {
                1.0
            } else {
                -1.0 + i as f64 * (2.0 / (n - 1) as f64)
            };
            2f64.powf(e)
        })
        .collect()
}

/// The group of each image given as `(width, height)`: the number of bin edges
/// `<= height / width` (`bisect_right`, as torchvision's `_quantize`).
pub fn aspect_ratio_groups(sizes: &[(u32, u32)], k: usize) -> Vec<usize> {
    let bins = aspect_ratio_bins(k);
    sizes
        .iter()
        .map(|&(w, h)| {
            let r = h as f64 / w.max(1) as f64;
            bins.partition_point(|&b| b <= r)
        })
        .collect()
}

/// The epoch's image order: `0..n` shuffled by `(seed, epoch)`, or in order when not shuffling.
pub fn epoch_order(n: usize, seed: u64, epoch: u64, shuffle: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if shuffle {
        SplitMix64::derive(seed, &[0x5A3D, epoch]).shuffle(&mut order);
    }
    order
}

/// Batches of `order` keeping groups apart, `order.len() / batch_size` of them (see the module
/// docs). `groups[i]` is the group of item `i`.
pub fn grouped_batches(order: &[usize], groups: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let b = batch_size.max(1);
    let expected = order.len() / b;
    let n_groups = groups.iter().max().map_or(0, |m| m + 1);
    let mut buffers: Vec<Vec<usize>> = vec![Vec::new(); n_groups];
    let mut seen: Vec<Vec<usize>> = vec![Vec::new(); n_groups];
    let mut batches = Vec::with_capacity(expected);
    // Groups with a non-empty buffer, in the order torchvision's dict would list them: a group
    // is appended when its buffer starts and removed when the buffer is emitted.
    let mut dict_order: Vec<usize> = Vec::new();
    for &i in order {
        let g = groups[i];
        if buffers[g].is_empty() {
            dict_order.push(g);
        }
        buffers[g].push(i);
        seen[g].push(i);
        if buffers[g].len() == b {
            batches.push(std::mem::take(&mut buffers[g]));
            dict_order.retain(|&x| x != g);
        }
    }
    // Fullest leftovers first; ties keep the dict order (Python's sort is stable).
    let mut leftovers = dict_order;
    leftovers.sort_by_key(|&g| std::cmp::Reverse(buffers[g].len()));
    for g in leftovers {
        if batches.len() >= expected {
            break;
        }
        let mut batch = std::mem::take(&mut buffers[g]);
        let mut k = 0;
        while batch.len() < b {
            batch.push(seen[g][k % seen[g].len()]);
            k += 1;
        }
        batches.push(batch);
    }
    batches
}

/// Consecutive batches of `order` (the last may be short unless `drop_last`).
pub fn plain_batches(order: &[usize], batch_size: usize, drop_last: bool) -> Vec<Vec<usize>> {
    order
        .chunks(batch_size.max(1))
        .filter(|c| !drop_last || c.len() == batch_size)
        .map(|c| c.to_vec())
        .collect()
}

#[cfg(test)]
mod tests;
