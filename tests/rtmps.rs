//! RTMPS end to end: ffmpeg publishes over TLS to the real binary with a certificate this test
//! makes (its own CA), plain RTMP on the TLS port is refused and counted, and the certificate is
//! replaced on SIGHUP and, without a signal, when its files change, while the publish goes on.

#[path = "support/mod.rs"]
mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use support::{ffmpeg_publish, has_video, wait_until, Server};

const LIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// The server looks at the files every 5 s.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(15);

/// A CA and a certificate for `127.0.0.1` and `localhost` that it signed.
struct Pki {
    ca: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

fn pki(name: &str) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("test CA {name}"));
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    Pki {
        ca: ca.der().clone(),
        cert_pem: leaf.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// Puts `pki`'s pair in place the way a Secret update does: new files renamed over the old.
fn install(pki: &Pki, cert: &Path, key: &Path) {
    let (tmp_cert, tmp_key) = (
        cert.with_extension("crt.new"),
        key.with_extension("key.new"),
    );
    std::fs::write(&tmp_cert, &pki.cert_pem).unwrap();
    std::fs::write(&tmp_key, &pki.key_pem).unwrap();
    std::fs::rename(tmp_cert, cert).unwrap();
    std::fs::rename(tmp_key, key).unwrap();
}

/// Whether a TLS handshake with `addr` succeeds for a client that trusts `ca` only.
fn trusted_by(addr: SocketAddr, ca: &CertificateDer<'static>) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    #[allow(deprecated)] // the provider the server uses; see ingest::tls
    let provider = rustls::crypto::ring::default_provider();
    let config = rustls::ClientConfig::builder_with_provider(provider.into())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut sock =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn rtmps_addr(server: &Server) -> SocketAddr {
    server
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("rtmps listening on "))
        .unwrap_or_else(|| panic!("no rtmps line in the banner:\n{}", server.banner.join("\n")))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn ffmpeg_publishes_over_rtmps_and_the_certificate_reloads_on_sighup_and_on_change() {
    let dir = support::TempDir::new("rtmps-pki");
    let (cert, key) = (dir.file("tls.crt"), dir.file("tls.key"));
    let (a, b, c) = (pki("a"), pki("b"), pki("c"));
    install(&a, &cert, &key);
    let cert_set = format!("rtmps.cert_file={}", cert.display());
    let key_set = format!("rtmps.key_file={}", key.display());
    let server = Server::start(&[
        "--stream",
        "main=rtmps-key-main",
        "--rtmps",
        "127.0.0.1:0",
        "--set",
        &cert_set,
        "--set",
        &key_set,
    ]);
    let addr = rtmps_addr(&server);
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.contains(&format!("rtmps://127.0.0.1:{}/live", addr.port()))),
        "the OBS lines name the RTMPS server:\n{}",
        server.banner.join("\n")
    );
    trusted_by(addr, &a.ca).expect("the configured certificate is served");
    assert!(
        trusted_by(addr, &b.ca).is_err(),
        "another CA's client refuses it"
    );

    let url = format!("rtmps://127.0.0.1:{}/live/rtmps-key-main", addr.port());
    let _ffmpeg = ffmpeg_publish(&server.dir, "rtmps", &url, "640x360", 40);
    let p = server.wait_live("main", LIVE_TIMEOUT, |p| has_video(p, 640, 360));
    assert_eq!(p["protocol"], "rtmps", "{p}");

    // Plain RTMP on the TLS port: refused at the TLS handshake, counted, nothing else harmed.
    let mut plain = TcpStream::connect(addr).unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.resize(1537, 0);
    plain.write_all(&c0c1).unwrap();
    wait_until(
        Duration::from_secs(10),
        "the tls_handshake rejection",
        || {
            let n = server.metrics().value(
                "ferrocast_ingest_rejections_total",
                &[("protocol", "rtmps"), ("reason", "tls_handshake")],
            );
            (n >= 1.0).then_some(())
        },
    );
    drop(plain);

    // SIGHUP: the new certificate at once.
    install(&b, &cert, &key);
    server.process.signal("HUP");
    wait_until(RELOAD_TIMEOUT, "the certificate B after SIGHUP", || {
        trusted_by(addr, &b.ca).ok()
    });
    assert!(
        trusted_by(addr, &a.ca).is_err(),
        "the old certificate is gone"
    );

    // A bad pair is refused and the one in use stays.
    std::fs::write(&cert, "not a certificate\n").unwrap();
    server.process.signal("HUP");
    // Checked once the refusal was logged (by SIGHUP, or by the look at the files).
    wait_until(
        RELOAD_TIMEOUT,
        "the broken pair's refusal in the log",
        || {
            server
                .logs()
                .contains("the old certificate stays")
                .then_some(())
        },
    );
    trusted_by(addr, &b.ca).expect("a broken file keeps the certificate in use");

    // No signal: the server sees the files change.
    install(&c, &cert, &key);
    wait_until(
        RELOAD_TIMEOUT,
        "the certificate C after the files changed",
        || trusted_by(addr, &c.ca).ok(),
    );

    // The publish that shook hands with the first certificate went on throughout.
    let p = server.wait_live("main", Duration::from_secs(5), |p| has_video(p, 640, 360));
    assert_eq!(p["protocol"], "rtmps", "{p}");
    assert!(
        server
            .get("/live/main/360p/index.m3u8")
            .body
            .contains("#EXTINF"),
        "the ladder is served"
    );
    let log = server.process.stderr();
    assert!(log.contains("RTMPS certificate reloaded"), "{log}");
    assert!(log.contains("the old certificate stays"), "{log}");
    assert!(
        !log.contains("rtmps-key-main"),
        "the key is never logged:\n{log}"
    );
}
