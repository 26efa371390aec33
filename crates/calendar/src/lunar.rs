//! The Vietnamese lunar calendar (âm lịch), by Hồ Ngọc Đức's astronomical algorithm at UTC+7.
//!
//! Vietnamese dates are not those of Chinese tables: months start on the day of the new
//! moon *in Vietnam's time zone*, so a new moon shortly after 16:00 UTC lands on different
//! days in Hà Nội and Beijing (Tết 1968, 1969, 1985, 2007, 2030, 2053 differ). The
//! algorithm follows the published "âm lịch" reference (new moon and sun longitude after
//! Jean Meeus, "Astronomical Algorithms"); its accuracy is more than enough for 1900–2100.

use chrono::{Datelike, NaiveDate};
use std::f64::consts::PI;

/// Vietnam's standard offset from UTC in hours; the lunar calendar is defined at this offset.
const TIME_ZONE: f64 = 7.0;

/// Julian day (UT) of the new moon of 1 January 1900, origin of the new-moon index `k`.
const EPOCH_JDN: f64 = 2_415_021.076_998_695;

/// Mean synodic month in days.
const SYNODIC_MONTH: f64 = 29.530_588_853;

/// Julian day number = days since the common era + this offset.
const JDN_CE_OFFSET: i64 = 1_721_425;

/// A date of the Vietnamese lunar calendar.
///
/// `year` is the Gregorian year in which the lunar year begins (its Tết), so the last
/// days of lunar year 2024 (Giáp Thìn) fall in January 2025 but carry `year: 2024`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LunarDate {
    /// Day of the lunar month, 1–30.
    pub day: u32,
    /// Lunar month, 1–12; a leap month repeats the number of the month before it.
    pub month: u32,
    /// Lunar year, numbered by the Gregorian year of its first day.
    pub year: i32,
    /// Whether the month is the leap (nhuận) repetition.
    pub leap: bool,
}

fn jdn(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) + JDN_CE_OFFSET
}

fn from_jdn(jdn: i64) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(i32::try_from(jdn - JDN_CE_OFFSET).ok()?)
}

/// Julian day (with fraction, in UT) of the `k`-th new moon after the one of 1900-01-01.
fn new_moon(k: i64) -> f64 {
    let k = k as f64;
    let t = k / 1236.85;
    let t2 = t * t;
    let t3 = t2 * t;
    let dr = PI / 180.0;
    let mut jd1 = 2_415_020.759_33 + 29.530_588_68 * k + 0.000_117_8 * t2 - 0.000_000_155 * t3;
    jd1 += 0.000_33 * ((166.56 + 132.87 * t - 0.009_173 * t2) * dr).sin();
    // Mean anomalies of the sun and the moon, and the moon's argument of latitude.
    let m = 359.2242 + 29.105_356_08 * k - 0.000_033_3 * t2 - 0.000_003_47 * t3;
    let mpr = 306.0253 + 385.816_918_06 * k + 0.010_730_6 * t2 + 0.000_012_36 * t3;
    let f = 21.2964 + 390.670_506_46 * k - 0.001_652_8 * t2 - 0.000_002_39 * t3;
    let mut c1 = (0.1734 - 0.000_393 * t) * (m * dr).sin() + 0.0021 * (2.0 * dr * m).sin();
    c1 = c1 - 0.4068 * (mpr * dr).sin() + 0.0161 * (dr * 2.0 * mpr).sin();
    c1 -= 0.0004 * (dr * 3.0 * mpr).sin();
    c1 = c1 + 0.0104 * (dr * 2.0 * f).sin() - 0.0051 * (dr * (m + mpr)).sin();
    c1 = c1 - 0.0074 * (dr * (m - mpr)).sin() + 0.0004 * (dr * (2.0 * f + m)).sin();
    c1 = c1 - 0.0004 * (dr * (2.0 * f - m)).sin() - 0.0006 * (dr * (2.0 * f + mpr)).sin();
    c1 = c1 + 0.0010 * (dr * (2.0 * f - mpr)).sin() + 0.0005 * (dr * (2.0 * mpr + m)).sin();
    // ΔT (terrestrial minus universal time), in days.
    let delta_t = if t < -11.0 {
        0.001 + 0.000_839 * t + 0.000_226_1 * t2 - 0.000_008_45 * t3 - 0.000_000_081 * t * t3
    } else {
        -0.000_278 + 0.000_265 * t + 0.000_262 * t2
    };
    jd1 + c1 - delta_t
}

