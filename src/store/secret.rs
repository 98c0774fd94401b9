//! The secret file (SPEC §5): where it is, how it is read, and its strict TOML grammar.
//! The module only reads it; the CLI writes it through the same grammar.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use zeroize::Zeroizing;

use super::kv::{self, Value};
use super::safe::{open_central_dir, open_home_dir, read_file_at, walk_below, FileRules};
use super::Error;
use crate::otp::{decode_base32, Algorithm, Key, ScratchHash};
use crate::sys::{FsIdentity, Passwd};

/// TOTP or HOTP, with the parameter that belongs to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// RFC 6238, with the period in seconds.
    Totp {
        /// Seconds per step (default 30).
        period: u64,
    },
    /// RFC 4226, with the initial counter.
    Hotp {
        /// The counter of the first code (default 0).
        counter: u64,
    },
}

/// A parsed secret file. The key is wiped on drop and never printed.
#[derive(Debug, Clone)]
pub struct Secret {
    /// Random id set at enrollment; state is tied to it.
    pub id: String,
    /// TOTP or HOTP.
    pub kind: Kind,
    /// The decoded key.
    pub key: Key,
    /// HMAC algorithm.
    pub algorithm: Algorithm,
    /// 6–8.
    pub digits: u32,
    /// TOTP steps either side, or HOTP look-ahead, when the file sets it.
    pub window: Option<u32>,
    /// Salted hashes of the scratch codes.
    pub scratch: Vec<ScratchHash>,
}

/// The fields of a secret file as read, before validation.
#[derive(Default)]
struct Raw {
    version: Option<u64>,
    id: Option<String>,
    kind: Option<String>,
    secret: Option<Zeroizing<String>>,
    algorithm: Option<String>,
    digits: Option<u64>,
    period: Option<u64>,
    counter: Option<u64>,
    window: Option<u64>,
    scratch: Vec<Zeroizing<String>>,
}

