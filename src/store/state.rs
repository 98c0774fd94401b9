//! Per-uid state in a root-owned directory (SECURITY.md W1–W5): the replay watermark, the
//! HOTP counter, used scratch codes and failure times.
//!
//! The file holds two fixed-size checksummed slots (A/B). An update is written with
//! `pwrite` into the slot not holding the current state, then `fdatasync`: a crash at any
//! point leaves the old slot intact, so the old or the new state parses, never a torn one.
//! One sync per login, no temp file, no new blocks (a full disk does not stop logins once
//! the file exists). The file is created once per uid by temp file + fsync + rename + fsync
//! of the directory. Every change happens under an exclusive `flock` on `<uid>.lock`.

use rustix::fs::{
    fchmod, fdatasync, flock, fstat, fsync, openat, renameat, FlockOperation, Mode, OFlags,
};
use rustix::io::Errno;
use sha2::{Digest, Sha256};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::safe::{check_file, open_central_dir, read_up_to, FileRules};
use super::secret::central_owners;
use super::Error;
use crate::otp::limit::MAX_TRACKED_FAILURES;

/// How long a login waits for another login of the same uid (SECURITY.md W2).
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// First and longest pause between lock attempts: short at first (another login of the same
/// uid holds the lock for about one fdatasync), backing off to 20 ms.
const LOCK_POLL_FIRST: Duration = Duration::from_micros(200);
const LOCK_POLL_MAX: Duration = Duration::from_millis(20);

const SLOT_SIZE: usize = 4096;
/// The exact size of a state file: two slots.
pub const STATE_FILE_SIZE: usize = 2 * SLOT_SIZE;
const MAGIC: &[u8; 8] = b"PTOTPST1";
const HEADER: usize = 8 + 8 + 4;
const SUM: usize = 32;
const PAYLOAD_VERSION: u8 = 1;
const MAX_USED_SCRATCH: usize = 128;

/// What is remembered about a uid between logins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// The secret id the watermark, counter and used scratch codes belong to.
    pub secret_id: String,
    /// TOTP: the last accepted time step (the replay watermark).
    pub last_step: Option<u64>,
    /// HOTP: the next expected counter.
    pub next_counter: Option<u64>,
    /// Ids of scratch codes already used.
    pub used_scratch: Vec<u64>,
    /// Unix time of the last success.
    pub last_success: Option<u64>,
    /// Failures before this time do not count in the short window (set by a success).
    pub short_reset: u64,
    /// Unix times of recent failures, oldest first, at most 64.
    pub failures: Vec<u64>,
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.data.get(self.at..end)?;
        self.at = end;
        Some(out)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn opt_u64(&mut self) -> Option<Option<u64>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.u64()?)),
            _ => None,
        }
    }
}

