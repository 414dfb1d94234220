//! A cluster for the scale-out tests: a PostgreSQL server of its own, two `oidc-server` and
//! two `mcp-server` replicas on it, and Debian's HAProxy in front of each pair (round robin,
//! no stickiness, active health checks on `/readyz`).
//!
//! The PostgreSQL server is private to the cluster (`initdb` into a temp dir, a free port),
//! so a test may stop and restart it without disturbing anything else on the machine. Its
//! binaries come from `E2E_PG_BIN` or the newest `/usr/lib/postgresql/*/bin`; as root, it
//! runs as the `postgres` user, since PostgreSQL refuses to run as root.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{LocalUser, Process, debian_program, is_root, peer_env, write_users_file};
use oidc_core::secret::SecretHash;
use oidc_core::store::{PostgresOptions, PostgresStore, ProviderStore as _};

use crate::common::free_port;

/// The memory page's client at the provider, and its secret (the same on every replica;
/// the page's sessions in PostgreSQL are sealed under a key derived from it).
const PAGE_CLIENT: &str = "memory-page";
const PAGE_SECRET: &str = "cluster-memory-page-secret-0123456789abcdef";

/// How long PostgreSQL may take to start or stop.
const POSTGRES_TIMEOUT: Duration = Duration::from_secs(60);

/// A PostgreSQL server in a temp dir, on a free loopback port.
pub(crate) struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    socket_dir: PathBuf,
    pub(crate) port: u16,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    /// `initdb` (trust authentication, user `postgres`) and start.
    pub(crate) fn start() -> PrivatePostgres {
        let bin = postgres_bin();
        let dir = tempfile::Builder::new()
            .prefix("cluster-postgres-")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        // The server runs as `postgres` when we are root: it must be able to enter the dir.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", dir.path().display()));
        let postgres = PrivatePostgres {
            data: dir.path().join("data"),
            log: dir.path().join("postgres.log"),
            socket_dir: dir.path().to_path_buf(),
            port: free_port(),
            bin,
            _dir: dir,
        };
        postgres.run(
            "initdb",
            &[
                "-D",
                path_str(&postgres.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        postgres.start_server();
        postgres
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub(crate) fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a database.
    pub(crate) fn create_database(&self, name: &str) {
        self.psql(&format!("CREATE DATABASE {name}"));
    }

    /// Runs one SQL command with `psql` in the `postgres` database; returns its output.
    pub(crate) fn psql(&self, sql: &str) -> String {
        let port = self.port.to_string();
        let output = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                sql,
            ])
            .output()
            .unwrap_or_else(|e| panic!("psql: {e}"));
        assert!(
            output.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Stops the server (fast shutdown: clients are disconnected, nothing committed is lost).
    pub(crate) fn stop(&self) {
        self.run(
            "pg_ctl",
            &["-D", path_str(&self.data), "-m", "fast", "-w", "stop"],
        );
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub(crate) fn start_server(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=200",
            self.port,
            path_str(&self.socket_dir)
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data),
                "-l",
                path_str(&self.log),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// The last lines of the server's log.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        format!("--- postgres ---\n{}", super::tail(&text, lines))
    }

    /// Runs one of the server's programs and checks that it succeeded.
    fn run(&self, program: &str, args: &[&str]) {
        let output = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log_tail(30)
        );
    }

    /// One of the server's programs, run as `postgres` when we are root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        command.current_dir("/").stdin(Stdio::null());
        command
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", path_str(&self.data), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// PostgreSQL's server programs: `E2E_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`.
fn postgres_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("E2E_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| {
                    let version = entry.file_name().to_str()?.parse().ok()?;
                    let bin = entry.path().join("bin");
                    bin.join("initdb").is_file().then_some((version, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server programs (initdb, pg_ctl) were not found under /usr/lib/postgresql; \
             install Debian's postgresql or set E2E_PG_BIN"
        )
    })
}

fn path_str(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()))
}

/// One server process of the cluster, restartable with the same settings.
pub(crate) struct Replica {
    pub(crate) name: String,
    /// The port it listens on (behind HAProxy).
    pub(crate) port: u16,
    program: PathBuf,
    env: Vec<(String, String)>,
    log_dir: PathBuf,
    process: Option<Process>,
    starts: u32,
}

