use std::path::{Path, PathBuf};

use super::voc_xml::parse_voc_xml;
use super::yolo::label_path;
use super::*;

const XML: &str = "<annotation>
  <filename>000005.jpg</filename>
  <size><width>500</width><height>375</height><depth>3</depth></size>
  <object>
    <name>chair</name><pose>Rear</pose><truncated>0</truncated><difficult>0</difficult>
    <bndbox><xmin>263</xmin><ymin>211</ymin><xmax>324</xmax><ymax>339</ymax></bndbox>
  </object>
  <object>
    <name>chair</name><difficult>1</difficult>
    <bndbox><xmin>5</xmin><ymin>244</ymin><xmax>67</xmax><ymax>374</ymax></bndbox>
  </object>
</annotation>";

#[test]
fn reads_the_devkit_fields() {
    let ann = parse_voc_xml(XML, Path::new("a.xml")).unwrap();
    assert_eq!(ann.filename.as_deref(), Some("000005.jpg"));
    assert_eq!(ann.size, Some((500, 375)));
    assert_eq!(ann.objects.len(), 2);
    assert_eq!(ann.objects[0].bndbox, [263.0, 211.0, 324.0, 339.0]);
    assert!(!ann.objects[0].difficult && ann.objects[1].difficult);
    assert_eq!((ann.objects[0].line, ann.objects[1].line), (4, 8));
}

#[test]
fn one_pixel_voc_box_is_one_pixel_wide() {
    // Pixel (1, 1) alone, 1-based inclusive: the continuous square [0, 1] x [0, 1].
    assert_eq!(voc_box_to_xywh([1.0, 1.0, 1.0, 1.0]), [0.0, 0.0, 1.0, 1.0]);
    // VOC2007 000005's first chair: pixels 263..=324 are 62 wide, 211..=339 are 129 tall.
    assert_eq!(
        voc_box_to_xywh([263.0, 211.0, 324.0, 339.0]),
        [262.0, 210.0, 62.0, 129.0]
    );
}

#[test]
fn bad_xml_names_file_and_line() {
    let text = "<annotation>\n<object>\n<name>dog</name>\n</annotation>";
    let err = parse_voc_xml(text, Path::new("x/1.xml"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("x/1.xml:4:"), "{err}");
    let text = "<annotation>\n<object>\n<name>dog</name>\n<bndbox><xmin>1</xmin><ymin>a</ymin>\
                <xmax>2</xmax><ymax>3</ymax></bndbox></object></annotation>";
    let err = parse_voc_xml(text, Path::new("x/2.xml"))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "x/2.xml:4: <ymin> is `a`, expected a number");
    let text = "<annotation>\n<object>\n<name>dog</name>\n</object></annotation>";
    let err = parse_voc_xml(text, Path::new("x/3.xml"))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "x/3.xml:2: <object> `dog` has no <bndbox>");
    let text = "<annotation><object><name>dog</name>\n<bndbox><xmin>9</xmin><ymin>1</ymin>\
                <xmax>2</xmax><ymax>3</ymax></bndbox></object></annotation>";
    let err = parse_voc_xml(text, Path::new("x/4.xml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("x/4.xml:2: <bndbox> of `dog` has xmin 9"),
        "{err}"
    );
}

#[test]
fn labels_sit_beside_images() {
    assert_eq!(
        label_path(Path::new("d/images/train/a.jpg")),
        PathBuf::from("d/labels/train/a.txt")
    );
    // The last `images` folder is the one replaced.
    assert_eq!(
        label_path(Path::new("images/x/images/b.png")),
        PathBuf::from("images/x/labels/b.txt")
    );
    // No `images` folder: the label file is beside the image.
    assert_eq!(label_path(Path::new("d/c.jpg")), PathBuf::from("d/c.txt"));
}

#[test]
fn layouts_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        Layout::of(Path::new("a/instances.json")),
        Some(Layout::Coco)
    );
    assert_eq!(Layout::of(Path::new("a/data.yaml")), Some(Layout::Yolo));
    assert_eq!(Layout::of(dir.path()), None);
    std::fs::create_dir(dir.path().join("Annotations")).unwrap();
    assert_eq!(Layout::of(dir.path()), Some(Layout::Voc));
    assert_eq!(Layout::of(Path::new("a/labels.csv")), None);
}