fn put_opt(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        None => out.push(0),
        Some(x) => {
            out.push(1);
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
}

impl State {
    /// The payload bytes of a slot.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.push(PAYLOAD_VERSION);
        let id = self.secret_id.as_bytes();
        let id = id.get(..id.len().min(64)).unwrap_or(&[]);
        out.push(u8::try_from(id.len()).unwrap_or(0));
        out.extend_from_slice(id);
        put_opt(&mut out, self.last_step);
        put_opt(&mut out, self.next_counter);
        put_opt(&mut out, self.last_success);
        out.extend_from_slice(&self.short_reset.to_le_bytes());
        let used = self
            .used_scratch
            .get(..self.used_scratch.len().min(MAX_USED_SCRATCH))
            .unwrap_or(&[]);
        out.push(u8::try_from(used.len()).unwrap_or(0));
        for u in used {
            out.extend_from_slice(&u.to_le_bytes());
        }
        let skip = self.failures.len().saturating_sub(MAX_TRACKED_FAILURES);
        let fails = self.failures.get(skip..).unwrap_or(&[]);
        out.push(u8::try_from(fails.len()).unwrap_or(0));
        for f in fails {
            out.extend_from_slice(&f.to_le_bytes());
        }
        out
    }

    /// Parses a slot payload; `None` when anything is out of place.
    fn decode(data: &[u8]) -> Option<State> {
        let mut r = Reader { data, at: 0 };
        if r.u8()? != PAYLOAD_VERSION {
            return None;
        }
        let id_len = usize::from(r.u8()?);
        if id_len > 64 {
            return None;
        }
        let secret_id = String::from_utf8(r.take(id_len)?.to_vec()).ok()?;
        let last_step = r.opt_u64()?;
        let next_counter = r.opt_u64()?;
        let last_success = r.opt_u64()?;
        let short_reset = r.u64()?;
        let n_used = usize::from(r.u8()?);
        if n_used > MAX_USED_SCRATCH {
            return None;
        }
        let mut used_scratch = Vec::with_capacity(n_used);
        for _ in 0..n_used {
            used_scratch.push(r.u64()?);
        }
        let n_fail = usize::from(r.u8()?);
        if n_fail > MAX_TRACKED_FAILURES {
            return None;
        }
        let mut failures = Vec::with_capacity(n_fail);
        for _ in 0..n_fail {
            failures.push(r.u64()?);
        }
        if r.at != data.len() || failures.windows(2).any(|w| matches!(w, [a, b] if a > b)) {
            return None;
        }
        Some(State {
            secret_id,
            last_step,
            next_counter,
            used_scratch,
            last_success,
            short_reset,
            failures,
        })
    }
}

/// Builds one slot: magic, sequence number, payload length, payload, SHA-256, zero fill.
fn encode_slot(seq: u64, state: &State) -> Option<Vec<u8>> {
    let payload = state.encode();
    let len = payload.len();
    let total = HEADER.checked_add(len)?.checked_add(SUM)?;
    if total > SLOT_SIZE {
        return None;
    }
    let mut record = Vec::with_capacity(total);
    record.extend_from_slice(MAGIC);
    record.extend_from_slice(&seq.to_le_bytes());
    record.extend_from_slice(&u32::try_from(len).ok()?.to_le_bytes());
    record.extend_from_slice(&payload);
    let sum = Sha256::digest(&record);
    record.extend_from_slice(&sum);
    Some(record)
}

/// How many bytes of a slot are read at first: every record we write fits; a longer one
/// (a state near its size limits) is read again in full.
const SLOT_READ: usize = 512;

/// Reads and decodes slot `index` of an open state file (`None` when it holds no valid
/// record). Only the record's own bytes are read, not the whole 4 KiB slot.
fn read_slot(fd: &OwnedFd, index: usize) -> Result<Option<(u64, State)>, Errno> {
    let offset = (index * SLOT_SIZE) as u64;
    let mut head = [0u8; SLOT_READ];
    let n = read_up_to(fd, &mut head, offset)?;
    let Some(len) = head
        .get(16..20)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .and_then(|b| usize::try_from(u32::from_le_bytes(b)).ok())
    else {
        return Ok(None);
    };
    let Some(total) = HEADER
        .checked_add(len)
        .and_then(|t| t.checked_add(SUM))
        .filter(|&t| t <= SLOT_SIZE)
    else {
        return Ok(None);
    };
    if total <= n {
        return Ok(head.get(..total).and_then(decode_slot));
    }
    let mut full = vec![0u8; total];
    let n = read_up_to(fd, &mut full, offset)?;
    Ok(full.get(..n).and_then(decode_slot))
}

/// Parses one slot: `(seq, state)` when the magic and checksum hold.
fn decode_slot(slot: &[u8]) -> Option<(u64, State)> {
    let magic = slot.get(..8)?;
    if magic != MAGIC {
        return None;
    }
    let seq = u64::from_le_bytes(slot.get(8..16)?.try_into().ok()?);
    let len = usize::try_from(u32::from_le_bytes(slot.get(16..20)?.try_into().ok()?)).ok()?;
    let body_end = HEADER.checked_add(len)?;
    let body = slot.get(..body_end)?;
    let sum = slot.get(body_end..body_end.checked_add(SUM)?)?;
    if Sha256::digest(body).as_slice() != sum {
        return None;
    }
    Some((seq, State::decode(slot.get(HEADER..body_end)?)?))
}

