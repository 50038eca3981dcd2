//! cluster/distribute over four real storage/posix bricks with their locks (no RPC in between).

use bytes::Bytes;
use engine::fop::keys;
use engine::graph::Graph;
use engine::registry::Registry;
use engine::xlators::cluster::distribute::{hash, layout};
use engine::*;
use std::collections::BTreeSet;
use std::path::PathBuf;

struct Vol {
    _dirs: Vec<tempfile::TempDir>,
    bricks: Vec<PathBuf>,
    g: Graph,
}

async fn volume() -> Vol {
    let vid = Gfid::random();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut text = String::new();
    // posix with features/locks above it, as on a brick: distribute takes namespace locks.
    for (i, d) in dirs.iter().enumerate() {
        text += &format!(
            "volume gv-posix-{i}\n type storage/posix\n option directory {}\n option volume-id {vid}\nend-volume\n\
             volume gv-client-{i}\n type features/locks\n subvolumes gv-posix-{i}\nend-volume\n",
            d.path().display()
        );
    }
    text += "volume gv-dht\n type cluster/distribute\n subvolumes gv-client-0 gv-client-1 gv-client-2 gv-client-3\nend-volume\n";
    let mut r = Registry::client_side();
    brickd::register_all(&mut r);
    let g = Graph::from_text(&text, &r).unwrap();
    g.init().await.unwrap();
    assert!(g.wait_up(std::time::Duration::from_secs(5)).await);
    let bricks = dirs.iter().map(|d| d.path().to_path_buf()).collect();
    Vol {
        _dirs: dirs,
        bricks,
        g,
    }
}

/// A second client of the same bricks: distribute straight over their storage/posix.
async fn another_client(v: &Vol) -> Graph {
    let vid = brickd::storage::xattr::get(&v.bricks[0], keys::VOLUME_ID)
        .unwrap()
        .unwrap();
    let vid = Gfid::from_slice(&vid).unwrap();
    let mut text = String::new();
    for (i, d) in v.bricks.iter().enumerate() {
        text += &format!(
            "volume gv-client-{i}\n type storage/posix\n option directory {}\n option volume-id {vid}\nend-volume\n",
            d.display()
        );
    }
    text += "volume gv-dht\n type cluster/distribute\n subvolumes gv-client-0 gv-client-1 gv-client-2 gv-client-3\nend-volume\n";
    let mut r = Registry::client_side();
    brickd::register_all(&mut r);
    let other = Graph::from_text(&text, &r).unwrap();
    other.init().await.unwrap();
    assert!(other.wait_up(std::time::Duration::from_secs(5)).await);
    other
}

fn entry(mode: u32) -> NewEntry {
    NewEntry {
        gfid: Gfid::random(),
        mode,
        umask: 0,
        ..Default::default()
    }
}

fn layout_of(dir: &std::path::Path) -> (u32, u32) {
    let v = brickd::storage::xattr::get(dir, keys::DHT_LAYOUT)
        .unwrap()
        .expect("layout");
    layout::decode(&v).unwrap()
}

fn holder(bricks: &[PathBuf], rel: &str, name: &str) -> usize {
    let h = hash::name_hash(name);
    bricks
        .iter()
        .position(|b| {
            let (s, e) = layout_of(&b.join(rel));
            s <= h && h <= e
        })
        .unwrap()
}

async fn list(c: &XlatorRef, dir: Gfid, batch: u32) -> Vec<String> {
    let ctx = Ctx::root();
    let fd = c.opendir(&ctx, &Loc::gfid(dir)).await.unwrap();
    let mut out = Vec::new();
    let mut off = 0;
    loop {
        let ents = c
            .readdirp(&ctx, &fd, off, batch, &Xattrs::new())
            .await
            .unwrap();
        if ents.is_empty() {
            break;
        }
        off = ents.last().unwrap().d_off;
        out.extend(ents.into_iter().map(|e| e.name));
    }
    c.release(&fd).await;
    out
}

