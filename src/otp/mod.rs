//! The pure core: HOTP/TOTP codes, base32 keys, `otpauth://` URIs, answer normalisation,
//! scratch-code hashes and the verification decision. No files, no clock, no libc, no logging:
//! time and state are parameters.

mod answer;
mod base32;
mod code;
mod google;
pub mod limit;
mod scratch;
mod uri;
mod verify;

pub use answer::{normalize_answer, Answer, MAX_ANSWER_LEN};
pub use base32::{decode_base32, encode_base32};
pub use code::{Algorithm, Key, Mac};
pub use google::{parse_google_authenticator, GaError, GaFile, GaOptions};
pub use scratch::{generate_scratch_code, hash_scratch_code, ScratchHash, ScratchStrength};
pub use uri::{otpauth_uri, parse_otpauth_uri, UriParams};
pub use verify::{find_match, totp_step, Candidates, Match};

use std::fmt;

/// What can be wrong with OTP parameters or key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The base32 text is not valid RFC 4648 base32.
    BadBase32,
    /// The decoded key is shorter than 80 bits (RFC 4226 §4 requires 128, recommends 160).
    KeyTooShort(usize),
    /// The key is longer than we accept (1 KiB).
    KeyTooLong(usize),
    /// An algorithm name other than SHA1, SHA256 or SHA512.
    UnknownAlgorithm(String),
    /// Digits outside 6..=8.
    BadDigits(u32),
    /// A period of zero or over a day.
    BadPeriod(u64),
    /// A scratch-code hash that is not `sha256:hi|lo:<salt>:<hash>`.
    BadScratchHash,
    /// An `otpauth://` URI that cannot be parsed.
    BadUri,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadBase32 => write!(f, "secret is not valid base32"),
            Error::KeyTooShort(bits) => write!(f, "secret has {bits} bits, at least 80 needed"),
            Error::KeyTooLong(bytes) => write!(f, "secret has {bytes} bytes, at most 1024 allowed"),
            Error::UnknownAlgorithm(a) => {
                write!(f, "algorithm {a:?} unknown (SHA1, SHA256 or SHA512)")
            }
            Error::BadDigits(d) => write!(f, "digits = {d}, expected 6, 7 or 8"),
            Error::BadPeriod(p) => write!(f, "period = {p}, expected 1..=86400 seconds"),
            Error::BadScratchHash => write!(f, "scratch code hash is malformed"),
            Error::BadUri => write!(f, "not a valid otpauth:// URI"),
        }
    }
}

impl std::error::Error for Error {}
