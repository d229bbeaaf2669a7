//! Handing a small secret (the NCCL unique id) from rank 0 to every other rank of one job,
//! over TCP at the launcher's master address or through a file on a shared filesystem.
//!
//! Every message carries the job's identity, the 64-bit FNV-1a digest of the launcher's
//! job token ([`job_digest`]): an identity check that keeps another job's ranks and stale
//! files out, not a secret.
//!
//! TCP: rank 0 listens on the port on every IPv6 and IPv4 address; every other rank
//! resolves the host, tries each address in turn, and retries with a growing pause (50 ms
//! doubling to 2 s) until the timeout. A rank sends a 32-byte hello: the magic
//! `SWAVRDV2`, the job digest, its rank and the world size (little-endian `u64`s). Rank 0
//! answers the magic and a status byte, then for an accepted rank the secret's length
//! (`u64`) and the secret. A connection that is not one of this job's ranks (wrong magic,
//! wrong digest or world size, a rank out of range or already served, a hello cut short or
//! not finished within [`HELLO_TIMEOUT`]) is refused with one warning line (once per host
//! and reason) and rank 0 goes on waiting; it reads every connection without blocking, so a silent client holds up no
//! one. Rank 0 fails with the list of missing ranks if not all arrive in time; a rank that
//! cannot reach rank 0 fails naming the address and the last error.
//!
//! File: rank 0 writes the magic `SWAVRDF1`, the job digest and the secret to a temporary
//! name and renames it into place, replacing any earlier job's file; the others poll for a
//! file with their job's digest and ignore (with one warning) a file from another job.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How the ranks meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendezvous {
    /// TCP at rank 0's address and port.
    Tcp {
        /// Rank 0's host name or address (an IPv6 address with or without brackets).
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
    /// The file could not be written or read.
    #[error("rendezvous file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No file of this job appeared in time.
    #[error("rank {rank}: rendezvous file {path} did not appear within {waited:?}{}", stale_note(.stale))]
    FileTimeout {
        /// This rank.
        rank: usize,
        /// The file.
        path: PathBuf,
        /// The timeout.
        waited: Duration,
        /// Why the file that was there was ignored, if one was.
        stale: Option<String>,
    },
}

fn stale_note(stale: &Option<String>) -> String {
    stale
        .as_ref()
        .map(|why| format!(" (the file there was ignored: {why})"))
        .unwrap_or_default()
}

/// The start of every hello and reply, so that a stray connection is not mistaken for a
/// rank.
const MAGIC: &[u8; 8] = b"SWAVRDV2";
/// The start of a rendezvous file.
const FILE_MAGIC: &[u8; 8] = b"SWAVRDF1";
/// The length of a hello: magic, job digest, rank, world size.
const HELLO_LEN: usize = 32;
/// The most bytes a secret may have.
const MAX_SECRET_LEN: usize = 1 << 20;

/// How long rank 0 gives a connection to send its whole hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a rank waits for one connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a rank waits for rank 0's answer to its hello.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long rank 0 may spend sending the secret to one rank.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);
/// The first pause between attempts; it doubles up to [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);
/// The longest pause between attempts.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// The 64-bit FNV-1a digest of a job token: a fixed-length identity to compare, not a
/// secret (anyone who knows the token can compute it).
pub fn job_digest(token: &str) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    token.bytes().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// This process's place in the job, as the hello states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Member {
    digest: u64,
    rank: usize,
    world: usize,
}

impl Member {
    fn hello(&self) -> [u8; HELLO_LEN] {
        let mut hello = [0u8; HELLO_LEN];
        hello[..8].copy_from_slice(MAGIC);
        hello[8..16].copy_from_slice(&self.digest.to_le_bytes());
        hello[16..24].copy_from_slice(&(self.rank as u64).to_le_bytes());
        hello[24..32].copy_from_slice(&(self.world as u64).to_le_bytes());
        hello
    }
}

