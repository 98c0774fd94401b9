//! Reading `/etc/pam.d` and `sshd_config` the way libpam and sshd do, and the analysis of an
//! auth stack that `doctor` and `enable` share. Pure: files arrive through a [`Files`]
//! reader, so tests run on fixture trees and `enable` can check a file before writing it.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where system files are read from: `/`, or a fixture tree given with `--root` (tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Root {
    prefix: Option<PathBuf>,
}

impl Root {
    /// The real system.
    pub fn system() -> Self {
        Root { prefix: None }
    }

    /// A fixture tree standing in for `/`.
    pub fn under(dir: &Path) -> Self {
        Root {
            prefix: Some(dir.to_path_buf()),
        }
    }

    /// `true` for a fixture tree.
    pub fn is_fixture(&self) -> bool {
        self.prefix.is_some()
    }

    /// The path of the system file `abs` (absolute) in this tree.
    pub fn path(&self, abs: impl AsRef<Path>) -> PathBuf {
        let abs = abs.as_ref();
        match &self.prefix {
            None => abs.to_path_buf(),
            Some(p) => p.join(abs.strip_prefix("/").unwrap_or(abs)),
        }
    }

    /// The system path of a path in this tree (for messages).
    pub fn shown(&self, path: &Path) -> PathBuf {
        match &self.prefix {
            Some(p) => match path.strip_prefix(p) {
                Ok(rel) => Path::new("/").join(rel),
                Err(_) => path.to_path_buf(),
            },
            None => path.to_path_buf(),
        }
    }
}

/// Reads text files by system path; `None` when the file does not exist or cannot be read.
pub trait Files {
    /// The contents of the system file `path` (absolute).
    fn read(&self, path: &Path) -> Option<String>;
    /// The names in a system directory, sorted (for `Include dir/*.conf`).
    fn list(&self, dir: &Path) -> Vec<String>;
}

/// [`Files`] over a [`Root`], with overrides for files `enable` is about to write.
#[derive(Debug, Clone, Default)]
pub struct DiskFiles {
    /// The tree read.
    pub root: Root,
    /// Contents that replace what is on disk (`None`: the file is treated as absent).
    pub overrides: Vec<(PathBuf, Option<String>)>,
}

impl Files for DiskFiles {
    fn read(&self, path: &Path) -> Option<String> {
        if let Some((_, text)) = self.overrides.iter().find(|(p, _)| p == path) {
            return text.clone();
        }
        std::fs::read(self.root.path(path))
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    fn list(&self, dir: &Path) -> Vec<String> {
        let mut names: BTreeSet<String> = std::fs::read_dir(self.root.path(dir))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        for (p, text) in &self.overrides {
            if p.parent() == Some(dir) {
                if let Some(name) = p.file_name() {
                    let name = name.to_string_lossy().into_owned();
                    if text.is_some() {
                        names.insert(name);
                    } else {
                        names.remove(&name);
                    }
                }
            }
        }
        names.into_iter().collect()
    }
}

// ---------------------------------------------------------------------------------------
// pam.d

/// The pam.d directory.
pub const PAM_D: &str = "/etc/pam.d";

/// What libpam does after a module returned a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ignore the result.
    Ignore,
    /// Fail, go on.
    Bad,
    /// Fail, stop.
    Die,
    /// Succeed (unless something failed already), go on.
    Ok,
    /// Succeed (unless something failed already), stop.
    Done,
    /// Forget everything so far.
    Reset,
    /// Skip this many following lines.
    Jump(usize),
}

/// The return codes an action can be mapped for, by their pam.conf(5) names.
pub const RETURN_NAMES: [&str; 32] = [
    "success",
    "open_err",
    "symbol_err",
    "service_err",
    "system_err",
    "buf_err",
    "perm_denied",
    "auth_err",
    "cred_insufficient",
    "authinfo_unavail",
    "user_unknown",
    "maxtries",
    "new_authtok_reqd",
    "acct_expired",
    "session_err",
    "cred_unavail",
    "cred_expired",
    "cred_err",
    "no_module_data",
    "conv_err",
    "authtok_err",
    "authtok_recover_err",
    "authtok_lock_busy",
    "authtok_disable_aging",
    "try_again",
    "ignore",
    "abort",
    "authtok_expired",
    "module_unknown",
    "bad_item",
    "conv_again",
    "incomplete",
];