/// The sun's apparent longitude in radians, 0 ≤ L < 2π, at Julian day `jd` (UT).
fn sun_longitude(jd: f64) -> f64 {
    let t = (jd - 2_451_545.0) / 36_525.0;
    let t2 = t * t;
    let dr = PI / 180.0;
    let m = 357.529_10 + 35_999.050_30 * t - 0.000_155_9 * t2 - 0.000_000_48 * t * t2;
    let l0 = 280.466_45 + 36_000.769_83 * t + 0.000_303_2 * t2;
    let mut dl = (1.914_600 - 0.004_817 * t - 0.000_014 * t2) * (dr * m).sin();
    dl += (0.019_993 - 0.000_101 * t) * (dr * 2.0 * m).sin() + 0.000_290 * (dr * 3.0 * m).sin();
    let l = (l0 + dl) * dr;
    l - 2.0 * PI * (l / (2.0 * PI)).floor()
}

/// The day (JDN) of the `k`-th new moon, in Vietnam's time zone.
fn new_moon_day(k: i64) -> i64 {
    (new_moon(k) + 0.5 + TIME_ZONE / 24.0).floor() as i64
}

/// Which of the twelve 30° sectors (0–11) the sun is in at local midnight starting day `jdn`.
fn sun_sector(jdn: i64) -> i64 {
    (sun_longitude(jdn as f64 - 0.5 - TIME_ZONE / 24.0) / PI * 6.0).floor() as i64
}

/// Index `k` of the new moon on or before day `jdn` (possibly one too many; callers check).
fn moon_index(jdn: i64) -> i64 {
    ((jdn as f64 - EPOCH_JDN) / SYNODIC_MONTH).floor() as i64
}

/// First day (JDN) of lunar month 11 of `year`: the month holding that year's winter solstice.
fn month11_start(year: i32) -> i64 {
    let dec31 = NaiveDate::from_ymd_opt(year, 12, 31).map_or_else(
        // Far outside chrono's range the answer is meaningless anyway; stay total.
        || (f64::from(year) * 365.2425) as i64 + JDN_CE_OFFSET,
        jdn,
    );
    let k = ((dec31 - 2_415_021) as f64 / SYNODIC_MONTH).floor() as i64;
    let nm = new_moon_day(k);
    // The sun past 270° (sector 9) at that new moon means the solstice was in the month before.
    if sun_sector(nm) >= 9 {
        new_moon_day(k - 1)
    } else {
        nm
    }
}

/// In a 13-month lunar year starting at month 11 on day `a11`, the offset (from month 11)
/// of the leap month: the first month that contains no major solar term (trung khí).
fn leap_month_offset(a11: i64) -> i64 {
    let k = ((a11 as f64 - EPOCH_JDN) / SYNODIC_MONTH + 0.5).floor() as i64;
    let mut i = 1;
    let mut arc = sun_sector(new_moon_day(k + i));
    loop {
        let last = arc;
        i += 1;
        arc = sun_sector(new_moon_day(k + i));
        if arc == last || i >= 14 {
            break;
        }
    }
    i - 1
}

/// The Vietnamese lunar date of a Gregorian date.
pub fn to_lunar(date: NaiveDate) -> LunarDate {
    let day_number = jdn(date);
    // The mean-motion estimate of `k` can be one month off near a new moon; settle it.
    let mut k = moon_index(day_number);
    while new_moon_day(k) > day_number {
        k -= 1;
    }
    while new_moon_day(k + 1) <= day_number {
        k += 1;
    }
    let month_start = new_moon_day(k);
    let mut a11 = month11_start(date.year());
    let b11;
    let mut year;
    if a11 >= month_start {
        year = date.year();
        b11 = a11;
        a11 = month11_start(date.year() - 1);
    } else {
        year = date.year() + 1;
        b11 = month11_start(date.year() + 1);
    }
    let day = (day_number - month_start + 1) as u32;
    let diff = (month_start - a11).div_euclid(29);
    let mut leap = false;
    let mut month = diff + 11;
    // More than 365 days between two months 11 means thirteen months: one is a leap month.
    if b11 - a11 > 365 {
        let leap_offset = leap_month_offset(a11);
        if diff >= leap_offset {
            month = diff + 10;
            leap = diff == leap_offset;
        }
    }
    if month > 12 {
        month -= 12;
    }
    // Months 11 and 12 just after `a11` belong to the lunar year that began the January before.
    if month >= 11 && diff < 4 {
        year -= 1;
    }
    LunarDate {
        day,
        month: month as u32,
        year,
        leap,
    }
}

