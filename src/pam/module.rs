//! The module's exported entry points. Only `pam_sm_authenticate` and `pam_sm_setcred` are
//! exported, so a misplaced account/session/password line fails closed ("module unknown").
//! Every export runs inside `catch_unwind` and fails closed with `PAM_SYSTEM_ERR`.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{SystemTime, UNIX_EPOCH};
use zeroize::{Zeroize, Zeroizing};

use super::codes::pam_code;
use super::ffi::*;
use crate::auth::{self, ConvError, Conversation, Host, Level, Request};
use crate::config;

thread_local! {
    // Where a panic happened, for the CRIT line. Copy data only: no TLS destructor, so
    // dlclose of the module leaves nothing behind.
    static PANIC_AT: Cell<Option<([u8; 64], u32)>> = const { Cell::new(None) };
}

fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // This hook belongs to this .so's own copy of std: the default one would print the
    // panic to the host's stderr (under sudo, the user's terminal).
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let at = info.location().map(|l| {
                let mut file = [0u8; 64];
                let bytes = l.file().as_bytes();
                let tail = bytes.get(bytes.len().saturating_sub(64)..).unwrap_or(&[]);
                file.iter_mut().zip(tail).for_each(|(d, s)| *d = *s);
                (file, l.line())
            });
            PANIC_AT.with(|c| c.set(at));
        }));
    });
}

/// Copies a C string item into owned bytes.
///
/// # Safety
/// `pamh` must be a live handle given to us by libpam.
unsafe fn get_string_item(pamh: *mut pam_handle_t, item: c_int) -> Option<Vec<u8>> {
    let mut ptr: *const c_void = std::ptr::null();
    // SAFETY: pamh is live (caller's contract); ptr is a valid out-pointer.
    let rc = unsafe { pam_get_item(pamh, item, &mut ptr) };
    if rc != PAM_SUCCESS || ptr.is_null() {
        return None;
    }
    // SAFETY: string items are NUL-terminated C strings owned by libpam, alive until the
    // next pam_set_item of the same item; we copy at once.
    Some(
        unsafe { CStr::from_ptr(ptr.cast::<c_char>()) }
            .to_bytes()
            .to_vec(),
    )
}

struct PamHost {
    pamh: *mut pam_handle_t,
}

