//! The shard engine: what one Durable Object does with its storage and its
//! connections, with no Workers types (see `durable_objects/` for the glue).

pub mod meta;
