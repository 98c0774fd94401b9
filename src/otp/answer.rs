//! Normalising what the user typed (SPEC §4): spaces and tabs anywhere and a trailing CR/LF
//! are removed; the rest must be a code of the right length or a scratch code.

use zeroize::{Zeroize, Zeroizing};

/// Answers longer than this (`PAM_MAX_RESP_SIZE`) are rejected unparsed.
pub const MAX_ANSWER_LEN: usize = 512;

/// What a normalised answer can be checked as.
#[derive(PartialEq, Eq)]
pub enum Answer {
    /// A `digits`-digit code; it may also be a low-entropy (8-digit, imported) scratch code.
    Code {
        /// The numeric value of the code.
        value: u32,
        /// The digits as typed (for comparison against imported 8-digit scratch codes).
        text: Zeroizing<String>,
    },
    /// Only a scratch code: 8 digits when codes have 6 or 7, or 16 base32 characters.
    Scratch(Zeroizing<String>),
    /// Empty, too long, or neither: rejected without counting and without the lock.
    Malformed,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Code { .. } => write!(f, "Answer::Code(<redacted>)"),
            Answer::Scratch(_) => write!(f, "Answer::Scratch(<redacted>)"),
            Answer::Malformed => write!(f, "Answer::Malformed"),
        }
    }
}

/// Normalises raw answer bytes for a secret with `digits` digits.
pub fn normalize_answer(raw: &[u8], digits: u32) -> Answer {
    if raw.len() > MAX_ANSWER_LEN {
        return Answer::Malformed;
    }
    let mut end = raw.len();
    while end > 0 && matches!(raw.get(end - 1), Some(b'\r' | b'\n')) {
        end -= 1;
    }
    let mut clean = Zeroizing::new(String::with_capacity(64));
    for &b in raw.iter().take(end) {
        match b {
            b' ' | b'\t' => {}
            // Dashes only group scratch codes ("ABCD-EFGH-…"); a code never has one.
            b'-' => {}
            b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' => {
                if clean.len() >= 64 {
                    return Answer::Malformed;
                }
                clean.push(char::from(b.to_ascii_uppercase()));
            }
            _ => return Answer::Malformed,
        }
    }
    let all_digits = !clean.is_empty() && clean.bytes().all(|b| b.is_ascii_digit());
    let has_dash = raw.contains(&b'-');
    if all_digits && !has_dash && clean.len() == digits as usize {
        let mut value: u32 = 0;
        for b in clean.bytes() {
            value = value
                .wrapping_mul(10)
                .wrapping_add(u32::from(b.wrapping_sub(b'0')));
        }
        let answer = Answer::Code { value, text: clean };
        value.zeroize();
        return answer;
    }
    if all_digits && clean.len() == 8 {
        return Answer::Scratch(clean);
    }
    if clean.len() == 16
        && clean
            .bytes()
            .all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7'))
    {
        return Answer::Scratch(clean);
    }
    Answer::Malformed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(raw: &[u8], digits: u32) -> Option<u32> {
        match normalize_answer(raw, digits) {
            Answer::Code { value, .. } => Some(value),
            _ => None,
        }
    }

    #[test]
    fn spaces_tabs_and_trailing_newlines_are_removed() {
        assert_eq!(code(b" 123456 ", 6), Some(123456));
        assert_eq!(code(b"123 456", 6), Some(123456));
        assert_eq!(code(b"123456\r\n", 6), Some(123456));
        assert_eq!(code(b"1\t2\t3\t4\t5\t6", 6), Some(123456));
        assert_eq!(code(b"012345", 6), Some(12345));
    }

    #[test]
    fn wrong_lengths_and_foreign_characters_are_malformed() {
        for raw in [
            &b""[..],
            b"12345",
            b"1234567",
            b"12345x",
            b"123456\n7",
            b"12-3456",
            "١٢٣٤٥٦".as_bytes(),
            b"\xff\xfe123456",
        ] {
            assert_eq!(normalize_answer(raw, 6), Answer::Malformed, "{raw:?}");
        }
        assert_eq!(normalize_answer(&[b'1'; 513], 6), Answer::Malformed);
    }

    #[test]
    fn scratch_codes_are_recognised_in_both_forms() {
        assert!(matches!(
            normalize_answer(b"12345678", 6),
            Answer::Scratch(_)
        ));
        assert!(matches!(
            normalize_answer(b"abcd-efgh-ijkl-mnop", 6),
            Answer::Scratch(_)
        ));
        assert!(matches!(
            normalize_answer(b"ABCD EFGH IJKL MNOP\n", 6),
            Answer::Scratch(_)
        ));
        // With 8-digit codes an 8-digit answer is a code (and may also be checked as scratch).
        assert!(matches!(
            normalize_answer(b"12345678", 8),
            Answer::Code { .. }
        ));
    }
}
