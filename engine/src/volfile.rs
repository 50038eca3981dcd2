//! Volfile parser and printer (GlusterFS syntax). The last volume is the graph's top.
//!
//! ```text
//! volume gv-client-0
//!     type protocol/client
//!     option remote-host 127.0.0.1
//!     option remote-subvolume /data/b1
//! end-volume
//! ```

use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("volfile line {line}: {msg}")]
pub struct VolfileError {
    pub line: usize,
    pub msg: String,
}

fn err<T>(line: usize, msg: impl Into<String>) -> Result<T, VolfileError> {
    Err(VolfileError {
        line,
        msg: msg.into(),
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeDef {
    pub name: String,
    pub type_name: String,
    pub options: BTreeMap<String, String>,
    pub subvolumes: Vec<String>,
    /// Line of the `volume` keyword, for error messages.
    pub line: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Volfile {
    pub volumes: Vec<VolumeDef>,
}

impl Volfile {
    pub fn parse(text: &str) -> Result<Volfile, VolfileError> {
        let mut volumes: Vec<VolumeDef> = Vec::new();
        let mut cur: Option<VolumeDef> = None;
        let mut last_line = 0;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            last_line = line;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (kw, rest) = match l.split_once(char::is_whitespace) {
                Some((k, r)) => (k, r.trim()),
                None => (l, ""),
            };
            match kw {
                "volume" => {
                    if let Some(c) = &cur {
                        return err(
                            line,
                            format!(
                                "volume {:?} starts before volume {:?} ended (missing end-volume)",
                                rest, c.name
                            ),
                        );
                    }
                    if rest.is_empty() || rest.contains(char::is_whitespace) {
                        return err(line, "expected `volume NAME`");
                    }
                    if volumes.iter().any(|v| v.name == rest) {
                        return err(line, format!("volume {rest:?} is defined twice"));
                    }
                    cur = Some(VolumeDef {
                        name: rest.to_string(),
                        type_name: String::new(),
                        options: BTreeMap::new(),
                        subvolumes: Vec::new(),
                        line,
                    });
                }
                "type" | "option" | "subvolumes" => {
                    let Some(c) = cur.as_mut() else {
                        return err(line, format!("`{kw}` outside a volume"));
                    };
                    match kw {
                        "type" => {
                            if rest.is_empty() || rest.contains(char::is_whitespace) {
                                return err(line, "expected `type CATEGORY/NAME`");
                            }
                            if !c.type_name.is_empty() {
                                return err(line, format!("volume {:?} has two types", c.name));
                            }
                            c.type_name = rest.to_string();
                        }
                        "option" => {
                            let Some((k, v)) = rest.split_once(char::is_whitespace) else {
                                return err(line, "expected `option KEY VALUE`");
                            };
                            c.options.insert(k.to_string(), v.trim().to_string());
                        }
                        _ => {
                            for s in rest.split_whitespace() {
                                if !volumes.iter().any(|v| v.name == s) {
                                    return err(
                                        line,
                                        format!("subvolume {s:?} is not defined above this volume"),
                                    );
                                }
                                c.subvolumes.push(s.to_string());
                            }
                            if c.subvolumes.is_empty() {
                                return err(line, "`subvolumes` names no volume");
                            }
                        }
                    }
                }
                "end-volume" => {
                    let Some(c) = cur.take() else {
                        return err(line, "`end-volume` without `volume`");
                    };
                    if c.type_name.is_empty() {
                        return err(line, format!("volume {:?} has no type", c.name));
                    }
                    volumes.push(c);
                }
                other => return err(line, format!("unknown keyword {other:?}")),
            }
        }
        if let Some(c) = cur {
            return err(last_line, format!("volume {:?} has no end-volume", c.name));
        }
        if volumes.is_empty() {
            return err(last_line.max(1), "no volume defined");
        }
        Ok(Volfile { volumes })
    }

    pub fn top(&self) -> &VolumeDef {
        self.volumes.last().expect("a parsed volfile has a volume")
    }

    pub fn get(&self, name: &str) -> Option<&VolumeDef> {
        self.volumes.iter().find(|v| v.name == name)
    }
}

impl fmt::Display for Volfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.volumes.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "volume {}", v.name)?;
            writeln!(f, "    type {}", v.type_name)?;
            for (k, val) in &v.options {
                writeln!(f, "    option {k} {val}")?;
            }
            if !v.subvolumes.is_empty() {
                writeln!(f, "    subvolumes {}", v.subvolumes.join(" "))?;
            }
            writeln!(f, "end-volume")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "\
volume gv-client-0
    type protocol/client
    option remote-host 127.0.0.1
    option remote-subvolume /data/b1
end-volume

# second brick
volume gv-client-1
    type protocol/client
    option remote-host 127.0.0.1
    option remote-subvolume /data/b2
end-volume

volume gv-dht
    type cluster/distribute
    option min-free-disk 10%
    subvolumes gv-client-0 gv-client-1
end-volume
";

    #[test]
    fn parses_a_glusterfs_client_volfile_and_prints_it_back() {
        let v = Volfile::parse(CLIENT).unwrap();
        assert_eq!(v.volumes.len(), 3);
        assert_eq!(v.top().name, "gv-dht");
        assert_eq!(v.top().subvolumes, ["gv-client-0", "gv-client-1"]);
        assert_eq!(
            v.get("gv-client-1").unwrap().options["remote-subvolume"],
            "/data/b2"
        );
        assert_eq!(v.get("gv-client-1").unwrap().line, 8);
        let printed = v.to_string();
        let mut again = Volfile::parse(&printed).unwrap();
        // Lines differ after printing; everything else round-trips.
        for (a, b) in again.volumes.iter_mut().zip(&v.volumes) {
            a.line = b.line;
        }
        assert_eq!(again, v);
    }

    #[test]
    fn errors_name_the_line() {
        let e = Volfile::parse("volume a\n  type x/y\n  bogus 1\nend-volume\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = Volfile::parse("volume a\n  type x/y\n  subvolumes b\nend-volume\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.msg.contains("\"b\""));
        let e = Volfile::parse("volume a\n  type x/y\n").unwrap_err();
        assert!(e.msg.contains("end-volume"));
        let e = Volfile::parse("volume a\nend-volume\n").unwrap_err();
        assert!(e.msg.contains("no type"));
        let e =
            Volfile::parse("volume a\n type x/y\nend-volume\nvolume a\n type x/y\nend-volume\n")
                .unwrap_err();
        assert_eq!(e.line, 4);
        assert!(Volfile::parse("# nothing\n").is_err());
    }
}