/// A control field: the written text and the action for each return code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// As written (`required`, `[success=ok default=die]`).
    pub text: String,
    map: Vec<(String, Action)>,
    default: Action,
}

impl Control {
    /// Parses a control field; `Err` names what libpam would reject.
    pub fn parse(text: &str) -> Result<Control, String> {
        let simple = |map: &[(&str, Action)], default| Control {
            text: text.into(),
            map: map.iter().map(|(k, a)| ((*k).to_string(), *a)).collect(),
            default,
        };
        match text.to_ascii_lowercase().as_str() {
            "required" => {
                return Ok(simple(
                    &[
                        ("success", Action::Ok),
                        ("new_authtok_reqd", Action::Ok),
                        ("ignore", Action::Ignore),
                    ],
                    Action::Bad,
                ))
            }
            "requisite" => {
                return Ok(simple(
                    &[
                        ("success", Action::Ok),
                        ("new_authtok_reqd", Action::Ok),
                        ("ignore", Action::Ignore),
                    ],
                    Action::Die,
                ))
            }
            "optional" => {
                return Ok(simple(
                    &[("success", Action::Ok), ("new_authtok_reqd", Action::Ok)],
                    Action::Ignore,
                ))
            }
            "sufficient" => {
                return Ok(simple(
                    &[
                        ("success", Action::Done),
                        ("new_authtok_reqd", Action::Done),
                    ],
                    Action::Ignore,
                ))
            }
            _ => {}
        }
        let inner = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .ok_or_else(|| format!("unknown control \"{text}\""))?;
        let mut map = Vec::new();
        let mut default = Action::Bad;
        for pair in inner.split_whitespace() {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("\"{pair}\" in {text} is not name=action"))?;
            let key = key.to_ascii_lowercase();
            let action = match value.to_ascii_lowercase().as_str() {
                "ignore" => Action::Ignore,
                "bad" => Action::Bad,
                "die" => Action::Die,
                "ok" => Action::Ok,
                "done" => Action::Done,
                "reset" => Action::Reset,
                n => match n.parse::<usize>() {
                    Ok(j) if j > 0 => Action::Jump(j),
                    _ => return Err(format!("unknown action \"{value}\" in {text}")),
                },
            };
            if key == "default" {
                default = action;
            } else if RETURN_NAMES.contains(&key.as_str()) {
                map.push((key, action));
            } else {
                return Err(format!("unknown return code \"{key}\" in {text}"));
            }
        }
        Ok(Control {
            text: text.into(),
            map,
            default,
        })
    }

    /// The action for a return code name.
    pub fn action(&self, code: &str) -> Action {
        self.map
            .iter()
            .rev()
            .find(|(k, _)| k == code)
            .map_or(self.default, |(_, a)| *a)
    }
}

/// One line of a pam.d file that matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `type control module args…`
    Module {
        /// `auth`, `account`, `session`, `password` (lower case, without a leading `-`).
        ty: String,
        /// The control field.
        control: Control,
        /// The module path as written.
        module: String,
        /// Arguments, brackets removed.
        args: Vec<String>,
    },
    /// `type include|substack FILE`
    Include {
        /// The type whose lines are taken.
        ty: String,
        /// The included file.
        target: String,
    },
    /// `@include FILE` (Debian): every line of the file.
    IncludeAll {
        /// The included file.
        target: String,
    },
    /// A line libpam rejects (it then fails every call of that type).
    Broken {
        /// Why.
        reason: String,
    },
}

/// A parsed line with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The system path of the file.
    pub file: PathBuf,
    /// 1-based line number (of the first physical line).
    pub number: usize,
    /// What it says.
    pub entry: Entry,
}

impl Line {
    /// `file:line`, for messages.
    pub fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.number)
    }
}

/// Splits a pam.d line into fields; `[...]` is one field (`\]` is a literal `]`).
fn fields(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return out;
        };
        let mut field = String::new();
        if first == '[' {
            chars.next();
            let mut depth_closed = false;
            while let Some(c) = chars.next() {
                if c == '\\' && chars.peek() == Some(&']') {
                    field.push(']');
                    chars.next();
                } else if c == ']' {
                    depth_closed = true;
                    break;
                } else {
                    field.push(c);
                }
            }
            out.push(if depth_closed {
                format!("[{field}]")
            } else {
                format!("[{field}")
            });
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                field.push(c);
                chars.next();
            }
            out.push(field);
        }
    }
}

