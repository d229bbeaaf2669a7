//! Evaluation of frozen features.

pub mod classifier;
pub mod data;
pub mod effective_rank;
pub mod features;
pub mod knn;
pub mod labelled_training;
pub mod linear_probe;
pub mod view_rank;
