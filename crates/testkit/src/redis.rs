//! Real Redis for the tests: a `redis-server` (or a Redis Cluster of three)
//! of the test's own on free loopback ports, saving nothing, never the
//! shared 6379; and `redis-cli` for what the tests ask Redis directly.

use std::path::PathBuf;

use tokio::process::Command;

use crate::net::free_port;
use crate::process::{TestProcess, die_with_spawning_thread};
use crate::wait::{WAIT, within};

/// What `redis-server` prints once it accepts connections.
const READY: &str = "Ready to accept connections";

/// A `redis-server` of this test on 127.0.0.1 (nothing saved), killed by
/// its PID when dropped; it can be killed and started again on the same
/// port.
///
/// ```no_run
/// # async fn example() {
/// use iocluster_testkit::RedisServer;
/// let mut redis = RedisServer::start().await;
/// let url = redis.url(); // redis://127.0.0.1:<port>
/// redis.kill().await;
/// redis.restart().await;
/// # }
/// ```
pub struct RedisServer {
    /// Its port.
    pub port: u16,
    process: Option<TestProcess>,
}

impl RedisServer {
    /// Starts one on a free loopback port; returns once it accepts
    /// connections.
    pub async fn start() -> RedisServer {
        RedisServer::start_on(free_port()).await
    }

    /// Starts one on `port`.
    pub async fn start_on(port: u16) -> RedisServer {
        let mut server = RedisServer {
            port,
            process: None,
        };
        server.restart().await;
        server
    }

    /// Starts it (again) on its port, if it is not running.
    pub async fn restart(&mut self) {
        if self.process.is_some() {
            return;
        }
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"]);
        let mut process = TestProcess::spawn("redis-server", command);
        let what = format!("redis-server on port {} to accept connections", self.port);
        process
            .wait_for_line(WAIT, &what, |line| line.contains(READY))
            .await;
        self.process = Some(process);
    }

    /// `redis://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (`SIGKILL` to its PID) and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().await;
        }
    }
}

/// A Redis Cluster of this test: three masters (no replicas) on free
/// loopback ports, each a `redis-server --cluster-enabled yes` with its
/// config in a directory of its own, joined by `redis-cli --cluster
/// create`. Stopped by PID, its directory removed, when dropped.
pub struct RedisCluster {
    /// The nodes' ports.
    pub ports: Vec<u16>,
    nodes: Vec<TestProcess>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts three nodes and creates the cluster; returns once every slot
    /// is served (`cluster_state:ok` on every node).
    pub async fn start() -> RedisCluster {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let dir = std::env::temp_dir().join(format!(
            "iocluster-redis-cluster-{}-{}",
            std::process::id(),
            ports[0]
        ));
        std::fs::create_dir_all(&dir).expect("a directory for the nodes' configs");
        let mut nodes = Vec::new();
        for port in &ports {
            let config = dir.join(format!("nodes-{port}.conf"));
            // The bus port must be free too (by default it is port + 10000:
            // past 65535 for high ephemeral ports, or taken).
            let bus_port = free_port();
            let mut command = Command::new("redis-server");
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-port", &bus_port.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(&config);
            let mut node = TestProcess::spawn("redis-server (cluster node)", command);
            node.wait_for_line(WAIT, "a cluster node to accept connections", |line| {
                line.contains(READY)
            })
            .await;
            nodes.push(node);
        }
        let cluster = RedisCluster { ports, nodes, dir };
        let mut create = vec!["--cluster".to_owned(), "create".to_owned()];
        create.extend(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")));
        create.push("--cluster-yes".to_owned());
        let create: Vec<&str> = create.iter().map(String::as_str).collect();
        // `--cluster create` waits, polling once a second, until every node
        // agrees on the slots: seconds when six clusters of a test binary
        // start at once on two busy cores (10 s was seen to run out).
        redis_cli_within(CLUSTER_CREATE, cluster.ports[0], &create).await;
        within(WAIT, "the cluster to be ok on every node", async {
            for port in &cluster.ports {
                while !redis_cli(*port, &["cluster", "info"])
                    .await
                    .contains("cluster_state:ok")
                {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        })
        .await;
        cluster
    }

    /// `redis-cluster://127.0.0.1:port` of its first node (fred finds the
    /// others).
    pub fn url(&self) -> String {
        format!("redis-cluster://127.0.0.1:{}", self.ports[0])
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        // Kill the nodes (by their PIDs) before their directory goes.
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How long `redis-cli --cluster create` may take.
const CLUSTER_CREATE: std::time::Duration = std::time::Duration::from_secs(60);

/// `redis-cli -h 127.0.0.1 -p port args…`: its output, trimmed. Fails the
/// test if it does not exit 0 within [`WAIT`].
pub async fn redis_cli(port: u16, args: &[&str]) -> String {
    redis_cli_within(WAIT, port, args).await
}

/// [`redis_cli`] with a time limit of its own.
async fn redis_cli_within(limit: std::time::Duration, port: u16, args: &[&str]) -> String {
    let mut command = Command::new("redis-cli");
    command
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .kill_on_drop(true);
    die_with_spawning_thread(command.as_std_mut(), nix::sys::signal::Signal::SIGKILL);
    let output = within(limit, &format!("redis-cli {args:?}"), command.output())
        .await
        .expect("redis-cli runs (scripts/test.sh installs it)");
    assert!(
        output.status.success(),
        "redis-cli {args:?}: {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