/// The Gregorian date of a Vietnamese lunar date, or `None` when it does not exist
/// (a leap month the year does not have, or a day past the month's end).
pub fn to_solar(lunar: LunarDate) -> Option<NaiveDate> {
    if !(1..=12).contains(&lunar.month) || !(1..=30).contains(&lunar.day) {
        return None;
    }
    let (a11, b11) = if lunar.month < 11 {
        (month11_start(lunar.year - 1), month11_start(lunar.year))
    } else {
        (month11_start(lunar.year), month11_start(lunar.year + 1))
    };
    let k = (0.5 + (a11 as f64 - EPOCH_JDN) / SYNODIC_MONTH).floor() as i64;
    let mut offset = (i64::from(lunar.month) - 11).rem_euclid(12);
    if b11 - a11 > 365 {
        let leap_offset = leap_month_offset(a11);
        let leap_month = (leap_offset - 2).rem_euclid(12);
        if lunar.leap && i64::from(lunar.month) != leap_month {
            return None;
        }
        if lunar.leap || offset >= leap_offset {
            offset += 1;
        }
    } else if lunar.leap {
        return None;
    }
    let month_start = new_moon_day(k + offset);
    let month_length = new_moon_day(k + offset + 1) - month_start;
    if i64::from(lunar.day) > month_length {
        return None;
    }
    from_jdn(month_start + i64::from(lunar.day) - 1)
}

/// Tết Nguyên đán: the first day of the lunar year that begins in Gregorian `year`.
///
/// # Panics
///
/// Only for years beyond chrono's range (about ±262 000).
pub fn tet(year: i32) -> NaiveDate {
    day_of_non_leap_month(1, 1, year)
}

/// Giỗ Tổ Hùng Vương: the 10th day of the 3rd (non-leap) lunar month of lunar `year`.
///
/// # Panics
///
/// Only for years beyond chrono's range (about ±262 000).
pub fn hung_kings_day(year: i32) -> NaiveDate {
    day_of_non_leap_month(10, 3, year)
}

