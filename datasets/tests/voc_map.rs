//! Pascal VOC AP@0.5 on a three-image fixture, against values worked out by hand below
//! (the reference: the VOC devkit's `VOCevaldet.m` rules, applied on paper).
//!
//! Ground truth (continuous xyxy; the VOC files hold the 1-based inclusive pixels
//! `[x1 + 1, y1 + 1, x2, y2]`), read through the VOC reader:
//! - image 1: cat A [0,0,10,10]; cat B [20,20,30,30] difficult; dog C [0,0,20,20]
//! - image 2: cat D [0,0,10,10]; cat E [50,50,60,60]
//! - image 3: cat F [0,0,10,10] difficult; dog G [0,0,10,10]
//!
//! cat: npos = 3 (A, D, E). Detections by falling score:
//! | det | score | image, box           | best match, IoU   | outcome     | tp fp | recall | precision |
//! | d1  | 0.95  | 1 [0,0,10,10]        | A, 1              | TP (A taken)| 1 0   | 1/3    | 1         |
//! | d2  | 0.90  | 1 [20,20,30,30]      | B (difficult), 1  | ignored     | 1 0   | 1/3    | 1         |
//! | d3  | 0.85  | 1 [0,0,10,10]        | A, 1 (taken)      | FP (dup)    | 1 1   | 1/3    | 1/2       |
//! | d4  | 0.80  | 2 [0,0,10,20]        | D, 100/200 = 0.5  | TP (>= 0.5) | 2 1   | 2/3    | 2/3       |
//! | d5  | 0.70  | 3 [0,0,10,10]        | F (difficult), 1  | ignored     | 2 1   | 2/3    | 2/3       |
//! | d6  | 0.60  | 2 [100,100,110,110]  | none              | FP          | 2 2   | 2/3    | 1/2       |
//! | d7  | 0.50  | 2 [50,50,60,60]      | E, 1              | TP          | 3 2   | 1      | 3/5       |
//!
//! VOC07 (11 points): t = 0, .1, .2, .3 → max precision at recall >= t = 1 (4 points);
//! t = .4, .5, .6 → max over recall 2/3 and 1 = 2/3 (3 points); t = .7 .. 1 → 3/5 (4 points).
//! AP07 = (4 + 3 * 2/3 + 4 * 3/5) / 11 = 8.4 / 11.
//! VOC12 (area): the envelope is 1 up to recall 1/3, 2/3 up to 2/3, 3/5 up to 1:
//! AP12 = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/5 = 34/45.
//!
//! dog: npos = 2 (C, G).
//! | e1 | 0.9 | 3 [0,0,10,10] | G, 1                | TP | recall 1/2 | precision 1   |
//! | e2 | 0.8 | 1 [0,0,10,10] | C, 100/400 = 0.25   | FP | recall 1/2 | precision 1/2 |
//! VOC07: t = 0 .. .5 → 1 (6 points), t = .6 .. 1 → none, 0. AP07 = 6/11.
//! VOC12: 1/2 * 1 = 1/2 (no recall beyond 1/2).
//!
//! The other 18 VOC classes have no boxes: no AP, left out of the means.
//! mAP07 = (8.4/11 + 6/11) / 2 = 14.4/22; mAP12 = (34/45 + 1/2) / 2 = 113/180.
//!
//! d4 pins the devkit's `>=` at exactly IoU 0.5 (the Python port's `>` would make it a FP);
//! d2 and d5 pin "a match on a difficult box is ignored", d3 pins duplicates.
use datasets::eval::{Detection, VocEvaluator};
use datasets::formats::read_voc;

/// `(name, xyxy continuous, difficult)` per image.
type Boxes = &'static [(&'static str, [i64; 4], bool)];
const IMAGES: [Boxes; 3] = [
    &[
        ("cat", [0, 0, 10, 10], false),
        ("cat", [20, 20, 30, 30], true),
        ("dog", [0, 0, 20, 20], false),
    ],
    &[
        ("cat", [0, 0, 10, 10], false),
        ("cat", [50, 50, 60, 60], false),
    ],
    &[
        ("cat", [0, 0, 10, 10], true),
        ("dog", [0, 0, 10, 10], false),
    ],
];

fn detection(image_id: u64, category_id: u64, [x1, y1, x2, y2]: [f64; 4], score: f64) -> Detection {
    Detection {
        image_id,
        category_id,
        bbox: [x1, y1, x2 - x1, y2 - y1],
        score,
    }
}

#[test]
fn voc07_and_voc12_ap_match_the_hand_worked_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("VOC");
    std::fs::create_dir_all(root.join("Annotations")).unwrap();
    std::fs::create_dir_all(root.join("ImageSets/Main")).unwrap();
    for (i, boxes) in IMAGES.iter().enumerate() {
        let mut xml =
            String::from("<annotation><size><width>200</width><height>200</height></size>\n");
        for (name, [x1, y1, x2, y2], difficult) in boxes.iter() {
            xml += &format!(
                "<object><name>{name}</name><difficult>{}</difficult><bndbox><xmin>{}</xmin>\
                 <ymin>{}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>\n",
                *difficult as u8,
                x1 + 1,
                y1 + 1
            );
        }
        xml += "</annotation>\n";
        std::fs::write(root.join(format!("Annotations/{}.xml", i + 1)), xml).unwrap();
    }
    std::fs::write(root.join("ImageSets/Main/test.txt"), "1\n2\n3\n").unwrap();
    let gt = read_voc(&[root], "test").unwrap().coco;
    let id = |name: &str| gt.categories.iter().find(|c| c.name == name).unwrap().id;
    let (cat, dog) = (id("cat"), id("dog"));
    let mut evaluator = VocEvaluator::new(&gt);
    // Fed out of score order and interleaved across classes: the evaluator sorts.
    evaluator
        .add_detections(&[
            detection(2, cat, [50., 50., 60., 60.], 0.50),
            detection(1, cat, [0., 0., 10., 10.], 0.95),
            detection(1, dog, [0., 0., 10., 10.], 0.8),
            detection(1, cat, [20., 20., 30., 30.], 0.90),
            detection(2, cat, [100., 100., 110., 110.], 0.60),
            detection(1, cat, [0., 0., 10., 10.], 0.85),
            detection(3, dog, [0., 0., 10., 10.], 0.9),
            detection(2, cat, [0., 0., 10., 20.], 0.80),
            detection(3, cat, [0., 0., 10., 10.], 0.70),
        ])
        .unwrap();
    let m = evaluator.evaluate();
    let class = |name: &str| m.classes.iter().find(|c| c.name == name).unwrap();
    // Sums of a few exact fractions in f64: 1e-12 absorbs their rounding.
    let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-12;
    assert_eq!(class("cat").positives, 3);
    assert!(close(class("cat").ap07, 8.4 / 11.0), "{:?}", class("cat"));
    assert!(close(class("cat").ap12, 34.0 / 45.0), "{:?}", class("cat"));
    assert_eq!(class("dog").positives, 2);
    assert!(close(class("dog").ap07, 6.0 / 11.0), "{:?}", class("dog"));
    assert!(close(class("dog").ap12, 0.5), "{:?}", class("dog"));
    assert_eq!(class("bird").ap07, None);
    assert!((m.map07 - 14.4 / 22.0).abs() < 1e-12, "{}", m.map07);
    assert!((m.map12 - 113.0 / 180.0).abs() < 1e-12, "{}", m.map12);
    let table = m.table();
    assert!(
        table.contains("cat") && table.contains("0.7636") && table.contains("0.7556"),
        "{table}"
    );
}
