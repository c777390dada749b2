//! The manifest's `files` section: which entity holds the file rows, the
//! largest upload, the content types allowed, and how long a signed
//! upload URL lasts.
//!
//! ```json
//! "files": { "entity": "Attachment", "maxBytes": 67108864,
//!            "types": ["image/png", "image/*", "text/plain"], "signedUrlSeconds": 300 }
//! ```

use serde::{Deserialize, Serialize};

use crate::manifest::{Entity, FieldType};

/// `maxBytes` when not given: 25 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 25 * 1024 * 1024;
/// The most `maxBytes` may be: the largest multipart upload (10,000 parts
/// of 95 MiB). A single PUT is at most [`MAX_SINGLE_BYTES`].
pub const MAX_MAX_BYTES: u64 = super::multipart::MAX_MULTIPART_BYTES;
/// The largest single (not multipart) upload: a request body through a
/// Worker is at most 100 MB on most plans.
pub const MAX_SINGLE_BYTES: u64 = 100 * 1000 * 1000;
/// `signedUrlSeconds` when not given, and the most it may be.
pub const DEFAULT_SIGNED_URL_SECS: i64 = 300;
pub const MAX_SIGNED_URL_SECS: i64 = 3600;

/// The fields a file entity must have, with their types: the file row.
pub const FILE_FIELDS: [(&str, &str); 5] = [
    ("key", "string"),
    ("size", "int"),
    ("type", "string"),
    ("owner", "string"),
    ("createdAt", "datetime"),
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FilesConfig {
    /// The entity of the file rows (it has [`FILE_FIELDS`]; `owner`
    /// optional, and it may have `name` and `row`, both optional strings).
    pub entity: String,
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Allowed content types: `type/subtype`, or `type/*`. Parameters
    /// (`; charset=…`) are ignored when checking.
    pub types: Vec<String>,
    #[serde(default = "default_signed_secs")]
    pub signed_url_seconds: i64,
}

fn default_max_bytes() -> u64 {
    DEFAULT_MAX_BYTES
}

fn default_signed_secs() -> i64 {
    DEFAULT_SIGNED_URL_SECS
}

impl FilesConfig {
    /// Whether `content_type` is on the allow-list.
    pub fn allows_type(&self, content_type: &str) -> bool {
        let essence = essence(content_type);
        let Some((top, _)) = essence.split_once('/') else {
            return false;
        };
        self.types.iter().any(|t| {
            let t = t.to_ascii_lowercase();
            t == essence || t.strip_suffix("/*") == Some(top)
        })
    }

    /// What is wrong with the section, given the manifest's entities:
    /// `(path, reason)` each.
    pub fn problems(&self, entities: &[Entity]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.max_bytes == 0 || self.max_bytes > MAX_MAX_BYTES {
            out.push((
                "files.maxBytes".into(),
                format!("1 to {MAX_MAX_BYTES}, not {}", self.max_bytes),
            ));
        }
        if !(1..=MAX_SIGNED_URL_SECS).contains(&self.signed_url_seconds) {
            out.push((
                "files.signedUrlSeconds".into(),
                format!("1 to {MAX_SIGNED_URL_SECS}"),
            ));
        }
        for (i, t) in self.types.iter().enumerate() {
            let ok = t.split_once('/').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty());
            if !ok {
                out.push((format!("files.types[{i}]"), format!("{t:?}: type/subtype or type/*")));
            }
        }
        let Some(entity) = entities.iter().find(|e| e.name == self.entity) else {
            out.push(("files.entity".into(), format!("no entity {:?}", self.entity)));
            return out;
        };
        for (name, ty) in FILE_FIELDS {
            let field = entity.fields.iter().find(|f| f.name == name);
            let fits = field.is_some_and(|f| {
                let t = &f.ty;
                match ty {
                    "int" => *t == FieldType::Int,
                    "datetime" => *t == FieldType::Datetime,
                    _ => matches!(t, FieldType::String | FieldType::Id(_)),
                }
            });
            if !fits {
                out.push((
                    "files.entity".into(),
                    format!("{} needs a field {name} of type {ty}", self.entity),
                ));
            }
        }
        out
    }
}

/// A content type's `type/subtype`, lower case, without parameters.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(v: serde_json::Value) -> FilesConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn types() {
        let c = config(json!({"entity": "F", "types": ["image/*", "text/plain"]}));
        assert_eq!((c.max_bytes, c.signed_url_seconds), (DEFAULT_MAX_BYTES, 300));
        assert!(c.allows_type("image/png"));
        assert!(c.allows_type("Text/Plain; charset=utf-8"));
        assert!(!c.allows_type("text/html"));
        assert!(!c.allows_type("image"));
        assert!(!c.allows_type(""));
        assert!(!c.allows_type("application/x-image/png"));
    }

    #[test]
    fn problems() {
        let m = crate::manifest::Manifest::from_value(json!({"entities": [
            {"name": "F", "fields": [
                {"name": "key", "type": "string"}, {"name": "size", "type": "int"},
                {"name": "type", "type": "string"}, {"name": "owner", "type": "string", "optional": true},
                {"name": "createdAt", "type": "datetime"}]},
            {"name": "G", "fields": [{"name": "key", "type": "string"}]}]}))
        .unwrap();
        let ok = config(json!({"entity": "F", "types": ["image/png"]}));
        assert_eq!(ok.problems(&m.entities), vec![]);
        let g = config(json!({"entity": "G", "types": ["x"], "maxBytes": 0, "signedUrlSeconds": 0}));
        let p: Vec<String> = g.problems(&m.entities).into_iter().map(|(p, _)| p).collect();
        assert_eq!(p, ["files.maxBytes", "files.signedUrlSeconds", "files.types[0]",
            "files.entity", "files.entity", "files.entity", "files.entity"]);
        let none = config(json!({"entity": "H", "types": []}));
        assert_eq!(none.problems(&m.entities)[0].1, "no entity \"H\"");
    }
}
