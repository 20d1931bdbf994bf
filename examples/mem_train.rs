//! Where the heap goes in one training step (the `bench_train` step: Faster R-CNN, random
//! weights, trainable_layers 3, SGD momentum 0.9): live and peak heap bytes at each phase
//! (counted by a global allocator, so glibc's cached free memory is not in them), the bytes
//! the autograd graph holds per tensor shape at the end of the forward, and what the GradStore
//! holds after backward beyond the parameters' gradients.
//!
//!     cargo run --release --example mem_train -- [BACKBONE] [HEIGHT] [WIDTH] [BATCH]
#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use candle_core::{Device, Storage, Tensor};
use detect::model::config::DetectorConfig;
use detect::train::solver::Sgd;
use detect::train::step::build_model;
use heads::roi_heads::Target;

#[global_allocator]
static ALLOC: counting_alloc::Counting = counting_alloc::Counting;

const GB: f64 = 1e9;

/// Prints the seconds since the last call, live heap and its peak since the last call, then
/// starts a new window.
fn phase(name: &str, since: &mut Instant) {
    let (live, peak) = (counting_alloc::live(), counting_alloc::take_peak());
    println!(
        "{name:<22} {:>6.2} s   live {:>7.3} GB   peak during {:>7.3} GB",
        since.elapsed().as_secs_f64(),
        live as f64 / GB,
        peak as f64 / GB
    );
    *since = Instant::now();
}

/// The storage of `t` (address, bytes), for counting shared storage once.
fn storage_of(t: &Tensor) -> (usize, usize) {
    let (s, _) = t.storage_and_layout();
    match &*s {
        Storage::Cpu(candle_core::CpuStorage::F32(v)) => (v.as_ptr() as usize, v.len() * 4),
        Storage::Cpu(candle_core::CpuStorage::U32(v)) => (v.as_ptr() as usize, v.len() * 4),
        Storage::Cpu(candle_core::CpuStorage::I64(v)) => (v.as_ptr() as usize, v.len() * 8),
        _ => (0, 0),
    }
}

/// Bytes held by the tracked nodes of `loss`'s graph, per shape (each storage once).
fn graph_bytes(loss: &Tensor) {
    let mut seen = HashSet::new();
    let mut by_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for node in loss.sorted_nodes() {
        let (addr, bytes) = storage_of(node);
        let e = by_kind.entry(format!("{:?}", node.dims())).or_default();
        e.0 += 1;
        if seen.insert(addr) {
            e.1 += bytes;
        }
    }
    let total: usize = by_kind.values().map(|e| e.1).sum();
    println!(
        "graph: {:.3} GB in tracked nodes' storage",
        total as f64 / GB
    );
    let mut rows: Vec<_> = by_kind.into_iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1 .1));
    for (kind, (count, bytes)) in rows.iter().take(25) {
        println!(
            "  {kind:<40} {count:>5} nodes {:>7.3} GB",
            *bytes as f64 / GB
        );
    }
}

fn main() -> anyhow::Result<()> {
    detect::process::configure(); // as the `detect` binary
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("resnext101_32x4d", |s| s.as_str());
    let h: usize = args.get(1).map_or(Ok(800), |s| s.parse())?;
    let w: usize = args.get(2).map_or(Ok(1333), |s| s.parse())?;
    let batch: usize = args.get(3).map_or(Ok(2), |s| s.parse())?;
    let dev = Device::Cpu;
    let mut t = Instant::now();
    let config = DetectorConfig::from_backbone_name(name, 91)?;
    let (model, params) = build_model(&config, Default::default(), 0, &dev)?;
    let mut sgd = Sgd::new(params.trainable(), 0.9, 1e-4)?;
    let (ph, pw) = (h.div_ceil(32) * 32, w.div_ceil(32) * 32);
    let image = Tensor::randn(0f32, 1.0, (1, 3, ph, pw), &dev)?;
    let images = Tensor::cat(&vec![&image; batch], 0)?;
    let boxes = [
        [100f32, 120., 500., 600.],
        [700., 200., 1100., 500.],
        [300., 550., 420., 760.],
    ];
    let targets: Vec<Target> = (0..batch)
        .map(|_| {
            Ok(Target {
                boxes: Tensor::new(&boxes, &dev)?,
                labels: Tensor::new(&[1u32, 18, 62], &dev)?,
            })
        })
        .collect::<candle_core::Result<_>>()?;
    let param_ids: HashSet<_> = params.trainable().iter().map(|(_, v)| v.id()).collect();
    println!("{name} {h}x{w} (padded {ph}x{pw}) batch {batch}");
    phase("build", &mut t);
    for it in 0..2 {
        let losses = model.losses(&images, &vec![(h, w); batch], &targets, it, 0)?;
        let loss = losses.total()?;
        phase("forward", &mut t);
        if it == 1 {
            graph_bytes(&loss);
            t = Instant::now();
        }
        let grads = loss.backward()?;
        phase("backward", &mut t);
        let extra: usize = grads
            .get_ids()
            .filter(|id| !param_ids.contains(id))
            .map(|id| grads.get_id(*id).map_or(0, |g| g.elem_count() * 4))
            .sum();
        let count = grads.get_ids().filter(|id| !param_ids.contains(id)).count();
        println!(
            "  grads of non-parameters left in the GradStore: {count} ({:.3} GB)",
            extra as f64 / GB
        );
        drop((loss, losses));
        phase("graph dropped", &mut t);
        sgd.step(&grads, 1e-4)?;
        drop(grads);
        phase("sgd + grads dropped", &mut t);
    }
    Ok(())
}