impl Replica {
    fn new(name: &str, program: &str, env: Vec<(String, String)>, log_dir: &Path) -> Replica {
        let port = env
            .iter()
            .find(|(name, _)| name.ends_with("_LISTEN"))
            .and_then(|(_, listen)| listen.rsplit(':').next()?.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no *_LISTEN setting"));
        Replica {
            name: name.to_owned(),
            port,
            program: PathBuf::from(program),
            env,
            log_dir: log_dir.to_path_buf(),
            process: None,
            starts: 0,
        }
    }

    /// Starts it and waits until `/livez` answers.
    pub(crate) fn start(&mut self) {
        self.starts += 1;
        let mut command = Command::new(&self.program);
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        let name = format!("{}.{}", self.name, self.starts);
        let mut process = Process::spawn(&name, command, &self.log_dir);
        process.wait_until_serving(&format!("http://127.0.0.1:{}/livez", self.port));
        self.process = Some(process);
    }

    /// `kill -9`: no drain, no goodbye.
    pub(crate) fn kill(&mut self) {
        self.process = None;
    }

    /// `GET` on the replica itself (not through HAProxy): the status, if anything answers.
    pub(crate) fn status_of(&self, path: &str) -> Option<u16> {
        super::http_status(&format!("http://127.0.0.1:{}{path}", self.port))
    }

    /// The last lines of its current log.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        self.process.as_ref().map_or_else(
            || format!("--- {} (stopped) ---", self.name),
            |p| p.log_tail(lines),
        )
    }

    /// Its current log, in full.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(
            self.log_dir
                .join(format!("{}.{}.log", self.name, self.starts)),
        )
        .unwrap_or_default()
    }
}

/// Two replicas of each server on one PostgreSQL, behind HAProxy.
pub(crate) struct Cluster {
    /// The issuer: HAProxy's front for the oidc-server replicas.
    pub(crate) issuer: String,
    /// The MCP endpoint: HAProxy's front for the mcp-server replicas, `/mcp`.
    pub(crate) mcp_url: String,
    pub(crate) oidc: [Replica; 2],
    pub(crate) mcp: [Replica; 2],
    stats_port: u16,
    haproxy: Process,
    pub(crate) postgres: PrivatePostgres,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts PostgreSQL, the oidc-server replicas, HAProxy and the mcp-server replicas,
    /// and waits until HAProxy sees every replica healthy.
    pub(crate) fn start() -> Cluster {
        Cluster::start_with(&[])
    }

