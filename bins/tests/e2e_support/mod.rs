//! Support for the end-to-end tests: installing the pinned peers into project-local folders
//! (once, skipped while a stamp of the lockfile matches), starting our servers and the fake
//! Google as child processes on free loopback ports, and running peer scripts with a
//! timeout, parsing the JSON lines they print.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{Read, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{SHA256, digest};
use oidc_core::keys::{KeyRing, RotationPolicy};
use oidc_core::store::{ProviderStore as _, SqliteStore, StoredKeys};
use serde_json::Value;

use crate::common::free_port;

// Each test binary uses a part of these.
#[allow(dead_code)]
pub(crate) mod cluster;
#[allow(dead_code)]
pub(crate) mod suites;

pub(crate) use cluster::Cluster;

/// How long one peer script may run, unless its test says otherwise ([`run_peer_within`]).
pub(crate) const PEER_TIMEOUT: Duration = Duration::from_secs(300);
/// How long an installation step (`npm ci`, `pip install`) may run.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);
/// How long a server may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The local user of the password login.
pub(crate) const USERNAME: &str = "alice";
/// Her password.
pub(crate) const PASSWORD: &str = "correct horse battery staple";
/// Her verified email.
pub(crate) const EMAIL: &str = "alice@example.com";
/// A second local user, for the checks that one user never sees another's data.
pub(crate) const OTHER_USERNAME: &str = "bob";
/// His password.
pub(crate) const OTHER_PASSWORD: &str = "purple monkey dishwasher tonic";
/// His verified email.
pub(crate) const OTHER_EMAIL: &str = "bob@example.com";

/// `bins/tests/e2e`: the peer projects.
pub(crate) fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

/// Cargo's target directory (`target/`).
pub(crate) fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// Where the browser test puts its screenshots.
pub(crate) fn screenshot_dir() -> PathBuf {
    target_dir().join("e2e/screenshots")
}

/// The Node peers, installed.
pub(crate) struct NodePeers {
    /// `bins/tests/e2e/node`.
    pub(crate) dir: PathBuf,
}

impl NodePeers {
    /// `node <script>` in the peers' folder.
    pub(crate) fn command(&self, script: &str) -> Command {
        let mut command = Command::new(node_binary());
        command.arg(script).current_dir(&self.dir);
        command
    }
}

/// The Python peers' virtual environment, installed.
pub(crate) struct PythonPeers {
    python: PathBuf,
    dir: PathBuf,
}

impl PythonPeers {
    /// The venv's `python <script>` in the peers' folder.
    pub(crate) fn command(&self, script: &str) -> Command {
        let mut command = Command::new(&self.python);
        command
            .arg(script)
            .current_dir(&self.dir)
            .env("PYTHONUNBUFFERED", "1");
        command
    }
}

/// Installs the Node peers from the committed lockfile (`npm ci`) unless the stamp in
/// `node_modules` says this lockfile and this Node are already installed.
pub(crate) fn node_peers() -> &'static NodePeers {
    static PEERS: OnceLock<Result<NodePeers, String>> = OnceLock::new();
    match PEERS.get_or_init(install_node_peers) {
        Ok(peers) => peers,
        Err(message) => panic!("{message}"),
    }
}

/// Creates `target/e2e-venv` and installs the hash-pinned requirements unless its stamp
/// says these requirements and this Python are already installed.
pub(crate) fn python_peers() -> &'static PythonPeers {
    static PEERS: OnceLock<Result<PythonPeers, String>> = OnceLock::new();
    match PEERS.get_or_init(install_python_peers) {
        Ok(peers) => peers,
        Err(message) => panic!("{message}"),
    }
}

/// Debian's Chromium (or `E2E_CHROMIUM`); panics with what to install when it is missing.
pub(crate) fn chromium() -> PathBuf {
    let path = std::env::var_os("E2E_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.is_file(),
        "Chromium is missing at {}: the browser end-to-end test needs Debian's `chromium` package \
         (`apt-get install -y chromium`), or E2E_CHROMIUM pointing at a Chromium binary",
        path.display()
    );
    path
}

