//! `pam_totp.conf` (TOML, strict): any bytes, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::config::ConfigFile;

fuzz_target!(|data: &[u8]| {
    let _ = ConfigFile::parse(data);
});
