//! A brick of a plain distribute volume (`--replica 1`, four bricks) that stops answering or
//! dies: operations on the other bricks go on, operations that need it fail fast (ENOTCONN/EIO
//! within ping-timeout, no hang), gatewayd restarts a killed brickd and the same mount works
//! again. Only a volume without replicas has a brick whose loss fails operations, so this is
//! about plain distribute; on the 2 x 2 volume users get, a brick lost from each replica set
//! while writing is `replicate.rs`'s `kill_9_of_a_brickd_in_each_pair_while_writing`.
//!
//! The probe that needs the victim brick creates a file in a subdirectory, not in the mount root:
//! the kernel holds a directory's lock across a create, so a create stalled in the root would also
//! stall unrelated lookups in the root, and the "others go on" half would measure the kernel.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use e2e::*;

/// Errors a client may see for a brick that is down.
fn is_down_error(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTCONN) | Some(libc::EIO))
}

struct Victim {
    mnt: PathBuf,
    bricks: Vec<PathBuf>,
    /// A file in vd/ that lives on b1.
    existing: String,
    round: usize,
}

impl Victim {
    /// Probes that need brick b1: create a new file in vd/ whose name hashes to b1, and open+read
    /// an existing file on b1. Each runs on its own thread, bounded by `limit`.
    fn probe(&mut self, limit: Duration) -> Vec<(String, Option<std::io::Result<()>>, Duration)> {
        self.round += 1;
        let name = names_on_brick(
            &self.bricks,
            Path::new("vd"),
            0,
            &format!("r{}-", self.round),
            1,
        )
        .expect("name on b1")
        .remove(0);
        let create = self.mnt.join("vd").join(name);
        let (r1, t1) = timed(limit, move || fs::write(&create, b"probe"));
        let existing = self.mnt.join("vd").join(&self.existing);
        let (r2, t2) = timed(limit, move || {
            let f = File::open(&existing)?;
            let mut b = [0u8; 4];
            f.read_at(&mut b, 0).map(|_| ())
        });
        vec![
            ("create on b1".into(), r1, t1),
            ("open+read on b1".into(), r2, t2),
        ]
    }
}

