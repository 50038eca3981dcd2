//! The S3 frontend driven by real clients — `aws` (awscli), boto3 and curl — against a real
//! `gatewayd up`, checked against the same volume's FUSE mount.

use anyhow::{Context, Result, bail, ensure};
use e2e::*;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct S3Env {
    url: String,
    access: String,
    secret: String,
    /// aws-cli settings: SigV4 for presigned URLs too (aws-cli 1 presigns with SigV2 otherwise).
    config: std::path::PathBuf,
}

fn s3_env(gw: &Gateway, name: &str) -> Result<S3Env> {
    let (access, secret) = gw.s3_key(name)?;
    let config = gw.root().join(format!("aws-{name}.conf"));
    fs::write(&config, "[default]\ns3 =\n    signature_version = s3v4\n")?;
    Ok(S3Env {
        url: gw.s3_url()?,
        access,
        secret,
        config,
    })
}

impl S3Env {
    fn aws(&self, args: &[&str]) -> Command {
        let mut c = Command::new("aws");
        c.arg("--endpoint-url").arg(&self.url).args(args);
        // Transfer commands print progress lines unless told not to; the rest know no such flag.
        if args.first() == Some(&"s3") && matches!(args.get(1), Some(&("cp" | "sync" | "mv"))) {
            c.arg("--no-progress");
        }
        c.env("AWS_ACCESS_KEY_ID", &self.access)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", &self.config)
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        c
    }

    fn aws_ok(&self, args: &[&str]) -> Result<String> {
        run_ok(&mut self.aws(args)).with_context(|| format!("aws {}", args.join(" ")))
    }

    fn python(&self, mnt: &Path, script: &str, args: &[&str]) -> Command {
        let mut c = Command::new("python3");
        c.arg(workspace_root().join("tests/s3").join(script))
            .args(args)
            .env("S3_URL", &self.url)
            .env("MNT", mnt)
            .env("AWS_ACCESS_KEY_ID", &self.access)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        c
    }
}