    /// [`start`](Self::start), with further settings for every replica (each server ignores
    /// the other's).
    pub(crate) fn start_with(settings: &[(&str, &str)]) -> Cluster {
        let haproxy = debian_program("haproxy", "haproxy", "E2E_HAPROXY");
        let dir = tempfile::Builder::new()
            .prefix("e2e-cluster-")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        let postgres = PrivatePostgres::start();
        postgres.create_database("oidc");
        postgres.create_database("mcp");

        let (oidc_front, mcp_front, stats_port) = (free_port(), free_port(), free_port());
        let issuer = format!("http://127.0.0.1:{oidc_front}");
        let mcp_base = format!("http://127.0.0.1:{mcp_front}");
        let mcp_url = format!("{mcp_base}/mcp");
        let users = dir.path().join("users.toml");
        write_users_file(&users, &[LocalUser::FIRST, LocalUser::SECOND]);
        // The memory page, registered at the provider as an operator registers it.
        let clients = dir.path().join("clients.toml");
        fs::write(
            &clients,
            format!(
                "[[clients]]\nclient_id = \"{PAGE_CLIENT}\"\nname = \"Memory page\"\n\
                 redirect_uris = [\"{mcp_base}/app/callback\"]\nsecret_sha256 = \"{}\"\n\
                 account_access = true\n",
                SecretHash::of(PAGE_SECRET).to_hex()
            ),
        )
        .unwrap_or_else(|e| panic!("writing {}: {e}", clients.display()));

        let oidc_replica = |n: u32| {
            let env = vec![
                ("OIDC_BASE_URL".to_owned(), issuer.clone()),
                (
                    "OIDC_LISTEN".to_owned(),
                    format!("127.0.0.1:{}", free_port()),
                ),
                (
                    "OIDC_DATA_DIR".to_owned(),
                    format!("{}/oidc-{n}", path_str(dir.path())),
                ),
                ("OIDC_DEFAULT_AUDIENCE".to_owned(), mcp_url.clone()),
                ("OIDC_USERS_FILE".to_owned(), path_str(&users).to_owned()),
                (
                    "OIDC_CLIENTS_FILE".to_owned(),
                    path_str(&clients).to_owned(),
                ),
                ("OIDC_DATABASE_URL".to_owned(), postgres.url("oidc")),
                ("OIDC_TRUSTED_PROXIES".to_owned(), "127.0.0.1".to_owned()),
                ("RUST_LOG".to_owned(), "info".to_owned()),
            ];
            let env = with_settings(env, settings, "OIDC_");
            Replica::new(
                &format!("oidc-{n}"),
                env!("CARGO_BIN_EXE_oidc-server"),
                env,
                dir.path(),
            )
        };
        let mcp_replica = |n: u32| {
            let env = vec![
                ("MCP_BASE_URL".to_owned(), mcp_base.clone()),
                (
                    "MCP_LISTEN".to_owned(),
                    format!("127.0.0.1:{}", free_port()),
                ),
                ("OIDC_ISSUER".to_owned(), issuer.clone()),
                (
                    "MCP_DATA_DIR".to_owned(),
                    format!("{}/mcp-{n}", path_str(dir.path())),
                ),
                ("MCP_DATABASE_URL".to_owned(), postgres.url("mcp")),
                ("MCP_APP_CLIENT_ID".to_owned(), PAGE_CLIENT.to_owned()),
                ("MCP_APP_CLIENT_SECRET".to_owned(), PAGE_SECRET.to_owned()),
                ("RUST_LOG".to_owned(), "info".to_owned()),
            ];
            let env = with_settings(env, settings, "MCP_");
            Replica::new(
                &format!("mcp-{n}"),
                env!("CARGO_BIN_EXE_mcp-server"),
                env,
                dir.path(),
            )
        };
        // Both replicas of a server start at once: their migrations race for the lock.
        let mut oidc = [oidc_replica(1), oidc_replica(2)];
        let mut mcp = [mcp_replica(1), mcp_replica(2)];
        std::thread::scope(|scope| {
            for replica in &mut oidc {
                scope.spawn(|| replica.start());
            }
        });

        let config = dir.path().join("haproxy.cfg");
        fs::write(
            &config,
            haproxy_config(
                (oidc_front, [oidc[0].port, oidc[1].port]),
                (mcp_front, [mcp[0].port, mcp[1].port]),
                stats_port,
            ),
        )
        .unwrap_or_else(|e| panic!("writing {}: {e}", config.display()));
        let mut command = Command::new(haproxy);
        command.arg("-db").arg("-f").arg(&config);
        let haproxy = Process::spawn("haproxy", command, dir.path());
        // The mcp-server replicas discover the issuer through HAProxy as they start.
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        let deadline = Instant::now() + Duration::from_secs(30);
        while super::http_status(&discovery) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "HAProxy does not pass {discovery}\n{}",
                haproxy.log_tail(20)
            );
            std::thread::sleep(Duration::from_millis(100));
        }

        std::thread::scope(|scope| {
            for replica in &mut mcp {
                scope.spawn(|| replica.start());
            }
        });
        let cluster = Cluster {
            issuer,
            mcp_url,
            oidc,
            mcp,
            stats_port,
            haproxy,
            postgres,
            dir,
        };
        cluster.wait_until_all_up();
        cluster
    }

    /// Waits until HAProxy reports all four replicas up.
    pub(crate) fn wait_until_all_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let stats = self.server_stats();
            if stats.len() == 4 && stats.iter().all(|s| s.up) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "HAProxy does not see every replica up: {stats:?}\n{}",
                self.log_tails()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// HAProxy's view of each replica.
    pub(crate) fn server_stats(&self) -> Vec<ServerStats> {
        let csv = super::http_get_text(&format!("http://127.0.0.1:{}/stats;csv", self.stats_port))
            .unwrap_or_default();
        let mut lines = csv.lines();
        let Some(header) = lines.next() else {
            return Vec::new();
        };
        let columns: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
        let column = |name: &str| columns.iter().position(|c| *c == name);
        let (Some(proxy), Some(server), Some(status), Some(ok)) = (
            column("pxname"),
            column("svname"),
            column("status"),
            column("hrsp_2xx"),
        ) else {
            return Vec::new();
        };
        lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .filter(|fields| {
                fields.len() > ok
                    && (fields[proxy] == "oidc" || fields[proxy] == "mcp")
                    && !matches!(fields[server], "FRONTEND" | "BACKEND")
            })
            .map(|fields| ServerStats {
                name: fields[server].to_owned(),
                up: fields[status].starts_with("UP"),
                responses_2xx: fields[ok].parse().unwrap_or(0),
            })
            .collect()
    }

    /// Every process's log tail, for failure messages.
    pub(crate) fn log_tails(&self) -> String {
        let mut text = String::new();
        for replica in self.oidc.iter().chain(&self.mcp) {
            let _ = writeln!(text, "{}", replica.log_tail(30));
        }
        let _ = writeln!(text, "{}", self.haproxy.log_tail(20));
        let _ = writeln!(text, "{}", self.postgres.log_tail(20));
        text
    }

    /// The environment every peer script gets: the cluster's front URLs, the first user,
    /// and the second as `E2E_OTHER_USERNAME`, `E2E_OTHER_PASSWORD`, `E2E_OTHER_EMAIL`.
    pub(crate) fn peer_env(&self, command: &mut Command) {
        peer_env(command, &self.issuer, &self.mcp_url);
        command
            .env("E2E_OTHER_USERNAME", super::OTHER_USERNAME)
            .env("E2E_OTHER_PASSWORD", super::OTHER_PASSWORD)
            .env("E2E_OTHER_EMAIL", super::OTHER_EMAIL);
    }

    /// The provider's current signing key, read from PostgreSQL: `(kid, PKCS#8 PEM)`.
    pub(crate) fn signing_key(&self) -> (String, String) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let url = format!("{}?sslmode=disable", self.postgres.url("oidc"));
        let keys = runtime.block_on(async {
            let store = PostgresStore::connect(&url, PostgresOptions::new())
                .await
                .unwrap_or_else(|e| panic!("connecting to the cluster's database: {e}"));
            store
                .load_keys()
                .await
                .unwrap_or_else(|e| panic!("loading keys: {e}"))
        });
        super::active_signing_key(keys)
    }

    /// The cluster's temp dir.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// `env` with those of `settings` whose names start with `prefix`.
