use prost::Message;

use super::*;
use crate::export::graph::attr_i;

/// Bytes worked out by hand from the protobuf wire format (tag = field << 3 | wire type).
#[test]
fn opset_import_encodes_as_onnx_expects() {
    let opset = OperatorSetIdProto {
        domain: String::new(),
        version: 17,
    };
    // The empty default domain is omitted; version: field 2, varint 17.
    assert_eq!(opset.encode_to_vec(), vec![0x10, 17]);
}

/// An attribute holding the default value still carries its value field (`onnx.checker`
/// requires the field named by `type`): `axis = 0` keeps `i: 0`.
#[test]
fn attribute_with_default_value_keeps_its_field() {
    let bytes = attr_i("axis", 0).encode_to_vec();
    let expected = [
        vec![0x0a, 4], // name: field 1, length-delimited, 4 bytes
        b"axis".to_vec(),
        vec![0x18, 0],       // i: field 3, varint 0
        vec![0xa0, 0x01, 2], // type: field 20 (varint tag 160), INT = 2
    ]
    .concat();
    assert_eq!(bytes, expected);
}

#[test]
fn dynamic_dimension_round_trips() {
    let dim = Dimension {
        value: Some(DimensionValue::DimParam("height".into())),
    };
    let back = Dimension::decode(dim.encode_to_vec().as_slice()).unwrap();
    assert_eq!(back, dim);
    let zero = Dimension {
        value: Some(DimensionValue::DimValue(0)),
    };
    // A oneof member is written even when it is zero.
    assert_eq!(zero.encode_to_vec(), vec![0x08, 0]);
}
