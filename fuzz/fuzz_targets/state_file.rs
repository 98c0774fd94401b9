//! The state-file decoder (two checksummed A/B slots): any bytes, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::store::{decode_state_file, STATE_FILE_SIZE};

fuzz_target!(|data: &[u8]| {
    let _ = decode_state_file(data);
    // Most inputs have the wrong size; also try them padded to a whole file, so the slot
    // decoder itself sees arbitrary bytes behind a valid-looking header.
    let mut whole = vec![0u8; STATE_FILE_SIZE];
    let n = data.len().min(STATE_FILE_SIZE);
    whole[..n].copy_from_slice(&data[..n]);
    if let Ok((slot, _, _)) = decode_state_file(&whole) {
        assert!(slot < 2);
    }
    // The same bytes as slot B behind an empty slot A.
    let mut b = vec![0u8; STATE_FILE_SIZE];
    let m = data.len().min(STATE_FILE_SIZE / 2);
    b[STATE_FILE_SIZE / 2..STATE_FILE_SIZE / 2 + m].copy_from_slice(&data[..m]);
    let _ = decode_state_file(&b);
});