/// Shares `secret` (given on rank 0, `None` elsewhere) with every rank of the job named by
/// `job_token` and returns it.
pub fn share_secret(
    how: &Rendezvous,
    job_token: &str,
    rank: usize,
    world: usize,
    secret: Option<&[u8]>,
    timeout: Duration,
) -> Result<Vec<u8>, RendezvousError> {
    let me = Member {
        digest: job_digest(job_token),
        rank,
        world,
    };
    if world == 1 {
        return Ok(secret.unwrap_or_default().to_vec());
    }
    match (how, rank, secret) {
        (Rendezvous::Tcp { port, .. }, 0, Some(secret)) => {
            serve(*port, me, secret, timeout, HELLO_TIMEOUT)
        }
        (Rendezvous::Tcp { host, port }, _, _) => fetch(host, *port, me, timeout),
        (Rendezvous::File(path), 0, Some(secret)) => publish(path, me.digest, secret),
        (Rendezvous::File(path), _, _) => wait_for_file(path, me, timeout),
    }
}

/// A pause that doubles after every use, up to [`MAX_RETRY_PAUSE`].
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Self(FIRST_RETRY_PAUSE)
    }

    /// Sleeps for the current pause (never past `deadline`) and doubles it.
    fn sleep_until_at_most(&mut self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(self.0.min(left));
        self.0 = (self.0 * 2).min(MAX_RETRY_PAUSE);
    }
}

/// Why rank 0 turned a connection away.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// The first bytes are not the magic.
    Garbage,
    /// The hello did not arrive in time.
    Silent(Duration),
    /// The peer closed before its hello was complete.
    CutShort(usize),
    /// Reading failed.
    Broken(String),
    /// The hello names another job.
    OtherJob,
    /// The hello states another world size.
    OtherWorld(usize),
    /// The rank is rank 0's own or not below the world size.
    RankOutOfRange(usize),
    /// The rank has already been served.
    Duplicate(usize),
}

impl Refusal {
    /// The status byte a peer that spoke the protocol is answered with (`None`: no answer).
    fn status(&self) -> Option<u8> {
        match self {
            Self::OtherJob => Some(1),
            Self::OtherWorld(_) => Some(2),
            Self::RankOutOfRange(_) => Some(3),
            Self::Duplicate(_) => Some(4),
            Self::Garbage | Self::Silent(_) | Self::CutShort(_) | Self::Broken(_) => None,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Garbage => write!(f, "it did not start with the rendezvous magic"),
            Self::Silent(waited) => write!(f, "it sent no complete hello within {waited:?}"),
            Self::CutShort(got) => write!(f, "it closed after {got} of {HELLO_LEN} bytes"),
            Self::Broken(e) => write!(f, "reading its hello failed: {e}"),
            Self::OtherJob => write!(f, "it belongs to another job (job token differs)"),
            Self::OtherWorld(w) => write!(f, "it believes the world size is {w}"),
            Self::RankOutOfRange(r) => write!(f, "it claims rank {r}, which is not a peer's"),
            Self::Duplicate(r) => write!(f, "rank {r} has already been served"),
        }
    }
}

/// What a status byte in rank 0's reply means, for the waiting rank's error.
fn status_meaning(status: u8) -> &'static str {
    match status {
        1 => "rank 0 there belongs to another job (job token differs)",
        2 => "rank 0 there has another world size",
        3 => "rank 0 there says this rank is out of range",
        4 => "rank 0 there has already served this rank",
        _ => "rank 0 there refused with an unknown status",
    }
}

/// A connection whose hello is still arriving.
struct Pending {
    stream: TcpStream,
    peer: SocketAddr,
    since: Instant,
    hello: Vec<u8>,
}