#[tokio::test]
async fn files_land_on_their_hashed_brick_and_listings_are_complete() {
    let v = volume().await;
    let c = v.g.top();
    let ctx = Ctx::root();
    c.lookup(&ctx, &Loc::root(), &Xattrs::new()).await.unwrap();
    let de = entry(0o755);
    c.mkdir(&ctx, &Loc::child(Gfid::ROOT, "d").with_path("/"), &de)
        .await
        .unwrap();
    let mut names = BTreeSet::new();
    for i in 0..200 {
        let n = format!("file-{i}");
        let (fd, _, _) = c
            .create(
                &ctx,
                &Loc::child(de.gfid, n.clone()),
                libc::O_RDWR,
                &entry(0o644),
            )
            .await
            .unwrap();
        c.write(&ctx, &fd, 0, Bytes::from(n.clone())).await.unwrap();
        c.release(&fd).await;
        let b = holder(&v.bricks, "d", &n);
        assert!(
            v.bricks[b].join("d").join(&n).exists(),
            "{n} is not on brick {b}"
        );
        names.insert(n);
    }
    let got = list(&c, de.gfid, 512).await;
    assert_eq!(got.len(), names.len(), "no duplicates, no gaps");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), names);
    let s = c.statfs(&ctx, &Loc::root()).await.unwrap();
    assert!(s.blocks > 0);
}

#[tokio::test]
async fn renames_across_bricks_leave_linkto_files_and_unlink_removes_them() {
    let v = volume().await;
    let c = v.g.top();
    let ctx = Ctx::root();
    c.lookup(&ctx, &Loc::root(), &Xattrs::new()).await.unwrap();
    // Find two names that hash to different bricks.
    let a = "alpha".to_string();
    let b = (0..100)
        .map(|i| format!("beta{i}"))
        .find(|n| holder(&v.bricks, "", n) != holder(&v.bricks, "", &a))
        .unwrap();
    let e = entry(0o644);
    let (fd, _, _) = c
        .create(&ctx, &Loc::child(Gfid::ROOT, a.clone()), libc::O_RDWR, &e)
        .await
        .unwrap();
    c.write(&ctx, &fd, 0, Bytes::from_static(b"payload"))
        .await
        .unwrap();
    c.rename(
        &ctx,
        &Loc::child(Gfid::ROOT, a.clone()),
        &Loc::child(Gfid::ROOT, b.clone()),
    )
    .await
    .unwrap();
    let data_brick = holder(&v.bricks, "", &a);
    let link_brick = holder(&v.bricks, "", &b);
    assert!(v.bricks[data_brick].join(&b).exists());
    let lt = brickd::storage::xattr::get(&v.bricks[link_brick].join(&b), keys::DHT_LINKTO)
        .unwrap()
        .unwrap();
    assert_eq!(lt, format!("gv-client-{data_brick}\0").as_bytes());
    // Lookup follows the linkto; the listing shows the name once.
    let (ia, _) = c
        .lookup(&ctx, &Loc::child(Gfid::ROOT, b.clone()), &Xattrs::new())
        .await
        .unwrap();
    assert_eq!((ia.gfid, ia.size), (e.gfid, 7));
    assert_eq!(list(&c, Gfid::ROOT, 4096).await, vec![b.clone()]);
    // Rename over an existing file replaces it.
    let other = entry(0o644);
    c.create(&ctx, &Loc::child(Gfid::ROOT, "other"), libc::O_RDWR, &other)
        .await
        .unwrap();
    c.rename(
        &ctx,
        &Loc::child(Gfid::ROOT, "other"),
        &Loc::child(Gfid::ROOT, b.clone()),
    )
    .await
    .unwrap();
    let (ia, _) = c
        .lookup(&ctx, &Loc::child(Gfid::ROOT, b.clone()), &Xattrs::new())
        .await
        .unwrap();
    assert_eq!(ia.gfid, other.gfid);
    c.unlink(&ctx, &Loc::child(Gfid::ROOT, b.clone()))
        .await
        .unwrap();
    for br in &v.bricks {
        assert!(!br.join(&b).exists());
    }
    assert!(list(&c, Gfid::ROOT, 4096).await.is_empty());
}

#[tokio::test]
async fn rmdir_refuses_a_non_empty_directory_and_removes_it_everywhere() {
    let v = volume().await;
    let c = v.g.top();
    let ctx = Ctx::root();
    c.lookup(&ctx, &Loc::root(), &Xattrs::new()).await.unwrap();
    let de = entry(0o755);
    c.mkdir(&ctx, &Loc::child(Gfid::ROOT, "dir"), &de)
        .await
        .unwrap();
    for br in &v.bricks {
        assert!(br.join("dir").is_dir());
    }
    let e = entry(0o644);
    c.create(&ctx, &Loc::child(de.gfid, "x"), libc::O_RDWR, &e)
        .await
        .unwrap();
    assert_eq!(
        c.rmdir(&ctx, &Loc::child(Gfid::ROOT, "dir")).await,
        Err(Errno::ENOTEMPTY)
    );
    c.unlink(&ctx, &Loc::child(de.gfid, "x")).await.unwrap();
    c.rmdir(&ctx, &Loc::child(Gfid::ROOT, "dir")).await.unwrap();
    for br in &v.bricks {
        assert!(!br.join("dir").exists());
    }
}

