//! Handing a small secret (the NCCL unique id) from rank 0 to every other rank, over TCP at
//! the launcher's master address or through a file on a shared filesystem.
//!
//! TCP: rank 0 listens on `MASTER_PORT`; every other rank connects (retrying until the
//! timeout), says who it is, and receives the bytes. Rank 0 fails with the list of missing
//! ranks if not all arrive in time; a rank that cannot reach rank 0 fails naming the address.
//! File: rank 0 writes the bytes to a temporary name and renames it into place; the others
//! poll for it. Use a path unique to the job (e.g. containing `$SLURM_JOB_ID`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How the ranks meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendezvous {
    /// TCP at rank 0's address and port.
    Tcp {
        /// Rank 0's host name or address.
        host: String,
        /// The port rank 0 listens on.
        port: u16,
    },
    /// A file on a filesystem every rank sees.
    File(PathBuf),
}

/// The exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum RendezvousError {
    /// Rank 0 could not listen.
    #[error("rank 0 cannot listen on port {port}: {source}")]
    Listen {
        /// The port.
        port: u16,
        /// Why.
        source: std::io::Error,
    },
    /// Some ranks did not arrive in time.
    #[error("rank 0: ranks {missing:?} did not arrive within {waited:?}")]
    MissingRanks {
        /// The ranks that never connected.
        missing: Vec<usize>,
        /// The timeout.
        waited: Duration,
    },
    /// A rank could not reach rank 0 in time.
    #[error("rank {rank}: could not reach rank 0 at {address} within {waited:?}: {last_error}")]
    Unreachable {
        /// This rank.
        rank: usize,
        /// Where rank 0 should be.
        address: String,
        /// The timeout.
        waited: Duration,
        /// The last connection error.
        last_error: String,
    },
    /// A peer disagrees about the job (world size) or sent garbage.
    #[error("rendezvous: {0}")]
    Protocol(String),
    /// The file could not be written or read.
    #[error("rendezvous file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file did not appear in time.
    #[error("rank {rank}: rendezvous file {path} did not appear within {waited:?}")]
    FileTimeout {
        /// This rank.
        rank: usize,
        /// The file.
        path: PathBuf,
        /// The timeout.
        waited: Duration,
    },
}

/// A marker so that a stray connection is not mistaken for a rank.
const MAGIC: &[u8; 8] = b"SWAVRDV1";

/// Shares `secret` (given on rank 0, `None` elsewhere) with every rank and returns it.
pub fn share_secret(
    how: &Rendezvous,
    rank: usize,
    world: usize,
    secret: Option<&[u8]>,
    timeout: Duration,
) -> Result<Vec<u8>, RendezvousError> {
    if world == 1 {
        return Ok(secret.unwrap_or_default().to_vec());
    }
    match (how, rank, secret) {
        (Rendezvous::Tcp { port, .. }, 0, Some(secret)) => serve(*port, world, secret, timeout),
        (Rendezvous::Tcp { host, port }, _, _) => fetch(host, *port, rank, world, timeout),
        (Rendezvous::File(path), 0, Some(secret)) => publish(path, secret),
        (Rendezvous::File(path), _, _) => wait_for_file(path, rank, timeout),
    }
}

