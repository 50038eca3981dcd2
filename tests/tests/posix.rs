//! POSIX semantics on the gateway's FUSE mount of the 2 x 2 distributed-replicate volume: rename
//! over an existing file, unlink of an open file, hard links, symlinks, chmod/chown/utimes,
//! truncate, sparse files, O_APPEND, error codes, large directories — and a 2 GiB file's checksum.
//!
//! Names are chosen with this crate's own DHT hash so that the interesting cases (a rename or a
//! link whose new name hashes to the other replica set) are really exercised.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use e2e::*;

fn errno_of(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

/// Names `p<i>` in directory `rel` that hash to replica set `a` and to replica set `b` (DHT
/// subvolumes: b1,b2 is set 0 and b3,b4 set 1).
fn pair_on(
    bricks: &[PathBuf],
    replica: usize,
    rel: &str,
    prefix: &str,
    a: usize,
    b: usize,
) -> (String, String) {
    let on = |set, p: &str| {
        names_on_set(
            bricks,
            replica,
            Path::new(rel),
            set,
            &format!("{prefix}{p}"),
            1,
        )
        .unwrap()
    };
    (on(a, "a").remove(0), on(b, "b").remove(0))
}

fn utimens(p: &Path, atime: (i64, i64), mtime: (i64, i64)) -> Result<()> {
    let c = CString::new(p.as_os_str().as_bytes())?;
    let ts = [
        libc::timespec {
            tv_sec: atime.0,
            tv_nsec: atime.1,
        },
        libc::timespec {
            tv_sec: mtime.0,
            tv_nsec: mtime.1,
        },
    ];
    // SAFETY: valid path and two timespecs.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), ts.as_ptr(), 0) };
    ensure!(r == 0, "utimensat: {}", std::io::Error::last_os_error());
    Ok(())
}

fn lchown(p: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))
        .with_context(|| format!("lchown {}", p.display()))
}

