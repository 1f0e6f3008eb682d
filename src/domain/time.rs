use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};
use time::macros::format_description;
use time::OffsetDateTime;

/// A point in time, kept as milliseconds since the Unix epoch (UTC) so both
/// database backends store the same integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        // Straight from the system clock: every authenticated request reads
        // it, and a calendar date (`OffsetDateTime`) is not needed for that.
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => Self::from_duration(since),
            Err(before) => Self(-Self::from_duration(before.duration()).0),
        }
    }

    fn from_duration(since_epoch: std::time::Duration) -> Self {
        let secs = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX / 1000);
        Self(
            secs.saturating_mul(1000)
                .saturating_add(i64::from(since_epoch.subsec_millis())),
        )
    }

    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    #[cfg(test)]
    pub const fn from_const(millis: i64) -> Self {
        Self(millis)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// Reads RFC 3339 (`2027-01-31T12:00:00Z`, any offset), or a date alone
    /// (`2027-01-31`), which means to the end of that day in UTC.
    pub fn parse_rfc3339(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if let Ok(t) = OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339) {
            return Some(Self((t.unix_timestamp_nanos() / 1_000_000) as i64));
        }
        let date = time::Date::parse(raw, format_description!("[year]-[month]-[day]")).ok()?;
        let midnight = date.next_day()?.midnight().assume_utc();
        Some(Self((midnight.unix_timestamp_nanos() / 1_000_000) as i64))
    }

    /// Whole seconds since the Unix epoch.
    pub fn seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-28T12:00:00.123Z`.
    pub fn to_rfc3339(self) -> String {
        match self.rfc3339_bytes() {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            None => self.to_rfc3339_slow(),
        }
    }

    /// Appends what [`Timestamp::to_rfc3339`] returns, without allocating
    /// for years 0 to 9999.
    pub fn push_rfc3339(self, out: &mut Vec<u8>) {
        match self.rfc3339_bytes() {
            Some(bytes) => out.extend_from_slice(&bytes),
            None => out.extend_from_slice(self.to_rfc3339_slow().as_bytes()),
        }
    }

    /// The RFC 3339 form on the stack, for years 0 to 9999. Every device
    /// answer carries timestamps, so this skips the general formatter and
    /// its allocation.
    fn rfc3339_bytes(self) -> Option<[u8; 24]> {
        let days = self.0.div_euclid(86_400_000);
        let in_day = self.0.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let (hour, minute, second, milli) = (
            in_day / 3_600_000,
            in_day / 60_000 % 60,
            in_day / 1000 % 60,
            in_day % 1000,
        );
        let mut out = *b"0000-00-00T00:00:00.000Z";
        // Two digits at a time, from a table: a division less per digit.
        let mut pair = |at: usize, value: i64| {
            let at_table = 2 * value as usize;
            out[at..at + 2].copy_from_slice(&DIGIT_PAIRS[at_table..at_table + 2]);
        };
        pair(0, year / 100);
        pair(2, year % 100);
        pair(5, month);
        pair(8, day);
        pair(11, hour);
        pair(14, minute);
        pair(17, second);
        pair(21, milli % 100);
        out[20] = b'0' + (milli / 100) as u8;
        Some(out)
    }

    fn to_rfc3339_slow(self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                ))
                .ok()
            })
            .unwrap_or_else(|| self.0.to_string())
    }
}

/// Year, month (1–12) and day (1–31) of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`, proleptic Gregorian).
/// "00" to "99", each number's two digits at twice its index.
const DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        table[2 * i] = b'0' + (i / 10) as u8;
        table[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    table
};

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.rfc3339_bytes() {
            // Only ASCII digits and separators were written.
            Some(bytes) => serializer.serialize_str(std::str::from_utf8(&bytes).unwrap_or("")),
            None => serializer.serialize_str(&self.to_rfc3339_slow()),
        }
    }
}

/// Where operations read the time: the system clock, or, in tests, one a
/// test moves, so expiry, idle expiry, overlaps and grace periods can be
/// tested without waiting. `serve` uses [`Clock::system`]; the default (and
/// every copy of it) can be moved.
#[derive(Clone, Debug)]
pub struct Clock(Option<std::sync::Arc<TestTime>>);