/// The current state of a file's bytes: the valid slot with the higher sequence number.
/// `Err` when the size is wrong or neither slot is valid.
pub fn decode_state_file(bytes: &[u8]) -> Result<(usize, u64, State), &'static str> {
    if bytes.len() != STATE_FILE_SIZE {
        return Err("wrong size");
    }
    pick_slot(
        bytes.get(..SLOT_SIZE).and_then(decode_slot),
        bytes.get(SLOT_SIZE..).and_then(decode_slot),
    )
}

/// The valid slot with the higher sequence number.
fn pick_slot(
    a: Option<(u64, State)>,
    b: Option<(u64, State)>,
) -> Result<(usize, u64, State), &'static str> {
    match (a, b) {
        (Some((sa, a)), Some((sb, _))) if sa >= sb => Ok((0, sa, a)),
        (_, Some((sb, b))) => Ok((1, sb, b)),
        (Some((sa, a)), None) => Ok((0, sa, a)),
        (None, None) => Err("no valid record (checksum mismatch)"),
    }
}

/// The verified, root-owned state directory.
#[derive(Debug)]
pub struct StateDir {
    fd: OwnedFd,
    path: PathBuf,
    owner: u32,
}

/// The state of one uid, held under its exclusive lock until dropped.
#[derive(Debug)]
pub struct Locked<'a> {
    dir: &'a StateDir,
    uid: u32,
    _lock: OwnedFd,
    file: Option<OwnedFd>,
    current_slot: usize,
    seq: u64,
    /// The state as read under the lock.
    pub state: State,
}

