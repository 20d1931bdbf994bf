//! The evaluation settings of pycocotools' `Params(iouType="bbox")`, value for value.

/// IoU thresholds 0.50:0.05:0.95, exactly as `np.linspace(.5, 0.95, 10)` rounds them (note
/// 0.8999999999999999): matching compares IoUs against these doubles, so they must be equal.
pub const IOU_THRESHOLDS: [f64; 10] = [
    0.5,
    0.55,
    0.6,
    0.65,
    0.7,
    0.75,
    0.8,
    0.85,
    0.899_999_999_999_999_9,
    0.95,
];

/// Number of recall points, 0:0.01:1 (`np.linspace(0, 1, 101)`, which equals `i * 0.01`).
pub const RECALL_POINTS: usize = 101;

/// Recall threshold `i` of the 101, as numpy's linspace computes it.
pub fn recall_threshold(i: usize) -> f64 {
    i as f64 * 0.01
}

/// Maximum detections per image, ascending (`maxDets`).
pub const MAX_DETECTIONS: [usize; 3] = [1, 10, 100];

/// An object-area range, inclusive at both ends, in pixels² (`areaRng`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AreaRange {
    pub label: &'static str,
    pub min: f64,
    pub max: f64,
}

impl AreaRange {
    /// pycocotools' test: outside when `area < min or area > max`.
    pub fn contains(&self, area: f64) -> bool {
        !(area < self.min || area > self.max)
    }
}

/// all, small (< 32²), medium (32²..96²), large (> 96²); `1e5 ** 2` as the open upper end.
pub const AREA_RANGES: [AreaRange; 4] = [
    AreaRange {
        label: "all",
        min: 0.0,
        max: 1e10,
    },
    AreaRange {
        label: "small",
        min: 0.0,
        max: 1024.0,
    },
    AreaRange {
        label: "medium",
        min: 1024.0,
        max: 9216.0,
    },
    AreaRange {
        label: "large",
        min: 9216.0,
        max: 1e10,
    },
];

/// pycocotools' `np.spacing(1)`, added to precision's denominator.
pub const EPSILON: f64 = f64::EPSILON;

/// Detections of a category on one image beyond this many (the largest `maxDets`) are dropped
/// before matching, after sorting by score.
pub const MAX_DETECTIONS_PER_IMAGE: usize = 100;

#[cfg(test)]
mod tests;