impl Pending {
    /// Reads what has arrived: `None` while the hello is incomplete and time is left.
    fn poll(&mut self, hello_timeout: Duration) -> Option<Result<Member, Refusal>> {
        let mut chunk = [0u8; HELLO_LEN];
        loop {
            let want = HELLO_LEN - self.hello.len();
            match self.stream.read(&mut chunk[..want]) {
                Ok(0) => return Some(Err(Refusal::CutShort(self.hello.len()))),
                Ok(n) => {
                    self.hello.extend_from_slice(&chunk[..n]);
                    let seen = self.hello.len().min(MAGIC.len());
                    if self.hello[..seen] != MAGIC[..seen] {
                        return Some(Err(Refusal::Garbage));
                    }
                    if self.hello.len() == HELLO_LEN {
                        return Some(Ok(parse_hello(&self.hello)));
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    return (self.since.elapsed() >= hello_timeout)
                        .then_some(Err(Refusal::Silent(hello_timeout)));
                }
                Err(e) => return Some(Err(Refusal::Broken(e.to_string()))),
            }
        }
    }
}

fn parse_hello(hello: &[u8]) -> Member {
    let word = |k: usize| u64::from_le_bytes(hello[8 * k..8 * (k + 1)].try_into().expect("8"));
    Member {
        digest: word(1),
        rank: usize::try_from(word(2)).unwrap_or(usize::MAX),
        world: usize::try_from(word(3)).unwrap_or(usize::MAX),
    }
}

/// Listens on `port` on every address: on IPv6 `[::]` and IPv4 `0.0.0.0`. Where the IPv6
/// socket is dual-stack (Linux's default) it already takes IPv4 connections, so the IPv4
/// bind reports the port in use and the IPv6 socket serves both; without IPv6, IPv4 alone.
fn listen(port: u16) -> Result<Vec<TcpListener>, RendezvousError> {
    let failed = |source| RendezvousError::Listen { port, source };
    let mut listeners = Vec::new();
    match TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)) {
        Ok(v6) => listeners.push(v6),
        Err(e) if e.kind() == ErrorKind::AddrInUse => return Err(failed(e)),
        Err(_) => {} // no IPv6 on this machine
    }
    match TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)) {
        Ok(v4) => listeners.push(v4),
        Err(e) if e.kind() == ErrorKind::AddrInUse && !listeners.is_empty() => {}
        Err(e) => return Err(failed(e)),
    }
    for listener in &listeners {
        listener.set_nonblocking(true).map_err(failed)?;
    }
    Ok(listeners)
}

fn serve(
    port: u16,
    me: Member,
    secret: &[u8],
    timeout: Duration,
    hello_timeout: Duration,
) -> Result<Vec<u8>, RendezvousError> {
    let listeners = listen(port)?;
    let deadline = Instant::now() + timeout;
    let mut arrived = vec![false; me.world];
    arrived[0] = true;
    let mut pending: Vec<Pending> = Vec::new();
    // A stray peer that keeps retrying is reported once per host and reason.
    let mut reported: HashSet<(IpAddr, String)> = HashSet::new();
    while arrived.iter().any(|a| !a) {
        if Instant::now() >= deadline {
            let missing = (0..me.world).filter(|&r| !arrived[r]).collect();
            return Err(RendezvousError::MissingRanks {
                missing,
                waited: timeout,
            });
        }
        let mut busy = false;
        for listener in &listeners {
            while let Ok((stream, peer)) = listener.accept() {
                busy = true;
                if stream.set_nonblocking(true).is_ok() {
                    pending.push(Pending {
                        stream,
                        // An IPv4 peer of a dual-stack socket, as IPv4.
                        peer: SocketAddr::new(peer.ip().to_canonical(), peer.port()),
                        since: Instant::now(),
                        hello: Vec::with_capacity(HELLO_LEN),
                    });
                }
            }
        }
        pending.retain_mut(|connection| {
            let Some(outcome) = connection.poll(hello_timeout) else {
                return true;
            };
            busy = true;
            let verdict = outcome.and_then(|peer| admit(me, &arrived, peer));
            match verdict {
                Ok(rank) => match send_secret(&mut connection.stream, secret) {
                    Ok(()) => arrived[rank] = true,
                    Err(e) => tracing::warn!(
                        "rendezvous: rank 0 could not send the id to rank {rank} at {}: {e}; it may retry",
                        connection.peer
                    ),
                },
                Err(refusal) => {
                    if let Some(status) = refusal.status() {
                        let _ = connection.stream.write_all(&reply_head(status));
                    }
                    let reason = refusal.to_string();
                    if reported.insert((connection.peer.ip(), reason.clone())) {
                        let missing = arrived.iter().filter(|a| !**a).count();
                        tracing::warn!(
                            "rendezvous: rank 0 refused a connection from {}: {reason}; still waiting ({missing} of {} ranks missing; not repeated for this host)",
                            connection.peer,
                            me.world
                        );
                    }
                }
            }
            false
        });
        if !busy {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(secret.to_vec())
}

/// The rank a hello may be served as, or why not.
fn admit(me: Member, arrived: &[bool], peer: Member) -> Result<usize, Refusal> {
    if peer.digest != me.digest {
        return Err(Refusal::OtherJob);
    }
    if peer.world != me.world {
        return Err(Refusal::OtherWorld(peer.world));
    }
    if peer.rank == 0 || peer.rank >= me.world {
        return Err(Refusal::RankOutOfRange(peer.rank));
    }
    if arrived[peer.rank] {
        return Err(Refusal::Duplicate(peer.rank));
    }
    Ok(peer.rank)
}

/// The start of every reply: the magic and `status` (0: accepted, else a refusal).
fn reply_head(status: u8) -> Vec<u8> {
    let mut reply = MAGIC.to_vec();
    reply.push(status);
    reply
}

fn send_secret(stream: &mut TcpStream, secret: &[u8]) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(SEND_TIMEOUT))?;
    let mut reply = reply_head(0);
    reply.extend_from_slice(&(secret.len() as u64).to_le_bytes());
    reply.extend_from_slice(secret);
    stream.write_all(&reply)
}