/// The line of byte offset `at` in `text`, 1-based.
fn line_of(text: &[u8], at: usize) -> usize {
    text.iter()
        .take(at)
        .filter(|&&b| b == b'\n')
        .count()
        .saturating_add(1)
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Secret {
    /// Parses the secret file strictly: ASCII only, no NUL, no unknown or duplicate keys.
    /// Error messages name a line and a key, never the content.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Secret, Error> {
        if let Some(pos) = bytes.iter().position(|&b| b == 0 || b >= 0x80) {
            return Err(Error::garbled(
                path,
                format!("line {}: NUL or non-ASCII byte", line_of(bytes, pos)),
            ));
        }
        let entries = kv::parse(bytes).map_err(|e| Error::garbled(path, e.to_string()))?;
        let mut raw = Raw::default();
        for e in entries {
            let line = e.line;
            let bad = |what: &str| Error::garbled(path, format!("line {line}: {} {what}", e.key));
            match (e.key.as_str(), e.value) {
                ("version", Value::Int(v)) => raw.version = Some(v),
                ("id", Value::Str(v)) => raw.id = Some(v.to_string()),
                ("type", Value::Str(v)) => raw.kind = Some(v.to_string()),
                ("secret", Value::Str(v)) => raw.secret = Some(v),
                ("algorithm", Value::Str(v)) => raw.algorithm = Some(v.to_string()),
                ("digits", Value::Int(v)) => raw.digits = Some(v),
                ("period", Value::Int(v)) => raw.period = Some(v),
                ("counter", Value::Int(v)) => raw.counter = Some(v),
                ("window", Value::Int(v)) => raw.window = Some(v),
                ("scratch", Value::List(v)) => raw.scratch = v,
                (
                    "version" | "id" | "type" | "secret" | "algorithm" | "digits" | "period"
                    | "counter" | "window" | "scratch",
                    _,
                ) => return Err(bad("has the wrong type")),
                _ => return Err(bad("is not a known key")),
            }
        }
        Self::from_raw(&raw).map_err(|reason| Error::garbled(path, reason))
    }

    fn from_raw(raw: &Raw) -> Result<Secret, String> {
        let missing = |k: &str| format!("{k} is missing");
        let version = raw.version.ok_or_else(|| missing("version"))?;
        if version != 1 {
            return Err(format!("version {version} unsupported, expected 1"));
        }
        let id = raw.id.as_deref().ok_or_else(|| missing("id"))?;
        if !valid_id(id) {
            return Err("id must be 1-64 characters of [A-Za-z0-9._-]".into());
        }
        let kind_name = raw.kind.as_deref().ok_or_else(|| missing("type"))?;
        let secret_text = raw.secret.as_ref().ok_or_else(|| missing("secret"))?;
        let small = |v: Option<u64>, k: &str| -> Result<Option<u32>, String> {
            v.map(|n| u32::try_from(n).map_err(|_| format!("{k} = {n} is too large")))
                .transpose()
        };
        let algorithm = match &raw.algorithm {
            Some(a) => Algorithm::parse(a).map_err(|e| e.to_string())?,
            None => Algorithm::Sha1,
        };
        let digits = small(raw.digits, "digits")?.unwrap_or(6);
        if !(6..=8).contains(&digits) {
            return Err(format!("digits = {digits}, expected 6, 7 or 8"));
        }
        let kind = match kind_name {
            "totp" => {
                if raw.counter.is_some() {
                    return Err("counter applies only to type = \"hotp\"".into());
                }
                let period = raw.period.unwrap_or(30);
                if !(1..=86_400).contains(&period) {
                    return Err(format!("period = {period}, expected 1..=86400"));
                }
                Kind::Totp { period }
            }
            "hotp" => {
                if raw.period.is_some() {
                    return Err("period applies only to type = \"totp\"".into());
                }
                Kind::Hotp {
                    counter: raw.counter.unwrap_or(0),
                }
            }
            _ => return Err("type must be \"totp\" or \"hotp\"".into()),
        };
        let window = small(raw.window, "window")?;
        if let Some(w) = window {
            let ok = match kind {
                Kind::Totp { .. } => w <= 3,
                Kind::Hotp { .. } => (1..=20).contains(&w),
            };
            if !ok {
                return Err(format!(
                    "window = {w}, expected 0..=3 (totp) or 1..=20 (hotp)"
                ));
            }
        }
        let key = decode_base32(secret_text).map_err(|e| e.to_string())?;
        let mut scratch = Vec::new();
        for (i, s) in raw.scratch.iter().enumerate() {
            if i >= 100 {
                return Err("more than 100 scratch codes".into());
            }
            scratch.push(
                ScratchHash::parse(s).map_err(|_| format!("scratch code {} malformed", i + 1))?,
            );
        }
        Ok(Secret {
            id: id.to_string(),
            kind,
            key,
            algorithm,
            digits,
            window,
            scratch,
        })
    }

    /// The TOML text the CLI writes; parses back to the same secret.
    pub fn to_toml(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(512));
        let b32 = crate::otp::encode_base32(self.key.bytes());
        let _ = writeln!(s, "version = 1");
        let _ = writeln!(s, "id = \"{}\"", self.id);
        match self.kind {
            Kind::Totp { .. } => {
                let _ = writeln!(s, "type = \"totp\"");
            }
            Kind::Hotp { .. } => {
                let _ = writeln!(s, "type = \"hotp\"");
            }
        }
        s.push_str("secret = \"");
        s.push_str(&b32);
        s.push_str("\"\n");
        let _ = writeln!(s, "algorithm = \"{}\"", self.algorithm.name());
        let _ = writeln!(s, "digits = {}", self.digits);
        match self.kind {
            Kind::Totp { period } => {
                let _ = writeln!(s, "period = {period}");
            }
            Kind::Hotp { counter } => {
                let _ = writeln!(s, "counter = {counter}");
            }
        }
        if let Some(w) = self.window {
            let _ = writeln!(s, "window = {w}");
        }
        if !self.scratch.is_empty() {
            s.push_str("scratch = [\n");
            for h in &self.scratch {
                let _ = writeln!(s, "  \"{}\",", h.to_stored());
            }
            s.push_str("]\n");
        }
        s
    }
}

/// Where a user's secret lives, after expanding `%u`, `%U` and `~/`/`%h/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretLocation {
    /// Home layout: a relative path below `pw_dir`, owned by the user.
    Home {
        /// `pw_dir`.
        home: PathBuf,
        /// The path below it, e.g. `.pam_totp`.
        rel: PathBuf,
    },
    /// Central layout: an absolute, root-owned path.
    Central(PathBuf),
}

