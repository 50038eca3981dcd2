use super::*;
use parking_lot::Mutex;
use std::collections::HashMap;
use tokio::sync::Notify;

mod parents;

/// A brick in memory: names, inodes and xattrs, counting the fops that reach it. Another
/// client's change is made with `behind_its_back` and told with an upcall, as a brick would.
#[derive(Default)]
struct State {
    names: HashMap<(Gfid, String), Gfid>,
    inodes: HashMap<Gfid, Iatt>,
    xattrs: HashMap<(Gfid, String), Bytes>,
}

struct Mem {
    base: XlatorBase,
    st: Mutex<State>,
    calls: AtomicU64,
    /// When set, stat and create wait for it: a reply held in flight.
    hold: Mutex<Option<Arc<Notify>>>,
}

impl Mem {
    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
    fn called(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
    fn add(&self, parent: Gfid, name: &str, mode: u32) -> Gfid {
        let g = Gfid::random();
        let mut st = self.st.lock();
        st.names.insert((parent, name.into()), g);
        st.inodes.insert(
            g,
            Iatt {
                gfid: g,
                mode,
                nlink: 1,
                ..Default::default()
            },
        );
        g
    }
    fn resolve(&self, loc: &Loc) -> Result<Gfid> {
        let st = self.st.lock();
        match (loc.parent, loc.name.as_deref()) {
            (Some(p), Some(n)) => st.names.get(&(p, n.into())).copied().ok_or(Errno::ENOENT),
            _ => loc.gfid.ok_or(Errno::EINVAL),
        }
    }
    fn iatt(&self, g: Gfid) -> Result<Iatt> {
        self.st.lock().inodes.get(&g).cloned().ok_or(Errno::ESTALE)
    }
    /// A change of `p`'s names: its times move on, its link count by `links`; returned as
    /// a brick returns the parent's attributes.
    fn parent_moved(&self, p: Gfid, links: i32) -> PostParent {
        let mut st = self.st.lock();
        let ia = st.inodes.get_mut(&p)?;
        ia.mtime.sec += 1;
        ia.ctime.sec += 1;
        ia.nlink = ia.nlink.saturating_add_signed(links);
        Some(ia.clone())
    }
    fn behind_its_back(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.st.lock());
    }
}

