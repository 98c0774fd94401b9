//! The few libc calls no safe crate covers: the per-thread filesystem identity
//! (`setfsuid`/`setfsgid`, SECURITY.md R4) and re-entrant user lookup (`getpwnam_r`, R1).

use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// A user as the password database describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    /// `pw_name` as NSS returned it (may differ in case from what was typed).
    pub name: Vec<u8>,
    /// `pw_uid`: every file and counter is keyed by it.
    pub uid: u32,
    /// `pw_gid`.
    pub gid: u32,
    /// `pw_dir`, required to be absolute.
    pub dir: PathBuf,
}

/// Why a user lookup gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// NSS answered: no such user.
    NotFound,
    /// NSS failed (sssd down, LDAP unreachable, …): fail closed, never "not found".
    Failed(i32),
}

/// Runs a re-entrant password-database lookup (`getpwnam_r`/`getpwuid_r` shape), growing the
/// buffer on `ERANGE` up to 1 MiB, and copies the entry out.
///
/// # Safety
/// `call` must be one of those functions applied to its key, writing only into the given
/// `passwd`, buffer (of the given length) and result pointer.
unsafe fn lookup(
    call: impl Fn(*mut libc::passwd, *mut libc::c_char, usize, *mut *mut libc::passwd) -> i32,
) -> Result<Passwd, LookupError> {
    let mut size = 1024usize;
    loop {
        let mut buf = vec![0u8; size];
        // SAFETY: zeroed `passwd` is a valid value for a plain C struct of pointers and ints.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = call(&mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result);
        if rc == libc::ERANGE && size < (1 << 20) {
            size = size.saturating_mul(2);
            continue;
        }
        if rc != 0 {
            // glibc reports "no such user" as 0 with a null result, but some NSS modules
            // return ENOENT/ESRCH/EBADF/EPERM for it (getpwnam_r(3) NOTES).
            return match rc {
                libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => {
                    Err(LookupError::NotFound)
                }
                _ => Err(LookupError::Failed(rc)),
            };
        }
        if result.is_null() {
            return Err(LookupError::NotFound);
        }
        if pwd.pw_name.is_null() || pwd.pw_dir.is_null() {
            return Err(LookupError::Failed(libc::EINVAL));
        }
        // SAFETY: non-null, NUL-terminated strings inside `buf`, which is still alive.
        let (pw_name, pw_dir) =
            unsafe { (CStr::from_ptr(pwd.pw_name), CStr::from_ptr(pwd.pw_dir)) };
        return Ok(Passwd {
            name: pw_name.to_bytes().to_vec(),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            dir: PathBuf::from(OsStr::from_bytes(pw_dir.to_bytes())),
        });
    }
}

/// Looks up `name` with `getpwnam_r`. Any name may arrive here: keys are by uid after this.
pub fn getpwnam(name: &[u8]) -> Result<Passwd, LookupError> {
    let cname = CString::new(name).map_err(|_| LookupError::NotFound)?;
    let call = |pwd, buf, len, result| {
        // SAFETY: a NUL-terminated name and the valid buffers `lookup` passes.
        unsafe { libc::getpwnam_r(cname.as_ptr(), pwd, buf, len, result) }
    };
    // SAFETY: `call` is getpwnam_r applied to its key.
    unsafe { lookup(call) }
}

/// Looks up a uid (for the CLI's status and doctor output).
pub fn getpwuid(uid: u32) -> Result<Passwd, LookupError> {
    let call = |pwd, buf, len, result| {
        // SAFETY: the valid buffers `lookup` passes.
        unsafe { libc::getpwuid_r(uid, pwd, buf, len, result) }
    };
    // SAFETY: `call` is getpwuid_r applied to its key.
    unsafe { lookup(call) }
}

/// The effective uid of this process.
pub fn geteuid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The filesystem uid and gid of the calling thread switched to a user; restored on drop.
/// Per-thread on Linux, unlike `seteuid`, which glibc broadcasts to every thread of the host.
#[derive(Debug)]
pub struct FsIdentity {
    old_uid: u32,
    old_gid: u32,
}

/// The fs-uid switch could not be made or confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsIdentityError;

