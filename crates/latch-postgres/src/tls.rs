//! TLS to PostgreSQL with rustls, through `tokio-postgres-rustls` (the
//! maintained rustls connector for `tokio-postgres`). `tokio-postgres` itself
//! knows only `sslmode=disable|prefer|require` and no certificate files, so
//! latch reads libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` from
//! the URL (or the builder) and builds the rustls configuration here.
//!
//! | `sslmode` | encrypted | server's certificate checked |
//! |---|---|---|
//! | `disable` | no | - |
//! | `prefer` | if the server offers TLS | no (logged at start-up) |
//! | `require` | yes | no (logged at start-up); with `sslrootcert`, as `verify-ca` (as libpq does) |
//! | `verify-ca` | yes | signed by a trusted CA; any host name |
//! | `verify-full` | yes | signed by a trusted CA and naming the host |
//!
//! When no `sslmode` is given, latch uses `verify-full` for a server reached
//! over the network and `disable` for loopback addresses and Unix sockets:
//! libpq's own default (`prefer`) encrypts without checking who answers and
//! falls back to plain text, which is the wrong default for session data.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use latch::store::ConnectionProblem;
use latch::{Error, Result};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject as _};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::{Host, SslMode as DriverSslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How to use TLS to PostgreSQL, as libpq's `sslmode` (see the table in
/// [`PostgresStoreBuilder`](crate::PostgresStoreBuilder)'s TLS section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain text.
    Disable,
    /// TLS if the server offers it, without checking its certificate.
    Prefer,
    /// TLS always, without checking the certificate (unless a root certificate
    /// is given, then as [`VerifyCa`](Self::VerifyCa)).
    Require,
    /// TLS, the certificate signed by a trusted CA, any host name.
    VerifyCa,
    /// TLS, the certificate signed by a trusted CA and naming the host.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" | "allow" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(Error::invalid_config(format!(
                    "sslmode={other:?} is not a PostgreSQL SSL mode: use disable, prefer, \
                     require, verify-ca or verify-full"
                )));
            }
        })
    }
}

/// TLS settings, from the builder and the URL (the builder's win).
#[derive(Clone, Default, Debug)]
pub(crate) struct TlsSettings {
    pub(crate) mode: Option<SslMode>,
    pub(crate) root_cert: Option<PathBuf>,
    pub(crate) client: Option<(PathBuf, PathBuf)>,
}

/// The driver's configuration and the connector for it.
pub(crate) struct Prepared {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) connector: MakeRustlsConnect,
    pub(crate) mode: SslMode,
}

/// Take latch's TLS parameters out of `url`, parse the rest with
/// `tokio-postgres`, and build the connector.
pub(crate) fn prepare(url: &str, settings: &TlsSettings) -> Result<Prepared> {
    let (rest, from_url) = split(url)?;
    // The parser's message names the bad part, never the password; the cause
    // is kept as a source without exposing the driver's type.
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e| Error::invalid_config("invalid PostgreSQL URL").with_source(e))?;
    let root_cert = settings.root_cert.clone().or(from_url.root_cert);
    let client = settings.client.clone().or(from_url.client);
    let mode = match settings.mode.or(from_url.mode) {
        Some(SslMode::Require) if root_cert.is_some() => SslMode::VerifyCa,
        Some(mode) => mode,
        None if local_only(&config) => SslMode::Disable,
        None => SslMode::VerifyFull,
    };
    if mode == SslMode::Disable && (root_cert.is_some() || client.is_some()) {
        return Err(Error::invalid_config(
            "TLS files (sslrootcert, sslcert, sslkey) were given with sslmode=disable \
             (the default for a loopback address): set sslmode=verify-full to use them",
        ));
    }
    config.ssl_mode(match mode {
        SslMode::Disable => DriverSslMode::Disable,
        SslMode::Prefer => DriverSslMode::Prefer,
        _ => DriverSslMode::Require,
    });
    let connector = MakeRustlsConnect::new(rustls_config(mode, root_cert.as_deref(), client)?);
    if matches!(mode, SslMode::Prefer | SslMode::Require) {
        tracing::warn!(
            "latch-postgres: sslmode={} encrypts without checking the server's \
             certificate: anyone on the network path can pose as the database. Use \
             sslmode=verify-full with sslrootcert= in production.",
            if mode == SslMode::Prefer {
                "prefer"
            } else {
                "require"
            }
        );
    }
    Ok(Prepared {
        config,
        connector,
        mode,
    })
}

