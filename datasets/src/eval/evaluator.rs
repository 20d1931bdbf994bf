//! [`CocoEvaluator`]: ground truth in, detections fed image by image (or all at once),
//! [`CocoMetrics`] out.
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::accumulate::{accumulate_category, CategoryCurves};
use super::match_image::{Candidate, GroundTruth};
use super::results::{load_results, Detection};
use super::summary::CocoMetrics;
use super::EvalError;
use crate::coco::{CategoryId, CocoDataset, ImageId};

/// COCO box evaluation with pycocotools' semantics (`COCOeval(gt, dt, "bbox")` with default
/// parameters: every image and category of the annotation file).
///
/// ```no_run
/// # use datasets::coco::CocoDataset;
/// # use datasets::eval::{CocoEvaluator, Detection};
/// let gt = CocoDataset::load("instances_val2017.json")?;
/// let mut evaluator = CocoEvaluator::new(&gt);
/// evaluator.add_detections(&[Detection { image_id: 139, category_id: 1,
///     bbox: [10.0, 20.0, 30.0, 40.0], score: 0.9 }])?;
/// let metrics = evaluator.evaluate();
/// print!("{}", metrics.summary());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct CocoEvaluator {
    /// Image id → position among the ascending image ids.
    image_rank: HashMap<ImageId, u32>,
    /// Category id → position among the ascending category ids.
    category_index: HashMap<CategoryId, usize>,
    /// `(id, name)` by ascending id.
    categories: Vec<(CategoryId, String)>,
    /// Per category: ground truth ordered by image, file order within an image.
    gts: Vec<Vec<GroundTruth>>,
    /// Per category: detections in feed order.
    dts: Vec<Vec<Candidate>>,
}

impl CocoEvaluator {
    /// Indexes the ground truth (crowd regions included: they are "ignore" regions).
    pub fn new(gt: &CocoDataset) -> Self {
        let mut image_ids: Vec<ImageId> = gt.images.iter().map(|i| i.id).collect();
        image_ids.sort_unstable();
        image_ids.dedup();
        let image_rank: HashMap<ImageId, u32> = image_ids
            .iter()
            .enumerate()
            .map(|(r, &id)| (id, r as u32))
            .collect();
        let mut categories: Vec<(CategoryId, String)> = gt
            .categories
            .iter()
            .map(|c| (c.id, c.name.clone()))
            .collect();
        categories.sort_by_key(|c| c.0);
        categories.dedup_by_key(|c| c.0);
        let category_index: HashMap<CategoryId, usize> = categories
            .iter()
            .enumerate()
            .map(|(k, c)| (c.0, k))
            .collect();
        let mut gts = vec![Vec::new(); categories.len()];
        for ann in &gt.annotations {
            // A validated dataset has no unknown ids; skip them rather than panic otherwise.
            let (Some(&image), Some(&k)) = (
                image_rank.get(&ann.image_id),
                category_index.get(&ann.category_id),
            ) else {
                continue;
            };
            gts[k].push(GroundTruth {
                image,
                id: ann.id,
                bbox: ann.bbox,
                area: ann.area,
                crowd: ann.iscrowd,
            });
        }
        for per_category in &mut gts {
            per_category.sort_by_key(|g| g.image); // stable: file order within an image
        }
        let dts = vec![Vec::new(); categories.len()];
        CocoEvaluator {
            image_rank,
            category_index,
            categories,
            gts,
            dts,
        }
    }

    /// Adds detections (of one image or many). Among equal scores on an image, earlier-fed
    /// detections rank first, as earlier lines of a results file do in pycocotools.
    ///
    /// Errors (and adds nothing) if an image id is not in the annotations, a category id is not
    /// one of its categories, or a value is not finite.
    pub fn add_detections(&mut self, detections: &[Detection]) -> Result<(), EvalError> {
        self.add_named(detections, "detections")
    }

    /// Reads a COCO results file and adds its detections; errors name the file.
    pub fn add_results_file(&mut self, path: impl AsRef<Path>) -> Result<usize, EvalError> {
        let path = path.as_ref();
        let detections = load_results(path)?;
        self.add_named(&detections, &path.display().to_string())?;
        Ok(detections.len())
    }

    fn add_named(&mut self, detections: &[Detection], source_name: &str) -> Result<(), EvalError> {
        let mut resolved = Vec::with_capacity(detections.len());
        for (index, d) in detections.iter().enumerate() {
            let Some(&image) = self.image_rank.get(&d.image_id) else {
                return Err(EvalError::UnknownImage {
                    source_name: source_name.to_string(),
                    index,
                    image_id: d.image_id,
                });
            };
            let Some(&k) = self.category_index.get(&d.category_id) else {
                return Err(EvalError::UnknownCategory {
                    source_name: source_name.to_string(),
                    index,
                    category_id: d.category_id,
                });
            };
            if !d.score.is_finite() || d.bbox.iter().any(|v| !v.is_finite()) {
                return Err(EvalError::NonFinite {
                    source_name: source_name.to_string(),
                    index,
                    bbox: d.bbox,
                    score: d.score,
                });
            }
            let bbox = d.bbox;
            resolved.push((
                k,
                Candidate {
                    image,
                    bbox,
                    score: d.score,
                },
            ));
        }
        for (k, candidate) in resolved {
            self.dts[k].push(candidate);
        }
        Ok(())
    }

    /// Number of detections fed so far.
    pub fn num_detections(&self) -> usize {
        self.dts.iter().map(Vec::len).sum()
    }

    /// Matches and accumulates every category (in parallel over categories, on all cores) and
    /// returns the metrics. The fed detections are kept: more can be added and `evaluate`
    /// called again.
    pub fn evaluate(&self) -> CocoMetrics {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.evaluate_with_threads(threads)
    }

    /// [`Self::evaluate`] on at most `threads` threads (1 = on the calling thread).
    pub fn evaluate_with_threads(&self, threads: usize) -> CocoMetrics {
        let n = self.categories.len();
        let results: Mutex<Vec<Option<CategoryCurves>>> = Mutex::new(vec![None; n]);
        let next = AtomicUsize::new(0);
        let work = || loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            if k >= n {
                break;
            }
            let mut dts = self.dts[k].clone();
            let curves = accumulate_category(&self.gts[k], &mut dts);
            if let Ok(mut r) = results.lock() {
                r[k] = Some(curves);
            }
        };
        let threads = threads.clamp(1, n.max(1));
        if threads == 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(work);
                }
            });
        }
        let curves: Vec<CategoryCurves> = results
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .into_iter()
            .map(|c| c.expect("every category is evaluated"))
            .collect();
        CocoMetrics::from_curves(&self.categories, &curves)
    }
}
