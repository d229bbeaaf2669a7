//! Rank, world size and local rank from the launcher that started this process.
//!
//! `swav` runs one process per device under the launchers clusters already use:
//! `torchrun --no-python swav pretrain ...` (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
//! MASTER_PORT), Slurm's `srun` (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID) and `mpirun`
//! (Open MPI's OMPI_COMM_WORLD_*; MPICH / Intel MPI's PMI_*). When several are present
//! (torchrun inside an allocation, mpirun inside sbatch), the innermost launcher wins:
//! torchrun, then MPI, then Slurm.
//!
//! The launcher also names the job: [`LaunchEnv::job_token`] is the same on every rank of
//! one job and differs between jobs, so that the rendezvous can tell this job's ranks from a
//! stray or stale peer. It is built only from the variables of the launcher that won, which
//! every rank of that launcher sees alike (an outer Slurm step, for instance, is not the
//! same on the ranks `mpirun` starts on the first node and on the others).

use std::fmt;

/// Which launcher the process was started by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launcher {
    /// No launcher: a single process.
    None,
    /// torchrun / torch.distributed.launch.
    Torchrun,
    /// Open MPI's mpirun.
    OpenMpi,
    /// An MPICH-family mpirun (PMI).
    Pmi,
    /// Slurm's srun.
    Slurm,
}

impl fmt::Display for Launcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "single process",
            Self::Torchrun => "torchrun",
            Self::OpenMpi => "Open MPI",
            Self::Pmi => "MPI (PMI)",
            Self::Slurm => "Slurm",
        })
    }
}

/// Where this process sits in the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchEnv {
    /// The launcher that set the variables.
    pub launcher: Launcher,
    /// This process's rank in `0..world_size`.
    pub rank: usize,
    /// Number of processes.
    pub world_size: usize,
    /// Rank within this node (selects the GPU).
    pub local_rank: usize,
    /// The rendezvous host (rank 0's), when the launcher names one.
    pub master_addr: Option<String>,
    /// The rendezvous port (MASTER_PORT, default 29500).
    pub master_port: u16,
    /// This job's identity, alike on all its ranks: Slurm's job and step id, torchrun's run
    /// id with the master address, Open MPI's job id, or else the master address and port;
    /// always with the world size.
    pub job_token: String,
}

/// The launcher's variables are missing, malformed or contradictory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// A variable is not a number (or port).
    #[error("environment variable {name}={value:?} is not a valid {what}")]
    Malformed {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        what: &'static str,
    },
    /// One of a pair of variables is set without the other.
    #[error("{launcher}: {present} is set but {missing} is not")]
    Missing {
        /// The launcher.
        launcher: Launcher,
        /// The variable that is set.
        present: &'static str,
        /// The one that is missing.
        missing: &'static str,
    },
    /// Values contradict each other.
    #[error("{launcher}: {detail}")]
    Inconsistent {
        /// The launcher.
        launcher: Launcher,
        /// What contradicts what.
        detail: String,
    },
    /// `--dist_url` is not a form swav reads.
    #[error(
        "--dist_url {url:?}: swav reads `env://` (the launcher's variables) or `tcp://HOST:PORT` (rank 0's host and port)"
    )]
    DistUrl {
        /// The URL given.
        url: String,
    },
}

/// The default rendezvous port (torchrun's).
pub const DEFAULT_MASTER_PORT: u16 = 29500;

impl LaunchEnv {
    /// A single process.
    pub fn single() -> Self {
        Self {
            launcher: Launcher::None,
            rank: 0,
            world_size: 1,
            local_rank: 0,
            master_addr: None,
            master_port: DEFAULT_MASTER_PORT,
            job_token: String::from("single process"),
        }
    }

    /// Reads the process environment.
    pub fn from_process_env() -> Result<Self, LaunchError> {
        Self::detect(|name| std::env::var(name).ok())
    }

