//! The rate-limit decision (SPEC §4, SECURITY.md A4): failures per sliding interval and per
//! sliding day, keyed by uid, decided from the failure times stored in the state.

/// Seconds in the daily budget's sliding window.
pub const DAY: u64 = 86_400;

/// The most failure times a state keeps; limits above it cannot be expressed.
pub const MAX_TRACKED_FAILURES: usize = 64;

/// The limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failures allowed per `interval` before `PAM_MAXTRIES` (default 5).
    pub max_failures: u32,
    /// The sliding interval in seconds (default 900).
    pub interval: u64,
    /// Failures allowed per sliding 24 h (default 8).
    pub max_daily: u32,
}

impl Default for Limits {
    fn default() -> Self {
        // 8 guesses a day at p = 3e-6 each: 1-(1-3e-6)^(8*365) = 0.87 % a year.
        Limits {
            max_failures: 5,
            interval: 900,
            max_daily: 8,
        }
    }
}

/// When `limit` of the failures (newest last) fall within `span` seconds before `now`,
/// the number of seconds until the oldest of them leaves the window.
fn window_block(failures: &[u64], limit: u32, span: u64, now: u64) -> Option<u64> {
    let limit = usize::try_from(limit).ok()?;
    if limit == 0 || failures.len() < limit {
        return None;
    }
    let oldest_counted = *failures.get(failures.len().saturating_sub(limit))?;
    let until = oldest_counted.saturating_add(span);
    (until > now).then(|| until.saturating_sub(now))
}

/// Seconds until another code may be tried, or `None` when not limited. `short_reset` is
/// the time of the last success: it resets the short window (failures up to and including
/// that second) but not the daily budget.
pub fn limited_for(limits: &Limits, failures: &[u64], short_reset: u64, now: u64) -> Option<u64> {
    let short = window_block(
        since_reset(failures, short_reset),
        limits.max_failures,
        limits.interval,
        now,
    );
    let daily = window_block(failures, limits.max_daily, DAY, now);
    match (short, daily) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The failures after the last success (those up to and including its second are forgiven
/// by the short window).
fn since_reset(failures: &[u64], short_reset: u64) -> &[u64] {
    let start = failures.partition_point(|&t| t <= short_reset);
    failures.get(start..).unwrap_or(&[])
}

/// The counts a log line reports: failures in the short window since the last success, and
/// in the last 24 h.
pub fn counts(limits: &Limits, failures: &[u64], short_reset: u64, now: u64) -> (usize, usize) {
    (
        failures_within(since_reset(failures, short_reset), limits.interval, now),
        failures_within(failures, DAY, now),
    )
}

/// Counts failures within the last `span` seconds (for `pam-totp status` and log lines).
pub fn failures_within(failures: &[u64], span: u64, now: u64) -> usize {
    failures
        .iter()
        .filter(|&&t| t.saturating_add(span) > now)
        .count()
}

/// Appends a failure at `now`, keeping the newest [`MAX_TRACKED_FAILURES`] in order.
pub fn record_failure(failures: &mut Vec<u64>, now: u64) {
    failures.push(now);
    failures.sort_unstable();
    if failures.len() > MAX_TRACKED_FAILURES {
        let excess = failures.len().saturating_sub(MAX_TRACKED_FAILURES);
        failures.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_in_fifteen_minutes_block_until_the_oldest_expires() {
        let l = Limits::default();
        let f = vec![1000, 1100, 1200, 1300];
        assert_eq!(limited_for(&l, &f, 0, 1400), None);
        let f = vec![1000, 1100, 1200, 1300, 1400];
        assert_eq!(limited_for(&l, &f, 0, 1400), Some(500));
        assert_eq!(limited_for(&l, &f, 0, 1900), None);
    }

    #[test]
    fn a_success_resets_the_short_window_but_not_the_daily_budget() {
        let l = Limits::default();
        let f = vec![1000, 1100, 1200, 1300, 1400];
        assert_eq!(limited_for(&l, &f, 1450, 1500), None);
        let f = vec![100, 200, 300, 2000, 3000, 4000, 5000, 6000];
        assert_eq!(limited_for(&l, &f, 6500, 7000), Some(100 + DAY - 7000));
    }

    #[test]
    fn logged_counts_forgive_failures_before_a_success_only_in_the_short_window() {
        let f = vec![1000, 1100, 1200];
        assert_eq!(counts(&Limits::default(), &f, 1100, 1300), (1, 3));
    }

    #[test]
    fn three_mistypes_in_a_row_are_not_limited() {
        assert_eq!(limited_for(&Limits::default(), &[10, 20, 30], 0, 40), None);
    }

    #[test]
    fn the_failure_list_stays_bounded_and_ordered() {
        let mut f = Vec::new();
        for t in (0..200).rev() {
            record_failure(&mut f, t);
        }
        assert_eq!(f.len(), MAX_TRACKED_FAILURES);
        assert!(f.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(failures_within(&f, 10, 199), 10);
    }
}
