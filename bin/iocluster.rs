//! iocluster: Socket.IO on every core and every machine.
//!
//! `iocluster [FLAGS]` runs a master and one worker per CPU serving the
//! built-in app; `iocluster [FLAGS] -- ./my-worker ARGS` supervises your own
//! worker program instead; `iocluster status` prints the workers' state.

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use iocluster::admin_ui::ui::Auth;
use iocluster::cluster::{
    Balance, ClusterConfig, EngineOptions, NodeId, PeerConfig, RecoveryOptions, SocketIoOptions,
    TlsConfig, TlsFiles, WorkerCommand,
};
use iocluster::{AdminUi, Fleet};
use iocluster_duration::CliDuration;

/// jemalloc for the master and the built-in workers: measured against
/// glibc's malloc on the same build, less RSS per idle WebSocket session
/// and 7–9 % less server CPU per handshake (`bench/cpu-per-session`, every
/// interleaved pair in its favour); see docs/DESIGN.md. mimalloc was tried
/// too: 9,018 bytes per session.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts: freed pages go back to the
/// system within about a second (`dirty_decay_ms`), straight away rather
/// than through `MADV_FREE` (`muzzy_decay_ms:0`, which would leave them in
/// RSS), and a background thread purges them even when the process is
/// otherwise idle. jemalloc's defaults keep freed pages for 10 s and purge
/// only while allocating, so the buffers of clients let go (issue 13)
/// would stay in an idle worker's RSS.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: MallocConf =
    MallocConf(c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

/// A C string pointer jemalloc reads once, at start.
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);

// SAFETY: the pointer is to a 'static C string literal, never written.
unsafe impl Sync for MallocConf {}

/// Socket.IO on every core: a master that hands each connection to the
/// worker owning its session.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
    /// Log lines as text or JSON; levels from `RUST_LOG` (default `info`).
    #[arg(long, global = true, env = "IOCLUSTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Emit an event to the clients of every server of a Redis fleet (Node
    /// servers with @socket.io/redis-adapter included), as
    /// @socket.io/redis-emitter does.
    Emit {
        /// The Redis URL (`redis://host:port`).
        #[arg(long, env = "IOCLUSTER_REDIS")]
        redis: String,
        /// The namespace.
        #[arg(long, default_value = "/")]
        nsp: String,
        /// Only the clients in this room (repeatable).
        #[arg(long = "to")]
        to: Vec<String>,
        /// Not the clients in this room (repeatable).
        #[arg(long = "except")]
        except: Vec<String>,
        /// The event name.
        event: String,
        /// The arguments, each JSON (`'{"a":1}'`, `42`, `'"text"'`); what is
        /// not JSON is sent as a string.
        args: Vec<String>,
    },
    /// Print a bcrypt hash of the password read from standard input (its
    /// first line), for --admin-ui-password-hash.
    HashPassword,
    /// Print the state of a running cluster's workers (from its admin endpoint).
    Status {
        /// The admin endpoint of the master.
        #[arg(long, env = "IOCLUSTER_ADMIN", default_value = "127.0.0.1:3300")]
        admin: SocketAddr,
    },
}

/// The library's defaults, which the flags below show and use.
fn defaults() -> ClusterConfig {
    ClusterConfig::default()
}

/// The library's engine defaults.
fn engine_defaults() -> EngineOptions {
    EngineOptions::default()
}

