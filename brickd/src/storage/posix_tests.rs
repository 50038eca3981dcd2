use super::posix::*;
use super::xattr;
use bytes::Bytes;
use engine::fop::keys;
use engine::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn brick() -> (tempfile::TempDir, Posix) {
    let d = tempfile::tempdir().unwrap();
    let vid = Gfid::random();
    Posix::prepare_brick(d.path(), &vid).unwrap();
    let p = Posix::new(
        XlatorBase::new("p", "storage/posix", vec![]),
        d.path().to_path_buf(),
        vid,
    );
    (d, p)
}

fn entry(mode: u32) -> NewEntry {
    NewEntry {
        gfid: Gfid::random(),
        mode,
        umask: 0o022,
        ..Default::default()
    }
}

fn handle(root: &Path, g: &Gfid) -> std::path::PathBuf {
    let h = hex::encode(g.0);
    root.join(".glusterfs")
        .join(&h[0..2])
        .join(&h[2..4])
        .join(g.to_string())
}

#[tokio::test]
async fn files_and_dirs_get_gfids_handles_and_gfid2path() {
    let (d, p) = brick();
    let ctx = Ctx::root();
    let de = entry(0o755);
    let (dir, _) = p
        .mkdir(&ctx, &Loc::child(Gfid::ROOT, "sub"), &de)
        .await
        .unwrap();
    assert!(dir.is_dir());
    assert_eq!(dir.mode & 0o777, 0o755);
    let h = handle(d.path(), &de.gfid);
    assert_eq!(
        fs::read_link(&h).unwrap().to_str().unwrap(),
        "../../00/00/00000000-0000-0000-0000-000000000001/sub"
    );
    assert_eq!(
        xattr::get(&d.path().join("sub"), keys::GFID)
            .unwrap()
            .unwrap(),
        de.gfid.0
    );

    let fe = entry(0o644);
    let (fd, ia, _) = p
        .create(&ctx, &Loc::child(de.gfid, "f.txt"), libc::O_RDWR, &fe)
        .await
        .unwrap();
    assert_eq!(ia.gfid, fe.gfid);
    p.write(&ctx, &fd, 0, Bytes::from_static(b"hello"))
        .await
        .unwrap();
    let real = d.path().join("sub/f.txt");
    let fh = handle(d.path(), &fe.gfid);
    assert_eq!(
        fs::metadata(&real).unwrap().ino(),
        fs::metadata(&fh).unwrap().ino()
    );
    let key = gfid2path_key(&de.gfid, "f.txt");
    assert_eq!(
        xattr::get(&real, &key).unwrap().unwrap(),
        format!("{}/f.txt", de.gfid).as_bytes()
    );
    // Nameless lookup by gfid alone, and reading through an anonymous fd.
    let (ia2, _) = p
        .lookup(&ctx, &Loc::gfid(fe.gfid), &Xattrs::new())
        .await
        .unwrap();
    assert_eq!(ia2.size, 5);
    assert_eq!(ia2.nlink, 1);
    let data = p.read(&ctx, &Fd::anonymous(fe.gfid), 0, 100).await.unwrap();
    assert_eq!(&data[..], b"hello");
    // Deep directory resolution through handles.
    let e2 = entry(0o700);
    p.mkdir(&ctx, &Loc::child(de.gfid, "deeper"), &e2)
        .await
        .unwrap();
    let (ia3, _) = p
        .lookup(&ctx, &Loc::gfid(e2.gfid), &Xattrs::new())
        .await
        .unwrap();
    assert!(ia3.is_dir());
    // The create is exclusive.
    assert_eq!(
        p.create(&ctx, &Loc::child(de.gfid, "f.txt"), 0, &entry(0o644))
            .await
            .err(),
        Some(Errno::EEXIST)
    );
}