fn serve(
    port: u16,
    world: usize,
    secret: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, RendezvousError> {
    let listener = TcpListener::bind(("0.0.0.0", port))
        .map_err(|source| RendezvousError::Listen { port, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| RendezvousError::Listen { port, source })?;
    let deadline = Instant::now() + timeout;
    let mut arrived = vec![false; world];
    arrived[0] = true;
    while arrived.iter().any(|a| !a) {
        if Instant::now() >= deadline {
            let missing = arrived
                .iter()
                .enumerate()
                .filter(|(_, a)| !**a)
                .map(|(r, _)| r)
                .collect();
            return Err(RendezvousError::MissingRanks {
                missing,
                waited: timeout,
            });
        }
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut hello = [0u8; 24];
                if stream.read_exact(&mut hello).is_err() || &hello[..8] != MAGIC {
                    continue; // not one of ours
                }
                let peer_rank =
                    u64::from_le_bytes(hello[8..16].try_into().expect("8 bytes")) as usize;
                let peer_world =
                    u64::from_le_bytes(hello[16..24].try_into().expect("8 bytes")) as usize;
                if peer_world != world {
                    return Err(RendezvousError::Protocol(format!(
                        "rank {peer_rank} believes the world size is {peer_world}, rank 0 believes {world}"
                    )));
                }
                if peer_rank == 0 || peer_rank >= world {
                    return Err(RendezvousError::Protocol(format!(
                        "a peer claims rank {peer_rank} of {world}"
                    )));
                }
                let mut reply = (secret.len() as u64).to_le_bytes().to_vec();
                reply.extend_from_slice(secret);
                if stream.write_all(&reply).is_ok() {
                    arrived[peer_rank] = true;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    Ok(secret.to_vec())
}

fn fetch(
    host: &str,
    port: u16,
    rank: usize,
    world: usize,
    timeout: Duration,
) -> Result<Vec<u8>, RendezvousError> {
    let address = format!("{host}:{port}");
    let deadline = Instant::now() + timeout;
    let mut last_error = String::from("no attempt");
    while Instant::now() < deadline {
        match try_fetch(&address, rank, world) {
            Ok(secret) => return Ok(secret),
            Err(FetchError::Retry(e)) => last_error = e,
            Err(FetchError::Fatal(e)) => return Err(e),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(RendezvousError::Unreachable {
        rank,
        address,
        waited: timeout,
        last_error,
    })
}

enum FetchError {
    Retry(String),
    Fatal(RendezvousError),
}

fn try_fetch(address: &str, rank: usize, world: usize) -> Result<Vec<u8>, FetchError> {
    let target = address
        .to_socket_addrs()
        .map_err(|e| FetchError::Retry(e.to_string()))?
        .next()
        .ok_or_else(|| FetchError::Retry("address resolves to nothing".into()))?;
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(2))
        .map_err(|e| FetchError::Retry(e.to_string()))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut hello = MAGIC.to_vec();
    hello.extend_from_slice(&(rank as u64).to_le_bytes());
    hello.extend_from_slice(&(world as u64).to_le_bytes());
    stream
        .write_all(&hello)
        .map_err(|e| FetchError::Retry(e.to_string()))?;
    let mut len = [0u8; 8];
    stream
        .read_exact(&mut len)
        .map_err(|e| FetchError::Retry(e.to_string()))?;
    let len = u64::from_le_bytes(len) as usize;
    if len > 1 << 20 {
        return Err(FetchError::Fatal(RendezvousError::Protocol(format!(
            "implausible secret length {len}"
        ))));
    }
    let mut secret = vec![0u8; len];
    stream
        .read_exact(&mut secret)
        .map_err(|e| FetchError::Retry(e.to_string()))?;
    Ok(secret)
}

fn publish(path: &Path, secret: &[u8]) -> Result<Vec<u8>, RendezvousError> {
    let io = |source| RendezvousError::File {
        path: path.to_path_buf(),
        source,
    };
    swav_nn::write_atomic(path, secret).map_err(io)?;
    Ok(secret.to_vec())
}

fn wait_for_file(path: &Path, rank: usize, timeout: Duration) -> Result<Vec<u8>, RendezvousError> {
    let deadline = Instant::now() + timeout;
    loop {
        match std::fs::read(path) {
            Ok(bytes) => return Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if Instant::now() >= deadline {
                    return Err(RendezvousError::FileTimeout {
                        rank,
                        path: path.to_path_buf(),
                        waited: timeout,
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(RendezvousError::File {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_port() -> u16 {
        TcpListener::bind(("127.0.0.1", 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn tcp_hands_the_secret_to_every_rank() {
        let port = free_port();
        let how = Rendezvous::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        let secret = vec![7u8; 128];
        let results: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|rank| {
                    let how = how.clone();
                    let secret = secret.clone();
                    s.spawn(move || {
                        let mine = (rank == 0).then_some(secret.as_slice());
                        share_secret(&how, rank, 4, mine, Duration::from_secs(20)).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(results.iter().all(|r| *r == secret));
    }

    #[test]
    fn a_missing_rank_is_named_and_an_unreachable_master_is_reported() {
        let port = free_port();
        let how = Rendezvous::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        let e = share_secret(&how, 0, 3, Some(b"id"), Duration::from_millis(300)).unwrap_err();
        assert!(e.to_string().contains("[1, 2]"), "{e}");
        let e = share_secret(&how, 1, 2, None, Duration::from_millis(300)).unwrap_err();
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    }

    #[test]
    fn a_file_hands_the_secret_over() {
        let dir = tempfile::tempdir().unwrap();
        let how = Rendezvous::File(dir.path().join("nccl-id"));
        let reader = {
            let how = how.clone();
            std::thread::spawn(move || {
                share_secret(&how, 1, 2, None, Duration::from_secs(10)).unwrap()
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        share_secret(&how, 0, 2, Some(b"abc"), Duration::from_secs(10)).unwrap();
        assert_eq!(reader.join().unwrap(), b"abc");
        let e = share_secret(
            &Rendezvous::File(dir.path().join("none")),
            1,
            2,
            None,
            Duration::from_millis(100),
        )
        .unwrap_err();
        assert!(e.to_string().contains("did not appear"), "{e}");
    }
}