/// The default of `--transports`.
fn default_transports() -> Vec<String> {
    let engine = engine_defaults();
    let mut transports = Vec::new();
    if engine.polling {
        transports.push("polling".to_owned());
    }
    if engine.websocket {
        transports.push("websocket".to_owned());
    }
    transports
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// How new sessions are spread: random, round-robin, least-connection,
    /// ip-hash, forwarded-for.
    #[arg(long, env = "IOCLUSTER_BALANCE", default_value_t = defaults().balance)]
    balance: Balance,
    /// Port to listen on (0: any free port).
    #[arg(long, env = "IOCLUSTER_PORT", default_value_t = defaults().listen.port())]
    port: u16,
    /// Address to listen on (`0.0.0.0` or `::` for every interface).
    #[arg(long, env = "IOCLUSTER_HOST", default_value_t = defaults().listen.ip())]
    host: IpAddr,
    /// Number of worker processes (default: one per CPU).
    #[arg(long, env = "IOCLUSTER_WORKERS")]
    workers: Option<usize>,
    /// Runtime threads per worker (default: the CPUs divided among the
    /// workers, at least 1; with one worker per CPU, single-threaded
    /// workers).
    #[arg(long, env = "IOCLUSTER_THREADS_PER_WORKER", value_parser = clap::value_parser!(u16).range(1..))]
    threads_per_worker: Option<u16>,
    /// How long a client may take to send its first request head
    /// (durations: `500ms`, `10s`, `2m`; a bare number is milliseconds).
    #[arg(long, env = "IOCLUSTER_HEAD_TIMEOUT", default_value_t = CliDuration(defaults().head_timeout))]
    head_timeout: CliDuration,
    /// The largest first request head, in bytes (larger: 431).
    #[arg(long, env = "IOCLUSTER_MAX_HEAD", default_value_t = defaults().max_head)]
    max_head: usize,
    /// The listen backlog of the public port (the kernel caps it at
    /// net.core.somaxconn): room for a reconnect storm while the master
    /// accepts.
    #[arg(long, env = "IOCLUSTER_BACKLOG", default_value_t = defaults().backlog)]
    backlog: u32,
    /// How long a graceful shutdown may take before workers are killed.
    #[arg(long, env = "IOCLUSTER_SHUTDOWN_TIMEOUT", default_value_t = CliDuration(defaults().shutdown_timeout))]
    shutdown_timeout: CliDuration,
    /// A worker that stays up this long resets its slot's restart backoff
    /// (restarts wait 100 ms, doubling on each quick exit, up to 10 s).
    #[arg(long, env = "IOCLUSTER_BACKOFF_RESET", default_value_t = CliDuration(defaults().backoff_reset))]
    backoff_reset: CliDuration,
    /// Admin endpoint (`/status`), on loopback unless --admin-public.
    /// `off` disables it.
    #[arg(long, env = "IOCLUSTER_ADMIN", default_value_t = ClusterConfig::DEFAULT_ADMIN.to_string())]
    admin: String,
    /// Allow --admin on an address other than loopback (it has no
    /// authentication: private networks only).
    #[arg(long, env = "IOCLUSTER_ADMIN_PUBLIC")]
    admin_public: bool,
    /// Sync the workers (and other nodes) through this Redis instead of
    /// through the master: `redis://host:port`, or
    /// `redis-cluster://host:port` for a Redis Cluster.
    #[arg(long, env = "IOCLUSTER_REDIS")]
    redis: Option<String>,
    /// With --redis: Redis 7 sharded pub/sub (SPUBLISH/SSUBSCRIBE, as
    /// Node's createShardedAdapter), in subscription mode static, dynamic
    /// (the default) or dynamic-private.
    #[arg(
        long,
        env = "IOCLUSTER_REDIS_SHARDED",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "dynamic",
        value_name = "MODE"
    )]
    redis_sharded: Option<iocluster::redis::SubscriptionMode>,
    /// Sync the workers (and other nodes) through one Redis stream
    /// instead, as Node's @socket.io/redis-streams-adapter (0.2): with
    /// --recovery, sessions and the broadcasts they miss live in Redis, so
    /// a client whose node died recovers on any other node (Node servers
    /// with that adapter included). `redis://host:port`.
    #[arg(
        long,
        env = "IOCLUSTER_REDIS_STREAMS",
        value_name = "URL",
        conflicts_with = "redis"
    )]
    redis_streams: Option<String>,
    /// With --redis-streams: the stream's name (Node's streamName).
    #[arg(
        long,
        env = "IOCLUSTER_REDIS_STREAMS_NAME",
        default_value = "socket.io",
        value_name = "NAME"
    )]
    redis_streams_name: String,
    /// With --redis-streams: the stream's approximate length bound (Node's
    /// maxLen; XADD MAXLEN ~), which is also how far back a client can
    /// recover.
    #[arg(
        long,
        env = "IOCLUSTER_REDIS_STREAMS_MAXLEN",
        default_value_t = 10_000,
        value_name = "ENTRIES"
    )]
    redis_streams_maxlen: u64,
    /// Engine.IO path.
    #[arg(long, env = "IOCLUSTER_PATH", default_value_t = engine_defaults().path)]
    path: String,
    /// Engine.IO pingInterval.
    #[arg(long, env = "IOCLUSTER_PING_INTERVAL", default_value_t = CliDuration(Duration::from_millis(engine_defaults().ping_interval_ms)))]
    ping_interval: CliDuration,
    /// Engine.IO pingTimeout.
    #[arg(long, env = "IOCLUSTER_PING_TIMEOUT", default_value_t = CliDuration(Duration::from_millis(engine_defaults().ping_timeout_ms)))]
    ping_timeout: CliDuration,
    /// Largest message or polling body, in bytes (maxHttpBufferSize).
    #[arg(long, env = "IOCLUSTER_MAX_PAYLOAD", default_value_t = engine_defaults().max_payload)]
    max_payload: usize,
    /// Transports accepted: polling, websocket (comma-separated).
    #[arg(
        long,
        env = "IOCLUSTER_TRANSPORTS",
        default_values_t = default_transports(),
        value_delimiter = ','
    )]
    transports: Vec<String>,
    /// Origins allowed by CORS (repeatable; `*` for any). None: CORS closed.
    #[arg(
        long = "cors-origin",
        env = "IOCLUSTER_CORS_ORIGIN",
        value_delimiter = ','
    )]
    cors_origins: Vec<String>,
    /// Allow credentials (cookies) on cross-origin requests.
    #[arg(long, env = "IOCLUSTER_CORS_CREDENTIALS")]
    cors_credentials: bool,
    /// Set the `io` session cookie (for cookie-sticky load balancers).
    #[arg(long, env = "IOCLUSTER_COOKIE")]
    cookie: bool,
    /// With --cors-origin: accept WebSocket upgrades from any origin anyway
    /// (non-browser clients that send a foreign Origin). Without it, an
    /// upgrade from an origin not listed gets 403 (browsers apply no CORS to
    /// WebSockets; this stops cross-site WebSocket hijacking).
    #[arg(long, env = "IOCLUSTER_WEBSOCKET_ANY_ORIGIN")]
    websocket_any_origin: bool,
    /// Connection state recovery (Node's `connectionStateRecovery`): a
    /// client that reconnects within this long (default 2m) gets back its
    /// id, rooms and data, and the broadcasts it missed, on any worker
    /// (the state lives in the master, so a worker's crash loses nothing;
    /// with --redis-streams it lives in Redis, so a node's death loses
    /// nothing either). Off by default, as in Node.
    #[arg(
        long,
        env = "IOCLUSTER_RECOVERY",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "2m",
        value_name = "DURATION"
    )]
    recovery: Option<CliDuration>,
    /// With --recovery: a recovered client goes through the namespace's
    /// middlewares again (Node's `skipMiddlewares: false`).
    #[arg(
        long,
        env = "IOCLUSTER_RECOVERY_RUN_MIDDLEWARES",
        requires = "recovery"
    )]
    recovery_run_middlewares: bool,
    /// Do not serve the socket.io-client bundle at
    /// /socket.io/socket.io.min.js (and .js, .msgpack.min.js, .esm.min.js,
    /// their source maps); the built-in chat page loads it from there.
    #[arg(long, env = "IOCLUSTER_NO_SERVE_CLIENT")]
    no_serve_client: bool,
    /// Serve HTTPS on the public port with this certificate chain (PEM,
    /// the server's certificate first); read again on SIGHUP, which then
    /// drops no connection (SIGUSR2 rolls the workers). TLS is terminated
    /// by the workers, each connection handed over unread.
    #[arg(long, env = "IOCLUSTER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "IOCLUSTER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// With --tls-cert: answer a plain-HTTP request on the port with a
    /// redirect to https:// (default: 400).
    #[arg(long, env = "IOCLUSTER_TLS_REDIRECT", requires = "tls_cert")]
    tls_redirect: bool,
    /// This node's number in the fleet (in every session id it makes);
    /// default: random at each start. Set it for a static --peers list.
    #[arg(long, env = "IOCLUSTER_NODE_ID")]
    node_id: Option<u32>,
    /// Listen for the other nodes of the fleet here (HOST:PORT; a private
    /// network, never the public port): a request whose session lives on
    /// another node is forwarded there, so the fleet needs no sticky load
    /// balancer. Nodes find each other through --redis, or --peers.
    #[arg(long, env = "IOCLUSTER_PEER_LISTEN", requires = "peer_secret")]
    peer_listen: Option<SocketAddr>,
    /// The address the other nodes use to reach this one (default:
    /// --peer-listen).
    #[arg(long, env = "IOCLUSTER_PEER_ADVERTISE", requires = "peer_listen")]
    peer_advertise: Option<SocketAddr>,
    /// The secret every peer link is authenticated with (HMAC challenge
    /// both ways); the same on every node.
    #[arg(long, env = "IOCLUSTER_PEER_SECRET", hide_env_values = true)]
    peer_secret: Option<String>,
    /// The other nodes, for a fleet without Redis: ID=HOST:PORT
    /// (comma-separated; the IDs their --node-id).
    #[arg(long, env = "IOCLUSTER_PEERS", value_delimiter = ',', value_parser = peer_entry, requires = "peer_secret")]
    peers: Vec<(u32, SocketAddr)>,
    /// Serve the official Socket.IO Admin UI at /admin/ on the public port
    /// and instrument every worker's server for it (its `/admin`
    /// namespace): every worker of every node shows in the UI. Needs
    /// --admin-ui-password-hash, or --admin-ui-no-auth.
    #[arg(long, env = "IOCLUSTER_ADMIN_UI")]
    admin_ui: bool,
    /// The Admin UI's login username.
    #[arg(
        long,
        env = "IOCLUSTER_ADMIN_UI_USERNAME",
        default_value = "admin",
        requires = "admin_ui"
    )]
    admin_ui_username: String,
    /// The Admin UI's login password, as a bcrypt hash (`iocluster
    /// hash-password`, or `htpasswd -nbBC 10 "" PASSWORD | cut -c2-`).
    /// Prefer the environment variable: arguments show in `ps`.
    #[arg(
        long,
        env = "IOCLUSTER_ADMIN_UI_PASSWORD_HASH",
        hide_env_values = true,
        requires = "admin_ui"
    )]
    admin_ui_password_hash: Option<String>,
    /// The Admin UI without a login: anyone who reaches the port can watch
    /// and act on every socket. Development only.
    #[arg(
        long,
        env = "IOCLUSTER_ADMIN_UI_NO_AUTH",
        requires = "admin_ui",
        conflicts_with = "admin_ui_password_hash"
    )]
    admin_ui_no_auth: bool,
    /// development: every socket, room and event in the UI; production:
    /// the servers' stats only (nothing per socket or per event).
    #[arg(
        long,
        env = "IOCLUSTER_ADMIN_UI_MODE",
        default_value_t = iocluster::admin_ui::ui::Mode::Development,
        requires = "admin_ui",
        value_name = "MODE"
    )]
    admin_ui_mode: iocluster::admin_ui::ui::Mode,
    /// The Admin UI only watches: no join, leave, disconnect nor emit.
    #[arg(long, env = "IOCLUSTER_ADMIN_UI_READONLY", requires = "admin_ui")]
    admin_ui_readonly: bool,
    /// Your worker program and its arguments, after `--`; default: the
    /// built-in app.
    #[arg(last = true)]
    worker_command: Vec<OsString>,
}

