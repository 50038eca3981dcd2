//! `kill -9` of gatewayd: its bricks go with it, nothing written is lost, and the next
//! `gatewayd up` on the same data takes over the stale mount point and serves the volume again.

use e2e::*;
use std::fs;
use std::time::Duration;

#[test]
fn kill_9_of_gatewayd_then_up_again() {
    let mut gw = Gateway::up().unwrap();
    let m = gw.mnt().to_path_buf();
    fs::create_dir(m.join("d")).unwrap();
    for i in 0..100 {
        fs::write(m.join(format!("d/f{i}")), format!("acknowledged {i}")).unwrap();
    }
    let data = gw.data.to_string_lossy().into_owned();
    let bricks_of_this_gateway = || {
        pids_matching(|argv| {
            argv.first().is_some_and(|a| a.ends_with("brickd"))
                && argv.iter().any(|a| a.contains(&data))
        })
    };
    assert_eq!(bricks_of_this_gateway().len(), 4);

    gw.kill9();
    // Its bricks do not linger holding their ports.
    wait_for(
        Duration::from_secs(10),
        "the bricks to exit with their gatewayd",
        || bricks_of_this_gateway().is_empty().then_some(()),
    )
    .unwrap();
    // The dead mount answers ENOTCONN until someone takes it over.
    let e = fs::metadata(&m).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN), "{e}");

    gw.start_again().unwrap();
    for i in 0..100 {
        assert_eq!(
            fs::read_to_string(m.join(format!("d/f{i}"))).unwrap(),
            format!("acknowledged {i}")
        );
    }
    fs::write(m.join("d/after"), b"new").unwrap();
    assert_eq!(bricks_of_this_gateway().len(), 4);
}