fn set_fsuid(uid: u32) -> u32 {
    // SAFETY: setfsuid has no memory-safety preconditions; it returns the previous fsuid.
    let prev = unsafe { libc::setfsuid(uid) };
    prev as u32
}

fn set_fsgid(gid: u32) -> u32 {
    // SAFETY: setfsgid has no memory-safety preconditions; it returns the previous fsgid.
    let prev = unsafe { libc::setfsgid(gid) };
    prev as u32
}

impl FsIdentity {
    /// Switches fsgid then fsuid, confirming each by reading it back (the calls report the
    /// previous id, never an error).
    pub fn switch_to(uid: u32, gid: u32) -> Result<Self, FsIdentityError> {
        let old_gid = set_fsgid(gid);
        // Setting an invalid id (-1) changes nothing and returns the current one.
        if set_fsgid(u32::MAX) != gid {
            set_fsgid(old_gid);
            return Err(FsIdentityError);
        }
        let old_uid = set_fsuid(uid);
        if set_fsuid(u32::MAX) != uid {
            set_fsuid(old_uid);
            set_fsgid(old_gid);
            return Err(FsIdentityError);
        }
        Ok(FsIdentity { old_uid, old_gid })
    }
}

impl Drop for FsIdentity {
    fn drop(&mut self) {
        set_fsuid(self.old_uid);
        let uid_ok = set_fsuid(u32::MAX) == self.old_uid;
        set_fsgid(self.old_gid);
        let gid_ok = set_fsgid(u32::MAX) == self.old_gid;
        if !(uid_ok && gid_ok) {
            // Carrying on with another user's filesystem identity inside sshd or sudo is
            // worse than dying: SECURITY.md R4 says abort.
            std::process::abort();
        }
    }
}

/// `true` when `name` is a syntactically acceptable login name (SECURITY.md R1).
pub fn valid_user_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name != b"."
        && name != b".."
        && name.iter().all(|&b| b != b'/' && b >= 0x20 && b != 0x7f)
}

/// The real uid of this process (the CLI's invoking user; never `$USER`).
pub fn getuid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// The host name from `uname(2)` (for `otpauth://` labels), lossily decoded.
pub fn hostname() -> String {
    String::from_utf8_lossy(rustix::system::uname().nodename().to_bytes()).into_owned()
}

/// `true` when `fd` is a terminal.
pub fn isatty(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    rustix::termios::isatty(fd)
}

/// Terminal echo switched off on a tty; the saved settings are restored on drop.
#[derive(Debug)]
pub struct EchoOff<'a> {
    fd: std::os::fd::BorrowedFd<'a>,
    saved: rustix::termios::Termios,
}

impl<'a> EchoOff<'a> {
    /// Turns echo off (keeping the newline echo and signals) until the guard is dropped.
    pub fn new(fd: std::os::fd::BorrowedFd<'a>) -> std::io::Result<Self> {
        use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
        let saved = tcgetattr(fd)?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        // Not TCSAFLUSH: an answer typed ahead of the prompt must not be discarded.
        tcsetattr(fd, OptionalActions::Now, &quiet)?;
        Ok(EchoOff { fd, saved })
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        let _ =
            rustix::termios::tcsetattr(self.fd, rustix::termios::OptionalActions::Now, &self.saved);
    }
}

/// Set by the CLI's handler for SIGINT, SIGTERM, SIGHUP and SIGQUIT.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn note_interrupt(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// For the CLI only (never the module: signal dispositions belong to the host process):
/// SIGINT, SIGTERM, SIGHUP and SIGQUIT set a flag instead of killing the process, without
/// `SA_RESTART`, so a blocking `read` returns `EINTR` and the command can restore the
/// terminal, remove its temp files and exit. Check [`interrupted`] between steps.
pub fn catch_interrupts() -> std::io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = note_interrupt as extern "C" fn(libc::c_int) as usize;
        action.sa_flags = 0;
        // SAFETY: sa_mask is a valid sigset_t owned by `action`.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: `action` is fully initialised; the handler only does an atomic store.
        let rc = unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether one of the signals of [`catch_interrupts`] arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}