#[tokio::test]
async fn unlink_after_another_client_replaced_the_name_removes_what_is_there() {
    let v = volume().await;
    let c = v.g.top();
    let ctx = Ctx::root();
    c.lookup(&ctx, &Loc::root(), &Xattrs::new()).await.unwrap();
    let a = entry(0o644);
    c.create(&ctx, &Loc::child(Gfid::ROOT, "x"), libc::O_RDWR, &a)
        .await
        .unwrap();
    // This client looks the name up (and remembers where it is)...
    let (ia, _) = c
        .lookup(&ctx, &Loc::child(Gfid::ROOT, "x"), &Xattrs::new())
        .await
        .unwrap();
    assert_eq!(ia.gfid, a.gfid);
    // ...then another client replaces the file behind its back.
    let other = another_client(&v).await;
    let o = other.top();
    o.unlink(&ctx, &Loc::child(Gfid::ROOT, "x")).await.unwrap();
    let b = entry(0o644);
    o.create(&ctx, &Loc::child(Gfid::ROOT, "x"), libc::O_RDWR, &b)
        .await
        .unwrap();
    // The first client's unlink removes the file the name holds now, not nothing.
    c.unlink(&ctx, &Loc::child(Gfid::ROOT, "x")).await.unwrap();
    assert_eq!(
        o.lookup(&ctx, &Loc::child(Gfid::ROOT, "x"), &Xattrs::new())
            .await
            .err(),
        Some(Errno::ENOENT)
    );
    for br in &v.bricks {
        assert!(!br.join("x").exists());
    }
}

/// A rename by a name this client made skips the lookups; when another client has since
/// renamed a file from another brick over the target (a linkto there now), the brick refuses
/// and the rename takes the way with lookups: the target's data elsewhere goes, and the name
/// means the renamed file.
#[tokio::test]
async fn a_rename_by_a_made_name_over_a_linkto_removes_the_data_it_pointed_to() {
    let v = volume().await;
    let c = v.g.top();
    let ctx = Ctx::root();
    c.lookup(&ctx, &Loc::root(), &Xattrs::new()).await.unwrap();
    let h = holder(&v.bricks, "", "key");
    let staged = (0..200)
        .map(|i| format!("st{i}"))
        .find(|n| holder(&v.bricks, "", n) == h)
        .unwrap();
    let far = (0..200)
        .map(|i| format!("far{i}"))
        .find(|n| holder(&v.bricks, "", n) != h)
        .unwrap();
    let far_brick = holder(&v.bricks, "", &far);
    let at = |n: &str| Loc::child(Gfid::ROOT, n);
    // Made by this client (distribute remembers the name), then renamed over "key"; the
    // gfid "key" then has, as another client finds it.
    let make_and_rename = async |e: &NewEntry| {
        c.create(&ctx, &at(&staged), libc::O_RDWR, e).await.unwrap();
        c.rename(&ctx, &at(&staged), &at("key")).await.unwrap();
    };
    let mine = entry(0o644);
    // Another client: a file on another brick renamed over "key" leaves a linkto at h.
    let other = another_client(&v).await;
    let o = other.top();
    o.lookup(&ctx, &Loc::root(), &Xattrs::new()).await.unwrap();
    let theirs = entry(0o644);
    o.create(
        &ctx,
        &Loc::child(Gfid::ROOT, far.clone()),
        libc::O_RDWR,
        &theirs,
    )
    .await
    .unwrap();
    o.rename(
        &ctx,
        &Loc::child(Gfid::ROOT, far.clone()),
        &Loc::child(Gfid::ROOT, "key"),
    )
    .await
    .unwrap();
    assert!(
        v.bricks[far_brick].join("key").exists(),
        "their data at its brick"
    );

    make_and_rename(&mine).await;
    let (ia, _) = o.lookup(&ctx, &at("key"), &Xattrs::new()).await.unwrap();
    assert_eq!(ia.gfid, mine.gfid);
    assert!(
        !v.bricks[far_brick].join("key").exists(),
        "the replaced data is gone"
    );
    assert_eq!(list(&c, Gfid::ROOT, 4096).await, vec!["key".to_string()]);

    // With nothing in the way, the made name is renamed at once, and stays found.
    let second = entry(0o644);
    make_and_rename(&second).await;
    let (ia, _) = o.lookup(&ctx, &at("key"), &Xattrs::new()).await.unwrap();
    assert_eq!(ia.gfid, second.gfid);
    assert_eq!(list(&c, Gfid::ROOT, 4096).await, vec!["key".to_string()]);
}
