//! JSON Schema → [`Grammar`].
//!
//! Every keyword is either used, an annotation that changes nothing (`title`, `description`,
//! `default`, ...), or an error naming it: a schema is never partly ignored, so whatever the
//! grammar generates validates against the schema.

use serde_json::{Map, Value};

use crate::grammar::{
    literals, Grammar, Node, NodeId, ObjectNode, Prop, ANY, ANY_ARRAY, ANY_OBJECT, BOOLEAN,
    EMPTY_OBJECT, INTEGER, MAX_DEPTH, MAX_NODES, MAX_PROPERTIES, NULL, NUMBER, STRING,
};
use crate::GrammarError;

/// Keywords that describe a schema without constraining values.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "$defs",
    "definitions",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Keywords this compiler understands.
const HANDLED: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
];

pub(crate) fn compile(schema: &Value) -> Result<Grammar, GrammarError> {
    let mut c = Compiler {
        doc: schema,
        g: Grammar::base(ANY),
        refs: Vec::new(),
    };
    let root = c.node(schema, "", 0)?;
    c.g.root = root;
    Ok(c.g)
}

struct Compiler<'a> {
    doc: &'a Value,
    g: Grammar,
    /// `$ref`s being expanded, outermost first (a repeat is recursion).
    refs: Vec<String>,
}

fn unsupported(path: &str, feature: impl Into<String>) -> GrammarError {
    GrammarError::Unsupported {
        feature: feature.into(),
        path: display_path(path),
    }
}

fn invalid(path: &str, reason: impl Into<String>) -> GrammarError {
    GrammarError::Invalid {
        path: display_path(path),
        reason: reason.into(),
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    }
}

/// The JSON type names a value has (an integer is also a number).
fn value_types(v: &Value) -> &'static [&'static str] {
    match v {
        Value::Null => &["null"],
        Value::Bool(_) => &["boolean"],
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) {
                &["integer", "number"]
            } else {
                &["number"]
            }
        }
        Value::String(_) => &["string"],
        Value::Array(_) => &["array"],
        Value::Object(_) => &["object"],
    }
}

