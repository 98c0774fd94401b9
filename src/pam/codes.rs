//! The one place outcomes become PAM return codes (SPEC §3). No error maps to
//! `PAM_SUCCESS` or `PAM_IGNORE`.

use std::ffi::c_int;

use super::ffi::*;
use crate::auth::{Outcome, Reject};

/// The PAM code for an outcome.
pub fn pam_code(outcome: &Outcome) -> c_int {
    match outcome {
        Outcome::Accepted(_) => PAM_SUCCESS,
        Outcome::Rejected(
            Reject::Wrong
            | Reject::Malformed
            | Reject::Replayed
            | Reject::ScratchUsed
            | Reject::UnknownUser
            | Reject::NotEnrolled
            | Reject::NoAuthtok
            | Reject::Unsafe(_),
        ) => PAM_AUTH_ERR,
        Outcome::RateLimited => PAM_MAXTRIES,
        Outcome::Ignored => PAM_IGNORE,
        Outcome::Unavailable(_) => PAM_AUTHINFO_UNAVAIL,
        Outcome::ConvFailed => PAM_CONV_ERR,
        Outcome::BadConfig(_) => PAM_SERVICE_ERR,
        Outcome::SystemError(_) => PAM_SYSTEM_ERR,
    }
}

/// The name of a PAM code, for messages and tests.
pub fn code_name(code: c_int) -> &'static str {
    match code {
        PAM_SUCCESS => "PAM_SUCCESS",
        PAM_SERVICE_ERR => "PAM_SERVICE_ERR",
        PAM_SYSTEM_ERR => "PAM_SYSTEM_ERR",
        PAM_BUF_ERR => "PAM_BUF_ERR",
        PAM_AUTH_ERR => "PAM_AUTH_ERR",
        PAM_AUTHINFO_UNAVAIL => "PAM_AUTHINFO_UNAVAIL",
        PAM_USER_UNKNOWN => "PAM_USER_UNKNOWN",
        PAM_MAXTRIES => "PAM_MAXTRIES",
        PAM_CONV_ERR => "PAM_CONV_ERR",
        PAM_IGNORE => "PAM_IGNORE",
        PAM_ABORT => "PAM_ABORT",
        _ => "PAM error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Method;
    use std::path::PathBuf;

    /// Walks SPEC §3 row by row.
    #[test]
    fn every_row_of_the_return_code_table_maps_as_the_spec_says() {
        let unsafe_file = || crate::store::Error::Unsafe {
            path: PathBuf::from("/x"),
            reason: "mode 0644".into(),
        };
        let rows: Vec<(Outcome, c_int)> = vec![
            (Outcome::Accepted(Method::Code), PAM_SUCCESS),
            (Outcome::Accepted(Method::Scratch), PAM_SUCCESS),
            (Outcome::Rejected(Reject::Wrong), PAM_AUTH_ERR),
            (Outcome::Rejected(Reject::Malformed), PAM_AUTH_ERR),
            (Outcome::Rejected(Reject::Replayed), PAM_AUTH_ERR),
            (Outcome::Rejected(Reject::ScratchUsed), PAM_AUTH_ERR),
            (Outcome::Rejected(Reject::UnknownUser), PAM_AUTH_ERR),
            (Outcome::RateLimited, PAM_MAXTRIES),
            (Outcome::Ignored, PAM_IGNORE),
            (Outcome::Rejected(Reject::NotEnrolled), PAM_AUTH_ERR),
            (
                Outcome::Rejected(Reject::Unsafe(unsafe_file())),
                PAM_AUTH_ERR,
            ),
            (Outcome::Unavailable("garbled".into()), PAM_AUTHINFO_UNAVAIL),
            (Outcome::ConvFailed, PAM_CONV_ERR),
            (Outcome::BadConfig("nulok".into()), PAM_SERVICE_ERR),
            (Outcome::SystemError("panic".into()), PAM_SYSTEM_ERR),
        ];
        for (outcome, code) in rows {
            assert_eq!(pam_code(&outcome), code, "{outcome:?}");
        }
    }
}
