//! The authentication flow (SPEC §3–§4, SECURITY.md W3): gather the user, the secret and
//! the answer, then under the uid's lock read the state, check the rate limit, verify
//! against every candidate, and persist before answering. Written against [`Host`], so it
//! runs with a scripted fake as well as through libpam.

use std::fmt;
use zeroize::Zeroizing;

use crate::config::{FirstPass, Options, FORWARD_PASS_PROMPT};
use crate::otp::limit::{counts, limited_for, record_failure};
use crate::otp::{
    find_match, normalize_answer, totp_step, Answer, Candidates, Mac, Match, ScratchStrength,
};
use crate::store::{self, load_secret, Kind, Secret, SecretLocation, State, StateDir};
use crate::sys::{self, LookupError, Passwd};

/// Syslog severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// LOG_CRIT.
    Crit,
    /// LOG_ERR.
    Err,
    /// LOG_WARNING.
    Warning,
    /// LOG_NOTICE.
    Notice,
    /// LOG_INFO.
    Info,
    /// LOG_DEBUG.
    Debug,
}

/// The conversation failed or is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvError;

/// A PAM conversation: one message per call.
pub trait Conversation {
    /// Asks a question; the answer's bytes (wiped on drop), at most 512 of them kept.
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Zeroizing<Vec<u8>>, ConvError>;
    /// Tells the user something (not called under `PAM_SILENT`).
    fn tell(&mut self, text: &str);
}

/// What the flow needs from its host besides the conversation.
pub trait Host: Conversation {
    /// `PAM_AUTHTOK`, if an earlier module set it.
    fn authtok(&mut self) -> Option<Zeroizing<Vec<u8>>>;
    /// Sets `PAM_AUTHTOK` for the next module (`forward_pass`).
    fn set_authtok(&mut self, tok: &[u8]) -> Result<(), ConvError>;
    /// One syslog line (authpriv). Never given a secret or an answer.
    fn log(&mut self, level: Level, msg: &str);
    /// Seconds since the epoch, read when called (after the answer arrived).
    fn now(&mut self) -> Option<u64>;
}

/// The request as libpam gives it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `PAM_USER` as bytes (attacker input).
    pub user: Vec<u8>,
    /// `PAM_SERVICE`.
    pub service: String,
    /// `PAM_RHOST`, if any.
    pub rhost: String,
    /// `PAM_SILENT`.
    pub silent: bool,
}

/// How a user got in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A one-time code.
    Code,
    /// A scratch code.
    Scratch,
}

/// Why a login was refused with `PAM_AUTH_ERR`.
#[derive(Debug)]
pub enum Reject {
    /// The code matched nothing.
    Wrong,
    /// Not a code of the right shape (not counted).
    Malformed,
    /// The code was valid but already used.
    Replayed,
    /// A scratch code that was already used.
    ScratchUsed,
    /// No such user, or an invalid name.
    UnknownUser,
    /// No secret file and no `nullok` (or `PAM_DISALLOW_NULL_AUTHTOK`).
    NotEnrolled,
    /// `use_first_pass` without a `PAM_AUTHTOK`.
    NoAuthtok,
    /// A secret or state file failed the safety checks.
    Unsafe(store::Error),
}

