//! What a user's app brings to the runtime, declared in one place: its
//! manifest (entities, indexes, policies, auth rules) and, as the runtime
//! grows, its own object kinds, simulation states and functions. The app
//! crate builds one [`App`] and hands it to the Worker's entry points with
//! `pylon_workers::export!` (docs/apps.md).
//!
//! ```
//! use pylon_workers::app::App;
//! let app = App::new(r#"{"entities":[{"name":"Card","fields":[{"name":"title","type":"string"}]}]}"#);
//! assert_eq!(app.manifest().unwrap().entities[0].name, "Card");
//! let broken = App::new("{");
//! assert_eq!(broken.manifest().unwrap_err().code, "INTERNAL");
//! ```

use std::sync::{Arc, OnceLock};

use crate::api_error::ApiError;
use crate::functions::{Functions, ScriptFunctions};
use crate::manifest::Manifest;

/// A user's app: built once per isolate, never changed afterwards (so it
/// may live in a static across Durable Object evictions).
pub struct App {
    manifest_json: &'static str,
    manifest: OnceLock<Result<Arc<Manifest>, String>>,
    /// The class names of the app's own object kinds (`export!` fills it).
    kinds: &'static [&'static str],
    /// Server functions: the app's Rust ones, plus the TypeScript bundle's
    /// (`export!` adds those in the Worker).
    functions: Functions,
}

impl App {
    /// An app serving the manifest in `manifest_json` (usually
    /// `include_str!("../schema.json")`). It is parsed on first use; a
    /// manifest that does not load makes every request answer 500 with the
    /// reason, and `cargo test` of the app (or `pylon-migrations --check`)
    /// catches it before a deploy.
    pub fn new(manifest_json: &'static str) -> App {
        App {
            manifest_json,
            manifest: OnceLock::new(),
            kinds: &[],
            functions: Functions::new(),
        }
    }

    /// The app's Rust server functions (docs/functions.md).
    pub fn with_functions(mut self, functions: Functions) -> App {
        self.functions = functions;
        self
    }

    /// The TypeScript functions bundled into the Worker (`export!` calls
    /// this in the Worker build).
    pub fn with_script_functions(mut self, scripts: Arc<dyn ScriptFunctions>) -> App {
        self.functions = self.functions.with_scripts(scripts);
        self
    }

    /// Every server function of the app.
    pub fn functions(&self) -> &Functions {
        &self.functions
    }

    /// The app's own object kinds, by Durable Object class name; the
    /// router sends `/v1/objects/{kind}/{name}/…` to the binding of the
    /// same name. `export!` calls this with the classes it exports.
    pub fn with_kinds(mut self, kinds: &'static [&'static str]) -> App {
        self.kinds = kinds;
        self
    }

    /// The class of the app's own object kind named `kind`, in any case
    /// (`counter` is the class `Counter`).
    pub fn kind(&self, kind: &str) -> Option<&'static str> {
        self.kinds
            .iter()
            .copied()
            .find(|k| k.eq_ignore_ascii_case(kind))
    }

    /// The parsed manifest, or a 500 that says why it does not load.
    pub fn manifest(&self) -> Result<Arc<Manifest>, ApiError> {
        self.manifest
            .get_or_init(|| {
                Manifest::from_json_str(self.manifest_json)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(|e| ApiError::internal(format!("the manifest does not load: {e}")))
    }

    /// The manifest's source text.
    pub fn manifest_json(&self) -> &'static str {
        self.manifest_json
    }
}