/// Parses a pam.d file: `#` starts a comment anywhere (as in libpam), a trailing `\`
/// continues the line.
pub fn parse_pam_file(file: &Path, text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut start = 0usize;
    for (i, raw) in text.lines().enumerate() {
        if pending.is_empty() {
            start = i.saturating_add(1);
        }
        let (content, comment) = match raw.find('#') {
            Some(p) => (raw.get(..p).unwrap_or(""), true),
            None => (raw, false),
        };
        if !comment {
            if let Some(cont) = content.strip_suffix('\\') {
                pending.push_str(cont);
                pending.push(' ');
                continue;
            }
        }
        pending.push_str(content);
        let line = std::mem::take(&mut pending);
        if let Some(entry) = parse_pam_line(&line) {
            out.push(Line {
                file: file.to_path_buf(),
                number: start,
                entry,
            });
        }
    }
    if let Some(entry) = parse_pam_line(&pending) {
        out.push(Line {
            file: file.to_path_buf(),
            number: start,
            entry,
        });
    }
    out
}

fn parse_pam_line(line: &str) -> Option<Entry> {
    let f = fields(line);
    let first = f.first()?;
    if first == "@include" {
        return Some(match f.get(1) {
            Some(t) => Entry::IncludeAll { target: t.clone() },
            None => Entry::Broken {
                reason: "@include without a file name".into(),
            },
        });
    }
    let ty = first.trim_start_matches('-').to_ascii_lowercase();
    if !["auth", "account", "session", "password"].contains(&ty.as_str()) {
        return Some(Entry::Broken {
            reason: format!("unknown module type \"{first}\""),
        });
    }
    let Some(control) = f.get(1) else {
        return Some(Entry::Broken {
            reason: "no control field".into(),
        });
    };
    let Some(module) = f.get(2) else {
        return Some(Entry::Broken {
            reason: "no module name".into(),
        });
    };
    let lower = control.to_ascii_lowercase();
    if lower == "include" || lower == "substack" {
        return Some(Entry::Include {
            ty,
            target: module.clone(),
        });
    }
    let control = match Control::parse(control) {
        Ok(c) => c,
        Err(reason) => return Some(Entry::Broken { reason }),
    };
    let args = f
        .get(3..)
        .unwrap_or(&[])
        .iter()
        .map(|a| {
            a.strip_prefix('[')
                .and_then(|a| a.strip_suffix(']'))
                .unwrap_or(a)
                .to_string()
        })
        .collect();
    Some(Entry::Module {
        ty,
        control,
        module: module.clone(),
        args,
    })
}

/// The module's base name: `pam_unix` for `pam_unix.so` or `/lib/security/pam_unix.so`.
pub fn module_base(module: &str) -> &str {
    let name = module.rsplit('/').next().unwrap_or(module);
    name.strip_suffix(".so").unwrap_or(name)
}

/// `true` when the module path names pam_totp.
pub fn is_totp(module: &str) -> bool {
    module_base(module) == "pam_totp"
}

/// A module line of one type after includes, ready for [`analyse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackLine {
    /// Where it is written.
    pub line: Line,
    /// The control.
    pub control: Control,
    /// The module path as written.
    pub module: String,
    /// Its arguments.
    pub args: Vec<String>,
}

/// A service's stack of one type, with the problems met while reading it.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    /// The module lines in order.
    pub lines: Vec<StackLine>,
    /// Lines libpam would reject, and includes it could not read.
    pub broken: Vec<(String, String)>,
}

/// Reads the `ty` stack of `service`, following includes inside [`PAM_D`].
pub fn load_stack(files: &dyn Files, service: &str, ty: &str) -> Option<Stack> {
    let path = Path::new(PAM_D).join(service);
    let text = files.read(&path)?;
    let mut stack = Stack::default();
    collect(files, &path, &text, ty, 0, &mut stack);
    Some(stack)
}

