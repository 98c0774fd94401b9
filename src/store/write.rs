//! Writing a secret file atomically (SPEC §5, SECURITY.md W4), for the CLI only: the module
//! never writes secrets. The same directory rules as the read side apply: the directories are
//! walked with the `*at()` calls from a verified fd, the file is built as an `O_EXCL` temp
//! file with a random name in the same directory, `fchmod` 0600 (whatever the umask), fsynced,
//! renamed over the target and the directory fsynced. Nothing is ever written through a
//! symlink, and an error leaves no temp file behind. In the home layout the calling thread
//! runs with the user's filesystem uid/gid throughout, so root never creates anything in a
//! directory the user controls, and the file is the user's from the start (no `fchown`).

use rustix::fs::{
    fchmod, fstat, fsync, mkdirat, openat, renameat, renameat_with, statat, unlinkat, AtFlags,
    FileType, Mode, OFlags, RenameFlags,
};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::safe::{check_file, open_central_dir, open_home_dir, stat_fields, walk_below};
use super::secret::central_owners;
use super::{Error, FileRules, SecretLocation};
use crate::sys::{FsIdentity, Passwd};

/// Temp files of an interrupted writer older than this are removed by the next one.
const STALE_TEMP_SECS: i64 = 600;

/// Why a secret file was not written. The old file, if any, is untouched.
#[derive(Debug)]
pub enum WriteError {
    /// A file is already there and replacing it was not asked for.
    Exists(PathBuf),
    /// A directory or file on the way failed a check, or an I/O error.
    Store(Error),
}

impl From<Error> for WriteError {
    fn from(e: Error) -> Self {
        WriteError::Store(e)
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Exists(p) => write!(f, "{}: already exists", p.display()),
            WriteError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for WriteError {}

/// The directory a secret file goes into, opened and verified, with the identity used to
/// write it (kept switched while this lives).
pub struct TargetDir {
    dir: OwnedFd,
    name: OsString,
    path: PathBuf,
    owner: u32,
    // Declared last: dropped after the fds above, restoring the fs-uid/gid.
    _identity: Option<FsIdentity>,
}

impl fmt::Debug for TargetDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TargetDir({}, owner {})",
            self.path.display(),
            self.owner
        )
    }
}

fn normal_parts(rel: &Path) -> Vec<&OsStr> {
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// Creates `name` (mode 0700, set on the fd whatever the umask) in `parent` when missing.
fn make_dir(parent: &OwnedFd, name: &OsStr, path: &Path) -> Result<(), Error> {
    match mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
        Ok(()) => {
            let fd = openat(
                parent,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::io(path, "open new directory", e))?;
            fchmod(&fd, Mode::from_raw_mode(0o700))
                .map_err(|e| Error::io(path, "fchmod directory", e))?;
            fsync(parent).map_err(|e| Error::io(path, "fsync parent directory", e))?;
            Ok(())
        }
        Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(Error::io(path, "create directory", e)),
    }
}

/// Opens an absolute directory with the central rules, creating missing components
/// (root 0700, or the caller's when not root) below the deepest existing, verified one.
fn ensure_central_dir(path: &Path, owners: &[u32], depth: usize) -> Result<OwnedFd, Error> {
    match open_central_dir(path, owners) {
        Err(Error::Missing(_)) if depth < 64 => {
            let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                return Err(Error::Missing(path.to_path_buf()));
            };
            let pfd = ensure_central_dir(parent, owners, depth.saturating_add(1))?;
            make_dir(&pfd, name, path)?;
            open_central_dir(path, owners)
        }
        other => other,
    }
}