/// What create, mkdir, unlink and rmdir say of the parent is what a stat of it says after
/// them (md-cache keeps it in place of asking).
#[tokio::test]
async fn entry_fops_return_the_parent_as_it_is_after_them() {
    let (_d, p) = brick();
    use engine::mdata::flags as f;
    let ctx = Ctx::root();
    let stamped = |secs: i64| Ctx {
        stamp: Some(Stamp {
            time: Timespec { sec: secs, nsec: 7 },
            flags: f::ATIME | f::CTIME | f::MTIME | f::PAR_CTIME | f::PAR_MTIME,
        }),
        ..Ctx::root()
    };
    let root = Loc::gfid(Gfid::ROOT);
    let before = p.stat(&ctx, &root).await.unwrap();
    let de = entry(0o755);
    let (_, after) = p
        .mkdir(&stamped(2_000_000_000), &Loc::child(Gfid::ROOT, "d"), &de)
        .await
        .unwrap();
    let after = after.expect("mkdir says the parent");
    assert_eq!(after, p.stat(&ctx, &root).await.unwrap());
    assert_eq!(after.nlink, before.nlink + 1);

    let dir = Loc::gfid(de.gfid);
    let (_, _, after) = p
        .create(
            &stamped(2_000_000_001),
            &Loc::child(de.gfid, "f"),
            libc::O_RDWR,
            &entry(0o644),
        )
        .await
        .unwrap();
    let after = after.expect("create says the parent");
    assert_eq!(after, p.stat(&ctx, &dir).await.unwrap());
    assert_eq!(after.gfid, de.gfid);

    let (_, after) = p
        .symlink(
            &stamped(2_000_000_001),
            &Loc::child(de.gfid, "s"),
            "f",
            &entry(0o777),
        )
        .await
        .unwrap();
    assert_eq!(
        after.expect("symlink says the parent"),
        p.stat(&ctx, &dir).await.unwrap()
    );
    p.unlink(&ctx, &Loc::child(de.gfid, "s")).await.unwrap();

    let after = p
        .unlink(&stamped(2_000_000_002), &Loc::child(de.gfid, "f"))
        .await
        .unwrap()
        .expect("unlink says the parent");
    assert_eq!(after, p.stat(&ctx, &dir).await.unwrap());
    assert_eq!(after.mtime.sec, 2_000_000_002);

    let after = p
        .rmdir(&stamped(2_000_000_003), &Loc::child(Gfid::ROOT, "d"))
        .await
        .unwrap()
        .expect("rmdir says the parent");
    assert_eq!(after, p.stat(&ctx, &root).await.unwrap());
    assert_eq!(after.nlink, before.nlink);
    assert_eq!(after.mtime.sec, 2_000_000_003);
}

/// A DHT linkto file's entry: the sticky-bit mode and the xattr naming the data's subvolume.
fn linkto_entry() -> NewEntry {
    let mut e = entry(0o1000);
    e.xattrs.insert(
        keys::DHT_LINKTO.to_string(),
        Bytes::from_static(b"vol-replicate-1\0"),
    );
    e
}

/// Distribute's unlink by a remembered name refuses a linkto file there: after a rebalance
/// elsewhere moved the data, removing the pointer alone would leave the data behind.
#[tokio::test]
async fn an_unlink_of_data_refuses_a_linkto_file() {
    let (_d, p) = brick();
    let ctx = Ctx::root();
    let linkto = linkto_entry();
    let plain = entry(0o644);
    for (name, e) in [("l", &linkto), ("f", &plain)] {
        p.create(&ctx, &Loc::child(Gfid::ROOT, name), libc::O_RDWR, e)
            .await
            .unwrap();
    }
    let only_data = Ctx {
        refuse_linkto: true,
        ..Ctx::root()
    };
    let l = Loc::child(Gfid::ROOT, "l");
    assert_eq!(p.unlink(&only_data, &l).await, Err(Errno::ESTALE));
    assert!(
        p.lookup(&ctx, &l, &Xattrs::new()).await.is_ok(),
        "left alone"
    );
    p.unlink(&only_data, &Loc::child(Gfid::ROOT, "f"))
        .await
        .unwrap();
    p.unlink(&ctx, &l).await.unwrap();
}