fn with_settings(
    mut env: Vec<(String, String)>,
    settings: &[(&str, &str)],
    prefix: &str,
) -> Vec<(String, String)> {
    for (name, value) in settings {
        if name.starts_with(prefix) {
            env.push(((*name).to_owned(), (*value).to_owned()));
        }
    }
    env
}

/// One replica as HAProxy sees it.
#[derive(Debug)]
pub(crate) struct ServerStats {
    pub(crate) name: String,
    pub(crate) up: bool,
    pub(crate) responses_2xx: u64,
}

/// Round robin per request (no stickiness, no `prefer-last-server`), health checks on
/// `/readyz` every 300 ms, a request whose connection to a replica failed sent to the other
/// one. `X-Forwarded-For` for oidc-server's per-address limits. Long timeouts for SSE.
fn haproxy_config(oidc: (u16, [u16; 2]), mcp: (u16, [u16; 2]), stats_port: u16) -> String {
    let mut config = String::from(
        "global\n    maxconn 2000\n\
         defaults\n    mode http\n    timeout connect 2s\n    timeout client 10m\n    \
         timeout server 10m\n    timeout tunnel 1h\n    timeout http-keep-alive 10s\n    \
         option redispatch\n    retries 3\n    retry-on conn-failure\n",
    );
    for (name, (front, replicas)) in [("oidc", oidc), ("mcp", mcp)] {
        let _ = write!(
            config,
            "frontend {name}\n    bind 127.0.0.1:{front}\n    option forwardfor\n    \
             default_backend {name}\n\
             backend {name}\n    balance roundrobin\n    option httpchk GET /readyz\n    \
             default-server check inter 300ms fall 2 rise 2\n"
        );
        for (i, port) in replicas.iter().enumerate() {
            let _ = writeln!(config, "    server {name}{} 127.0.0.1:{port}", i + 1);
        }
    }
    let _ = write!(
        config,
        "listen stats\n    bind 127.0.0.1:{stats_port}\n    stats enable\n    stats uri /stats\n"
    );
    config
}
