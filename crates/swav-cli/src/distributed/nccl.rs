//! The GPU transport: one NCCL communicator over all ranks, and with `--sync-bn groups` one
//! more per group of consecutive ranks for batch-norm statistics; rank 0 makes every unique
//! id and hands them all to the others at once.
//!
//! The ids travel through `--rendezvous-file` on a shared filesystem when it is given, else
//! by `MPI_Bcast` under Open MPI's `mpirun` (no port needed), else through the TCP
//! [rendezvous](super::rendezvous) on `MASTER_PORT + 1` at `MASTER_ADDR` (torchrun's own
//! store holds `MASTER_PORT` itself). The file and TCP rendezvous check the launcher's job
//! token, so another job's ranks or files are ignored.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use swav_cuda::{CudaBackend, NcclCollective, NcclId};

use super::mpi::MpiCollective;
use super::rendezvous::{Rendezvous, share_secret};
use crate::launcher::{LaunchEnv, Launcher};

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
    let transport = id_transport(env, rendezvous_file)?;
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
    let bytes = match transport {
        IdTransport::MpiBroadcast => MpiCollective::init()
            .and_then(|mpi| mpi.broadcast_bytes(ids.as_deref().unwrap_or_default()))
            .context("sharing the NCCL ids over MPI")?,
        IdTransport::Rendezvous(how) => share_secret(
            &how,
            &env.job_token,
            env.rank,
            env.world_size,
            ids.as_deref(),
            RENDEZVOUS_TIMEOUT,
        )?,
    };
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

/// How rank 0's NCCL ids reach the other ranks.
#[derive(Debug, Clone, PartialEq, Eq)]
enum IdTransport {
    /// `MPI_Bcast` among the processes of Open MPI's `mpirun`.
    MpiBroadcast,
    /// The file or TCP rendezvous.
    Rendezvous(Rendezvous),
}

/// `--rendezvous-file` when given, else MPI under Open MPI, else TCP at the master address.
fn id_transport(env: &LaunchEnv, rendezvous_file: Option<&Path>) -> Result<IdTransport> {
    Ok(match (rendezvous_file, env.launcher, &env.master_addr) {
        (Some(file), _, _) => IdTransport::Rendezvous(Rendezvous::File(file.to_path_buf())),
        (None, Launcher::OpenMpi, _) => IdTransport::MpiBroadcast,
        (None, _, Some(host)) => IdTransport::Rendezvous(Rendezvous::Tcp {
            host: host.clone(),
            port: env.master_port.checked_add(1).ok_or_else(|| {
                anyhow!(
                    "MASTER_PORT {} leaves no port for the rendezvous",
                    env.master_port
                )
            })?,
        }),
        (None, _, None) => bail!(
            "{} ranks under {} but no MASTER_ADDR to meet at: set MASTER_ADDR/MASTER_PORT or pass --rendezvous-file",
            env.world_size,
            env.launcher
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(launcher: Launcher, master_addr: Option<&str>, master_port: u16) -> LaunchEnv {
        LaunchEnv {
            launcher,
            rank: 1,
            world_size: 2,
            local_rank: 1,
            master_addr: master_addr.map(String::from),
            master_port,
            job_token: "job".into(),
        }
    }

    #[test]
    fn the_ids_travel_by_file_then_mpi_then_tcp() {
        let file = Path::new("/shared/nccl-id");
        assert_eq!(
            id_transport(&env(Launcher::OpenMpi, Some("h"), 29500), Some(file)).unwrap(),
            IdTransport::Rendezvous(Rendezvous::File(file.to_path_buf()))
        );
        assert_eq!(
            id_transport(&env(Launcher::OpenMpi, None, 29500), None).unwrap(),
            IdTransport::MpiBroadcast
        );
        assert_eq!(
            id_transport(&env(Launcher::Slurm, Some("node1"), 29500), None).unwrap(),
            IdTransport::Rendezvous(Rendezvous::Tcp {
                host: "node1".into(),
                port: 29501
            })
        );
        let e = id_transport(&env(Launcher::Pmi, None, 29500), None).unwrap_err();
        assert!(e.to_string().contains("--rendezvous-file"), "{e}");
        let e = id_transport(&env(Launcher::Torchrun, Some("h"), u16::MAX), None).unwrap_err();
        assert!(e.to_string().contains("MASTER_PORT 65535"), "{e}");
    }
}
