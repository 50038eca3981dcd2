//! This process's identity among the nodes of a pool.

/// Who this process is among the nodes of a pool, set once at start (`set_node`): fixed for
/// the life of the process, and asked by every place that decides whether a brick is ours,
/// which is why it is not threaded through each of them.
pub(crate) static NODE: std::sync::OnceLock<(String, bool)> = std::sync::OnceLock::new();

/// Records this node's name; `pooled` when other nodes share the state (etcd), in which case
/// only bricks named with exactly this name are local: several nodes may run on one host
/// under loopback addresses of their own.
pub fn set_node(name: &str, pooled: bool) {
    let _ = NODE.set((name.to_string(), pooled));
}

/// This machine's host name.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
