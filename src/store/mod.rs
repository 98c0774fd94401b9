//! Secret files and state files: safe open, checks, parse, lock, durable replace.
//! Knows nothing of PAM. Every operation on a path goes through a verified directory fd
//! with the `*at()` calls and `O_NOFOLLOW` (SECURITY.md R3–R5, W1–W5).

pub mod kv;
mod safe;
mod secret;
mod state;
mod write;

pub use safe::{open_central_dir, open_home_dir, read_file_at, walk_below, FileRules, Opened};
pub use secret::{load_secret, Kind, Secret, SecretLocation};
pub use state::{decode_state_file, Locked, State, StateDir, LOCK_TIMEOUT, STATE_FILE_SIZE};
pub use write::{TargetDir, WriteError};

use std::fmt;
use std::path::PathBuf;

/// What went wrong with a file, in words fit for syslog. Never carries file contents.
#[derive(Debug)]
pub enum Error {
    /// The secret file does not exist, and its directory was opened and verified.
    NotFound(PathBuf),
    /// The file or a directory on its path is unsafe to trust (symlink, owner, mode, …).
    Unsafe {
        /// The path concerned.
        path: PathBuf,
        /// Why, e.g. "mode 0644, expected no group/other bits".
        reason: String,
    },
    /// The file parses wrong or fails its checksum.
    Garbled {
        /// The path concerned.
        path: PathBuf,
        /// Where and what, never the content (e.g. "line 3: unknown key").
        reason: String,
    },
    /// A directory on the path is missing (home unmounted, state dir absent): fail closed.
    Missing(PathBuf),
    /// An I/O error.
    Io {
        /// The path concerned.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The error.
        err: std::io::Error,
    },
    /// The state lock was not obtained within [`LOCK_TIMEOUT`].
    LockTimeout(PathBuf),
    /// The filesystem identity could not be switched to the user.
    Identity,
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, err: rustix::io::Errno) -> Self {
        Error::Io {
            path: path.into(),
            op,
            err: std::io::Error::from_raw_os_error(err.raw_os_error()),
        }
    }

    pub(crate) fn unsafe_file(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Unsafe {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn garbled(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Garbled {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(p) => write!(f, "{}: no such file", p.display()),
            Error::Unsafe { path, reason } => write!(f, "{}: unsafe: {reason}", path.display()),
            Error::Garbled { path, reason } => write!(f, "{}: garbled: {reason}", path.display()),
            Error::Missing(p) => write!(f, "{}: directory missing", p.display()),
            Error::Io { path, op, err } => write!(f, "{}: {op}: {err}", path.display()),
            Error::LockTimeout(p) => write!(f, "{}: lock not obtained within 5 s", p.display()),
            Error::Identity => write!(f, "could not switch the filesystem uid/gid to the user"),
        }
    }
}

impl std::error::Error for Error {}