impl ServeArgs {
    fn config(&self) -> Result<ClusterConfig, String> {
        let mut engine = EngineOptions {
            path: self.path.clone(),
            ping_interval_ms: millis(self.ping_interval),
            ping_timeout_ms: millis(self.ping_timeout),
            max_payload: self.max_payload,
            polling: false,
            websocket: false,
            cors_origins: self.cors_origins.clone(),
            cors_credentials: self.cors_credentials,
            cookie: self.cookie,
            websocket_any_origin: self.websocket_any_origin,
        };
        for transport in &self.transports {
            match transport.trim() {
                "polling" => engine.polling = true,
                "websocket" => engine.websocket = true,
                other => {
                    return Err(format!(
                        "unknown transport {other:?}: use polling, websocket"
                    ));
                }
            }
        }
        let admin =
            match self.admin.as_str() {
                "off" | "" => None,
                addr => Some(addr.parse().map_err(|_| {
                    format!("--admin {addr:?} is not an address like 127.0.0.1:3300")
                })?),
            };
        let mut config = ClusterConfig {
            listen: SocketAddr::new(self.host, self.port),
            balance: self.balance,
            head_timeout: self.head_timeout.into(),
            max_head: self.max_head,
            backlog: self.backlog,
            worker_threads: self.threads_per_worker.map(usize::from),
            shutdown_timeout: self.shutdown_timeout.into(),
            backoff_reset: self.backoff_reset.into(),
            admin,
            admin_public: self.admin_public,
            engine,
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(TlsConfig {
                    files: TlsFiles {
                        cert: cert.clone(),
                        key: key.clone(),
                    },
                    redirect_http: self.tls_redirect,
                }),
                _ => None,
            },
            peers: PeerConfig {
                node_id: self.node_id,
                listen: self.peer_listen,
                advertise: self.peer_advertise,
                secret: self.peer_secret.clone(),
                peers: self
                    .peers
                    .iter()
                    .map(|(id, addr)| (NodeId(*id), *addr))
                    .collect(),
            },
            socketio: SocketIoOptions {
                recovery: self.recovery.map(|duration| RecoveryOptions {
                    max_disconnection_ms: millis(duration),
                    skip_middlewares: !self.recovery_run_middlewares,
                }),
                serve_client: !self.no_serve_client,
            },
            ..defaults()
        };
        if let Some(workers) = self.workers {
            config.workers = workers.max(1);
        }
        Ok(config)
    }

    /// The Admin UI's settings, with `--admin-ui`.
    fn admin_ui(&self) -> Result<Option<AdminUi>, String> {
        if !self.admin_ui {
            return Ok(None);
        }
        let auth = match (&self.admin_ui_password_hash, self.admin_ui_no_auth) {
            (Some(hash), false) => Auth::Basic {
                username: self.admin_ui_username.clone(),
                password: hash.clone(),
            },
            (None, true) => Auth::None,
            _ => {
                return Err(
                    "--admin-ui needs --admin-ui-password-hash HASH (bcrypt), or --admin-ui-no-auth"
                        .to_owned(),
                );
            }
        };
        let settings = AdminUi {
            auth,
            mode: self.admin_ui_mode,
            readonly: self.admin_ui_readonly,
        };
        settings.validate()?;
        Ok(Some(settings))
    }

    /// How the workers sync: `--redis` (and `--redis-sharded`), or through
    /// the master.
    fn fleet(&self) -> Result<Fleet, String> {
        if let Some(url) = &self.redis_streams {
            if self.redis_sharded.is_some() {
                return Err(
                    "--redis-sharded and --redis-streams are two different adapters: choose one"
                        .to_owned(),
                );
            }
            return Ok(Fleet::RedisStreams {
                url: url.clone(),
                stream: self.redis_streams_name.clone(),
                max_len: self.redis_streams_maxlen,
            });
        }
        match (&self.redis, self.redis_sharded) {
            (Some(url), sharded) => Ok(Fleet::Redis {
                url: url.clone(),
                sharded,
            }),
            (None, Some(_)) => Err("--redis-sharded needs --redis URL".to_owned()),
            (None, None) => Ok(Fleet::Local),
        }
    }
}

