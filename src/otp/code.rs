//! HOTP (RFC 4226 §5.3) over HMAC-SHA1/256/512, with the key set up once per verification.

use hmac::{Hmac, KeyInit, Mac as _};
use std::fmt;
use zeroize::Zeroizing;

use super::Error;

/// The HMAC hash function of a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// HMAC-SHA1, the RFC 4226 default and what every authenticator app supports.
    #[default]
    Sha1,
    /// HMAC-SHA256 (RFC 6238).
    Sha256,
    /// HMAC-SHA512 (RFC 6238).
    Sha512,
}

impl Algorithm {
    /// The name used in secret files and `otpauth://` URIs.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }

    /// Parses `SHA1`, `SHA256` or `SHA512` (case-insensitive).
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s.to_ascii_uppercase().as_str() {
            "SHA1" => Ok(Algorithm::Sha1),
            "SHA256" => Ok(Algorithm::Sha256),
            "SHA512" => Ok(Algorithm::Sha512),
            _ => Err(Error::UnknownAlgorithm(s.to_string())),
        }
    }
}

/// Decoded key material; wiped on drop, never printed.
#[derive(Clone)]
pub struct Key(Zeroizing<Vec<u8>>);

impl Key {
    /// Wraps raw key bytes, enforcing 80 bits to 1 KiB.
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Result<Self, Error> {
        if bytes.len() < 10 {
            return Err(Error::KeyTooShort(bytes.len().saturating_mul(8)));
        }
        if bytes.len() > 1024 {
            return Err(Error::KeyTooLong(bytes.len()));
        }
        Ok(Key(bytes))
    }

    /// The raw key bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(<{} bytes redacted>)", self.0.len())
    }
}

/// An HMAC keyed once, from which codes for many counters are derived by cloning the
/// pre-hashed inner and outer pads (no key set-up per candidate).
#[derive(Clone)]
pub enum Mac {
    /// HMAC-SHA1.
    Sha1(Hmac<sha1::Sha1>),
    /// HMAC-SHA256.
    Sha256(Hmac<sha2::Sha256>),
    /// HMAC-SHA512.
    Sha512(Hmac<sha2::Sha512>),
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac(<redacted>)")
    }
}

/// 10^digits for digits 6..=8.
fn modulus(digits: u32) -> u32 {
    match digits {
        7 => 10_000_000,
        8 => 100_000_000,
        _ => 1_000_000,
    }
}

/// RFC 4226 §5.3 dynamic truncation of an HMAC value to a `digits`-digit code.
fn truncate(hash: &[u8], digits: u32) -> u32 {
    let offset = hash.last().map_or(0, |b| usize::from(b & 0x0f));
    let word = hash
        .get(offset..offset.saturating_add(4))
        .and_then(|w| <[u8; 4]>::try_from(w).ok())
        .map_or(0, u32::from_be_bytes);
    (word & 0x7fff_ffff) % modulus(digits)
}

impl Mac {
    /// Sets up the HMAC key once.
    pub fn new(algorithm: Algorithm, key: &Key) -> Self {
        // new_from_slice accepts any key length for HMAC; the error arm cannot occur, and an
        // empty-key MAC would only ever produce wrong codes, never accept anything extra.
        match algorithm {
            Algorithm::Sha1 => Mac::Sha1(
                Hmac::new_from_slice(key.bytes())
                    .unwrap_or_else(|_| Hmac::new(&Default::default())),
            ),
            Algorithm::Sha256 => Mac::Sha256(
                Hmac::new_from_slice(key.bytes())
                    .unwrap_or_else(|_| Hmac::new(&Default::default())),
            ),
            Algorithm::Sha512 => Mac::Sha512(
                Hmac::new_from_slice(key.bytes())
                    .unwrap_or_else(|_| Hmac::new(&Default::default())),
            ),
        }
    }

    /// The `digits`-digit HOTP value for `counter` (RFC 4226 §5.3).
    pub fn code(&self, counter: u64, digits: u32) -> u32 {
        let msg = counter.to_be_bytes();
        match self {
            Mac::Sha1(m) => {
                let mut m = m.clone();
                m.update(&msg);
                truncate(&m.finalize().into_bytes(), digits)
            }
            Mac::Sha256(m) => {
                let mut m = m.clone();
                m.update(&msg);
                truncate(&m.finalize().into_bytes(), digits)
            }
            Mac::Sha512(m) => {
                let mut m = m.clone();
                m.update(&msg);
                truncate(&m.finalize().into_bytes(), digits)
            }
        }
    }
}

/// Validates a digit count (6..=8).
pub(crate) fn check_digits(digits: u32) -> Result<u32, Error> {
    if (6..=8).contains(&digits) {
        Ok(digits)
    } else {
        Err(Error::BadDigits(digits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_matches_rfc4226_section_5_4_example() {
        let hash = [
            0x1f, 0x86, 0x98, 0x69, 0x0e, 0x02, 0xca, 0x16, 0x61, 0x85, 0x50, 0xef, 0x7f, 0x19,
            0xda, 0x8e, 0x94, 0x5b, 0x55, 0x5a,
        ];
        assert_eq!(truncate(&hash, 6), 872921);
    }

    #[test]
    fn key_debug_output_never_shows_the_bytes() {
        let key = Key::new(Zeroizing::new(b"12345678901234567890".to_vec())).unwrap();
        assert_eq!(format!("{key:?}"), "Key(<20 bytes redacted>)");
    }
}