fn collect(files: &dyn Files, path: &Path, text: &str, ty: &str, depth: u32, out: &mut Stack) {
    for line in parse_pam_file(path, text) {
        let target = match &line.entry {
            Entry::Module {
                ty: t,
                control,
                module,
                args,
            } => {
                if t == ty {
                    out.lines.push(StackLine {
                        line: line.clone(),
                        control: control.clone(),
                        module: module.clone(),
                        args: args.clone(),
                    });
                }
                continue;
            }
            Entry::Broken { reason } => {
                out.broken.push((line.at(), reason.clone()));
                continue;
            }
            Entry::Include { ty: t, target } if t == ty => target,
            Entry::Include { .. } => continue,
            Entry::IncludeAll { target } => target,
        };
        let inc = if target.starts_with('/') {
            PathBuf::from(target)
        } else {
            Path::new(PAM_D).join(target)
        };
        match (depth < 16, files.read(&inc)) {
            (true, Some(t)) => collect(files, &inc, &t, ty, depth.saturating_add(1), out),
            (false, _) => out
                .broken
                .push((line.at(), "includes nested too deep".into())),
            (true, None) => out
                .broken
                .push((line.at(), format!("cannot read included {}", inc.display()))),
        }
    }
}

/// Modules that check a password (the first factor) when they succeed.
pub const FIRST_FACTORS: [&str; 8] = [
    "pam_unix",
    "pam_unix2",
    "pam_sss",
    "pam_ldap",
    "pam_krb5",
    "pam_winbind",
    "pam_pwdb",
    "pam_userdb",
];

/// What pam_totp can return.
const TOTP_FAILURES: [&str; 7] = [
    "auth_err",
    "maxtries",
    "authinfo_unavail",
    "service_err",
    "conv_err",
    "system_err",
    "buf_err",
];

/// Facts about an auth stack that contains pam_totp, found by walking every path libpam
/// can take through it (each other module succeeding or failing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Some path ends in success.
    pub can_succeed: bool,
    /// Lines (index into the stack) whose success ends or jumps past every pam_totp line and
    /// still logs in.
    pub skipped_by: BTreeSet<usize>,
    /// pam_totp lines whose failure code (named) can still end in success.
    pub failure_ignored: BTreeSet<(usize, &'static str)>,
    /// pam_totp lines that can run before any first factor succeeded.
    pub before_first_factor: BTreeSet<usize>,
    /// pam_totp lines whose success alone (no first factor) can log in.
    pub code_alone: BTreeSet<usize>,
    /// pam_totp lines with nullok whose PAM_IGNORE logs in with no first factor.
    pub nullok_alone: BTreeSet<usize>,
    /// pam_totp lines with nullok whose PAM_IGNORE never ends in success.
    pub nullok_useless: BTreeSet<usize>,
    /// The walk was cut short (too many paths).
    pub truncated: bool,
}

#[derive(Clone, Copy)]
enum Impression {
    Undef,
    Positive,
    Negative,
}

