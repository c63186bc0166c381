//! TLS to Redis: `rediss://` URLs, with rustls and the system's root
//! certificates by default; a CA file and a client certificate for mutual TLS,
//! given on the builder or in the URL (`?cacert=...&cert=...&key=...`, so that
//! a bare URL, as the demo and the CLI take, can say it all). Turning
//! verification off is only possible on the builder, by a loudly named method,
//! and is logged at start-up.

use std::path::{Path, PathBuf};

use latch::store::ConnectionProblem;
use latch::{Error, Result};
use redis::{IntoConnectionInfo as _, TlsCertificates};

/// The TLS settings of a store: from the builder, merged with the URL's.
#[derive(Clone, Default, Debug)]
pub(crate) struct TlsSettings {
    /// PEM file of the CA(s) to trust instead of the system's roots.
    pub(crate) ca_file: Option<PathBuf>,
    /// PEM files of a client certificate and its key, for mutual TLS.
    pub(crate) client: Option<(PathBuf, PathBuf)>,
    /// Accept any certificate: only by `danger_accept_invalid_certificates`.
    pub(crate) accept_invalid: bool,
}

/// A URL made ready for the `redis` crate.
pub(crate) struct Prepared {
    /// The URL without latch's own query parameters.
    pub(crate) url: String,
    /// Whether it is `rediss://`.
    pub(crate) tls: bool,
    /// The certificates to use, if any were given.
    pub(crate) certs: Option<TlsCertificates>,
    /// Whether verification is off.
    pub(crate) insecure: bool,
}

/// The query parameters latch reads from a Redis URL (and removes before the
/// `redis` crate sees it).
const CA_PARAM: &str = "cacert";
const CERT_PARAM: &str = "cert";
const KEY_PARAM: &str = "key";

/// Split latch's TLS parameters off `url` and merge them with `settings` (the
/// builder's win), then read the files.
pub(crate) fn prepare(url: &str, settings: &TlsSettings) -> Result<Prepared> {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Let the redis crate word the refusal (without echoing a password).
        return Ok(Prepared {
            url: url.to_owned(),
            tls: false,
            certs: None,
            insecure: false,
        });
    };
    let tls = matches!(parsed.scheme(), "rediss" | "valkeys");
    if parsed.fragment() == Some("insecure") {
        return Err(Error::invalid_config(
            "`#insecure` in a Redis URL is refused: it turns off certificate checks \
             without a trace. Give the server's CA with ?cacert=/path/ca.pem, or, for a \
             throw-away test set-up only, call \
             RedisStoreBuilder::danger_accept_invalid_certificates()",
        ));
    }
    let mut from_url = TlsSettings::default();
    let mut kept = Vec::new();
    let (mut cert, mut key) = (None, None);
    for (name, value) in parsed.query_pairs() {
        match name.as_ref() {
            CA_PARAM => from_url.ca_file = Some(PathBuf::from(value.as_ref())),
            CERT_PARAM => cert = Some(PathBuf::from(value.as_ref())),
            KEY_PARAM => key = Some(PathBuf::from(value.as_ref())),
            _ => kept.push((name.into_owned(), value.into_owned())),
        }
    }
    from_url.client = client_pair(cert, key)?;
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(&kept);
    }

    let merged = TlsSettings {
        ca_file: settings.ca_file.clone().or(from_url.ca_file),
        client: settings.client.clone().or(from_url.client),
        accept_invalid: settings.accept_invalid,
    };
    let given = merged.ca_file.is_some() || merged.client.is_some() || merged.accept_invalid;
    if given && !tls {
        return Err(Error::invalid_config(
            "TLS settings (a CA file, a client certificate or accepting invalid \
             certificates) were given for a plain-text redis:// URL; use rediss:// to \
             connect over TLS",
        ));
    }
    let certs = if merged.ca_file.is_some() || merged.client.is_some() {
        Some(TlsCertificates {
            client_tls: match &merged.client {
                Some((cert, key)) => Some(redis::ClientTlsConfig {
                    client_cert: read(cert, "client certificate")?,
                    client_key: read(key, "client key")?,
                }),
                None => None,
            },
            root_cert: match &merged.ca_file {
                Some(ca) => Some(read(ca, "CA certificate")?),
                None => None,
            },
        })
    } else {
        None
    };
    Ok(Prepared {
        url: parsed.into(),
        tls,
        certs,
        insecure: merged.accept_invalid,
    })
}