#[test]
fn posix_semantics_on_the_fuse_mount() {
    let gw = Gateway::up().unwrap();
    let m = gw.mnt().to_path_buf();
    let bricks = gw.brick_dirs();
    let replica = gw.replica();
    let mut c = Checks::new();

    c.check(
        "rename over an existing file (same replica set and across sets)",
        || {
            for (i, (a, b)) in [
                pair_on(&bricks, replica, "", "rs", 0, 0),
                pair_on(&bricks, replica, "", "rx", 0, 1),
            ]
            .into_iter()
            .enumerate()
            {
                fs::write(m.join(&a), format!("old {i}"))?;
                fs::write(m.join(&b), format!("new {i}"))?;
                // A reader holding the old file keeps seeing it after it is replaced.
                let held = File::open(m.join(&a))?;
                fs::rename(m.join(&b), m.join(&a))?;
                ensure!(
                    fs::read_to_string(m.join(&a))? == format!("new {i}"),
                    "target content"
                );
                ensure!(
                    errno_of(fs::metadata(m.join(&b))) == Some(libc::ENOENT),
                    "source still there"
                );
                let mut s = String::new();
                (&held).read_to_string(&mut s)?;
                ensure!(
                    s == format!("old {i}"),
                    "open fd of the replaced file reads {s:?}"
                );
                let names: Vec<_> = fs::read_dir(&m)?.flatten().map(|e| e.file_name()).collect();
                ensure!(
                    names.iter().filter(|n| **n == *a.as_str()).count() == 1,
                    "readdir lists {a} {} times",
                    names.iter().filter(|n| **n == *a.as_str()).count()
                );
            }
            Ok(())
        },
    );

    c.check("rename of files and directories across directories", || {
        fs::create_dir_all(m.join("ra/sub"))?;
        fs::create_dir_all(m.join("rb"))?;
        fs::write(m.join("ra/sub/f"), b"moving")?;
        fs::rename(m.join("ra/sub/f"), m.join("rb/g"))?;
        ensure!(fs::read(m.join("rb/g"))? == b"moving");
        fs::rename(m.join("ra/sub"), m.join("rb/sub2"))?;
        ensure!(fs::metadata(m.join("rb/sub2"))?.is_dir());
        ensure!(errno_of(fs::metadata(m.join("ra/sub"))) == Some(libc::ENOENT));
        fs::write(m.join("rb/sub2/inner"), b"x")?;
        ensure!(fs::read(m.join("rb/sub2/inner"))? == b"x");
        // rename(2) onto a non-empty directory fails.
        fs::create_dir_all(m.join("rb/full"))?;
        fs::write(m.join("rb/full/x"), b"x")?;
        let e = errno_of(fs::rename(m.join("rb/sub2"), m.join("rb/full")));
        ensure!(
            matches!(e, Some(libc::ENOTEMPTY) | Some(libc::EEXIST)),
            "rename onto a non-empty dir gave {e:?}"
        );
        Ok(())
    });

    c.check("unlink of an open file", || {
        let p = m.join("unlinked-open");
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)?;
        f.write_all(b"still readable")?;
        fs::remove_file(&p)?;
        ensure!(
            errno_of(fs::metadata(&p)) == Some(libc::ENOENT),
            "name still there"
        );
        let mut s = String::new();
        f.seek(SeekFrom::Start(0))?;
        f.read_to_string(&mut s)?;
        ensure!(s == "still readable", "read after unlink: {s:?}");
        f.write_all(b" and writable")?;
        f.sync_all()?;
        let mut all = vec![0u8; 27];
        f.read_exact_at(&mut all, 0)?;
        ensure!(
            all == b"still readable and writable",
            "{:?}",
            String::from_utf8_lossy(&all)
        );
        drop(f);
        for b in &bricks {
            ensure!(
                !b.join("unlinked-open").exists(),
                "name left on {}",
                b.display()
            );
        }
        Ok(())
    });

    c.check("hard links (same and other replica set, other dir)", || {
        let (a, b) = pair_on(&bricks, replica, "", "hl", 0, 1);
        fs::create_dir_all(m.join("hl-dir"))?;
        fs::write(m.join(&a), b"linked")?;
        fs::hard_link(m.join(&a), m.join(&b))?;
        fs::hard_link(m.join(&a), m.join("hl-dir/third"))?;
        let (ma, mb) = (fs::metadata(m.join(&a))?, fs::metadata(m.join(&b))?);
        ensure!(
            ma.ino() == mb.ino(),
            "inode numbers differ: {} {}",
            ma.ino(),
            mb.ino()
        );
        ensure!(
            ma.nlink() == 3 && mb.nlink() == 3,
            "nlink {} {}",
            ma.nlink(),
            mb.nlink()
        );
        OpenOptions::new()
            .append(true)
            .open(m.join(&b))?
            .write_all(b" both")?;
        ensure!(
            fs::read(m.join(&a))? == b"linked both",
            "write through one name not seen"
        );
        ensure!(fs::read(m.join("hl-dir/third"))? == b"linked both");
        fs::remove_file(m.join(&a))?;
        ensure!(
            fs::read(m.join(&b))? == b"linked both",
            "data lost with one name"
        );
        ensure!(fs::metadata(m.join(&b))?.nlink() == 2, "nlink after unlink");
        // Many names for one file: some bricks then hold two linkto names of the same gfid, which
        // GlusterFS stores as hard links of one linkto inode.
        fs::create_dir_all(m.join("hl-many"))?;
        for i in 0..16 {
            let x = m.join(format!("hl-many/x{i}"));
            fs::write(&x, b"d")?;
            fs::hard_link(&x, m.join(format!("hl-many/y{i}")))
                .with_context(|| format!("link x{i} y{i}"))?;
            fs::hard_link(&x, m.join(format!("hl-dir/z{i}")))
                .with_context(|| format!("link x{i} hl-dir/z{i}"))?;
            ensure!(
                fs::metadata(&x)?.nlink() == 3,
                "x{i} nlink {}",
                fs::metadata(&x)?.nlink()
            );
        }
        let e = errno_of(fs::hard_link(m.join("hl-dir"), m.join("hl-dir-link")));
        ensure!(e == Some(libc::EPERM), "link of a directory gave {e:?}");
        Ok(())
    });

    c.check("symlinks", || {
        fs::create_dir_all(m.join("sl/d"))?;
        fs::write(m.join("sl/target"), b"via link")?;
        std::os::unix::fs::symlink("target", m.join("sl/rel"))?;
        std::os::unix::fs::symlink("../target", m.join("sl/d/up"))?;
        std::os::unix::fs::symlink("d", m.join("sl/dirlink"))?;
        std::os::unix::fs::symlink("nowhere/at/all", m.join("sl/dangling"))?;
        let long = "x/".repeat(1000) + "end";
        std::os::unix::fs::symlink(&long, m.join("sl/long"))?;
        ensure!(fs::read_link(m.join("sl/rel"))? == Path::new("target"));
        ensure!(
            fs::read_link(m.join("sl/long"))? == Path::new(&long),
            "long target"
        );
        ensure!(
            fs::symlink_metadata(m.join("sl/rel"))?
                .file_type()
                .is_symlink()
        );
        ensure!(fs::read(m.join("sl/rel"))? == b"via link");
        ensure!(fs::read(m.join("sl/d/up"))? == b"via link");
        ensure!(fs::metadata(m.join("sl/dirlink"))?.is_dir());
        ensure!(errno_of(fs::read(m.join("sl/dangling"))) == Some(libc::ENOENT));
        fs::rename(m.join("sl/rel"), m.join("sl/rel2"))?;
        ensure!(fs::read_link(m.join("sl/rel2"))? == Path::new("target"));
        fs::remove_file(m.join("sl/rel2"))?;
        ensure!(
            fs::read(m.join("sl/target"))? == b"via link",
            "unlinking a symlink hurt its target"
        );
        Ok(())
    });

    c.check("chmod, chown, utimes (files, dirs, symlinks)", || {
        let f = m.join("attrs");
        fs::write(&f, b"a")?;
        for mode in [0o600, 0o4755, 0o1777, 0o000, 0o644] {
            fs::set_permissions(&f, fs::Permissions::from_mode(mode))?;
            let got = fs::metadata(&f)?.permissions().mode() & 0o7777;
            ensure!(got == mode, "chmod {mode:o} -> {got:o}");
        }
        lchown(&f, 1234, 5678)?;
        let md = fs::metadata(&f)?;
        ensure!(
            md.uid() == 1234 && md.gid() == 5678,
            "chown -> {}:{}",
            md.uid(),
            md.gid()
        );
        utimens(
            &f,
            (1_000_000_000, 123_000_000),
            (1_200_000_000, 456_000_000),
        )?;
        let md = fs::metadata(&f)?;
        ensure!(
            md.mtime() == 1_200_000_000 && md.atime() == 1_000_000_000,
            "times {} {}",
            md.atime(),
            md.mtime()
        );
        ensure!(
            md.mtime_nsec() == 456_000_000,
            "mtime nsec {}",
            md.mtime_nsec()
        );
        fs::create_dir(m.join("attrdir"))?;
        fs::set_permissions(m.join("attrdir"), fs::Permissions::from_mode(0o2750))?;
        lchown(&m.join("attrdir"), 42, 43)?;
        utimens(&m.join("attrdir"), (5, 0), (7, 0))?;
        let md = fs::metadata(m.join("attrdir"))?;
        ensure!(
            md.permissions().mode() & 0o7777 == 0o2750,
            "dir mode {:o}",
            md.permissions().mode()
        );
        ensure!(
            md.uid() == 42 && md.gid() == 43 && md.mtime() == 7,
            "dir owner/mtime"
        );
        // Directory metadata must be the same on every brick (DHT sets it everywhere).
        for b in &bricks {
            let bm = fs::metadata(b.join("attrdir"))?;
            ensure!(
                bm.permissions().mode() & 0o7777 == 0o2750 && bm.uid() == 42,
                "{} differs",
                b.display()
            );
        }
        std::os::unix::fs::symlink("attrs", m.join("attrlink"))?;
        lchown(&m.join("attrlink"), 7, 8)?;
        let lm = fs::symlink_metadata(m.join("attrlink"))?;
        ensure!(
            lm.uid() == 7 && lm.gid() == 8,
            "lchown of symlink -> {}:{}",
            lm.uid(),
            lm.gid()
        );
        ensure!(fs::metadata(&f)?.uid() == 1234, "lchown followed the link");
        Ok(())
    });

    c.check("truncate (shrink, grow, ftruncate, O_TRUNC)", || {
        let p = m.join("trunc");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(&p, &data)?;
        let f = OpenOptions::new().write(true).open(&p)?;
        f.set_len(1000)?;
        drop(f);
        ensure!(fs::metadata(&p)?.len() == 1000);
        ensure!(fs::read(&p)? == data[..1000], "content after shrink");
        OpenOptions::new().write(true).open(&p)?.set_len(1 << 20)?;
        let back = fs::read(&p)?;
        ensure!(
            back.len() == 1 << 20 && back[..1000] == data[..1000],
            "grow"
        );
        ensure!(
            back[1000..].iter().all(|b| *b == 0),
            "grown part is not zeros"
        );
        let c = CString::new(p.as_os_str().as_bytes())?;
        // SAFETY: valid path.
        ensure!(
            unsafe { libc::truncate(c.as_ptr(), 10) } == 0,
            "truncate(2)"
        );
        ensure!(fs::read(&p)? == data[..10]);
        OpenOptions::new().write(true).truncate(true).open(&p)?;
        ensure!(fs::metadata(&p)?.len() == 0, "O_TRUNC");
        Ok(())
    });

    c.check("sparse files", || {
        let p = m.join("sparse");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)?;
        let far = 3u64 << 30;
        f.write_at(b"start", 0)?;
        f.write_at(b"middle", 1 << 30)?;
        f.write_at(b"end", far)?;
        f.sync_all()?;
        let md = fs::metadata(&p)?;
        ensure!(md.len() == far + 3, "size {}", md.len());
        ensure!(
            md.blocks() * 512 < 64 << 20,
            "{} bytes allocated for a sparse file",
            md.blocks() * 512
        );
        let mut buf = vec![0xaau8; 4096];
        f.read_exact_at(&mut buf, 1 << 20)?;
        ensure!(buf.iter().all(|b| *b == 0), "hole reads non-zero");
        let mut b6 = [0u8; 6];
        f.read_exact_at(&mut b6, 1 << 30)?;
        ensure!(&b6 == b"middle");
        let mut b3 = [0u8; 3];
        f.read_exact_at(&mut b3, far)?;
        ensure!(&b3 == b"end");
        // The brick files (one per replica) are sparse too.
        let on: Vec<PathBuf> = bricks
            .iter()
            .map(|b| b.join("sparse"))
            .filter(|x| x.is_file())
            .collect();
        ensure!(on.len() == replica, "sparse is on {on:?}");
        for copy in &on {
            let bm = fs::metadata(copy)?;
            ensure!(
                bm.len() == far + 3 && bm.blocks() * 512 < 64 << 20,
                "brick copy {} not sparse ({} bytes, {} allocated)",
                copy.display(),
                bm.len(),
                bm.blocks() * 512
            );
        }
        Ok(())
    });

    c.check("O_APPEND from two descriptors", || {
        let p = m.join("append");
        fs::write(&p, b"")?;
        let mut a = OpenOptions::new().append(true).open(&p)?;
        let mut b = OpenOptions::new().append(true).open(&p)?;
        let mut want = Vec::new();
        for i in 0..200 {
            let (w, tag) = if i % 2 == 0 {
                (&mut a, "A")
            } else {
                (&mut b, "B")
            };
            let rec = format!("{tag}{i:04}\n");
            w.write_all(rec.as_bytes())?;
            want.extend_from_slice(rec.as_bytes());
        }
        drop((a, b));
        let got = fs::read(&p)?;
        ensure!(
            got == want,
            "appends interleaved wrongly ({} vs {} bytes)",
            got.len(),
            want.len()
        );
        // O_APPEND ignores the file offset.
        let mut f = OpenOptions::new().append(true).open(&p)?;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(b"tail")?;
        ensure!(
            fs::read(&p)?.ends_with(b"tail"),
            "append after seek did not go to the end"
        );
        Ok(())
    });

    c.check("error codes", || {
        fs::write(m.join("exists"), b"x")?;
        let e = errno_of(
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(m.join("exists")),
        );
        ensure!(e == Some(libc::EEXIST), "O_EXCL on existing: {e:?}");
        ensure!(errno_of(File::open(m.join("no-such"))) == Some(libc::ENOENT));
        fs::create_dir(m.join("nonempty"))?;
        fs::write(m.join("nonempty/x"), b"x")?;
        ensure!(errno_of(fs::remove_dir(m.join("nonempty"))) == Some(libc::ENOTEMPTY));
        ensure!(errno_of(fs::create_dir(m.join("nonempty"))) == Some(libc::EEXIST));
        let e = errno_of(fs::remove_file(m.join("nonempty")));
        ensure!(
            matches!(e, Some(libc::EISDIR) | Some(libc::EPERM)),
            "unlink of a dir: {e:?}"
        );
        ensure!(errno_of(fs::remove_dir(m.join("exists"))) == Some(libc::ENOTDIR));
        ensure!(errno_of(fs::read_dir(m.join("exists/x"))) == Some(libc::ENOTDIR));
        fs::remove_file(m.join("nonempty/x"))?;
        fs::remove_dir(m.join("nonempty"))?;
        for b in &bricks {
            ensure!(
                !b.join("nonempty").exists(),
                "rmdir left the dir on {}",
                b.display()
            );
        }
        Ok(())
    });

    c.check(
        "a 3,000-entry directory lists completely (readdir merged over bricks)",
        || {
            let d = m.join("big");
            fs::create_dir(&d)?;
            let n = 3000;
            for i in 0..n {
                File::create(d.join(format!("entry-{i:05}")))?;
            }
            let mut names: Vec<String> = fs::read_dir(&d)?
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<std::io::Result<_>>()?;
            names.sort();
            let want: Vec<String> = (0..n).map(|i| format!("entry-{i:05}")).collect();
            ensure!(names.len() == n, "listed {} of {n}", names.len());
            ensure!(names == want, "names differ");
            let per_brick: Vec<usize> = bricks
                .iter()
                .map(|b| fs::read_dir(b.join("big")).map(|r| r.count()).unwrap_or(0))
                .collect();
            ensure!(
                per_brick.iter().all(|c| *c > n / 10),
                "uneven spread {per_brick:?}"
            );
            // ls -l: readdir + stat of every entry.
            let out = sh(&format!("ls -l '{}' | wc -l", d.display()))?;
            ensure!(out.trim().parse::<usize>()? == n + 1, "ls -l printed {out}");
            for i in 0..n {
                fs::remove_file(d.join(format!("entry-{i:05}")))?;
            }
            fs::remove_dir(&d)?;
            Ok(())
        },
    );

    c.check("user xattrs and statfs", || {
        let f = m.join("xattr-file");
        fs::write(&f, b"x")?;
        sh(&format!("setfattr -n user.color -v blue '{}'", f.display()))?;
        let v = sh(&format!(
            "getfattr --only-values -n user.color '{}'",
            f.display()
        ))?;
        ensure!(v == "blue", "user.color = {v:?}");
        let df = sh(&format!("stat -f -c '%b %a %S' '{}'", m.display()))?;
        let nums: Vec<u64> = df
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        ensure!(nums.len() == 3 && nums[0] > 0 && nums[2] > 0, "statfs {df}");
        Ok(())
    });

    c.check("fsync, fdatasync and many concurrent writers", || {
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let m = m.clone();
                std::thread::spawn(move || -> Result<()> {
                    for i in 0..25 {
                        let p = m.join(format!("conc-{t}-{i}"));
                        let mut f = File::create(&p)?;
                        f.write_all(format!("{t}/{i}").as_bytes())?;
                        f.sync_data()?;
                        f.sync_all()?;
                    }
                    Ok(())
                })
            })
            .collect();
        for t in threads {
            t.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
        }
        for t in 0..8 {
            for i in 0..25 {
                ensure!(fs::read_to_string(m.join(format!("conc-{t}-{i}")))? == format!("{t}/{i}"));
            }
        }
        Ok(())
    });

    c.check("the bricks stay consistent after all of the above", || {
        check_placement_of(&bricks, replica, "vol", true)?;
        for b in &bricks {
            check_gfids(b, true)?;
        }
        Ok(())
    });
    c.finish();
}

