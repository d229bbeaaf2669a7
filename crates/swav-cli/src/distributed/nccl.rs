//! The GPU transport: one NCCL communicator over all ranks, its unique id handed from rank 0
//! to the others through the [rendezvous](super::rendezvous).
//!
//! The rendezvous listens on `MASTER_PORT + 1` at `MASTER_ADDR` (torchrun's own store holds
//! `MASTER_PORT` itself), or uses `--rendezvous-file` on a shared filesystem.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use swav_cuda::{CudaBackend, NcclCollective, NcclId};

use super::rendezvous::{Rendezvous, share_secret};
use crate::launcher::LaunchEnv;

/// How long every rank waits for the others to arrive.
pub const RENDEZVOUS_TIMEOUT: Duration = Duration::from_secs(300);

/// The NCCL communicator of all ranks of this job.
pub fn world_collective(
    b: &CudaBackend,
    env: &LaunchEnv,
    rendezvous_file: Option<&Path>,
) -> Result<NcclCollective> {
    let how = match (rendezvous_file, &env.master_addr) {
        (Some(file), _) => Rendezvous::File(file.to_path_buf()),
        (None, Some(host)) => Rendezvous::Tcp {
            host: host.clone(),
            port: env.master_port.checked_add(1).ok_or_else(|| {
                anyhow!(
                    "MASTER_PORT {} leaves no port for the rendezvous",
                    env.master_port
                )
            })?,
        },
        (None, None) => bail!(
            "{} ranks under {} but no MASTER_ADDR to meet at: set MASTER_ADDR/MASTER_PORT or pass --rendezvous-file",
            env.world_size,
            env.launcher
        ),
    };
    let id = if env.rank == 0 {
        Some(NcclId::new().map_err(|e| anyhow!("creating the NCCL id: {e}"))?)
    } else {
        None
    };
    let bytes = share_secret(
        &how,
        env.rank,
        env.world_size,
        id.as_ref().map(|i| i.to_bytes()).as_ref().map(|b| &b[..]),
        RENDEZVOUS_TIMEOUT,
    )?;
    let bytes: [u8; 128] = bytes.try_into().map_err(|b: Vec<u8>| {
        anyhow!(
            "the NCCL id from rank 0 has {} bytes, expected 128",
            b.len()
        )
    })?;
    NcclCollective::new(b, env.rank, env.world_size, &NcclId::from_bytes(bytes))
        .map_err(|e| anyhow!("NCCL initialisation: {e}"))
}
