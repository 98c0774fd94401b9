//! Opening directories and files without following links an attacker could plant, and
//! checking the fd (not the path) before trusting a byte (SECURITY.md R3, R5).

use rustix::fs::{fstat, openat, FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use zeroize::Zeroizing;

use super::Error;

/// The largest secret or config file read (SPEC §5).
pub const MAX_FILE_SIZE: usize = 64 * 1024;

/// `st_mode`/`st_uid`/`st_nlink`/`st_size` have per-architecture types; normalise them.
#[allow(clippy::unnecessary_cast, clippy::cast_sign_loss)]
pub(crate) fn stat_fields(st: &Stat) -> (u32, u32, u64, u64) {
    (
        st.st_mode as u32,
        st.st_uid as u32,
        st.st_nlink as u64,
        st.st_size.max(0) as u64,
    )
}

fn dir_flags(follow: bool, last: bool) -> OFlags {
    let mut f = OFlags::DIRECTORY | OFlags::CLOEXEC;
    if !follow {
        f |= OFlags::NOFOLLOW;
    }
    // Intermediate components need only O_PATH; the last one is also used for openat of
    // files, fsync and readdir, which O_PATH fds cannot do.
    if last {
        f | OFlags::RDONLY
    } else {
        f | OFlags::PATH
    }
}

fn check_dir(fd: &OwnedFd, path: &Path, owners: &[u32]) -> Result<(), Error> {
    let st = fstat(fd).map_err(|e| Error::io(path, "fstat", e))?;
    let (mode, uid, _, _) = stat_fields(&st);
    if FileType::from_raw_mode(mode) != FileType::Directory {
        return Err(Error::unsafe_file(path, "not a directory"));
    }
    if !owners.contains(&uid) {
        return Err(Error::unsafe_file(
            path,
            format!(
                "directory owned by uid {uid}, expected {}",
                owners_text(owners)
            ),
        ));
    }
    if mode & 0o022 != 0 {
        return Err(Error::unsafe_file(
            path,
            format!(
                "directory mode {:04o} is group/other-writable",
                mode & 0o7777
            ),
        ));
    }
    Ok(())
}

fn owners_text(owners: &[u32]) -> String {
    let names: Vec<String> = owners.iter().map(|o| o.to_string()).collect();
    names.join(" or ")
}

fn walk_error(path: &Path, e: Errno, below_trusted: bool) -> Error {
    match e {
        Errno::NOENT => Error::Missing(path.to_path_buf()),
        Errno::LOOP if below_trusted => Error::unsafe_file(path, "is a symlink"),
        Errno::NOTDIR => Error::unsafe_file(path, "not a directory (or a symlink)"),
        Errno::ACCESS => Error::unsafe_file(path, "permission denied"),
        _ => Error::io(path, "open directory", e),
    }
}

/// Opens an absolute directory from `/`, one component at a time with `O_NOFOLLOW`; every
/// directory, `/` included, must be owned by one of `owners` and not group/other-writable.
/// This is the central layout's rule (SECURITY.md R3).
pub fn open_central_dir(path: &Path, owners: &[u32]) -> Result<OwnedFd, Error> {
    walk(path, owners, false)
}

/// Opens the user's home directory: symlinks on the way are followed (root controls them,
/// `/home -> /data/home` is common), but every directory reached must be owned by root or
/// the user and not group/other-writable, as OpenSSH's StrictModes demands.
pub fn open_home_dir(home: &Path, uid: u32) -> Result<OwnedFd, Error> {
    walk(home, &[0, uid], true)
}

fn walk(path: &Path, owners: &[u32], follow: bool) -> Result<OwnedFd, Error> {
    if !path.is_absolute() {
        return Err(Error::unsafe_file(path, "not an absolute path"));
    }
    let parts: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(Ok(s)),
            Component::RootDir | Component::CurDir => None,
            Component::ParentDir | Component::Prefix(_) => Some(Err(())),
        })
        .collect::<Result<_, ()>>()
        .map_err(|()| Error::unsafe_file(path, "path contains '..'"))?;
    let root = openat(CWD, "/", dir_flags(false, parts.is_empty()), Mode::empty())
        .map_err(|e| walk_error(Path::new("/"), e, false))?;
    check_dir(&root, Path::new("/"), owners)?;
    let mut current = root;
    let mut so_far = PathBuf::from("/");
    let count = parts.len();
    for (i, part) in parts.into_iter().enumerate() {
        so_far.push(part);
        let last = i.saturating_add(1) == count;
        let next = openat(&current, part, dir_flags(follow, last), Mode::empty())
            .map_err(|e| walk_error(&so_far, e, true))?;
        check_dir(&next, &so_far, owners)?;
        current = next;
    }
    Ok(current)
}

/// Opens directories below an already verified one (`~/.config/pam-totp`), each with
/// `O_NOFOLLOW`, owned by `owner` and not group/other-writable. `ELOOP`/`ENOTDIR` are attacks.
pub fn walk_below(
    base: OwnedFd,
    base_path: &Path,
    rel_dirs: &[&std::ffi::OsStr],
    owner: u32,
) -> Result<(OwnedFd, PathBuf), Error> {
    let mut current = base;
    let mut so_far = base_path.to_path_buf();
    let count = rel_dirs.len();
    for (i, part) in rel_dirs.iter().enumerate() {
        so_far.push(part);
        let last = i.saturating_add(1) == count;
        let next = openat(&current, *part, dir_flags(false, last), Mode::empty())
            .map_err(|e| walk_error(&so_far, e, true))?;
        check_dir(&next, &so_far, &[owner])?;
        current = next;
    }
    Ok((current, so_far))
}

