//! `otpauth://` URIs (the Key Uri Format authenticator apps scan).

use zeroize::Zeroizing;

use super::{Algorithm, Error};

/// What goes into an `otpauth://` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriParams {
    /// `true` for HOTP, `false` for TOTP.
    pub hotp: bool,
    /// Shown as the account's provider in the app.
    pub issuer: String,
    /// Shown as the account name (usually `user@host`).
    pub label: String,
    /// HMAC algorithm.
    pub algorithm: Algorithm,
    /// 6–8.
    pub digits: u32,
    /// TOTP period in seconds.
    pub period: u64,
    /// HOTP initial counter.
    pub counter: u64,
}

fn push_escaped(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Builds the URI; `secret_base32` is upper-case base32 without padding.
pub fn otpauth_uri(p: &UriParams, secret_base32: &str) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::with_capacity(256));
    s.push_str(if p.hotp {
        "otpauth://hotp/"
    } else {
        "otpauth://totp/"
    });
    push_escaped(&mut s, &p.issuer);
    s.push(':');
    push_escaped(&mut s, &p.label);
    s.push_str("?secret=");
    s.push_str(secret_base32);
    s.push_str("&issuer=");
    push_escaped(&mut s, &p.issuer);
    s.push_str("&algorithm=");
    s.push_str(p.algorithm.name());
    s.push_str(&format!("&digits={}", p.digits));
    if p.hotp {
        s.push_str(&format!("&counter={}", p.counter));
    } else {
        s.push_str(&format!("&period={}", p.period));
    }
    s
}

fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i.checked_add(1)?..i.checked_add(3)?)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(v);
            i = i.checked_add(3)?;
        } else {
            out.push(b);
            i = i.checked_add(1)?;
        }
    }
    String::from_utf8(out).ok()
}

/// Parses an `otpauth://` URI into its parameters and base32 secret (for import and tests).
pub fn parse_otpauth_uri(uri: &str) -> Result<(UriParams, Zeroizing<String>), Error> {
    let bad = || Error::BadUri;
    let rest = uri.strip_prefix("otpauth://").ok_or_else(bad)?;
    let (kind, rest) = rest.split_once('/').ok_or_else(bad)?;
    let hotp = match kind.to_ascii_lowercase().as_str() {
        "totp" => false,
        "hotp" => true,
        _ => return Err(bad()),
    };
    let (path, query) = rest.split_once('?').ok_or_else(bad)?;
    let path = unescape(path).ok_or_else(bad)?;
    let (mut issuer, label) = match path.split_once(':') {
        Some((i, l)) => (i.to_string(), l.trim_start().to_string()),
        None => (String::new(), path.clone()),
    };
    let mut p = UriParams {
        hotp,
        issuer: String::new(),
        label,
        algorithm: Algorithm::Sha1,
        digits: 6,
        period: 30,
        counter: 0,
    };
    let mut secret = None;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').ok_or_else(bad)?;
        let v = unescape(v).ok_or_else(bad)?;
        match k {
            "secret" => secret = Some(Zeroizing::new(v)),
            "issuer" => issuer = v,
            "algorithm" => p.algorithm = Algorithm::parse(&v)?,
            "digits" => p.digits = super::code::check_digits(v.parse().map_err(|_| bad())?)?,
            "period" => {
                let period: u64 = v.parse().map_err(|_| bad())?;
                if !(1..=86_400).contains(&period) {
                    return Err(Error::BadPeriod(period));
                }
                p.period = period;
            }
            "counter" => p.counter = v.parse().map_err(|_| bad())?,
            _ => {}
        }
    }
    p.issuer = issuer;
    let secret = secret.ok_or_else(bad)?;
    super::decode_base32(&secret)?;
    Ok((p, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_carries_every_parameter_and_round_trips() {
        let p = UriParams {
            hotp: false,
            issuer: "pam-totp".into(),
            label: "alice@host one".into(),
            algorithm: Algorithm::Sha256,
            digits: 8,
            period: 60,
            counter: 0,
        };
        let uri = otpauth_uri(&p, "JBSWY3DPEHPK3PXP");
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/pam-totp:alice@host%20one?secret=JBSWY3DPEHPK3PXP&issuer=pam-totp&algorithm=SHA256&digits=8&period=60"
        );
        let (back, secret) = parse_otpauth_uri(&uri).unwrap();
        assert_eq!(back, p);
        assert_eq!(secret.as_str(), "JBSWY3DPEHPK3PXP");
    }

    #[test]
    fn malformed_uris_are_errors_not_panics() {
        for u in [
            "",
            "otpauth://",
            "otpauth://totp/x",
            "otpauth://xotp/x?secret=JBSWY3DPEHPK3PXP",
            "otpauth://totp/x?secret=%G1",
            "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=9",
            "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&period=0",
            "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&period",
            "otpauth://totp/x%?secret=JBSWY3DPEHPK3PXP",
        ] {
            assert!(parse_otpauth_uri(u).is_err(), "{u}");
        }
    }
}
