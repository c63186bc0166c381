//! Serving HTTPS: a certificate and key from PEM files, or (for trying DBSC on
//! one's own machine) a self-signed one made at start-up, with the Chromium
//! flags that make a browser accept it printed beside the URL.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest as _;

/// How the demo serves TLS.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// A certificate chain and private key in PEM files.
    Files {
        /// The certificate chain.
        cert: std::path::PathBuf,
        /// The private key.
        key: std::path::PathBuf,
    },
    /// A self-signed certificate for `localhost`, `127.0.0.1` and `::1`, made
    /// at start-up.
    SelfSigned,
}

/// A TLS server configuration, and for a self-signed certificate the
/// base64 SHA-256 of its public key (what Chromium's
/// `--ignore-certificate-errors-spki-list` takes).
pub struct Tls {
    /// For the listener.
    pub config: Arc<rustls::ServerConfig>,
    /// The self-signed certificate's SPKI hash.
    pub spki_sha256: Option<String>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("spki_sha256", &self.spki_sha256)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Load or make the certificate.
    ///
    /// # Errors
    /// Unreadable or invalid PEM files, or a key that does not fit the
    /// certificate, each naming the file.
    pub fn load(source: &TlsSource) -> anyhow::Result<Self> {
        let (chain, key, spki) = match source {
            TlsSource::Files { cert, key } => (read_chain(cert)?, read_key(key)?, None),
            TlsSource::SelfSigned => self_signed()?,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("the TLS private key does not match the certificate (--tls-cert/--tls-key)")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            spki_sha256: spki,
        })
    }
}

fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading the TLS certificate {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", path.display()))?;
    if chain.is_empty() {
        anyhow::bail!(
            "{} holds no certificate: give --tls-cert a PEM file starting with \
             -----BEGIN CERTIFICATE-----",
            path.display()
        );
    }
    Ok(chain)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).with_context(|| {
        format!(
            "reading the TLS private key {}: give --tls-key a PEM file (PKCS#8, PKCS#1 or SEC1)",
            path.display()
        )
    })
}

type Material = (
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
    Option<String>,
);

fn self_signed() -> anyhow::Result<Material> {
    let key = rcgen::KeyPair::generate().context("making a TLS key")?;
    let params = rcgen::CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .context("certificate names")?;
    let cert = params.self_signed(&key).context("self-signing")?;
    let spki = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(key.public_key_der()));
    let der = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| anyhow::anyhow!("encoding the TLS key: {e}"))?;
    Ok((vec![cert.der().clone()], der, Some(spki)))
}

/// The Chromium command line that accepts the self-signed certificate with
/// `spki` and turns DBSC on with software keys.
pub fn chromium_flags(spki: &str) -> String {
    format!(
        "--enable-features=DeviceBoundSessions,EnableBoundSessionCredentialsSoftwareKeysForManualTesting \
         --ignore-certificate-errors-spki-list={spki}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_comes_with_its_spki_hash() {
        let tls = Tls::load(&TlsSource::SelfSigned).unwrap();
        let spki = tls.spki_sha256.unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(&spki)
                .unwrap()
                .len(),
            32
        );
        assert!(chromium_flags(&spki).contains(&spki));
    }

    #[test]
    fn bad_files_are_refused_with_the_flag_to_fix() {
        let dir = std::env::temp_dir().join(format!("latch-demo-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not pem").unwrap();
        let err = Tls::load(&TlsSource::Files {
            cert: empty.clone(),
            key: empty.clone(),
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("--tls-cert"), "{err:#}");
        let missing = Tls::load(&TlsSource::Files {
            cert: dir.join("missing.pem"),
            key: empty,
        })
        .unwrap_err();
        assert!(
            format!("{missing:#}").contains("missing.pem"),
            "{missing:#}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
