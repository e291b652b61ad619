//! Schema compilation: what is accepted, what is named as unsupported, and byte-level matching.

mod common;

use hearth_grammar::{
    matches, parse_tool_output, tool_call_schema, tool_system_prompt, Grammar, GrammarError,
    ToolChoice,
};
use serde_json::{json, Value};

fn compile(s: Value) -> Grammar {
    Grammar::from_schema(&s).unwrap_or_else(|e| panic!("{s} should compile: {e}"))
}

fn unsupported(s: Value) -> (String, String) {
    match Grammar::from_schema(&s) {
        Err(GrammarError::Unsupported { feature, path }) => (feature, path),
        other => panic!("{s}: expected Unsupported, got {other:?}"),
    }
}

#[test]
fn unsupported_features_are_named_with_their_place() {
    let cases = [
        (
            json!({"type": "string", "pattern": "^a"}),
            "pattern",
            "/pattern",
        ),
        (
            json!({"type": "string", "format": "date-time"}),
            "format",
            "/format",
        ),
        (
            json!({"type": "string", "minLength": 2}),
            "minLength",
            "/minLength",
        ),
        (
            json!({"type": "integer", "minimum": 0}),
            "minimum",
            "/minimum",
        ),
        (json!({"not": {"type": "null"}}), "not", "/not"),
        (json!({"if": {}, "then": {}}), "if", "/if"),
        (
            json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}}),
            "maxLength",
            "/properties/a/maxLength",
        ),
        (
            json!({"type": "object", "patternProperties": {"^x": {}}}),
            "patternProperties",
            "/patternProperties",
        ),
        (
            json!({"type": "array", "uniqueItems": true}),
            "uniqueItems",
            "/uniqueItems",
        ),
    ];
    for (schema, feature, path) in cases {
        let (f, p) = unsupported(schema.clone());
        assert_eq!((f.as_str(), p.as_str()), (feature, path), "{schema}");
        let msg = Grammar::from_schema(&schema)
            .expect_err("unsupported")
            .to_string();
        assert!(msg.contains(feature), "{msg}");
    }
    let (f, _) = unsupported(json!({"type": "array", "items": [{"type": "string"}]}));
    assert!(f.contains("tuple"), "{f}");
    let (f, p) = unsupported(json!({
        "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
        "$ref": "#/$defs/node"
    }));
    assert!(f.contains("recursive $ref"), "{f}");
    assert!(p.contains("/properties/next"), "{p}");
    let (f, _) = unsupported(json!({"$ref": "https://example.com/s.json"}));
    assert!(f.contains("non-local"), "{f}");
    let (f, _) = unsupported(json!({"oneOf": [{"type": "integer"}, {"type": "number"}]}));
    assert!(f.contains("oneOf"), "{f}");
    let (f, _) = unsupported(json!({"allOf": [{"type": "integer"}, {"type": "number"}]}));
    assert!(f.contains("allOf"), "{f}");
    let (f, _) = unsupported(json!({"enum": ["a"], "minLength": 1}));
    assert_eq!(f, "minLength");
}

#[test]
fn malformed_and_unsatisfiable_schemas_are_errors() {
    for s in [
        json!(3),
        json!({"type": 5}),
        json!({"type": "strin"}),
        json!({"type": "object", "properties": []}),
        json!({"type": "object", "required": "a"}),
        json!({"type": "array", "minItems": -1}),
        json!({"anyOf": []}),
        json!({"$ref": "#/$defs/missing"}),
        json!({"enum": "a"}),
    ] {
        assert!(
            matches!(Grammar::from_schema(&s), Err(GrammarError::Invalid { .. })),
            "{s}: {:?}",
            Grammar::from_schema(&s)
        );
    }
    for s in [
        json!(false),
        json!({"type": []}),
        json!({"enum": ["a"], "type": "integer"}),
        json!({"type": "array", "minItems": 3, "maxItems": 1}),
        json!({"type": "object", "required": ["x"], "additionalProperties": false}),
        json!({"type": "object", "properties": {"a": false}, "required": ["a"]}),
    ] {
        assert!(
            matches!(
                Grammar::from_schema(&s),
                Err(GrammarError::Unsatisfiable { .. })
            ),
            "{s}: {:?}",
            Grammar::from_schema(&s)
        );
    }
    let too_many: serde_json::Map<String, Value> = (0..65)
        .map(|i| (format!("p{i}"), json!({"type": "integer"})))
        .collect();
    assert!(matches!(
        Grammar::from_schema(&json!({"type": "object", "properties": too_many})),
        Err(GrammarError::TooLarge { .. })
    ));
    let mut deep = json!({"type": "integer"});
    for _ in 0..30 {
        deep = json!({"type": "array", "items": deep});
    }
    assert!(matches!(
        Grammar::from_schema(&deep),
        Err(GrammarError::TooLarge { .. })
    ));
    // Exponential $ref expansion is bounded.
    let mut defs = serde_json::Map::new();
    defs.insert("d0".into(), json!({"type": "integer"}));
    for i in 1..20 {
        let prev = format!("#/$defs/d{}", i - 1);
        defs.insert(
            format!("d{i}"),
            json!({"anyOf": [{"$ref": prev}, {"type": "object", "properties": {"a": {"$ref": prev}, "b": {"$ref": prev}}}]}),
        );
    }
    assert!(matches!(
        Grammar::from_schema(&json!({"$defs": defs, "$ref": "#/$defs/d19"})),
        Err(GrammarError::TooLarge { .. })
    ));
}