    /// Applies the official scripts' `--dist_url`: `env://` keeps what the launcher set;
    /// `tcp://HOST:PORT` names rank 0's host and port, as PyTorch's `init_process_group`
    /// reads it (the rendezvous then listens on PORT + 1, as with MASTER_PORT).
    pub fn with_dist_url(mut self, url: &str) -> Result<Self, LaunchError> {
        if url == "env://" {
            return Ok(self);
        }
        let bad = || LaunchError::DistUrl {
            url: url.to_string(),
        };
        let (host, port) = url
            .strip_prefix("tcp://")
            .and_then(|rest| rest.rsplit_once(':'))
            .ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || port == u16::MAX {
            return Err(bad());
        }
        self.master_addr = Some(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        );
        self.master_port = port;
        Ok(self)
    }

    /// Applies `--local_rank N`, which `python -m torch.distributed.launch` passes as an
    /// argument instead of setting LOCAL_RANK: it picks the device.
    pub fn with_local_rank(mut self, local_rank: usize) -> Result<Self, LaunchError> {
        if local_rank > self.rank {
            return Err(LaunchError::Inconsistent {
                launcher: self.launcher,
                detail: format!("--local_rank {local_rank} exceeds the rank {}", self.rank),
            });
        }
        self.local_rank = local_rank;
        Ok(self)
    }

    /// Reads the variables through `var` (so tests can supply their own).
    pub fn detect(var: impl Fn(&str) -> Option<String>) -> Result<Self, LaunchError> {
        let number = |name: &'static str| -> Result<Option<usize>, LaunchError> {
            match var(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| LaunchError::Malformed {
                        name,
                        value: v,
                        what: "non-negative integer",
                    }),
            }
        };
        let master_port = match var("MASTER_PORT") {
            None => DEFAULT_MASTER_PORT,
            Some(v) => v.trim().parse().map_err(|_| LaunchError::Malformed {
                name: "MASTER_PORT",
                value: v,
                what: "port",
            })?,
        };
        let candidates: [(Launcher, &'static str, &'static str, &'static str); 4] = [
            (Launcher::Torchrun, "RANK", "WORLD_SIZE", "LOCAL_RANK"),
            (
                Launcher::OpenMpi,
                "OMPI_COMM_WORLD_RANK",
                "OMPI_COMM_WORLD_SIZE",
                "OMPI_COMM_WORLD_LOCAL_RANK",
            ),
            (Launcher::Pmi, "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"),
            (
                Launcher::Slurm,
                "SLURM_PROCID",
                "SLURM_NTASKS",
                "SLURM_LOCALID",
            ),
        ];
        for (launcher, rank_var, size_var, local_var) in candidates {
            let (rank, size) = match (number(rank_var)?, number(size_var)?) {
                (None, None) => continue,
                (Some(_), None) => {
                    return Err(LaunchError::Missing {
                        launcher,
                        present: rank_var,
                        missing: size_var,
                    });
                }
                (None, Some(_)) => {
                    return Err(LaunchError::Missing {
                        launcher,
                        present: size_var,
                        missing: rank_var,
                    });
                }
                (Some(r), Some(s)) => (r, s),
            };
            if size == 0 {
                return Err(LaunchError::Inconsistent {
                    launcher,
                    detail: format!("{size_var} is 0"),
                });
            }
            if rank >= size {
                return Err(LaunchError::Inconsistent {
                    launcher,
                    detail: format!("{rank_var}={rank} is not below {size_var}={size}"),
                });
            }
            let local_rank = number(local_var)?.unwrap_or(0);
            if local_rank > rank {
                return Err(LaunchError::Inconsistent {
                    launcher,
                    detail: format!("{local_var}={local_rank} exceeds {rank_var}={rank}"),
                });
            }
            let master_addr = var("MASTER_ADDR").or_else(|| {
                (launcher == Launcher::Slurm)
                    .then(|| var("SLURM_LAUNCH_NODE_IPADDR"))
                    .flatten()
            });
            if launcher == Launcher::Torchrun && size > 1 && master_addr.is_none() {
                return Err(LaunchError::Missing {
                    launcher,
                    present: "WORLD_SIZE",
                    missing: "MASTER_ADDR",
                });
            }
            let job_token = job_token(launcher, &var, size, master_addr.as_deref(), master_port);
            return Ok(Self {
                launcher,
                rank,
                world_size: size,
                local_rank,
                master_addr,
                master_port,
                job_token,
            });
        }
        Ok(Self {
            master_port,
            ..Self::single()
        })
    }
}

