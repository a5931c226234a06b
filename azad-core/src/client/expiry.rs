//! One expiry normaliser for every token answer: the token endpoint (client credentials,
//! on-behalf-of, sign-in) and every managed identity source (IMDS, App Service, Functions,
//! Container Apps, Arc, Cloud Shell…), which do not agree on the shape.
//!
//! In order:
//! 1. `expires_in`: seconds from now, a JSON number or a numeric string (`3599`, `"3599"`).
//! 2. `expires_on`: seconds since the Unix epoch, a number or a numeric string
//!    (`1764439445`), or a date-time string as App Service and others send it:
//!    RFC 3339 with any number of fractional digits (`2026-11-29T18:04:05.0000000+00:00`,
//!    `…Z`), or .NET's invariant `M/d/yyyy h:mm:ss tt` with an offset
//!    (`11/29/2026 6:04:05 PM +00:00`), in any offset.
//! 3. The access token's own `exp` claim, read from its payload *without verifying it*, only
//!    to learn when to stop using it (the token is not ours to validate).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;

/// Seconds in a value that may be a JSON number or a numeric string. Negative and fractional
/// numbers are refused; values too large for a `u64` are refused too (not truncated).
pub(crate) fn seconds(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => {
            let s = s.trim();
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
        }
        _ => None,
    }
}

