//! Wall-clock times: the platform's clock ([`now_ms`], read by the glue
//! and handed to the engine, which takes times as inputs), and times as
//! the runtime writes them: RFC 3339 in UTC with milliseconds, exactly as
//! JavaScript's `Date.prototype.toISOString`.
//!
//! ```
//! use pylon_workers::time::{now_ms, rfc3339_from_ms};
//! assert_eq!(rfc3339_from_ms(0), "1970-01-01T00:00:00.000Z");
//! assert_eq!(rfc3339_from_ms(1_764_565_200_123), "2025-12-01T05:00:00.123Z");
//! assert!(now_ms() > 1_764_565_200_123);
//! ```

/// Milliseconds since the Unix epoch, now: JavaScript's `Date.now()` in a
/// Worker (where `std`'s clock panics), the system clock natively.
pub fn now_ms() -> i64 {
    #[cfg(target_arch = "wasm32")]
    return js_sys::Date::now() as i64;
    #[cfg(not(target_arch = "wasm32"))]
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Seconds since the Unix epoch, now, as tokens count them.
pub fn now_secs() -> i64 {
    now_ms() / 1000
}

/// `ms` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339_from_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Days to a civil date (H. Hinnant's algorithm, proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leap_days_and_ends_of_years() {
        assert_eq!(rfc3339_from_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_from_ms(946_684_799_999), "1999-12-31T23:59:59.999Z");
        assert_eq!(
            rfc3339_from_ms(4_107_542_400_000),
            "2100-03-01T00:00:00.000Z"
        );
        assert_eq!(rfc3339_from_ms(-1), "1969-12-31T23:59:59.999Z");
        // Every written time is one the manifest's datetime check accepts.
        for ms in [0, 1_000_000_000_123, 1_764_565_200_123] {
            assert!(crate::sql::is_rfc3339_utc(&rfc3339_from_ms(ms)));
        }
    }
}
