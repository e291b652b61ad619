//! hearth-grammar: constrained decoding for JSON and JSON Schema.
//!
//! This crate owns:
//!
//! - [`Grammar`]: any JSON value ([`Grammar::any_json`]), any object ([`Grammar::json_object`],
//!   OpenAI's `json_object`), or a JSON Schema compiled by [`Grammar::from_schema`];
//! - [`VocabIndex`]: a tokenizer's vocabulary as a byte trie, built once per tokenizer;
//! - [`JsonConstraint`]: the [`hearth_sample::Constraint`] that masks, at each step, every token
//!   that would break the grammar (end-of-generation only once the value is complete);
//! - [`tool_call_schema`], [`tool_system_prompt`] and [`parse_tool_output`]: tool calls for
//!   models whose chat template has no tool-call format.
//!
//! # JSON Schema support
//!
//! | keyword | meaning here |
//! |---|---|
//! | `type` (string or list) | `object`, `array`, `string`, `number`, `integer`, `boolean`, `null` |
//! | `properties`, `required` | generated in schema order; optional ones may be left out |
//! | `additionalProperties` | see below |
//! | `items`, `minItems`, `maxItems` | one item schema for every element |
//! | `enum`, `const` | exactly one of the values (compact JSON text) |
//! | `anyOf`, `oneOf` | any branch; `oneOf` only when its branches cannot match the same value (different types, or a required property with disjoint `const`/`enum` values) |
//! | `allOf` with one schema, local `$ref` (`#/$defs/…`, `#/definitions/…`) | expanded in place; recursion is an error |
//! | `title`, `description`, `default`, `examples`, `$schema`, `$id`, `$comment`, `$defs`, `definitions`, `deprecated`, `readOnly`, `writeOnly` | ignored (annotations) |
//!
//! Every other keyword (`pattern`, `format`, `minLength`, `minimum`, `not`, `if`, tuple `items`,
//! `patternProperties`, ...) is [`GrammarError::Unsupported`], naming the keyword and where it is,
//! never silently ignored. `{}` and `true` are any value; `false` is
//! [`GrammarError::Unsatisfiable`].
//!
//! **additionalProperties.** An object schema that names properties generates only those, in
//! the order the schema lists them (serde_json's `preserve_order` keeps that order), whatever
//! `additionalProperties` says: leaving extra properties out is valid under `true`, a schema or
//! a missing keyword, and is what `false` demands. An object schema that names no properties
//! generates a map of free keys whose values follow `additionalProperties` (any value when it is
//! missing or `true`), or only `{}` when it is `false`. A required name without a schema of its
//! own takes `additionalProperties`.
//!
//! **Bounds.** At most [`MAX_WS`] whitespace bytes per gap between JSON tokens (spaces and tabs,
//! with at most one newline; no `\r`), containers at
//! most [`MAX_DEPTH`] deep, numbers at most [`MAX_NUMBER_DIGITS`] digits per part, strings
//! valid UTF-8 without `\u` surrogates; no whitespace after the value.
//!
//! # Example
//!
//! ```no_run
//! use hearth_grammar::{Grammar, JsonConstraint};
//! use hearth_sample::Constraint;
//! # fn demo(tok: &hearth_tokenizer::Tokenizer) -> Result<(), hearth_grammar::GrammarError> {
//! let schema = serde_json::json!({
//!     "type": "object",
//!     "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
//!     "required": ["name", "age"],
//!     "additionalProperties": false
//! });
//! let grammar = Grammar::from_schema(&schema)?;
//! let mut constraint = JsonConstraint::new(&grammar, tok);
//! let mut logits = vec![0.0f32; tok.n_vocab()];
//! constraint.mask(&mut logits); // now only `{` (with optional leading whitespace) is possible
//! # Ok(()) }
//! ```

mod constraint;
mod grammar;
mod matcher;
mod schema;
mod tools;
mod vocab;

pub use constraint::JsonConstraint;
pub use grammar::{
    Grammar, MAX_DEPTH, MAX_LITERALS, MAX_NODES, MAX_NUMBER_DIGITS, MAX_PROPERTIES, MAX_WS,
};
pub use tools::{
    parse_tool_output, tool_call_schema, tool_call_schema_with_limit, tool_system_prompt, ToolCall,
    ToolChoice, ToolOutput,
};
pub use vocab::{VocabIndex, MAX_TOKEN_BYTES};

/// Whether `text` is a complete value of `grammar` (byte by byte, no tokenizer involved).
pub fn matches(grammar: &Grammar, text: &str) -> bool {
    matcher::matches(grammar, text.as_bytes())
}

/// Errors from compiling a schema or building tool-call schemas.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GrammarError {
    /// A JSON Schema feature this compiler does not enforce.
    #[error("unsupported JSON Schema feature `{feature}` at {path}")]
    Unsupported {
        /// The keyword or construct.
        feature: String,
        /// JSON-pointer-like location in the schema.
        path: String,
    },
    /// The schema is malformed.
    #[error("invalid JSON Schema at {path}: {reason}")]
    Invalid { path: String, reason: String },
    /// No value satisfies the schema.
    #[error("the JSON Schema at {path} accepts no value: {reason}")]
    Unsatisfiable { path: String, reason: String },
    /// The schema exceeds a size limit.
    #[error("the JSON Schema has too many {what} (limit {limit})")]
    TooLarge { what: &'static str, limit: usize },
    /// Bad tool definitions, tool choice or tool-call output.
    #[error("tools: {0}")]
    Tools(String),
}
