//! The subcommands' implementations.

pub mod assign_embeddings;
pub mod assign_images;
pub mod bench;
pub mod bench_cuda;
pub mod bench_step;
pub mod eval_knn;
pub mod eval_linear;
pub mod export;
pub mod extract;
pub mod gpu_ceilings;
pub mod import;
pub mod model_loading;
pub mod pretrain;
pub mod report;
pub mod supervised;
