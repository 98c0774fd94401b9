//! `otpauth://` URIs (import, tests): any string, never a panic; what parses re-encodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::otp::{otpauth_uri, parse_otpauth_uri};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((params, secret)) = parse_otpauth_uri(text) {
        let uri = otpauth_uri(&params, &secret);
        let (again, secret2) = parse_otpauth_uri(&uri).expect("a built URI parses");
        assert_eq!(again.hotp, params.hotp);
        assert_eq!(again.digits, params.digits);
        assert_eq!(secret2.as_str(), secret.as_str());
    }
});