/// Distribute renames by remembered names with `refuse_linkto`: the brick refuses (ESTALE)
/// a source that is another inode now or a linkto, and a target that is a linkto, and
/// renames the data file over a plain file or a free name.
#[tokio::test]
async fn a_rename_by_remembered_names_refuses_linkto_files_and_other_inodes() {
    let (_d, p) = brick();
    let ctx = Ctx::root();
    let linkto = linkto_entry();
    let (data, other) = (entry(0o644), entry(0o644));
    for (name, e) in [("l", &linkto), ("f", &data), ("g", &other)] {
        p.create(&ctx, &Loc::child(Gfid::ROOT, name), libc::O_RDWR, e)
            .await
            .unwrap();
    }
    let checked = Ctx {
        refuse_linkto: true,
        ..Ctx::root()
    };
    let named = |n: &str, g: Gfid| Loc::child(Gfid::ROOT, n).with_gfid(g);
    let to = |n: &str| Loc::child(Gfid::ROOT, n);
    for (from, dst, what) in [
        (named("f", data.gfid), to("l"), "over a linkto"),
        (named("l", linkto.gfid), to("new"), "a linkto"),
        (
            named("f", other.gfid),
            to("new"),
            "another inode than meant",
        ),
    ] {
        assert_eq!(
            p.rename(&checked, &from, &dst).await.err(),
            Some(Errno::ESTALE),
            "{what}"
        );
    }
    for n in ["l", "f", "g"] {
        assert!(
            p.lookup(&ctx, &to(n), &Xattrs::new()).await.is_ok(),
            "{n} left alone"
        );
    }
    let (ia, _, _) = p
        .rename(&checked, &named("f", data.gfid), &to("g"))
        .await
        .unwrap();
    assert_eq!(ia.gfid, data.gfid);
    let (ia, _) = p.lookup(&ctx, &to("g"), &Xattrs::new()).await.unwrap();
    assert_eq!(ia.gfid, data.gfid, "the data file replaced the plain one");
}

#[tokio::test]
async fn unlink_rename_and_link_keep_handles_right() {
    let (d, p) = brick();
    let ctx = Ctx::root();
    let a = entry(0o644);
    let (fd, _, _) = p
        .create(&ctx, &Loc::child(Gfid::ROOT, "a"), libc::O_RDWR, &a)
        .await
        .unwrap();
    p.write(&ctx, &fd, 0, Bytes::from_static(b"still here"))
        .await
        .unwrap();
    let l = p
        .link(&ctx, &Loc::gfid(a.gfid), &Loc::child(Gfid::ROOT, "a2"))
        .await
        .unwrap();
    assert_eq!(l.nlink, 2);
    p.unlink(&ctx, &Loc::child(Gfid::ROOT, "a")).await.unwrap();
    assert!(
        handle(d.path(), &a.gfid).exists(),
        "a second name keeps the handle"
    );
    p.unlink(&ctx, &Loc::child(Gfid::ROOT, "a2")).await.unwrap();
    assert!(
        !handle(d.path(), &a.gfid).exists(),
        "the last name takes the handle"
    );
    // The open fd still reads.
    assert_eq!(&p.read(&ctx, &fd, 0, 100).await.unwrap()[..], b"still here");

    let b = entry(0o644);
    let c = entry(0o644);
    p.create(&ctx, &Loc::child(Gfid::ROOT, "b"), libc::O_RDWR, &b)
        .await
        .unwrap();
    p.create(&ctx, &Loc::child(Gfid::ROOT, "c"), libc::O_RDWR, &c)
        .await
        .unwrap();
    let (moved, from, to) = p
        .rename(
            &ctx,
            &Loc::child(Gfid::ROOT, "b"),
            &Loc::child(Gfid::ROOT, "c"),
        )
        .await
        .unwrap();
    assert_eq!(moved.gfid, b.gfid);
    let root = p.stat(&ctx, &Loc::gfid(Gfid::ROOT)).await.unwrap();
    assert_eq!(
        (from, to),
        (Some(root.clone()), Some(root)),
        "the parent after"
    );
    assert!(
        !handle(d.path(), &c.gfid).exists(),
        "the replaced inode's handle goes"
    );
    let cpath = d.path().join("c");
    assert!(
        xattr::get(&cpath, &gfid2path_key(&Gfid::ROOT, "c"))
            .unwrap()
            .is_some()
    );
    assert!(
        xattr::get(&cpath, &gfid2path_key(&Gfid::ROOT, "b"))
            .unwrap()
            .is_none()
    );

    let dd = entry(0o755);
    p.mkdir(&ctx, &Loc::child(Gfid::ROOT, "d1"), &dd)
        .await
        .unwrap();
    let sub = entry(0o755);
    p.mkdir(&ctx, &Loc::child(dd.gfid, "s"), &sub)
        .await
        .unwrap();
    p.rename(
        &ctx,
        &Loc::child(Gfid::ROOT, "d1"),
        &Loc::child(Gfid::ROOT, "d2"),
    )
    .await
    .unwrap();
    let (ia, _) = p
        .lookup(&ctx, &Loc::gfid(sub.gfid), &Xattrs::new())
        .await
        .unwrap();
    assert!(ia.is_dir(), "children resolve after their parent moved");
    p.rmdir(&ctx, &Loc::child(dd.gfid, "s")).await.unwrap();
    assert!(!handle(d.path(), &sub.gfid).exists());
}

