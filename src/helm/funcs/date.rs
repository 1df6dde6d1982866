//! Sprig's date functions (`date.go`) and the methods of the `time.Time`
//! values they pass around, with Go's layouts (`2006-01-02T15:04:05Z07:00`)
//! and durations (`1h2m3s`).

use std::rc::Rc;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

use super::{FnResult, FuncDef, Ty, err, f, s, v};
use crate::helm::value::{Field, Struct, StructType, Value};

fn time_value(ts: Timestamp, tz: &TimeZone) -> Value {
    let z = ts.to_zoned_datetime(tz.clone());
    let offset = z.offset().seconds();
    let zone = tz_abbrev(&z);
    Value::Struct(Rc::new(Struct {
        ty: StructType::Time,
        fields: vec![
            Field::new("unix", Value::Int64(ts.as_second())),
            Field::new("nanos", Value::Int(ts.subsec_nanosecond() as i64)),
            Field::new("offset", Value::Int(offset as i64)),
            Field::new("zone", Value::string(zone)),
            Field::new("tz", Value::string(tz.iana_name().unwrap_or("").to_string())),
        ],
    }))
}

fn tz_abbrev(z: &ZonedDateTime) -> String {
    let info = z.time_zone().to_offset_info(z.timestamp());
    let abbr = info.abbreviation().to_string();
    if abbr.is_empty() { "UTC".into() } else { abbr }
}

fn zoned_of(v: &Value) -> Option<ZonedDateTime> {
    let Value::Struct(st) = v else { return None };
    if st.ty != StructType::Time {
        return None;
    }
    let secs = match st.field("unix") {
        Some(Value::Int64(s)) => *s,
        _ => 0,
    };
    let nanos = match st.field("nanos") {
        Some(Value::Int(n)) => *n as i32,
        _ => 0,
    };
    let ts = Timestamp::new(secs, nanos).ok()?;
    let name = st.field("tz").and_then(Value::as_str).unwrap_or("");
    let tz = if name.is_empty() {
        let offset = match st.field("offset") {
            Some(Value::Int(o)) => *o as i32,
            _ => 0,
        };
        jiff::tz::Offset::from_seconds(offset)
            .map(TimeZone::fixed)
            .unwrap_or(TimeZone::UTC)
    } else {
        TimeZone::get(name).unwrap_or(TimeZone::UTC)
    };
    Some(ts.to_zoned_datetime(tz))
}

fn local() -> TimeZone {
    TimeZone::try_system().unwrap_or(TimeZone::UTC)
}

fn now() -> Value {
    time_value(Timestamp::now(), &local())
}

/// A time argument as Sprig's `dateInZone` reads it (a `time.Time`, or
/// Unix seconds as `int`/`int64`; anything else is now).
fn timestamp_of(v: &Value) -> Timestamp {
    match v {
        Value::Int(i) | Value::Int64(i) => Timestamp::from_second(*i).unwrap_or_else(|_| Timestamp::now()),
        other => zoned_of(other).map_or_else(Timestamp::now, |z| z.timestamp()),
    }
}

fn date_in_zone(layout: &str, date: &Value, zone: &str) -> String {
    let tz = if zone == "Local" {
        local()
    } else {
        TimeZone::get(zone).unwrap_or(TimeZone::UTC)
    };
    format(&timestamp_of(date).to_zoned_datetime(tz), layout)
}

/// `time.Time.String()`.
pub fn time_string(v: &Value) -> Option<String> {
    let z = zoned_of(v)?;
    Some(format(&z, "2006-01-02 15:04:05.999999999 -0700 MST"))
}

/// RFC 3339 with nanoseconds, as `time.Time` marshals to JSON.
pub fn rfc3339(v: &Value) -> Option<String> {
    let z = zoned_of(v)?;
    Some(format(&z, "2006-01-02T15:04:05.999999999Z07:00"))
}