impl SecretLocation {
    /// Expands a `secret=` template for a user. `%u` is the NSS name (already validated to
    /// hold no `/`), `%U` the uid, `~/` or `%h/` at the start the home directory.
    pub fn resolve(template: &str, user: &Passwd) -> Result<Self, String> {
        let name = String::from_utf8_lossy(&user.name);
        let (home_rel, rest) = if let Some(r) = template.strip_prefix("~/") {
            (true, r)
        } else if let Some(r) = template.strip_prefix("%h/") {
            (true, r)
        } else {
            (false, template)
        };
        let mut out = String::with_capacity(rest.len().saturating_add(32));
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('u') => out.push_str(&name),
                Some('U') => out.push_str(&user.uid.to_string()),
                Some('%') => out.push('%'),
                _ => {
                    return Err(format!(
                        "secret={template}: only %u, %U, %% and a leading %h/ or ~/ are expanded"
                    ))
                }
            }
        }
        let path = PathBuf::from(out);
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(format!("secret={template}: '..' is not allowed"));
        }
        if home_rel {
            if path.as_os_str().is_empty() || path.is_absolute() {
                return Err(format!(
                    "secret={template}: nothing after the home directory"
                ));
            }
            Ok(SecretLocation::Home {
                home: user.dir.clone(),
                rel: path,
            })
        } else if path.is_absolute() && path.file_name().is_some() {
            Ok(SecretLocation::Central(path))
        } else {
            Err(format!(
                "secret={template}: must be absolute or start with ~/ or %h/"
            ))
        }
    }

    /// The full path, for messages.
    pub fn display_path(&self) -> PathBuf {
        match self {
            SecretLocation::Home { home, rel } => home.join(rel),
            SecretLocation::Central(p) => p.clone(),
        }
    }
}

/// Trusted owners of central files and directories: root, and the process itself when it
/// is not root (tests, screen lockers running as the user).
pub(crate) fn central_owners(euid: u32) -> Vec<u32> {
    if euid == 0 {
        vec![0]
    } else {
        vec![0, euid]
    }
}

fn split_parent(path: &Path) -> Option<(&Path, &OsStr)> {
    Some((path.parent()?, path.file_name()?))
}

/// Takes the user's filesystem identity for home-layout I/O (SECURITY.md R4): switched when
/// running as root, nothing to do when already the user, refused otherwise (`doing` names the
/// operation for the error).
pub(crate) fn act_as_user(
    user: &Passwd,
    euid: u32,
    path: &Path,
    doing: &'static str,
) -> Result<Option<FsIdentity>, Error> {
    if euid == 0 {
        FsIdentity::switch_to(user.uid, user.gid)
            .map(Some)
            .map_err(|_| Error::Identity)
    } else if euid == user.uid {
        Ok(None)
    } else {
        Err(Error::io(path, doing, rustix::io::Errno::PERM))
    }
}