impl PamHost {
    fn send(&mut self, style: c_int, text: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConvError> {
        let mut conv_ptr: *const c_void = std::ptr::null();
        // SAFETY: pamh is the live handle of this call; conv_ptr is a valid out-pointer.
        let rc = unsafe { pam_get_item(self.pamh, PAM_CONV, &mut conv_ptr) };
        if rc != PAM_SUCCESS || conv_ptr.is_null() {
            return Err(ConvError);
        }
        // SAFETY: libpam stores a `struct pam_conv *` under PAM_CONV; checked non-null.
        let conv = unsafe { &*conv_ptr.cast::<pam_conv>() };
        let Some(func) = conv.conv else {
            return Err(ConvError);
        };
        let msg_text = CString::new(text.replace('\0', "")).map_err(|_| ConvError)?;
        let message = pam_message {
            msg_style: style,
            msg: msg_text.as_ptr(),
        };
        // One message per call sidesteps the Linux-PAM vs Solaris array layout difference.
        let mut msgp: *const pam_message = &message;
        let mut resp: *mut pam_response = std::ptr::null_mut();
        // SAFETY: the application's callback with one valid message; it allocates `resp`.
        let rc = unsafe { func(1, &mut msgp, &mut resp, conv.appdata_ptr) };
        // SAFETY: resp is null or the malloc'ed array of one response the callback returned.
        let answer = unsafe { take_response(resp) };
        if rc != PAM_SUCCESS {
            return Err(ConvError);
        }
        let expects_answer = style == PAM_PROMPT_ECHO_OFF || style == PAM_PROMPT_ECHO_ON;
        match (expects_answer, answer) {
            (true, Some(a)) => Ok(Some(a)),
            (true, None) => Err(ConvError),
            (false, _) => Ok(None),
        }
    }
}

/// Copies the answer out of a response array of one, wipes the application's copy with
/// volatile writes and frees both with `libc::free` (the application malloc'ed them).
///
/// # Safety
/// `resp` must be null or point to one `pam_response` allocated with malloc, whose `resp`
/// is null or a malloc'ed NUL-terminated string.
unsafe fn take_response(resp: *mut pam_response) -> Option<Zeroizing<Vec<u8>>> {
    if resp.is_null() {
        return None;
    }
    // SAFETY: non-null, points to one pam_response (caller's contract).
    let text = unsafe { (*resp).resp };
    let out = if text.is_null() {
        None
    } else {
        // Bounded scan: anything over PAM_MAX_RESP_SIZE is rejected unparsed.
        // SAFETY: text is NUL-terminated; strnlen reads at most 513 bytes or to the NUL.
        let len = unsafe { libc::strnlen(text, PAM_MAX_RESP_SIZE + 1) };
        let answer = if len > PAM_MAX_RESP_SIZE {
            Zeroizing::new(vec![b'x'; PAM_MAX_RESP_SIZE + 1])
        } else {
            // SAFETY: len bytes before the NUL are readable.
            let bytes = unsafe { std::slice::from_raw_parts(text.cast::<u8>(), len) };
            let mut v = Zeroizing::new(Vec::with_capacity(PAM_MAX_RESP_SIZE));
            v.extend_from_slice(bytes);
            v
        };
        // SAFETY: the whole string up to its NUL is writable memory the application owns
        // and hands over to us.
        let full = unsafe { libc::strlen(text) };
        // SAFETY: as above; zeroize uses volatile writes, so the wipe is not optimised away.
        unsafe { std::slice::from_raw_parts_mut(text.cast::<u8>(), full) }.zeroize();
        // SAFETY: malloc'ed by the application, freed exactly once here.
        unsafe { libc::free(text.cast()) };
        Some(answer)
    };
    // SAFETY: malloc'ed by the application, freed exactly once here.
    unsafe { libc::free(resp.cast()) };
    out
}

impl Conversation for PamHost {
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Zeroizing<Vec<u8>>, ConvError> {
        let style = if echo {
            PAM_PROMPT_ECHO_ON
        } else {
            PAM_PROMPT_ECHO_OFF
        };
        self.send(style, text)?.ok_or(ConvError)
    }

    fn tell(&mut self, text: &str) {
        let _ = self.send(PAM_ERROR_MSG, text);
    }
}

impl Host for PamHost {
    fn authtok(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        // SAFETY: pamh is the live handle of this call.
        unsafe { get_string_item(self.pamh, PAM_AUTHTOK) }.map(Zeroizing::new)
    }

    fn set_authtok(&mut self, tok: &[u8]) -> Result<(), ConvError> {
        let mut c = Zeroizing::new(Vec::with_capacity(tok.len().saturating_add(1)));
        c.extend(tok.iter().copied().filter(|&b| b != 0));
        c.push(0);
        // SAFETY: c is NUL-terminated and outlives the call; libpam copies the string.
        let rc = unsafe { pam_set_item(self.pamh, PAM_AUTHTOK, c.as_ptr().cast()) };
        if rc == PAM_SUCCESS {
            Ok(())
        } else {
            Err(ConvError)
        }
    }

    fn log(&mut self, level: Level, msg: &str) {
        syslog(self.pamh, level, msg);
    }

