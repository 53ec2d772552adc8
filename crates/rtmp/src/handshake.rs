//! The RTMP handshake, server side: C0/C1/C2 in, S0/S1/S2 out.
//!
//! Two flavours exist. The simple one (RTMP spec 1.0) has C1 carry a zero "version" and any
//! bytes; the server echoes C1 as S2. The digest ("complex", Flash Player 9) one hides an
//! HMAC-SHA256 digest in C1 at one of two offset schemes; the server answers with an S1 that
//! carries its own digest and an S2 whose last 32 bytes sign it with a key derived from the
//! client's digest. FFmpeg, librtmp and OBS accept either answer, but Flash-era clients check
//! S2, so a digest C1 gets a digest answer.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// Size of C1, C2, S1 and S2.
pub const HANDSHAKE_SIZE: usize = 1536;

/// The RTMP version byte of C0/S0.
pub const RTMP_VERSION: u8 = 3;

const DIGEST_LEN: usize = 32;

const KEY_TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];

/// "Genuine Adobe Flash Player 001" followed by the shared 32-byte tail (62 bytes).
fn fp_key() -> [u8; 62] {
    let mut k = [0u8; 62];
    k[..30].copy_from_slice(b"Genuine Adobe Flash Player 001");
    k[30..].copy_from_slice(&KEY_TAIL);
    k
}

/// "Genuine Adobe Flash Media Server 001" followed by the shared 32-byte tail (68 bytes).
fn fms_key() -> [u8; 68] {
    let mut k = [0u8; 68];
    k[..36].copy_from_slice(b"Genuine Adobe Flash Media Server 001");
    k[36..].copy_from_slice(&KEY_TAIL);
    k
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

#[cold]
fn unreachable_hmac() -> ! {
    unreachable!("HMAC-SHA256 takes keys of any length")
}

/// Where the digest sits in a 1536-byte handshake packet, for one of the two schemes.
///
/// Scheme 0 ("digest first"): the four bytes at 8..12 sum to an offset into 12..; scheme 1:
/// the four bytes at 772..776 sum to an offset into 776... Both are taken modulo 728 so the
/// digest stays inside its 764-byte half.
fn digest_offset(pkt: &[u8; HANDSHAKE_SIZE], scheme: u8) -> usize {
    let base = if scheme == 0 { 8 } else { 772 };
    let sum: usize = pkt[base..base + 4].iter().map(|&b| b as usize).sum();
    sum % 728 + base + 4
}

/// HMAC over the packet without its 32 digest bytes.
fn packet_digest(pkt: &[u8; HANDSHAKE_SIZE], offset: usize, key: &[u8]) -> [u8; 32] {
    hmac_sha256(key, &[&pkt[..offset], &pkt[offset + DIGEST_LEN..]])
}

/// Finds a valid client digest in C1 (keyed with the first 30 bytes of the Flash Player key).
/// Returns the scheme and the digest.
pub fn find_client_digest(c1: &[u8; HANDSHAKE_SIZE]) -> Option<(u8, [u8; 32])> {
    let key = fp_key();
    for scheme in [0u8, 1] {
        let off = digest_offset(c1, scheme);
        let expected = packet_digest(c1, off, &key[..30]);
        if c1[off..off + DIGEST_LEN] == expected {
            return Some((scheme, expected));
        }
    }
    None
}

/// Deterministic pseudo-random bytes: SHA-256 of `seed || label || counter`, concatenated.
fn fill_random(seed: &[u8; 32], label: u8, out: &mut [u8]) {
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        let mut h = Sha256::new();
        h.update(seed);
        h.update([label]);
        h.update((i as u32).to_be_bytes());
        let d = h.finalize();
        chunk.copy_from_slice(&d[..chunk.len()]);
    }
}

/// The version field a digest S1 carries (what FMS 3.5 sends, and what nginx-rtmp sends).
const SERVER_VERSION: [u8; 4] = [0x0D, 0x0E, 0x0A, 0x0D];

