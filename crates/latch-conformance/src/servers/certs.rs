//! Certificates made at test time for the private TLS servers: a CA, a server
//! certificate it signed (for `127.0.0.1` and `localhost` only), a client
//! certificate for mutual TLS, and a second CA that signed nothing the servers
//! present, to prove a wrong CA is refused.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// PEM files of a test PKI, written into a directory.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// Another CA: trusting only this one must refuse the servers.
    pub other_ca: PathBuf,
    /// The server's certificate, valid for `127.0.0.1` and `localhost` only.
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
    /// A client certificate signed by [`ca`](Self::ca), for mutual TLS.
    pub client_cert: PathBuf,
    /// The client certificate's private key.
    pub client_key: PathBuf,
}

impl CertFiles {
    /// Generate a fresh PKI into `dir` (which must exist).
    ///
    /// # Errors
    /// When generating or writing fails.
    pub fn generate(dir: &Path) -> Result<Self, String> {
        let err = |e: rcgen::Error| format!("generating test certificates: {e}");
        let (ca, ca_key) = authority("latch test CA").map_err(err)?;
        let (other_ca, _) = authority("latch other CA").map_err(err)?;

        let server_key = KeyPair::generate().map_err(err)?;
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).map_err(err)?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        // Client use too: the nodes of a TLS Redis Cluster present it to each
        // other on the cluster bus.
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let server = params.signed_by(&server_key, &ca, &ca_key).map_err(err)?;

        let client_key = KeyPair::generate().map_err(err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "latch test client");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = params.signed_by(&client_key, &ca, &ca_key).map_err(err)?;

        let files = Self {
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        };
        write(&files.ca, &ca.pem())?;
        write(&files.other_ca, &other_ca.pem())?;
        write(&files.server_cert, &server.pem())?;
        write(&files.server_key, &server_key.serialize_pem())?;
        write(&files.client_cert, &client.pem())?;
        write(&files.client_key, &client_key.serialize_pem())?;
        Ok(files)
    }
}

/// A self-signed CA certificate and its key.
fn authority(name: &str) -> Result<(Certificate, KeyPair), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key)?;
    Ok((cert, key))
}

/// Write `text` to `path`, readable by its owner only (PostgreSQL refuses a key
/// others can read).
fn write(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("writing {}: {e}", path.display()))
}