fn day_of_non_leap_month(day: u32, month: u32, year: i32) -> NaiveDate {
    // Days 1–29 of a non-leap month always exist, so only chrono's range can fail.
    to_solar(LunarDate {
        day,
        month,
        year,
        leap: false,
    })
    .expect("every lunar year has non-leap months 1–3 of at least 29 days")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn lunar(day: u32, month: u32, year: i32, leap: bool) -> LunarDate {
        LunarDate {
            day,
            month,
            year,
            leap,
        }
    }

    #[test]
    fn tet_matches_published_vietnamese_dates() {
        let known = [
            (1900, 1, 31),
            (1945, 2, 13),
            (1950, 2, 17),
            (1954, 2, 3),
            (1960, 1, 28),
            (1968, 1, 29), // Chinese tables: 30 Jan
            (1969, 2, 16), // Chinese tables: 17 Feb
            (1970, 2, 6),
            (1975, 2, 11),
            (1976, 1, 31),
            (1979, 1, 28),
            (1980, 2, 16),
            (1985, 1, 21), // Chinese tables: 20 Feb, a whole month later
            (1986, 2, 9),
            (1990, 1, 27),
            (1995, 1, 31),
            (1999, 2, 16),
            (2000, 2, 5),
            (2001, 1, 24),
            (2002, 2, 12),
            (2003, 2, 1),
            (2004, 1, 22),
            (2005, 2, 9),
            (2006, 1, 29),
            (2007, 2, 17), // Chinese tables: 18 Feb
            (2008, 2, 7),
            (2009, 1, 26),
            (2010, 2, 14),
            (2011, 2, 3),
            (2012, 1, 23),
            (2013, 2, 10),
            (2014, 1, 31),
            (2015, 2, 19),
            (2016, 2, 8),
            (2017, 1, 28),
            (2018, 2, 16),
            (2019, 2, 5),
            (2020, 1, 25),
            (2021, 2, 12),
            (2022, 2, 1),
            (2023, 1, 22),
            (2024, 2, 10),
            (2025, 1, 29),
            (2026, 2, 17),
            (2027, 2, 6),
            (2028, 1, 26),
            (2029, 2, 13),
            (2030, 2, 2),  // Chinese tables: 3 Feb
            (2053, 2, 18), // Chinese tables: 19 Feb
        ];
        for (y, m, day) in known {
            assert_eq!(tet(y), d(y, m, day), "Tết {y}");
        }
    }

    #[test]
    fn tet_is_always_between_21_january_and_20_february() {
        for y in 1900..=2100 {
            let t = tet(y);
            assert!(t >= d(y, 1, 21) && t <= d(y, 2, 20), "Tết {y} on {t}");
            assert_eq!(to_lunar(t), lunar(1, 1, y, false));
        }
    }

    #[test]
    fn hung_kings_day_matches_published_dates() {
        let known = [
            (2007, 4, 26),
            (2008, 4, 15),
            (2010, 4, 23),
            (2011, 4, 12),
            (2012, 3, 31),
            (2013, 4, 19),
            (2014, 4, 9),
            (2015, 4, 28),
            (2016, 4, 16),
            (2017, 4, 6),
            (2018, 4, 25),
            (2019, 4, 14),
            (2020, 4, 2),
            (2021, 4, 21),
            (2022, 4, 10),
            (2023, 4, 29),
            (2024, 4, 18),
            (2025, 4, 7),
            (2026, 4, 26),
            (2027, 4, 16),
        ];
        for (y, m, day) in known {
            assert_eq!(hung_kings_day(y), d(y, m, day), "Hùng Kings {y}");
        }
    }

    #[test]
    fn known_lunar_dates() {
        // The last day of Quý Mão was a 30th; Giáp Thìn ended on a 29th (no "30 Tết" in 2025).
        assert_eq!(to_lunar(d(2024, 2, 9)), lunar(30, 12, 2023, false));
        assert_eq!(to_lunar(d(2025, 1, 28)), lunar(29, 12, 2024, false));
        // 2025 has a leap 6th month, starting 25 July.
        assert_eq!(to_lunar(d(2025, 6, 25)), lunar(1, 6, 2025, false));
        assert_eq!(to_lunar(d(2025, 7, 25)), lunar(1, 6, 2025, true));
        assert_eq!(to_solar(lunar(1, 6, 2025, true)), Some(d(2025, 7, 25)));
        // Mid-Autumn festival (15/8).
        assert_eq!(to_solar(lunar(15, 8, 2023, false)), Some(d(2023, 9, 29)));
        assert_eq!(to_solar(lunar(15, 8, 2024, false)), Some(d(2024, 9, 17)));
        assert_eq!(to_solar(lunar(15, 8, 2025, false)), Some(d(2025, 10, 6)));
        // 2023 has a leap 2nd month, which pushed Hùng Kings' day to 29 April.
        assert_eq!(to_lunar(d(2023, 3, 22)), lunar(1, 2, 2023, true));
    }

    #[test]
    fn leap_months_fall_in_the_published_years_and_months() {
        let leap_month =
            |year: i32| (1..=12).find(|&month| to_solar(lunar(1, month, year, true)).is_some());
        let known = [
            (2001, Some(4)),
            (2004, Some(2)),
            (2006, Some(7)),
            (2009, Some(5)),
            (2012, Some(4)),
            (2014, Some(9)),
            (2017, Some(6)),
            (2020, Some(4)),
            (2023, Some(2)),
            (2024, None),
            (2025, Some(6)),
            (2026, None),
            (2028, Some(5)),
        ];
        for (year, month) in known {
            assert_eq!(leap_month(year), month, "leap month of {year}");
        }
    }

    #[test]
    fn impossible_lunar_dates_have_no_solar_date() {
        assert_eq!(to_solar(lunar(1, 1, 2025, true)), None);
        assert_eq!(to_solar(lunar(1, 5, 2024, true)), None);
        assert_eq!(to_solar(lunar(30, 12, 2024, false)), None);
        assert_eq!(to_solar(lunar(0, 1, 2025, false)), None);
        assert_eq!(to_solar(lunar(1, 13, 2025, false)), None);
        assert_eq!(to_solar(lunar(31, 1, 2025, false)), None);
    }

    #[test]
    fn round_trip_1900_to_2100() {
        let mut date = d(1900, 1, 1);
        let end = d(2100, 12, 31);
        while date <= end {
            let l = to_lunar(date);
            assert!(
                (1..=30).contains(&l.day) && (1..=12).contains(&l.month),
                "{date}: {l:?}"
            );
            assert_eq!(to_solar(l), Some(date), "{date} → {l:?}");
            date += chrono::Duration::days(1);
        }
    }

    #[test]
    fn consecutive_days_advance_the_lunar_date() {
        let mut prev = to_lunar(d(1899, 12, 31));
        let mut date = d(1900, 1, 1);
        while date <= d(2100, 12, 31) {
            let l = to_lunar(date);
            let expected = if l.day != 1 {
                LunarDate {
                    day: prev.day + 1,
                    ..prev
                }
            } else if l.leap {
                // A leap month repeats the number of the (non-leap) month just ended.
                assert!(!prev.leap, "{date}: two leap months in a row");
                LunarDate {
                    day: 1,
                    leap: true,
                    ..prev
                }
            } else {
                assert!(prev.day == 29 || prev.day == 30, "{date}: after {prev:?}");
                let month = prev.month % 12 + 1;
                let year = if month == 1 { prev.year + 1 } else { prev.year };
                lunar(1, month, year, false)
            };
            assert_eq!(l, expected, "{date}");
            prev = l;
            date += chrono::Duration::days(1);
        }
    }
}