#[derive(Clone)]
struct Walk {
    at: usize,
    impression: Impression,
    status_success: bool,
    first_factor: bool,
    totp_success: Option<usize>,
    totp_ignored: Option<usize>,
    totp_failed: Option<(usize, &'static str)>,
    skip_cause: Option<usize>,
}

/// Walks every path through an auth stack (libpam's `_pam_dispatch_aux` rules).
pub fn analyse(stack: &[StackLine]) -> Analysis {
    let mut a = Analysis::default();
    let totp_at: Vec<usize> = stack
        .iter()
        .enumerate()
        .filter(|(_, l)| is_totp(&l.module))
        .map(|(i, _)| i)
        .collect();
    let mut nullok_success: BTreeSet<usize> = BTreeSet::new();
    let mut todo = vec![Walk {
        at: 0,
        impression: Impression::Undef,
        status_success: false,
        first_factor: false,
        totp_success: None,
        totp_ignored: None,
        totp_failed: None,
        skip_cause: None,
    }];
    let mut budget: u32 = 200_000;
    while let Some(w) = todo.pop() {
        budget = budget.saturating_sub(1);
        if budget == 0 {
            a.truncated = true;
            break;
        }
        let Some(line) = stack.get(w.at) else {
            finish(&w, &mut a, &mut nullok_success);
            continue;
        };
        let base = module_base(&line.module);
        let totp = is_totp(&line.module);
        let outcomes: Vec<&'static str> = if totp {
            let mut v = vec!["success"];
            v.extend(TOTP_FAILURES);
            if line.args.iter().any(|x| x == "nullok") {
                v.push("ignore");
            }
            v
        } else {
            match base {
                "pam_deny" => vec!["auth_err"],
                "pam_permit" => vec!["success"],
                _ => vec!["success", "auth_err"],
            }
        };
        if totp && !w.first_factor {
            a.before_first_factor.insert(w.at);
        }
        for code in outcomes {
            let mut n = w.clone();
            if totp {
                match code {
                    "success" => n.totp_success = Some(w.at),
                    "ignore" => n.totp_ignored = Some(w.at),
                    f => {
                        if n.totp_failed.is_none() {
                            n.totp_failed = Some((w.at, f));
                        }
                    }
                }
            } else if code == "success" && FIRST_FACTORS.contains(&base) {
                n.first_factor = true;
            }
            let positive_ok = matches!(n.impression, Impression::Undef)
                || (matches!(n.impression, Impression::Positive) && n.status_success);
            let action = line.control.action(code);
            let mut stop = false;
            n.at = w.at.saturating_add(1);
            match action {
                Action::Reset => {
                    n.impression = Impression::Undef;
                    n.status_success = false;
                }
                Action::Ok | Action::Done => {
                    if positive_ok && code != "ignore" {
                        n.impression = Impression::Positive;
                        n.status_success = code == "success";
                    }
                    if action == Action::Done && !matches!(n.impression, Impression::Negative) {
                        stop = true;
                    }
                }
                Action::Bad | Action::Die => {
                    if !matches!(n.impression, Impression::Negative) {
                        n.impression = Impression::Negative;
                        n.status_success = false;
                    }
                    stop = action == Action::Die;
                }
                Action::Ignore => {}
                Action::Jump(j) => {
                    let to = w.at.saturating_add(1).saturating_add(j);
                    if totp_at.iter().any(|&t| t > w.at && t < to) && n.skip_cause.is_none() {
                        n.skip_cause = Some(w.at);
                    }
                    n.at = to;
                }
            }
            if stop {
                if totp_at.iter().any(|&t| t > w.at) && n.skip_cause.is_none() {
                    n.skip_cause = Some(w.at);
                }
                n.at = usize::MAX;
            }
            todo.push(n);
        }
    }
    for &t in &totp_at {
        let nullok = stack
            .get(t)
            .is_some_and(|l| l.args.iter().any(|x| x == "nullok"));
        if nullok && !nullok_success.contains(&t) {
            a.nullok_useless.insert(t);
        }
    }
    a
}

fn finish(w: &Walk, a: &mut Analysis, nullok_success: &mut BTreeSet<usize>) {
    let success = matches!(w.impression, Impression::Positive) && w.status_success;
    if !success {
        return;
    }
    a.can_succeed = true;
    if let Some((t, code)) = w.totp_failed {
        a.failure_ignored.insert((t, code));
    }
    if let Some(t) = w.totp_ignored {
        nullok_success.insert(t);
        if !w.first_factor {
            a.nullok_alone.insert(t);
        }
    }
    if w.totp_success.is_none() && w.totp_ignored.is_none() && w.totp_failed.is_none() {
        if let Some(cause) = w.skip_cause {
            a.skipped_by.insert(cause);
        }
    }
    if let (Some(t), false) = (w.totp_success, w.first_factor) {
        a.code_alone.insert(t);
    }
}

/// The nearest known argument name to a misspelled one (edit distance ≤ 2).
pub fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let key = word.split('=').next().unwrap_or(word);
    known
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i.saturating_add(1)];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev
                .get(j)
                .copied()
                .unwrap_or(0)
                .saturating_add(usize::from(ca != *cb));
            let del = prev
                .get(j.saturating_add(1))
                .copied()
                .unwrap_or(0)
                .saturating_add(1);
            let ins = cur.get(j).copied().unwrap_or(0).saturating_add(1);
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

/// The argument names pam_totp knows (SPEC §2).
pub const TOTP_ARGS: [&str; 11] = [
    "secret",
    "state_dir",
    "config",
    "nullok",
    "window",
    "prompt",
    "echo",
    "try_first_pass",
    "use_first_pass",
    "forward_pass",
    "debug",
];

// ---------------------------------------------------------------------------------------
// sshd_config

/// The main sshd configuration file.
pub const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";

/// A setting's effective value and the line that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The value as written (first word for yes/no settings, all words otherwise).
    pub value: String,
    /// `file:line`, or `None` for sshd's built-in default.
    pub origin: Option<String>,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(o) => write!(f, "{} ({o})", self.value),
            None => write!(f, "{} (default)", self.value),
        }
    }
}

