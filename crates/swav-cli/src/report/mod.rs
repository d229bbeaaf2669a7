//! What a run folder shows: its logs read back ([`run_history`]) and drawn as training
//! curves ([`curves`]) with a small SVG chart writer ([`chart`]); `swav report` and the end
//! of every `swav pretrain` use them.

pub mod chart;
pub mod curves;
pub mod run_history;
