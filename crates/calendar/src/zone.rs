//! Local wall-clock time of a zone, with a fast path where the offset no longer changes.

use chrono::{DateTime, NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;

const DAY: i64 = 86_400;

/// A time zone over a range of years. Asia/Ho_Chi_Minh has had a fixed +07:00 since 1975,
/// so almost every instant converts with one addition instead of a chrono-tz lookup.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Zone {
    pub(crate) tz: Tz,
    /// From this UTC second to the end of the range the offset is `offset`.
    since: i64,
    offset: i64,
}

impl Zone {
    /// Samples the offset each day backwards from the end of `last_year` to find where it
    /// last changed (zones change offset at most once a day), then pins the change to the second.
    pub(crate) fn new(tz: Tz, first_year: i32, last_year: i32) -> Zone {
        let noon = |year: i32, month, day| {
            NaiveDate::from_ymd_opt(year, month, day)
                .expect("valid date")
                .and_hms_opt(12, 0, 0)
                .expect("valid time")
                .and_utc()
                .timestamp()
        };
        let offset_at = |t: i64| -> i64 {
            let naive = DateTime::from_timestamp(t, 0)
                .expect("in range")
                .naive_utc();
            tz.offset_from_utc_datetime(&naive).fix().local_minus_utc() as i64
        };
        let start = noon(first_year, 1, 1) - 2 * DAY;
        let mut t = noon(last_year, 12, 31);
        let offset = offset_at(t);
        while t - DAY >= start && offset_at(t - DAY) == offset {
            t -= DAY;
        }
        let (mut lo, mut hi) = (t - DAY, t);
        if offset_at(lo) == offset {
            return Zone {
                tz,
                since: lo,
                offset,
            };
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if offset_at(mid) == offset {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Zone {
            tz,
            since: hi,
            offset,
        }
    }

    /// Local wall-clock seconds (since 1970-01-01 local) of a UTC instant.
    #[inline]
    pub(crate) fn local_secs(&self, t: i64) -> i64 {
        if t >= self.since {
            return t + self.offset;
        }
        let naive = DateTime::from_timestamp(t, 0)
            .map(|d| d.naive_utc())
            .unwrap_or_default();
        t + self
            .tz
            .offset_from_utc_datetime(&naive)
            .fix()
            .local_minus_utc() as i64
    }

    /// The UTC instant of local wall-clock seconds: the earliest if ambiguous; inside a gap,
    /// read with the offset in force before the gap.
    #[inline]
    pub(crate) fn utc_secs(&self, local: i64) -> i64 {
        if local - self.offset >= self.since {
            return local - self.offset;
        }
        let naive = DateTime::from_timestamp(local, 0)
            .map(|d| d.naive_utc())
            .unwrap_or_default();
        match self.tz.offset_from_local_datetime(&naive).earliest() {
            Some(o) => local - o.fix().local_minus_utc() as i64,
            None => local - (self.local_secs(local - DAY) - (local - DAY)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ho_chi_minh_is_fixed_since_1975() {
        let z = Zone::new(chrono_tz::Asia::Ho_Chi_Minh, 1900, 2100);
        let t1976 = NaiveDate::from_ymd_opt(1976, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp();
        assert!(z.since < t1976);
        assert_eq!(z.offset, 7 * 3600);
        // Before 1975 the south used +08:00; the slow path must agree with chrono-tz.
        let t1970 = 0;
        assert_eq!(z.local_secs(t1970), 8 * 3600);
        assert_eq!(z.utc_secs(z.local_secs(t1970)), t1970);
    }

    #[test]
    fn zones_with_daylight_saving_use_chrono_tz() {
        let z = Zone::new(chrono_tz::Europe::Paris, 2000, 2030);
        // 2020-07-01T12:00Z is 14:00 in Paris (CEST).
        let t = 1_593_604_800;
        assert_eq!(z.local_secs(t) - t, 2 * 3600);
        let winter = 1_577_880_000; // 2020-01-01T12:00Z
        assert_eq!(z.local_secs(winter) - winter, 3600);
        assert_eq!(z.utc_secs(z.local_secs(winter)), winter);
    }
}
