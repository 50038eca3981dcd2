//! `gwctl volume add-brick | remove-brick | replace-brick | rebalance`, in GlusterFS's words,
//! and the rebalance status: a table, or progress bars that follow it (`status --watch`).

use crate::client::Client;
use crate::output::{Out, confirm, human_size, report};
use anyhow::{Context, bail};
use gateway::elastic::{RebalanceAction, RebalanceStatus, RemoveAction};
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::time::Duration;

/// A step of `remove-brick` or `rebalance`: an action the API takes, or its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step<A> {
    Do(A),
    Status,
}

/// `add-brick`'s words: `[replica N] BRICK... [force]`. Returns (replica, bricks, force).
pub fn add_brick_args(
    args: &[String],
    flag_replica: Option<usize>,
    flag_force: bool,
) -> anyhow::Result<(Option<usize>, Vec<String>, bool)> {
    let mut rest = args;
    let mut replica = flag_replica;
    if let [w, n, tail @ ..] = rest
        && w == "replica"
    {
        if replica.is_some() {
            bail!("the replica count is given twice");
        }
        let n: usize = n
            .parse()
            .with_context(|| format!("`replica {n}`: the count must be a number"))?;
        if n == 0 {
            bail!("replica 0: a replica count is 1 or more");
        }
        replica = Some(n);
        rest = tail;
    } else if rest.first().is_some_and(|w| w == "replica") {
        bail!("`replica` needs a count: replica N");
    }
    let mut force = flag_force;
    if let [bricks @ .., last] = rest
        && last == "force"
    {
        force = true;
        rest = bricks;
    }
    if let Some(w) = rest.iter().find(|w| {
        matches!(
            w.as_str(),
            "replica" | "arbiter" | "disperse" | "stripe" | "force"
        )
    }) {
        match w.as_str() {
            "arbiter" | "disperse" | "stripe" => {
                bail!("add-brick: `{w}` is not supported; give replica N and whole replica sets")
            }
            _ => bail!("`{w}` is out of place: NAME [replica N] HOST:/PATH... [force]"),
        }
    }
    if rest.is_empty() {
        bail!("no bricks: give HOST:/PATH of whole replica sets");
    }
    Ok((replica, rest.to_vec(), force))
}

/// `remove-brick`'s words: `BRICK... start|status|stop|commit|force`.
pub fn remove_brick_args(args: &[String]) -> anyhow::Result<(Vec<String>, Step<RemoveAction>)> {
    const USAGE: &str = "NAME HOST:/PATH... start|status|stop|commit|force";
    let Some((last, bricks)) = args.split_last() else {
        bail!("usage: gwctl volume remove-brick {USAGE}");
    };
    let step = match last.as_str() {
        "start" => Step::Do(RemoveAction::Start),
        "stop" => Step::Do(RemoveAction::Stop),
        "commit" => Step::Do(RemoveAction::Commit),
        "force" => Step::Do(RemoveAction::Force),
        "status" => Step::Status,
        w => bail!("remove-brick: the last word is the action, not `{w}`: {USAGE}"),
    };
    if bricks.first().is_some_and(|w| w == "replica") {
        bail!(
            "remove-brick: `replica N` (a smaller replica count) is not supported; remove whole replica sets"
        );
    }
    if let Some(w) = bricks.iter().find(|b| !b.contains(":/")) {
        bail!("remove-brick: `{w}` is not a brick (HOST:/PATH): {USAGE}");
    }
    if bricks.is_empty() && step != Step::Status {
        bail!("remove-brick: no bricks: {USAGE}");
    }
    Ok((bricks.to_vec(), step))
}

/// `replace-brick NAME OLD NEW commit force`: GlusterFS kept only its `commit force` form, and
/// so do we; the words are required so that a script written for GlusterFS means the same.
pub fn replace_brick_words(words: &[String]) -> anyhow::Result<()> {
    match words {
        [c, f] if c == "commit" && f == "force" => Ok(()),
        _ => bail!(
            "replace-brick: end with `commit force` (NAME OLD NEW commit force): NEW takes OLD's place at once and self-heal fills it from its replica set"
        ),
    }
}

