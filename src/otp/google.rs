//! The google-authenticator-libpam file (`~/.google_authenticator`), parsed without I/O so it
//! can be fuzzed: a base32 secret on the first line, option lines starting with `" `, then
//! 8-digit scratch codes, one per line.

use std::fmt;
use zeroize::Zeroizing;

use super::{decode_base32, Key};

/// The options google-authenticator writes, as found in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GaOptions {
    /// `" RATE_LIMIT n m [timestamps…]"`: n logins per m seconds.
    pub rate_limit: Option<(u32, u32)>,
    /// `" WINDOW_SIZE n"`: the total number of codes accepted (3 means ±1 for TOTP).
    pub window_size: Option<u32>,
    /// `" DISALLOW_REUSE [steps…]"`.
    pub disallow_reuse: bool,
    /// `" TOTP_AUTH"`.
    pub totp_auth: bool,
    /// `" HOTP_COUNTER n"`: the next counter.
    pub hotp_counter: Option<u64>,
    /// `" STEP_SIZE n"`: the TOTP period in seconds.
    pub step_size: Option<u64>,
    /// `" TIME_SKEW n"`: a learned clock offset in steps.
    pub time_skew: Option<i64>,
}

/// A parsed google-authenticator file. The key and the scratch codes are wiped on drop.
pub struct GaFile {
    /// The decoded secret.
    pub key: Key,
    /// The option lines.
    pub options: GaOptions,
    /// The 8-digit scratch codes, in file order.
    pub scratch: Vec<Zeroizing<String>>,
}

impl fmt::Debug for GaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GaFile({:?}, {:?}, {} scratch codes)",
            self.key,
            self.options,
            self.scratch.len()
        )
    }
}

/// Why a google-authenticator file cannot be read. Never quotes the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GaError {
    /// Empty, or no secret on the first line.
    NoSecret,
    /// The first line is not a usable base32 secret.
    BadSecret(super::Error),
    /// A NUL or non-ASCII byte.
    NotText(usize),
    /// An option line that is not understood (its name, when it has a sane one).
    UnknownOption(usize, String),
    /// A known option with a bad value.
    BadOption(usize, &'static str),
    /// The same option twice.
    DuplicateOption(usize, &'static str),
    /// A line that is neither an option nor an 8-digit scratch code.
    BadLine(usize),
    /// An option line after the scratch codes.
    OptionAfterScratch(usize),
}

impl fmt::Display for GaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GaError::NoSecret => write!(f, "no secret on the first line"),
            GaError::BadSecret(e) => write!(f, "line 1: {e}"),
            GaError::NotText(l) => write!(f, "line {l}: NUL or non-ASCII byte"),
            GaError::UnknownOption(l, name) => write!(f, "line {l}: unknown option {name}"),
            GaError::BadOption(l, name) => write!(f, "line {l}: malformed {name} option"),
            GaError::DuplicateOption(l, name) => write!(f, "line {l}: {name} given twice"),
            GaError::BadLine(l) => {
                write!(f, "line {l}: neither an option nor an 8-digit scratch code")
            }
            GaError::OptionAfterScratch(l) => {
                write!(f, "line {l}: option line after the scratch codes")
            }
        }
    }
}

impl std::error::Error for GaError {}

fn number<T: std::str::FromStr>(word: Option<&str>) -> Option<T> {
    let w = word?;
    if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return None;
    }
    w.parse().ok()
}

fn set_once<T>(slot: &mut Option<T>, v: T, line: usize, name: &'static str) -> Result<(), GaError> {
    if slot.is_some() {
        return Err(GaError::DuplicateOption(line, name));
    }
    *slot = Some(v);
    Ok(())
}

