//! The manifest: a JSON schema of entities, indexes and access policies.

mod model;

pub use model::{Entity, Field, FieldType, Index};

/// A loaded, validated manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub entities: Vec<Entity>,
}

impl Manifest {
    pub fn entity(&self, name: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.name == name)
    }
}
