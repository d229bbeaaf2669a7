//! The GPU transport: one NCCL communicator over all ranks, and with `--sync-bn groups` one
//! more per group of consecutive ranks for batch-norm statistics; rank 0 makes every unique
//! id and hands them all to the others in one [rendezvous](super::rendezvous).
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

/// The NCCL communicators of this job: all ranks, and with `bn_group_size` the group of
/// `bn_group_size` consecutive ranks this one belongs to (the last group may be smaller,
/// as with `MPI_Comm_split` on the CPU path).
pub fn nccl_collectives(
    b: &CudaBackend,
    env: &LaunchEnv,
    rendezvous_file: Option<&Path>,
    bn_group_size: Option<usize>,
) -> Result<(NcclCollective, Option<NcclCollective>)> {
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
    let group_size = bn_group_size.map(|g| g.clamp(1, env.world_size));
    let groups = group_size.map_or(0, |g| env.world_size.div_ceil(g));
    let ids = if env.rank == 0 {
        let mut bytes = Vec::with_capacity(128 * (1 + groups));
        for _ in 0..1 + groups {
            let id = NcclId::new().map_err(|e| anyhow!("creating an NCCL id: {e}"))?;
            bytes.extend_from_slice(&id.to_bytes());
        }
        Some(bytes)
    } else {
        None
    };
    let bytes = share_secret(
        &how,
        env.rank,
        env.world_size,
        ids.as_deref(),
        RENDEZVOUS_TIMEOUT,
    )?;
    if bytes.len() != 128 * (1 + groups) {
        bail!(
            "rank 0 sent {} bytes of NCCL ids, expected {} (1 + {groups} ids of 128 bytes): do all ranks use the same --sync-bn and --syncbn-process-group-size?",
            bytes.len(),
            128 * (1 + groups)
        );
    }
    let id = |k: usize| -> NcclId {
        let mut one = [0u8; 128];
        one.copy_from_slice(&bytes[128 * k..128 * (k + 1)]);
        NcclId::from_bytes(one)
    };
    let world = NcclCollective::new(b, env.rank, env.world_size, &id(0))
        .map_err(|e| anyhow!("NCCL initialisation: {e}"))?;
    let group = match group_size {
        Some(g) => {
            let index = env.rank / g;
            let first = index * g;
            let size = g.min(env.world_size - first);
            Some(
                NcclCollective::new(b, env.rank - first, size, &id(1 + index))
                    .map_err(|e| anyhow!("NCCL initialisation of batch-norm group {index}: {e}"))?,
            )
        }
        None => None,
    };
    Ok((world, group))
}