/// Reads and parses a user's secret following the layout's rules. In the home layout the
/// calling thread's fs-uid/gid is switched to the user for the walk and the read (R4).
pub fn load_secret(loc: &SecretLocation, user: &Passwd, euid: u32) -> Result<Secret, Error> {
    let full = loc.display_path();
    let bytes = match loc {
        SecretLocation::Central(path) => {
            let (parent, name) =
                split_parent(path).ok_or_else(|| Error::unsafe_file(path, "no file name"))?;
            let owners = central_owners(euid);
            let dir = open_central_dir(parent, &owners)?;
            read_file_at(
                &dir,
                name,
                path,
                FileRules {
                    owner: euid,
                    forbidden_mode: 0o077,
                },
            )?
            .bytes
        }
        SecretLocation::Home { home, rel } => {
            let _identity =
                act_as_user(user, euid, &full, "read another user's secret without root")?;
            let home_fd = open_home_dir(home, user.uid)?;
            let parts: Vec<&OsStr> = rel
                .components()
                .filter_map(|c| match c {
                    Component::Normal(s) => Some(s),
                    _ => None,
                })
                .collect();
            let (dirs, name) = match parts.split_last() {
                Some((name, dirs)) => (dirs, *name),
                None => return Err(Error::unsafe_file(&full, "no file name")),
            };
            let (dir, _) = walk_below(home_fd, home, dirs, user.uid)?;
            read_file_at(
                &dir,
                name,
                &full,
                FileRules {
                    owner: user.uid,
                    forbidden_mode: 0o077,
                },
            )?
            .bytes
        }
    };
    Secret::parse(&bytes, &full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Passwd {
        Passwd {
            name: b"alice".to_vec(),
            uid: 1001,
            gid: 1001,
            dir: PathBuf::from("/home/alice"),
        }
    }

    const GOOD: &str =
        "version = 1\nid = \"abc\"\ntype = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXP\"\n";

    #[test]
    fn a_minimal_file_gets_the_defaults() {
        let s = Secret::parse(GOOD.as_bytes(), Path::new("/x")).unwrap();
        assert_eq!(s.kind, Kind::Totp { period: 30 });
        assert_eq!(s.digits, 6);
        assert_eq!(s.algorithm, Algorithm::Sha1);
        assert_eq!(s.window, None);
    }

    #[test]
    fn written_files_parse_back_identically() {
        let mut s = Secret::parse(GOOD.as_bytes(), Path::new("/x")).unwrap();
        s.kind = Kind::Hotp { counter: 7 };
        s.window = Some(5);
        s.scratch = vec![crate::otp::hash_scratch_code(
            "AAAABBBBCCCCDDDD",
            crate::otp::ScratchStrength::High,
            [1; 16],
        )];
        let back = Secret::parse(s.to_toml().as_bytes(), Path::new("/x")).unwrap();
        assert_eq!(back.kind, s.kind);
        assert_eq!(back.window, Some(5));
        assert_eq!(back.scratch, s.scratch);
        assert_eq!(back.key.bytes(), s.key.bytes());
    }

    #[test]
    fn unknown_duplicate_and_non_ascii_content_is_garbled_without_quoting_it() {
        let cases = [
            format!("{GOOD}colour = 1\n"),
            format!("{GOOD}id = \"again\"\n"),
            format!("{GOOD}# caf\u{e9}\n"),
            format!("{GOOD}\0"),
            GOOD.replace("totp", "motp"),
            GOOD.replace("version = 1", "version = 2"),
            GOOD.replace("JBSWY3DPEHPK3PXP", "JBSWY3DP"),
            GOOD.replace("JBSWY3DPEHPK3PXP", "JBSWY3DPEHPK3PX!"),
            format!("{GOOD}digits = 9\n"),
            format!("{GOOD}period = 0\n"),
            format!("{GOOD}counter = 3\n"),
            format!("{GOOD}window = 4\n"),
            format!("{GOOD}scratch = [\"nope\"]\n"),
            "version = 1\nid = \"abc\"\ntype = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXP".to_string(),
            String::new(),
            "version = 18446744073709551616\n".to_string(),
        ];
        for c in cases {
            match Secret::parse(c.as_bytes(), Path::new("/x")) {
                Err(Error::Garbled { reason, .. }) => {
                    assert!(!reason.contains("JBSW"), "{reason}");
                }
                other => panic!("{c:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn crlf_line_endings_are_accepted() {
        let crlf = GOOD.replace('\n', "\r\n");
        assert!(Secret::parse(crlf.as_bytes(), Path::new("/x")).is_ok());
    }

    #[test]
    fn templates_expand_to_home_or_central_locations() {
        let u = user();
        assert_eq!(
            SecretLocation::resolve("~/.pam_totp", &u).unwrap(),
            SecretLocation::Home {
                home: "/home/alice".into(),
                rel: ".pam_totp".into()
            }
        );
        assert_eq!(
            SecretLocation::resolve("/var/lib/pam-totp/secrets/%U", &u).unwrap(),
            SecretLocation::Central("/var/lib/pam-totp/secrets/1001".into())
        );
        assert_eq!(
            SecretLocation::resolve("%h/.config/%u.totp", &u).unwrap(),
            SecretLocation::Home {
                home: "/home/alice".into(),
                rel: ".config/alice.totp".into()
            }
        );
        for bad in ["relative", "~/", "/x/../y", "/x/%q", "/"] {
            assert!(SecretLocation::resolve(bad, &u).is_err(), "{bad}");
        }
    }
}