/// The token's lifetime from `now`, from the first of `expires_in`, `expires_on` and the
/// token's `exp` that can be read. `None` when none can; `Some(Duration::ZERO)` when the
/// answer says the token has already expired.
pub(crate) fn lifetime(
    expires_in: Option<&serde_json::Value>,
    expires_on: Option<&serde_json::Value>,
    access_token: &str,
    now: SystemTime,
) -> Option<Duration> {
    if let Some(secs) = expires_in.and_then(seconds) {
        return Some(Duration::from_secs(secs));
    }
    let now_secs = i64::try_from(now.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()?;
    let epoch = expires_on
        .and_then(|v| seconds(v).and_then(|s| i64::try_from(s).ok()).or_else(|| v.as_str().and_then(parse_date_time)))
        .or_else(|| jwt_exp(access_token))?;
    Some(Duration::from_secs(u64::try_from(epoch.saturating_sub(now_secs)).unwrap_or(0)))
}

/// The `exp` claim of a JWT, decoded without verification.
fn jwt_exp(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?;
    exp.as_i64().or_else(|| exp.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Seconds since the epoch of a date and time, checked; `offset` in seconds east of UTC.
fn epoch(date: (i64, i64, i64), time: (i64, i64, i64), offset: i64) -> Option<i64> {
    let (year, month, day) = date;
    let (hour, minute, second) = time;
    let valid = (1970..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..=60).contains(&second)
        && (-86_400..86_400).contains(&offset);
    valid.then(|| days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// A run of 1 to `max` ASCII digits.
fn number(s: &str, max: usize) -> Option<(i64, &str)> {
    let len = s.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 || len > max {
        return None;
    }
    Some((s[..len].parse().ok()?, &s[len..]))
}

fn expect(s: &str, c: char) -> Option<&str> {
    s.strip_prefix(c)
}

/// `Z`, `+HH:MM`, `-HH:MM`, `+HHMM`, or nothing (UTC), as seconds east of UTC.
fn offset(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("Z") || s.eq_ignore_ascii_case("UTC") || s.eq_ignore_ascii_case("GMT") {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes()[0] {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    // `HH`, `HH:MM` or `HHMM`.
    let digits: String = match rest.split_once(':') {
        Some((h, m)) if h.len() == 2 && m.len() == 2 => format!("{h}{m}"),
        Some(_) => return None,
        None => rest.to_owned(),
    };
    if !matches!(digits.len(), 2 | 4) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = if digits.len() == 4 { digits[2..].parse().ok()? } else { 0 };
    (hours < 24 && minutes < 60).then_some(sign * (hours * 3600 + minutes * 60))
}

/// `HH:MM:SS` with optional fractional seconds (dropped: expiry is kept in whole seconds).
fn clock(s: &str) -> Option<((i64, i64, i64), &str)> {
    let (hour, s) = number(s, 2)?;
    let (minute, s) = number(expect(s, ':')?, 2)?;
    let (second, mut s) = number(expect(s, ':')?, 2)?;
    if let Some(fraction) = s.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        s = &fraction[digits..];
    }
    Some(((hour, minute, second), s))
}

/// RFC 3339 (`2026-11-29T18:04:05.0000000+00:00`; a space for the `T` is accepted).
fn rfc3339(s: &str) -> Option<i64> {
    let (year, s) = number(s, 4)?;
    let (month, s) = number(expect(s, '-')?, 2)?;
    let (day, s) = number(expect(s, '-')?, 2)?;
    let s = s.strip_prefix(['T', 't', ' '])?;
    let (time, s) = clock(s)?;
    epoch((year, month, day), time, offset(s)?)
}

/// .NET's invariant culture general format: `11/29/2026 6:04:05 PM +00:00` (month first;
/// 12-hour clock with `AM`/`PM`, or a 24-hour clock without).
fn dotnet_invariant(s: &str) -> Option<i64> {
    let (month, s) = number(s, 2)?;
    let (day, s) = number(expect(s, '/')?, 2)?;
    let (year, s) = number(expect(s, '/')?, 4)?;
    let s = s.strip_prefix(' ')?.trim_start();
    let ((mut hour, minute, second), s) = clock(s)?;
    let s = s.trim_start();
    let (meridiem, s) = match s.get(..2) {
        Some(m) if m.eq_ignore_ascii_case("AM") => (Some(false), &s[2..]),
        Some(m) if m.eq_ignore_ascii_case("PM") => (Some(true), &s[2..]),
        _ => (None, s),
    };
    if let Some(pm) = meridiem {
        if !(1..=12).contains(&hour) {
            return None;
        }
        hour = hour % 12 + if pm { 12 } else { 0 };
    }
    epoch((year, month, day), (hour, minute, second), offset(s)?)
}

/// The date (year, month, day) of a day count since 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Formats an epoch second as App Service does: RFC 3339 with 7 fractional digits and an
/// offset (`2026-11-29T18:04:05.0000000+00:00`), or .NET's invariant format
/// (`11/29/2026 6:04:05 PM +00:00`). For the dev tenant and tests.
#[cfg_attr(not(feature = "dev"), allow(dead_code))]
pub(crate) fn format_date_time(epoch: i64, dotnet: bool) -> String {
    let (year, month, day) = civil_from_days(epoch.div_euclid(86_400));
    let secs = epoch.rem_euclid(86_400);
    let (hour, minute, second) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if dotnet {
        let (h12, meridiem) = match hour {
            0 => (12, "AM"),
            1..=11 => (hour, "AM"),
            12 => (12, "PM"),
            _ => (hour - 12, "PM"),
        };
        format!("{month}/{day}/{year} {h12}:{minute:02}:{second:02} {meridiem} +00:00")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.0000000+00:00")
    }
}

/// Seconds since the epoch of a date-time string in one of the shapes identity endpoints send.
pub(crate) fn parse_date_time(value: &str) -> Option<i64> {
    let value = value.trim();
    rfc3339(value).or_else(|| dotnet_invariant(value))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// 2026-11-29T18:04:05Z.
    const AT: i64 = 1_795_975_445;

    #[test]
    fn date_time_shapes_of_real_hosts() {
        for shape in [
            "2026-11-29T18:04:05.0000000+00:00",
            "2026-11-29T18:04:05Z",
            "2026-11-29T18:04:05.123Z",
            "2026-11-29 18:04:05 +00:00",
            "2026-11-29T19:04:05.0000000+01:00",
            "2026-11-29T13:04:05-05:00",
            "11/29/2026 6:04:05 PM +00:00",
            "11/29/2026 06:04:05 PM +0000",
            "11/29/2026 7:34:05 PM +01:30",
            "11/29/2026 18:04:05 +00:00",
            "11/29/2026 6:04:05 PM",
            " 11/29/2026 6:04:05 pm +00:00 ",
        ] {
            assert_eq!(parse_date_time(shape), Some(AT), "{shape}");
        }
        assert_eq!(parse_date_time("11/30/2026 12:04:05 AM +00:00"), Some(AT + 6 * 3600));
        assert_eq!(parse_date_time("11/29/2026 12:04:05 PM +00:00"), Some(AT - 6 * 3600));
    }

    #[test]
    fn formats_what_it_parses() {
        assert_eq!(format_date_time(AT, false), "2026-11-29T18:04:05.0000000+00:00");
        assert_eq!(format_date_time(AT, true), "11/29/2026 6:04:05 PM +00:00");
        for epoch in [0, AT, AT + 6 * 3600, AT - 18 * 3600 + 5, 951_782_400, 4_102_444_799] {
            for dotnet in [false, true] {
                assert_eq!(parse_date_time(&format_date_time(epoch, dotnet)), Some(epoch), "{epoch} {dotnet}");
            }
        }
    }

    #[test]
    fn refuses_what_is_not_a_date() {
        for bad in [
            "",
            "soon",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-29T24:00:00Z",
            "2026-11-29T18:04:05+25:00",
            "2026-11-29T18:04:05.Z",
            "13/29/2026 6:04:05 PM +00:00",
            "11/29/2026 13:04:05 PM +00:00",
            "11/29/2026 6:04:05 XM +00:00",
            "99999999999-11-29T18:04:05Z",
        ] {
            assert_eq!(parse_date_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn lifetimes() {
        let now = UNIX_EPOCH + Duration::from_secs(u64::try_from(AT).unwrap() - 3600);
        let hour = Some(Duration::from_secs(3600));
        assert_eq!(lifetime(Some(&json!(3600)), None, "", now), hour);
        assert_eq!(lifetime(Some(&json!(" 3600 ")), None, "", now), hour);
        assert_eq!(lifetime(None, Some(&json!(AT)), "", now), hour);
        assert_eq!(lifetime(None, Some(&json!(AT.to_string())), "", now), hour);
        assert_eq!(lifetime(None, Some(&json!("2026-11-29T18:04:05.0000000+00:00")), "", now), hour);
        assert_eq!(lifetime(None, Some(&json!("11/29/2026 6:04:05 PM +00:00")), "", now), hour);
        // expires_in wins; an unreadable expires_in falls through to expires_on.
        assert_eq!(lifetime(Some(&json!(60)), Some(&json!(AT)), "", now), Some(Duration::from_secs(60)));
        assert_eq!(lifetime(Some(&json!("-5")), Some(&json!(AT)), "", now), hour);
        assert_eq!(lifetime(Some(&json!(1.5)), Some(&json!(AT)), "", now), hour);
        // In the past: zero.
        assert_eq!(lifetime(None, Some(&json!(AT - 7200)), "", now), Some(Duration::ZERO));
        // Nothing readable: the token's own exp, else nothing.
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{AT}}}"#));
        let jwt = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.sig");
        assert_eq!(lifetime(None, Some(&json!("whenever")), &jwt, now), hour);
        assert_eq!(lifetime(None, None, &jwt, now), hour);
        assert_eq!(lifetime(None, None, "opaque-token", now), None);
        assert_eq!(lifetime(Some(&json!(null)), Some(&json!({})), "a.b.c", now), None);
    }
}