#[async_trait]
impl Xlator for Mem {
    fn base(&self) -> &XlatorBase {
        &self.base
    }
    async fn lookup(&self, _: &Ctx, loc: &Loc, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        self.called();
        let g = self.resolve(loc)?;
        let prefixes: Vec<&str> = want.keys().filter_map(|k| k.strip_suffix('*')).collect();
        let x = self
            .st
            .lock()
            .xattrs
            .iter()
            .filter(|((h, k), _)| *h == g && prefixes.iter().any(|p| k.starts_with(p)))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        Ok((self.iatt(g)?, x))
    }
    async fn stat(&self, _: &Ctx, loc: &Loc) -> Result<Iatt> {
        self.called();
        let ia = self.iatt(self.resolve(loc)?)?;
        let hold = self.hold.lock().clone();
        if let Some(h) = hold {
            h.notified().await;
        }
        Ok(ia)
    }
    async fn setattr(&self, _: &Ctx, loc: &Loc, attr: &SetAttr) -> Result<Iatt> {
        self.called();
        let g = self.resolve(loc)?;
        let mut st = self.st.lock();
        let ia = st.inodes.get_mut(&g).ok_or(Errno::ESTALE)?;
        if let Some(m) = attr.mode {
            ia.mode = (ia.mode & libc::S_IFMT) | m;
        }
        ia.ctime.sec += 1;
        Ok(ia.clone())
    }
    async fn write(&self, _: &Ctx, fd: &FdRef, offset: u64, data: Bytes) -> Result<Iatt> {
        self.called();
        let mut st = self.st.lock();
        let ia = st.inodes.get_mut(&fd.gfid).ok_or(Errno::ESTALE)?;
        ia.size = ia.size.max(offset + data.len() as u64);
        Ok(ia.clone())
    }
    async fn create(
        &self,
        _: &Ctx,
        loc: &Loc,
        flags: i32,
        entry: &NewEntry,
    ) -> Result<(FdRef, Iatt, PostParent)> {
        self.called();
        let g = self.add(loc.parent()?, loc.name()?, libc::S_IFREG | entry.mode);
        let parent = self.parent_moved(loc.parent()?, 0);
        let hold = self.hold.lock().clone();
        if let Some(h) = hold {
            h.notified().await;
        }
        Ok((Fd::new(g, flags, false), self.iatt(g)?, parent))
    }
    async fn mkdir(&self, _: &Ctx, loc: &Loc, entry: &NewEntry) -> Result<(Iatt, PostParent)> {
        self.called();
        if self.resolve(loc).is_ok() {
            return Err(Errno::EEXIST);
        }
        let g = self.add(loc.parent()?, loc.name()?, libc::S_IFDIR | entry.mode);
        let parent = self.parent_moved(loc.parent()?, 1);
        Ok((self.iatt(g)?, parent))
    }
    async fn rename(
        &self,
        _: &Ctx,
        old: &Loc,
        new: &Loc,
    ) -> Result<(Iatt, PostParent, PostParent)> {
        self.called();
        let ia = {
            let mut st = self.st.lock();
            let g = st
                .names
                .remove(&(old.parent()?, old.name()?.into()))
                .ok_or(Errno::ENOENT)?;
            st.names.insert((new.parent()?, new.name()?.into()), g);
            st.inodes.get(&g).cloned().ok_or(Errno::ESTALE)?
        };
        let from = self.parent_moved(old.parent()?, 0);
        let to = self.parent_moved(new.parent()?, 0);
        Ok((ia, from, to))
    }
    async fn link(&self, _: &Ctx, old: &Loc, new: &Loc) -> Result<Iatt> {
        self.called();
        let g = old.gfid.ok_or(Errno::EINVAL)?;
        let mut st = self.st.lock();
        st.names.insert((new.parent()?, new.name()?.into()), g);
        let ia = st.inodes.get_mut(&g).ok_or(Errno::ESTALE)?;
        ia.nlink += 1;
        Ok(ia.clone())
    }
    async fn unlink(&self, _: &Ctx, loc: &Loc) -> Result<PostParent> {
        self.called();
        {
            let mut st = self.st.lock();
            let g = st
                .names
                .remove(&(loc.parent()?, loc.name()?.into()))
                .ok_or(Errno::ENOENT)?;
            if let Some(ia) = st.inodes.get_mut(&g) {
                ia.nlink -= 1;
            }
        }
        Ok(self.parent_moved(loc.parent()?, 0))
    }
    async fn getxattr(&self, _: &Ctx, loc: &Loc, name: Option<&str>) -> Result<Xattrs> {
        self.called();
        let g = self.resolve(loc)?;
        let name = name.ok_or(Errno::EINVAL)?;
        match self.st.lock().xattrs.get(&(g, name.into())) {
            Some(v) => Ok(Xattrs::from([(name.to_string(), v.clone())])),
            None => Err(Errno::ENODATA),
        }
    }
    async fn readdirp(
        &self,
        _: &Ctx,
        fd: &FdRef,
        offset: u64,
        _: u32,
        want: &Xattrs,
    ) -> Result<Vec<Dirent>> {
        self.called();
        if offset > 0 {
            return Ok(Vec::new());
        }
        let st = self.st.lock();
        Ok(st
            .names
            .iter()
            .filter(|((p, _), _)| *p == fd.gfid)
            .map(|((_, name), g)| Dirent {
                name: name.clone(),
                d_off: 1,
                d_type: 8,
                ino: 0,
                iatt: st.inodes.get(g).cloned(),
                xattrs: want
                    .keys()
                    .filter_map(|k| Some((k.clone(), st.xattrs.get(&(*g, k.clone()))?.clone())))
                    .collect(),
            })
            .collect())
    }
    async fn setxattr(&self, _: &Ctx, loc: &Loc, x: &Xattrs, _: i32) -> Result<()> {
        self.called();
        let g = self.resolve(loc)?;
        let mut st = self.st.lock();
        for (k, v) in x {
            st.xattrs.insert((g, k.clone()), v.clone());
        }
        Ok(())
    }
}

