//! What gwctl prints and asks on the terminal: the API's JSON or the command's text, times
//! and sizes as gluster prints them, confirmations and passwords.

use anyhow::{Context, bail};
use serde_json::Value;
use std::io::IsTerminal;

/// How the command line asked for output.
pub struct Out {
    /// Print the API's JSON (`--json`).
    pub json: bool,
    /// Never ask for confirmation (`--mode=script`).
    pub script: bool,
}

/// The API's JSON with --json, else the command's own text.
pub fn report(json: bool, v: &Value, text: impl FnOnce(&Value)) {
    if json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        text(v)
    }
}

/// A JSON array of strings (users, networks) as a list; anything else as empty.
pub fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// Asks `question` on the terminal unless `given` (--yes or --mode=script); without a
/// terminal to ask on, refuses, as gluster does outside --mode=script.
pub fn confirm(given: bool, question: &str, what: &str) -> anyhow::Result<()> {
    if given {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("{what}: not confirmed: no terminal to ask on; pass --yes (or --mode=script)");
    }
    eprint!("{question} (y/n) ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the answer")?;
    if matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        bail!("{what}: cancelled")
    }
}

/// The password given on the command line, else the first line of standard input.
pub fn password(given: Option<String>) -> anyhow::Result<String> {
    if let Some(p) = given {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let p = line.trim_end_matches(['\n', '\r']).to_string();
    if p.is_empty() {
        bail!("no password: give --password or write it on standard input");
    }
    Ok(p)
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-05-02T10:11:12Z`), for human output; --json
/// keeps the numbers.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days: days since 1970-01-01 to a proleptic Gregorian date.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// A byte count as gluster prints disk space: 1024-based, one decimal (`33.9GB`).
pub fn human_size(n: u64) -> String {
    let units = ["Bytes", "KB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}{}", units[0])
    } else {
        format!("{v:.1}{}", units[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(human_size(512), "512Bytes");
        assert_eq!(human_size(3 << 30), "3.0GB");
        assert_eq!(human_size(1536), "1.5KB");
    }
}