impl StateDir {
    /// Opens the state directory with the central rules, creating its last component
    /// (mode 0700) when `create` and the parent is verified.
    pub fn open(path: &Path, create: bool) -> Result<StateDir, Error> {
        let euid = crate::sys::geteuid();
        let owners = central_owners(euid);
        let fd = match open_central_dir(path, &owners) {
            Err(Error::Missing(_)) if create => {
                let parent = path
                    .parent()
                    .ok_or_else(|| Error::Missing(path.to_path_buf()))?;
                let name = path
                    .file_name()
                    .ok_or_else(|| Error::Missing(path.to_path_buf()))?;
                let pfd = open_central_dir(parent, &owners)?;
                match rustix::fs::mkdirat(&pfd, name, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(Error::io(path, "create directory", e)),
                }
                let _ = fsync(&pfd);
                open_central_dir(path, &owners)?
            }
            other => other?,
        };
        Ok(StateDir {
            fd,
            path: path.to_path_buf(),
            owner: euid,
        })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rules(&self) -> FileRules {
        FileRules {
            owner: self.owner,
            forbidden_mode: 0o077,
        }
    }

    fn state_name(uid: u32) -> String {
        format!("{uid}.state")
    }

    /// Opens and reads `<uid>.state` (`None` when it does not exist yet).
    fn read(&self, uid: u32, write: bool) -> Result<Option<(OwnedFd, usize, u64, State)>, Error> {
        let name = Self::state_name(uid);
        let path = self.path.join(&name);
        let access = if write { OFlags::RDWR } else { OFlags::RDONLY };
        let fd = match openat(
            &self.fd,
            name.as_str(),
            access | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => return Err(Error::unsafe_file(&path, "is a symlink")),
            Err(Errno::NXIO) => return Err(Error::unsafe_file(&path, "not a regular file")),
            Err(e) => return Err(Error::io(&path, "open", e)),
        };
        let st = fstat(&fd).map_err(|e| Error::io(&path, "fstat", e))?;
        check_file(&st, &path, self.rules())?;
        if super::safe::stat_fields(&st).3 != STATE_FILE_SIZE as u64 {
            return Err(Error::garbled(&path, "wrong size"));
        }
        let a = read_slot(&fd, 0).map_err(|e| Error::io(&path, "read", e))?;
        let b = read_slot(&fd, 1).map_err(|e| Error::io(&path, "read", e))?;
        let (slot, seq, state) = pick_slot(a, b).map_err(|why| Error::garbled(&path, why))?;
        Ok(Some((fd, slot, seq, state)))
    }

    /// Reads the state without the lock (for the rate-limit check before prompting). The
    /// A/B slots make an unlocked read see the old or the new record, never a mix.
    pub fn peek(&self, uid: u32) -> Result<State, Error> {
        Ok(self
            .read(uid, false)?
            .map(|(_, _, _, s)| s)
            .unwrap_or_default())
    }

    /// Takes the exclusive lock of `uid` (bounded by [`LOCK_TIMEOUT`]) and reads the state
    /// under it.
    pub fn lock(&self, uid: u32) -> Result<Locked<'_>, Error> {
        let name = format!("{uid}.lock");
        let path = self.path.join(&name);
        // The lock file is persistent and never unlinked (unlinking breaks flock).
        let lock = openat(
            &self.fd,
            name.as_str(),
            OFlags::RDWR
                | OFlags::CREATE
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::NOCTTY
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| match e {
            Errno::LOOP => Error::unsafe_file(&path, "is a symlink"),
            Errno::NXIO => Error::unsafe_file(&path, "not a regular file"),
            e => Error::io(&path, "open lock", e),
        })?;
        let st = fstat(&lock).map_err(|e| Error::io(&path, "fstat", e))?;
        check_file(&st, &path, self.rules())?;
        let start = Instant::now();
        let mut pause = LOCK_POLL_FIRST;
        loop {
            match flock(&lock, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(Errno::WOULDBLOCK) | Err(Errno::INTR) => {
                    if start.elapsed() >= LOCK_TIMEOUT {
                        return Err(Error::LockTimeout(path));
                    }
                    std::thread::sleep(pause);
                    pause = pause.saturating_mul(2).min(LOCK_POLL_MAX);
                }
                Err(e) => return Err(Error::io(&path, "flock", e)),
            }
        }
        let (file, current_slot, seq, state) = match self.read(uid, true)? {
            Some((fd, slot, seq, state)) => (Some(fd), slot, seq, state),
            None => (None, 1, 0, State::default()),
        };
        Ok(Locked {
            dir: self,
            uid,
            _lock: lock,
            file,
            current_slot,
            seq,
            state,
        })
    }
}