fn setup(timeout: Duration, max: usize) -> (Arc<MdCache>, Arc<Mem>) {
    let mem = Arc::new(Mem {
        base: XlatorBase::new("mem", "test/mem", vec![]),
        st: Mutex::new(State::default()),
        calls: AtomicU64::new(0),
        hold: Mutex::new(None),
    });
    let md = Arc::new(MdCache::new(
        XlatorBase::new("t-md-cache", "performance/md-cache", vec![mem.clone()]),
        timeout,
        vec!["security.capability", "system.posix_acl_access"],
        max,
        MdCacheMetrics::new("md-cache-unit-test"),
    ));
    (md, mem)
}

fn long() -> (Arc<MdCache>, Arc<Mem>) {
    setup(Duration::from_secs(600), 131072)
}

const ROOT: Gfid = Gfid::ROOT;

async fn upcall(md: &MdCache, gfid: Gfid, flags: u8) {
    md.notify(Event::Upcall(Upcall { gfid, flags }), 0).await;
}

fn c() -> Ctx {
    Ctx::root()
}

#[tokio::test]
async fn lookup_and_stat_are_answered_from_memory_until_an_upcall() {
    let (md, mem) = long();
    let g = mem.add(ROOT, "f", libc::S_IFREG | 0o644);
    let (ia, _) = md
        .lookup(&c(), &Loc::child(ROOT, "f"), &Xattrs::new())
        .await
        .unwrap();
    assert_eq!(ia.gfid, g);
    let n = mem.calls();
    for _ in 0..10 {
        md.lookup(&c(), &Loc::child(ROOT, "f"), &Xattrs::new())
            .await
            .unwrap();
        assert_eq!(
            md.stat(&c(), &Loc::gfid(g)).await.unwrap().mode & 0o777,
            0o644
        );
    }
    assert_eq!(mem.calls(), n, "every answer came from the cache");

    // Another client's chmod, told by the brick.
    mem.behind_its_back(|s| s.inodes.get_mut(&g).unwrap().mode = libc::S_IFREG | 0o600);
    assert_eq!(
        md.stat(&c(), &Loc::gfid(g)).await.unwrap().mode & 0o777,
        0o644
    );
    upcall(&md, g, upcall_flags::ATTR).await;
    assert_eq!(
        md.stat(&c(), &Loc::gfid(g)).await.unwrap().mode & 0o777,
        0o600
    );
}

#[tokio::test]
async fn own_changes_are_seen_at_once() {
    let (md, mem) = long();
    let g = mem.add(ROOT, "f", libc::S_IFREG | 0o644);
    md.stat(&c(), &Loc::gfid(g)).await.unwrap();
    let fd = Fd::new(g, libc::O_RDWR, false);
    md.write(&c(), &fd, 0, Bytes::from_static(b"hello"))
        .await
        .unwrap();
    assert_eq!(md.stat(&c(), &Loc::gfid(g)).await.unwrap().size, 5);
    assert_eq!(md.fstat(&c(), &fd).await.unwrap().size, 5);

    // setattr's post-op attributes are what the next stat says, without asking.
    let attr = SetAttr {
        mode: Some(0o600),
        ..Default::default()
    };
    let after = md.setattr(&c(), &Loc::gfid(g), &attr).await.unwrap();
    let n = mem.calls();
    assert_eq!(md.stat(&c(), &Loc::gfid(g)).await.unwrap(), after);
    assert_eq!(mem.calls(), n);

    // A hard link and an unlink move nlink.
    md.lookup(&c(), &Loc::child(ROOT, "f"), &Xattrs::new())
        .await
        .unwrap();
    md.link(&c(), &Loc::gfid(g), &Loc::child(ROOT, "g"))
        .await
        .unwrap();
    assert_eq!(md.stat(&c(), &Loc::gfid(g)).await.unwrap().nlink, 2);
    md.unlink(&c(), &Loc::child(ROOT, "g")).await.unwrap();
    assert_eq!(md.stat(&c(), &Loc::gfid(g)).await.unwrap().nlink, 1);
    assert_eq!(
        md.lookup(&c(), &Loc::child(ROOT, "g"), &Xattrs::new())
            .await
            .unwrap_err(),
        Errno::ENOENT
    );
}