/// `rebalance`'s words: `[fix-layout] start | stop | status`. Returns (fix-layout, step).
pub fn rebalance_args(args: &[String]) -> anyhow::Result<(bool, Step<RebalanceAction>)> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok(match words.as_slice() {
        ["start"] => (false, Step::Do(RebalanceAction::Start)),
        ["fix-layout", "start"] => (true, Step::Do(RebalanceAction::Start)),
        ["stop"] => (false, Step::Do(RebalanceAction::Stop)),
        ["status"] => (false, Step::Status),
        ["start", "force"] => {
            bail!("rebalance: `start force` is not supported; `start` moves every file it can")
        }
        _ => bail!("usage: gwctl volume rebalance NAME [fix-layout] start | stop | status"),
    })
}

/// `gwctl volume add-brick NAME [replica N] BRICK... [force]`.
pub fn add_brick(
    c: &Client,
    out: &Out,
    name: &str,
    args: &[String],
    replica: Option<usize>,
    force: bool,
) -> anyhow::Result<()> {
    let (replica, bricks, force) = add_brick_args(args, replica, force)?;
    let v = c.json(
        "POST",
        &format!("/volumes/{name}/add-brick"),
        Some(json!({ "bricks": bricks, "replica": replica, "force": force })),
    )?;
    report(out.json, &v, |_: &Value| {
        println!("volume add-brick: success");
        println!(
            "Files move onto the new bricks with: gwctl volume rebalance {name} start (fix-layout start: new files only)"
        );
    });
    Ok(())
}

/// `gwctl volume remove-brick NAME BRICK... ACTION`.
pub fn remove_brick(
    c: &Client,
    out: &Out,
    name: &str,
    args: &[String],
    yes: bool,
    watch: bool,
) -> anyhow::Result<()> {
    let (bricks, step) = remove_brick_args(args)?;
    let path = format!("/volumes/{name}/remove-brick");
    let action = match step {
        Step::Status => return show_status(c, out, name, &path, watch),
        Step::Do(a) => a,
    };
    let what = format!("volume remove-brick {name}");
    match action {
        RemoveAction::Commit => confirm(
            yes || out.script,
            "Removing brick(s) can result in data loss. Do you want to continue?",
            &what,
        )?,
        RemoveAction::Force => confirm(
            yes || out.script,
            "Remove-brick force moves no file off the bricks: what they still hold leaves the volume with them. Do you want to continue?",
            &what,
        )?,
        RemoveAction::Start | RemoveAction::Stop => {}
    }
    let v = c.json(
        "POST",
        &path,
        Some(json!({ "bricks": bricks, "action": action })),
    )?;
    let word = serde_json::to_value(action)?;
    let word = word.as_str().unwrap_or_default();
    let follow_it = watch && action == RemoveAction::Start;
    // With --json, --watch prints a status per line; the step's answer is the first of them.
    if follow_it && out.json {
        println!("{v}");
        return show_status(c, out, name, &path, true);
    }
    report(out.json, &v, |_: &Value| {
        println!("volume remove-brick {word}: success");
        if action == RemoveAction::Start {
            println!(
                "Follow it with: gwctl volume remove-brick {name} {} status --watch; then commit",
                bricks.join(" ")
            );
        }
    });
    if follow_it {
        show_status(c, out, name, &path, true)?;
    }
    Ok(())
}

/// `gwctl volume replace-brick NAME OLD NEW commit force`.
pub fn replace_brick(
    c: &Client,
    out: &Out,
    name: &str,
    old: &str,
    new: &str,
    words: &[String],
) -> anyhow::Result<()> {
    replace_brick_words(words)?;
    let v = c.json(
        "POST",
        &format!("/volumes/{name}/replace-brick"),
        Some(json!({ "old": old, "new": new })),
    )?;
    report(out.json, &v, |_: &Value| {
        println!("volume replace-brick: success: replace-brick commit force operation successful");
        println!("{new} heals from its replica set: gwctl volume heal {name} info");
    });
    Ok(())
}