/// Builds S0, S1 and S2 (3073 bytes) answering `c1`.
///
/// `seed` supplies the random parts of S1 and S2 and `epoch_ms` S1's time field, so the
/// answer is a pure function of the inputs.
pub fn server_response(c1: &[u8; HANDSHAKE_SIZE], epoch_ms: u32, seed: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 2 * HANDSHAKE_SIZE);
    out.push(RTMP_VERSION);
    let mut s1 = [0u8; HANDSHAKE_SIZE];
    fill_random(seed, 1, &mut s1);
    s1[..4].copy_from_slice(&epoch_ms.to_be_bytes());
    match find_client_digest(c1) {
        Some((scheme, client_digest)) => {
            s1[4..8].copy_from_slice(&SERVER_VERSION);
            let fms = fms_key();
            let off = digest_offset(&s1, scheme);
            let d = packet_digest(&s1, off, &fms[..36]);
            s1[off..off + DIGEST_LEN].copy_from_slice(&d);

            let mut s2 = [0u8; HANDSHAKE_SIZE];
            fill_random(seed, 2, &mut s2);
            let key = hmac_sha256(&fms, &[&client_digest]);
            let sig = hmac_sha256(&key, &[&s2[..HANDSHAKE_SIZE - DIGEST_LEN]]);
            s2[HANDSHAKE_SIZE - DIGEST_LEN..].copy_from_slice(&sig);
            out.extend_from_slice(&s1);
            out.extend_from_slice(&s2);
        }
        None => {
            // Simple handshake: zero version field, random rest; S2 echoes C1.
            s1[4..8].copy_from_slice(&[0; 4]);
            out.extend_from_slice(&s1);
            out.extend_from_slice(c1);
        }
    }
    out
}

/// Checks the version byte of C0.
///
/// # Errors
/// [`Error::EncryptedHandshake`] for 6 (RTMPE), [`Error::BadVersion`] for anything but 3.
pub fn check_c0(c0: u8) -> Result<(), Error> {
    match c0 {
        RTMP_VERSION => Ok(()),
        version @ (6 | 8 | 9) => Err(Error::EncryptedHandshake { version }),
        version => Err(Error::BadVersion { version }),
    }
}

/// Client-side helpers, for tests and fuzzing only.
#[doc(hidden)]
pub mod client {
    use crate::handshake::{
        digest_offset, fill_random, find_client_digest, fms_key, fp_key, hmac_sha256,
        packet_digest, DIGEST_LEN, HANDSHAKE_SIZE, RTMP_VERSION,
    };

    /// C0 + a simple C1 (zero version field, `fill` bytes).
    pub fn simple_c0c1(fill: u8) -> Vec<u8> {
        let mut v = vec![RTMP_VERSION];
        let mut c1 = [fill; HANDSHAKE_SIZE];
        c1[..8].copy_from_slice(&[0; 8]);
        v.extend_from_slice(&c1);
        v
    }

    /// A digest C1 with the digest placed by `scheme` (0 or 1), the way Flash Player does it.
    pub fn digest_c1(scheme: u8, seed: u8) -> [u8; HANDSHAKE_SIZE] {
        let mut c1 = [0u8; HANDSHAKE_SIZE];
        fill_random(&[seed; 32], 7, &mut c1);
        c1[..4].copy_from_slice(&0u32.to_be_bytes());
        c1[4..8].copy_from_slice(&[0x80, 0x00, 0x07, 0x02]);
        let off = digest_offset(&c1, scheme);
        let d = packet_digest(&c1, off, &fp_key()[..30]);
        c1[off..off + DIGEST_LEN].copy_from_slice(&d);
        c1
    }

    /// Validates S1's digest (FMS key, first 36 bytes) at `scheme`, as a client does.
    pub fn s1_digest_valid(s1: &[u8; HANDSHAKE_SIZE], scheme: u8) -> bool {
        let off = digest_offset(s1, scheme);
        packet_digest(s1, off, &fms_key()[..36])[..] == s1[off..off + DIGEST_LEN]
    }

    /// Validates S2 against the client's own C1, as librtmp and Flash Player do.
    pub fn s2_valid(c1: &[u8; HANDSHAKE_SIZE], s2: &[u8; HANDSHAKE_SIZE]) -> bool {
        let Some((_, client_digest)) = find_client_digest(c1) else {
            return false;
        };
        let key = hmac_sha256(&fms_key(), &[&client_digest]);
        let sig = hmac_sha256(&key, &[&s2[..HANDSHAKE_SIZE - DIGEST_LEN]]);
        sig[..] == s2[HANDSHAKE_SIZE - DIGEST_LEN..]
    }
}