/// Open MPI's job id: PMIx's namespace (Open MPI 4 and 5), else the ORTE job id of older
/// versions.
const OPEN_MPI_JOB_VARS: [&str; 3] = [
    "PMIX_NAMESPACE",
    "OMPI_MCA_ess_base_jobid",
    "OMPI_MCA_orte_ess_jobid",
];

/// The job identity `launcher` gives every rank alike (see [`LaunchEnv::job_token`]).
fn job_token(
    launcher: Launcher,
    var: &impl Fn(&str) -> Option<String>,
    world: usize,
    master_addr: Option<&str>,
    master_port: u16,
) -> String {
    let master = format!("master {}:{master_port}", master_addr.unwrap_or("-"));
    let identity = match launcher {
        Launcher::None => return LaunchEnv::single().job_token,
        Launcher::Slurm => match var("SLURM_JOB_ID") {
            Some(job) => match var("SLURM_STEP_ID") {
                Some(step) => format!("slurm job {job} step {step}"),
                None => format!("slurm job {job}"),
            },
            None => format!("slurm {master}"),
        },
        Launcher::Torchrun => match var("TORCHELASTIC_RUN_ID") {
            Some(run) => format!("torchrun run {run} {master}"),
            None => format!("torchrun {master}"),
        },
        Launcher::OpenMpi => match OPEN_MPI_JOB_VARS.iter().find_map(|name| var(name)) {
            Some(job) => format!("open mpi job {job}"),
            None => format!("open mpi {master}"),
        },
        Launcher::Pmi => format!("pmi {master}"),
    };
    format!("{identity} world {world}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn no_launcher_is_a_single_process() {
        assert_eq!(LaunchEnv::detect(env(&[])).unwrap(), LaunchEnv::single());
    }

    #[test]
    fn torchrun_variables_are_read_and_win_over_slurm() {
        let e = LaunchEnv::detect(env(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "8"),
            ("LOCAL_RANK", "3"),
            ("MASTER_ADDR", "10.0.0.1"),
            ("MASTER_PORT", "1234"),
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "1"),
        ]))
        .unwrap();
        assert_eq!(
            (e.launcher, e.rank, e.world_size, e.local_rank),
            (Launcher::Torchrun, 3, 8, 3)
        );
        assert_eq!(
            (e.master_addr.as_deref(), e.master_port),
            (Some("10.0.0.1"), 1234)
        );
    }

    #[test]
    fn slurm_and_mpi_variables_are_read() {
        let e = LaunchEnv::detect(env(&[
            ("SLURM_PROCID", "9"),
            ("SLURM_NTASKS", "16"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_LAUNCH_NODE_IPADDR", "10.1.1.1"),
        ]))
        .unwrap();
        assert_eq!(
            (e.launcher, e.rank, e.world_size, e.local_rank),
            (Launcher::Slurm, 9, 16, 1)
        );
        assert_eq!(e.master_addr.as_deref(), Some("10.1.1.1"));
        let e = LaunchEnv::detect(env(&[
            ("OMPI_COMM_WORLD_RANK", "1"),
            ("OMPI_COMM_WORLD_SIZE", "2"),
            ("OMPI_COMM_WORLD_LOCAL_RANK", "1"),
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "1"),
        ]))
        .unwrap();
        assert_eq!(
            (e.launcher, e.rank, e.world_size),
            (Launcher::OpenMpi, 1, 2)
        );
    }

    #[test]
    fn contradictions_are_clear_errors() {
        let e = LaunchEnv::detect(env(&[
            ("RANK", "4"),
            ("WORLD_SIZE", "4"),
            ("MASTER_ADDR", "h"),
        ]))
        .unwrap_err();
        assert!(
            e.to_string().contains("RANK=4 is not below WORLD_SIZE=4"),
            "{e}"
        );
        let e = LaunchEnv::detect(env(&[("RANK", "1")])).unwrap_err();
        assert!(e.to_string().contains("WORLD_SIZE is not"), "{e}");
        let e = LaunchEnv::detect(env(&[("RANK", "x"), ("WORLD_SIZE", "2")])).unwrap_err();
        assert!(e.to_string().contains("RANK=\"x\""), "{e}");
        let e = LaunchEnv::detect(env(&[("RANK", "1"), ("WORLD_SIZE", "2")])).unwrap_err();
        assert!(e.to_string().contains("MASTER_ADDR"), "{e}");
        let e = LaunchEnv::detect(env(&[("MASTER_PORT", "99999")])).unwrap_err();
        assert!(e.to_string().contains("MASTER_PORT"), "{e}");
    }

    #[test]
    fn the_job_token_names_the_job_of_the_winning_launcher() {
        let token = |pairs: &[(&str, &str)]| LaunchEnv::detect(env(pairs)).unwrap().job_token;
        let slurm = [("SLURM_PROCID", "1"), ("SLURM_NTASKS", "4")];
        assert_eq!(
            token(&[
                slurm[0],
                slurm[1],
                ("SLURM_JOB_ID", "77"),
                ("SLURM_STEP_ID", "2")
            ]),
            "slurm job 77 step 2 world 4"
        );
        assert_eq!(
            token(&[slurm[0], slurm[1], ("SLURM_JOB_ID", "77")]),
            "slurm job 77 world 4"
        );
        assert_ne!(
            token(&[slurm[0], slurm[1], ("SLURM_JOB_ID", "77")]),
            token(&[slurm[0], slurm[1], ("SLURM_JOB_ID", "78")])
        );
        let torchrun = [
            ("RANK", "0"),
            ("WORLD_SIZE", "2"),
            ("MASTER_ADDR", "node1"),
            ("MASTER_PORT", "29400"),
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "1"),
            ("SLURM_JOB_ID", "77"),
        ];
        assert_eq!(token(&torchrun), "torchrun master node1:29400 world 2");
        let mut with_run = torchrun.to_vec();
        with_run.push(("TORCHELASTIC_RUN_ID", "abc"));
        assert_eq!(
            token(&with_run),
            "torchrun run abc master node1:29400 world 2"
        );
        let mpi = [("OMPI_COMM_WORLD_RANK", "0"), ("OMPI_COMM_WORLD_SIZE", "2")];
        assert_eq!(
            token(&[
                mpi[0],
                mpi[1],
                ("OMPI_MCA_ess_base_jobid", "9"),
                ("PMIX_NAMESPACE", "1074266113")
            ]),
            "open mpi job 1074266113 world 2"
        );
        assert_eq!(
            token(&[mpi[0], mpi[1], ("OMPI_MCA_orte_ess_jobid", "5")]),
            "open mpi job 5 world 2"
        );
        assert_eq!(
            token(&[mpi[0], mpi[1], ("MASTER_ADDR", "h")]),
            "open mpi master h:29500 world 2"
        );
        assert_eq!(
            token(&[("PMI_RANK", "0"), ("PMI_SIZE", "3")]),
            "pmi master -:29500 world 3"
        );
        assert_eq!(token(&[]), "single process");
    }

    #[test]
    fn the_official_dist_url_names_the_master_or_defers_to_the_launcher() {
        let slurm =
            LaunchEnv::detect(env(&[("SLURM_PROCID", "1"), ("SLURM_NTASKS", "4")])).unwrap();
        let same = slurm.clone().with_dist_url("env://").unwrap();
        assert_eq!(same, slurm);
        let tcp = slurm.clone().with_dist_url("tcp://node-17:40000").unwrap();
        assert_eq!(
            (
                tcp.master_addr.as_deref(),
                tcp.master_port,
                tcp.rank,
                tcp.world_size
            ),
            (Some("node-17"), 40000, 1, 4)
        );
        let v6 = slurm
            .clone()
            .with_dist_url("tcp://[fe80::1]:40000")
            .unwrap();
        assert_eq!(v6.master_addr.as_deref(), Some("fe80::1"));
        assert_eq!(slurm.clone().with_local_rank(1).unwrap().local_rank, 1);
        let err = slurm.clone().with_local_rank(2).unwrap_err().to_string();
        assert!(err.contains("--local_rank 2 exceeds the rank 1"), "{err}");
        for bad in [
            "file:///tmp/x",
            "tcp://node",
            "tcp://:40000",
            "tcp://node:port",
            "node:1",
        ] {
            let err = slurm.clone().with_dist_url(bad).unwrap_err().to_string();
            assert!(
                err.starts_with("--dist_url") && err.contains("tcp://HOST:PORT"),
                "{err}"
            );
        }
    }
}
