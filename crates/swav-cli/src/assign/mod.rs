//! The two halves of `swav assign`: Sinkhorn assignment of embeddings to prototypes read
//! from .npy files ([`embeddings`]), and of a folder of images to a trained model's
//! prototypes ([`images`]).

pub mod embeddings;
pub mod images;