/// `host:port`, with brackets around an IPv6 address.
fn display_address(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn fetch(host: &str, port: u16, me: Member, timeout: Duration) -> Result<Vec<u8>, RendezvousError> {
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let deadline = Instant::now() + timeout;
    let mut backoff = Backoff::new();
    let mut last_error = String::from("no attempt");
    while Instant::now() < deadline {
        let attempt = (bare_host, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))
            .and_then(|addresses| fetch_from_any(&addresses.collect::<Vec<_>>(), me));
        match attempt {
            Ok(secret) => return Ok(secret),
            Err(e) => last_error = e,
        }
        backoff.sleep_until_at_most(deadline);
    }
    Err(RendezvousError::Unreachable {
        rank: me.rank,
        address: display_address(host, port),
        waited: timeout,
        last_error,
    })
}

/// Tries each address in turn; the errors of all when none answers.
fn fetch_from_any(addresses: &[SocketAddr], me: Member) -> Result<Vec<u8>, String> {
    if addresses.is_empty() {
        return Err("the host resolves to no address".into());
    }
    let mut errors = Vec::new();
    for address in addresses {
        match fetch_from(address, me) {
            Ok(secret) => return Ok(secret),
            Err(e) => errors.push(format!("{address}: {e}")),
        }
    }
    Err(errors.join("; "))
}

fn fetch_from(address: &SocketAddr, me: Member) -> Result<Vec<u8>, String> {
    let text = |e: std::io::Error| e.to_string();
    let mut stream = TcpStream::connect_timeout(address, CONNECT_TIMEOUT).map_err(text)?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(text)?;
    stream.write_all(&me.hello()).map_err(text)?;
    let mut head = [0u8; 9];
    stream
        .read_exact(&mut head)
        .map_err(|e| format!("no answer to the hello: {e}"))?;
    if &head[..8] != MAGIC {
        return Err("the peer is not a swav rendezvous".into());
    }
    if head[8] != 0 {
        return Err(status_meaning(head[8]).into());
    }
    let mut len = [0u8; 8];
    stream.read_exact(&mut len).map_err(text)?;
    let len = u64::from_le_bytes(len);
    if len > MAX_SECRET_LEN as u64 {
        return Err(format!("implausible secret length {len}"));
    }
    let mut secret = vec![0u8; len as usize];
    stream.read_exact(&mut secret).map_err(text)?;
    Ok(secret)
}