fn node_binary() -> PathBuf {
    std::env::var_os("E2E_NODE").map_or_else(|| PathBuf::from("node"), PathBuf::from)
}

fn install_node_peers() -> Result<NodePeers, String> {
    let dir = peers_dir().join("node");
    let version = tool_version(Command::new(node_binary()).arg("--version")).map_err(|e| {
        format!("the Node peers need Node.js 20 or later (`node` on PATH or E2E_NODE): {e}")
    })?;
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        return Err(format!(
            "the Node peers need Node.js 20 or later, found {version}"
        ));
    }
    let lockfile = fs::read(dir.join("package-lock.json"))
        .map_err(|e| format!("reading package-lock.json: {e}"))?;
    let stamp_text = format!(
        "package-lock.json sha256 {}\nnode {version}\n",
        hex_sha256(&lockfile)
    );
    let stamp = dir.join("node_modules/.e2e-stamp");
    let _lock = InstallLock::acquire("node")?;
    if fs::read_to_string(&stamp).is_ok_and(|s| s == stamp_text) {
        return Ok(NodePeers { dir });
    }
    let mut npm = Command::new("npm");
    npm.args([
        "ci",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--prefer-offline",
    ])
    .current_dir(&dir);
    run_install("npm ci (bins/tests/e2e/node)", npm)?;
    fs::write(&stamp, stamp_text).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    Ok(NodePeers { dir })
}

fn install_python_peers() -> Result<PythonPeers, String> {
    let dir = peers_dir().join("python");
    let base =
        std::env::var_os("E2E_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    let version = tool_version(Command::new(&base).arg("--version")).map_err(|e| {
        format!("the Python peers need Python 3.10 or later (`python3` on PATH or E2E_PYTHON): {e}")
    })?;
    let requirements = dir.join("requirements.txt");
    let pinned =
        fs::read(&requirements).map_err(|e| format!("reading {}: {e}", requirements.display()))?;
    let stamp_text = format!(
        "requirements.txt sha256 {}\n{version}\n",
        hex_sha256(&pinned)
    );
    let venv = target_dir().join("e2e-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join(".e2e-stamp");
    let _lock = InstallLock::acquire("python")?;
    if python.is_file() && fs::read_to_string(&stamp).is_ok_and(|s| s == stamp_text) {
        return Ok(PythonPeers { python, dir });
    }
    if venv.exists() {
        fs::remove_dir_all(&venv)
            .map_err(|e| format!("removing the stale {}: {e}", venv.display()))?;
    }
    let mut create = Command::new(&base);
    create.args(["-m", "venv"]).arg(&venv);
    run_install("python3 -m venv target/e2e-venv", create)?;
    let mut pip = Command::new(&python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--require-hashes",
        "-r",
    ])
    .arg(&requirements);
    run_install(
        "pip install --require-hashes -r bins/tests/e2e/python/requirements.txt",
        pip,
    )?;
    fs::write(&stamp, stamp_text).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    Ok(PythonPeers { python, dir })
}

/// An exclusive lock on `target/e2e/<name>.lock`, so that two test processes never
/// install into the same folder at once.
struct InstallLock(File);

impl InstallLock {
    fn acquire(name: &str) -> Result<InstallLock, String> {
        let dir = target_dir().join("e2e");
        fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let path = dir.join(format!("{name}.lock"));
        let file = File::create(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        file.lock()
            .map_err(|e| format!("locking {}: {e}", path.display()))?;
        Ok(InstallLock(file))
    }
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn tool_version(command: &mut Command) -> Result<String, String> {
    let output = command.output().map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!("{}", output.status));
    }
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    Ok(text.trim().to_owned())
}