#[cfg(feature = "fault-injection")]
fn fault(point: &str) {
    // Test-only crash points: PAM_TOTP_CRASH_AT=<point> kills the process right there.
    if std::env::var("PAM_TOTP_CRASH_AT").as_deref() == Ok(point) {
        std::process::abort();
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
fn fault(_point: &str) {}

impl Locked<'_> {
    /// Makes `new` the durable state: returns only once it would survive a power cut.
    pub fn save(&mut self, new: &State) -> Result<(), Error> {
        let path = self.dir.path.join(StateDir::state_name(self.uid));
        let seq = self.seq.saturating_add(1);
        let record =
            encode_slot(seq, new).ok_or_else(|| Error::garbled(&path, "state too large"))?;
        match &self.file {
            Some(fd) => {
                let target = 1usize.saturating_sub(self.current_slot);
                let offset = (target * SLOT_SIZE) as u64;
                // Only the record is written; bytes after it in the slot are never read.
                write_all_at(fd, &record, offset).map_err(|e| Error::io(&path, "write", e))?;
                fault("after-pwrite");
                fdatasync(fd).map_err(|e| Error::io(&path, "fdatasync", e))?;
                self.current_slot = target;
            }
            None => {
                let fd = self.create(&record, &path)?;
                self.file = Some(fd);
                self.current_slot = 0;
            }
        }
        self.seq = seq;
        self.state = new.clone();
        Ok(())
    }

    /// First write for a uid: temp file + fsync + rename + fsync of the directory. The temp
    /// name is fixed per uid: the directory is root's alone and we hold the lock, so nobody
    /// else can race or plant it, and a temp file left by a crash is simply reused.
    fn create(&self, record: &[u8], path: &Path) -> Result<OwnedFd, Error> {
        let dirfd = &self.dir.fd;
        let tmp = format!(".{}.state.tmp", self.uid);
        let tmp_path = self.dir.path.join(&tmp);
        let fd = openat(
            dirfd,
            tmp.as_str(),
            OFlags::RDWR
                | OFlags::CREATE
                | OFlags::TRUNC
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::NOCTTY
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| Error::io(&tmp_path, "create", e))?;
        let cleanup = |err: Error| {
            let _ = rustix::fs::unlinkat(dirfd, tmp.as_str(), rustix::fs::AtFlags::empty());
            err
        };
        // umask is process-wide and belongs to the host: set the mode on the fd instead.
        fchmod(&fd, Mode::from_raw_mode(0o600))
            .map_err(|e| cleanup(Error::io(&tmp_path, "fchmod", e)))?;
        let st = fstat(&fd).map_err(|e| cleanup(Error::io(&tmp_path, "fstat", e)))?;
        check_file(&st, &tmp_path, self.dir.rules()).map_err(cleanup)?;
        let mut whole = vec![0u8; STATE_FILE_SIZE];
        if let Some(first) = whole.get_mut(..record.len()) {
            first.copy_from_slice(record);
        }
        write_all_at(&fd, &whole, 0).map_err(|e| cleanup(Error::io(&tmp_path, "write", e)))?;
        fault("after-create-write");
        fsync(&fd).map_err(|e| cleanup(Error::io(&tmp_path, "fsync", e)))?;
        fault("after-create-fsync");
        renameat(
            dirfd,
            tmp.as_str(),
            dirfd,
            StateDir::state_name(self.uid).as_str(),
        )
        .map_err(|e| cleanup(Error::io(path, "rename", e)))?;
        fault("after-rename");
        fsync(dirfd).map_err(|e| Error::io(&self.dir.path, "fsync directory", e))?;
        Ok(fd)
    }
}

fn write_all_at(fd: impl AsFd, mut buf: &[u8], mut offset: u64) -> Result<(), Errno> {
    while !buf.is_empty() {
        match rustix::io::pwrite(&fd, buf, offset) {
            Ok(0) => return Err(Errno::NOSPC),
            Ok(n) => {
                buf = buf.get(n..).unwrap_or(&[]);
                offset = offset.saturating_add(n as u64);
            }
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        State {
            secret_id: "abc".into(),
            last_step: Some(55_000_000),
            next_counter: None,
            used_scratch: vec![1, 2],
            last_success: Some(1_700_000_000),
            short_reset: 1_700_000_000,
            failures: vec![1, 5, 9],
        }
    }

    #[test]
    fn a_slot_round_trips() {
        let slot = encode_slot(7, &sample()).unwrap();
        assert_eq!(decode_slot(&slot), Some((7, sample())));
    }

    #[test]
    fn the_newer_valid_slot_wins_and_a_torn_slot_falls_back_to_the_other() {
        let mut file = vec![0u8; STATE_FILE_SIZE];
        let a = encode_slot(1, &State::default()).unwrap();
        let b = encode_slot(2, &sample()).unwrap();
        file[..a.len()].copy_from_slice(&a);
        file[SLOT_SIZE..SLOT_SIZE + b.len()].copy_from_slice(&b);
        assert_eq!(decode_state_file(&file).unwrap().2, sample());
        // Tear the newer slot in the middle of its payload.
        file[SLOT_SIZE + 30] ^= 0xff;
        assert_eq!(decode_state_file(&file).unwrap().2, State::default());
        file[10] ^= 0xff;
        assert!(decode_state_file(&file).is_err());
        assert!(decode_state_file(&file[..100]).is_err());
    }

    #[test]
    fn payloads_with_trailing_or_missing_bytes_are_rejected() {
        let p = sample().encode();
        assert!(State::decode(&p[..p.len() - 1]).is_none());
        let mut longer = p.clone();
        longer.push(0);
        assert!(State::decode(&longer).is_none());
    }
}