fn md5_hex(path: &Path) -> Result<String> {
    let out = run_ok(Command::new("md5sum").arg(path))?;
    Ok(out
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

/// Polls until a name another protocol removed is gone from the FUSE mount (the kernel may keep
/// it for the entry timeout).
fn gone(path: &Path) -> bool {
    wait_for(Duration::from_secs(5), "a name to leave the mount", || {
        (!path.exists()).then_some(())
    })
    .is_ok()
}

#[test]
fn boto3_covers_every_operation_and_its_errors() -> Result<()> {
    need("python3");
    let gw = Gateway::up()?;
    let env = s3_env(&gw, "boto3")?;
    let out = run(&mut env.python(gw.mnt(), "boto3_ops.py", &[]))?;
    let text = output_text(&out);
    ensure!(
        out.status.success() && text.contains("all S3 checks passed"),
        "boto3 checks failed:\n{text}\n{}",
        gw.logs()
    );
    let passed = text.lines().filter(|l| l.starts_with("ok - ")).count();
    ensure!(passed >= 90, "only {passed} checks ran:\n{text}");
    Ok(())
}

/// aws-chunked bodies as the Java/Go SDKs send them: chained chunk signatures (a forged chunk is
/// refused and stores nothing) and unsigned chunks with a CRC32 trailer (a wrong one is refused).
#[test]
fn aws_chunked_bodies_signed_and_with_trailers() -> Result<()> {
    need("python3");
    let gw = Gateway::up()?;
    let env = s3_env(&gw, "chunked")?;
    let out = run(&mut env.python(gw.mnt(), "chunked.py", &[]))?;
    let text = output_text(&out);
    ensure!(
        out.status.success() && text.contains("all chunked checks passed"),
        "aws-chunked checks failed:\n{text}\n{}",
        gw.logs()
    );
    Ok(())
}

#[test]
fn aws_cli_copies_syncs_and_multiparts_through_the_same_namespace() -> Result<()> {
    need("aws");
    let gw = Gateway::up()?;
    let env = s3_env(&gw, "cli")?;
    let work = temp_dir("awscli");
    let w = work.path();

    env.aws_ok(&["s3", "mb", "s3://media"])?;
    ensure!(gw.mnt().join("media").is_dir(), "the bucket is a directory");

    // Up through S3, read through FUSE.
    let small = w.join("small.txt");
    fs::write(&small, b"small object\n")?;
    env.aws_ok(&[
        "s3",
        "cp",
        small.to_str().unwrap(),
        "s3://media/docs/small.txt",
    ])?;
    ensure!(fs::read(gw.mnt().join("media/docs/small.txt"))? == fs::read(&small)?);

    // 200 MiB: aws-cli switches to multipart (8 MiB parts, several in flight).
    let big = w.join("big.bin");
    random_file(&big, 200 << 20, 7)?;
    let t = Instant::now();
    env.aws_ok(&[
        "s3",
        "cp",
        big.to_str().unwrap(),
        "s3://media/video/big.bin",
    ])?;
    eprintln!("200 MiB multipart upload: {:?}", t.elapsed());
    ensure!(
        sha256_file(&big)? == sha256_file(&gw.mnt().join("media/video/big.bin"))?,
        "the 200 MiB object read through FUSE differs"
    );
    let head: serde_json::Value = serde_json::from_str(&env.aws_ok(&[
        "s3api",
        "head-object",
        "--bucket",
        "media",
        "--key",
        "video/big.bin",
    ])?)?;
    let etag = head["ETag"]
        .as_str()
        .unwrap_or_default()
        .trim_matches('"')
        .to_string();
    ensure!(etag.ends_with("-25"), "a 25-part upload's ETag, got {etag}");
    let listed = env.aws_ok(&["s3api", "list-multipart-uploads", "--bucket", "media"])?;
    ensure!(
        !listed.contains("UploadId"),
        "no upload left behind: {listed}"
    );

    // Written through FUSE, down through S3, ETag = MD5.
    let from_fuse = gw.mnt().join("media/docs/from-fuse.bin");
    random_file(&from_fuse, 3 << 20, 9)?;
    let down = w.join("down.bin");
    env.aws_ok(&[
        "s3",
        "cp",
        "s3://media/docs/from-fuse.bin",
        down.to_str().unwrap(),
    ])?;
    ensure!(
        fs::read(&down)? == fs::read(&from_fuse)?,
        "download differs"
    );
    let head: serde_json::Value = serde_json::from_str(&env.aws_ok(&[
        "s3api",
        "head-object",
        "--bucket",
        "media",
        "--key",
        "docs/from-fuse.bin",
    ])?)?;
    ensure!(
        head["ETag"].as_str().unwrap_or_default().trim_matches('"') == md5_hex(&from_fuse)?,
        "ETag of a FUSE-written file is its MD5: {head}"
    );
    // An object PUT through S3, rewritten in place through FUSE (same size): its stored ETag
    // no longer matches the file's stat stamp, so S3 gives the new bytes' MD5.
    let rewritten = gw.mnt().join("media/docs/small.txt");
    std::io::Write::write_all(
        &mut fs::OpenOptions::new().write(true).open(&rewritten)?,
        b"SMALL OBJECT\n",
    )?;
    let head: serde_json::Value = serde_json::from_str(&env.aws_ok(&[
        "s3api",
        "head-object",
        "--bucket",
        "media",
        "--key",
        "docs/small.txt",
    ])?)?;
    ensure!(
        head["ETag"].as_str().unwrap_or_default().trim_matches('"') == md5_hex(&rewritten)?,
        "ETag of an object rewritten through FUSE is the new MD5: {head}"
    );
    // Download of the multipart object too.
    let big_down = w.join("big.down");
    env.aws_ok(&[
        "s3",
        "cp",
        "s3://media/video/big.bin",
        big_down.to_str().unwrap(),
    ])?;
    ensure!(
        sha256_file(&big)? == sha256_file(&big_down)?,
        "200 MiB download differs"
    );
    fs::remove_file(&big_down)?;
    fs::remove_file(&big)?;

    // sync a tree up and down.
    let tree = w.join("tree");
    for (i, p) in [
        "a.txt",
        "b/c.txt",
        "b/d/e.txt",
        "name with spaces.txt",
        "ünïcödé.txt",
    ]
    .iter()
    .enumerate()
    {
        let f = tree.join(p);
        fs::create_dir_all(f.parent().unwrap())?;
        fs::write(&f, format!("file {i}: {p}\n").repeat(i * 100 + 1))?;
    }
    env.aws_ok(&["s3", "sync", tree.to_str().unwrap(), "s3://media/tree"])?;
    let back = w.join("back");
    env.aws_ok(&["s3", "sync", "s3://media/tree", back.to_str().unwrap()])?;
    let diff = run(Command::new("diff").arg("-r").arg(&tree).arg(&back))?;
    ensure!(
        diff.status.success(),
        "sync round trip differs: {}",
        String::from_utf8_lossy(&diff.stdout)
    );
    let diff = run(Command::new("diff")
        .arg("-r")
        .arg(&tree)
        .arg(gw.mnt().join("media/tree")))?;
    ensure!(
        diff.status.success(),
        "the synced tree on the mount differs"
    );
    // A second sync uploads nothing (sizes and mtimes agree).
    let again = env.aws_ok(&["s3", "sync", tree.to_str().unwrap(), "s3://media/tree"])?;
    ensure!(again.trim().is_empty(), "second sync re-uploaded: {again}");

    // Uploads are staged on the replica set their key hashes to: no linkto files, no staging
    // names, and each of the 8 objects on both bricks of its set.
    let mut stack: Vec<std::path::PathBuf> =
        gw.brick_dirs().iter().map(|b| b.join("media")).collect();
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let e = e?;
            let md = fs::symlink_metadata(e.path())?;
            let name = e.file_name().to_string_lossy().into_owned();
            ensure!(
                !name.contains(".s3tmp-"),
                "a staging file was left behind: {}\n{}",
                e.path().display(),
                gw.logs()
            );
            if md.is_dir() {
                stack.push(e.path());
            } else {
                ensure!(
                    !is_linkto(&e.path(), &md),
                    "an S3 upload left a linkto file: {}",
                    e.path().display()
                );
                files += 1;
            }
        }
    }
    ensure!(
        files == 8 * gw.replica(),
        "8 objects in {} copies on the bricks, found {files} files",
        gw.replica()
    );

    let ls = env.aws_ok(&["s3", "ls", "s3://media/tree/"])?;
    ensure!(ls.contains("PRE b/") && ls.contains("a.txt"), "ls: {ls}");
    let ls = env.aws_ok(&["s3", "ls", "--recursive", "s3://media"])?;
    ensure!(
        ls.lines().count() == 8,
        "recursive ls lists 8 objects:\n{ls}"
    );

    env.aws_ok(&["s3", "rm", "--recursive", "s3://media/tree"])?;
    ensure!(
        gone(&gw.mnt().join("media/tree")),
        "rm --recursive leaves directories behind"
    );
    let out = run(&mut env.aws(&["s3", "rb", "s3://media"]))?;
    ensure!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("BucketNotEmpty"),
        "rb of a non-empty bucket must fail with BucketNotEmpty"
    );
    env.aws_ok(&["s3", "rb", "--force", "s3://media"])?;
    ensure!(
        gone(&gw.mnt().join("media")),
        "rb --force removes the bucket directory"
    );

    // A deleted key stops working at once.
    gw.gwctl_ok(&["s3", "key", "delete", "cli"])?;
    let out = run(&mut env.aws(&["s3", "ls"]))?;
    ensure!(
        String::from_utf8_lossy(&out.stderr).contains("InvalidAccessKeyId"),
        "a deleted key is refused with InvalidAccessKeyId"
    );
    let keys = gw.gwctl_ok(&["s3", "key", "list", "--json"])?;
    ensure!(
        !keys.contains("secret"),
        "key listings never show secrets: {keys}"
    );
    Ok(())
}