/// The settings of sshd_config `doctor` and `enable` care about, first value winning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshdConfig {
    /// `UsePAM` (default no in OpenSSH, Debian sets yes).
    pub use_pam: Setting,
    /// `KbdInteractiveAuthentication` or its old alias `ChallengeResponseAuthentication`.
    pub kbd_interactive: Setting,
    /// `AuthenticationMethods` (default `any`).
    pub auth_methods: Setting,
    /// `PubkeyAuthentication` (default yes).
    pub pubkey: Setting,
    /// Files read, in order.
    pub files: Vec<PathBuf>,
    /// Problems met (unreadable includes).
    pub problems: Vec<String>,
}

fn default_setting(v: &str) -> Setting {
    Setting {
        value: v.into(),
        origin: None,
    }
}

/// Reads sshd_config as sshd does: keywords case-insensitive, the first value wins,
/// `Include` (with `*`/`?` globs, relative to /etc/ssh) read in place, global settings end
/// at the first `Match`.
pub fn read_sshd_config(files: &dyn Files) -> Option<SshdConfig> {
    let text = files.read(Path::new(SSHD_CONFIG))?;
    let mut cfg = SshdConfig {
        use_pam: default_setting("no"),
        kbd_interactive: default_setting("yes"),
        auth_methods: default_setting("any"),
        pubkey: default_setting("yes"),
        files: Vec::new(),
        problems: Vec::new(),
    };
    let mut seen: BTreeSet<&'static str> = BTreeSet::new();
    let mut in_match = false;
    sshd_file(
        files,
        Path::new(SSHD_CONFIG),
        &text,
        0,
        &mut cfg,
        &mut seen,
        &mut in_match,
    );
    Some(cfg)
}

fn sshd_file(
    files: &dyn Files,
    path: &Path,
    text: &str,
    depth: u32,
    cfg: &mut SshdConfig,
    seen: &mut BTreeSet<&'static str>,
    in_match: &mut bool,
) {
    cfg.files.push(path.to_path_buf());
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line
            .split(|c: char| c.is_whitespace() || c == '=')
            .filter(|w| !w.is_empty());
        let Some(key) = words.next() else { continue };
        let rest: Vec<&str> = words.collect();
        let key = key.to_ascii_lowercase();
        let origin = format!("{}:{}", path.display(), i.saturating_add(1));
        if key == "include" {
            for pattern in &rest {
                let pat = if pattern.starts_with('/') {
                    PathBuf::from(pattern)
                } else {
                    Path::new("/etc/ssh").join(pattern)
                };
                for inc in expand_glob(files, &pat) {
                    if depth >= 16 {
                        cfg.problems
                            .push(format!("{origin}: includes nested too deep"));
                        continue;
                    }
                    match files.read(&inc) {
                        Some(t) => sshd_file(
                            files,
                            &inc,
                            &t,
                            depth.saturating_add(1),
                            cfg,
                            seen,
                            in_match,
                        ),
                        None => cfg
                            .problems
                            .push(format!("{origin}: cannot read {}", inc.display())),
                    }
                }
            }
            continue;
        }
        if key == "match" {
            *in_match = true;
            continue;
        }
        if *in_match {
            continue;
        }
        let (slot, name): (&mut Setting, &'static str) = match key.as_str() {
            "usepam" => (&mut cfg.use_pam, "usepam"),
            "kbdinteractiveauthentication" | "challengeresponseauthentication" => {
                (&mut cfg.kbd_interactive, "kbd")
            }
            "authenticationmethods" => (&mut cfg.auth_methods, "authmethods"),
            "pubkeyauthentication" => (&mut cfg.pubkey, "pubkey"),
            _ => continue,
        };
        if seen.insert(name) {
            let value = if name == "authmethods" {
                rest.join(" ")
            } else {
                rest.first()
                    .map(|v| v.to_ascii_lowercase())
                    .unwrap_or_default()
            };
            *slot = Setting {
                value,
                origin: Some(origin),
            };
        }
    }
}

/// Expands `*` and `?` in the last component of an absolute path, sorted (as glob(3));
/// a path without wildcards is returned as is.
fn expand_glob(files: &dyn Files, pat: &Path) -> Vec<PathBuf> {
    let name = pat.file_name().map(|n| n.to_string_lossy().into_owned());
    let (Some(dir), Some(name)) = (pat.parent(), name) else {
        return vec![pat.to_path_buf()];
    };
    if !name.contains(['*', '?']) {
        return vec![pat.to_path_buf()];
    }
    files
        .list(dir)
        .into_iter()
        .filter(|n| !n.starts_with('.') && glob_match(name.as_bytes(), n.as_bytes()))
        .map(|n| dir.join(n))
        .collect()
}

