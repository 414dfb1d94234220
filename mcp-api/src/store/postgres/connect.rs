//! Connection settings, TLS and the pool.
//!
//! The connection string is parsed once into a [`Target`]; the password lives
//! only inside `tokio_postgres::Config`, whose `Debug` redacts it, and no error
//! built here carries the string or its parts.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::PostgresOptions;
use super::error::PgResult;
use crate::mcp::{PostgresSessions, PostgresSessionsError};
use crate::store::{ErrorKind, StoreError};

/// Where and how to connect: the parsed connection string with the store's
/// settings applied, and the TLS connector its `sslmode` asks for.
#[derive(Clone)]
pub(super) struct Target {
    config: Config,
    tls: Tls,
}

/// `sslmode=disable`: no TLS. `prefer` (the default) and `require`: rustls
/// with the webpki roots and the optional extra CA; the server's certificate
/// is always verified when TLS is used.
#[derive(Clone)]
enum Tls {
    Disabled,
    Rustls(MakeRustlsConnect),
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Config`'s own Debug redacts the password.
        f.debug_struct("Target")
            .field("config", &self.config)
            .field("tls", &matches!(self.tls, Tls::Rustls(_)))
            .finish()
    }
}

impl Target {
    /// Parses `url` (a `postgres://` URL or a `key=value` string) and applies
    /// the options: timeouts, `search_path`, application name.
    pub(super) fn new(url: &str, options: &PostgresOptions) -> Result<Self, StoreError> {
        // The parser's message may quote the string; it is not kept.
        let mut config: Config = url.parse().map_err(|_| {
            StoreError::invalid_input("url", "is not a valid PostgreSQL connection string")
        })?;
        config.connect_timeout(options.connect_timeout);
        config.application_name(&options.application_name);
        let mut settings = config.get_options().unwrap_or_default().to_owned();
        let statement_ms = options.statement_timeout.as_millis();
        settings.push_str(&format!(" -c statement_timeout={statement_ms}"));
        // Short queries only: JIT compiling one (it triggers on estimated cost, and some
        // estimates are far off) costs a hundred times what running it does.
        settings.push_str(" -c jit=off");
        if let Some(schema) = &options.schema {
            settings.push_str(&format!(" -c search_path={}", schema.as_str()));
        }
        config.options(settings.trim_start());
        let tls = match config.get_ssl_mode() {
            SslMode::Disable => Tls::Disabled,
            _ => Tls::Rustls(rustls_connector(options.root_ca_file.as_deref())?),
        };
        Ok(Self { config, tls })
    }

    /// The same target under another application name (the listener's).
    pub(super) fn named(&self, application_name: &str) -> Self {
        let mut target = self.clone();
        target.config.application_name(application_name);
        target
    }