fn option(o: &mut GaOptions, text: &str, line: usize) -> Result<(), GaError> {
    let mut words = text.split_ascii_whitespace();
    let Some(name) = words.next() else {
        return Err(GaError::BadLine(line));
    };
    match name {
        "RATE_LIMIT" => {
            let n = number::<u32>(words.next()).filter(|&n| n >= 1);
            let m = number::<u32>(words.next()).filter(|&m| m >= 1);
            let (Some(n), Some(m)) = (n, m) else {
                return Err(GaError::BadOption(line, "RATE_LIMIT"));
            };
            // The rest are timestamps of recent logins: state, not configuration.
            if words.any(|w| number::<u64>(Some(w)).is_none()) {
                return Err(GaError::BadOption(line, "RATE_LIMIT"));
            }
            set_once(&mut o.rate_limit, (n, m), line, "RATE_LIMIT")
        }
        "WINDOW_SIZE" => {
            let w = number::<u32>(words.next())
                .filter(|w| (1..=100).contains(w))
                .ok_or(GaError::BadOption(line, "WINDOW_SIZE"))?;
            if words.next().is_some() {
                return Err(GaError::BadOption(line, "WINDOW_SIZE"));
            }
            set_once(&mut o.window_size, w, line, "WINDOW_SIZE")
        }
        "DISALLOW_REUSE" => {
            if o.disallow_reuse {
                return Err(GaError::DuplicateOption(line, "DISALLOW_REUSE"));
            }
            // The rest are used time steps: state, not configuration.
            if words.any(|w| number::<u64>(Some(w)).is_none()) {
                return Err(GaError::BadOption(line, "DISALLOW_REUSE"));
            }
            o.disallow_reuse = true;
            Ok(())
        }
        "TOTP_AUTH" => {
            if words.next().is_some() {
                return Err(GaError::BadOption(line, "TOTP_AUTH"));
            }
            if o.totp_auth {
                return Err(GaError::DuplicateOption(line, "TOTP_AUTH"));
            }
            o.totp_auth = true;
            Ok(())
        }
        "HOTP_COUNTER" => {
            let c = number::<u64>(words.next()).ok_or(GaError::BadOption(line, "HOTP_COUNTER"))?;
            if words.next().is_some() {
                return Err(GaError::BadOption(line, "HOTP_COUNTER"));
            }
            set_once(&mut o.hotp_counter, c, line, "HOTP_COUNTER")
        }
        "STEP_SIZE" => {
            let s = number::<u64>(words.next())
                .filter(|s| (1..=60).contains(s))
                .ok_or(GaError::BadOption(line, "STEP_SIZE"))?;
            if words.next().is_some() {
                return Err(GaError::BadOption(line, "STEP_SIZE"));
            }
            set_once(&mut o.step_size, s, line, "STEP_SIZE")
        }
        "TIME_SKEW" => {
            let s = number::<i64>(words.next()).ok_or(GaError::BadOption(line, "TIME_SKEW"))?;
            if words.next().is_some() {
                return Err(GaError::BadOption(line, "TIME_SKEW"));
            }
            set_once(&mut o.time_skew, s, line, "TIME_SKEW")
        }
        other => {
            let sane = other.len() <= 32
                && other
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            let shown = if sane {
                other.to_string()
            } else {
                "(unreadable)".into()
            };
            Err(GaError::UnknownOption(line, shown))
        }
    }
}

