//! The module-argument parser: the argv of a pam.d line, split on spaces as libpam does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::config::check_args;

fuzz_target!(|data: &[u8]| {
    let args: Vec<&[u8]> = data
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|a| !a.is_empty())
        .collect();
    if let Ok(o) = check_args(&args) {
        assert!(o.window.map_or(true, |w| w <= 20));
        assert!(o.state_dir.is_absolute());
    }
});
