//! A private Redis Cluster of child `redis-server` processes, for the test
//! suite and the cluster load benchmark (issue 13). Never used against a
//! production Redis.
//!
//! A cluster needs TCP (nodes announce `ip:port` to each other and to
//! clients), so unlike [`super::redis_child`] it listens on loopback ports:
//! free ones picked at start (the port and its cluster-bus port, +10000),
//! never 6379. Each node keeps an append-only file with `fsync always` in its
//! own directory, so a node killed with SIGKILL and started again comes back
//! with its slots and its data, as a crashed primary with a disk would.
//! Dropping the cluster kills every node.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use thiserror::Error;

use super::redis_binary::{self, LocateError, RedisBinaries};

#[derive(Debug, Error)]
pub enum ClusterError {
    /// No Redis 7.x on PATH and none could be fetched.
    #[error(transparent)]
    Locate(#[from] LocateError),
    /// `redis-server` or `redis-cli` could not be run.
    #[error("cannot run {program}: {source}")]
    Spawn { program: &'static str, source: std::io::Error },
    #[error("no free loopback port pair (port and port + 10000) found")]
    NoPorts,
    #[error("redis-server on port {port} did not answer PING within {waited_ms} ms")]
    NotReady { port: u16, waited_ms: u64 },
    #[error("redis-cli --cluster create failed: {output}")]
    Create { output: String },
    #[error("the cluster did not reach cluster_state:ok within {waited_ms} ms")]
    NotOk { waited_ms: u64 },
}

/// How long a node may take to answer PING, and the cluster to become ok.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// One node: its port, directory and process.
#[derive(Debug)]
struct Node {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// A running cluster of primaries without replicas that belongs to us.
#[derive(Debug)]
pub struct ChildCluster {
    /// PATH's Redis 7.x, or the private copy ([`super::redis_binary::locate`]).
    binaries: &'static RedisBinaries,
    nodes: Vec<Node>,
}

impl ChildCluster {
    /// Starts `primaries` nodes with directories under `dir` (which must
    /// exist), joins them with `redis-cli --cluster create` (slots split
    /// evenly, no replicas) and waits for `cluster_state:ok`.
    ///
    /// # Errors
    /// [`ClusterError`] when a process cannot run or the cluster does not form.
    pub fn start(dir: &Path, primaries: usize) -> Result<Self, ClusterError> {
        let mut cluster = Self { binaries: redis_binary::locate()?, nodes: Vec::with_capacity(primaries) };
        let mut taken = Vec::new();
        for _ in 0..primaries {
            let port = free_port_pair(&taken)?;
            taken.push(port);
            let node_dir = dir.join(format!("node-{port}"));
            std::fs::create_dir_all(&node_dir).map_err(|source| ClusterError::Spawn { program: "mkdir", source })?;
            cluster.nodes.push(Node { port, dir: node_dir, child: None });
        }
        for i in 0..primaries {
            cluster.start_node(i)?;
        }
        let mut create = Command::new(&cluster.binaries.cli);
        create.arg("--cluster").arg("create");
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| ClusterError::Spawn { program: "redis-cli", source })?;
        if !out.status.success() {
            let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
            output.push_str(&String::from_utf8_lossy(&out.stderr));
            return Err(ClusterError::Create { output });
        }
        cluster.wait_ok()?;
        Ok(cluster)
    }

    /// The nodes' ports, in start order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// `127.0.0.1:port,…`, for `REDIS_CLUSTER_NODES`.
    pub fn seed_list(&self) -> Vec<String> {
        self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect()
    }

    /// Kills node `i` (SIGKILL: as abrupt as a crash). Idempotent.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes.get_mut(i).and_then(|n| n.child.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again from its directory (nodes.conf and AOF), and
    /// waits until the cluster is ok again.
    ///
    /// # Errors
    /// As [`ChildCluster::start`].
    pub fn restart(&mut self, i: usize) -> Result<(), ClusterError> {
        self.kill(i);
        self.start_node(i)?;
        self.wait_ok()
    }

    /// The command that moves `slots` hash slots, with their keys, from
    /// node `from` to node `to` (`redis-cli --cluster reshard`), as an
    /// operator rebalancing would. Returned unstarted, so a test can query
    /// while it runs; [`ChildCluster::wait_ok`] after it exits.
    pub fn reshard_command(&self, from: usize, to: usize, slots: usize) -> Command {
        let id = |i: usize| {
            let r = reply(self.nodes[i].port, b"CLUSTER MYID\r\n").unwrap_or_default();
            // A bulk string: "$40\r\n<id>\r\n".
            r.lines().nth(1).unwrap_or_default().trim().to_owned()
        };
        let mut command = Command::new(&self.binaries.cli);
        command
            .args(["--cluster", "reshard", &format!("127.0.0.1:{}", self.nodes[from].port)])
            .args(["--cluster-from", &id(from), "--cluster-to", &id(to)])
            .args(["--cluster-slots", &slots.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    fn start_node(&mut self, i: usize) -> Result<(), ClusterError> {
        let node = &mut self.nodes[i];
        let port = node.port.to_string();
        let child = Command::new(&self.binaries.server)
            .args(["--port", &port, "--bind", "127.0.0.1", "--cluster-enabled", "yes"])
            .args(["--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"])
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(&node.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| ClusterError::Spawn { program: "redis-server", source })?;
        node.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if reply(node.port, b"PING\r\n").is_some_and(|r| r.starts_with("+PONG")) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(ClusterError::NotReady { port: node.port, waited_ms: started.elapsed().as_millis() as u64 })
    }

    /// Waits until every running node reports `cluster_state:ok`.
    ///
    /// # Errors
    /// [`ClusterError::NotOk`] when that takes longer than 20 s.
    pub fn wait_ok(&self) -> Result<(), ClusterError> {
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            let ok = self
                .nodes
                .iter()
                .filter(|n| n.child.is_some())
                .all(|n| reply(n.port, b"CLUSTER INFO\r\n").is_some_and(|r| r.contains("cluster_state:ok")));
            if ok {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(ClusterError::NotOk { waited_ms: started.elapsed().as_millis() as u64 })
    }
}

impl Drop for ChildCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// The first bytes of a node's reply to an inline command, if it answers.
fn reply(port: u16, command: &[u8]) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.write_all(command).ok()?;
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).ok()?;
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// A loopback port that is free, with its cluster-bus port (+10000) free too.
fn free_port_pair(taken: &[u16]) -> Result<u16, ClusterError> {
    for _ in 0..200 {
        let Ok(listener) = TcpListener::bind(("127.0.0.1", 0)) else { continue };
        let Ok(addr) = listener.local_addr() else { continue };
        let port = addr.port();
        if !(1024..=55_000).contains(&port) || port == 6379 || taken.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return Ok(port);
        }
    }
    Err(ClusterError::NoPorts)
}