/// Removing what was listed does not move the cookies of what was not (as `rm -rf` over NFS
/// does: a page is read, its entries unlinked, the next page asked for with a fresh fd).
#[tokio::test]
async fn readdir_cookies_survive_removal_of_listed_entries() {
    let (_d, p) = brick();
    let ctx = Ctx::root();
    for i in 0..200 {
        p.create(
            &ctx,
            &Loc::child(Gfid::ROOT, format!("r{i:03}")),
            libc::O_RDWR,
            &entry(0o644),
        )
        .await
        .unwrap();
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut off = 0;
    loop {
        let fd = p.opendir(&ctx, &Loc::root()).await.unwrap();
        let batch = p.readdir(&ctx, &fd, off, 600).await.unwrap();
        if batch.is_empty() {
            break;
        }
        off = batch.last().unwrap().d_off;
        for e in batch {
            if e.name.starts_with('r') {
                p.unlink(&ctx, &Loc::child(Gfid::ROOT, e.name.as_str()))
                    .await
                    .unwrap();
                assert!(seen.insert(e.name), "an entry was listed twice");
            }
        }
    }
    assert_eq!(seen.len(), 200, "entries were skipped");
}

#[tokio::test]
async fn readdir_cookies_resume_and_hide_glusterfs() {
    let (_d, p) = brick();
    let ctx = Ctx::root();
    for i in 0..50 {
        p.create(
            &ctx,
            &Loc::child(Gfid::ROOT, format!("f{i:02}")),
            libc::O_RDWR,
            &entry(0o644),
        )
        .await
        .unwrap();
    }
    let fd = p.opendir(&ctx, &Loc::root()).await.unwrap();
    let mut names = Vec::new();
    let mut off = 0;
    loop {
        let batch = p
            .readdirp(&ctx, &fd, off, 300, &Xattrs::new())
            .await
            .unwrap();
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            assert!(e.iatt.is_some());
            names.push(e.name.clone());
        }
        off = batch.last().unwrap().d_off;
        // A fresh fd resumes at the same cookie.
        let again = p
            .readdir(
                &ctx,
                &p.opendir(&ctx, &Loc::root()).await.unwrap(),
                off,
                100,
            )
            .await
            .unwrap();
        if let Some(first) = again.first() {
            assert!(
                !names.contains(&first.name),
                "a fresh fd resumed at {} already listed",
                first.name
            );
        }
    }
    let files: Vec<_> = names.iter().filter(|n| n.starts_with('f')).collect();
    assert_eq!(files.len(), 50);
    assert!(!names.iter().any(|n| n == ".glusterfs"));
}

#[tokio::test]
async fn a_brick_of_another_volume_is_refused() {
    let d = tempfile::tempdir().unwrap();
    Posix::prepare_brick(d.path(), &Gfid::random()).unwrap();
    let err = Posix::prepare_brick(d.path(), &Gfid::random()).unwrap_err();
    assert!(err.contains("belongs to volume"), "{err}");
}

#[tokio::test]
async fn xattrop_adds_big_endian_counters() {
    let (_d, p) = brick();
    let ctx = Ctx::root();
    let e = entry(0o644);
    p.create(&ctx, &Loc::child(Gfid::ROOT, "x"), libc::O_RDWR, &e)
        .await
        .unwrap();
    let k = "trusted.afr.gv-client-1".to_string();
    let one: Vec<u8> = [1u32, 0, 0].iter().flat_map(|v| v.to_be_bytes()).collect();
    let loc = Loc::child(Gfid::ROOT, "x").with_gfid(e.gfid);
    for _ in 0..3 {
        p.xattrop(
            &ctx,
            &loc,
            XattropOp::AddArray,
            &Xattrs::from([(k.clone(), Bytes::from(one.clone()))]),
        )
        .await
        .unwrap();
    }
    let minus: Vec<u8> = [u32::MAX, 0, 0]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let out = p
        .xattrop(
            &ctx,
            &loc,
            XattropOp::AddArray,
            &Xattrs::from([(k.clone(), Bytes::from(minus))]),
        )
        .await
        .unwrap();
    assert_eq!(&out[&k][..4], &2u32.to_be_bytes());
    assert_eq!(
        p.setxattr(
            &ctx,
            &loc,
            &Xattrs::from([(keys::GFID.to_string(), Bytes::new())]),
            0
        )
        .await,
        Err(Errno::EPERM)
    );
}