fn glob_match(p: &[u8], s: &[u8]) -> bool {
    match (p.split_first(), s.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            glob_match(rest, s) || s.split_first().is_some_and(|(_, t)| glob_match(p, t))
        }
        (Some((b'?', rest)), Some((_, t))) => glob_match(rest, t),
        (Some((c, rest)), Some((d, t))) if c == d => glob_match(rest, t),
        _ => false,
    }
}

/// How `AuthenticationMethods` treats keyboard-interactive (which runs the PAM stack).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Methods {
    /// Every list that runs PAM requires `publickey` before it.
    pub key_first: bool,
    /// No list offers keyboard-interactive: PAM's code is never asked.
    pub no_kbd: bool,
    /// Some list logs in without keyboard-interactive.
    pub some_without_kbd: bool,
}

/// Classifies an `AuthenticationMethods` value.
pub fn methods(value: &str) -> Methods {
    if value.trim().eq_ignore_ascii_case("any") || value.trim().is_empty() {
        return Methods {
            key_first: false,
            no_kbd: false,
            some_without_kbd: true,
        };
    }
    let mut key_first = true;
    let mut any_kbd = false;
    let mut some_without = false;
    for list in value.split_whitespace() {
        let mut key_seen = false;
        let mut kbd = false;
        for m in list.split(',') {
            let m = m.split(':').next().unwrap_or(m);
            match m {
                "publickey" => key_seen = true,
                "keyboard-interactive" | "password" => {
                    if m == "keyboard-interactive" {
                        kbd = true;
                    }
                    if !key_seen {
                        key_first = false;
                    }
                }
                _ => {}
            }
        }
        any_kbd |= kbd;
        some_without |= !kbd;
    }
    Methods {
        key_first,
        no_kbd: !any_kbd,
        some_without_kbd: some_without,
    }
}