    fn now(&mut self) -> Option<u64> {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }
}

fn syslog(pamh: *mut pam_handle_t, level: Level, msg: &str) {
    let prio = match level {
        Level::Crit => libc::LOG_CRIT,
        Level::Err => libc::LOG_ERR,
        Level::Warning => libc::LOG_WARNING,
        Level::Notice => libc::LOG_NOTICE,
        Level::Info => libc::LOG_INFO,
        Level::Debug => libc::LOG_DEBUG,
    };
    let Ok(text) = CString::new(msg.replace('\0', "")) else {
        return;
    };
    // SAFETY: pamh is live; "%s" with one NUL-terminated string argument.
    unsafe {
        pam_syslog(
            pamh,
            libc::LOG_AUTHPRIV | prio,
            c"%s".as_ptr(),
            text.as_ptr(),
        )
    };
}

/// # Safety
/// Arguments as libpam passes them to `pam_sm_authenticate`.
unsafe fn authenticate(
    pamh: *mut pam_handle_t,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    if pamh.is_null() {
        return PAM_SYSTEM_ERR;
    }
    let mut args: Vec<Vec<u8>> = Vec::new();
    if !argv.is_null() {
        for i in 0..usize::try_from(argc).unwrap_or(0) {
            // SAFETY: argv holds argc pointers (libpam's contract).
            let p = unsafe { *argv.add(i) };
            if !p.is_null() {
                // SAFETY: each argument is a NUL-terminated string owned by libpam.
                args.push(unsafe { CStr::from_ptr(p) }.to_bytes().to_vec());
            }
        }
    }
    let arg_refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    let opts = match config::load(&arg_refs) {
        Ok(o) => o,
        Err(e) => {
            syslog(pamh, Level::Err, &format!("configuration error: {e}"));
            return PAM_SERVICE_ERR;
        }
    };
    // libpam applies the longest requested delay, and only on failure.
    // SAFETY: pamh is live.
    unsafe { pam_fail_delay(pamh, opts.fail_delay_ms.saturating_mul(1000) as c_uint) };
    let mut user_ptr: *const c_char = std::ptr::null();
    // SAFETY: pamh is live; user_ptr is a valid out-pointer; a null prompt uses the default.
    let rc = unsafe { pam_get_user(pamh, &mut user_ptr, std::ptr::null()) };
    if rc != PAM_SUCCESS || user_ptr.is_null() {
        syslog(pamh, Level::Err, "could not get the user name");
        return match rc {
            PAM_CONV_AGAIN | PAM_CONV_ERR => PAM_CONV_ERR,
            PAM_BUF_ERR => PAM_BUF_ERR,
            _ => PAM_SYSTEM_ERR,
        };
    }
    // SAFETY: non-null NUL-terminated string owned by libpam; copied at once.
    let user = unsafe { CStr::from_ptr(user_ptr) }.to_bytes().to_vec();
    let to_text = |v: Option<Vec<u8>>| {
        v.map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let request = Request {
        user,
        // SAFETY: pamh is live.
        service: to_text(unsafe { get_string_item(pamh, PAM_SERVICE) }),
        // SAFETY: pamh is live.
        rhost: to_text(unsafe { get_string_item(pamh, PAM_RHOST) }),
        silent: flags & PAM_SILENT != 0,
    };
    let mut host = PamHost { pamh };
    let outcome = auth::authenticate(&mut host, &request, &opts);
    pam_code(&outcome)
}

/// PAM entry point: authenticate the user with a one-time code.
///
/// # Safety
/// Called by libpam with a live handle and `argc` valid argument strings.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_authenticate(
    pamh: *mut pam_handle_t,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    quiet_panics();
    // SAFETY: arguments passed through from libpam unchanged.
    match catch_unwind(AssertUnwindSafe(|| unsafe {
        authenticate(pamh, flags, argc, argv)
    })) {
        Ok(code) => code,
        Err(_) => {
            let at = PANIC_AT.with(Cell::take);
            let place = at.map_or_else(
                || "unknown place".to_string(),
                |(f, l)| {
                    let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
                    format!(
                        "{}:{l}",
                        String::from_utf8_lossy(f.get(..end).unwrap_or(&[]))
                    )
                },
            );
            if !pamh.is_null() {
                syslog(
                    pamh,
                    Level::Crit,
                    &format!("internal error (panic at {place}); failing closed"),
                );
            }
            PAM_SYSTEM_ERR
        }
    }
}

/// PAM entry point: nothing to set; always succeeds (SPEC §3).
///
/// # Safety
/// Called by libpam.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_setcred(
    _pamh: *mut pam_handle_t,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_SUCCESS
}