fn publish(path: &Path, digest: u64, secret: &[u8]) -> Result<Vec<u8>, RendezvousError> {
    let mut contents = FILE_MAGIC.to_vec();
    contents.extend_from_slice(&digest.to_le_bytes());
    contents.extend_from_slice(secret);
    swav_nn::write_atomic(path, &contents).map_err(|source| RendezvousError::File {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(secret.to_vec())
}

/// The secret in a rendezvous file's `contents`, or why the file is not this job's.
fn read_file_contents(contents: &[u8], digest: u64) -> Result<Vec<u8>, String> {
    if contents.len() < 16 || &contents[..8] != FILE_MAGIC {
        return Err("it is not a swav rendezvous file".into());
    }
    let written_for = u64::from_le_bytes(contents[8..16].try_into().expect("8 bytes"));
    if written_for != digest {
        return Err(format!(
            "it was written by another job (job digest {written_for:016x}, this job's {digest:016x})"
        ));
    }
    Ok(contents[16..].to_vec())
}

fn wait_for_file(path: &Path, me: Member, timeout: Duration) -> Result<Vec<u8>, RendezvousError> {
    let deadline = Instant::now() + timeout;
    let mut backoff = Backoff::new();
    let mut stale = None;
    loop {
        match std::fs::read(path) {
            Ok(contents) => match read_file_contents(&contents, me.digest) {
                Ok(secret) => return Ok(secret),
                Err(why) => {
                    if stale.is_none() {
                        tracing::warn!(
                            "rendezvous: rank {} ignores {}: {why}; waiting for rank 0 to replace it",
                            me.rank,
                            path.display()
                        );
                    }
                    stale = Some(why);
                }
            },
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(source) => {
                return Err(RendezvousError::File {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        if Instant::now() >= deadline {
            return Err(RendezvousError::FileTimeout {
                rank: me.rank,
                path: path.to_path_buf(),
                waited: timeout,
                stale,
            });
        }
        backoff.sleep_until_at_most(deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "slurm job 77 step 0 world 3";

    fn free_port() -> u16 {
        TcpListener::bind(("127.0.0.1", 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn tcp(host: &str, port: u16) -> Rendezvous {
        Rendezvous::Tcp {
            host: host.into(),
            port,
        }
    }

    /// Runs `ranks` of `world` against rank 0 at `how` and returns what each received.
    fn peers(how: &Rendezvous, ranks: std::ops::Range<usize>, world: usize) -> Vec<Vec<u8>> {
        std::thread::scope(|s| {
            let handles: Vec<_> = ranks
                .map(|rank| {
                    s.spawn(move || {
                        share_secret(how, TOKEN, rank, world, None, Duration::from_secs(30))
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    /// Rank 0 serving `secret` to `world` ranks on `port` in the background, with
    /// `hello_timeout` for each connection.
    fn rank_0(
        port: u16,
        world: usize,
        secret: &'static [u8],
        hello_timeout: Duration,
    ) -> std::thread::JoinHandle<Result<Vec<u8>, RendezvousError>> {
        let me = Member {
            digest: job_digest(TOKEN),
            rank: 0,
            world,
        };
        std::thread::spawn(move || serve(port, me, secret, Duration::from_secs(60), hello_timeout))
    }

    /// A connection to rank 0 (once it listens).
    fn connect(port: u16) -> TcpStream {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => return stream,
                Err(e) if Instant::now() > deadline => panic!("rank 0 never listened: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Sends `bytes` (and no more) as a stray peer would and returns everything rank 0
    /// answers.
    fn stray(port: u16, bytes: &[u8]) -> Vec<u8> {
        let mut stream = connect(port);
        stream.write_all(bytes).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).unwrap();
        reply
    }

    fn hello(token: &str, rank: usize, world: usize) -> [u8; HELLO_LEN] {
        Member {
            digest: job_digest(token),
            rank,
            world,
        }
        .hello()
    }

    #[test]
    fn the_job_digest_is_fnv_1a() {
        assert_eq!(job_digest(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(job_digest("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(job_digest("slurm job 1"), job_digest("slurm job 2"));
    }

    #[test]
    fn tcp_hands_the_secret_to_every_rank() {
        let port = free_port();
        let how = tcp("127.0.0.1", port);
        let secret = vec![7u8; 128];
        let results: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|rank| {
                    let (how, secret) = (&how, &secret);
                    s.spawn(move || {
                        let mine = (rank == 0).then_some(secret.as_slice());
                        share_secret(how, TOKEN, rank, 4, mine, Duration::from_secs(20)).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(results.iter().all(|r| *r == secret));
    }

    #[test]
    fn stray_peers_are_refused_and_the_ranks_still_meet() {
        let port = free_port();
        let server = rank_0(port, 3, b"nccl-id", HELLO_TIMEOUT);
        assert_eq!(stray(port, b"GET / HTTP/1.1\r\n\r\n"), b"");
        assert_eq!(stray(port, b"SWAV"), b"", "a hello cut short");
        assert_eq!(stray(port, &hello(TOKEN, 1, 5)), reply_head(2));
        assert_eq!(
            stray(port, &hello("slurm job 76 step 0 world 3", 1, 3)),
            reply_head(1)
        );
        assert_eq!(stray(port, &hello(TOKEN, 3, 3)), reply_head(3));
        assert_eq!(stray(port, &hello(TOKEN, 0, 3)), reply_head(3));
        assert_eq!(peers(&tcp("127.0.0.1", port), 1..3, 3), [b"nccl-id"; 2]);
        assert_eq!(server.join().unwrap().unwrap(), b"nccl-id");
    }

    #[test]
    fn each_refusal_is_one_warning_line_once_per_host_and_reason() {
        let port = free_port();
        let captured = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&captured);
        let printer = crate::logging::WarningPrinter::new(Box::new(move |line: &str| {
            let mut text = sink.lock().unwrap();
            text.push_str(line);
            text.push('\n');
        }));
        let me = Member {
            digest: job_digest(TOKEN),
            rank: 0,
            world: 2,
        };
        let peers = std::thread::spawn(move || {
            let other_job = hello("another job", 1, 2);
            assert_eq!(stray(port, &other_job), reply_head(1));
            assert_eq!(stray(port, &other_job), reply_head(1));
            assert_eq!(stray(port, b"garbage"), b"");
            peers(&tcp("127.0.0.1", port), 1..2, 2)
        });
        tracing::subscriber::with_default(printer, || {
            serve(port, me, b"id", Duration::from_secs(60), HELLO_TIMEOUT).unwrap()
        });
        assert_eq!(peers.join().unwrap(), [b"id"]);
        let text = captured.lock().unwrap().clone();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0]
                .starts_with("warning: rendezvous: rank 0 refused a connection from 127.0.0.1:")
        );
        assert!(
            lines[0]
                .contains("another job (job token differs); still waiting (1 of 2 ranks missing;")
        );
        assert!(
            lines[1].contains("did not start with the rendezvous magic"),
            "{text}"
        );
    }

    #[test]
    fn a_rank_already_served_is_refused_as_a_duplicate() {
        let port = free_port();
        let server = rank_0(port, 3, b"id", HELLO_TIMEOUT);
        assert_eq!(peers(&tcp("127.0.0.1", port), 1..2, 3), [b"id"]);
        assert_eq!(stray(port, &hello(TOKEN, 1, 3)), reply_head(4));
        assert_eq!(peers(&tcp("127.0.0.1", port), 2..3, 3), [b"id"]);
        server.join().unwrap().unwrap();
    }

    #[test]
    fn a_silent_client_holds_up_no_rank() {
        let port = free_port();
        // So long a hello timeout that the ranks can only finish if rank 0 serves them
        // while the silent connection is still open.
        let server = rank_0(port, 3, b"id", Duration::from_secs(3600));
        let silent = connect(port);
        let start = Instant::now();
        assert_eq!(peers(&tcp("127.0.0.1", port), 1..3, 3), [b"id"; 2]);
        server.join().unwrap().unwrap();
        assert!(start.elapsed() < Duration::from_secs(60));
        drop(silent);
    }

    #[test]
    fn a_silent_client_is_dropped_after_the_hello_timeout() {
        let port = free_port();
        let server = rank_0(port, 2, b"id", Duration::from_millis(200));
        let mut silent = connect(port);
        silent
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut reply = Vec::new();
        assert_eq!(
            silent.read_to_end(&mut reply).unwrap(),
            0,
            "closed, no answer"
        );
        assert_eq!(peers(&tcp("127.0.0.1", port), 1..2, 2), [b"id"]);
        server.join().unwrap().unwrap();
    }

    #[test]
    fn a_rank_of_another_job_reports_the_refusal() {
        let port = free_port();
        let server = rank_0(port, 2, b"id", HELLO_TIMEOUT);
        connect(port);
        let e = share_secret(
            &tcp("localhost", port),
            "another job",
            1,
            2,
            None,
            Duration::from_millis(500),
        )
        .unwrap_err();
        assert!(e.to_string().contains("another job"), "{e}");
        assert_eq!(peers(&tcp("127.0.0.1", port), 1..2, 2), [b"id"]);
        server.join().unwrap().unwrap();
    }

    #[test]
    fn ipv6_loopback_works() {
        if TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_err() {
            eprintln!("skipped: this machine has no IPv6 loopback (::1)");
            return;
        }
        let port = free_port();
        let server = rank_0(port, 3, b"v6", HELLO_TIMEOUT);
        assert_eq!(peers(&tcp("::1", port), 1..2, 3), [b"v6"]);
        assert_eq!(peers(&tcp("[::1]", port), 2..3, 3), [b"v6"]);
        server.join().unwrap().unwrap();
    }

    #[test]
    fn every_resolved_address_is_tried() {
        let port = free_port();
        let server = rank_0(port, 2, b"id", HELLO_TIMEOUT);
        connect(port);
        let closed = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let open = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let me = Member {
            digest: job_digest(TOKEN),
            rank: 1,
            world: 2,
        };
        assert_eq!(fetch_from_any(&[closed, open], me).unwrap(), b"id");
        server.join().unwrap().unwrap();
        let e = fetch_from_any(&[closed], me).unwrap_err();
        assert!(e.starts_with(&closed.to_string()), "{e}");
        assert!(fetch_from_any(&[], me).unwrap_err().contains("no address"));
    }

    #[test]
    fn a_missing_rank_is_named_and_an_unreachable_master_is_reported() {
        let port = free_port();
        let how = tcp("127.0.0.1", port);
        let e =
            share_secret(&how, TOKEN, 0, 3, Some(b"id"), Duration::from_millis(300)).unwrap_err();
        assert!(e.to_string().contains("[1, 2]"), "{e}");
        let e = share_secret(&how, TOKEN, 1, 2, None, Duration::from_millis(300)).unwrap_err();
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
        let e = share_secret(
            &tcp("::1", port),
            TOKEN,
            1,
            2,
            None,
            Duration::from_millis(100),
        )
        .unwrap_err();
        assert!(e.to_string().contains(&format!("[::1]:{port}")), "{e}");
    }

    #[test]
    fn a_file_hands_the_secret_over() {
        let dir = tempfile::tempdir().unwrap();
        let how = Rendezvous::File(dir.path().join("nccl-id"));
        let reader = {
            let how = how.clone();
            std::thread::spawn(move || {
                share_secret(&how, TOKEN, 1, 2, None, Duration::from_secs(10)).unwrap()
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        share_secret(&how, TOKEN, 0, 2, Some(b"abc"), Duration::from_secs(10)).unwrap();
        assert_eq!(reader.join().unwrap(), b"abc");
        let e = share_secret(
            &Rendezvous::File(dir.path().join("none")),
            TOKEN,
            1,
            2,
            None,
            Duration::from_millis(100),
        )
        .unwrap_err();
        assert!(e.to_string().contains("did not appear"), "{e}");
    }

    #[test]
    fn a_stale_file_of_another_job_is_ignored_until_rank_0_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let how = Rendezvous::File(dir.path().join("nccl-id"));
        share_secret(&how, "an earlier job", 0, 2, Some(b"old"), Duration::ZERO).unwrap();
        let e = share_secret(&how, TOKEN, 1, 2, None, Duration::from_millis(200)).unwrap_err();
        assert!(e.to_string().contains("written by another job"), "{e}");
        let reader = {
            let how = how.clone();
            std::thread::spawn(move || {
                share_secret(&how, TOKEN, 1, 2, None, Duration::from_secs(20)).unwrap()
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        assert!(!reader.is_finished(), "the stale file was taken as current");
        share_secret(&how, TOKEN, 0, 2, Some(b"new"), Duration::ZERO).unwrap();
        assert_eq!(reader.join().unwrap(), b"new");
        std::fs::write(dir.path().join("garbage"), b"not a rendezvous file").unwrap();
        let e = share_secret(
            &Rendezvous::File(dir.path().join("garbage")),
            TOKEN,
            1,
            2,
            None,
            Duration::from_millis(100),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a swav rendezvous file"), "{e}");
    }
}
