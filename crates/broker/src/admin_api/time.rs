//! Dates and durations as the admin API and the CLI take them (`--to-datetime`,
//! `--by-duration`, the console's reset form): ISO-8601 and short forms, UTC by default.

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    crate::broker::now_ms()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// Formats epoch milliseconds as `2026-11-21T10:00:00.000Z`.
pub fn format_ms(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1000 % 60, rest % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

fn number(text: &str) -> Option<i64> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}

/// Parses ISO-8601 `2026-11-21T10:00:00[.sss][Z|+01:00]` (or a bare date, UTC) to epoch ms.
pub fn parse_datetime(text: &str) -> Result<i64, String> {
    let bad = || format!("'{text}' is not a date-time like 2026-11-21T10:00:00Z");
    let (date, time) = text.split_once(['T', ' ']).unwrap_or((text, "00:00:00Z"));
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next(), parts.next(), parts.next());
    let (y, m, d) = match (y.and_then(number), m.and_then(number), d.and_then(number)) {
        (Some(y), Some(m), Some(d)) if (1..=12).contains(&m) && (1..=31).contains(&d) && parts.next().is_none() => {
            (y, m, d)
        }
        _ => return Err(bad()),
    };
    let (clock, offset_ms) = split_zone(time).ok_or_else(bad)?;
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let fields: Vec<Option<i64>> = hms.split(':').map(number).collect();
    let (h, min, s) = match fields.as_slice() {
        [Some(h), Some(m)] => (*h, *m, 0),
        [Some(h), Some(m), Some(s)] => (*h, *m, *s),
        _ => return Err(bad()),
    };
    if h > 23 || min > 59 || s > 60 {
        return Err(bad());
    }
    let millis = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        number(&digits).ok_or_else(bad)?
    };
    let days = days_from_civil(y, m, d);
    Ok(days * 86_400_000 + h * 3_600_000 + min * 60_000 + s * 1000 + millis - offset_ms)
}

/// Splits `10:00:00+01:00` into the clock and the zone offset in ms (no zone: UTC).
fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        return Some((clock, 0));
    }
    match time.rfind(['+', '-']) {
        Some(at) => {
            let (clock, zone) = time.split_at(at);
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let zone = &zone[1..];
            let (h, m) = zone.split_once(':').unwrap_or((zone.get(..2)?, zone.get(2..).unwrap_or("0")));
            let (h, m) = (number(h)?, if m.is_empty() { 0 } else { number(m)? });
            Some((clock, sign * (h * 3_600_000 + m * 60_000)))
        }
        None => Some((time, 0)),
    }
}

/// Parses a duration: ISO-8601 `PT1H30M`, `P1DT2H`, or short `90s`, `15m`, `1h30m`, `2d`,
/// `500ms`. Returns milliseconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let bad = || format!("'{text}' is not a duration like 1h30m or PT1H30M");
    let upper = text.to_ascii_uppercase();
    let body = upper.strip_prefix('P').map_or(upper.as_str(), |rest| rest);
    let iso = upper.starts_with('P');
    let mut total: i64 = 0;
    let mut digits = String::new();
    let mut in_time = !iso;
    let mut chars = body.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        match c {
            '0'..='9' => digits.push(c),
            'T' if iso && digits.is_empty() => in_time = true,
            _ => {
                let n: i64 = digits.parse().map_err(|_| bad())?;
                digits.clear();
                let unit = if c == 'M' && chars.peek() == Some(&'S') {
                    let _ = chars.next();
                    1
                } else {
                    match (c, in_time) {
                        ('D', _) => 86_400_000,
                        ('W', false) => 7 * 86_400_000,
                        ('H', true) => 3_600_000,
                        ('M', true) => 60_000,
                        ('S', true) => 1000,
                        _ => return Err(bad()),
                    }
                };
                total = total.checked_add(n.checked_mul(unit).ok_or_else(bad)?).ok_or_else(bad)?;
                any = true;
            }
        }
    }
    if !digits.is_empty() || !any {
        return Err(bad());
    }
    Ok(total)
}