#[test]
fn empty_and_true_schemas_are_any_value() {
    for s in [json!({}), json!(true), json!({"description": "anything"})] {
        let g = compile(s);
        assert_eq!(g, Grammar::any_json());
        for t in ["1", "\"x\"", "[1, {\"a\": null}]", "{}", "false"] {
            assert!(matches(&g, t), "{t}");
        }
    }
}

#[test]
fn json_object_grammar() {
    let g = Grammar::json_object();
    assert!(matches(&g, r#"{"a": [1, "b"], "c": {"d": true}}"#));
    assert!(matches(&g, "{}"));
    assert!(!matches(&g, "[]"));
    assert!(!matches(&g, "\"x\""));
    assert_eq!(compile(json!({"type": "object"})), g);
}

#[test]
fn schema_matching() {
    let g = compile(json!({
        "type": "object",
        "properties": {
            "kind": {"enum": ["a", "ab", "b\"q"]},
            "n": {"type": "integer"},
            "xs": {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 2},
            "opt": {"type": ["boolean", "null"]}
        },
        "required": ["kind", "xs"],
        "additionalProperties": false
    }));
    for ok in [
        r#"{"kind":"a","xs":[1]}"#,
        r#"{"kind": "ab", "n": -7, "xs": [1.5e3, 2], "opt": null}"#,
        r#"{"kind":"b\"q","xs":[0],"opt":true}"#,
        "{\n  \"kind\": \"a\",\n  \"xs\": [\n    1\n  ]\n}",
    ] {
        assert!(matches(&g, ok), "{ok}");
    }
    for bad in [
        r#"{"kind":"c","xs":[1]}"#,
        r#"{"kind":"a","xs":[]}"#,
        r#"{"kind":"a","xs":[1,2,3]}"#,
        r#"{"kind":"a","n":1.5,"xs":[1]}"#,
        r#"{"kind":"a","xs":[1],"other":1}"#,
        r#"{"xs":[1],"kind":"a"}"#,
        r#"{"kind":"a"}"#,
    ] {
        assert!(!matches(&g, bad), "{bad}");
    }
    // Enum numbers that are prefixes of each other.
    let g = compile(json!({"enum": [1, 12]}));
    assert!(matches(&g, "1") && matches(&g, "12") && !matches(&g, "123"));
    let g = compile(json!({"type": "array", "items": {"enum": [1, 12]}}));
    assert!(matches(&g, "[1,12,1]") && !matches(&g, "[2]"));
    // A map with typed values.
    let g = compile(json!({"type": "object", "additionalProperties": {"type": "boolean"}}));
    assert!(matches(&g, r#"{"x": true, "y": false}"#) && !matches(&g, r#"{"x": 1}"#));
    // A required name without a property schema is any value.
    let g = compile(
        json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["b"]}),
    );
    assert!(matches(&g, r#"{"a":1,"b":[true]}"#) && !matches(&g, r#"{"a":1}"#));
}

#[test]
fn tool_call_schemas_round_trip() {
    let tools = vec![
        json!({"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}, "required": ["city"]}}}),
        json!({"type": "function", "function": {"name": "now"}}),
    ];
    let auto =
        hearth_grammar::tool_call_schema_with_limit(&tools, &ToolChoice::Auto, 2).expect("schema");
    let g = compile(auto.clone());
    let call = r#"{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}, {"name": "now", "arguments": {}}]}"#;
    assert!(matches(&g, call));
    assert!(matches(&g, r#"{"content": "Hello"}"#));
    assert!(!matches(
        &g,
        r#"{"tool_calls": [{"name": "now", "arguments": {"city": "x"}}]}"#
    ));
    assert!(!matches(
        &g,
        r#"{"tool_calls": [{"name": "other", "arguments": {}}]}"#
    ));
    assert!(!matches(&g, r#"{"tool_calls": []}"#));
    let v: Value = serde_json::from_str(call).expect("json");
    common::validate(&auto, &auto, &v).expect("validates");

    let out = parse_tool_output(call).expect("parses");
    assert_eq!(out.content, None);
    assert_eq!(out.tool_calls.len(), 2);
    assert_eq!(out.tool_calls[0].name, "get_weather");
    assert_eq!(
        out.tool_calls[0].arguments,
        json!({"city": "Paris", "unit": "c"})
    );
    let out = parse_tool_output(r#"{"content": "Hi"}"#).expect("parses");
    assert_eq!(out.content.as_deref(), Some("Hi"));
    assert!(out.tool_calls.is_empty());

    let three = r#"{"tool_calls":[{"name":"now","arguments":{}},{"name":"now","arguments":{}},{"name":"now","arguments":{}}]}"#;
    assert!(!matches(&g, three));
    let req = compile(tool_call_schema(&tools, &ToolChoice::Required).expect("schema"));
    assert!(!matches(&req, call), "one call at most by default");
    assert!(!matches(&req, r#"{"content": "Hello"}"#));
    assert!(matches(
        &req,
        r#"{"tool_calls":[{"name":"now","arguments":{}}]}"#
    ));
    let named =
        compile(tool_call_schema(&tools, &ToolChoice::Function("now".into())).expect("schema"));
    assert!(matches(
        &named,
        r#"{"tool_calls":[{"name":"now","arguments":{}}]}"#
    ));
    assert!(!matches(
        &named,
        r#"{"tool_calls":[{"name":"get_weather","arguments":{"city":"x"}}]}"#
    ));

    let prompt = tool_system_prompt(&tools, &ToolChoice::Auto).expect("prompt");
    assert!(prompt.contains("get_weather") && prompt.contains("Weather for a city"));
    assert!(prompt.contains("\"content\""));
    let prompt = tool_system_prompt(&tools, &ToolChoice::Function("now".into())).expect("prompt");
    assert!(prompt.contains("must call the tool \"now\""));
}

#[test]
fn bad_tool_input_is_an_error() {
    let t = json!({"type": "function", "function": {"name": "f"}});
    assert!(tool_call_schema(&[], &ToolChoice::Auto).is_err());
    assert!(tool_call_schema(&[t.clone(), t.clone()], &ToolChoice::Auto).is_err());
    assert!(tool_call_schema(std::slice::from_ref(&t), &ToolChoice::Function("g".into())).is_err());
    for bad in [
        json!({"type": "retrieval"}),
        json!({"type": "function"}),
        json!({"type": "function", "function": {"name": ""}}),
        json!({"type": "function", "function": {"name": "f", "parameters": 3}}),
    ] {
        assert!(
            matches!(
                tool_call_schema(&[bad.clone()], &ToolChoice::Auto),
                Err(GrammarError::Tools(_))
            ),
            "{bad}"
        );
    }
    assert_eq!(ToolChoice::from_openai(&json!("none")), Ok(None));
    assert_eq!(
        ToolChoice::from_openai(&json!("auto")),
        Ok(Some(ToolChoice::Auto))
    );
    assert_eq!(
        ToolChoice::from_openai(&json!({"type": "function", "function": {"name": "f"}})),
        Ok(Some(ToolChoice::Function("f".into())))
    );
    assert!(ToolChoice::from_openai(&json!("sometimes")).is_err());
    assert!(ToolChoice::from_openai(&json!(1)).is_err());
    assert!(ToolChoice::from_openai(&json!({"type": "function"})).is_err());
    for bad in [
        "",
        "nope",
        "[1]",
        "{}",
        r#"{"content": 3}"#,
        r#"{"tool_calls": 3}"#,
        r#"{"tool_calls": [{}]}"#,
    ] {
        assert!(parse_tool_output(bad).is_err(), "{bad}");
    }
}
