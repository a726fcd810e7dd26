//! Sizes as people write and read them: `16K`, `4M` parsed into bytes, byte counts shown in binary
//! units (`1.50 GiB`); spans of time shown in their two largest units (`2 h 5 min`).

/// Human-readable size in binary units: `1.5 GiB`, `512 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

/// A span of `secs` seconds in its two largest units: `45 s`, `4 min 10 s`, `2 h 5 min`, `3 d 4 h`
/// (a unit that is 0 is left out: `2 h`).
pub fn human_duration(secs: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "min"), (1, "s")];
    let Some(first) = UNITS.iter().position(|(size, _)| secs >= *size) else {
        return "0 s".into();
    };
    let (big, big_name) = UNITS[first];
    let mut out = format!("{} {big_name}", secs / big);
    if let Some(&(small, small_name)) = UNITS.get(first + 1) {
        let rest = secs % big / small;
        if rest > 0 {
            out += &format!(" {rest} {small_name}");
        }
    }
    out
}

/// Parses `16384`, `16K`, `16KiB`, `4M`, `1G` (binary units) into bytes.
pub fn parse_size(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 16384, 256K, 4M)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("{s:?} has an unknown unit (use K, M or G)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_show_their_two_largest_units() {
        assert_eq!(human_duration(0), "0 s");
        assert_eq!(human_duration(45), "45 s");
        assert_eq!(human_duration(250), "4 min 10 s");
        assert_eq!(human_duration(7_200), "2 h");
        assert_eq!(human_duration(7_530), "2 h 5 min");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3_600 + 59), "3 d 4 h");
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(1 << 30), "1.00 GiB");
    }
}