impl Compiler<'_> {
    fn add(&mut self, node: Node) -> Result<NodeId, GrammarError> {
        if self.g.nodes.len() >= MAX_NODES {
            return Err(GrammarError::TooLarge {
                what: "grammar nodes (after expanding $ref)",
                limit: MAX_NODES,
            });
        }
        self.g.nodes.push(node);
        Ok((self.g.nodes.len() - 1) as NodeId)
    }

    /// The node for `schema` found at `path`, whose values sit inside `depth` containers.
    fn node(&mut self, schema: &Value, path: &str, depth: usize) -> Result<NodeId, GrammarError> {
        let obj = match schema {
            Value::Bool(true) => return Ok(ANY),
            Value::Bool(false) => {
                return Err(GrammarError::Unsatisfiable {
                    path: display_path(path),
                    reason: "the schema `false` accepts no value".into(),
                })
            }
            Value::Object(o) => o,
            _ => return Err(invalid(path, "a schema must be an object or a boolean")),
        };
        for key in obj.keys() {
            if !ANNOTATIONS.contains(&key.as_str()) && !HANDLED.contains(&key.as_str()) {
                return Err(unsupported(&format!("{path}/{key}"), key.clone()));
            }
        }
        let constraining: Vec<&str> = obj
            .keys()
            .map(String::as_str)
            .filter(|k| HANDLED.contains(k))
            .collect();
        let only = |allowed: &[&str]| constraining.iter().all(|k| allowed.contains(k));

        if let Some(r) = obj.get("$ref") {
            if !only(&["$ref"]) {
                return Err(unsupported(path, "$ref with sibling keywords"));
            }
            return self.reference(r, path, depth);
        }
        if let Some(all) = obj.get("allOf") {
            let Some([single]) = all.as_array().map(Vec::as_slice) else {
                return Err(unsupported(
                    &format!("{path}/allOf"),
                    "allOf with more than one schema",
                ));
            };
            if !only(&["allOf"]) {
                return Err(unsupported(path, "allOf with sibling keywords"));
            }
            return self.node(single, &format!("{path}/allOf/0"), depth);
        }
        for kw in ["anyOf", "oneOf"] {
            if let Some(alts) = obj.get(kw) {
                if !only(&[kw]) {
                    return Err(unsupported(path, format!("{kw} with sibling keywords")));
                }
                return self.union(kw, alts, path, depth);
            }
        }
        if obj.contains_key("enum") || obj.contains_key("const") {
            if !only(&["enum", "const", "type"]) {
                return Err(unsupported(
                    path,
                    "enum/const together with keywords other than type",
                ));
            }
            return self.enumeration(obj, path);
        }

        let types: Vec<&str> = match obj.get("type") {
            None => {
                if ["properties", "required", "additionalProperties"]
                    .iter()
                    .any(|k| obj.contains_key(*k))
                {
                    vec!["object"]
                } else if ["items", "minItems", "maxItems"]
                    .iter()
                    .any(|k| obj.contains_key(*k))
                {
                    vec!["array"]
                } else {
                    return Ok(ANY);
                }
            }
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => {
                let mut v = Vec::new();
                for t in ts {
                    let t = t
                        .as_str()
                        .ok_or_else(|| invalid(&format!("{path}/type"), "types must be strings"))?;
                    if !v.contains(&t) {
                        v.push(t);
                    }
                }
                if v.is_empty() {
                    return Err(GrammarError::Unsatisfiable {
                        path: display_path(path),
                        reason: "an empty type list accepts no value".into(),
                    });
                }
                v
            }
            Some(_) => {
                return Err(invalid(
                    &format!("{path}/type"),
                    "type must be a string or a list",
                ))
            }
        };
        let mut alts = Vec::new();
        for t in &types {
            let id = match *t {
                "object" => self.object(obj, path, depth)?,
                "array" => self.array(obj, path, depth)?,
                "string" => STRING,
                "number" => NUMBER,
                "integer" => INTEGER,
                "boolean" => BOOLEAN,
                "null" => NULL,
                other => {
                    return Err(invalid(
                        &format!("{path}/type"),
                        format!("unknown type {other:?}"),
                    ))
                }
            };
            alts.push(id);
        }
        if types.contains(&"number") && types.contains(&"integer") {
            alts.retain(|&a| a != INTEGER);
        }
        match alts.as_slice() {
            [one] => Ok(*one),
            _ => self.add(Node::Union(alts)),
        }
    }

    fn reference(&mut self, r: &Value, path: &str, depth: usize) -> Result<NodeId, GrammarError> {
        let r = r
            .as_str()
            .ok_or_else(|| invalid(&format!("{path}/$ref"), "$ref must be a string"))?;
        let Some(pointer) = r.strip_prefix('#') else {
            return Err(unsupported(
                &format!("{path}/$ref"),
                format!("non-local $ref {r:?}"),
            ));
        };
        if self.refs.iter().any(|x| x == r) {
            return Err(unsupported(
                &format!("{path}/$ref"),
                format!("recursive $ref {r:?}"),
            ));
        }
        let target = self.doc.pointer(pointer).ok_or_else(|| {
            invalid(
                &format!("{path}/$ref"),
                format!("{r:?} points at nothing in this schema"),
            )
        })?;
        self.refs.push(r.to_string());
        let id = self.node(target, &format!("{path}/$ref({r})"), depth);
        self.refs.pop();
        id
    }

    fn union(
        &mut self,
        kw: &str,
        alts: &Value,
        path: &str,
        depth: usize,
    ) -> Result<NodeId, GrammarError> {
        let list = alts
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| invalid(&format!("{path}/{kw}"), "must be a non-empty list"))?;
        let mut ids = Vec::new();
        for (i, s) in list.iter().enumerate() {
            ids.push(self.node(s, &format!("{path}/{kw}/{i}"), depth)?);
        }
        if kw == "oneOf" {
            for i in 0..ids.len() {
                for j in i + 1..ids.len() {
                    if !self.disjoint(ids[i], ids[j]) {
                        return Err(unsupported(
                            &format!("{path}/oneOf"),
                            format!(
                                "oneOf whose branches {i} and {j} can match the same value \
                                 (use anyOf, or tell them apart by type or by a required const/enum property)"
                            ),
                        ));
                    }
                }
            }
        }
        let mut flat = Vec::new();
        for id in ids {
            match self.g.node(id) {
                Node::Union(inner) => flat.extend_from_slice(inner),
                _ => flat.push(id),
            }
        }
        flat.dedup();
        match flat.as_slice() {
            [one] => Ok(*one),
            _ => self.add(Node::Union(flat)),
        }
    }

    /// JSON kinds a node can produce: bit 0 object, 1 array, 2 string, 3 number, 4 boolean,
    /// 5 null.
    fn kinds(&self, id: NodeId) -> u8 {
        match self.g.node(id) {
            Node::Object(_) => 1,
            Node::Array { .. } => 2,
            Node::String => 4,
            Node::Number { .. } => 8,
            Node::Literals(lits) => lits.iter().fold(0, |k, l| {
                k | match l.first() {
                    Some(b'{') => 1,
                    Some(b'[') => 2,
                    Some(b'"') => 4,
                    Some(b't' | b'f') => 16,
                    Some(b'n') => 32,
                    _ => 8,
                }
            }),
            Node::Union(alts) => alts.iter().fold(0, |k, &a| k | self.kinds(a)),
        }
    }

    /// Whether no value can match both nodes (conservative: false when unsure).
    fn disjoint(&self, a: NodeId, b: NodeId) -> bool {
        if self.kinds(a) & self.kinds(b) == 0 {
            return true;
        }
        match (self.g.node(a), self.g.node(b)) {
            (Node::Literals(x), Node::Literals(y)) => x.iter().all(|l| {
                !y.iter().any(|m| match (parse_f64(l), parse_f64(m)) {
                    (Some(p), Some(q)) => p == q,
                    _ => l == m,
                })
            }),
            (Node::Union(alts), _) => alts.iter().all(|&x| self.disjoint(x, b)),
            (_, Node::Union(alts)) => alts.iter().all(|&y| self.disjoint(a, y)),
            (Node::Object(x), Node::Object(y)) => x.props.iter().any(|p| {
                p.required
                    && y.props
                        .iter()
                        .any(|q| q.key == p.key && q.required && self.disjoint(p.node, q.node))
            }),
            _ => false,
        }
    }

    fn enumeration(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
    ) -> Result<NodeId, GrammarError> {
        let mut values: Vec<&Value> = Vec::new();
        if let Some(e) = obj.get("enum") {
            let list = e
                .as_array()
                .ok_or_else(|| invalid(&format!("{path}/enum"), "enum must be a list"))?;
            values.extend(list);
        }
        if let Some(c) = obj.get("const") {
            if obj.contains_key("enum") {
                values.retain(|v| *v == c);
            } else {
                values.push(c);
            }
        }
        if let Some(t) = obj.get("type") {
            let types: Vec<&str> = match t {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => {
                    return Err(invalid(
                        &format!("{path}/type"),
                        "type must be a string or a list",
                    ))
                }
            };
            values.retain(|v| value_types(v).iter().any(|vt| types.contains(vt)));
        }
        if values.is_empty() {
            return Err(GrammarError::Unsatisfiable {
                path: display_path(path),
                reason: "no enum/const value is left".into(),
            });
        }
        let lits = literals(&values)?;
        self.add(Node::Literals(lits))
    }

    fn object(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<NodeId, GrammarError> {
        if depth >= MAX_DEPTH {
            return Err(GrammarError::TooLarge {
                what: "levels of nested objects and arrays",
                limit: MAX_DEPTH,
            });
        }
        let empty = Map::new();
        let props = match obj.get("properties") {
            None => &empty,
            Some(Value::Object(p)) => p,
            Some(_) => return Err(invalid(&format!("{path}/properties"), "must be an object")),
        };
        let mut required: Vec<&str> = Vec::new();
        if let Some(r) = obj.get("required") {
            let list = r
                .as_array()
                .ok_or_else(|| invalid(&format!("{path}/required"), "must be a list"))?;
            for name in list {
                let name = name.as_str().ok_or_else(|| {
                    invalid(&format!("{path}/required"), "must be a list of strings")
                })?;
                required.push(name);
            }
        }
        let additional = obj.get("additionalProperties");
        let additional_false = matches!(additional, Some(Value::Bool(false)));
        let mut out = Vec::new();
        for (name, sub) in props {
            let node = self.node(sub, &format!("{path}/properties/{name}"), depth + 1)?;
            out.push((name.as_str(), node));
        }
        // A required name without a schema of its own takes additionalProperties.
        for name in &required {
            if props.contains_key(*name) || out.iter().any(|(n, _)| n == name) {
                continue;
            }
            let node = match additional {
                Some(Value::Bool(false)) => {
                    return Err(GrammarError::Unsatisfiable {
                        path: display_path(path),
                        reason: format!(
                            "{name:?} is required but not a property, and additionalProperties is false"
                        ),
                    })
                }
                None | Some(Value::Bool(true)) => ANY,
                Some(s) => self.node(s, &format!("{path}/additionalProperties"), depth + 1)?,
            };
            out.push((name, node));
        }
        if out.is_empty() {
            // No names: a map whose values follow additionalProperties.
            let free = match additional {
                Some(Value::Bool(false)) => return Ok(EMPTY_OBJECT),
                None | Some(Value::Bool(true)) => return Ok(ANY_OBJECT),
                Some(s) => self.node(s, &format!("{path}/additionalProperties"), depth + 1)?,
            };
            return self.add(Node::Object(ObjectNode {
                props: Vec::new(),
                free: Some(free),
            }));
        }
        if let Some(a) = additional {
            if !additional_false {
                // Still checked, so that a malformed one is reported.
                if !matches!(a, Value::Bool(true)) {
                    self.node(a, &format!("{path}/additionalProperties"), depth + 1)?;
                }
            }
        }
        if out.len() > MAX_PROPERTIES {
            return Err(GrammarError::TooLarge {
                what: "properties in one object",
                limit: MAX_PROPERTIES,
            });
        }
        let props = out
            .into_iter()
            .map(|(name, node)| {
                Ok(Prop {
                    key: serde_json::to_vec(name).map_err(|e| invalid(path, e.to_string()))?,
                    node,
                    required: required.contains(&name),
                })
            })
            .collect::<Result<Vec<_>, GrammarError>>()?;
        self.add(Node::Object(ObjectNode { props, free: None }))
    }

    fn array(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<NodeId, GrammarError> {
        if depth >= MAX_DEPTH {
            return Err(GrammarError::TooLarge {
                what: "levels of nested objects and arrays",
                limit: MAX_DEPTH,
            });
        }
        let count = |key: &str| -> Result<Option<u32>, GrammarError> {
            match obj.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .or_else(|| {
                        v.as_f64()
                            .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                            .map(|f| f as u64)
                    })
                    .map(|n| Some(n.min(u32::MAX as u64) as u32))
                    .ok_or_else(|| {
                        invalid(&format!("{path}/{key}"), "must be a non-negative integer")
                    }),
            }
        };
        let min = count("minItems")?.unwrap_or(0);
        let max = count("maxItems")?.unwrap_or(u32::MAX);
        if min > max {
            return Err(GrammarError::Unsatisfiable {
                path: display_path(path),
                reason: format!("minItems {min} > maxItems {max}"),
            });
        }
        let items = match obj.get("items") {
            None => ANY,
            Some(Value::Array(_)) => {
                return Err(unsupported(
                    &format!("{path}/items"),
                    "items as a list (tuple validation)",
                ))
            }
            Some(s) => self.node(s, &format!("{path}/items"), depth + 1)?,
        };
        if items == ANY && min == 0 && max == u32::MAX {
            return Ok(ANY_ARRAY);
        }
        self.add(Node::Array { items, min, max })
    }
}

fn parse_f64(text: &[u8]) -> Option<f64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}
