//! The 12 COCO summary numbers, per-category AP, and their printed forms
//! (`COCOeval.summarize`).
use serde_json::{json, Map, Value};

use super::accumulate::{CategoryCurves, UNDEFINED};
use super::params::{AREA_RANGES, IOU_THRESHOLDS, MAX_DETECTIONS, RECALL_POINTS};
use crate::coco::CategoryId;

/// Keys of [`CocoMetrics::stats`], in pycocotools' `stats` order.
pub const STAT_NAMES: [&str; 12] = [
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
];

/// One summary number: AP or AR, an IoU threshold (None = mean over all), area range, maxDets.
struct StatSpec {
    precision: bool,
    iou: Option<f64>,
    area: usize,
    max_dets: usize,
}

const fn spec(precision: bool, iou: Option<f64>, area: usize, max_dets: usize) -> StatSpec {
    StatSpec {
        precision,
        iou,
        area,
        max_dets,
    }
}

/// pycocotools' `_summarizeDets`.
const STATS: [StatSpec; 12] = [
    spec(true, None, 0, 100),
    spec(true, Some(0.5), 0, 100),
    spec(true, Some(0.75), 0, 100),
    spec(true, None, 1, 100),
    spec(true, None, 2, 100),
    spec(true, None, 3, 100),
    spec(false, None, 0, 1),
    spec(false, None, 0, 10),
    spec(false, None, 0, 100),
    spec(false, None, 1, 100),
    spec(false, None, 2, 100),
    spec(false, None, 3, 100),
];

/// AP of one category (IoU 0.50:0.95, all areas, 100 detections).
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryAp {
    pub id: CategoryId,
    pub name: String,
    /// [`UNDEFINED`] (-1) when the category has no ground truth.
    pub ap: f64,
}

/// Evaluation results.
#[derive(Debug, Clone, PartialEq)]
pub struct CocoMetrics {
    /// pycocotools' `stats`, named by [`STAT_NAMES`]; -1 where undefined.
    pub stats: [f64; 12],
    /// Per category, by ascending category id.
    pub per_category: Vec<CategoryAp>,
}

/// Mean of the defined (> -1) values, or -1 when none (pycocotools' `mean(s[s > -1])`).
fn mean_defined(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for v in values.filter(|&v| v > UNDEFINED) {
        sum += v;
        n += 1;
    }
    if n == 0 {
        UNDEFINED
    } else {
        sum / n as f64
    }
}

impl CocoMetrics {
    pub(crate) fn from_curves(
        categories: &[(CategoryId, String)],
        curves: &[CategoryCurves],
    ) -> Self {
        let (t_n, r_n, m_n) = (IOU_THRESHOLDS.len(), RECALL_POINTS, MAX_DETECTIONS.len());
        let mut stats = [UNDEFINED; 12];
        for (stat, s) in stats.iter_mut().zip(&STATS) {
            let m = MAX_DETECTIONS
                .iter()
                .position(|&d| d == s.max_dets)
                .unwrap_or(0);
            // Exact equality with the threshold doubles, as pycocotools' np.where does.
            let thresholds: Vec<usize> = (0..t_n)
                .filter(|&t| s.iou.is_none_or(|iou| IOU_THRESHOLDS[t] == iou))
                .collect();
            *stat = if s.precision {
                mean_defined(thresholds.iter().flat_map(|&t| {
                    (0..r_n).flat_map(move |r| {
                        curves
                            .iter()
                            .map(move |c| c.precision[((s.area * m_n + m) * t_n + t) * r_n + r])
                    })
                }))
            } else {
                mean_defined(thresholds.iter().flat_map(|&t| {
                    curves
                        .iter()
                        .map(move |c| c.recall[(s.area * m_n + m) * t_n + t])
                }))
            };
        }
        let m100 = m_n - 1;
        let per_category = categories
            .iter()
            .zip(curves)
            .map(|((id, name), c)| CategoryAp {
                id: *id,
                name: name.clone(),
                ap: mean_defined((0..t_n * r_n).map(|i| c.precision[m100 * t_n * r_n + i])),
            })
            .collect();
        CocoMetrics {
            stats,
            per_category,
        }
    }

    /// The 12 lines pycocotools' `summarize()` prints, byte for byte.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for (value, s) in self.stats.iter().zip(&STATS) {
            let (title, kind) = if s.precision {
                ("Average Precision", "(AP)")
            } else {
                ("Average Recall", "(AR)")
            };
            let iou = match s.iou {
                Some(t) => format!("{t:.2}"),
                None => format!("{:.2}:{:.2}", IOU_THRESHOLDS[0], IOU_THRESHOLDS[9]),
            };
            let area = AREA_RANGES[s.area].label;
            out.push_str(&format!(
                " {title:<18} {kind} @[ IoU={iou:<9} | area={area:>6} | maxDets={:>3} ] = {value:.3}\n",
                s.max_dets
            ));
        }
        out
    }

    /// Per-category AP as a table sorted by name.
    pub fn per_category_table(&self) -> String {
        let mut rows: Vec<&CategoryAp> = self.per_category.iter().collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(8).max(8);
        let mut out = format!(
            "{:<width$} | {:>6}\n{:-<width$}-+-{:->6}\n",
            "category", "AP", "", ""
        );
        for r in rows {
            let ap = if r.ap > UNDEFINED {
                format!("{:.3}", r.ap)
            } else {
                "-".to_string() // no ground truth
            };
            out.push_str(&format!("{:<width$} | {ap:>6}\n", r.name));
        }
        out
    }

    /// `{"AP": .., "AP50": .., ..., "per_category": {name: AP}}` (fractions, -1 where undefined).
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (name, value) in STAT_NAMES.iter().zip(self.stats) {
            map.insert(name.to_string(), json!(value));
        }
        let per_category: Map<String, Value> = self
            .per_category
            .iter()
            .map(|c| (c.name.clone(), json!(c.ap)))
            .collect();
        map.insert("per_category".to_string(), Value::Object(per_category));
        Value::Object(map)
    }
}