    /// A bounded pool of `size` connections.
    pub(super) fn pool(
        &self,
        size: usize,
        acquire_timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Pool, StoreError> {
        let manager_config = ManagerConfig {
            // A connection whose socket closed is replaced when it comes back to the
            // pool; no round trip per checkout.
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &self.tls {
            Tls::Disabled => Manager::from_config(self.config.clone(), NoTls, manager_config),
            Tls::Rustls(tls) => {
                Manager::from_config(self.config.clone(), tls.clone(), manager_config)
            }
        };
        Pool::builder(manager)
            .max_size(size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(acquire_timeout))
            .create_timeout(Some(connect_timeout))
            .recycle_timeout(Some(connect_timeout))
            .build()
            .map_err(|error| StoreError::with_source(ErrorKind::Unavailable, error))
    }

    /// The MCP session directory over `pool`, its LISTEN connection opened here.
    pub(super) async fn start_sessions(
        &self,
        pool: Pool,
    ) -> Result<PostgresSessions, PostgresSessionsError> {
        let builder = PostgresSessions::builder(pool, self.config.clone());
        match &self.tls {
            Tls::Disabled => builder.start().await,
            Tls::Rustls(tls) => builder.tls(tls.clone()).start().await,
        }
    }

    /// A connection of its own, outside the pool (migrations, LISTEN). Its
    /// notifications are sent to `notifications`, if given; the connection is
    /// driven by a spawned task that ends when the connection closes (then the
    /// sender is dropped, so the receiver sees the end).
    pub(super) async fn connect(
        &self,
        notifications: Option<tokio::sync::mpsc::Sender<()>>,
    ) -> Result<Client, StoreError> {
        match &self.tls {
            Tls::Disabled => drive(&self.config, NoTls, notifications).await,
            Tls::Rustls(tls) => drive(&self.config, tls.clone(), notifications).await,
        }
    }
}

/// Connects and spawns the task that polls the connection, forwarding notifications.
async fn drive<T>(
    config: &Config,
    tls: T,
    notifications: Option<tokio::sync::mpsc::Sender<()>>,
) -> Result<Client, StoreError>
where
    T: MakeTlsConnect<Socket> + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, mut connection) = config.connect(tls).await.pg()?;
    tokio::spawn(async move {
        loop {
            let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
            match message {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    if let Some(sender) = &notifications {
                        // Full: a catch-up is already due, which covers this one too.
                        let _ = sender.try_send(());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    tracing::debug!(%error, "a memory database connection failed");
                    break;
                }
                None => break,
            }
        }
    });
    Ok(client)
}

/// rustls (aws-lc-rs) trusting the webpki roots and, if given, the CA
/// certificates in a PEM file.
fn rustls_connector(root_ca_file: Option<&Path>) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = root_ca_file {
        let certificates = CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|error| {
                StoreError::with_source(
                    ErrorKind::InvalidInput {
                        field: "root_ca_file",
                        reason: "cannot be read as PEM certificates".to_owned(),
                    },
                    error,
                )
            })?;
        if certificates.is_empty() {
            return Err(StoreError::invalid_input(
                "root_ca_file",
                "holds no PEM certificate",
            ));
        }
        for certificate in certificates {
            roots.add(certificate).map_err(|error| {
                StoreError::with_source(
                    ErrorKind::InvalidInput {
                        field: "root_ca_file",
                        reason: "holds a certificate rustls cannot use".to_owned(),
                    },
                    error,
                )
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| StoreError::with_source(ErrorKind::Backend, error))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_appears_neither_in_debug_nor_in_errors() {
        let options = PostgresOptions::new();
        let target = Target::new(
            "postgres://user:hunter2secret@db.example:5432/app?sslmode=disable",
            &options,
        )
        .unwrap();
        assert!(!format!("{target:?}").contains("hunter2secret"));
        let error = Target::new(
            "postgres://user:hunter2secret@db.example:5432/app?sslmode=bogus",
            &options,
        )
        .unwrap_err();
        assert!(!format!("{error} {error:?}").contains("hunter2secret"));
        assert!(matches!(
            error.kind(),
            ErrorKind::InvalidInput { field: "url", .. }
        ));
    }

    #[test]
    fn every_sslmode_is_understood() {
        let options = PostgresOptions::new();
        for mode in ["disable", "prefer", "require"] {
            let target = Target::new(
                &format!("postgres://postgres@127.0.0.1/test?sslmode={mode}"),
                &options,
            )
            .unwrap();
            assert_eq!(matches!(target.tls, Tls::Rustls(_)), mode != "disable");
        }
    }

    #[test]
    fn a_missing_ca_file_is_a_clear_error() {
        let options = PostgresOptions::new().with_root_ca_file("/nonexistent/ca.pem");
        let error = Target::new("postgres://postgres@127.0.0.1/test", &options).unwrap_err();
        assert!(matches!(
            error.kind(),
            ErrorKind::InvalidInput {
                field: "root_ca_file",
                ..
            }
        ));
    }
}