/// Split latch's parameters off a `postgres://` URL or a `key=value` string.
fn split(url: &str) -> Result<(String, TlsSettings)> {
    let mut found = TlsSettings::default();
    let (mut cert, mut key) = (None, None);
    let mut take = |name: &str, value: &str| -> Result<bool> {
        match name {
            "sslmode" => found.mode = Some(SslMode::parse(value)?),
            "sslrootcert" => found.root_cert = Some(PathBuf::from(value)),
            "sslcert" => cert = Some(PathBuf::from(value)),
            "sslkey" => key = Some(PathBuf::from(value)),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url::Url::parse(url) {
            Ok(mut parsed) => {
                let mut kept = Vec::new();
                for (name, value) in parsed.query_pairs() {
                    if !take(&name, &value)? {
                        kept.push((name.into_owned(), value.into_owned()));
                    }
                }
                if kept.is_empty() {
                    parsed.set_query(None);
                } else {
                    parsed.query_pairs_mut().clear().extend_pairs(&kept);
                }
                parsed.into()
            }
            // Let tokio-postgres word the refusal.
            Err(_) => url.to_owned(),
        }
    } else {
        let mut kept = Vec::new();
        for part in url.split_whitespace() {
            let taken = match part.split_once('=') {
                Some((name, value)) => take(name, value)?,
                None => false,
            };
            if !taken {
                kept.push(part);
            }
        }
        kept.join(" ")
    };
    found.client = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            return Err(Error::invalid_config(
                "a PostgreSQL client certificate needs its key: give both sslcert and sslkey",
            ));
        }
    };
    Ok((rest, found))
}

/// Whether every host is a loopback address or a Unix socket.
fn local_only(config: &tokio_postgres::Config) -> bool {
    let hosts = config.get_hosts();
    !hosts.is_empty()
        && hosts.iter().all(|host| match host {
            Host::Unix(_) => true,
            Host::Tcp(name) => {
                name == "localhost"
                    || name
                        .trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
        })
}

fn rustls_config(
    mode: SslMode,
    root_cert: Option<&Path>,
    client: Option<(PathBuf, PathBuf)>,
) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid_config("setting up TLS").with_source(e))?;
    let roots = Arc::new(roots(root_cert)?);
    let verifier: Arc<dyn ServerCertVerifier> = {
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| {
                Error::invalid_config("no usable root certificate for PostgreSQL TLS")
                    .with_source(e)
            })?;
        match mode {
            SslMode::VerifyFull | SslMode::Disable => webpki,
            SslMode::VerifyCa | SslMode::Prefer | SslMode::Require => Arc::new(Lenient {
                webpki,
                check_chain: mode == SslMode::VerifyCa,
            }),
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match client {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(&cert)
                .and_then(Iterator::collect::<std::result::Result<Vec<_>, _>>)
                .map_err(|e| unreadable(&cert, "sslcert", &e))?;
            let key =
                PrivateKeyDer::from_pem_file(&key).map_err(|e| unreadable(&key, "sslkey", &e))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| Error::invalid_config("the PostgreSQL client certificate and key do not form a usable pair (sslcert, sslkey)").with_source(e))
        }
    }
}

fn unreadable(path: &Path, what: &str, e: &dyn std::fmt::Display) -> Error {
    Error::invalid_config(format!(
        "cannot read the PostgreSQL {what} file {}: {e}",
        path.display()
    ))
}

/// The given CA file, or the system's root certificates.
fn roots(root_cert: Option<&Path>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| unreadable(path, "sslrootcert", &e))?
            {
                let cert = cert.map_err(|e| unreadable(path, "sslrootcert", &e))?;
                roots.add(cert).map_err(|e| {
                    Error::invalid_config(format!(
                        "the PostgreSQL sslrootcert file {} holds a certificate rustls cannot use",
                        path.display()
                    ))
                    .with_source(e)
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                tracing::warn!(
                    "latch-postgres: no system root certificates found; give sslrootcert= \
                     to verify the server"
                );
            }
        }
    }
    Ok(roots)
}

/// The weaker modes' verifier: `verify-ca` checks the chain but not the host
/// name; `prefer` and `require` accept any certificate (a warning is logged
/// at start-up). Both still check the handshake signatures, so the session is
/// encrypted to whoever holds the presented certificate's key.
#[derive(Debug)]
struct Lenient {
    webpki: Arc<WebPkiServerVerifier>,
    check_chain: bool,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if !self.check_chain {
            return Ok(ServerCertVerified::assertion());
        }
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The start-up error for a failed connection, naming the cause when it is
/// recognised and which setting fixes it.
pub(crate) fn connect_error(
    mode: SslMode,
    err: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    let advice = match ConnectionProblem::recognise(&text) {
        Some(p @ ConnectionProblem::UnknownCa) => {
            format!(
                "{}: give the CA's certificate with sslrootcert=/path/ca.pem",
                p.explain()
            )
        }
        Some(p @ ConnectionProblem::WrongHostName) => format!(
            "{} (or, knowingly, sslmode=verify-ca to check the CA only)",
            p.explain()
        ),
        Some(p @ ConnectionProblem::ClientCertificateRequired) => format!(
            "{}: give sslcert=/path/client.pem&sslkey=/path/client.key",
            p.explain()
        ),
        Some(p) => p.explain().to_owned(),
        None if text.contains("no encryption") && mode == SslMode::Disable => {
            "the server accepts only TLS connections from here: set sslmode=verify-full \
             (with sslrootcert=/path/ca.pem for a private CA)"
                .to_owned()
        }
        None if text.contains("server does not support TLS") => {
            "the server does not offer TLS: set sslmode=disable only if the network to \
             it is trusted"
                .to_owned()
        }
        None => String::new(),
    };
    let context = if advice.is_empty() {
        "connecting to PostgreSQL".to_owned()
    } else {
        format!("connecting to PostgreSQL: {advice}")
    };
    Error::store(context, err)
}