/// Every way an authentication can end; [`crate::pam::codes`] maps each to a PAM code.
#[derive(Debug)]
pub enum Outcome {
    /// Verified, and the new state is durable.
    Accepted(Method),
    /// Refused.
    Rejected(Reject),
    /// The rate limit is in force.
    RateLimited,
    /// Not enrolled, `nullok`, parent directory verified.
    Ignored,
    /// Cannot decide safely: fail closed.
    Unavailable(String),
    /// The conversation failed.
    ConvFailed,
    /// Bad module arguments or config.
    BadConfig(String),
    /// An internal failure (fs-uid switch).
    SystemError(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// Escapes a user name for a log line: printable ASCII kept, everything else as `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes.iter().take(256) {
        if (0x21..0x7f).contains(&b) && b != b'\\' {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

struct Ctx<'a, H: Host> {
    host: &'a mut H,
    req: &'a Request,
    opts: &'a Options,
    who: String,
}

impl<H: Host> Ctx<'_, H> {
    fn log(&mut self, level: Level, msg: &str) {
        let line = format!(
            "{msg}; user={} service={} rhost={}",
            self.who,
            escape(self.req.service.as_bytes()),
            escape(self.req.rhost.as_bytes())
        );
        self.host.log(level, &line);
    }

    fn tell(&mut self, text: &str) {
        if !self.req.silent {
            self.host.tell(text);
        }
    }

    fn prompt(&mut self, text: &str) -> Result<Zeroizing<Vec<u8>>, ConvError> {
        self.host.prompt(text, self.opts.echo)
    }
}

/// Runs one authentication.
pub fn authenticate<H: Host>(host: &mut H, req: &Request, opts: &Options) -> Outcome {
    let mut cx = Ctx {
        host,
        req,
        opts,
        who: escape(&req.user),
    };
    let outcome = run(&mut cx);
    log_outcome(&mut cx, &outcome);
    outcome
}

fn log_outcome<H: Host>(cx: &mut Ctx<'_, H>, outcome: &Outcome) {
    let (level, msg): (Level, String) = match outcome {
        Outcome::Accepted(Method::Code) => (Level::Info, "accepted: method=code".into()),
        Outcome::Accepted(Method::Scratch) => (Level::Info, "accepted: method=scratch".into()),
        Outcome::Rejected(Reject::Unsafe(e)) => (Level::Err, format!("rejected: {e}")),
        Outcome::Rejected(Reject::Replayed) => (
            Level::Warning,
            "rejected: replayed code (already used; possible MITM or a second login in the same step)".into(),
        ),
        Outcome::Rejected(Reject::NotEnrolled) => (Level::Warning, "rejected: not enrolled (no secret file)".into()),
        Outcome::Rejected(Reject::UnknownUser) => (Level::Notice, "rejected: unknown user".into()),
        Outcome::Rejected(Reject::Malformed) => (Level::Notice, "rejected: malformed answer (not counted)".into()),
        Outcome::Rejected(Reject::ScratchUsed) => (Level::Warning, "rejected: scratch code already used".into()),
        Outcome::Rejected(Reject::NoAuthtok) => (Level::Err, "rejected: use_first_pass but no PAM_AUTHTOK".into()),
        // Wrong codes and rate limits log their own line with the counts.
        Outcome::Rejected(Reject::Wrong) | Outcome::RateLimited => return,
        Outcome::Ignored => (Level::Info, "ignored: not enrolled (nullok)".into()),
        Outcome::Unavailable(m) => (Level::Err, format!("unavailable: {m}")),
        Outcome::ConvFailed => (Level::Err, "conversation failed".into()),
        Outcome::BadConfig(m) => (Level::Err, format!("configuration error: {m}")),
        Outcome::SystemError(m) => (Level::Err, format!("system error: {m}")),
    };
    cx.log(level, &msg);
}

/// What reading the secret gave.
enum Enrollment {
    Enrolled(Box<Secret>),
    Missing,
    Unsafe(store::Error),
}

fn run<H: Host>(cx: &mut Ctx<'_, H>) -> Outcome {
    // R1: the name is attacker input; unknown users see the same prompt as known ones.
    if !sys::valid_user_name(&cx.req.user) {
        return dummy(cx, Reject::UnknownUser);
    }
    let user = match sys::getpwnam(&cx.req.user) {
        Ok(u) => u,
        Err(LookupError::NotFound) => return dummy(cx, Reject::UnknownUser),
        Err(LookupError::Failed(errno)) => {
            return Outcome::Unavailable(format!(
                "user lookup failed: {}",
                std::io::Error::from_raw_os_error(errno)
            ))
        }
    };
    if !user.dir.is_absolute() {
        return Outcome::Unavailable(
            "home directory in the password database is not absolute".into(),
        );
    }
    cx.who = format!("{} uid={}", escape(&cx.req.user), user.uid);
    let loc = match SecretLocation::resolve(&cx.opts.secret, &user) {
        Ok(l) => l,
        Err(m) => return Outcome::BadConfig(m),
    };
    let euid = sys::geteuid();
    if cx.opts.debug {
        let layout = match &loc {
            SecretLocation::Home { .. } => "home",
            SecretLocation::Central(_) => "central",
        };
        let msg = format!(
            "debug: secret {} ({layout} layout), state dir {}",
            loc.display_path().display(),
            cx.opts.state_dir.display()
        );
        cx.log(Level::Debug, &msg);
    }
    let enrollment = match load_secret(&loc, &user, euid) {
        Ok(s) => Enrollment::Enrolled(Box::new(s)),
        Err(store::Error::NotFound(_)) => {
            // PAM_DISALLOW_NULL_AUTHTOK is not consulted: sshd passes it on every login
            // (unless PermitEmptyPasswords), which would make nullok useless for the roll-out
            // it exists for. PAM_IGNORE grants nothing by itself; another module decides.
            if cx.opts.nullok {
                if cx.opts.forward_pass {
                    // The next module still needs the password.
                    return match cx.prompt("Password: ") {
                        Ok(pw) => match cx.host.set_authtok(&pw) {
                            Ok(()) => Outcome::Ignored,
                            Err(_) => Outcome::ConvFailed,
                        },
                        Err(_) => Outcome::ConvFailed,
                    };
                }
                return Outcome::Ignored;
            }
            Enrollment::Missing
        }
        Err(e @ store::Error::Unsafe { .. }) => Enrollment::Unsafe(e),
        Err(store::Error::Identity) => {
            return Outcome::SystemError("could not switch the filesystem uid to the user".into())
        }
        Err(e) => return Outcome::Unavailable(e.to_string()),
    };
    let secret = match enrollment {
        Enrollment::Enrolled(s) => s,
        Enrollment::Missing => return after_prompt(cx, 6, Reject::NotEnrolled),
        Enrollment::Unsafe(e) => return after_prompt(cx, 6, Reject::Unsafe(e)),
    };
    let dir = match StateDir::open(&cx.opts.state_dir, true) {
        Ok(d) => d,
        Err(e) => return state_error(e),
    };
    // Rate limit before prompting: the code is neither asked for nor checked. The check is
    // repeated under the lock, where it is decided.
    let scratch_only = match dir.peek(user.uid) {
        Ok(st) => {
            let now = match cx.host.now() {
                Some(n) => n,
                None => return Outcome::Unavailable("clock before 1970".into()),
            };
            match limited_for(&cx.opts.limits, &st.failures, st.short_reset, now) {
                None => false,
                Some(wait) => {
                    let strong_left = strong_scratch_left(&secret, &st);
                    let minutes = wait.div_ceil(60);
                    log_limited(cx, &st, now);
                    if strong_left {
                        cx.tell(&format!(
                            "Too many wrong codes; try again in {minutes} minutes or use a scratch code."
                        ));
                        true
                    } else {
                        cx.tell(&format!(
                            "Too many wrong codes; try again in {minutes} minutes."
                        ));
                        return Outcome::RateLimited;
                    }
                }
            }
        }
        Err(e) => return state_error(e),
    };
    let raw = match get_answer(cx, secret.digits) {
        Ok(Some(a)) => a,
        Ok(None) => return Outcome::Rejected(Reject::NoAuthtok),
        Err(_) => return Outcome::ConvFailed,
    };
    // The clock is read after the answer arrives (a prompt can wait LoginGraceTime).
    let Some(now) = cx.host.now() else {
        return Outcome::Unavailable("clock before 1970".into());
    };
    let answer = normalize_answer(&raw, secret.digits);
    drop(raw);
    if answer == Answer::Malformed {
        return Outcome::Rejected(Reject::Malformed);
    }
    if scratch_only && !matches!(answer, Answer::Scratch(_)) {
        return Outcome::RateLimited;
    }
    decide(cx, &dir, &user, &secret, &answer, now)
}

fn state_error(e: store::Error) -> Outcome {
    match e {
        e @ store::Error::Unsafe { .. } => Outcome::Rejected(Reject::Unsafe(e)),
        e => Outcome::Unavailable(e.to_string()),
    }
}

fn strong_scratch_left(secret: &Secret, st: &State) -> bool {
    let same_id = st.secret_id == secret.id;
    secret.scratch.iter().any(|h| {
        h.strength == ScratchStrength::High && !(same_id && st.used_scratch.contains(&h.id()))
    })
}

fn log_limited<H: Host>(cx: &mut Ctx<'_, H>, st: &State, now: u64) {
    let (short, daily) = counts(&cx.opts.limits, &st.failures, st.short_reset, now);
    let level = if daily >= cx.opts.limits.max_daily as usize {
        Level::Crit
    } else {
        Level::Warning
    };
    let msg = format!(
        "rate-limited: {short}/{} failures in {} s, {daily}/{} in 24 h",
        cx.opts.limits.max_failures, cx.opts.limits.interval, cx.opts.limits.max_daily
    );
    cx.log(level, &msg);
}

/// Prompts like for an enrolled user, then refuses: the answer reveals neither enrollment
/// nor file problems (SPEC §3).
fn after_prompt<H: Host>(cx: &mut Ctx<'_, H>, digits: u32, reject: Reject) -> Outcome {
    match get_answer(cx, digits) {
        Ok(_) => Outcome::Rejected(reject),
        Err(_) => Outcome::ConvFailed,
    }
}

fn dummy<H: Host>(cx: &mut Ctx<'_, H>, reject: Reject) -> Outcome {
    after_prompt(cx, 6, reject)
}

/// The answer from `PAM_AUTHTOK` or the conversation. `Ok(None)`: `use_first_pass`
/// without a token.
fn get_answer<H: Host>(
    cx: &mut Ctx<'_, H>,
    digits: u32,
) -> Result<Option<Zeroizing<Vec<u8>>>, ConvError> {
    if cx.opts.forward_pass {
        let combined = cx.prompt(FORWARD_PASS_PROMPT)?;
        let (password, code) = split_forward(&combined, digits);
        cx.host.set_authtok(password)?;
        return Ok(Some(Zeroizing::new(code.to_vec())));
    }
    match cx.opts.first_pass {
        FirstPass::Prompt => {}
        FirstPass::Use => return Ok(cx.host.authtok()),
        FirstPass::Try => {
            if let Some(tok) = cx.host.authtok() {
                if normalize_answer(&tok, digits) != Answer::Malformed {
                    return Ok(Some(tok));
                }
            }
        }
    }
    let prompt = cx.opts.prompt.clone();
    cx.prompt(&prompt).map(Some)
}

/// Splits `password‖code` (forward_pass): the trailing `digits` ASCII digits are the code.
pub fn split_forward(combined: &[u8], digits: u32) -> (&[u8], &[u8]) {
    let mut end = combined.len();
    while end > 0 && matches!(combined.get(end - 1), Some(b'\r' | b'\n')) {
        end -= 1;
    }
    let body = combined.get(..end).unwrap_or(&[]);
    let n = digits as usize;
    if body.len() >= n {
        let split = body.len() - n;
        if let (Some(pw), Some(code)) = (body.get(..split), body.get(split..)) {
            if code.iter().all(u8::is_ascii_digit) {
                return (pw, code);
            }
        }
    }
    (body, &[])
}

#[cfg(feature = "fault-injection")]
fn injected_panic() {
    if std::env::var_os("PAM_TOTP_PANIC").is_some() {
        #[allow(clippy::panic)]
        {
            panic!("injected panic");
        }
    }
}

#[cfg(not(feature = "fault-injection"))]
fn injected_panic() {}

/// Under the lock: re-read the state, decide the rate limit, verify, persist, answer.
fn decide<H: Host>(
    cx: &mut Ctx<'_, H>,
    dir: &StateDir,
    user: &Passwd,
    secret: &Secret,
    answer: &Answer,
    now: u64,
) -> Outcome {
    let mut locked = match dir.lock(user.uid) {
        Ok(l) => l,
        Err(e) => return state_error(e),
    };
    let mut st = locked.state.clone();
    if st.secret_id != secret.id {
        // A new enrollment resets what belongs to the secret, not the failure counters.
        st.secret_id.clone_from(&secret.id);
        st.last_step = None;
        st.next_counter = None;
        st.used_scratch.clear();
    }
    let limited = limited_for(&cx.opts.limits, &st.failures, st.short_reset, now);
    if cx.opts.debug {
        let msg = format!(
            "debug: secret id {}, {} stored failures, limited: {}",
            secret.id,
            st.failures.len(),
            limited.map_or_else(|| "no".to_string(), |s| format!("{s} s"))
        );
        cx.log(Level::Debug, &msg);
    }
    injected_panic();
    let outcome = match answer {
        Answer::Code { value, text } => {
            if limited.is_some() {
                log_limited(cx, &st, now);
                return Outcome::RateLimited;
            }
            match verify_code(cx, secret, &mut st, *value, now) {
                Ok(Some(o)) => o,
                Ok(None) => {
                    // 8-digit codes may also be imported 8-digit scratch codes.
                    if secret.digits == 8 {
                        match check_scratch(secret, &mut st, text, false) {
                            ScratchResult::Matched => Outcome::Accepted(Method::Scratch),
                            ScratchResult::Used => Outcome::Rejected(Reject::ScratchUsed),
                            ScratchResult::NoMatch => Outcome::Rejected(Reject::Wrong),
                        }
                    } else {
                        Outcome::Rejected(Reject::Wrong)
                    }
                }
                Err(o) => return o,
            }
        }
        Answer::Scratch(text) => match check_scratch(secret, &mut st, text, limited.is_some()) {
            ScratchResult::Matched => Outcome::Accepted(Method::Scratch),
            ScratchResult::Used => Outcome::Rejected(Reject::ScratchUsed),
            ScratchResult::NoMatch if limited.is_some() && !strong_scratch_left(secret, &st) => {
                log_limited(cx, &st, now);
                return Outcome::RateLimited;
            }
            ScratchResult::NoMatch => Outcome::Rejected(Reject::Wrong),
        },
        Answer::Malformed => return Outcome::Rejected(Reject::Malformed),
    };
    match &outcome {
        Outcome::Accepted(_) => {
            st.last_success = Some(now);
            st.short_reset = now;
        }
        Outcome::Rejected(Reject::Wrong | Reject::ScratchUsed) => {
            record_failure(&mut st.failures, now)
        }
        _ => {}
    }
    if st != locked.state {
        if let Err(e) = locked.save(&st) {
            // Nothing is granted, and nothing is lost: the old state is intact.
            return Outcome::Unavailable(format!("could not save state: {e}"));
        }
    }
    if matches!(
        outcome,
        Outcome::Rejected(Reject::Wrong | Reject::ScratchUsed)
    ) {
        let (short, daily) = counts(&cx.opts.limits, &st.failures, st.short_reset, now);
        let msg = format!(
            "rejected: wrong code ({short}/{} in {} s, {daily}/{} in 24 h)",
            cx.opts.limits.max_failures, cx.opts.limits.interval, cx.opts.limits.max_daily
        );
        cx.log(Level::Notice, &msg);
    }
    outcome
}

/// TOTP/HOTP verification with the watermark. `Ok(None)`: no match (a failure).
fn verify_code<H: Host>(
    cx: &mut Ctx<'_, H>,
    secret: &Secret,
    st: &mut State,
    answer: u32,
    now: u64,
) -> Result<Option<Outcome>, Outcome> {
    let mac = Mac::new(secret.algorithm, &secret.key);
    match secret.kind {
        Kind::Totp { period } => {
            let window = cx.opts.window.or(secret.window).unwrap_or(1);
            if window > 3 {
                return Err(Outcome::BadConfig(format!(
                    "window={window}: TOTP accepts 0-3"
                )));
            }
            let step = totp_step(now, period);
            if let Some(last) = st.last_step {
                let limit = step.saturating_add(u64::from(window)).saturating_add(2);
                if last > limit {
                    return Err(Outcome::Unavailable(format!(
                        "state from the future: last accepted step {last} is ahead of now ({step}); \
                         check the clock, then run pam-totp reset"
                    )));
                }
                if last > step.saturating_add(u64::from(window)) {
                    cx.log(Level::Warning, "clock behind the last accepted step");
                }
            }
            match find_match(
                &mac,
                secret.digits,
                answer,
                Candidates::totp(step, window, st.last_step),
            ) {
                Match::Fresh(s) => {
                    st.last_step = Some(s);
                    Ok(Some(Outcome::Accepted(Method::Code)))
                }
                Match::Replayed => {
                    let next = st
                        .last_step
                        .unwrap_or(step)
                        .saturating_add(1)
                        .saturating_mul(period);
                    let wait = next.saturating_sub(now).max(1);
                    cx.tell(&format!(
                        "This code was already used; wait for the next one (about {wait} s)."
                    ));
                    Err(Outcome::Rejected(Reject::Replayed))
                }
                Match::None => Ok(None),
            }
        }
        Kind::Hotp { counter } => {
            let lookahead = cx.opts.window.or(secret.window).unwrap_or(10);
            if !(1..=20).contains(&lookahead) {
                return Err(Outcome::BadConfig(format!(
                    "window={lookahead}: HOTP accepts 1-20"
                )));
            }
            let next = st.next_counter.unwrap_or(counter);
            match find_match(
                &mac,
                secret.digits,
                answer,
                Candidates::hotp(next, lookahead),
            ) {
                // The last counter has no successor: a saturating add would leave it
                // usable forever (a replay), so the counter is exhausted instead.
                Match::Fresh(c) => match c.checked_add(1) {
                    Some(next) => {
                        st.next_counter = Some(next);
                        Ok(Some(Outcome::Accepted(Method::Code)))
                    }
                    None => Err(Outcome::Unavailable(
                        "HOTP counter exhausted (2^64-1); re-enroll".into(),
                    )),
                },
                Match::Replayed | Match::None => Ok(None),
            }
        }
    }
}

enum ScratchResult {
    Matched,
    Used,
    NoMatch,
}

/// Compares against every stored hash in constant time, decides after the loop.
fn check_scratch(secret: &Secret, st: &mut State, text: &str, strong_only: bool) -> ScratchResult {
    let mut found = subtle::Choice::from(0);
    let mut found_id = 0u64;
    for h in &secret.scratch {
        let allowed = subtle::Choice::from(u8::from(
            !strong_only || h.strength == ScratchStrength::High,
        ));
        let m = h.matches(text) & allowed;
        subtle::ConditionallySelectable::conditional_assign(&mut found_id, &h.id(), m);
        found |= m;
    }
    if !bool::from(found) {
        return ScratchResult::NoMatch;
    }
    if st.used_scratch.contains(&found_id) {
        return ScratchResult::Used;
    }
    st.used_scratch.push(found_id);
    ScratchResult::Matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_pass_splits_the_trailing_code() {
        assert_eq!(
            split_forward(b"hunter2123456\n", 6),
            (&b"hunter2"[..], &b"123456"[..])
        );
        assert_eq!(split_forward(b"123456", 6), (&b""[..], &b"123456"[..]));
        assert_eq!(split_forward(b"pw12345x", 6), (&b"pw12345x"[..], &b""[..]));
        assert_eq!(split_forward(b"12", 6), (&b"12"[..], &b""[..]));
    }

    #[test]
    fn user_names_are_escaped_for_the_log() {
        assert_eq!(escape(b"alice"), "alice");
        assert_eq!(escape(b"a b\n\\"), "a\\x20b\\x0a\\x5c");
    }
}
