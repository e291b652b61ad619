//! [`Grammar`]: the compiled form of "any JSON", "a JSON object" or a JSON Schema, a small graph
//! of value shapes that the [matcher](crate::matcher) walks byte by byte.

use crate::GrammarError;

/// Index of a [`Node`] in [`Grammar::nodes`].
pub(crate) type NodeId = u32;

/// Containers (objects and arrays) nested deeper than this are never generated: a free-form
/// value stops offering `{` and `[` at this depth, and a schema that needs more is an error.
pub const MAX_DEPTH: usize = 24;
/// Whitespace bytes allowed in one gap between tokens of JSON (after `{`, around `:` and `,`,
/// before `}` / `]`, before a value), so that a model cannot loop on spaces or newlines.
pub const MAX_WS: u8 = 20;
/// Declared properties of one object schema (the matcher tracks them in a 64-bit set).
pub const MAX_PROPERTIES: usize = 64;
/// Digits in each part of a generated number (integer part, fraction); the exponent takes 2,
/// so every generated number fits an f64.
pub const MAX_NUMBER_DIGITS: u8 = 16;
/// Grammar nodes one schema may compile to (bounds `$ref` expansion).
pub const MAX_NODES: usize = 20_000;
/// Values in one `enum`, and the length of one `enum`/`const` value's JSON text.
pub const MAX_LITERALS: usize = 4096;

/// One value shape.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    /// An object. With declared properties only those are generated, in schema order, each
    /// optional one possibly skipped; without, `free` gives the schema of any key's value
    /// (`None`: only `{}`).
    Object(ObjectNode),
    /// An array of `items` with `min..=max` elements.
    Array { items: NodeId, min: u32, max: u32 },
    /// Any JSON string.
    String,
    /// A JSON number; `integer` allows no fraction and no exponent.
    Number { integer: bool },
    /// One of these exact JSON texts (enum/const, `true`/`false`/`null`), sorted and unique.
    Literals(Vec<Vec<u8>>),
    /// Any of these shapes.
    Union(Vec<NodeId>),
}

/// A declared property: its key as JSON text (quotes included), its value, and whether it is
/// required.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Prop {
    pub key: Vec<u8>,
    pub node: NodeId,
    pub required: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ObjectNode {
    pub props: Vec<Prop>,
    pub free: Option<NodeId>,
}

impl ObjectNode {
    /// The properties that may come next after the first `done` ones were passed (written or
    /// skipped): every later one up to and including the first required one.
    pub fn next_keys(&self, done: usize) -> u64 {
        let mut set = 0u64;
        for (i, p) in self.props.iter().enumerate().skip(done) {
            set |= 1 << i;
            if p.required {
                break;
            }
        }
        set
    }

    /// Whether the object may close after the first `done` properties were passed.
    pub fn can_close(&self, done: usize) -> bool {
        self.props.iter().skip(done).all(|p| !p.required)
    }
}

/// A compiled grammar for one JSON value: [`Grammar::any_json`], [`Grammar::json_object`], or
/// [`Grammar::from_schema`].
///
/// Whitespace between JSON tokens is limited to [`MAX_WS`] bytes per gap and containers to
/// [`MAX_DEPTH`] levels; nothing may follow the complete value but an end-of-generation token.
#[derive(Clone, Debug, PartialEq)]
pub struct Grammar {
    pub(crate) nodes: Vec<Node>,
    pub(crate) root: NodeId,
}

/// The nodes every grammar starts with, at fixed ids.
pub(crate) const ANY: NodeId = 0;
pub(crate) const ANY_OBJECT: NodeId = 1;
pub(crate) const ANY_ARRAY: NodeId = 2;
pub(crate) const STRING: NodeId = 3;
pub(crate) const NUMBER: NodeId = 4;
pub(crate) const INTEGER: NodeId = 5;
pub(crate) const BOOLEAN: NodeId = 6;
pub(crate) const NULL: NodeId = 7;
pub(crate) const KEYWORDS: NodeId = 8;
/// An object with no properties at all: `{}`.
pub(crate) const EMPTY_OBJECT: NodeId = 9;

impl Grammar {
    /// The fixed nodes, with `root` as the root.
    pub(crate) fn base(root: NodeId) -> Grammar {
        let nodes = vec![
            Node::Union(vec![ANY_OBJECT, ANY_ARRAY, STRING, NUMBER, KEYWORDS]),
            Node::Object(ObjectNode {
                props: Vec::new(),
                free: Some(ANY),
            }),
            Node::Array {
                items: ANY,
                min: 0,
                max: u32::MAX,
            },
            Node::String,
            Node::Number { integer: false },
            Node::Number { integer: true },
            Node::Literals(vec![b"false".to_vec(), b"true".to_vec()]),
            Node::Literals(vec![b"null".to_vec()]),
            Node::Literals(vec![b"false".to_vec(), b"null".to_vec(), b"true".to_vec()]),
            Node::Object(ObjectNode {
                props: Vec::new(),
                free: None,
            }),
        ];
        Grammar { nodes, root }
    }

    /// Any JSON value.
    pub fn any_json() -> Grammar {
        Self::base(ANY)
    }

    /// Any JSON object (OpenAI's `response_format: {"type": "json_object"}`).
    pub fn json_object() -> Grammar {
        Self::base(ANY_OBJECT)
    }

    /// Compiles a JSON Schema; see the crate documentation for what is supported. An
    /// unsupported keyword is [`GrammarError::Unsupported`], naming it and where it is.
    pub fn from_schema(schema: &serde_json::Value) -> Result<Grammar, GrammarError> {
        crate::schema::compile(schema)
    }

    /// Number of nodes (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: every grammar holds its fixed nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub(crate) fn node(&self, id: NodeId) -> &Node {
        // Ids are only ever made by the compiler, which pushes the node first.
        &self.nodes[id as usize]
    }
}

/// A literal set from JSON values (compact JSON text), sorted and deduplicated.
pub(crate) fn literals(values: &[&serde_json::Value]) -> Result<Vec<Vec<u8>>, GrammarError> {
    if values.len() > MAX_LITERALS {
        return Err(GrammarError::TooLarge {
            what: "enum values",
            limit: MAX_LITERALS,
        });
    }
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        let text = serde_json::to_vec(v).map_err(|e| GrammarError::Invalid {
            path: String::new(),
            reason: e.to_string(),
        })?;
        if text.len() > MAX_LITERALS {
            return Err(GrammarError::TooLarge {
                what: "bytes of JSON text in one enum/const value",
                limit: MAX_LITERALS,
            });
        }
        out.push(text);
    }
    out.sort();
    out.dedup();
    Ok(out)
}