#[tokio::test]
async fn a_negative_entry_goes_with_a_create_here_or_an_entry_upcall_from_elsewhere() {
    let (md, mem) = long();
    let (ctx, loc, none) = (c(), Loc::child(ROOT, "n"), Xattrs::new());
    let missing = || md.lookup(&ctx, &loc, &none);
    assert_eq!(missing().await.unwrap_err(), Errno::ENOENT);
    let n = mem.calls();
    assert_eq!(missing().await.unwrap_err(), Errno::ENOENT);
    assert_eq!(mem.calls(), n, "the negative answer was kept");

    // Another client makes the name: stale until the brick tells of the parent's entries.
    let g = mem.add(ROOT, "n", libc::S_IFREG | 0o644);
    assert_eq!(missing().await.unwrap_err(), Errno::ENOENT);
    upcall(&md, ROOT, upcall_flags::ENTRIES | upcall_flags::ATTR).await;
    assert_eq!(missing().await.unwrap().0.gfid, g);

    // Our own create replaces a negative entry at once.
    assert!(
        md.lookup(&c(), &Loc::child(ROOT, "m"), &Xattrs::new())
            .await
            .is_err()
    );
    let entry = NewEntry {
        gfid: Gfid::random(),
        mode: 0o644,
        ..Default::default()
    };
    let (_, ia, _) = md
        .create(&c(), &Loc::child(ROOT, "m"), libc::O_RDWR, &entry)
        .await
        .unwrap();
    let (found, _) = md
        .lookup(&c(), &Loc::child(ROOT, "m"), &Xattrs::new())
        .await
        .unwrap();
    assert_eq!(found.gfid, ia.gfid);
}

#[tokio::test]
async fn a_reply_that_overlapped_an_upcall_is_not_kept() {
    let (md, mem) = long();
    let g = mem.add(ROOT, "f", libc::S_IFREG | 0o644);
    let hold = Arc::new(Notify::new());
    *mem.hold.lock() = Some(hold.clone());
    let md2 = md.clone();
    let stat = tokio::spawn(async move { md2.stat(&Ctx::root(), &Loc::gfid(g)).await });
    // The stat has read the old mode; the change and its upcall overtake its reply.
    while mem.calls() == 0 {
        tokio::task::yield_now().await;
    }
    mem.behind_its_back(|s| s.inodes.get_mut(&g).unwrap().mode = libc::S_IFREG | 0o600);
    upcall(&md, g, upcall_flags::ATTR).await;
    *mem.hold.lock() = None;
    hold.notify_one();
    assert_eq!(stat.await.unwrap().unwrap().mode & 0o777, 0o644);
    assert_eq!(
        md.stat(&c(), &Loc::gfid(g)).await.unwrap().mode & 0o777,
        0o600,
        "the old answer was not cached"
    );
}