/// Posix fadvise(DONTNEED): drop the file's clean pages so the next read goes through FUSE.
fn drop_cache(f: &File) {
    // SAFETY: plain syscall on an fd we own.
    unsafe {
        libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

#[test]
fn two_gib_file_checksum() {
    let gw = Gateway::up().unwrap();
    let p = gw.mnt().join("big.bin");
    let len: u64 = 2 << 30;
    let start = Instant::now();
    let mut f = File::create(&p).unwrap();
    let want = write_stream(&mut f, len, 0x5eed).unwrap();
    f.sync_all().unwrap();
    drop_cache(&f);
    drop(f);
    let wrote = start.elapsed();
    eprintln!(
        "wrote 2 GiB in {wrote:?} ({:.0} MB/s)",
        len as f64 / wrote.as_secs_f64() / 1e6
    );
    assert_eq!(fs::metadata(&p).unwrap().len(), len);

    let f = File::open(&p).unwrap();
    drop_cache(&f);
    drop(f);
    let start = Instant::now();
    let (got, took) = timed(Duration::from_secs(900), {
        let p = p.clone();
        move || sha256_file(&p)
    });
    let got = got.expect("reading 2 GiB back hung").unwrap();
    eprintln!(
        "read 2 GiB in {took:?} ({:.0} MB/s)",
        len as f64 / start.elapsed().as_secs_f64() / 1e6
    );
    assert_eq!(
        got, want,
        "sha256 through the mount differs from what was written"
    );

    // One copy per replica, each with the bytes written.
    let on_brick: Vec<PathBuf> = gw
        .brick_dirs()
        .iter()
        .map(|b| b.join("big.bin"))
        .filter(|x| x.is_file())
        .collect();
    assert_eq!(on_brick.len(), gw.replica(), "big.bin on {on_brick:?}");
    for copy in &on_brick {
        assert_eq!(
            sha256_file(copy).unwrap(),
            want,
            "sha256 of the brick's copy {} differs",
            copy.display()
        );
    }
}
