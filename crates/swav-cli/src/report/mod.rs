//! What a run folder shows: its logs read back ([`run_history`]), drawn as training curves
//! ([`curves`]) with a small SVG chart writer ([`chart`]), and written for TensorBoard
//! ([`tensorboard`]); `swav report` and the end of every `swav pretrain` use them.

pub mod chart;
pub mod curves;
pub mod run_history;
pub mod tensorboard;
