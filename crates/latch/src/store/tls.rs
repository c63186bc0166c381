//! Naming why a connection to a network store failed, for the stores' start-up
//! errors: TLS failures reach us as driver error text, and "invalid peer
//! certificate: UnknownIssuer" alone does not tell an operator which setting
//! to change.

/// A recognised cause of a failed connection to a store's server.
///
/// # Example
/// ```
/// use latch::store::ConnectionProblem;
///
/// let seen = "invalid peer certificate: UnknownIssuer";
/// assert_eq!(ConnectionProblem::recognise(seen), Some(ConnectionProblem::UnknownCa));
/// assert_eq!(ConnectionProblem::recognise("Connection refused (os error 111)"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionProblem {
    /// The server's certificate chain does not lead to a trusted CA.
    UnknownCa,
    /// The certificate is valid but does not name the host connected to.
    WrongHostName,
    /// The certificate has expired or is not valid yet.
    Expired,
    /// The server asked for a client certificate and got none (or refused it).
    ClientCertificateRequired,
    /// A TLS handshake was sent to a port that does not speak TLS.
    NotTls,
}

impl ConnectionProblem {
    /// Recognise the problem in a driver's error text (the whole chain of
    /// causes, as `{:?}` of a [`crate::Error`] prints it).
    pub fn recognise(text: &str) -> Option<Self> {
        let t = text.to_ascii_lowercase();
        let has = |needles: &[&str]| needles.iter().any(|n| t.contains(n));
        if has(&[
            "unknownissuer",
            "unknown issuer",
            "unknownca",
            "self-signed",
            "self signed",
        ]) {
            Some(Self::UnknownCa)
        } else if has(&["notvalidforname", "not valid for name", "hostname mismatch"]) {
            Some(Self::WrongHostName)
        } else if has(&["expired", "notvalidyet", "not valid yet"]) {
            Some(Self::Expired)
        } else if has(&[
            "certificaterequired",
            "certificate required",
            "certificate_required",
            "peer did not return a certificate",
            "connection requires a valid client certificate",
        ]) {
            Some(Self::ClientCertificateRequired)
        } else if has(&[
            "corrupt message",
            "invalidcontenttype",
            "invalid content type",
            "wrong version number",
            "peer is incompatible",
        ]) {
            Some(Self::NotTls)
        } else {
            None
        }
    }

    /// What the operator should check, in words that fit any store.
    pub fn explain(self) -> &'static str {
        match self {
            Self::UnknownCa => {
                "the server's certificate is not signed by a CA this client trusts \
                 (the system's roots, or the CA file given)"
            }
            Self::WrongHostName => {
                "the server's certificate does not name the host in the URL; \
                 connect with a host name the certificate holds"
            }
            Self::Expired => "the server's certificate has expired or is not valid yet",
            Self::ClientCertificateRequired => {
                "the server requires a client certificate (mutual TLS) and none it \
                 accepts was given"
            }
            Self::NotTls => "the server does not speak TLS on this port",
        }
    }
}
