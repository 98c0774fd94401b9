//! The answer normaliser (SPEC §4): any bytes the user can type, for every digit count.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::otp::{normalize_answer, Answer, MAX_ANSWER_LEN};

fuzz_target!(|data: &[u8]| {
    for digits in [6u32, 7, 8] {
        match normalize_answer(data, digits) {
            Answer::Code { value, text } => {
                assert!(data.len() <= MAX_ANSWER_LEN);
                assert_eq!(text.len(), digits as usize);
                assert!(text.bytes().all(|b| b.is_ascii_digit()));
                assert!(u64::from(value) < 10u64.pow(digits));
            }
            Answer::Scratch(s) => {
                assert!(data.len() <= MAX_ANSWER_LEN);
                assert!(s.len() == 8 || s.len() == 16);
            }
            Answer::Malformed => {}
        }
    }
});