/// Go's `time.Time.Format`.
pub fn format(z: &ZonedDateTime, layout: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let mut out = String::new();
    let mut rest = layout;
    let year = z.year() as i64;
    let month = z.month() as usize;
    let day = z.day() as i64;
    let hour = z.hour() as i64;
    let minute = z.minute() as i64;
    let second = z.second() as i64;
    let nanos = z.subsec_nanosecond() as i64;
    let weekday = z.weekday().to_monday_zero_offset() as usize;
    let offset = z.offset().seconds() as i64;
    let zone = tz_abbrev(z);
    let off = |colon: bool, secs: bool, z_for_utc: bool| -> String {
        if z_for_utc && offset == 0 {
            return "Z".into();
        }
        let sign = if offset < 0 { '-' } else { '+' };
        let a = offset.abs();
        let (h, m, s) = (a / 3600, (a / 60) % 60, a % 60);
        let mut o = format!("{sign}{h:02}");
        if colon {
            o.push_str(&format!(":{m:02}"));
        } else {
            o.push_str(&format!("{m:02}"));
        }
        if secs {
            o.push_str(&format!("{}{s:02}", if colon { ":" } else { "" }));
        }
        o
    };
    while !rest.is_empty() {
        let tokens: &[(&str, &dyn Fn() -> String)] = &[
            ("January", &|| MONTHS[month - 1].to_string()),
            ("Jan", &|| MONTHS[month - 1][..3].to_string()),
            ("Monday", &|| DAYS[weekday].to_string()),
            ("Mon", &|| DAYS[weekday][..3].to_string()),
            ("MST", &|| zone.clone()),
            ("2006", &|| format!("{year:04}")),
            ("-07:00:00", &|| off(true, true, false)),
            ("-0700", &|| off(false, false, false)),
            ("-07:00", &|| off(true, false, false)),
            ("-07", &|| off(false, false, false)[..3].to_string()),
            ("Z07:00:00", &|| off(true, true, true)),
            ("Z0700", &|| off(false, false, true)),
            ("Z07:00", &|| off(true, false, true)),
            ("Z07", &|| {
                let o = off(false, false, true);
                if o == "Z" { o } else { o[..3].to_string() }
            }),
            ("002", &|| format!("{:03}", z.day_of_year())),
            ("__2", &|| format!("{:>3}", z.day_of_year())),
            ("01", &|| format!("{month:02}")),
            ("02", &|| format!("{day:02}")),
            ("_2", &|| format!("{day:>2}")),
            ("03", &|| {
                format!("{:02}", if hour % 12 == 0 { 12 } else { hour % 12 })
            }),
            ("04", &|| format!("{minute:02}")),
            ("05", &|| format!("{second:02}")),
            ("06", &|| format!("{:02}", year % 100)),
            ("15", &|| format!("{hour:02}")),
            ("PM", &|| if hour >= 12 { "PM" } else { "AM" }.to_string()),
            ("pm", &|| if hour >= 12 { "pm" } else { "am" }.to_string()),
            ("1", &|| month.to_string()),
            ("2", &|| day.to_string()),
            ("3", &|| (if hour % 12 == 0 { 12 } else { hour % 12 }).to_string()),
            ("4", &|| minute.to_string()),
            ("5", &|| second.to_string()),
        ];
        // Fractional seconds: .000 / ,000 (fixed) or .999 (trimmed).
        if (rest.starts_with('.') || rest.starts_with(',')) && rest.len() > 1 {
            let digits: String = rest[1..].chars().take_while(|c| *c == '0' || *c == '9').collect();
            let all_same = digits.chars().all(|c| c == '0') || digits.chars().all(|c| c == '9');
            let next_is_digit = rest[1 + digits.len()..].starts_with(|c: char| c.is_ascii_digit());
            if !digits.is_empty() && all_same && !next_is_digit {
                let n = digits.len().min(9);
                let frac = format!("{nanos:09}")[..n].to_string();
                if digits.starts_with('0') {
                    out.push_str(&rest[..1]);
                    out.push_str(&frac);
                } else {
                    let t = frac.trim_end_matches('0');
                    if !t.is_empty() {
                        out.push_str(&rest[..1]);
                        out.push_str(t);
                    }
                }
                rest = &rest[1 + digits.len()..];
                continue;
            }
        }
        match tokens.iter().find(|(t, _)| rest.starts_with(t)) {
            Some((t, f)) => {
                out.push_str(&f());
                rest = &rest[t.len()..];
            }
            None => {
                let c = rest.chars().next().unwrap_or(' ');
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_duration(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += n * unit;
    }
    Some(if neg { -total as i128 } else { total as i128 })
}

/// Go's `time.Duration.String`.
pub fn duration_string(nanos: i128) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (unit, div) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&frac(u, div));
        out.push_str(unit);
    } else {
        let secs = u / 1_000_000_000;
        let sub = u % 1_000_000_000;
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&frac(s * 1_000_000_000 + sub, 1_000_000_000));
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

fn frac(v: u128, div: u128) -> String {
    let int = v / div;
    let rem = v % div;
    if rem == 0 {
        return int.to_string();
    }
    let width = (div as f64).log10() as usize;
    let f = format!("{rem:0width$}");
    format!("{int}.{}", f.trim_end_matches('0'))
}

/// Go layouts to parse with: `toDate`.
fn parse_layout(layout: &str, value: &str) -> Result<Timestamp, String> {
    // Translate the common layout elements to strptime.
    let mut fmt = String::new();
    let mut rest = layout;
    let map: &[(&str, &str)] = &[
        ("2006", "%Y"),
        ("January", "%B"),
        ("Jan", "%b"),
        ("Monday", "%A"),
        ("Mon", "%a"),
        ("MST", "%Z"),
        ("Z07:00", "%:z"),
        ("-07:00", "%:z"),
        ("-0700", "%z"),
        ("Z0700", "%z"),
        ("01", "%m"),
        ("02", "%d"),
        ("_2", "%e"),
        ("15", "%H"),
        ("03", "%I"),
        ("04", "%M"),
        ("05", "%S"),
        ("06", "%y"),
        ("PM", "%p"),
        ("1", "%-m"),
        ("2", "%-d"),
        ("3", "%-I"),
        ("4", "%-M"),
        ("5", "%-S"),
    ];
    while !rest.is_empty() {
        if rest.starts_with(".000") || rest.starts_with(".999") {
            let n = rest[1..].chars().take_while(|c| *c == '0' || *c == '9').count();
            fmt.push_str("%.f");
            rest = &rest[1 + n..];
            continue;
        }
        match map.iter().find(|(t, _)| rest.starts_with(t)) {
            Some((t, f)) => {
                fmt.push_str(f);
                rest = &rest[t.len()..];
            }
            None => {
                let c = rest.chars().next().unwrap_or(' ');
                if c == '%' {
                    fmt.push_str("%%");
                } else {
                    fmt.push(c);
                }
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    let tm = jiff::fmt::strtime::parse(&fmt, value)
        .map_err(|_| format!("parsing time {value:?} as {layout:?}: cannot parse"))?;
    if let Ok(ts) = tm.to_timestamp() {
        return Ok(ts);
    }
    let dt = tm
        .to_datetime()
        .or_else(|_| tm.to_date().map(|d| d.to_datetime(jiff::civil::Time::midnight())))
        .map_err(|_| format!("parsing time {value:?} as {layout:?}: cannot parse"))?;
    dt.to_zoned_datetime(local())
        .map(|z| z.timestamp())
        .map_err(|e| format!("parsing time {value:?}: {e}"))
}

fn to_date(layout: &str, value: &str) -> Result<Value, String> {
    parse_layout(layout, value).map(|ts| time_value(ts, &local()))
}

fn date_modify(fmt: &str, date: &Value) -> Result<Value, String> {
    let d = parse_duration(fmt).ok_or_else(|| format!("time: invalid duration {fmt:?}"))?;
    let z = zoned_of(date).ok_or("not a time")?;
    let ts = z
        .timestamp()
        .checked_add(jiff::SignedDuration::from_nanos(d as i64))
        .map_err(|e| e.to_string())?;
    Ok(time_value(ts, z.time_zone()))
}

pub const FUNCS: &[FuncDef] = &[
    f("now", &[], |_, _| Ok(now())),
    f("date", &[Ty::Str, Ty::Any], |_, a| {
        Ok(Value::string(date_in_zone(s(&a[0]), &a[1], "Local")))
    }),
    f("dateInZone", &[Ty::Str, Ty::Any, Ty::Str], |_, a| {
        Ok(Value::string(date_in_zone(s(&a[0]), &a[1], s(&a[2]))))
    }),
    f("date_in_zone", &[Ty::Str, Ty::Any, Ty::Str], |_, a| {
        Ok(Value::string(date_in_zone(s(&a[0]), &a[1], s(&a[2]))))
    }),
    f("htmlDate", &[Ty::Any], |_, a| {
        Ok(Value::string(date_in_zone("2006-01-02", &a[0], "Local")))
    }),
    f("htmlDateInZone", &[Ty::Any, Ty::Str], |_, a| {
        Ok(Value::string(date_in_zone("2006-01-02", &a[0], s(&a[1]))))
    }),
    f("dateModify", &[Ty::Str, Ty::Time], |_, a| {
        Ok(date_modify(s(&a[0]), &a[1]).unwrap_or_else(|_| a[1].clone()))
    }),
    f("date_modify", &[Ty::Str, Ty::Time], |_, a| {
        Ok(date_modify(s(&a[0]), &a[1]).unwrap_or_else(|_| a[1].clone()))
    }),
    f("mustDateModify", &[Ty::Str, Ty::Time], |_, a| {
        date_modify(s(&a[0]), &a[1]).or_else(err)
    }),
    f("must_date_modify", &[Ty::Str, Ty::Time], |_, a| {
        date_modify(s(&a[0]), &a[1]).or_else(err)
    }),
    f("toDate", &[Ty::Str, Ty::Str], |_, a| {
        Ok(to_date(s(&a[0]), s(&a[1])).unwrap_or_else(|_| time_value(Timestamp::UNIX_EPOCH, &TimeZone::UTC)))
    }),
    f("mustToDate", &[Ty::Str, Ty::Str], |_, a| {
        to_date(s(&a[0]), s(&a[1])).or_else(err)
    }),
    f("unixEpoch", &[Ty::Time], |_, a| {
        Ok(Value::string(
            zoned_of(&a[0])
                .map_or(0, |z| z.timestamp().as_second())
                .to_string(),
        ))
    }),
    f("ago", &[Ty::Any], |_, a| {
        let since = Timestamp::now().as_nanosecond() - timestamp_of(&a[0]).as_nanosecond();
        let rounded = ((since as f64) / 1e9).round() as i128 * 1_000_000_000;
        Ok(Value::string(duration_string(rounded)))
    }),
    f("duration", &[Ty::Any], |_, a| {
        // Sprig reads only a string or an int64 (an `int` is 0).
        let n: i64 = match &a[0] {
            Value::Str(s) => s.parse().unwrap_or(0),
            Value::Int64(i) => *i,
            _ => 0,
        };
        Ok(Value::string(duration_string(n as i128 * 1_000_000_000)))
    }),
    f("durationRound", &[Ty::Any], |_, a| {
        let d: i128 = match &a[0] {
            Value::Str(s) => parse_duration(s).unwrap_or(0),
            Value::Int64(i) => *i as i128,
            v @ Value::Struct(_) => Timestamp::now().as_nanosecond() - timestamp_of(v).as_nanosecond(),
            _ => 0,
        };
        let u = d.unsigned_abs();
        let hour: u128 = 3_600_000_000_000;
        let units: [(u128, &str); 6] = [
            (hour * 24 * 365, "y"),
            (hour * 24 * 30, "mo"),
            (hour * 24, "d"),
            (hour, "h"),
            (60_000_000_000, "m"),
            (1_000_000_000, "s"),
        ];
        for (size, unit) in units {
            if u > size {
                return Ok(Value::string(format!("{}{unit}", u / size)));
            }
        }
        Ok(Value::str("0s"))
    }),
];

fn time_method(a: &[Value], f: impl Fn(&ZonedDateTime) -> Value) -> FnResult {
    match zoned_of(&a[0]) {
        Some(z) => Ok(f(&z)),
        None => err("not a time"),
    }
}

pub const METHODS: &[FuncDef] = &[
    f("Format", &[Ty::Str], |_, a| {
        time_method(&a, |z| Value::string(format(z, s(&a[1]))))
    }),
    f("String", &[], |_, a| {
        Ok(Value::string(time_string(&a[0]).unwrap_or_default()))
    }),
    f("Unix", &[], |_, a| {
        time_method(&a, |z| Value::Int64(z.timestamp().as_second()))
    }),
    f("UnixMilli", &[], |_, a| {
        time_method(&a, |z| Value::Int64(z.timestamp().as_millisecond()))
    }),
    f("UnixNano", &[], |_, a| {
        time_method(&a, |z| Value::Int64(z.timestamp().as_nanosecond() as i64))
    }),
    f("UTC", &[], |_, a| {
        time_method(&a, |z| time_value(z.timestamp(), &TimeZone::UTC))
    }),
    f("Local", &[], |_, a| {
        time_method(&a, |z| time_value(z.timestamp(), &local()))
    }),
    f("Year", &[], |_, a| {
        time_method(&a, |z| Value::Int(z.year() as i64))
    }),
    f("YearDay", &[], |_, a| {
        time_method(&a, |z| Value::Int(z.day_of_year() as i64))
    }),
    f("Day", &[], |_, a| time_method(&a, |z| Value::Int(z.day() as i64))),
    f("Hour", &[], |_, a| {
        time_method(&a, |z| Value::Int(z.hour() as i64))
    }),
    f("Minute", &[], |_, a| {
        time_method(&a, |z| Value::Int(z.minute() as i64))
    }),
    f("Second", &[], |_, a| {
        time_method(&a, |z| Value::Int(z.second() as i64))
    }),
    f("Nanosecond", &[], |_, a| {
        time_method(&a, |z| Value::Int(z.subsec_nanosecond() as i64))
    }),
    v("AddDate", &[Ty::Int, Ty::Int, Ty::Int], Ty::Any, |_, a| {
        time_method(&a, |z| {
            let span = jiff::Span::new()
                .try_years(super::int(&a[1]))
                .and_then(|s| s.try_months(super::int(&a[2])))
                .and_then(|s| s.try_days(super::int(&a[3])))
                .unwrap_or_default();
            let moved = z.checked_add(span).unwrap_or_else(|_| z.clone());
            time_value(moved.timestamp(), z.time_zone())
        })
    }),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_go_layouts() {
        let ts = Timestamp::new(1_700_000_000, 123_000_000).unwrap();
        let z = ts.to_zoned_datetime(TimeZone::UTC);
        for (layout, want) in [
            ("2006-01-02T15:04:05Z07:00", "2023-11-14T22:13:20Z"),
            ("Mon Jan _2 3:04PM .000 .999", "Tue Nov 14 10:13PM .123 .123"),
            (
                "2006-01-02 15:04:05.999999999 -0700 MST",
                "2023-11-14 22:13:20.123 +0000 UTC",
            ),
        ] {
            assert_eq!(format(&z, layout), want, "{layout}");
        }
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(duration_string(3_723_000_000_000), "1h2m3s");
        assert_eq!(duration_string(1_500_000_000), "1.5s");
        assert_eq!(duration_string(0), "0s");
        assert_eq!(duration_string(60_000_000_000), "1m0s");
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("x"), None);
    }
}
