//! Building JSON values without `serde_json::json!`: its interpolated
//! values go through `serde_json::to_value` (a serializer instantiated per
//! type, and an unwrap), which in the Worker's wasm is several times the
//! code of plain inserts. The generator's code stays small with these.

use serde_json::{Map, Value};

/// An object of `members`, in order.
pub fn object<const N: usize>(members: [(&str, Value); N]) -> Value {
    let mut map = Map::new();
    for (key, value) in members {
        map.insert(key.to_owned(), value);
    }
    Value::Object(map)
}

pub fn text(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

/// A JSON fragment written as text (a constant of the generator). Not
/// inlined: one copy of the parser's call serves every fragment.
#[inline(never)]
pub fn parse(fragment: &str) -> Value {
    serde_json::from_str(fragment).expect("the generator's fragments are JSON (unit-tested)")
}

/// `{"$ref": "#/components/<section>/<name>"}`.
pub fn component_ref(section: &str, name: &str) -> Value {
    object([("$ref", text(format!("#/components/{section}/{name}")))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds() {
        assert_eq!(
            object([("a", text("x")), ("b", Value::from(2u64))]),
            serde_json::json!({"a": "x", "b": 2})
        );
        assert_eq!(
            parse(r#"{"type":"string"}"#),
            serde_json::json!({"type": "string"})
        );
        assert_eq!(
            component_ref("schemas", "Error"),
            serde_json::json!({"$ref": "#/components/schemas/Error"})
        );
    }
}