fn curl(args: &[&str]) -> Result<(u16, String)> {
    let out = run(Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(args))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').context("curl printed no status")?;
    Ok((code.trim().parse()?, body.to_string()))
}

/// A small object is made whole in one create on each brick of its replica set, with its
/// ETag and metadata (and its times chosen by the gateway, so the ETag's stamp is right from
/// the start): every copy holds the same bytes and the same stamped ETag, GET and HEAD answer
/// that ETag, and a PUT costs far fewer brick requests than a create, a write and a setxattr
/// with a transaction each (36 per PUT before; 16 now).
#[test]
fn a_small_put_is_one_create_per_brick_and_lands_whole_on_every_copy() -> Result<()> {
    need("aws");
    need("getfattr");
    let gw = Gateway::up()?;
    let env = s3_env(&gw, "small")?;
    env.aws_ok(&["s3api", "create-bucket", "--bucket", "small"])?;
    const COUNT: usize = 40;
    let script = |mode: &str| {
        let mut c = env.python(
            gw.mnt(),
            "small_puts.py",
            &[mode, "small", &COUNT.to_string()],
        );
        run_ok(&mut c).with_context(|| format!("small_puts.py {mode}"))
    };
    // The bucket's first object pays for learning the bucket; the count starts after it.
    env.aws_ok(&["s3api", "put-object", "--bucket", "small", "--key", "first"])?;
    let before = gw.brick_requests()?;
    script("put")?;
    let per_put = (gw.brick_requests()? - before) / (COUNT + 2) as f64;
    ensure!(per_put < 28.0, "{per_put:.1} brick requests per small PUT");

    let back: serde_json::Value = serde_json::from_str(script("check")?.trim())?;
    let objects = back.as_object().context("check's answer")?;
    ensure!(
        objects.len() == COUNT + 2,
        "{} objects checked",
        objects.len()
    );
    for (key, o) in objects {
        ensure!(o["same"] == true, "{key}: GET returned other bytes");
        ensure!(
            o["get_etag"] == o["md5"] && o["head_etag"] == o["md5"],
            "{key}: ETags {o}"
        );
    }
    for i in [0, COUNT / 2, COUNT - 1] {
        let key = format!("small/{i:03}");
        let copies: Vec<_> = gw
            .brick_dirs()
            .iter()
            .map(|b| b.join("small").join(&key))
            .filter(|p| p.exists())
            .collect();
        ensure!(
            copies.len() == gw.replica(),
            "{key}: {} copies on the bricks",
            copies.len()
        );
        let md5 = objects[&key]["md5"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let st = fs::metadata(gw.mnt().join("small").join(&key))?;
        use std::os::unix::fs::MetadataExt;
        let want = format!("{md5}|4096|{}.{}", st.mtime(), st.mtime_nsec());
        for c in &copies {
            ensure!(md5_hex(c)? == md5, "{}: other bytes", c.display());
            let etag = String::from_utf8(getfattr_hex(c, "user.s3.etag").unwrap_or_default())?;
            ensure!(
                etag == want,
                "{}: ETag xattr {etag:?}, the file says {want:?}",
                c.display()
            );
        }
    }
    Ok(())
}

#[test]
fn presigned_urls_work_with_curl_and_bad_ones_are_refused() -> Result<()> {
    need("aws");
    need("curl");
    let gw = Gateway::up()?;
    let env = s3_env(&gw, "presign")?;
    env.aws_ok(&["s3", "mb", "s3://share"])?;
    fs::write(gw.mnt().join("share/hello.txt"), b"hello from fuse\n")?;

    let url = env.aws_ok(&[
        "s3",
        "presign",
        "s3://share/hello.txt",
        "--expires-in",
        "300",
    ])?;
    let url = url.trim();
    let (code, body) = curl(&[url])?;
    ensure!(
        code == 200 && body == "hello from fuse\n",
        "presigned GET: {code} {body}"
    );

    ensure!(
        url.contains("X-Amz-Signature="),
        "a SigV4 presigned URL: {url}"
    );
    // The same URL with the last hex digit of its signature changed.
    let at = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len() + 63;
    let flipped = if &url[at..at + 1] == "0" { "1" } else { "0" };
    let tampered = format!("{}{flipped}{}", &url[..at], &url[at + 1..]);
    let (code, body) = curl(&[&tampered])?;
    ensure!(
        code == 403
            && body.contains("<Code>SignatureDoesNotMatch</Code>")
            && body.contains("<RequestId>"),
        "a wrong signature: {code} {body}"
    );
    let other_key = url.replace("hello.txt", "other.txt");
    let (code, _) = curl(&[&other_key])?;
    ensure!(
        code == 403,
        "a URL signed for one key does not open another"
    );

    let short = env.aws_ok(&["s3", "presign", "s3://share/hello.txt", "--expires-in", "1"])?;
    std::thread::sleep(Duration::from_millis(2500));
    let (code, body) = curl(&[short.trim()])?;
    ensure!(
        code == 403 && body.contains("<Code>AccessDenied</Code>") && body.contains("expired"),
        "an expired URL: {code} {body}"
    );

    // Presigned PUT, made with boto3 (aws-cli presigns GET only).
    let put = run_ok(&mut env.python(
        gw.mnt(),
        "presign_put.py",
        &["share", "uploaded/by-curl.txt"],
    ))?;
    let (code, body) = curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type:",
        "--data-binary",
        "curl body",
        put.trim(),
    ])?;
    ensure!(code == 200, "presigned PUT: {code} {body}");
    ensure!(fs::read(gw.mnt().join("share/uploaded/by-curl.txt"))? == b"curl body");
    let (code, _) = curl(&[
        "-X",
        "PUT",
        "--data-binary",
        "x",
        &put.trim().replace("by-curl", "elsewhere"),
    ])?;
    ensure!(
        code == 403,
        "a presigned PUT for one key does not write another"
    );
    ensure!(
        !gw.mnt().join("share/uploaded/elsewhere.txt").exists(),
        "…and wrote nothing"
    );

    // Plain unsigned requests are refused.
    let (code, body) = curl(&[&format!("{}/share/hello.txt", env.url)])?;
    ensure!(
        code == 403 && body.contains("AccessDenied"),
        "anonymous GET: {code} {body}"
    );
    let (code, _) = curl(&[
        "-X",
        "PUT",
        "--data-binary",
        "x",
        &format!("{}/share/anon.txt", env.url),
    ])?;
    ensure!(code == 403, "anonymous PUT refused");
    ensure!(
        !gw.mnt().join("share/anon.txt").exists(),
        "…and wrote nothing"
    );
    Ok(())
}