/// What a file must look like once open (SECURITY.md R5).
#[derive(Debug, Clone, Copy)]
pub struct FileRules {
    /// The only acceptable owner.
    pub owner: u32,
    /// Mode bits that must be clear (0o077 for secrets and state, 0o022 for config).
    pub forbidden_mode: u32,
}

/// A file read through [`read_file_at`]: its bytes (wiped on drop) and its fstat.
pub struct Opened {
    /// The content, at most [`MAX_FILE_SIZE`] bytes.
    pub bytes: Zeroizing<Vec<u8>>,
    /// Modification time in seconds.
    pub mtime: i64,
}

/// Opens `name` in `dir` with `O_NOFOLLOW|O_NONBLOCK|O_NOCTTY|O_CLOEXEC`, checks the fd
/// (regular, owner, mode, one link, size) and reads it in a loop, at most cap+1 bytes.
pub fn read_file_at(
    dir: impl AsFd,
    name: &std::ffi::OsStr,
    path: &Path,
    rules: FileRules,
) -> Result<Opened, Error> {
    // O_NONBLOCK: a FIFO planted here must not hang sshd. O_NOCTTY: a tty must not become
    // our controlling terminal.
    let fd = openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOENT => Error::NotFound(path.to_path_buf()),
        Errno::LOOP => Error::unsafe_file(path, "is a symlink"),
        Errno::ACCESS => {
            Error::unsafe_file(path, "cannot be opened as its owner (permission denied)")
        }
        Errno::NXIO | Errno::AGAIN => Error::unsafe_file(path, "not a regular file"),
        _ => Error::io(path, "open", e),
    })?;
    let st = fstat(&fd).map_err(|e| Error::io(path, "fstat", e))?;
    check_file(&st, path, rules)?;
    // Sized from fstat (a few hundred bytes for a secret), not the 64 KiB cap: zeroing and
    // wiping a cap-sized buffer on every read was most of a login's instructions. The file
    // may grow after fstat, so a full buffer is grown to the cap and read on.
    let (_, _, _, size) = stat_fields(&st);
    let first = usize::try_from(size)
        .unwrap_or(MAX_FILE_SIZE)
        .min(MAX_FILE_SIZE);
    let mut bytes = Zeroizing::new(vec![0u8; first.saturating_add(1)]);
    let mut filled = read_up_to(&fd, &mut bytes, 0).map_err(|e| Error::io(path, "read", e))?;
    if filled == bytes.len() && filled <= MAX_FILE_SIZE {
        let mut bigger = Zeroizing::new(vec![0u8; MAX_FILE_SIZE.saturating_add(1)]);
        if let (Some(dst), Some(src)) = (bigger.get_mut(..filled), bytes.get(..filled)) {
            dst.copy_from_slice(src);
        }
        let rest = bigger.get_mut(filled..).unwrap_or(&mut []);
        let more = read_up_to(&fd, rest, filled as u64).map_err(|e| Error::io(path, "read", e))?;
        filled = filled.saturating_add(more);
        bytes = bigger;
    }
    if filled > MAX_FILE_SIZE {
        return Err(Error::unsafe_file(path, "larger than 64 KiB"));
    }
    bytes.truncate(filled);
    Ok(Opened {
        bytes,
        mtime: st.st_mtime,
    })
}

/// Fills `buf` from `offset` with `pread`, looping on short reads and `EINTR`; returns how
/// many bytes were read (less than `buf.len()` at end of file). The file is never trusted to
/// stay the size `fstat` said.
pub(crate) fn read_up_to(fd: impl AsFd, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
    let mut filled = 0usize;
    while let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
        match rustix::io::pread(&fd, rest, offset.saturating_add(filled as u64)) {
            Ok(0) => break,
            Ok(n) => filled = filled.saturating_add(n),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The fd checks of SECURITY.md R5.
pub(crate) fn check_file(st: &Stat, path: &Path, rules: FileRules) -> Result<(), Error> {
    let (mode, uid, nlink, size) = stat_fields(st);
    if FileType::from_raw_mode(mode) != FileType::RegularFile {
        return Err(Error::unsafe_file(path, "not a regular file"));
    }
    if uid != rules.owner {
        return Err(Error::unsafe_file(
            path,
            format!("owned by uid {uid}, expected {}", rules.owner),
        ));
    }
    if mode & rules.forbidden_mode != 0 || mode & 0o7000 != 0 {
        return Err(Error::unsafe_file(
            path,
            format!(
                "mode {:04o}, expected no bits of {:04o} and no setuid/setgid/sticky",
                mode & 0o7777,
                rules.forbidden_mode
            ),
        ));
    }
    if nlink != 1 {
        return Err(Error::unsafe_file(
            path,
            format!("has {nlink} hard links, expected 1"),
        ));
    }
    if size > MAX_FILE_SIZE as u64 {
        return Err(Error::unsafe_file(path, "larger than 64 KiB"));
    }
    Ok(())
}