impl TargetDir {
    /// Opens (creating missing directories, 0700) the directory of a secret file for
    /// `user`. Central layout: root-owned directories (or the caller's when not root), the
    /// file owned by the caller. Home layout: as root, the fs-uid/gid are switched to the user
    /// before the walk and stay so until this is dropped; as the user, nothing is switched;
    /// for anyone else it is refused.
    pub fn open(loc: &SecretLocation, user: &Passwd, euid: u32) -> Result<TargetDir, Error> {
        match loc {
            SecretLocation::Central(path) => {
                let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                    return Err(Error::unsafe_file(path, "no file name"));
                };
                let owners = central_owners(euid);
                let dir = ensure_central_dir(parent, &owners, 0)?;
                Ok(TargetDir {
                    dir,
                    name: name.to_os_string(),
                    path: path.clone(),
                    owner: euid,
                    _identity: None,
                })
            }
            SecretLocation::Home { home, rel } => {
                let full = loc.display_path();
                let identity = super::secret::act_as_user(
                    user,
                    euid,
                    &full,
                    "write another user's secret without root",
                )?;
                let parts = normal_parts(rel);
                let Some((name, dirs)) = parts.split_last() else {
                    return Err(Error::unsafe_file(&full, "no file name"));
                };
                let mut current = open_home_dir(home, user.uid)?;
                let mut so_far = home.clone();
                for part in dirs {
                    let step = [*part];
                    let base = current.try_clone().map_err(|e| {
                        Error::io(
                            &so_far,
                            "dup",
                            Errno::from_io_error(&e).unwrap_or(Errno::IO),
                        )
                    })?;
                    current = match walk_below(base, &so_far, &step, user.uid) {
                        Ok((fd, _)) => fd,
                        Err(Error::Missing(_)) => {
                            make_dir(&current, part, &so_far.join(part))?;
                            walk_below(current, &so_far, &step, user.uid)?.0
                        }
                        Err(e) => return Err(e),
                    };
                    so_far.push(part);
                }
                Ok(TargetDir {
                    dir: current,
                    name: name.to_os_string(),
                    path: full,
                    owner: user.uid,
                    _identity: identity,
                })
            }
        }
    }

    /// The full path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether something is at the file's name; a symlink or anything but a regular file
    /// there is an error (it is never followed or replaced).
    pub fn exists(&self) -> Result<bool, Error> {
        match statat(&self.dir, &self.name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let (mode, _, _, _) = stat_fields(&st);
                match FileType::from_raw_mode(mode) {
                    FileType::RegularFile => Ok(true),
                    FileType::Symlink => Err(Error::unsafe_file(
                        &self.path,
                        "is a symlink; refusing to write through or over it",
                    )),
                    _ => Err(Error::unsafe_file(&self.path, "not a regular file")),
                }
            }
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(Error::io(&self.path, "stat", e)),
        }
    }

    /// Writes `contents` atomically as the file (0600, owned as described in [`open`]):
    /// the old file or the complete new one is there at every instant, never a partial one.
    /// Without `replace`, an existing file is an error, also one that appears meanwhile.
    ///
    /// [`open`]: TargetDir::open
    pub fn write(&self, contents: &[u8], replace: bool) -> Result<(), WriteError> {
        if self.exists()? && !replace {
            return Err(WriteError::Exists(self.path.clone()));
        }
        self.remove_stale_temps();
        let tmp = self.temp_name()?;
        let tmp_path = self.path.with_file_name(&tmp);
        // O_EXCL: a file or symlink planted at the name is never opened or followed.
        let fd = openat(
            &self.dir,
            &tmp,
            OFlags::WRONLY
                | OFlags::CREATE
                | OFlags::EXCL
                | OFlags::NOFOLLOW
                | OFlags::NOCTTY
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| Error::io(&tmp_path, "create temp file", e))?;
        let result = self.fill_and_rename(fd, &tmp, &tmp_path, contents, replace);
        if result.is_err() {
            let _ = unlinkat(&self.dir, &tmp, AtFlags::empty());
        }
        result
    }

    fn fill_and_rename(
        &self,
        fd: OwnedFd,
        tmp: &OsStr,
        tmp_path: &Path,
        contents: &[u8],
        replace: bool,
    ) -> Result<(), WriteError> {
        // umask is process-wide: set the mode on the fd instead.
        fchmod(&fd, Mode::from_raw_mode(0o600)).map_err(|e| Error::io(tmp_path, "fchmod", e))?;
        let st = fstat(&fd).map_err(|e| Error::io(tmp_path, "fstat", e))?;
        check_file(
            &st,
            tmp_path,
            FileRules {
                owner: self.owner,
                forbidden_mode: 0o077,
            },
        )?;
        let mut rest = contents;
        while !rest.is_empty() {
            match rustix::io::write(&fd, rest) {
                Ok(0) => return Err(Error::io(tmp_path, "write", Errno::NOSPC).into()),
                Ok(n) => rest = rest.get(n..).unwrap_or(&[]),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(Error::io(tmp_path, "write", e).into()),
            }
        }
        fsync(&fd).map_err(|e| Error::io(tmp_path, "fsync", e))?;
        drop(fd);
        let renamed = if replace {
            renameat(&self.dir, tmp, &self.dir, &self.name)
        } else {
            // NOREPLACE: a file that appeared since the check is not clobbered.
            renameat_with(
                &self.dir,
                tmp,
                &self.dir,
                &self.name,
                RenameFlags::NOREPLACE,
            )
        };
        match renamed {
            Ok(()) => {}
            Err(Errno::EXIST) => return Err(WriteError::Exists(self.path.clone())),
            Err(e) => return Err(Error::io(&self.path, "rename", e).into()),
        }
        let dir_path = self.path.parent().unwrap_or(Path::new("/"));
        fsync(&self.dir).map_err(|e| Error::io(dir_path, "fsync directory", e))?;
        Ok(())
    }

    /// `.<name>.<16 hex>.tmp`, random so a stale temp file never blocks a later write.
    fn temp_name(&self) -> Result<OsString, Error> {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).map_err(|_| Error::io(&self.path, "getrandom", Errno::IO))?;
        let mut name = OsString::from(".");
        name.push(&self.name);
        name.push(format!(".{:016x}.tmp", u64::from_be_bytes(r)));
        Ok(name)
    }

    /// Removes our own temp files (`.<name>.<16 hex>.tmp`, regular, owned by the writer)
    /// left by a writer killed with SIGKILL more than ten minutes ago. Best effort.
    fn remove_stale_temps(&self) {
        let Ok(mut dir) = rustix::fs::Dir::read_from(&self.dir) else {
            return;
        };
        let mut prefix = b".".to_vec();
        prefix.extend_from_slice(self.name.as_bytes());
        prefix.push(b'.');
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let mut stale = Vec::new();
        while let Some(Ok(entry)) = dir.read() {
            let n = entry.file_name().to_bytes();
            let Some(mid) = n
                .strip_prefix(prefix.as_slice())
                .and_then(|m| m.strip_suffix(b".tmp"))
            else {
                continue;
            };
            if mid.len() == 16 && mid.iter().all(u8::is_ascii_hexdigit) {
                stale.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        for name in stale {
            let Ok(st) = statat(&self.dir, &name, AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            let (mode, uid, _, _) = stat_fields(&st);
            if FileType::from_raw_mode(mode) == FileType::RegularFile
                && uid == self.owner
                && st.st_mtime.saturating_add(STALE_TEMP_SECS) < now
            {
                let _ = unlinkat(&self.dir, &name, AtFlags::empty());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Passwd {
        crate::sys::getpwuid(crate::sys::geteuid()).unwrap()
    }

    fn scratch_dir() -> tempfile::TempDir {
        // Under the target dir when the module's own walk accepts its path (every component
        // root- or user-owned, not group/other-writable); a checkout below /tmp or /var/tmp
        // does not qualify, and root then uses /run/pam-totp-tests.
        let euid = crate::sys::geteuid();
        let owners = [0, euid];
        let mut base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
        if crate::store::open_central_dir(&base, &owners).is_err() && euid == 0 {
            base = PathBuf::from("/run/pam-totp-tests");
            std::fs::create_dir_all(&base).unwrap();
        }
        tempfile::Builder::new()
            .prefix("write-test")
            .tempdir_in(base)
            .unwrap()
    }

    #[test]
    fn a_new_file_is_written_0600_and_an_existing_one_needs_replace() {
        let d = scratch_dir();
        let path = d.path().join("sub/dir/secret");
        let loc = SecretLocation::Central(path.clone());
        let t = TargetDir::open(&loc, &me(), crate::sys::geteuid()).unwrap();
        assert!(!t.exists().unwrap());
        t.write(b"one", false).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        let dmeta = std::fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!(dmeta.permissions().mode() & 0o7777, 0o700);
        assert!(matches!(t.write(b"two", false), Err(WriteError::Exists(_))));
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        t.write(b"two", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("secret")]);
    }

    #[test]
    fn a_symlink_at_the_target_is_refused_even_with_replace() {
        let d = scratch_dir();
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let path = d.path().join("secret");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let t = TargetDir::open(
            &SecretLocation::Central(path.clone()),
            &me(),
            crate::sys::geteuid(),
        )
        .unwrap();
        let err = t.write(b"x", true).unwrap_err();
        assert!(err.to_string().contains("is a symlink"), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }
}