/// `gwctl volume rebalance NAME [fix-layout] start | stop | status [--watch]`.
pub fn rebalance(
    c: &Client,
    out: &Out,
    name: &str,
    args: &[String],
    watch: bool,
) -> anyhow::Result<()> {
    let (fix_layout, step) = rebalance_args(args)?;
    let path = format!("/volumes/{name}/rebalance");
    let action = match step {
        Step::Status => return show_status(c, out, name, &path, watch),
        Step::Do(a) => a,
    };
    let v = c.json(
        "POST",
        &path,
        Some(json!({ "action": action, "fix_layout": fix_layout })),
    )?;
    let follow_it = watch && action == RebalanceAction::Start;
    if follow_it && out.json {
        println!("{v}");
        return show_status(c, out, name, &path, true);
    }
    report(out.json, &v, |_: &Value| match action {
        RebalanceAction::Start => println!(
            "volume rebalance: {name}: success: {} started; see gwctl volume rebalance {name} status --watch",
            if fix_layout {
                "fix-layout"
            } else {
                "rebalance"
            }
        ),
        RebalanceAction::Stop => println!("volume rebalance: {name}: success: stopped"),
    });
    if follow_it {
        show_status(c, out, name, &path, true)?;
    }
    Ok(())
}

fn decode(v: &Value) -> anyhow::Result<RebalanceStatus> {
    serde_json::from_value(v.clone()).with_context(|| format!("gatewayd answered {v}"))
}

/// The status once, or followed until it is no longer in progress; an error when it failed,
/// so that scripts see it in the exit code.
fn show_status(c: &Client, out: &Out, name: &str, path: &str, watch: bool) -> anyhow::Result<()> {
    let s = if watch {
        follow(c, out, path)?
    } else {
        let v = c.json("GET", path, None)?;
        let s = decode(&v)?;
        report(out.json, &v, |_: &Value| print_status(&s));
        s
    };
    if s.state == "failed" {
        bail!(
            "{} of {name} failed{}",
            s.kind,
            s.message.map(|m| format!(": {m}")).unwrap_or_default()
        );
    }
    Ok(())
}

