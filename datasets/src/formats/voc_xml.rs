//! One Pascal VOC annotation file (`Annotations/<id>.xml`) parsed into plain values, with the
//! line of every element kept for error messages.
//!
//! The fields we read, as the VOC devkit writes them: `<filename>`, `<size><width><height>`,
//! and per `<object>`: `<name>`, `<difficult>` (0/1, absent = 0) and
//! `<bndbox><xmin><ymin><xmax><ymax>`. Other fields (`<pose>`, `<truncated>`, `<segmented>`,
//! `<part>`, ...) are accepted and ignored.
use std::path::Path;

use roxmltree::{Document, Node};

use super::FormatError;

/// One `<object>`.
#[derive(Debug, Clone, PartialEq)]
pub struct VocObject {
    pub name: String,
    /// Marked difficult: VOC evaluation ignores it, training leaves it out.
    pub difficult: bool,
    /// `[xmin, ymin, xmax, ymax]` as written: 1-based pixel indices, both ends inclusive.
    pub bndbox: [f64; 4],
    /// Line of the `<object>` element.
    pub line: u32,
}

/// One annotation file.
#[derive(Debug, Clone, PartialEq)]
pub struct VocAnnotation {
    pub filename: Option<String>,
    /// `(width, height)` from `<size>`, when present and non-zero.
    pub size: Option<(u32, u32)>,
    pub objects: Vec<VocObject>,
}

/// Parses the text of `path` (named in errors).
pub fn parse_voc_xml(text: &str, path: &Path) -> Result<VocAnnotation, FormatError> {
    let doc = Document::parse(text).map_err(|e| {
        let pos = e.pos();
        let message = e.to_string();
        // roxmltree's message ends with " at L:C"; the position is reported separately.
        let message = match message.rsplit_once(" at ") {
            Some((cause, _)) => cause.to_string(),
            None => message,
        };
        FormatError::Xml {
            path: path.to_path_buf(),
            line: pos.row,
            column: pos.col,
            message,
        }
    })?;
    let line_of = |node: Node| doc.text_pos_at(node.range().start).row;
    let error = |node: Node, message: String| FormatError::Voc {
        path: path.to_path_buf(),
        line: line_of(node),
        message,
    };
    let root = doc.root_element();
    if root.tag_name().name() != "annotation" {
        return Err(error(
            root,
            format!(
                "the root element is <{}>, expected <annotation>",
                root.tag_name().name()
            ),
        ));
    }
    let filename = child(root, "filename").map(|n| text_of(n).to_string());
    let size = match child(root, "size") {
        Some(size) => {
            let w = number(size, "width", &error)?;
            let h = number(size, "height", &error)?;
            let whole = |v: f64| v >= 0.0 && v.fract() == 0.0 && v <= u32::MAX as f64;
            if !whole(w) || !whole(h) {
                return Err(error(
                    size,
                    format!("<size> is {w} x {h}, expected whole pixel counts"),
                ));
            }
            (w > 0.0 && h > 0.0).then_some((w as u32, h as u32))
        }
        None => None,
    };
    let mut objects = Vec::new();
    for object in root.children().filter(|n| n.has_tag_name("object")) {
        let name = match child(object, "name") {
            Some(n) if !text_of(n).is_empty() => text_of(n).to_string(),
            _ => return Err(error(object, "<object> has no <name>".into())),
        };
        let difficult = match child(object, "difficult") {
            None => false,
            Some(d) => match text_of(d) {
                "0" | "" => false,
                "1" => true,
                other => {
                    return Err(error(
                        d,
                        format!("<difficult> is `{other}`, expected 0 or 1"),
                    ))
                }
            },
        };
        let Some(bndbox) = child(object, "bndbox") else {
            return Err(error(object, format!("<object> `{name}` has no <bndbox>")));
        };
        let mut b = [0.0; 4];
        for (v, field) in b.iter_mut().zip(["xmin", "ymin", "xmax", "ymax"]) {
            *v = number(bndbox, field, &error)?;
        }
        if b[2] < b[0] || b[3] < b[1] {
            return Err(error(
                bndbox,
                format!(
                    "<bndbox> of `{name}` has xmin {} ymin {} xmax {} ymax {}: expected xmin <= \
                     xmax and ymin <= ymax",
                    b[0], b[1], b[2], b[3]
                ),
            ));
        }
        objects.push(VocObject {
            name,
            difficult,
            bndbox: b,
            line: line_of(object),
        });
    }
    Ok(VocAnnotation {
        filename,
        size,
        objects,
    })
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name(name))
}

fn text_of<'a>(node: Node<'a, '_>) -> &'a str {
    node.text().unwrap_or("").trim()
}

/// The finite number in `node`'s child element `field`.
fn number(
    node: Node,
    field: &str,
    error: &impl Fn(Node, String) -> FormatError,
) -> Result<f64, FormatError> {
    let Some(element) = child(node, field) else {
        return Err(error(
            node,
            format!("<{}> has no <{field}>", node.tag_name().name()),
        ));
    };
    match text_of(element).parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(error(
            element,
            format!("<{field}> is `{}`, expected a number", text_of(element)),
        )),
    }
}