/// Parses `sshd -T` output into the same settings (origins unknown).
pub fn parse_sshd_t(out: &str) -> Option<(String, String, String, String)> {
    let get = |k: &str| {
        out.lines().find_map(|l| {
            let (key, value) = l.split_once(' ')?;
            (key == k).then(|| value.trim().to_string())
        })
    };
    Some((
        get("usepam")?,
        get("kbdinteractiveauthentication")?,
        get("authenticationmethods").unwrap_or_else(|| "any".into()),
        get("pubkeyauthentication").unwrap_or_else(|| "yes".into()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem(Vec<(&'static str, &'static str)>);
    impl Files for Mem {
        fn read(&self, path: &Path) -> Option<String> {
            self.0
                .iter()
                .find(|(p, _)| Path::new(p) == path)
                .map(|(_, t)| (*t).to_string())
        }
        fn list(&self, dir: &Path) -> Vec<String> {
            let mut v: Vec<String> = self
                .0
                .iter()
                .filter_map(|(p, _)| {
                    let p = Path::new(p);
                    (p.parent() == Some(dir))
                        .then(|| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                        .flatten()
                })
                .collect();
            v.sort();
            v
        }
    }

    const COMMON_AUTH: &str = "auth [success=1 default=ignore] pam_unix.so nullok\n\
        auth requisite pam_deny.so\nauth required pam_permit.so\nauth optional pam_cap.so\n";

    fn stack(sshd: &'static str) -> Vec<StackLine> {
        let m = Mem(vec![
            ("/etc/pam.d/sshd", sshd),
            ("/etc/pam.d/common-auth", COMMON_AUTH),
        ]);
        load_stack(&m, "sshd", "auth").unwrap().lines
    }

    #[test]
    fn comments_continuations_and_brackets_are_read_as_libpam_does() {
        let lines = parse_pam_file(
            Path::new("/x"),
            "# c\nauth [success=ok \\\n default=die] pam_totp.so [prompt=Code: ] nullok # [1]\n",
        );
        assert_eq!(lines.len(), 1);
        let Entry::Module { control, args, .. } = &lines[0].entry else {
            panic!()
        };
        assert_eq!(control.action("auth_err"), Action::Die);
        assert_eq!(args, &["prompt=Code: ", "nullok"]);
        assert_eq!(lines[0].number, 2);
    }

    #[test]
    fn password_then_code_via_common_auth_is_clean() {
        let a = analyse(&stack(
            "@include common-auth\nauth [success=ok ignore=ignore default=die] pam_totp.so\n",
        ));
        assert!(a.can_succeed);
        assert!(a.skipped_by.is_empty() && a.failure_ignored.is_empty());
        assert!(a.before_first_factor.is_empty(), "{a:?}");
        assert!(a.code_alone.is_empty());
    }

    #[test]
    fn a_sufficient_password_before_the_code_skips_it() {
        let a = analyse(&stack(
            "auth sufficient pam_unix.so\nauth required pam_totp.so\n",
        ));
        assert_eq!(a.skipped_by.iter().copied().collect::<Vec<_>>(), vec![0]);
        assert_eq!(a.before_first_factor.len(), 1);
    }

    #[test]
    fn optional_or_default_ignore_lets_failures_through() {
        for s in [
            "@include common-auth\nauth optional pam_totp.so\n",
            "@include common-auth\nauth [success=ok default=ignore] pam_totp.so\n",
        ] {
            let a = analyse(&stack(s));
            assert!(
                a.failure_ignored.iter().any(|(_, c)| *c == "auth_err"),
                "{s}"
            );
        }
    }

    #[test]
    fn the_pam_auth_update_profile_is_clean() {
        let m = Mem(vec![
            ("/etc/pam.d/su", "auth sufficient pam_rootok.so\n@include common-auth\n"),
            (
                "/etc/pam.d/common-auth",
                "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\n\
                 auth required pam_permit.so\nauth requisite pam_totp.so nullok\nauth optional pam_cap.so\n",
            ),
        ]);
        let a = analyse(&load_stack(&m, "su", "auth").unwrap().lines);
        assert!(a.can_succeed && a.failure_ignored.is_empty(), "{a:?}");
        assert!(a.before_first_factor.is_empty() && a.code_alone.is_empty());
        assert!(a.nullok_alone.is_empty() && a.nullok_useless.is_empty());
        assert_eq!(a.skipped_by.iter().copied().collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn code_first_and_code_alone_are_seen() {
        let a = analyse(&stack("auth required pam_totp.so\n@include common-auth\n"));
        assert!(!a.before_first_factor.is_empty());
        assert!(a.code_alone.is_empty());
        let a = analyse(&stack(
            "auth [success=done ignore=ignore default=die] pam_totp.so\nauth requisite pam_deny.so\n",
        ));
        assert!(!a.code_alone.is_empty());
        assert!(a.nullok_useless.is_empty());
        let a = analyse(&stack(
            "auth [success=done ignore=ignore default=die] pam_totp.so nullok\nauth requisite pam_deny.so\n",
        ));
        assert_eq!(a.nullok_useless.len(), 1);
    }

    #[test]
    fn first_value_wins_across_includes_in_order() {
        let m = Mem(vec![
            (
                "/etc/ssh/sshd_config",
                "Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\n",
            ),
            ("/etc/ssh/sshd_config.d/20-b.conf", "ChallengeResponseAuthentication yes\n"),
            ("/etc/ssh/sshd_config.d/10-a.conf", "usepam no\n"),
            ("/etc/ssh/sshd_config.d/x.txt", "KbdInteractiveAuthentication no\n"),
        ]);
        let c = read_sshd_config(&m).unwrap();
        assert_eq!(c.use_pam.value, "no");
        assert_eq!(
            c.use_pam.origin.as_deref(),
            Some("/etc/ssh/sshd_config.d/10-a.conf:1")
        );
        assert_eq!(c.kbd_interactive.value, "yes");
        assert_eq!(c.auth_methods.value, "any");
    }

    #[test]
    fn methods_are_classified() {
        assert!(methods("publickey,keyboard-interactive").key_first);
        assert!(!methods("any").key_first);
        assert!(!methods("keyboard-interactive publickey,keyboard-interactive").key_first);
        assert!(methods("publickey").no_kbd);
        assert!(methods("publickey publickey,keyboard-interactive").some_without_kbd);
    }

    #[test]
    fn misspellings_find_their_argument() {
        assert_eq!(nearest("nulok", &TOTP_ARGS), Some("nullok"));
        assert_eq!(nearest("windw=2", &TOTP_ARGS), Some("window"));
        assert_eq!(nearest("banana", &TOTP_ARGS), None);
    }
}
