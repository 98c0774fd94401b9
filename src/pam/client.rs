//! A small PAM application: `pam_start_confdir` (or `pam_start`) + `pam_authenticate`, with a
//! conversation answered by a [`Responder`]. Used by `pam-totp try`, `pam-totp test` and
//! the tests that drive the built module through the real libpam.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use zeroize::Zeroizing;

use super::ffi::*;

/// Kinds of conversation message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A question, typed without echo.
    PromptHidden,
    /// A question, echoed.
    PromptShown,
    /// An error message.
    Error,
    /// An informational message.
    Info,
}

/// Answers the module's questions.
pub trait Responder {
    /// The answer to a prompt (`None` fails the conversation); informational messages
    /// are passed too and their answer ignored.
    fn respond(&mut self, style: Style, message: &str) -> Option<Zeroizing<Vec<u8>>>;
}

/// How to start the PAM transaction.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// Service name (a file in `confdir`, or in /etc/pam.d).
    pub service: String,
    /// User name.
    pub user: Vec<u8>,
    /// A private configuration directory (`pam_start_confdir`); `None` uses /etc/pam.d.
    pub confdir: Option<PathBuf>,
    /// Flags for `pam_authenticate` (e.g. `PAM_SILENT`).
    pub flags: c_int,
    /// `PAM_RHOST`, if set.
    pub rhost: Option<String>,
    /// When `true`, a failure delay is recorded instead of slept (tests, benchmarks).
    pub skip_fail_delay: bool,
}

/// What `pam_authenticate` returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Result {
    /// The PAM code.
    pub code: c_int,
    /// The failure delay libpam asked for, in microseconds (when skipped).
    pub fail_delay_usec: u32,
}

struct ConvState<'a> {
    responder: &'a mut dyn Responder,
    delay: u32,
    panicked: bool,
}

/// # Safety
/// Called by libpam with `num_msg` messages and `appdata` pointing to a live `ConvState`.
unsafe extern "C" fn conversation(
    num_msg: c_int,
    msg: *mut *const pam_message,
    resp: *mut *mut pam_response,
    appdata: *mut c_void,
) -> c_int {
    if msg.is_null() || resp.is_null() || appdata.is_null() || num_msg <= 0 {
        return PAM_CONV_ERR;
    }
    // SAFETY: appdata is the ConvState pointer we gave pam_start, alive for the transaction.
    let state = unsafe { &mut *appdata.cast::<ConvState<'_>>() };
    let n = usize::try_from(num_msg).unwrap_or(0);
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: calloc of n zeroed responses; libpam (or the module) frees them.
        let out =
            unsafe { libc::calloc(n, std::mem::size_of::<pam_response>()) }.cast::<pam_response>();
        if out.is_null() {
            return PAM_BUF_ERR;
        }
        for i in 0..n {
            // SAFETY: Linux-PAM passes an array of n message pointers.
            let m = unsafe { *msg.add(i) };
            if m.is_null() {
                // SAFETY: out and its strings were allocated above.
                unsafe { free_responses(out, n) };
                return PAM_CONV_ERR;
            }
            // SAFETY: m points to a valid pam_message.
            let (style, text) = unsafe { ((*m).msg_style, (*m).msg) };
            let text = if text.is_null() {
                String::new()
            } else {
                // SAFETY: NUL-terminated message text owned by the caller.
                String::from_utf8_lossy(unsafe { CStr::from_ptr(text) }.to_bytes()).into_owned()
            };
            let style = match style {
                PAM_PROMPT_ECHO_OFF => Style::PromptHidden,
                PAM_PROMPT_ECHO_ON => Style::PromptShown,
                PAM_ERROR_MSG => Style::Error,
                _ => Style::Info,
            };
            let answer = state.responder.respond(style, &text);
            if matches!(style, Style::PromptHidden | Style::PromptShown) {
                let Some(answer) = answer else {
                    // SAFETY: as above.
                    unsafe { free_responses(out, n) };
                    return PAM_CONV_ERR;
                };
                // SAFETY: malloc of len+1 bytes, filled and NUL-terminated below.
                let buf = unsafe { libc::malloc(answer.len() + 1) }.cast::<u8>();
                if buf.is_null() {
                    // SAFETY: as above.
                    unsafe { free_responses(out, n) };
                    return PAM_BUF_ERR;
                }
                // SAFETY: buf has len+1 bytes; answer has len bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(answer.as_ptr(), buf, answer.len());
                    *buf.add(answer.len()) = 0;
                    (*out.add(i)).resp = buf.cast::<c_char>();
                }
            }
        }
        // SAFETY: resp is a valid out-pointer from libpam.
        unsafe { *resp = out };
        PAM_SUCCESS
    }));
    match result {
        Ok(code) => code,
        Err(_) => {
            state.panicked = true;
            PAM_CONV_ERR
        }
    }
}

