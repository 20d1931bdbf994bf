//! [`GraphBuilder`]: appends ONNX nodes and initializers with generated, deterministic value
//! names (`<op>_<n>`), plus the attribute and constant helpers every stage uses.
use super::proto::{attribute_type, data_type, AttributeProto, NodeProto, TensorProto};

/// A graph under construction: nodes in topological order (the order they are added).
#[derive(Debug, Default)]
pub struct GraphBuilder {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    counter: usize,
}

impl GraphBuilder {
    /// A fresh value name with `hint` in it.
    pub fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    /// Adds `op(inputs) -> outputs` (`outputs` fresh names); returns the output names.
    pub fn node_n(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: usize,
        attribute: Vec<AttributeProto>,
    ) -> Vec<String> {
        let output: Vec<String> = (0..outputs).map(|_| self.fresh(op)).collect();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: output.clone(),
            name: format!("{op}_node_{}", self.nodes.len()),
            op_type: op.to_string(),
            attribute,
        });
        output
    }

    /// A single-output node.
    pub fn node(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        self.node_n(op, inputs, 1, attribute).remove(0)
    }

    /// An f32 initializer named `name` (taken as given: weight names stay readable).
    pub fn init_f32(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        let raw_data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_init(name, dims, data_type::FLOAT, raw_data)
    }

    /// An i64 initializer.
    pub fn init_i64(&mut self, name: &str, dims: &[usize], data: &[i64]) -> String {
        let raw_data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_init(name, dims, data_type::INT64, raw_data)
    }

    /// Adds an initializer; a name already present (the RPN head, shared by every level) is
    /// reused, not duplicated.
    fn push_init(&mut self, name: &str, dims: &[usize], data_type: i32, raw: Vec<u8>) -> String {
        if self.initializers.iter().any(|t| t.name == name) {
            return name.to_string();
        }
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type,
            name: name.to_string(),
            raw_data: raw,
        });
        name.to_string()
    }

    /// A 1-D i64 constant.
    pub fn ints(&mut self, values: &[i64]) -> String {
        let name = self.fresh("const_i64");
        self.init_i64(&name, &[values.len()], values)
    }

    /// A scalar (rank 0) i64 constant.
    pub fn int(&mut self, value: i64) -> String {
        let name = self.fresh("const_i64");
        self.init_i64(&name, &[], &[value])
    }

    /// A scalar (rank 0) f32 constant.
    pub fn float(&mut self, value: f32) -> String {
        let name = self.fresh("const_f32");
        self.init_f32(&name, &[], &[value])
    }

    /// A 1-D f32 constant.
    pub fn floats(&mut self, values: &[f32]) -> String {
        let name = self.fresh("const_f32");
        self.init_f32(&name, &[values.len()], values)
    }

    // Shorthands for the ops used everywhere.

    pub fn binary(&mut self, op: &str, a: &str, b: &str) -> String {
        self.node(op, &[a, b], vec![])
    }

    pub fn unary(&mut self, op: &str, a: &str) -> String {
        self.node(op, &[a], vec![])
    }

    /// `Gather(data, indices, axis)`.
    pub fn gather(&mut self, data: &str, indices: &str, axis: i64) -> String {
        self.node("Gather", &[data, indices], vec![attr_i("axis", axis)])
    }

    /// `Cast(x, to)` with an ONNX data type.
    pub fn cast(&mut self, x: &str, to: i32) -> String {
        self.node("Cast", &[x], vec![attr_i("to", i64::from(to))])
    }

    /// `Reshape(x, shape)` with a constant shape.
    pub fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        let shape = self.ints(shape);
        self.node("Reshape", &[x, &shape], vec![])
    }

    /// `Unsqueeze(x, axes)`.
    pub fn unsqueeze(&mut self, x: &str, axes: &[i64]) -> String {
        let axes = self.ints(axes);
        self.node("Unsqueeze", &[x, &axes], vec![])
    }

    /// `Squeeze(x, axes)`.
    pub fn squeeze(&mut self, x: &str, axes: &[i64]) -> String {
        let axes = self.ints(axes);
        self.node("Squeeze", &[x, &axes], vec![])
    }

    /// `Concat(inputs, axis)`.
    pub fn concat(&mut self, inputs: &[&str], axis: i64) -> String {
        self.node("Concat", inputs, vec![attr_i("axis", axis)])
    }

    /// `x[..., start:end]` along `axis` (constant bounds).
    pub fn slice(&mut self, x: &str, axis: i64, start: i64, end: i64) -> String {
        let (s, e, a) = (self.ints(&[start]), self.ints(&[end]), self.ints(&[axis]));
        self.node("Slice", &[x, &s, &e, &a], vec![])
    }

    /// `Compress(x, condition, axis = 0)`: the rows where `condition` holds.
    pub fn compress_rows(&mut self, x: &str, condition: &str) -> String {
        self.node("Compress", &[x, condition], vec![attr_i("axis", 0)])
    }

    /// The length of `x` along `axis` as a 1-D i64 tensor `[1]`.
    pub fn dim(&mut self, x: &str, axis: i64) -> String {
        let shape = self.unary("Shape", x);
        let index = self.ints(&[axis]);
        self.gather(&shape, &index, 0)
    }
}

pub fn attr_i(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: Some(value),
        r#type: attribute_type::INT,
        ..Default::default()
    }
}

pub fn attr_f(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f: Some(value),
        r#type: attribute_type::FLOAT,
        ..Default::default()
    }
}

pub fn attr_s(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: Some(value.as_bytes().to_vec()),
        r#type: attribute_type::STRING,
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: values.to_vec(),
        r#type: attribute_type::INTS,
        ..Default::default()
    }
}