/// A `--peers` entry: `ID=HOST:PORT`.
fn peer_entry(text: &str) -> Result<(u32, SocketAddr), String> {
    let (id, addr) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not ID=HOST:PORT"))?;
    let id = id
        .trim()
        .parse()
        .map_err(|_| format!("{id:?} is not a node number"))?;
    let addr = addr
        .trim()
        .parse()
        .map_err(|_| format!("{addr:?} is not an address like 10.0.0.2:3400"))?;
    Ok((id, addr))
}

/// Milliseconds, for the engine options workers receive.
fn millis(duration: CliDuration) -> u64 {
    u64::try_from(duration.0.as_millis()).unwrap_or(u64::MAX)
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// Logs to stderr at `RUST_LOG`'s levels (default `info`: one line per
/// worker start, exit and restart, per refused request head, per Redis
/// reconnect; nothing per message).
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let result = match cli.command {
        Some(Command::Status { admin }) => status(admin),
        Some(Command::HashPassword) => hash_password(),
        Some(Command::Emit {
            redis,
            nsp,
            to,
            except,
            event,
            args,
        }) => emit(&redis, &nsp, &to, &except, &event, &args),
        None => serve(cli.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("iocluster: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the master (or, in a worker process, the built-in app).
fn serve(args: ServeArgs) -> Result<(), String> {
    let config = args.config()?;
    let admin_ui = args.admin_ui()?;
    let mut builder = args.fleet()?.cluster().config(config);
    builder = AdminUi::apply(admin_ui.as_ref(), builder);
    if let Some((program, rest)) = args.worker_command.split_first() {
        builder = builder.worker_command(WorkerCommand {
            program: program.clone(),
            args: rest.to_vec(),
            env: Vec::new(),
        });
    }
    builder
        .build()
        .run(iocluster::app::build)
        .map_err(|error| error.to_string())
}

/// Prints a bcrypt hash of the first line of standard input.
fn hash_password() -> Result<(), String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err("no password on standard input".to_owned());
    }
    let hash = iocluster::admin_ui::ui::hash_password(password).map_err(|e| e.to_string())?;
    println!("{hash}");
    Ok(())
}

/// Prints the admin endpoint's `/status`.
fn status(admin: SocketAddr) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&admin, Duration::from_secs(2))
        .map_err(|e| format!("cannot reach the admin endpoint {admin}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET /status HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("unexpected answer: {e}"))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// Publishes one event through Redis, as @socket.io/redis-emitter does.
fn emit(
    redis: &str,
    nsp: &str,
    to: &[String],
    except: &[String],
    event: &str,
    args: &[String],
) -> Result<(), String> {
    let args: Vec<serde_json::Value> = args
        .iter()
        .map(|arg| {
            serde_json::from_str(arg).unwrap_or_else(|_| serde_json::Value::String(arg.clone()))
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let client = iocluster::redis::connect_client(redis)
            .await
            .map_err(|e| format!("cannot connect to Redis at {redis}: {e}"))?;
        let emitter = iocluster::redis::Emitter::new(client).of(nsp);
        let payload = iocluster::socketio::Payload::new(args);
        let result = match (to.split_first(), except.split_first()) {
            (None, None) => emitter.emit(event, payload).await,
            (Some((first, rest)), _) => {
                let mut operator = emitter.to(first.clone());
                for room in rest {
                    operator = operator.to(room.clone());
                }
                for room in except {
                    operator = operator.except(room.clone());
                }
                operator.emit(event, payload).await
            }
            (None, Some((first, rest))) => {
                let mut operator = emitter.except(first.clone());
                for room in rest {
                    operator = operator.except(room.clone());
                }
                operator.emit(event, payload).await
            }
        };
        result.map_err(|e| format!("emit failed: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// The master passes its workers `IOCLUSTER_WORKER_*` variables, and a
    /// worker of the built-in app parses this command line too: an option
    /// reading one of them would be set in every worker.
    #[test]
    fn no_option_reads_a_worker_variable() {
        let command = Cli::command();
        let mut commands = vec![&command];
        commands.extend(command.get_subcommands());
        for command in commands {
            for arg in command.get_arguments() {
                if let Some(env) = arg.get_env() {
                    let env = env.to_string_lossy();
                    assert!(env.starts_with("IOCLUSTER_"), "{env}");
                    assert!(!env.starts_with("IOCLUSTER_WORKER_"), "{env}");
                }
            }
        }
    }
}
