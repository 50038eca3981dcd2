//! Translator options as a typed, documented table (GlusterFS's `struct volume_options`):
//! each translator declares its options once, and the graph builder validates volfiles
//! against the table, naming the volfile line of a bad value.

use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptKind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// A byte size: plain number or with a KB/MB/GB/TB suffix (powers of 1024, as GlusterFS).
    Size,
    /// Seconds, as an integer.
    Seconds {
        min: u64,
        max: u64,
    },
    Percent,
    Str,
    Enum(&'static [&'static str]),
    /// A list of words separated by spaces or commas.
    List,
}

#[derive(Clone, Copy, Debug)]
pub struct OptionSpec {
    pub key: &'static str,
    pub aliases: &'static [&'static str],
    pub kind: OptKind,
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

impl OptionSpec {
    pub const fn new(
        key: &'static str,
        kind: OptKind,
        default: Option<&'static str>,
        doc: &'static str,
    ) -> Self {
        OptionSpec {
            key,
            aliases: &[],
            kind,
            default,
            doc,
        }
    }

    pub fn matches(&self, key: &str) -> bool {
        self.key == key || self.aliases.contains(&key)
    }

    /// Checks one value against this spec; the error says what was expected.
    pub fn validate(&self, value: &str) -> Result<(), String> {
        match self.kind {
            OptKind::Bool => parse_bool(value).map(|_| ()),
            OptKind::Int { min, max } => {
                let v: i64 = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("expected an integer, got {value:?}"))?;
                if v < min || v > max {
                    return Err(format!("{v} is outside {min}..={max}"));
                }
                Ok(())
            }
            OptKind::Size => parse_size(value).map(|_| ()),
            OptKind::Seconds { min, max } => {
                let v: u64 = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("expected seconds, got {value:?}"))?;
                if v < min || v > max {
                    return Err(format!("{v} is outside {min}..={max} seconds"));
                }
                Ok(())
            }
            OptKind::Percent => {
                let v: f64 = value
                    .trim()
                    .trim_end_matches('%')
                    .parse()
                    .map_err(|_| format!("expected a percentage, got {value:?}"))?;
                if !(0.0..=100.0).contains(&v) {
                    return Err(format!("{v}% is outside 0..=100"));
                }
                Ok(())
            }
            OptKind::Str | OptKind::List => Ok(()),
            OptKind::Enum(choices) => {
                if choices.contains(&value) {
                    Ok(())
                } else {
                    Err(format!(
                        "expected one of {}, got {value:?}",
                        choices.join("|")
                    ))
                }
            }
        }
    }
}

pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" | "enable" | "1" => Ok(true),
        "off" | "no" | "false" | "disable" | "0" => Ok(false),
        _ => Err(format!("expected on|off, got {v:?}")),
    }
}

pub fn parse_size(v: &str) -> Result<u64, String> {
    let t = v.trim();
    let upper = t.to_ascii_uppercase();
    let (num, mult) = [
        ("TB", 1u64 << 40),
        ("GB", 1 << 30),
        ("MB", 1 << 20),
        ("KB", 1 << 10),
        ("T", 1 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
        ("B", 1),
    ]
    .iter()
    .find(|(s, _)| upper.ends_with(s))
    .map(|(s, m)| (&t[..t.len() - s.len()], *m))
    .unwrap_or((t, 1));
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("expected a size like 128KB, got {v:?}"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {v:?} is too large"))
}

/// A translator's validated options: every key of its table, defaults filled in.
#[derive(Clone, Debug, Default)]
pub struct Options {
    values: BTreeMap<String, String>,
}

impl Options {
    pub fn from_map(values: BTreeMap<String, String>) -> Self {
        Options { values }
    }

    /// Options as given, with each spec's default where the volfile says nothing, and aliases
    /// folded into the canonical key.
    pub fn resolve(specs: &[OptionSpec], given: &BTreeMap<String, String>) -> Self {
        let mut values = BTreeMap::new();
        for s in specs {
            if let Some(d) = s.default {
                values.insert(s.key.to_string(), d.to_string());
            }
        }
        for (k, v) in given {
            let key = specs
                .iter()
                .find(|s| s.matches(k))
                .map(|s| s.key)
                .unwrap_or(k);
            values.insert(key.to_string(), v.clone());
        }
        Options { values }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|s| s.as_str())
    }

    pub fn str_or(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_string()
    }

    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        self.get(key)
            .and_then(|v| parse_bool(v).ok())
            .unwrap_or(default)
    }

    pub fn int_or(&self, key: &str, default: i64) -> i64 {
        self.get(key)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    }

    pub fn size_or(&self, key: &str, default: u64) -> u64 {
        self.get(key)
            .and_then(|v| parse_size(v).ok())
            .unwrap_or(default)
    }

    pub fn secs_or(&self, key: &str, default: Duration) -> Duration {
        self.get(key)
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(default)
    }

    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_powers_of_1024() {
        assert_eq!(parse_size("128KB").unwrap(), 128 * 1024);
        assert_eq!(parse_size("1MB").unwrap(), 1 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn resolve_fills_defaults_and_folds_aliases() {
        const SPECS: &[OptionSpec] = &[OptionSpec {
            key: "ping-timeout",
            aliases: &["network.ping-timeout"],
            kind: OptKind::Seconds { min: 1, max: 1013 },
            default: Some("42"),
            doc: "",
        }];
        let o = Options::resolve(SPECS, &BTreeMap::new());
        assert_eq!(o.get("ping-timeout"), Some("42"));
        let given = BTreeMap::from([("network.ping-timeout".to_string(), "5".to_string())]);
        assert_eq!(
            Options::resolve(SPECS, &given).get("ping-timeout"),
            Some("5")
        );
        assert!(SPECS[0].validate("0").is_err());
    }
}