#[tokio::test]
async fn capability_xattr_absence_is_cached_and_dropped_by_setxattr() {
    let (md, mem) = long();
    let g = mem.add(ROOT, "f", libc::S_IFREG | 0o755);
    let (ctx, loc) = (c(), Loc::gfid(g));
    let cap = || md.getxattr(&ctx, &loc, Some("security.capability"));
    assert_eq!(cap().await.unwrap_err(), Errno::ENODATA);
    let n = mem.calls();
    assert_eq!(cap().await.unwrap_err(), Errno::ENODATA);
    assert_eq!(mem.calls(), n);
    let x = Xattrs::from([(
        "security.capability".to_string(),
        Bytes::from_static(b"\x01"),
    )]);
    md.setxattr(&c(), &Loc::gfid(g), &x, 0).await.unwrap();
    assert_eq!(cap().await.unwrap(), x);
    // Names it does not keep always go to the bricks.
    assert!(
        md.getxattr(&c(), &Loc::gfid(g), Some("user.x"))
            .await
            .is_err()
    );
    let n = mem.calls();
    assert!(
        md.getxattr(&c(), &Loc::gfid(g), Some("user.x"))
            .await
            .is_err()
    );
    assert_eq!(mem.calls(), n + 1);
}

#[tokio::test]
async fn entries_expire_and_a_reconnect_forgets_everything() {
    let (md, mem) = setup(Duration::from_millis(100), 131072);
    let g = mem.add(ROOT, "f", libc::S_IFREG | 0o644);
    md.stat(&c(), &Loc::gfid(g)).await.unwrap();
    let n = mem.calls();
    md.stat(&c(), &Loc::gfid(g)).await.unwrap();
    assert_eq!(mem.calls(), n);
    tokio::time::sleep(Duration::from_millis(150)).await;
    md.stat(&c(), &Loc::gfid(g)).await.unwrap();
    assert_eq!(mem.calls(), n + 1);

    let (md, mem) = long();
    let g = mem.add(ROOT, "f", libc::S_IFREG | 0o644);
    md.stat(&c(), &Loc::gfid(g)).await.unwrap();
    md.notify(Event::Upcall(Upcall::forget_all()), 0).await;
    let n = mem.calls();
    md.stat(&c(), &Loc::gfid(g)).await.unwrap();
    assert_eq!(mem.calls(), n + 1);
}

#[tokio::test]
async fn memory_stays_bounded() {
    let (md, mem) = setup(Duration::from_secs(600), 1024);
    for i in 0..20_000 {
        let g = mem.add(ROOT, &format!("f{i}"), libc::S_IFREG | 0o644);
        md.stat(&c(), &Loc::gfid(g)).await.unwrap();
    }
    // Checked every 1024 fills, so at most that many past the cap.
    assert!(md.inodes.len() <= 2048, "{} inodes kept", md.inodes.len());
}

