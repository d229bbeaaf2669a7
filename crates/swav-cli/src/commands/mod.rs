//! The subcommands' implementations.

pub mod assign_embeddings;
