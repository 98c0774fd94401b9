//! The terminal: output that fails cleanly on a closed pipe, prompts read from stdin with
//! echo optionally off, and the "secrets only to a terminal" test.

use std::io::Write as _;
use std::os::fd::AsFd;
use zeroize::Zeroizing;

use super::Error;
use crate::sys;

/// The longest answer line kept (PAM_MAX_RESP_SIZE).
const MAX_LINE: usize = 512;

/// Whether standard output is a terminal (where a secret may be printed).
pub(crate) fn stdout_is_tty() -> bool {
    sys::isatty(std::io::stdout().as_fd())
}

/// Whether standard input is a terminal (where a code can be asked for).
pub(crate) fn stdin_is_tty() -> bool {
    sys::isatty(std::io::stdin().as_fd())
}

/// Writes `text` to stdout as is.
pub(crate) fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::failed(format!("cannot write to standard output: {e}")))
}

/// Writes one line to stdout.
pub(crate) fn say(line: &str) -> Result<(), Error> {
    print(&format!("{line}\n"))
}

/// `pam-totp: <msg>` on stderr.
pub(crate) fn error_line(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "pam-totp: {msg}");
}

/// `pam-totp: note: <msg>` on stderr.
pub(crate) fn note(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "pam-totp: note: {msg}");
}

/// Shows `prompt` on stdout and reads one line from stdin (without the newline), with the
/// echo off when `echo` is false and stdin is a terminal. A signal caught by
/// [`sys::catch_interrupts`] ends the read with [`Error::Interrupted`]; end of input with
/// nothing typed is an error.
pub(crate) fn read_line(prompt: &str, echo: bool) -> Result<Zeroizing<Vec<u8>>, Error> {
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    // Echo off before the prompt appears, so nothing typed after it is ever shown.
    let _quiet = if !echo && sys::isatty(fd) {
        Some(
            sys::EchoOff::new(fd)
                .map_err(|e| Error::failed(format!("cannot turn the terminal echo off: {e}")))?,
        )
    } else {
        None
    };
    print(prompt)?;
    let mut line = Zeroizing::new(Vec::with_capacity(64));
    let mut byte = [0u8; 1];
    loop {
        if sys::interrupted() {
            return Err(Error::Interrupted);
        }
        // One byte at a time: nothing after the newline is consumed from the terminal or pipe.
        match rustix::io::read(fd, &mut byte) {
            Ok(0) => {
                if line.is_empty() {
                    return Err(Error::failed("end of input while waiting for an answer"));
                }
                break;
            }
            Ok(_) => {
                if byte == [b'\n'] {
                    break;
                }
                if line.len() < MAX_LINE {
                    line.push(byte[0]);
                }
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::failed(format!("cannot read the answer: {e}"))),
        }
    }
    byte = [0];
    let _ = byte;
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}