#[derive(Debug)]
struct TestTime {
    /// Milliseconds: an offset from the system clock, or, standing still,
    /// the time itself.
    millis: std::sync::atomic::AtomicI64,
    stands_still: bool,
}

impl Default for Clock {
    fn default() -> Self {
        Self::adjustable()
    }
}

impl Clock {
    pub fn system() -> Self {
        Self(None)
    }

    /// The system clock, moved forward by [`Clock::advance`].
    pub fn adjustable() -> Self {
        Self(Some(std::sync::Arc::new(TestTime {
            millis: 0.into(),
            stands_still: false,
        })))
    }

    /// A clock that stands at `start` but for [`Clock::advance`].
    pub fn manual(start: Timestamp) -> Self {
        Self(Some(std::sync::Arc::new(TestTime {
            millis: start.0.into(),
            stands_still: true,
        })))
    }

    pub fn now(&self) -> Timestamp {
        match &self.0 {
            None => Timestamp::now(),
            Some(test) => {
                let millis = test.millis.load(std::sync::atomic::Ordering::Acquire);
                if test.stands_still {
                    Timestamp(millis)
                } else {
                    Timestamp(Timestamp::now().0.saturating_add(millis))
                }
            }
        }
    }

    /// Moves a test's clock forward; the system clock stays as it is.
    pub fn advance(&self, by: std::time::Duration) {
        if let Some(test) = &self.0 {
            let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
            test.millis
                .fetch_add(by, std::sync::atomic::Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjustable_clock_moves_forward_when_told() {
        let clock = Clock::adjustable();
        let before = clock.now();
        clock.advance(std::time::Duration::from_secs(600));
        assert!(clock.now().millis() - before.millis() >= 600_000);
        let system = Clock::system();
        system.advance(std::time::Duration::from_secs(600));
        assert!(system.now().millis() - Timestamp::now().millis() < 1000);
        let manual = Clock::manual(Timestamp::from_millis(5_000));
        assert_eq!(manual.now(), Timestamp::from_millis(5_000));
        manual.advance(std::time::Duration::from_secs(1));
        assert_eq!(manual.now(), Timestamp::from_millis(6_000));
    }

    #[test]
    fn formats_as_utc_rfc3339() {
        assert_eq!(
            Timestamp::from_millis(1_700_000_000_123).to_rfc3339(),
            "2023-11-14T22:13:20.123Z"
        );
    }

    #[test]
    fn the_fast_formatter_agrees_with_the_time_crate() {
        let mut samples: Vec<i64> = vec![
            0,
            -1,
            951_782_400_000,   // 2000-02-29
            4_107_542_399_999, // 2100-02-28T23:59:59.999
            253_402_300_799_999,
            -62_167_219_200_000, // 0000-01-01
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            samples.push((x % 253_402_300_800_000) as i64 - 62_167_219_200_000);
        }
        for millis in samples {
            let t = Timestamp::from_millis(millis);
            assert_eq!(t.to_rfc3339(), t.to_rfc3339_slow(), "{millis}");
        }
        assert_eq!(
            Timestamp::from_millis(253_402_300_800_000).to_rfc3339(),
            Timestamp::from_millis(253_402_300_800_000).to_rfc3339_slow(),
            "year 10000 falls back"
        );
    }

    #[test]
    fn parses_rfc3339_and_dates() {
        let t = Timestamp::parse_rfc3339("2023-11-14T22:13:20.123Z").unwrap();
        assert_eq!(t.millis(), 1_700_000_000_123);
        let t = Timestamp::parse_rfc3339("2023-11-14T23:13:20.123+01:00").unwrap();
        assert_eq!(t.millis(), 1_700_000_000_123);
        assert_eq!(
            Timestamp::parse_rfc3339("2023-11-14").unwrap().to_rfc3339(),
            "2023-11-15T00:00:00.000Z"
        );
        assert!(Timestamp::parse_rfc3339("tomorrow").is_none());
        assert!(Timestamp::parse_rfc3339("2023-02-30").is_none());
    }

    #[test]
    fn always_shows_three_fraction_digits() {
        assert_eq!(
            Timestamp::from_millis(1_700_000_000_020).to_rfc3339(),
            "2023-11-14T22:13:20.020Z"
        );
    }
}
