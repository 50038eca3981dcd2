//! The console's assets are embedded from web-ui/dist (built with `npm --prefix web-ui run
//! build`). A checkout that has not built them still compiles: the folder is made empty and
//! gatewayd answers the console's URL with how to build it.

fn main() {
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web-ui/dist");
    if !dist.exists() {
        std::fs::create_dir_all(&dist).expect("creating web-ui/dist");
    }
    println!("cargo:rerun-if-changed=../web-ui/dist");
}
