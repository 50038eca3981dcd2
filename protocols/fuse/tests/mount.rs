//! The FUSE frontend over distribute and four posix bricks (with their locks, as on a brick:
//! distribute takes namespace locks), driven through std::fs.

use engine::graph::Graph;
use engine::registry::Registry;
use engine::*;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

#[test]
fn posix_behaviour_through_the_mount() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let vid = Gfid::random();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut text = String::new();
    for (i, d) in dirs.iter().enumerate() {
        text += &format!(
            "volume t-posix-{i}\n type storage/posix\n option directory {}\n option volume-id {vid}\nend-volume\n\
             volume t-client-{i}\n type features/locks\n subvolumes t-posix-{i}\nend-volume\n",
            d.path().display()
        );
    }
    text += "volume t-dht\n type cluster/distribute\n subvolumes t-client-0 t-client-1 t-client-2 t-client-3\nend-volume\n";
    let mut r = Registry::client_side();
    brickd::register_all(&mut r);
    let g = Graph::from_text(&text, &r).unwrap();
    rt.block_on(async {
        g.init().await.unwrap();
        assert!(g.wait_up(std::time::Duration::from_secs(5)).await);
    });
    let mp = tempfile::tempdir().unwrap();
    let m =
        protocols_fuse::mount(g.top(), mp.path(), Default::default(), rt.handle().clone()).unwrap();
    let root = mp.path();

    fs::create_dir(root.join("d")).unwrap();
    for i in 0..300 {
        fs::write(root.join("d").join(format!("f{i}")), format!("content {i}")).unwrap();
    }
    assert_eq!(fs::read_dir(root.join("d")).unwrap().count(), 300);
    assert_eq!(
        fs::read_to_string(root.join("d/f42")).unwrap(),
        "content 42"
    );

    // rename over an existing file
    fs::rename(root.join("d/f1"), root.join("d/f2")).unwrap();
    assert_eq!(fs::read_to_string(root.join("d/f2")).unwrap(), "content 1");
    assert!(!root.join("d/f1").exists());

    // unlink of an open file
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(root.join("d/f3"))
        .unwrap();
    fs::remove_file(root.join("d/f3")).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "content 3");
    f.write_all(b" more").unwrap();

    // hard links and symlinks
    fs::hard_link(root.join("d/f4"), root.join("d/f4-link")).unwrap();
    assert_eq!(fs::metadata(root.join("d/f4")).unwrap().nlink(), 2);
    std::os::unix::fs::symlink("f5", root.join("d/f5-sym")).unwrap();
    assert_eq!(
        fs::read_link(root.join("d/f5-sym"))
            .unwrap()
            .to_str()
            .unwrap(),
        "f5"
    );
    assert_eq!(
        fs::read_to_string(root.join("d/f5-sym")).unwrap(),
        "content 5"
    );

    // chmod / chown / utimes / truncate
    fs::set_permissions(root.join("d/f6"), fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        fs::metadata(root.join("d/f6")).unwrap().mode() & 0o777,
        0o600
    );
    std::os::unix::fs::chown(root.join("d/f6"), Some(1234), Some(5678)).unwrap();
    let md = fs::metadata(root.join("d/f6")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 5678));
    let f7 = fs::File::options()
        .write(true)
        .open(root.join("d/f7"))
        .unwrap();
    f7.set_times(
        fs::FileTimes::new()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000)),
    )
    .unwrap();
    assert_eq!(fs::metadata(root.join("d/f7")).unwrap().mtime(), 1_000_000);
    f7.set_len(3).unwrap();
    assert_eq!(fs::read_to_string(root.join("d/f7")).unwrap(), "con");

    // sparse file and O_APPEND
    let mut sp = fs::File::create(root.join("sparse")).unwrap();
    sp.seek(SeekFrom::Start(1 << 30)).unwrap();
    sp.write_all(b"x").unwrap();
    drop(sp);
    let md = fs::metadata(root.join("sparse")).unwrap();
    assert_eq!(md.len(), (1 << 30) + 1);
    assert!(md.blocks() < 1024);
    let mut ap = fs::OpenOptions::new()
        .append(true)
        .open(root.join("d/f8"))
        .unwrap();
    ap.write_all(b"+1").unwrap();
    ap.write_all(b"+2").unwrap();
    drop(ap);
    assert_eq!(
        fs::read_to_string(root.join("d/f8")).unwrap(),
        "content 8+1+2"
    );

    // rmdir
    fs::create_dir(root.join("empty")).unwrap();
    fs::remove_dir(root.join("empty")).unwrap();
    assert!(fs::remove_dir(root.join("d")).is_err());
    m.unmount().unwrap();
    rt.block_on(g.fini());
}
