//! RFC 4648 base32 for secrets: lower case, spaces, dashes and missing padding accepted.

use data_encoding::BASE32_NOPAD;
use zeroize::Zeroizing;

use super::{Error, Key};

/// Decodes a base32 secret as authenticator apps and google-authenticator write them.
pub fn decode_base32(text: &str) -> Result<Key, Error> {
    let mut clean = Zeroizing::new(Vec::with_capacity(text.len()));
    for b in text.bytes() {
        match b {
            b' ' | b'\t' | b'-' => {}
            b'=' => {}
            b'a'..=b'z' => clean.push(b.to_ascii_uppercase()),
            b'A'..=b'Z' | b'2'..=b'7' => clean.push(b),
            _ => return Err(Error::BadBase32),
        }
    }
    // Padding is only allowed at the end; anything after an '=' was rejected above by
    // stripping, so a misplaced '=' shows up as a length the decoder refuses.
    if text.trim_end_matches(['=', ' ']).contains('=') {
        return Err(Error::BadBase32);
    }
    let len = BASE32_NOPAD
        .decode_len(clean.len())
        .map_err(|_| Error::BadBase32)?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    let written = BASE32_NOPAD
        .decode_mut(&clean, &mut out)
        .map_err(|_| Error::BadBase32)?;
    out.truncate(written);
    Key::new(out)
}

/// Encodes key bytes as upper-case base32 without padding (what `otpauth://` URIs carry).
pub fn encode_base32(bytes: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(BASE32_NOPAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_case_spaces_and_padding_decode_alike() {
        let a = decode_base32("JBSWY3DPEHPK3PXP").unwrap();
        let b = decode_base32("jbsw y3dp ehpk 3pxp").unwrap();
        let c = decode_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        let d = decode_base32("gezdgnbvgy3tqojqgezdgnbvgy3tqojq====").unwrap();
        assert_eq!(a.bytes(), b.bytes());
        assert_eq!(c.bytes(), b"12345678901234567890");
        assert_eq!(d.bytes(), c.bytes());
        let e = decode_base32("MFRGGZDFMZTWQ2LKNNWG23TP====").unwrap();
        assert_eq!(e.bytes(), b"abcdefghijklmno");
    }

    #[test]
    fn invalid_characters_and_short_keys_are_rejected() {
        assert_eq!(decode_base32("JBSWY3DP!").unwrap_err(), Error::BadBase32);
        assert_eq!(decode_base32("JBSW0").unwrap_err(), Error::BadBase32);
        assert_eq!(
            decode_base32("JBSWY3DP").unwrap_err(),
            Error::KeyTooShort(40)
        );
        assert_eq!(
            decode_base32("JB=SWY3DPEHPK3PXP").unwrap_err(),
            Error::BadBase32
        );
    }

    #[test]
    fn encoding_round_trips() {
        let key = decode_base32(&encode_base32(b"12345678901234567890")).unwrap();
        assert_eq!(key.bytes(), b"12345678901234567890");
    }
}
