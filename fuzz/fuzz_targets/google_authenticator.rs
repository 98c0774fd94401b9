//! google-authenticator-libpam files (`pam-totp import-google-authenticator`): any text,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::otp::parse_google_authenticator;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_google_authenticator(text);
    }
});
