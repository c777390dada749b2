//! The validated schema: entities, fields, indexes.
//!
//! These types are produced only by loading a manifest (see `load`), so code
//! that holds an [`Entity`] may rely on it being consistent: field names are
//! unique, index fields exist, `id(<Entity>)` targets exist.

/// The type of a declared field. `id` is implicit on every entity: a text
/// primary key, never declared in `fields`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldType {
    String,
    Int,
    Float,
    Bool,
    /// RFC 3339 text in UTC (`2026-11-23T04:16:32Z`, optional fraction);
    /// compares correctly as text.
    Datetime,
    /// Any JSON value, stored as JSON text.
    Json,
    /// The id of a row of the named entity (text).
    Id(String),
}

impl FieldType {
    /// The manifest spelling: `string`, `id(User)`, ...
    pub fn name(&self) -> String {
        match self {
            FieldType::String => "string".into(),
            FieldType::Int => "int".into(),
            FieldType::Float => "float".into(),
            FieldType::Bool => "bool".into(),
            FieldType::Datetime => "datetime".into(),
            FieldType::Json => "json".into(),
            FieldType::Id(e) => format!("id({e})"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub optional: bool,
    pub unique: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    pub name: String,
    pub fields: Vec<String>,
    pub unique: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entity {
    pub name: String,
    /// Declared fields, in manifest order (without the implicit `id`).
    pub fields: Vec<Field>,
    pub indexes: Vec<Index>,
}

impl Entity {
    /// A declared field by name (`id` is not a declared field).
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Whether `name` can be used in a query on this entity: `id` or a field.
    pub fn has_column(&self, name: &str) -> bool {
        name == "id" || self.field(name).is_some()
    }

    /// The unique constraints, each as its fields: every unique field,
    /// then every unique index.
    pub fn unique_constraints(&self) -> Vec<Vec<String>> {
        let fields = self.fields.iter().filter(|f| f.unique);
        let indexes = self.indexes.iter().filter(|x| x.unique);
        fields
            .map(|f| vec![f.name.clone()])
            .chain(indexes.map(|x| x.fields.clone()))
            .collect()
    }
}
