//! `SWAV_OVERLAP_GRADIENTS`: whether gradient buckets are summed while backward goes on
//! (`1`, the default with more than one rank) or as backward completes them, backward
//! waiting for each (`0`).

use anyhow::{Result, bail};

/// The environment variable.
pub const OVERLAP_ENV: &str = "SWAV_OVERLAP_GRADIENTS";

/// Whether `SWAV_OVERLAP_GRADIENTS` asks for overlap (unset or `1`) or not (`0`).
pub fn overlap_requested() -> Result<bool> {
    match std::env::var(OVERLAP_ENV).as_deref() {
        Err(_) | Ok("1") => Ok(true),
        Ok("0") => Ok(false),
        Ok(other) => bail!("{OVERLAP_ENV} must be 0 or 1, not {other:?}"),
    }
}