#[tokio::test]
async fn a_write_keeps_the_known_absence_of_security_capability() {
    let (md, mem) = long();
    let g = mem.add(ROOT, "f", libc::S_IFREG | 0o644);
    let (ctx, loc) = (c(), Loc::gfid(g));
    let cap = || md.getxattr(&ctx, &loc, Some("security.capability"));
    let fd = Fd::new(g, libc::O_RDWR, false);
    assert_eq!(cap().await.unwrap_err(), Errno::ENODATA);
    for i in 0..5u64 {
        // What the kernel does for each write: ask for the capability, then write.
        let n = mem.calls();
        assert_eq!(cap().await.unwrap_err(), Errno::ENODATA);
        assert_eq!(mem.calls(), n, "write {i}: the absence was kept");
        md.write(&ctx, &fd, i, Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
    // The attributes did not survive the writes.
    assert_eq!(md.stat(&ctx, &loc).await.unwrap().size, 5);
    // Another client's setxattr does drop it.
    mem.behind_its_back(|s| {
        s.xattrs
            .insert((g, "security.capability".into()), Bytes::from_static(b"c"));
    });
    upcall(&md, g, upcall_flags::XATTR | upcall_flags::ATTR).await;
    assert!(cap().await.is_ok());
}

#[tokio::test]
async fn a_file_just_created_is_known_to_have_no_security_capability() {
    let (md, mem) = long();
    let entry = NewEntry {
        gfid: Gfid::random(),
        mode: 0o644,
        ..Default::default()
    };
    let (fd, _, _) = md
        .create(&c(), &Loc::child(ROOT, "fresh"), libc::O_RDWR, &entry)
        .await
        .unwrap();
    let loc = Loc::gfid(fd.gfid);
    let n = mem.calls();
    // The kernel's question before the first write.
    let cap = md.getxattr(&c(), &loc, Some("security.capability")).await;
    assert_eq!(cap.unwrap_err(), Errno::ENODATA);
    assert_eq!(
        mem.calls(),
        n,
        "the new file's capability was asked of the brick"
    );

    // A capability set afterwards is seen.
    md.setxattr(
        &c(),
        &loc,
        &Xattrs::from([("security.capability".to_string(), Bytes::from_static(b"c"))]),
        0,
    )
    .await
    .unwrap();
    let cap = md.getxattr(&c(), &loc, Some("security.capability")).await;
    assert_eq!(
        cap.unwrap()["security.capability"],
        Bytes::from_static(b"c")
    );

    // A create that sets the capability itself is not taken for one without.
    let with = NewEntry {
        gfid: Gfid::random(),
        mode: 0o644,
        xattrs: Xattrs::from([("security.capability".to_string(), Bytes::from_static(b"d"))]),
        ..Default::default()
    };
    let (fd, _, _) = md
        .create(&c(), &Loc::child(ROOT, "capable"), libc::O_RDWR, &with)
        .await
        .unwrap();
    let n = mem.calls();
    let _ = md
        .getxattr(&c(), &Loc::gfid(fd.gfid), Some("security.capability"))
        .await;
    assert_eq!(mem.calls(), n + 1, "asked of the brick");
}

#[tokio::test]
async fn a_file_created_and_written_is_then_looked_up_from_memory() {
    let (md, mem) = long();
    let entry = NewEntry {
        gfid: Gfid::random(),
        mode: 0o644,
        ..Default::default()
    };
    let (fd, _, _) = md
        .create(&c(), &Loc::child(ROOT, "new"), libc::O_RDWR, &entry)
        .await
        .unwrap();
    md.write(&c(), &fd, 0, Bytes::from_static(b"4096"))
        .await
        .unwrap();
    let n = mem.calls();
    let (ia, _) = md
        .lookup(&c(), &Loc::child(ROOT, "new"), &Xattrs::new())
        .await
        .unwrap();
    assert_eq!((ia.gfid, ia.size), (fd.gfid, 4));
    assert_eq!(
        mem.calls(),
        n,
        "what the create and the write returned was kept"
    );

    // Two writes in flight together: neither reply is kept, whatever order they come in.
    let t = md.begin();
    md.data_changed(&[fd.gfid]);
    let e = md.data_changed(&[fd.gfid]);
    md.settle(t, e, &ia);
    assert!(md.cached_iatt(&fd.gfid).is_none());
    // A change of another inode meanwhile does not keep this one's reply out.
    let t = md.begin();
    md.data_changed(&[Gfid::random()]);
    let e = md.data_changed(&[fd.gfid]);
    md.settle(t, e, &ia);
    assert!(md.cached_iatt(&fd.gfid).is_some());
    // A forget-all (a brick reconnected) does.
    let t = md.begin();
    md.upcall(&Upcall::forget_all());
    let e = md.data_changed(&[fd.gfid]);
    md.settle(t, e, &ia);
    assert!(md.cached_iatt(&fd.gfid).is_none());
    // Creates of other names in the same directory meanwhile (eight threads filling one
    // directory) do not keep a new name out; another client's change of the directory's
    // names does.
    let g = Gfid::random();
    let t = md.begin();
    md.changed(&[Gfid::random()], &[(ROOT, "other")]);
    let e = md.changed(&[g], &[(ROOT, "mine")]);
    md.settle_name(t, e, ROOT, "mine", g);
    assert_eq!(md.cached_name(ROOT, "mine"), Some(Some(g)));
    let t = md.begin();
    md.upcall(&Upcall {
        gfid: ROOT,
        flags: upcall_flags::ENTRIES,
    });
    let e = md.changed(&[g], &[(ROOT, "mine2")]);
    md.settle_name(t, e, ROOT, "mine2", g);
    assert_eq!(md.cached_name(ROOT, "mine2"), None);
    // A count the log does not hold (dropped, or counted without it) is not taken as clean.
    let t = md.begin();
    md.epoch.fetch_add(1, Ordering::SeqCst);
    let e = md.data_changed(&[fd.gfid]);
    md.settle(t, e, &ia);
    assert!(md.cached_iatt(&fd.gfid).is_none());
}

#[tokio::test]
async fn a_listing_brings_the_kept_xattrs_of_each_entry_so_ls_l_costs_no_getxattr() {
    let (md, mem) = long();
    let a = mem.add(ROOT, "a", libc::S_IFREG | 0o644);
    let b = mem.add(ROOT, "b", libc::S_IFREG | 0o644);
    mem.behind_its_back(|st| {
        st.xattrs.insert(
            (b, "system.posix_acl_access".into()),
            Bytes::from_static(b"acl"),
        );
    });
    let dir = Fd::new(ROOT, libc::O_RDONLY, true);
    let listed = md
        .readdirp(&c(), &dir, 0, 4096, &Xattrs::new())
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    // The caller asked for no xattr and gets none.
    assert!(listed.iter().all(|d| d.xattrs.is_empty()));
    let n = mem.calls();
    let (ctx, la, lb) = (c(), Loc::gfid(a), Loc::gfid(b));
    let name = Some("system.posix_acl_access");
    assert_eq!(
        md.getxattr(&ctx, &la, name).await.unwrap_err(),
        Errno::ENODATA
    );
    assert_eq!(
        md.getxattr(&ctx, &lb, name)
            .await
            .unwrap()
            .get("system.posix_acl_access")
            .unwrap(),
        &b"acl"[..]
    );
    assert_eq!(
        md.getxattr(&c(), &Loc::gfid(a), Some("security.capability"))
            .await
            .unwrap_err(),
        Errno::ENODATA
    );
    assert_eq!(
        mem.calls(),
        n,
        "every getxattr was answered from the listing"
    );
}

#[tokio::test]
async fn in_a_directory_made_here_unknown_names_are_known_absent_until_anything_could_add_one() {
    let (md, mem) = long();
    let ctx = c();
    let new = NewEntry {
        mode: 0o755,
        ..Default::default()
    };
    let d = md
        .mkdir(&ctx, &Loc::child(ROOT, "d"), &new)
        .await
        .unwrap()
        .0
        .gfid;
    let absent = |name: &'static str| {
        let md = md.clone();
        async move {
            md.lookup(&c(), &Loc::child(d, name), &Xattrs::new())
                .await
                .map(|(ia, _)| ia.gfid)
        }
    };
    // The lookups before creates cost nothing; what is created is found.
    let n = mem.calls();
    assert_eq!(absent("a").await, Err(Errno::ENOENT));
    let (fd, _, _) = md
        .create(&ctx, &Loc::child(d, "a"), libc::O_WRONLY, &new)
        .await
        .unwrap();
    assert_eq!(absent("a").await, Ok(fd.gfid));
    assert_eq!(absent("b").await, Err(Errno::ENOENT));
    assert_eq!(mem.calls(), n + 1, "only the create reached the bricks");
    // A name too long for any directory is the bricks' to answer.
    let long_name: &'static str = Box::leak("n".repeat(256).into_boxed_str());
    let _ = absent(long_name).await;
    assert_eq!(mem.calls(), n + 2);
    // A subdirectory made here starts known too.
    let sub = md
        .mkdir(&ctx, &Loc::child(d, "sub"), &new)
        .await
        .unwrap()
        .0
        .gfid;
    let n = mem.calls();
    assert_eq!(
        md.lookup(&ctx, &Loc::child(sub, "x"), &Xattrs::new())
            .await
            .map(|_| ()),
        Err(Errno::ENOENT)
    );
    assert_eq!(mem.calls(), n);

    // A rename into it: the new name must be found.
    mem.add(ROOT, "outside", libc::S_IFREG | 0o644);
    let moved = md
        .rename(&ctx, &Loc::child(ROOT, "outside"), &Loc::child(d, "moved"))
        .await
        .unwrap()
        .0
        .gfid;
    assert_eq!(absent("moved").await, Ok(moved));

    // Another client's name, told by an upcall: found too.
    let sub2 = md
        .mkdir(&ctx, &Loc::child(d, "sub2"), &new)
        .await
        .unwrap()
        .0
        .gfid;
    let theirs = mem.add(sub2, "theirs", libc::S_IFREG | 0o644);
    md.upcall(&Upcall {
        gfid: sub2,
        flags: upcall_flags::ENTRIES,
    });
    let (ia, _) = md
        .lookup(&ctx, &Loc::child(sub2, "theirs"), &Xattrs::new())
        .await
        .unwrap();
    assert_eq!(ia.gfid, theirs);

    // A failed unlink may have left its name: no longer known absent.
    let sub3 = md
        .mkdir(&ctx, &Loc::child(d, "sub3"), &new)
        .await
        .unwrap()
        .0
        .gfid;
    let kept = mem.add(sub3, "kept", libc::S_IFREG | 0o644);
    assert!(md.unlink(&ctx, &Loc::child(sub3, "nothere")).await.is_err());
    let (ia, _) = md
        .lookup(&ctx, &Loc::child(sub3, "kept"), &Xattrs::new())
        .await
        .unwrap();
    assert_eq!(ia.gfid, kept);
}

/// A lookup for the xattrs under an `xattr-cache-list` prefix is answered from memory, with
/// the whole set, until our own setxattr or another client's upcall.
#[tokio::test]
async fn xattrs_under_a_listed_prefix_are_kept_with_the_inode() {
    let (md, mem) = long();
    let mut md = Arc::try_unwrap(md).ok().expect("only reference");
    md.xattr_prefixes = vec!["trusted.app.".into()];
    let md = Arc::new(md);
    let ctx = c();
    let d = mem.add(ROOT, "bucket", libc::S_IFDIR | 0o755);
    mem.behind_its_back(|s| {
        s.xattrs.insert(
            (d, "trusted.app.owner".into()),
            Bytes::from_static(b"alice"),
        );
    });
    let want = Xattrs::from([("trusted.app.*".to_string(), Bytes::new())]);
    let loc = Loc::child(ROOT, "bucket");
    let owner = |x: &Xattrs| x.get("trusted.app.owner").cloned();
    let (_, x) = md.lookup(&ctx, &loc, &want).await.unwrap();
    assert_eq!(owner(&x).as_deref(), Some(&b"alice"[..]));
    let n = mem.calls();
    let (ia, x) = md.lookup(&ctx, &loc, &want).await.unwrap();
    assert_eq!(mem.calls(), n, "answered from memory");
    assert_eq!((ia.gfid, owner(&x).as_deref()), (d, Some(&b"alice"[..])));

    // Another prefix, or a name not listed, is asked of the bricks.
    let other = Xattrs::from([("trusted.other.*".to_string(), Bytes::new())]);
    md.lookup(&ctx, &loc, &other).await.unwrap();
    assert_eq!(mem.calls(), n + 1);

    // Our own change: seen at once.
    let bob = Xattrs::from([("trusted.app.owner".to_string(), Bytes::from_static(b"bob"))]);
    md.setxattr(&ctx, &Loc::gfid(d), &bob, 0).await.unwrap();
    let (_, x) = md.lookup(&ctx, &loc, &want).await.unwrap();
    assert_eq!(owner(&x).as_deref(), Some(&b"bob"[..]));

    // Another client's, told by an upcall.
    mem.behind_its_back(|s| {
        s.xattrs.insert(
            (d, "trusted.app.owner".into()),
            Bytes::from_static(b"carol"),
        );
    });
    upcall(&md, d, upcall_flags::XATTR).await;
    let (_, x) = md.lookup(&ctx, &loc, &want).await.unwrap();
    assert_eq!(owner(&x).as_deref(), Some(&b"carol"[..]));
}
