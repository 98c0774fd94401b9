//! The secret-file parser (SPEC §5): any bytes, never a panic; a parsed file writes back
//! to text that parses to the same parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::store::Secret;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Secret::parse(data, Path::new("/fuzz")) {
        let text = s.to_toml();
        let again = Secret::parse(text.as_bytes(), Path::new("/fuzz")).expect("round trip");
        assert_eq!(again.id, s.id);
        assert_eq!(again.kind, s.kind);
        assert_eq!(again.digits, s.digits);
        assert_eq!(again.key.bytes(), s.key.bytes());
    }
});
