//! The verification decision: which counters are candidates, and which one (if any) the
//! answer matches, computed in constant time over every candidate (SECURITY.md A2, A3, A5).

use subtle::{ConditionallySelectable, ConstantTimeEq, ConstantTimeGreater};

use super::Mac;

/// The TOTP time step of `unix_time` (RFC 6238 §4.2, T0 = 0).
pub fn totp_step(unix_time: u64, period: u64) -> u64 {
    unix_time.checked_div(period).unwrap_or(0)
}

/// An inclusive range of counters (HOTP) or time steps (TOTP) to compare against, and the
/// watermark below which a match is a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidates {
    first: u64,
    last: u64,
    /// Counters ≤ this were already used; `None` when nothing was ever accepted.
    used_up_to: Option<u64>,
}

impl Candidates {
    /// TOTP: steps `now-window ..= now+window`; steps ≤ `watermark` match only as replays.
    pub fn totp(now_step: u64, window: u32, watermark: Option<u64>) -> Self {
        Candidates {
            first: now_step.saturating_sub(u64::from(window)),
            last: now_step.saturating_add(u64::from(window)),
            used_up_to: watermark,
        }
    }

    /// HOTP: counters `next ..= next+lookahead-1` (RFC 4226 §7.4 look-ahead).
    pub fn hotp(next: u64, lookahead: u32) -> Self {
        Candidates {
            first: next,
            last: next.saturating_add(u64::from(lookahead.max(1)).saturating_sub(1)),
            used_up_to: next.checked_sub(1),
        }
    }

    /// How many HMACs a verification computes.
    pub fn len(&self) -> u64 {
        self.last.saturating_sub(self.first).saturating_add(1)
    }

    /// Never empty: there is always at least one candidate.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The outcome of comparing an answer against all candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Matched this counter or step, above the watermark.
    Fresh(u64),
    /// Matched only counters or steps at or below the watermark.
    Replayed,
    /// Matched nothing.
    None,
}

/// Compares `answer` with the code of every candidate without branching on secret data;
/// prefers the lowest fresh match (two counters in a look-ahead can share a code: the
/// earlier one is what the token showed, and the watermark moves no further than needed).
/// The loop always runs over all candidates.
pub fn find_match(mac: &Mac, digits: u32, answer: u32, candidates: Candidates) -> Match {
    let mut fresh_found = subtle::Choice::from(0);
    let mut fresh_step = 0u64;
    let mut stale_found = subtle::Choice::from(0);
    let has_watermark = subtle::Choice::from(u8::from(candidates.used_up_to.is_some()));
    let watermark = candidates.used_up_to.unwrap_or(0);
    let mut step = candidates.first;
    loop {
        let mut code = mac.code(step, digits);
        let eq = code.ct_eq(&answer);
        code = 0;
        let _ = code;
        // Watermark and steps are not secret; only `eq` is.
        let is_fresh = !has_watermark | step.ct_gt(&watermark);
        let fresh = eq & is_fresh;
        fresh_step = u64::conditional_select(&fresh_step, &step, fresh & !fresh_found);
        fresh_found |= fresh;
        stale_found |= eq & !is_fresh;
        if step >= candidates.last {
            break;
        }
        step = step.saturating_add(1);
    }
    if bool::from(fresh_found) {
        Match::Fresh(fresh_step)
    } else if bool::from(stale_found) {
        Match::Replayed
    } else {
        Match::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::{Algorithm, Key};
    use zeroize::Zeroizing;

    fn mac() -> Mac {
        Mac::new(
            Algorithm::Sha1,
            &Key::new(Zeroizing::new(b"12345678901234567890".to_vec())).unwrap(),
        )
    }

    #[test]
    fn totp_window_accepts_neighbouring_steps_only() {
        let m = mac();
        let now = 1000;
        for (step, expect) in [
            (999, true),
            (1000, true),
            (1001, true),
            (998, false),
            (1002, false),
        ] {
            let code = m.code(step, 6);
            let got = find_match(&m, 6, code, Candidates::totp(now, 1, None));
            assert_eq!(got == Match::Fresh(step), expect, "step {step}");
        }
    }

    #[test]
    fn replayed_code_is_refused_even_within_the_window() {
        let m = mac();
        let code = m.code(1000, 6);
        assert_eq!(
            find_match(&m, 6, code, Candidates::totp(1000, 1, Some(1000))),
            Match::Replayed
        );
        let older = m.code(999, 6);
        assert_eq!(
            find_match(&m, 6, older, Candidates::totp(1000, 1, Some(1000))),
            Match::Replayed
        );
        let newer = m.code(1001, 6);
        assert_eq!(
            find_match(&m, 6, newer, Candidates::totp(1000, 1, Some(1000))),
            Match::Fresh(1001)
        );
    }

    #[test]
    fn hotp_look_ahead_finds_later_counters_but_not_earlier_ones() {
        let m = mac();
        assert_eq!(
            find_match(&m, 6, m.code(8, 6), Candidates::hotp(5, 10)),
            Match::Fresh(8)
        );
        assert_eq!(
            find_match(&m, 6, m.code(4, 6), Candidates::hotp(5, 10)),
            Match::None
        );
        assert_eq!(
            find_match(&m, 6, m.code(15, 6), Candidates::hotp(5, 10)),
            Match::None
        );
        assert_eq!(Candidates::hotp(5, 10).len(), 10);
    }

    #[test]
    fn steps_near_the_ends_of_the_range_do_not_overflow() {
        let m = mac();
        let c = Candidates::totp(u64::MAX, 3, None);
        assert_eq!(c.len(), 4);
        let _ = find_match(&m, 6, 0, c);
        assert_eq!(Candidates::totp(0, 3, None).len(), 4);
    }
}
