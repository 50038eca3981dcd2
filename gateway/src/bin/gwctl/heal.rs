//! `gwctl volume heal`: heal now, heal info, split-brain resolution.

use crate::client::Client;
use crate::output::{Out, report};
use serde_json::{Value, json};

/// `gwctl volume heal VOL …`.
pub fn run(c: &Client, out: &Out, name: &str, args: &[String]) -> anyhow::Result<()> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let heal_path = format!("/volumes/{name}/heal");
    match words.as_slice() {
        [] | ["full"] => {
            let v = c.job(&heal_path, Some(json!({ "full": words == ["full"] })))?;
            report(out.json, &v, |v: &Value| print_heal_info(v, false));
        }
        ["info"] => {
            let v = c.json("GET", &heal_path, None)?;
            report(out.json, &v, |v: &Value| print_heal_info(v, false));
        }
        ["info", "split-brain"] => {
            let v = c.json("GET", &heal_path, None)?;
            report(out.json, &v, |v: &Value| print_heal_info(v, true));
        }
        ["split-brain", policy, rest @ ..] => {
            let (brick, path) = match (*policy, rest) {
                ("source-brick", [b]) => (Some(*b), None),
                ("source-brick", [b, p]) => (Some(*b), Some(*p)),
                ("bigger-file" | "latest-mtime", [p]) => (None, Some(*p)),
                _ => anyhow::bail!(
                    "usage: gwctl volume heal {name} split-brain {{bigger-file PATH | latest-mtime PATH | source-brick HOST:/BRICK [PATH]}}"
                ),
            };
            let v = c.json(
                "POST",
                &format!("{heal_path}/split-brain"),
                Some(json!({ "policy": policy, "brick": brick, "path": path })),
            )?;
            report(out.json, &v, |v: &Value| {
                for r in v.as_array().cloned().unwrap_or_default() {
                    println!(
                        "{}: {}",
                        r["path"].as_str().unwrap_or(""),
                        r["result"].as_str().unwrap_or("")
                    );
                }
            });
        }
        _ => anyhow::bail!(
            "usage: gwctl volume heal {name} [info | info split-brain | full | split-brain POLICY ...]"
        ),
    }
    Ok(())
}

/// `heal info` as GlusterFS prints it: per brick its entries and count.
pub fn print_heal_info(v: &Value, split_only: bool) {
    for set in v["replica_sets"].as_array().cloned().unwrap_or_default() {
        let split: Vec<String> = set["split_brain"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.as_str().map(str::to_string))
            .collect();
        for b in set["bricks"].as_array().cloned().unwrap_or_default() {
            println!("Brick {}", b["brick"].as_str().unwrap_or(""));
            if b["connected"] != true {
                println!("Status: Transport endpoint is not connected");
                println!("Number of entries: -\n");
                continue;
            }
            println!("Status: Connected");
            let entries: Vec<String> = b["entries"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect();
            let shown: Vec<&String> = entries
                .iter()
                .filter(|e| !split_only || split.contains(e))
                .collect();
            for e in &shown {
                if split.contains(e) {
                    println!("{e} - Is in split-brain");
                } else {
                    println!("{e}");
                }
            }
            println!("Number of entries: {}\n", shown.len());
        }
    }
}