#[test]
fn kill_9_of_a_brickd_on_plain_distribute() {
    let gw = Gateway::up_with_replica(1).unwrap();
    let mnt = gw.mnt().to_path_buf();
    let bricks = gw.brick_dirs();
    let ping = gw.ping_timeout("vol");
    let limit = Duration::from_secs(ping + 10);
    eprintln!("ping-timeout {ping}s; a probe must return within {limit:?}");

    // Files in the root on every brick, and in vd/ one on b1.
    let mut per_brick: Vec<Vec<String>> = Vec::new();
    for i in 0..4 {
        let names = names_on_brick(&bricks, Path::new(""), i, "pre", 3).unwrap();
        for n in &names {
            fs::write(mnt.join(n), n.as_bytes()).unwrap();
            assert!(
                bricks[i].join(n).is_file(),
                "{n} did not land on brick b{}",
                i + 1
            );
        }
        per_brick.push(names);
    }
    fs::create_dir(mnt.join("vd")).unwrap();
    let on_b1 = names_on_brick(&bricks, Path::new("vd"), 0, "on-b", 1)
        .unwrap()
        .remove(0);
    // Larger than quick-read keeps (64 KiB), so reading it needs the brick, not the cache.
    let b1_data = vec![b'b'; 128 << 10];
    fs::write(mnt.join("vd").join(&on_b1), &b1_data).unwrap();
    assert!(
        bricks[0].join("vd").join(&on_b1).is_file(),
        "vd/{on_b1} not on b1"
    );
    // Files on the other bricks kept open across the fault.
    let open_fds: Vec<(String, File)> = per_brick[1..]
        .iter()
        .flatten()
        .map(|n| {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(mnt.join(n))
                .unwrap();
            (n.clone(), f)
        })
        .collect();

    let victim_pid = gw.brickd_pid(&bricks[0]).expect("brickd of b1 is running");
    let mut checks = Checks::new();
    checks.check(
        "gwctl volume status --json shows the brick processes",
        || {
            let out = gw.gwctl_ok(&["volume", "status", "vol", "--json"])?;
            ensure!(
                out.contains(&victim_pid.to_string()),
                "status does not show brickd pid {victim_pid}: {out}"
            );
            Ok(())
        },
    );

    let mut victim = Victim {
        mnt: mnt.clone(),
        bricks: bricks.clone(),
        existing: on_b1.clone(),
        round: 0,
    };
    let others_go_on = |phase: &str| -> Result<()> {
        for (round, (n, f)) in open_fds.iter().enumerate() {
            let start = Instant::now();
            let payload = format!("{phase} {round}");
            f.write_at(payload.as_bytes(), 100)
                .with_context(|| format!("pwrite {n}"))?;
            f.sync_all().with_context(|| format!("fsync {n}"))?;
            let mut back = vec![0u8; payload.len()];
            f.read_exact_at(&mut back, 100)?;
            ensure!(back == payload.as_bytes(), "{n}: read back differs");
            let content = fs::read(mnt.join(n)).with_context(|| format!("read {n} by path"))?;
            ensure!(content.starts_with(n.as_bytes()), "{n}: content lost");
            fs::metadata(mnt.join(n))?;
            ensure!(
                start.elapsed() < Duration::from_secs(5),
                "{n}: operations on a healthy brick took {:?}",
                start.elapsed()
            );
        }
        Ok(())
    };
    checks.check("baseline: every brick answers", || {
        others_go_on("baseline")?;
        for r in victim.probe(limit) {
            ensure!(matches!(r.1, Some(Ok(()))), "{}: {:?}", r.0, r.1);
        }
        Ok(())
    });

    // Phase 1: the brick stops answering (SIGSTOP): the ping timeout must notice.
    signal(victim_pid, libc::SIGSTOP);
    let stopped_at = Instant::now();
    let probes = {
        let mut v = Victim {
            mnt: mnt.clone(),
            bricks: bricks.clone(),
            existing: on_b1.clone(),
            round: 100,
        };
        std::thread::spawn(move || v.probe(limit))
    };
    std::thread::sleep(Duration::from_millis(300));
    checks.check("others go on while b1 is frozen", || others_go_on("frozen"));
    let probes = probes.join().expect("probe thread");
    checks.check(
        "ops needing the frozen brick fail with ENOTCONN/EIO within ping-timeout",
        || {
            for (what, r, took) in &probes {
                match r {
                    None => bail!("{what}: still hanging after {limit:?}"),
                    Some(Ok(())) => bail!("{what}: succeeded on a frozen brick"),
                    Some(Err(e)) if is_down_error(e) => {
                        eprintln!("{what}: {} after {took:?}", errno_name(e));
                        ensure!(*took <= limit, "{what} took {took:?}");
                    }
                    Some(Err(e)) => bail!("{what}: unexpected error {e} ({})", errno_name(e)),
                }
            }
            Ok(())
        },
    );
    eprintln!("frozen phase took {:?}", stopped_at.elapsed());

    // Phase 2: kill -9 (a stopped process dies of SIGKILL too).
    signal(victim_pid, libc::SIGKILL);
    let killed_at = Instant::now();
    let probes = victim.probe(limit);
    checks.check(
        "right after kill -9: ops needing b1 fail fast or b1 is already back",
        || {
            for (what, r, took) in &probes {
                match r {
                    None => bail!("{what}: hanging after {limit:?}"),
                    Some(Ok(())) => {
                        eprintln!("{what}: ok after {took:?} (brick already restarted)")
                    }
                    Some(Err(e)) if is_down_error(e) => {
                        eprintln!("{what}: {} after {took:?}", errno_name(e))
                    }
                    Some(Err(e)) => bail!("{what}: unexpected error {e}"),
                }
            }
            Ok(())
        },
    );
    checks.check("others go on after kill -9", || others_go_on("killed"));

    // Phase 3: gatewayd restarts the brick and the same mount works again.
    checks.check("gatewayd restarts the killed brickd", || {
        let pid = wait_for(Duration::from_secs(60), "a new brickd for b1", || {
            gw.brickd_pid(&bricks[0]).filter(|p| *p != victim_pid)
        })?;
        eprintln!("new brickd pid {pid} after {:?}", killed_at.elapsed());
        Ok(())
    });
    checks.check("the same mount works again on b1", || {
        let mut last = String::new();
        let start = Instant::now();
        wait_for(Duration::from_secs(90), "a create on b1 to succeed", || {
            let r = victim.probe(limit);
            let ok = r.iter().all(|x| matches!(x.1, Some(Ok(()))));
            last = format!("{r:?}");
            ok.then_some(())
        })
        .with_context(|| format!("last probe: {last}"))?;
        eprintln!(
            "b1 usable again {:?} after the restart began",
            start.elapsed()
        );
        for (i, names) in per_brick.iter().enumerate() {
            for n in names {
                let c = fs::read(mnt.join(n)).with_context(|| format!("read {n}"))?;
                ensure!(c.starts_with(n.as_bytes()), "{n} (b{}) content lost", i + 1);
            }
        }
        ensure!(fs::read(mnt.join("vd").join(&on_b1))? == b1_data);
        let fresh = names_on_brick(&bricks, Path::new(""), 0, "post", 1)?.remove(0);
        fs::write(mnt.join(&fresh), b"after restart")?;
        ensure!(bricks[0].join(&fresh).is_file(), "{fresh} not on b1");
        Ok(())
    });
    drop(open_fds);
    checks.finish();
}
