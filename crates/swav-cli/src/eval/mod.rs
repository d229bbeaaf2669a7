//! Evaluation of frozen features.

pub mod knn;