#[tokio::test]
async fn sparse_files_stay_sparse_and_append_appends() {
    let (_d, p) = brick();
    let ctx = Ctx::root();
    let e = entry(0o644);
    let (fd, _, _) = p
        .create(&ctx, &Loc::child(Gfid::ROOT, "s"), libc::O_RDWR, &e)
        .await
        .unwrap();
    let ia = p
        .write(&ctx, &fd, 1 << 30, Bytes::from_static(b"end"))
        .await
        .unwrap();
    assert_eq!(ia.size, (1 << 30) + 3);
    assert!(
        ia.blocks < 64,
        "a hole must not be allocated: {} blocks",
        ia.blocks
    );
    let afd = p
        .open(&ctx, &Loc::gfid(e.gfid), libc::O_WRONLY | libc::O_APPEND)
        .await
        .unwrap();
    let ia = p
        .write(&ctx, &afd, 0, Bytes::from_static(b"++"))
        .await
        .unwrap();
    assert_eq!(ia.size, (1 << 30) + 5);
}

#[tokio::test]
async fn a_lookup_and_a_listing_return_just_the_wanted_xattrs_that_exist() {
    let (_d, p) = brick();
    let ctx = Ctx::root();
    let e = NewEntry {
        xattrs: Xattrs::from([
            ("user.etag".to_string(), Bytes::from_static(b"e")),
            ("trusted.afr.dirty".to_string(), Bytes::from_static(b"d")),
            ("user.meta.a".to_string(), Bytes::from_static(b"1")),
            ("user.meta.b".to_string(), Bytes::from_static(b"2")),
        ]),
        ..entry(0o644)
    };
    p.create(&ctx, &Loc::child(Gfid::ROOT, "f"), libc::O_RDWR, &e)
        .await
        .unwrap();
    let want = |names: &[&str]| -> Xattrs {
        names
            .iter()
            .map(|n| (n.to_string(), Bytes::new()))
            .collect()
    };
    let expect = Xattrs::from([
        ("user.etag".to_string(), Bytes::from_static(b"e")),
        ("trusted.afr.dirty".to_string(), Bytes::from_static(b"d")),
        ("user.meta.a".to_string(), Bytes::from_static(b"1")),
        ("user.meta.b".to_string(), Bytes::from_static(b"2")),
    ]);
    // A prefix, and many names (the inode's names are listed first).
    for names in [
        &["user.etag", "trusted.afr.dirty", "user.meta.*"][..],
        &[
            "user.etag",
            "trusted.afr.dirty",
            "security.selinux",
            "system.posix_acl_access",
            "security.capability",
            "user.meta.a",
            "user.meta.b",
            "user.none",
        ][..],
    ] {
        let (_, x) = p
            .lookup(&ctx, &Loc::child(Gfid::ROOT, "f"), &want(names))
            .await
            .unwrap();
        assert_eq!(x, expect, "{names:?}");
        let fd = p.opendir(&ctx, &Loc::root()).await.unwrap();
        let listed = p.readdirp(&ctx, &fd, 0, 65536, &want(names)).await.unwrap();
        let f = listed.iter().find(|d| d.name == "f").expect("listed");
        assert_eq!(f.xattrs, expect, "{names:?}");
    }
    let (_, x) = p
        .lookup(
            &ctx,
            &Loc::child(Gfid::ROOT, "f"),
            &want(&["user.etag", "user.none"]),
        )
        .await
        .unwrap();
    assert_eq!(
        x,
        Xattrs::from([("user.etag".to_string(), Bytes::from_static(b"e"))])
    );
}