/// Parses a google-authenticator-libpam file. Strict: any line that is not the secret, a
/// known option or an 8-digit scratch code is an error, so nothing is silently dropped.
pub fn parse_google_authenticator(text: &str) -> Result<GaFile, GaError> {
    if let Some(pos) = text.bytes().position(|b| b == 0 || b >= 0x80) {
        let line = text
            .bytes()
            .take(pos)
            .filter(|&b| b == b'\n')
            .count()
            .saturating_add(1);
        return Err(GaError::NotText(line));
    }
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().unwrap_or("");
    if first.trim().is_empty() {
        return Err(GaError::NoSecret);
    }
    let key = decode_base32(first.trim()).map_err(GaError::BadSecret)?;
    let mut options = GaOptions::default();
    let mut scratch = Vec::new();
    for (i, raw) in lines.enumerate() {
        let line = i.saturating_add(2);
        if let Some(opt) = raw.strip_prefix("\" ") {
            if !scratch.is_empty() {
                return Err(GaError::OptionAfterScratch(line));
            }
            option(&mut options, opt, line)?;
        } else if raw.len() == 8 && raw.bytes().all(|b| b.is_ascii_digit()) {
            if scratch.len() >= 100 {
                return Err(GaError::BadLine(line));
            }
            scratch.push(Zeroizing::new(raw.to_string()));
        } else if !raw.is_empty() {
            return Err(GaError::BadLine(line));
        }
    }
    Ok(GaFile {
        key,
        options,
        scratch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOTP: &str = "3TSDHH5XU7FB3J4T7TDZQES4J4\n\" RATE_LIMIT 3 30 1700000000\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE 56666666\n\" TOTP_AUTH\n68767333\n83025062\n";

    #[test]
    fn a_totp_file_as_google_authenticator_writes_it_parses() {
        let f = parse_google_authenticator(TOTP).unwrap();
        assert_eq!(f.key.bytes().len(), 16);
        assert_eq!(f.options.rate_limit, Some((3, 30)));
        assert_eq!(f.options.window_size, Some(3));
        assert!(f.options.disallow_reuse && f.options.totp_auth);
        assert_eq!(f.options.hotp_counter, None);
        assert_eq!(f.scratch.len(), 2);
        assert_eq!(f.scratch[0].as_str(), "68767333");
        assert!(!format!("{f:?}").contains("6876"));
    }

    #[test]
    fn a_hotp_file_with_crlf_parses() {
        let f = parse_google_authenticator(
            "YXDVWOBJUAU4QD7QZBCI2S6VOA\r\n\" WINDOW_SIZE 5\r\n\" HOTP_COUNTER 1\r\n",
        )
        .unwrap();
        assert_eq!(f.options.hotp_counter, Some(1));
        assert_eq!(f.options.window_size, Some(5));
        assert!(f.scratch.is_empty());
    }

    #[test]
    fn odd_lines_are_refused_with_their_line_number() {
        let cases: &[(&str, GaError)] = &[
            ("", GaError::NoSecret),
            ("\n\" TOTP_AUTH\n", GaError::NoSecret),
            (
                "JBSWY3DP\n",
                GaError::BadSecret(crate::otp::Error::KeyTooShort(40)),
            ),
            (
                "JBSWY3DPEHPK3PXP\n\" FOO 1\n",
                GaError::UnknownOption(2, "FOO".into()),
            ),
            (
                "JBSWY3DPEHPK3PXP\n\" WINDOW_SIZE x\n",
                GaError::BadOption(2, "WINDOW_SIZE"),
            ),
            (
                "JBSWY3DPEHPK3PXP\n\" STEP_SIZE 0\n",
                GaError::BadOption(2, "STEP_SIZE"),
            ),
            (
                "JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" TOTP_AUTH\n",
                GaError::DuplicateOption(3, "TOTP_AUTH"),
            ),
            ("JBSWY3DPEHPK3PXP\n1234567\n", GaError::BadLine(2)),
            ("JBSWY3DPEHPK3PXP\nhello\n", GaError::BadLine(2)),
            (
                "JBSWY3DPEHPK3PXP\n12345678\n\" TOTP_AUTH\n",
                GaError::OptionAfterScratch(3),
            ),
            ("JBSWY3DPEHPK3PXP\n\u{e9}\n", GaError::NotText(2)),
            (
                "JBSWY3DPEHPK3PXP\n\" RATE_LIMIT 3\n",
                GaError::BadOption(2, "RATE_LIMIT"),
            ),
            (
                "JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER -1\n",
                GaError::BadOption(2, "HOTP_COUNTER"),
            ),
        ];
        for (text, want) in cases {
            match parse_google_authenticator(text) {
                Err(e) => assert_eq!(&e, want, "{text:?}"),
                Ok(_) => panic!("{text:?} parsed"),
            }
        }
    }

    #[test]
    fn time_skew_and_step_size_are_read() {
        let f = parse_google_authenticator(
            "JBSWY3DPEHPK3PXP\n\" STEP_SIZE 60\n\" TIME_SKEW -2\n\" TOTP_AUTH\n",
        )
        .unwrap();
        assert_eq!(f.options.step_size, Some(60));
        assert_eq!(f.options.time_skew, Some(-2));
    }
}