/// A certificate and its key come together or not at all.
fn client_pair(cert: Option<PathBuf>, key: Option<PathBuf>) -> Result<Option<(PathBuf, PathBuf)>> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some((cert, key))),
        (None, None) => Ok(None),
        _ => Err(Error::invalid_config(
            "a Redis client certificate needs its key: give both ?cert= and ?key= \
             (PEM files)",
        )),
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::invalid_config(format!(
            "cannot read the Redis TLS {what} file {}: {e}",
            path.display()
        ))
    })
}

/// A `redis::Client` for one server, TLS set up as `prepared` says.
pub(crate) fn client(prepared: Prepared) -> Result<redis::Client> {
    let invalid =
        |e: redis::RedisError| Error::invalid_config("the Redis URL is not valid").with_source(e);
    if !prepared.tls {
        return redis::Client::open(prepared.url).map_err(invalid);
    }
    install_crypto();
    let mut info = prepared
        .url
        .as_str()
        .into_connection_info()
        .map_err(invalid)?;
    if prepared.insecure {
        warn_insecure();
        if let redis::ConnectionAddr::TcpTls { host, port, .. } = info.addr().clone() {
            info = info.set_addr(redis::ConnectionAddr::TcpTls {
                host,
                port,
                insecure: true,
                tls_params: None,
            });
        }
    }
    match prepared.certs {
        Some(certs) => redis::Client::build_with_tls(info, certs).map_err(invalid),
        None => redis::Client::open(info).map_err(invalid),
    }
}

/// rustls needs one process-wide crypto provider; latch builds with *ring*.
/// Installing fails harmlessly when the application installed one already.
pub(crate) fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub(crate) fn warn_insecure() {
    tracing::warn!(
        "latch-redis: TLS certificate verification is OFF \
         (danger_accept_invalid_certificates): anyone on the network path can \
         read and change the sessions. Never use this in production."
    );
}

/// The start-up error for a failed connection, naming the cause when it is
/// recognised and which setting fixes it.
pub(crate) fn connect_error(tls: bool, err: redis::RedisError) -> Error {
    let text = format!("{err:?} {err}");
    let advice = match ConnectionProblem::recognise(&text) {
        Some(p @ ConnectionProblem::UnknownCa) => format!(
            "{}: give the CA's certificate with ?cacert=/path/ca.pem in the URL or \
             RedisStoreBuilder::tls_ca_file",
            p.explain()
        ),
        Some(p @ ConnectionProblem::ClientCertificateRequired) => format!(
            "{}: give ?cert=/path/client.pem&key=/path/client.key in the URL or \
             RedisStoreBuilder::tls_client_cert",
            p.explain()
        ),
        Some(p @ ConnectionProblem::NotTls) => {
            format!("{}: use a redis:// URL for a plain-text port", p.explain())
        }
        Some(p) => p.explain().to_owned(),
        None if !tls && plain_hit_tls(&err) => "the server closed the connection at once; \
             if it expects TLS, use a rediss:// URL"
            .to_owned(),
        None if err.is_timeout() => format!("no answer{}", silence_hint(tls)),
        None => String::new(),
    };
    let context = if advice.is_empty() {
        "connecting to Redis".to_owned()
    } else {
        format!("connecting to Redis: {advice}")
    };
    Error::store(context, err)
}

/// What a connection that gets no answer may mean: a TLS port holds a
/// plain-text client without a word, and a plain port a TLS handshake.
pub(crate) fn silence_hint(tls: bool) -> &'static str {
    if tls {
        " (is the server up? if its port does not speak TLS, use a redis:// URL)"
    } else {
        " (is the server up? if it expects TLS, use a rediss:// URL)"
    }
}

/// A plain-text client on a TLS port: the server drops the connection when the
/// first command is not a TLS handshake.
fn plain_hit_tls(err: &redis::RedisError) -> bool {
    let text = format!("{err:?}").to_ascii_lowercase();
    [
        "reset by peer",
        "broken pipe",
        "unexpected eof",
        "connection closed",
        "end of file",
    ]
    .iter()
    .any(|n| text.contains(n))
}