/// # Safety
/// `out` must be a calloc'ed array of `n` responses whose strings are null or malloc'ed.
unsafe fn free_responses(out: *mut pam_response, n: usize) {
    for i in 0..n {
        // SAFETY: i < n.
        let r = unsafe { (*out.add(i)).resp };
        if !r.is_null() {
            // SAFETY: malloc'ed by us.
            unsafe { libc::free(r.cast()) };
        }
    }
    // SAFETY: calloc'ed by us.
    unsafe { libc::free(out.cast()) };
}

/// # Safety
/// Called by libpam with the conversation's appdata.
unsafe extern "C" fn record_delay(_retval: c_int, usec: c_uint, appdata: *mut c_void) {
    if !appdata.is_null() {
        // SAFETY: appdata is our live ConvState.
        let state = unsafe { &mut *appdata.cast::<ConvState<'_>>() };
        state.delay = state.delay.max(usec);
    }
}

/// Runs one `pam_authenticate`. `Err` only when the transaction could not start.
pub fn authenticate(
    session: &Session,
    responder: &mut dyn Responder,
) -> std::result::Result<Result, String> {
    let service = CString::new(session.service.as_str())
        .map_err(|_| "service name has a NUL byte".to_string())?;
    let user =
        CString::new(session.user.clone()).map_err(|_| "user name has a NUL byte".to_string())?;
    let confdir = match &session.confdir {
        Some(d) => Some(
            CString::new(d.as_os_str().as_bytes())
                .map_err(|_| "confdir has a NUL byte".to_string())?,
        ),
        None => None,
    };
    let mut state = ConvState {
        responder,
        delay: 0,
        panicked: false,
    };
    let conv = pam_conv {
        conv: Some(conversation),
        appdata_ptr: (&mut state as *mut ConvState<'_>).cast(),
    };
    let mut pamh: *mut pam_handle_t = std::ptr::null_mut();
    // SAFETY: all strings are NUL-terminated and outlive the transaction; conv and state
    // live until pam_end below.
    let rc = unsafe {
        match &confdir {
            Some(dir) => pam_start_confdir(
                service.as_ptr(),
                user.as_ptr(),
                &conv,
                dir.as_ptr(),
                &mut pamh,
            ),
            None => pam_start(service.as_ptr(), user.as_ptr(), &conv, &mut pamh),
        }
    };
    if rc != PAM_SUCCESS || pamh.is_null() {
        return Err(format!("pam_start failed with code {rc}"));
    }
    if session.skip_fail_delay {
        let f: FailDelayFn = record_delay;
        // SAFETY: pamh is live; PAM_FAIL_DELAY takes a function pointer.
        unsafe { pam_set_item(pamh, PAM_FAIL_DELAY, f as *const c_void) };
    }
    if let Some(rhost) = &session.rhost {
        if let Ok(r) = CString::new(rhost.as_str()) {
            // SAFETY: pamh is live; libpam copies the string.
            unsafe { pam_set_item(pamh, PAM_RHOST, r.as_ptr().cast()) };
        }
    }
    // SAFETY: pamh is live.
    let code = unsafe { pam_authenticate(pamh, session.flags) };
    // SAFETY: pamh is live and not used afterwards.
    unsafe { pam_end(pamh, code) };
    if state.panicked {
        return Err("the conversation panicked".into());
    }
    Ok(Result {
        code,
        fail_delay_usec: state.delay,
    })
}