/// Polls every second until the state is no longer `in progress`. On a terminal: a bar per
/// subvolume and one for the whole; else (or with --json) a line per poll, which a log keeps
/// readable where redrawn bars would not be.
fn follow(c: &Client, out: &Out, path: &str) -> anyhow::Result<RebalanceStatus> {
    let tty = !out.json && std::io::stdout().is_terminal();
    let mut bars: Option<Bars> = None;
    loop {
        let v = c.json("GET", path, None)?;
        let s = decode(&v)?;
        if out.json {
            println!("{v}");
        } else if tty {
            bars.get_or_insert_with(|| Bars::new(&s)).update(&s);
        } else {
            println!("{}", status_line(&s));
        }
        if s.state != "in progress" {
            if let Some(b) = bars {
                b.clear();
            }
            if !out.json {
                if !tty {
                    println!();
                }
                print_status(&s);
            }
            return Ok(s);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The bars of `--watch`: the per-subvolume file counts are unknown (only the volume's is
/// counted when the rebalance starts), so a subvolume's bar is a spinner with its counters,
/// and only the total has a length.
struct Bars {
    multi: indicatif::MultiProgress,
    subvols: Vec<(String, indicatif::ProgressBar)>,
    total: indicatif::ProgressBar,
}

impl Bars {
    fn new(s: &RebalanceStatus) -> Bars {
        let multi =
            indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stdout());
        let width = s
            .subvolumes
            .iter()
            .map(|v| v.name.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let spin = indicatif::ProgressStyle::with_template(&format!(
            "{{prefix:<{width}}} {{spinner}} {{pos}} scanned, {{msg}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
        let subvols = s
            .subvolumes
            .iter()
            .map(|v| {
                let b = multi.add(indicatif::ProgressBar::new_spinner());
                b.set_style(spin.clone());
                b.set_prefix(v.name.clone());
                (v.name.clone(), b)
            })
            .collect();
        let total = multi.add(if s.files_total > 0 {
            let b = indicatif::ProgressBar::new(s.files_total);
            b.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "{{prefix:<{width}}} [{{bar:30}}] {{pos}}/{{len}} scanned, {{msg}}"
                ))
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        } else {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_style(spin);
            b
        });
        total.set_prefix("Total");
        let mut bars = Bars {
            multi,
            subvols,
            total,
        };
        // Counters first: a spinner ticking before them would show a line without them.
        bars.update(s);
        for (_, b) in &bars.subvols {
            b.enable_steady_tick(Duration::from_millis(120));
        }
        bars.total.enable_steady_tick(Duration::from_millis(120));
        bars
    }

    fn update(&mut self, s: &RebalanceStatus) {
        for v in &s.subvolumes {
            if let Some((_, b)) = self.subvols.iter().find(|(n, _)| *n == v.name) {
                b.set_position(v.counters.scanned);
                b.set_message(counters_text(&v.counters));
            }
        }
        if s.files_total > 0 {
            self.total.set_length(s.files_total);
        }
        self.total.set_position(s.totals.scanned);
        self.total.set_message(format!(
            "{}; elapsed {}, ETA {}",
            counters_text(&s.totals),
            hms(s.elapsed_secs),
            eta(s)
        ));
    }

    fn clear(self) {
        for (_, b) in &self.subvols {
            b.finish_and_clear();
        }
        self.total.finish_and_clear();
        let _ = self.multi.clear();
    }
}

fn counters_text(c: &gateway::elastic::Counters) -> String {
    format!(
        "{} moved ({}), {} skipped, {} failed, {} dirs",
        c.moved,
        human_size(c.bytes_moved),
        c.skipped,
        c.failed,
        c.dirs
    )
}

/// Seconds as GlusterFS's `run time in h:m:s`.
pub fn hms(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn eta(s: &RebalanceStatus) -> String {
    if s.state != "in progress" {
        return "-".into();
    }
    s.eta_secs.map(hms).unwrap_or_else(|| "unknown".into())
}

/// One line per poll when not on a terminal.
pub fn status_line(s: &RebalanceStatus) -> String {
    let of = if s.files_total > 0 {
        format!("/{}", s.files_total)
    } else {
        String::new()
    };
    format!(
        "{} {}: {}: {}{of} scanned, {}; elapsed {}, ETA {}",
        s.kind,
        s.volume,
        s.state,
        s.totals.scanned,
        counters_text(&s.totals),
        hms(s.elapsed_secs),
        eta(s)
    )
}

/// The status as a table: a row per subvolume and the totals, then the state, the time it has
/// run and what is left.
pub fn print_status(s: &RebalanceStatus) {
    let width = s
        .subvolumes
        .iter()
        .map(|v| v.name.len())
        .max()
        .unwrap_or(0)
        .max(9);
    let row = |name: &str, c: &gateway::elastic::Counters, bricks: &str| {
        let line = format!(
            "{name:<width$} {:>10} {:>10} {:>10} {:>8} {:>12} {:>8}  {bricks}",
            c.scanned,
            c.moved,
            c.skipped,
            c.failed,
            human_size(c.bytes_moved),
            c.dirs
        );
        println!("{}", line.trim_end())
    };
    println!(
        "{:<width$} {:>10} {:>10} {:>10} {:>8} {:>12} {:>8}  Bricks",
        "Subvolume", "Scanned", "Moved", "Skipped", "Failed", "Size moved", "Dirs"
    );
    println!("{}", "-".repeat(width + 72));
    for v in &s.subvolumes {
        let bricks = v.bricks.join(", ");
        let bricks = if v.decommissioned {
            format!("{bricks} (being removed)")
        } else {
            bricks
        };
        row(&v.name, &v.counters, &bricks);
    }
    row("Total", &s.totals, "");
    println!();
    println!("{:<10}{} ({})", "State:", s.state, s.kind);
    println!("{:<10}{}", "Elapsed:", hms(s.elapsed_secs));
    let of = if s.files_total > 0 {
        format!(" ({} of {} files scanned)", s.totals.scanned, s.files_total)
    } else {
        String::new()
    };
    println!("{:<10}{}{of}", "ETA:", eta(s));
    if s.resumed > 0 {
        println!(
            "{:<10}{} time(s), after gatewayd stopped in the middle",
            "Resumed:", s.resumed
        );
    }
    if let Some(m) = &s.message {
        println!("{:<10}{m}", "Message:");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn add_brick_takes_replica_n_and_a_trailing_force() {
        let (r, b, f) = add_brick_args(&words("h:/a h:/b"), None, false).unwrap();
        assert_eq!((r, b.len(), f), (None, 2, false));
        let (r, b, f) =
            add_brick_args(&words("replica 3 h:/a h:/b h:/c force"), None, false).unwrap();
        assert_eq!((r, f), (Some(3), true));
        assert_eq!(b, words("h:/a h:/b h:/c"));
        let (r, _, f) = add_brick_args(&words("h:/a h:/b"), Some(2), true).unwrap();
        assert_eq!((r, f), (Some(2), true));
        for bad in [
            "replica",
            "replica two h:/a",
            "replica 0 h:/a",
            "replica 2",
            "force",
            "h:/a replica 2 h:/b",
            "h:/a force h:/b",
            "replica 3 arbiter 1 h:/a h:/b h:/c",
        ] {
            assert!(add_brick_args(&words(bad), None, false).is_err(), "{bad}");
        }
        assert!(add_brick_args(&words("replica 2 h:/a h:/b"), Some(2), false).is_err());
    }

    #[test]
    fn remove_brick_takes_the_last_word_as_the_action() {
        for (w, step) in [
            ("start", Step::Do(RemoveAction::Start)),
            ("stop", Step::Do(RemoveAction::Stop)),
            ("commit", Step::Do(RemoveAction::Commit)),
            ("force", Step::Do(RemoveAction::Force)),
            ("status", Step::Status),
        ] {
            let (b, s) = remove_brick_args(&words(&format!("h:/a h:/b {w}"))).unwrap();
            assert_eq!((b, s), (words("h:/a h:/b"), step));
        }
        let (b, s) = remove_brick_args(&words("status")).unwrap();
        assert_eq!((b.len(), s), (0, Step::Status));
        for bad in [
            "",
            "start",
            "h:/a h:/b",
            "h:/a h:/b begin",
            "h:/a start h:/b commit",
            "replica 1 h:/a start",
        ] {
            assert!(remove_brick_args(&words(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replace_brick_needs_commit_force() {
        assert!(replace_brick_words(&words("commit force")).is_ok());
        for bad in [
            "",
            "commit",
            "force",
            "start",
            "force commit",
            "commit force now",
        ] {
            let e = replace_brick_words(&words(bad)).unwrap_err().to_string();
            assert!(e.contains("commit force"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn rebalance_takes_fix_layout_and_an_action() {
        let start = Step::Do(RebalanceAction::Start);
        assert_eq!(rebalance_args(&words("start")).unwrap(), (false, start));
        assert_eq!(
            rebalance_args(&words("fix-layout start")).unwrap(),
            (true, start)
        );
        assert_eq!(
            rebalance_args(&words("stop")).unwrap(),
            (false, Step::Do(RebalanceAction::Stop))
        );
        assert_eq!(
            rebalance_args(&words("status")).unwrap(),
            (false, Step::Status)
        );
        for bad in [
            "",
            "fix-layout",
            "fix-layout stop",
            "start force",
            "begin",
            "start stop",
        ] {
            assert!(rebalance_args(&words(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times_print_as_h_m_s() {
        assert_eq!(hms(0.0), "0:00:00");
        assert_eq!(hms(72.4), "0:01:12");
        assert_eq!(hms(3_600.0 * 26.0 + 61.0), "26:01:01");
        assert_eq!(hms(-3.0), "0:00:00");
    }
}
