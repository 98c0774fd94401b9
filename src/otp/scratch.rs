//! Scratch codes (SECURITY.md A6): generated from the OS random source, stored only as
//! `HMAC-SHA256(salt, code)`, compared in constant time.

use hmac::{Hmac, KeyInit, Mac as _};
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

use super::Error;

/// How much entropy a stored scratch code has; decides whether it may be checked while the
/// rate limit is engaged (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScratchStrength {
    /// ≥ 64 bits (our own 16-character base32 codes, 80 bits).
    High,
    /// Imported low-entropy codes (google-authenticator's 8 digits, 26.6 bits).
    Low,
}

/// One stored scratch code: `sha256:hi|lo:<32 hex salt>:<64 hex hash>`.
#[derive(Clone, PartialEq, Eq)]
pub struct ScratchHash {
    /// Entropy class of the code behind the hash.
    pub strength: ScratchStrength,
    salt: [u8; 16],
    hash: [u8; 32],
}

impl fmt::Debug for ScratchHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScratchHash({:?}, {})", self.strength, self.id())
    }
}

fn hex_decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(s.as_bytes().chunks(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn mac(salt: &[u8; 16], code: &str) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(salt)
        .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
    m.update(code.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(&m.finalize().into_bytes());
    out
}

impl ScratchHash {
    /// Parses the stored form.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let mut parts = s.split(':');
        let (Some("sha256"), Some(kind), Some(salt), Some(hash), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(Error::BadScratchHash);
        };
        let strength = match kind {
            "hi" => ScratchStrength::High,
            "lo" => ScratchStrength::Low,
            _ => return Err(Error::BadScratchHash),
        };
        Ok(ScratchHash {
            strength,
            salt: hex_decode(salt).ok_or(Error::BadScratchHash)?,
            hash: hex_decode(hash).ok_or(Error::BadScratchHash)?,
        })
    }

    /// The stored form.
    pub fn to_stored(&self) -> String {
        let kind = match self.strength {
            ScratchStrength::High => "hi",
            ScratchStrength::Low => "lo",
        };
        format!("sha256:{kind}:{}:{}", hex(&self.salt), hex(&self.hash))
    }

    /// A short public identifier (first 8 bytes of the hash) used to mark the code as used.
    pub fn id(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.hash.get(..8).unwrap_or(&[0u8; 8]));
        u64::from_be_bytes(b)
    }

    /// Whether `code` (normalised: upper case, no separators) matches, in constant time.
    pub fn matches(&self, code: &str) -> subtle::Choice {
        use subtle::ConstantTimeEq;
        let mut candidate = mac(&self.salt, code);
        let eq = candidate.ct_eq(&self.hash);
        zeroize::Zeroize::zeroize(&mut candidate);
        eq
    }
}

/// Hashes a normalised scratch code with a fresh salt.
pub fn hash_scratch_code(code: &str, strength: ScratchStrength, salt: [u8; 16]) -> ScratchHash {
    ScratchHash {
        strength,
        salt,
        hash: mac(&salt, code),
    }
}

/// Formats 10 random bytes as a 16-character base32 scratch code (80 bits), shown to the
/// user as `ABCD-EFGH-IJKL-MNOP` and stored normalised without dashes.
pub fn generate_scratch_code(random: &[u8; 10]) -> Zeroizing<String> {
    let plain = super::encode_base32(random);
    Zeroizing::new(plain.chars().take(16).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips_and_matches_only_its_code() {
        let h = hash_scratch_code("ABCDEFGHIJKLMNOP", ScratchStrength::High, [7u8; 16]);
        let stored = h.to_stored();
        assert!(stored.starts_with("sha256:hi:0707"));
        let back = ScratchHash::parse(&stored).unwrap();
        assert_eq!(back, h);
        assert!(bool::from(back.matches("ABCDEFGHIJKLMNOP")));
        assert!(!bool::from(back.matches("ABCDEFGHIJKLMNOQ")));
    }

    #[test]
    fn malformed_stored_hashes_are_rejected() {
        for s in [
            "",
            "sha256:hi:00",
            "md5:hi:00000000000000000000000000000000:00",
            "sha256:xx:00000000000000000000000000000000:0000000000000000000000000000000000000000000000000000000000000000",
            "sha256:hi:0000000000000000000000000000000g:0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert_eq!(ScratchHash::parse(s), Err(Error::BadScratchHash), "{s}");
        }
    }

    #[test]
    fn generated_codes_have_sixteen_base32_characters() {
        let c = generate_scratch_code(&[0xff; 10]);
        assert_eq!(c.len(), 16);
        assert!(c.bytes().all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7')));
    }
}
