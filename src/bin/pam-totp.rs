//! The `pam-totp` command: enroll, status, reset, import, test, doctor, enable, try.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    pam_totp::cli::main()
}