fn rss_kib(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn list_100k_objects_under_one_prefix_in_order_with_bounded_memory() -> Result<()> {
    need("python3");
    let gw = Gateway::up()?;
    let env = s3_env(&gw, "lister")?;
    let n: usize = std::env::var("E2E_S3_LIST_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    // The objects are made through FUSE by several threads: far quicker than 100,000 signed
    // PUTs from Python, and it makes the listing compute (and store) every ETag lazily.
    let dir = gw.mnt().join("many/photos");
    fs::create_dir_all(&dir)?;
    let t = Instant::now();
    let threads = 8;
    std::thread::scope(|s| -> Result<()> {
        let hs: Vec<_> = (0..threads)
            .map(|k| {
                let dir = dir.clone();
                s.spawn(move || -> Result<()> {
                    for i in (k..n).step_by(threads) {
                        fs::write(dir.join(format!("img-{i:06}.jpg")), i.to_string())?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in hs {
            h.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
        }
        Ok(())
    })?;
    eprintln!("{n} files made through FUSE in {:?}", t.elapsed());

    let pid = gw.pid().context("gatewayd pid")?;
    let before = rss_kib(pid).context("gatewayd RSS")?;
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(r) = rss_kib(pid) {
                    peak.fetch_max(r, std::sync::atomic::Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let t = Instant::now();
    let out = run(&mut env.python(gw.mnt(), "list_all.py", &["many", "photos/"]));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.join();
    let out = out?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "listing failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let elapsed = t.elapsed();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "listed in {elapsed:?}: {} ; gatewayd RSS {before} KiB before, peak {peak} KiB",
        text.trim()
    );
    let v: serde_json::Value = serde_json::from_str(text.trim())?;
    ensure!(v["count"] == n, "every object listed once: {v}");
    ensure!(
        v["sorted"] == true && v["unique"] == true,
        "in order, no repeats: {v}"
    );
    ensure!(
        v["pages"].as_u64() == Some(n.div_ceil(1000) as u64),
        "pages of 1000: {v}"
    );
    ensure!(
        v["etags_ok"] == true,
        "every ETag is the MD5 of its content: {v}"
    );
    // 100,000 names are a few MiB; the bound is for the gateway not holding listings or
    // per-object state beyond a page.
    ensure!(
        peak.saturating_sub(before) < 256 * 1024,
        "gatewayd grew by {} MiB while listing",
        peak.saturating_sub(before) / 1024
    );
    Ok(())
}

/// The staging file of a PUT cut short by a `kill -9` of gatewayd: never visible as an object,
/// and removed once a listing passes it after an hour without writes.
#[test]
fn a_put_cut_short_by_a_crash_leaves_nothing_visible_and_is_swept() -> Result<()> {
    need("aws");
    need("curl");
    let mut gw = Gateway::up()?;
    let env = s3_env(&gw, "crash")?;
    env.aws_ok(&["s3", "mb", "s3://crash"])?;
    let url = run_ok(&mut env.python(gw.mnt(), "presign_put.py", &["crash", "big.bin"]))?;
    let work = temp_dir("s3crash");
    let big = work.path().join("big.bin");
    random_file(&big, 8 << 20, 3)?;
    let mut upload = Command::new("curl")
        .args(["-s", "--limit-rate", "256K", "-T"])
        .arg(&big)
        .arg(url.trim())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    // The staging file, on every brick of the replica set its name hashes to.
    let staged = wait_for(Duration::from_secs(20), "the PUT's staging file", || {
        let copies: Vec<std::path::PathBuf> = gw
            .brick_dirs()
            .iter()
            .filter_map(|b| {
                fs::read_dir(b.join("crash"))
                    .ok()?
                    .flatten()
                    .map(|e| e.path())
                    .find(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with(".big.bin.s3tmp-"))
                    })
            })
            .collect();
        (copies.len() == gw.replica()).then_some(copies)
    });
    gw.kill9();
    let _ = upload.kill();
    let _ = upload.wait();
    let staged = staged?;
    gw.start_again()?;
    let env = s3_env(&gw, "crash2")?;
    ensure!(
        !env.aws_ok(&["s3", "ls", "s3://crash/"])?
            .contains("big.bin"),
        "a cut-short PUT is listed"
    );
    ensure!(
        !gw.mnt().join("crash/big.bin").exists(),
        "a cut-short PUT is a file"
    );
    ensure!(
        staged.iter().all(|p| p.exists()),
        "the staging file went before it was stale: {staged:?}"
    );
    // Age it past the hour (every copy), as a crash long ago would have left it.
    let two_hours_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64
        - 2 * 3600;
    for copy in &staged {
        set_brick_mtime(copy, two_hours_ago)?;
    }
    env.aws_ok(&["s3", "ls", "s3://crash/"])?;
    wait_for(
        Duration::from_secs(10),
        "the stale staging file to be swept",
        || staged.iter().all(|p| !p.exists()).then_some(()),
    )
    .map_err(|e| anyhow::anyhow!("{e}\n{}", gw.logs()))?;
    Ok(())
}
