//! RTMPS: the TLS side of the RTMP listener. A certificate chain and its private key are read
//! from PEM files, and read again on request (SIGHUP) or when the files change (a Kubernetes
//! Secret update swaps them), so a renewed certificate needs no restart. A reload that fails
//! keeps the certificate in use and says why; live connections keep the one they shook hands
//! with.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate, or one that does not parse.
    #[error("{0} holds no PEM certificate (-----BEGIN CERTIFICATE-----), or a damaged one")]
    NoCertificate(PathBuf),
    /// The key file holds no PEM private key.
    #[error("{0} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey(PathBuf),
    /// rustls refused the pair (a key that does not match the certificate, an unsupported key).
    #[error("the certificate {cert} and key {key} cannot be used: {source}")]
    Unusable {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        source: rustls::Error,
    },
}

/// The certificate and key files, and the TLS configuration made from them.
#[derive(Debug)]
pub struct ServerTls {
    cert: PathBuf,
    key: PathBuf,
    loaded: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    config: Arc<rustls::ServerConfig>,
    stamp: Stamp,
}

/// What says that a file changed: its modification time and length (both files).
type Stamp = [Option<(SystemTime, u64)>; 2];

impl ServerTls {
    /// Reads `cert` (a PEM chain, leaf first) and `key` (a PEM private key).
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        let stamp = stamp(cert, key);
        let config = read_config(cert, key)?;
        Ok(ServerTls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            loaded: Mutex::new(Loaded { config, stamp }),
        })
    }

    /// An acceptor with the certificate in use now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.lock().config.clone())
    }

    /// Reads the files again; on success new connections get the new certificate, on failure
    /// the one in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let stamp = stamp(&self.cert, &self.key);
        let config = read_config(&self.cert, &self.key)?;
        *self.lock() = Loaded { config, stamp };
        Ok(())
    }

    /// Reloads when either file's modification time or length changed since the last load (or
    /// the last try); `None` when nothing changed.
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let now = stamp(&self.cert, &self.key);
        {
            let mut loaded = self.lock();
            if loaded.stamp == now {
                return None;
            }
            // A broken file is reported once, not at every poll.
            loaded.stamp = now;
        }
        Some(self.reload())
    }

    /// Reloads and logs the outcome; `why` says what asked (`SIGHUP`, `the files changed`).
    pub fn reload_logged(&self, why: &str) {
        match self.reload() {
            Ok(()) => {
                tracing::info!(cert = %self.cert.display(), why, "RTMPS certificate reloaded")
            }
            Err(e) => tracing::error!(
                why,
                "RTMPS certificate not reloaded, the old certificate stays: {e}"
            ),
        }
    }

    /// [`ServerTls::reload_if_changed`], logging the outcome.
    pub fn reload_if_changed_logged(&self) {
        match self.reload_if_changed() {
            Some(Ok(())) => tracing::info!("RTMPS certificate reloaded: its files changed"),
            Some(Err(e)) => tracing::error!(
                "RTMPS certificate files changed but cannot be used; the old certificate stays: {e}"
            ),
            None => {}
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Loaded> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let one = |p: &Path| {
        let m = std::fs::metadata(p).ok()?;
        Some((m.modified().ok()?, m.len()))
    };
    [one(cert), one(key)]
}

fn read_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let read = |what, path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            what,
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read("certificate", cert)?;
    let key_pem = read("private key", key)?;
    // A block that does not parse fails the load: a chain served without it would be incomplete.
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCertificate(cert.to_owned()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let private =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey(key.to_owned()))?;
    let unusable = |source| TlsError::Unusable {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    };
    // The provider is named, not taken from the process default, so another crate enabling a
    // second provider cannot make this ambiguous. It is ring, which rustls 0.23.48 deprecates for
    // lacking post-quantum key exchange: RTMPS publishers (OBS, ffmpeg, hardware encoders on
    // OpenSSL, GnuTLS or mbedTLS) negotiate X25519 or P-256 anyway, and aws-lc-rs would add a
    // large C build to every clean build. Revisit when encoders offer X25519MLKEM768.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let config = rustls::ServerConfig::builder_with_provider(provider.into())
        .with_safe_default_protocol_versions()
        .map_err(unusable)?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(unusable)?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![format!("{name}.test")])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ferrocast-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn loads_a_pair_and_says_what_is_wrong_with_a_bad_one() {
        let dir = tempdir("load");
        let (cert, key) = pair(&dir, "a");
        let tls = ServerTls::load(&cert, &key).unwrap();
        let _ = tls.acceptor();

        let missing = dir.join("missing.crt");
        let e = ServerTls::load(&missing, &key).unwrap_err();
        assert!(e.to_string().starts_with("cannot read certificate"), "{e}");
        // Key and certificate swapped: neither file holds what it should.
        let e = ServerTls::load(&key, &key).unwrap_err();
        assert!(matches!(e, TlsError::NoCertificate(_)), "{e}");
        let e = ServerTls::load(&cert, &cert).unwrap_err();
        assert!(matches!(e, TlsError::NoKey(_)), "{e}");
        // A key of another certificate.
        let (_, other_key) = pair(&dir, "b");
        let e = ServerTls::load(&cert, &other_key).unwrap_err();
        assert!(matches!(e, TlsError::Unusable { .. }), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reloads_when_the_files_change_and_keeps_the_old_pair_when_the_new_one_is_bad() {
        let dir = tempdir("reload");
        let (cert, key) = pair(&dir, "a");
        let tls = ServerTls::load(&cert, &key).unwrap();
        assert!(tls.reload_if_changed().is_none(), "nothing changed yet");
        let before = tls.lock().config.clone();

        // A broken certificate file: reported once, and the old configuration stays.
        std::fs::write(&cert, "not a certificate, and longer than before\n").unwrap();
        assert!(matches!(
            tls.reload_if_changed(),
            Some(Err(TlsError::NoCertificate(_)))
        ));
        assert!(
            tls.reload_if_changed().is_none(),
            "a bad file is reported once"
        );
        assert!(Arc::ptr_eq(&before, &tls.lock().config));

        // A new pair in the same files.
        let (new_cert, new_key) = pair(&dir, "b");
        std::fs::rename(&new_cert, &cert).unwrap();
        std::fs::rename(&new_key, &key).unwrap();
        assert!(matches!(tls.reload_if_changed(), Some(Ok(()))));
        assert!(!Arc::ptr_eq(&before, &tls.lock().config));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