fn run_install(what: &str, mut command: Command) -> Result<(), String> {
    eprintln!("e2e: installing: {what}");
    let started = Instant::now();
    let output = run_bounded(&mut command, INSTALL_TIMEOUT).map_err(|e| format!("{what}: {e}"))?;
    if !output.status_ok {
        return Err(format!(
            "{what} failed ({}):\n{}\n{}",
            output.status,
            tail(&output.stdout, 40),
            tail(&output.stderr, 60)
        ));
    }
    eprintln!("e2e: installed in {:.0?}: {what}", started.elapsed());
    Ok(())
}

fn hex_sha256(bytes: &[u8]) -> String {
    digest(&SHA256, bytes)
        .as_ref()
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// What a bounded child process left behind.
struct Finished {
    status: String,
    status_ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `command` in its own process group with its output captured; kills the group when
/// `timeout` passes.
fn run_bounded(command: &mut Command, timeout: Duration) -> Result<Finished, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("could not start {:?}: {e}", command.get_program()))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Ok(None) => break None,
            Err(e) => return Err(format!("waiting for the child: {e}")),
        }
    };
    if status.is_none() {
        kill_group(&mut child);
    }
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match status {
        Some(status) => Ok(Finished {
            status: status.to_string(),
            status_ok: status.success(),
            stdout,
            stderr,
        }),
        None => Err(format!(
            "timed out after {} s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            timeout.as_secs(),
            tail(&stdout, 40),
            tail(&stderr, 60)
        )),
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// Kills the child's whole process group (a peer may have started a browser), then reaps
/// the child.
fn kill_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A long-running child process (one of our servers, the fake Google) with its output in a
/// log file; its process group is killed when dropped.
pub(crate) struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `command`, output to `<log_dir>/<name>.log`.
    pub(crate) fn spawn(name: &str, mut command: Command, log_dir: &Path) -> Process {
        let log = log_dir.join(format!("{name}.log"));
        let file = File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let err = file
            .try_clone()
            .unwrap_or_else(|e| panic!("cloning {}: {e}", log.display()));
        let child = command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("could not start {name} ({:?}): {e}", command.get_program())
            });
        Process {
            name: name.to_owned(),
            child,
            log,
        }
    }

    /// Waits until `url` answers over HTTP; panics with the log tail if the process exits
    /// first or it never answers.
    pub(crate) fn wait_until_serving(&mut self, url: &str) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before serving {url}\n{}",
                    self.name,
                    self.log_tail(60)
                );
            }
            if http_status(url).is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not serve {url} within {} s\n{}",
                self.name,
                START_TIMEOUT.as_secs(),
                self.log_tail(60)
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last `lines` lines of its log, headed by its name.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        format!(
            "--- {} ({}) ---\n{}",
            self.name,
            self.log.display(),
            tail(&text, lines)
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// The status of a plain `GET url` (`http://host:port/path` only), if anything answers.
pub(crate) fn http_status(url: &str) -> Option<u16> {
    let answer = http_get(url)?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// The body of a plain `GET url` answered `200`.
pub(crate) fn http_get_text(url: &str) -> Option<String> {
    let answer = http_get(url)?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    if head.split_whitespace().nth(1)? != "200" {
        return None;
    }
    // Some servers (HAProxy's stats page) answer chunked even to HTTP/1.0.
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Some(body.to_owned());
    }
    let mut text = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(text);
        }
        text.push_str(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

/// A plain `GET url` (`http://host:port/path`) over a fresh connection: the whole answer.
fn http_get(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let addr: SocketAddr = authority.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    // HTTP/1.0: no chunked body, the answer ends when the connection closes.
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (!answer.is_empty()).then(|| String::from_utf8_lossy(&answer).into_owned())
}

/// Whether this process runs as root.
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A program from a Debian package: `$env_var`, `/usr/sbin/<program>` or `<program>` on
/// `PATH`; installed with `apt-get install <package>` when missing and possible (as root),
/// else a panic saying what to install. The package's service is never used.
pub(crate) fn debian_program(program: &str, package: &str, env_var: &str) -> PathBuf {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(path) = find_program(program, env_var) {
        return path;
    }
    let can_install = is_root() && Path::new("/usr/bin/apt-get").is_file();
    assert!(
        can_install,
        "{program} is missing: this test needs Debian's {package} (`apt-get install -y {package}`) \
         or {env_var} pointing at a {program} binary; it installs it itself only as root with apt-get"
    );
    eprintln!("e2e: installing Debian's {package}");
    for args in [
        &["update", "-qq"][..],
        &["install", "-y", "-qq", "--no-install-recommends", package][..],
    ] {
        let output = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap_or_else(|e| panic!("apt-get: {e}"));
        assert!(
            output.status.success(),
            "apt-get {} failed:\n{}",
            args.join(" "),
            tail(&String::from_utf8_lossy(&output.stderr), 30)
        );
    }
    find_program(program, env_var)
        .unwrap_or_else(|| panic!("apt-get installed {package} but no {program} binary was found"))
}

fn find_program(program: &str, env_var: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{env_var}={} is not a file", path.display());
        return Some(path);
    }
    let packaged = Path::new("/usr/sbin").join(program);
    if packaged.is_file() {
        return Some(packaged);
    }
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
    (found.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
}

/// An upstream OpenID provider for our oidc-server.
pub(crate) struct UpstreamLogin {
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) allowed_emails: Vec<String>,
}

/// How to start the stack.
#[derive(Default)]
pub(crate) struct StackOptions {
    /// The oidc-server's port (chosen before start when the upstream needs our callback URL).
    pub(crate) oidc_port: Option<u16>,
    /// The mcp-server's port (chosen before start when a proxy forwards to it).
    pub(crate) mcp_port: Option<u16>,
    /// The public URLs `(OIDC_BASE_URL, MCP_BASE_URL)` when a reverse proxy fronts the
    /// servers; by default their own loopback addresses. The servers listen on their ports
    /// either way.
    pub(crate) public_urls: Option<(String, String)>,
    /// Local password login with [`USERNAME`] / [`PASSWORD`].
    pub(crate) password_login: bool,
    /// Login at an upstream OpenID provider.
    pub(crate) upstream: Option<UpstreamLogin>,
    /// Further resources (RFC 8707) tokens may be issued for.
    pub(crate) extra_resources: Vec<String>,
    /// mcp-server's per-user request rate (`MCP_RATE_LIMIT`); its default when `None`.
    pub(crate) mcp_rate_limit: Option<u32>,
}

/// Our oidc-server and mcp-server, on free loopback ports with data in a temp dir.
pub(crate) struct Stack {
    /// The issuer, `http://127.0.0.1:<port>`.
    pub(crate) issuer: String,
    /// The MCP endpoint, `http://127.0.0.1:<port>/mcp` (the access tokens' audience).
    pub(crate) mcp_url: String,
    mcp: Process,
    oidc: Process,
    dir: tempfile::TempDir,
}

impl Stack {
    /// Starts both servers and waits until they serve.
    pub(crate) fn start(options: &StackOptions) -> Stack {
        let dir = tempfile::Builder::new()
            .prefix("e2e-stack-")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        let oidc_port = options.oidc_port.unwrap_or_else(free_port);
        let mcp_port = options.mcp_port.unwrap_or_else(free_port);
        let (issuer, mcp_base) = options.public_urls.clone().unwrap_or_else(|| {
            (
                format!("http://127.0.0.1:{oidc_port}"),
                format!("http://127.0.0.1:{mcp_port}"),
            )
        });
        let mcp_url = format!("{mcp_base}/mcp");

        let mut oidc = Command::new(env!("CARGO_BIN_EXE_oidc-server"));
        oidc.env("OIDC_BASE_URL", &issuer)
            .env("OIDC_LISTEN", format!("127.0.0.1:{oidc_port}"))
            .env("OIDC_DATA_DIR", dir.path().join("oidc"))
            .env("OIDC_DEFAULT_AUDIENCE", &mcp_url)
            .env("OIDC_RESOURCES", options.extra_resources.join(","))
            .env("RUST_LOG", "info");
        if options.password_login {
            let users = dir.path().join("users.toml");
            write_users_file(&users, &[LocalUser::FIRST]);
            oidc.env("OIDC_USERS_FILE", users);
        }
        if let Some(upstream) = &options.upstream {
            oidc.env("OIDC_UPSTREAM_ISSUER", &upstream.issuer)
                .env("GOOGLE_CLIENT_ID", &upstream.client_id)
                .env("GOOGLE_CLIENT_SECRET", &upstream.client_secret)
                .env("OIDC_ALLOWED_EMAILS", upstream.allowed_emails.join(","));
        }
        let mut oidc = Process::spawn("oidc-server", oidc, dir.path());
        oidc.wait_until_serving(&format!(
            "http://127.0.0.1:{oidc_port}/.well-known/openid-configuration"
        ));

        let mut mcp = Command::new(env!("CARGO_BIN_EXE_mcp-server"));
        mcp.env("MCP_BASE_URL", &mcp_base)
            .env("MCP_LISTEN", format!("127.0.0.1:{mcp_port}"))
            .env("OIDC_ISSUER", &issuer)
            .env("MCP_DATA_DIR", dir.path().join("mcp"))
            .env("RUST_LOG", "info");
        if let Some(rate) = options.mcp_rate_limit {
            mcp.env("MCP_RATE_LIMIT", rate.to_string())
                .env("MCP_RATE_BURST", rate.to_string());
        }
        let mut mcp = Process::spawn("mcp-server", mcp, dir.path());
        mcp.wait_until_serving(&format!("http://127.0.0.1:{mcp_port}/health"));
        Stack {
            issuer,
            mcp_url,
            mcp,
            oidc,
            dir,
        }
    }

    /// The environment every peer script gets.
    pub(crate) fn peer_env(&self, command: &mut Command) {
        peer_env(command, &self.issuer, &self.mcp_url);
    }

    /// The provider's current signing key from its store: `(kid, PKCS#8 PEM)`.
    pub(crate) fn signing_key(&self) -> (String, String) {
        sqlite_signing_key(&self.dir.path().join("oidc/oidc.db"))
    }

    /// The servers' log tails, for failure messages.
    pub(crate) fn log_tails(&self) -> String {
        format!("{}\n{}", self.oidc.log_tail(40), self.mcp.log_tail(40))
    }
}

/// The current signing key in a provider's SQLite store: `(kid, PKCS#8 PEM)`.
fn sqlite_signing_key(db: &Path) -> (String, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let keys = runtime.block_on(async {
        let store =
            SqliteStore::open(db).unwrap_or_else(|e| panic!("opening {}: {e}", db.display()));
        store
            .load_keys()
            .await
            .unwrap_or_else(|e| panic!("loading keys: {e}"))
    });
    active_signing_key(keys)
}

/// The key that signs now among the stored keys: `(kid, PKCS#8 PEM)`.
pub(crate) fn active_signing_key(keys: StoredKeys) -> (String, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let count = keys.records.len();
    let ring = KeyRing::from_records(RotationPolicy::default(), keys.records)
        .unwrap_or_else(|e| panic!("the stored keys do not form a key ring: {e}"));
    let signer = ring
        .signer(now)
        .unwrap_or_else(|| panic!("no active signing key among {count} in the store"));
    let pem = signer
        .to_pkcs8_pem()
        .unwrap_or_else(|e| panic!("encoding the signing key: {e}"));
    (signer.kid().to_owned(), pem.as_str().to_owned())
}

/// The environment every peer script gets: the servers' URLs and the first local user.
fn peer_env(command: &mut Command, issuer: &str, mcp_url: &str) {
    command
        .env("E2E_ISSUER", issuer)
        .env("E2E_MCP_URL", mcp_url)
        .env("E2E_RESOURCE", mcp_url)
        .env("E2E_USERNAME", USERNAME)
        .env("E2E_PASSWORD", PASSWORD)
        .env("E2E_EMAIL", EMAIL);
}

/// The `stack` binary, started as a person starts it (`cargo run --bin stack`): one process
/// running oidc-server and mcp-server on loopback, configured for each other, its data in a
/// temp dir. Its users file is written before the start with [`LocalUser::FIRST`] and
/// [`LocalUser::SECOND`] (so the stack creates no `admin`), as a person adds users to it.
pub(crate) struct OneCommandStack {
    /// The issuer, `http://127.0.0.1:<port>`.
    pub(crate) issuer: String,
    /// The MCP endpoint, `http://127.0.0.1:<port>/mcp`.
    pub(crate) mcp_url: String,
    process: Process,
    _dir: tempfile::TempDir,
}

impl OneCommandStack {
    /// Starts the stack and waits until both servers serve.
    pub(crate) fn start() -> OneCommandStack {
        let dir = tempfile::Builder::new()
            .prefix("e2e-one-command-stack-")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        let data = dir.path().join("data");
        let oidc_dir = data.join("oidc-server");
        fs::create_dir_all(&oidc_dir)
            .unwrap_or_else(|e| panic!("creating {}: {e}", oidc_dir.display()));
        write_users_file(
            &oidc_dir.join("users.toml"),
            &[LocalUser::FIRST, LocalUser::SECOND],
        );
        let (oidc_port, mcp_port) = (free_port(), free_port());
        let mut command = Command::new(env!("CARGO_BIN_EXE_stack"));
        command
            .current_dir(dir.path())
            .env_remove("STACK_CONFIG")
            .env("STACK_DATA_DIR", &data)
            .env("STACK_OIDC_PORT", oidc_port.to_string())
            .env("STACK_MCP_PORT", mcp_port.to_string())
            .env("RUST_LOG", "info");
        let mut process = Process::spawn("stack", command, dir.path());
        process.wait_until_serving(&format!(
            "http://127.0.0.1:{oidc_port}/.well-known/openid-configuration"
        ));
        process.wait_until_serving(&format!("http://127.0.0.1:{mcp_port}/health"));
        OneCommandStack {
            issuer: format!("http://127.0.0.1:{oidc_port}"),
            mcp_url: format!("http://127.0.0.1:{mcp_port}/mcp"),
            process,
            _dir: dir,
        }
    }

    /// The environment every peer script gets, and the second user as `E2E_OTHER_USERNAME`,
    /// `E2E_OTHER_PASSWORD`, `E2E_OTHER_EMAIL`.
    pub(crate) fn peer_env(&self, command: &mut Command) {
        peer_env(command, &self.issuer, &self.mcp_url);
        command
            .env("E2E_OTHER_USERNAME", OTHER_USERNAME)
            .env("E2E_OTHER_PASSWORD", OTHER_PASSWORD)
            .env("E2E_OTHER_EMAIL", OTHER_EMAIL);
    }

    /// The stack's log tail (both servers log into it), for failure messages.
    pub(crate) fn log_tails(&self) -> String {
        self.process.log_tail(80)
    }

    /// The provider's current signing key from its store: `(kid, PKCS#8 PEM)`.
    pub(crate) fn signing_key(&self) -> (String, String) {
        sqlite_signing_key(&self._dir.path().join("data/oidc-server/oidc.db"))
    }
}

/// A local password user in a users file.
pub(crate) struct LocalUser {
    username: &'static str,
    password: &'static str,
    email: &'static str,
    name: &'static str,
}

impl LocalUser {
    /// [`USERNAME`], the user of every test.
    pub(crate) const FIRST: LocalUser = LocalUser {
        username: USERNAME,
        password: PASSWORD,
        email: EMAIL,
        name: "Alice Example",
    };
    /// [`OTHER_USERNAME`].
    pub(crate) const SECOND: LocalUser = LocalUser {
        username: OTHER_USERNAME,
        password: OTHER_PASSWORD,
        email: OTHER_EMAIL,
        name: "Bob Example",
    };
}

/// A users file with `users`, their passwords hashed by `oidc-server hash-password`.
fn write_users_file(path: &Path, users: &[LocalUser]) {
    let mut text = String::new();
    for user in users {
        let hash = hash_password(user.password);
        let _ = write!(
            text,
            "[[users]]\nusername = \"{}\"\npassword_hash = \"{hash}\"\nemail = \"{}\"\n\
             email_verified = true\nname = \"{}\"\n\n",
            user.username, user.email, user.name
        );
    }
    fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// `password` hashed by `oidc-server hash-password`.
fn hash_password(password: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oidc-server"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("oidc-server hash-password: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(password.as_bytes())
            .unwrap_or_else(|e| panic!("writing the password: {e}"));
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("oidc-server hash-password: {e}"));
    let hash = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        output.status.success() && hash.starts_with("$argon2id$"),
        "oidc-server hash-password failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    hash
}

/// What a peer script reported.
pub(crate) struct PeerRun {
    /// Every JSON object it printed on stdout.
    pub(crate) reports: Vec<Value>,
}

impl PeerRun {
    /// The `verified` reports.
    pub(crate) fn verified(&self) -> impl Iterator<Item = &Value> {
        self.reports.iter().filter(|r| r.get("verified").is_some())
    }

    /// The `verified` report whose text contains `needle`; panics listing them when none does.
    pub(crate) fn report(&self, needle: &str) -> &Value {
        self.verified()
            .find(|r| r["verified"].as_str().is_some_and(|v| v.contains(needle)))
            .unwrap_or_else(|| {
                let all: Vec<&str> = self
                    .verified()
                    .filter_map(|r| r["verified"].as_str())
                    .collect();
                panic!(
                    "no verified report contains {needle:?}; got:\n  {}",
                    all.join("\n  ")
                )
            })
    }
}

/// Runs a peer script to completion (at most [`PEER_TIMEOUT`]); panics with its stderr and
/// the servers' logs unless it exits 0 and ends with `{"done": true}`. Prints what it
/// verified.
pub(crate) fn run_peer(name: &str, command: Command, context: &[&dyn Fn() -> String]) -> PeerRun {
    run_peer_within(name, command, context, PEER_TIMEOUT)
}

/// [`run_peer`] for a script that may run up to `timeout`.
pub(crate) fn run_peer_within(
    name: &str,
    mut command: Command,
    context: &[&dyn Fn() -> String],
    timeout: Duration,
) -> PeerRun {
    let started = Instant::now();
    let diagnostics = |stderr: &str| {
        let mut text = format!("--- {name} stderr ---\n{}", tail(stderr, 80));
        for logs in context {
            text.push('\n');
            text.push_str(&logs());
        }
        text
    };
    let finished = run_bounded(&mut command, timeout)
        .unwrap_or_else(|e| panic!("peer {name}: {e}\n{}", diagnostics("")));
    let reports: Vec<Value> = finished
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
        .filter(Value::is_object)
        .collect();
    if !finished.status_ok {
        let failed = reports
            .iter()
            .find_map(|r| r.get("failed").and_then(Value::as_str))
            .unwrap_or("(no failure report)");
        panic!(
            "peer {name} failed ({}): {failed}\n--- {name} stdout ---\n{}\n{}",
            finished.status,
            tail(&finished.stdout, 40),
            diagnostics(&finished.stderr)
        );
    }
    assert!(
        reports.last().is_some_and(|r| r["done"] == true),
        "peer {name} exited 0 without reporting done\n--- stdout ---\n{}\n{}",
        tail(&finished.stdout, 40),
        diagnostics(&finished.stderr)
    );
    let run = PeerRun { reports };
    println!("{name}: finished in {:.1?}", started.elapsed());
    for report in run.verified() {
        let mut details = report.clone();
        if let Some(map) = details.as_object_mut() {
            map.remove("verified");
        }
        println!(
            "  verified: {}  {details}",
            report["verified"].as_str().unwrap_or_default()
        );
    }
    run
}
