//! SMB for the gateway. Samba speaks the protocol; this crate owns what the gateway must get
//! right around it:
//!
//! - an `smb.conf` rendered from checked names only, so nothing an operator types can add a
//!   line (and with it an option) to Samba's configuration;
//! - a private Samba state tree under the gateway's data directory, so a host's own Samba, if
//!   any, is neither read nor changed;
//! - SMB users that need no account on the host: Samba insists that every user it
//!   authenticates resolves with `getpwnam`, so `smbd` and `pdbedit` run under `nss_wrapper`
//!   with a passwd and group file of their own (the way Samba's own test suite runs it);
//! - the `smbd` process: started when the first share appears, told to reload when shares
//!   change, stopped with the gateway, and killed with it (`PR_SET_PDEATHSIG`) when the
//!   gateway dies without a chance to stop it.
//!
//! Shares serve a FUSE mount of the volume that the gateway makes itself; every share forces
//! the root user on that mount, so SMB users are an access list, not file owners.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SmbError {
    #[error(
        "share name {0:?}: use 1 to 80 letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    ShareName(String),
    #[error("share name {0:?} is reserved by Samba")]
    ReservedShare(String),
    #[error(
        "user name {0:?}: use 1 to 32 lower-case letters, digits, '_' or '-', starting with a letter or '_'"
    )]
    UserName(String),
    #[error("user name {0:?} is reserved")]
    ReservedUser(String),
    #[error("a password needs at least 8 characters and no line breaks or NUL bytes")]
    Password,
    #[error("{0} holds a character smb.conf cannot carry: {1:?}")]
    Unrepresentable(&'static str, String),
    #[error(
        "Samba's {0} was not found (install the Debian packages samba and libnss-wrapper to serve SMB shares)"
    )]
    Missing(&'static str),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{tool} failed ({status}): {output}")]
    Tool {
        tool: &'static str,
        status: std::process::ExitStatus,
        output: String,
    },
}

pub type Result<T> = std::result::Result<T, SmbError>;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SmbError {
    let what = what.into();
    move |e| SmbError::Io(what, e)
}

/// The names Samba gives meaning to in smb.conf, whatever their case.
const RESERVED_SHARES: &[&str] = &["global", "homes", "printers", "print$", "ipc$"];
/// Accounts every generated passwd file holds for Samba itself.
const RESERVED_USERS: &[&str] = &["root", "nobody"];
/// SMB users get uids from here up, far from the host's own accounts.
pub const FIRST_UID: u32 = 20000;

pub fn check_share_name(name: &str) -> Result<()> {
    let ok = (1..=80).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(SmbError::ShareName(name.into()));
    }
    if RESERVED_SHARES.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(SmbError::ReservedShare(name.into()));
    }
    Ok(())
}

pub fn check_user_name(name: &str) -> Result<()> {
    let ok = (1..=32).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
    if !ok {
        return Err(SmbError::UserName(name.into()));
    }
    if RESERVED_USERS.contains(&name) {
        return Err(SmbError::ReservedUser(name.into()));
    }
    Ok(())
}

pub fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < 8 || password.contains(['\n', '\r', '\0']) {
        return Err(SmbError::Password);
    }
    Ok(())
}

/// Where Samba keeps its state for this gateway: `DATA/smb/`.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn conf(&self) -> PathBuf {
        self.root.join("smb.conf")
    }
    /// Where the gateway mounts the volumes its shares serve: `mnt/<volume>`.
    pub fn mounts(&self) -> PathBuf {
        self.root.join("mnt")
    }
    pub fn log(&self) -> PathBuf {
        self.root.join("log").join("smbd.log")
    }
    fn private(&self) -> PathBuf {
        self.root.join("private")
    }
    fn run(&self) -> PathBuf {
        self.root.join("run")
    }
    fn passwd(&self) -> PathBuf {
        self.root.join("passwd")
    }
    fn group(&self) -> PathBuf {
        self.root.join("group")
    }
    fn pid_file(&self) -> PathBuf {
        self.run().join("gatewayd-smbd.pid")
    }

    /// Makes the state tree; the password database's directory is private to root.
    pub fn prepare(&self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for d in ["lock", "state", "cache", "run", "log", "mnt"] {
            let p = self.root.join(d);
            std::fs::create_dir_all(&p).map_err(io(p.display().to_string()))?;
        }
        let p = self.private();
        std::fs::create_dir_all(&p).map_err(io(p.display().to_string()))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700))
            .map_err(io(p.display().to_string()))
    }
}

/// One share as smb.conf states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    pub name: String,
    /// A directory on the gateway's FUSE mount of the volume.
    pub path: PathBuf,
    pub read_only: bool,
    /// Who may connect; empty means every SMB user of the gateway.
    pub users: Vec<String>,
}

/// An SMB user as the generated passwd file lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
}

fn conf_value(what: &'static str, v: &str) -> Result<String> {
    // smb.conf is line-based and `\` continues a line; a value with either would carry text
    // into the next option.
    if v.chars().any(|c| c.is_control() || c == '\\') || v.trim() != v {
        return Err(SmbError::Unrepresentable(what, v.into()));
    }
    Ok(v.to_string())
}

/// The whole smb.conf for `listen` and `shares`.
pub fn render_conf(layout: &Layout, listen: SocketAddr, shares: &[Share]) -> Result<String> {
    let dir = |p: PathBuf| conf_value("a state directory", &p.to_string_lossy());
    let mut s = String::new();
    let mut line = |k: &str, v: &str| {
        s.push_str("  ");
        s.push_str(k);
        s.push_str(" = ");
        s.push_str(v);
        s.push('\n');
    };
    let header = "# Written by gatewayd; changes here are replaced. Manage shares with `gwctl smb share`.\n[global]\n";
    line("server role", "standalone server");
    line("server string", "gatewayd");
    line("workgroup", "WORKGROUP");
    line("security", "user");
    line("smb ports", &listen.port().to_string());
    if !listen.ip().is_unspecified() {
        line("interfaces", &samba_interface(listen.ip()));
        line("bind interfaces only", "yes");
    }
    line("disable netbios", "yes");
    line("server min protocol", "SMB2_02");
    line("map to guest", "Never");
    line("restrict anonymous", "2");
    line("guest account", "nobody");
    line(
        "passdb backend",
        &format!("tdbsam:{}", dir(layout.private().join("passdb.tdb"))?),
    );
    line("private dir", &dir(layout.private())?);
    line("lock directory", &dir(layout.root.join("lock"))?);
    line("state directory", &dir(layout.root.join("state"))?);
    line("cache directory", &dir(layout.root.join("cache"))?);
    line("pid directory", &dir(layout.run())?);
    line("ncalrpc dir", &dir(layout.run().join("ncalrpc"))?);
    line("log file", &dir(layout.log())?);
    line("max log size", "10000");
    line("logging", "file");
    line("load printers", "no");
    line("printing", "bsd");
    line("printcap name", "/dev/null");
    line("disable spoolss", "yes");
    line("usershare max shares", "0");
    line("registry shares", "no");
    line("obey pam restrictions", "no");
    line("unix password sync", "no");
    let mut out = String::from(header);
    out.push_str(&s);
    for sh in shares {
        check_share_name(&sh.name)?;
        for u in &sh.users {
            check_user_name(u)?;
        }
        out.push_str(&format!("\n[{}]\n", sh.name));
        let mut kv = |k: &str, v: &str| out.push_str(&format!("  {k} = {v}\n"));
        kv(
            "path",
            &conf_value("a share path", &sh.path.to_string_lossy())?,
        );
        kv("read only", if sh.read_only { "yes" } else { "no" });
        kv("browseable", "yes");
        kv("guest ok", "no");
        if !sh.users.is_empty() {
            kv("valid users", &sh.users.join(" "));
        }
        kv("force user", "root");
        kv("force group", "root");
        kv("create mask", "0644");
        kv("directory mask", "0755");
        kv("map archive", "no");
    }
    Ok(out)
}

/// Writes `data` to `path` through a temporary file and a rename, so Samba never reads half.
fn replace_file(path: &Path, data: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io(tmp.display().to_string()))?;
    f.write_all(data.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(io(tmp.display().to_string()))?;
    std::fs::rename(&tmp, path).map_err(io(path.display().to_string()))
}

/// Writes smb.conf; true when its text changed (smbd then needs a reload).
pub fn write_conf(layout: &Layout, text: &str) -> Result<bool> {
    let p = layout.conf();
    if std::fs::read_to_string(&p).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    replace_file(&p, text)?;
    Ok(true)
}

/// The passwd and group files smbd and pdbedit see instead of the host's.
pub fn write_accounts(layout: &Layout, users: &[User]) -> Result<()> {
    let mut passwd = String::from(
        "root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    );
    let mut group = String::from("root:x:0:\nnogroup:x:65534:\n");
    for u in users {
        check_user_name(&u.name)?;
        passwd.push_str(&format!(
            "{n}:x:{id}:{id}:{n}:/nonexistent:/usr/sbin/nologin\n",
            n = u.name,
            id = u.uid
        ));
        group.push_str(&format!("{}:x:{}:\n", u.name, u.uid));
    }
    replace_file(&layout.passwd(), &passwd)?;
    replace_file(&layout.group(), &group)
}

/// Samba's programs, found once.
#[derive(Clone, Debug)]
pub struct Tools {
    smbd: PathBuf,
    smbpasswd: PathBuf,
    pdbedit: PathBuf,
    nss_wrapper: PathBuf,
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn find_nss_wrapper() -> Option<PathBuf> {
    let mut dirs = vec![
        PathBuf::from("/usr/lib64"),
        PathBuf::from("/usr/lib"),
        PathBuf::from("/usr/local/lib"),
    ];
    if let Ok(rd) = std::fs::read_dir("/usr/lib") {
        // Debian's multiarch directories: /usr/lib/x86_64-linux-gnu and the like.
        dirs.extend(
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with("-linux-gnu")),
        );
    }
    dirs.into_iter()
        .map(|d| d.join("libnss_wrapper.so"))
        .find(|p| p.is_file())
}

impl Tools {
    pub fn find() -> Result<Tools> {
        Ok(Tools {
            smbd: find_program("smbd").ok_or(SmbError::Missing("smbd"))?,
            smbpasswd: find_program("smbpasswd").ok_or(SmbError::Missing("smbpasswd"))?,
            pdbedit: find_program("pdbedit").ok_or(SmbError::Missing("pdbedit"))?,
            nss_wrapper: find_nss_wrapper().ok_or(SmbError::Missing("libnss_wrapper.so"))?,
        })
    }

    fn command(&self, layout: &Layout, program: &Path) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(program);
        c.env("NSS_WRAPPER_PASSWD", layout.passwd())
            .env("NSS_WRAPPER_GROUP", layout.group())
            .env("LD_PRELOAD", &self.nss_wrapper)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    async fn run_tool(
        &self,
        tool: &'static str,
        mut cmd: tokio::process::Command,
        input: Option<String>,
    ) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().map_err(io(format!("starting {tool}")))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(text.as_bytes())
                .await
                .map_err(io(format!("writing to {tool}")))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(io(format!("waiting for {tool}")))?;
        if out.status.success() {
            return Ok(());
        }
        let mut output = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if output.is_empty() {
            output = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        Err(SmbError::Tool {
            tool,
            status: out.status,
            output,
        })
    }

    /// Adds `user` to Samba's password database or changes its password. The accounts file
    /// must list the user already.
    pub async fn set_password(&self, layout: &Layout, user: &str, password: &str) -> Result<()> {
        check_user_name(user)?;
        check_password(password)?;
        let mut cmd = self.command(layout, &self.smbpasswd);
        cmd.arg("-c").arg(layout.conf()).args(["-s", "-a", user]);
        self.run_tool("smbpasswd", cmd, Some(format!("{password}\n{password}\n")))
            .await
    }

    /// Gives `user` the password whose NT hash (32 hex digits) another node of a pool
    /// recorded, so one SMB login works on every node. `throwaway` is a random password the
    /// user holds for a moment: pdbedit changes only users the database already has.
    pub async fn set_nt_hash(
        &self,
        layout: &Layout,
        user: &str,
        nt_hash: &str,
        throwaway: &str,
    ) -> Result<()> {
        check_user_name(user)?;
        if nt_hash.len() != 32 || !nt_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SmbError::Password);
        }
        self.set_password(layout, user, throwaway).await?;
        let mut cmd = self.command(layout, &self.pdbedit);
        cmd.arg("-s")
            .arg(layout.conf())
            .args(["-u", user, "--set-nt-hash", nt_hash]);
        self.run_tool("pdbedit", cmd, None).await
    }

    /// Removes `user` from Samba's password database.
    pub async fn delete_user(&self, layout: &Layout, user: &str) -> Result<()> {
        check_user_name(user)?;
        let mut cmd = self.command(layout, &self.pdbedit);
        cmd.arg("-s").arg(layout.conf()).args(["-x", "-u", user]);
        self.run_tool("pdbedit", cmd, None).await
    }
}

/// How `interfaces` names the one address smbd binds. Samba takes a bare address only when a
/// network interface carries it, and lo carries 127.0.0.1 alone, so a gateway on another
/// loopback address (nodes of a cluster on one host) would find "no network interfaces" and
/// smbd would not start. An address with a mask that leaves host bits set is taken as an
/// interface of its own.
fn samba_interface(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) if v4.is_loopback() => format!("{v4}/8"),
        other => other.to_string(),
    }
}

/// A running smbd.
pub struct Smbd {
    child: tokio::process::Child,
    pid_file: PathBuf,
    log: PathBuf,
    /// Where this smbd's lines start in the log, which earlier ones appended to.
    log_start: u64,
}

/// Kills an smbd a previous gateway left running on this state tree (it was killed before it
/// could stop it), so the new one can take the port.
pub fn kill_stale(layout: &Layout) {
    let Ok(text) = std::fs::read_to_string(layout.pid_file()) else {
        return;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return;
    };
    let conf = layout.conf().to_string_lossy().into_owned();
    let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            c.split(|b| *b == 0)
                .any(|a| String::from_utf8_lossy(a) == conf)
        })
        .unwrap_or(false);
    if ours {
        tracing::warn!(pid, "stopping an smbd left running by an earlier gatewayd");
        // SAFETY: kill(2) with a pid read from our own pid file and checked against /proc.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while Path::new(&format!("/proc/{pid}")).exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = std::fs::remove_file(layout.pid_file());
}

impl Smbd {
    /// Starts smbd in the foreground, as a child made by `spawn`. smbd gets SIGTERM when the
    /// *thread* that forked it ends (PR_SET_PDEATHSIG), so `spawn` must fork from a thread
    /// that lives as long as the gateway: a runtime worker can become a blocking-pool thread
    /// (`block_in_place`) and end when idle, and smbd would go with it.
    pub async fn start<F, Fut>(tools: &Tools, layout: &Layout, spawn: F) -> Result<Smbd>
    where
        F: FnOnce(tokio::process::Command) -> Fut,
        Fut: std::future::Future<Output = std::io::Result<tokio::process::Child>>,
    {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(layout.log())
            .map_err(io(layout.log().display().to_string()))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let log2 = log.try_clone().map_err(io("smbd log"))?;
        let mut cmd = tools.command(layout, &tools.smbd);
        // No --no-process-group: smbd leads a group of its own, and the SIGTERM it sends its
        // group when it stops reaches its children, not gatewayd and whatever started it.
        cmd.args(["--foreground", "-s"])
            .arg(layout.conf())
            .stdout(log)
            .stderr(log2)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = spawn(cmd).await.map_err(io("starting smbd"))?;
        let pid_file = layout.pid_file();
        if let Some(pid) = child.id() {
            replace_file(&pid_file, &format!("{pid}\n"))?;
            tracing::info!(pid, conf = %layout.conf().display(), "smbd started");
        }
        Ok(Smbd {
            child,
            pid_file,
            log: layout.log(),
            log_start,
        })
    }

    /// Waits until smbd accepts connections on `addr`, so a share reported added can be used
    /// at once. Fails when smbd exits first or `limit` passes.
    pub async fn wait_listening(&mut self, addr: SocketAddr, limit: Duration) -> Result<()> {
        let target = if addr.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        } else {
            addr
        };
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if tokio::net::TcpStream::connect(target).await.is_ok() {
                return Ok(());
            }
            if !self.running() {
                return Err(SmbError::Io(
                    format!("smbd exited at start (see {})", self.log.display()),
                    std::io::Error::other(format!("smbd said: {}", self.last_words())),
                ));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SmbError::Io(
                    format!(
                        "smbd does not listen on {target} (see {})",
                        self.log.display()
                    ),
                    std::io::ErrorKind::TimedOut.into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines this smbd wrote to its log: why it stopped, said where the error is
    /// reported rather than only in a file on the gateway's host.
    pub fn last_words(&self) -> String {
        const KEEP: usize = 6;
        let text = std::fs::read(&self.log)
            .map(|b| {
                String::from_utf8_lossy(&b[(self.log_start as usize).min(b.len())..]).into_owned()
            })
            .unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            return "nothing".into();
        }
        lines[lines.len().saturating_sub(KEEP)..].join(" | ")
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Makes smbd reread smb.conf (new and removed shares, changed access lists).
    pub fn reload(&self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: signals our own child, which has not been reaped (`id` is Some).
            unsafe {
                libc::kill(pid as i32, libc::SIGHUP);
            }
        }
    }

    /// SIGTERM, then SIGKILL after five seconds.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: as in `reload`.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let _ = std::fs::remove_file(&self.pid_file);
        tracing::info!("smbd stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(name: &str, path: &str) -> Share {
        Share {
            name: name.into(),
            path: path.into(),
            read_only: false,
            users: vec![],
        }
    }

    #[test]
    fn names_that_could_change_the_configuration_are_refused() {
        for bad in [
            "",
            "a]b",
            "x\n[global]",
            "../x",
            "a b",
            "-x",
            "global",
            "IPC$",
            "Homes",
        ] {
            assert!(check_share_name(bad).is_err(), "{bad:?}");
        }
        for good in ["docs", "Team.Share_1", "a-b"] {
            check_share_name(good).unwrap();
        }
        for bad in ["", "Alice", "root", "nobody", "a:b", "x\ny", "1abc"] {
            assert!(check_user_name(bad).is_err(), "{bad:?}");
        }
        check_user_name("alice_2").unwrap();
        assert!(check_password("short").is_err());
        assert!(check_password("long enough\nnext").is_err());
        check_password("long enough").unwrap();
    }

    #[test]
    fn the_configuration_lists_each_share_once_with_its_access() {
        let l = Layout::new("/data/smb");
        let mut ro = share("ro", "/data/smb/mnt/vol/pub");
        ro.read_only = true;
        ro.users = vec!["alice".into(), "bob".into()];
        let text = render_conf(
            &l,
            "127.0.0.1:10445".parse().unwrap(),
            &[share("docs", "/data/smb/mnt/vol/docs"), ro],
        )
        .unwrap();
        assert!(text.contains("  smb ports = 10445\n"));
        assert!(text.contains("  interfaces = 127.0.0.1/8\n  bind interfaces only = yes\n"));
        assert!(text.contains("  passdb backend = tdbsam:/data/smb/private/passdb.tdb\n"));
        assert_eq!(text.matches("\n[docs]\n").count(), 1);
        let ro_section = text.split("\n[ro]\n").nth(1).unwrap();
        assert!(ro_section.contains("  read only = yes\n"));
        assert!(ro_section.contains("  valid users = alice bob\n"));
        assert!(text.contains("  map to guest = Never\n"));

        let any = render_conf(&l, "0.0.0.0:445".parse().unwrap(), &[]).unwrap();
        assert!(!any.contains("interfaces"));
    }

    #[test]
    fn a_path_with_a_line_break_is_refused() {
        let l = Layout::new("/data/smb");
        let bad = share("docs", "/data/smb/mnt/vol/x\n[evil]");
        assert!(matches!(
            render_conf(&l, "127.0.0.1:445".parse().unwrap(), &[bad]),
            Err(SmbError::Unrepresentable(..))
        ));
    }

    #[test]
    fn accounts_and_configuration_are_replaced_whole() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(d.path());
        l.prepare().unwrap();
        write_accounts(
            &l,
            &[User {
                name: "alice".into(),
                uid: FIRST_UID,
            }],
        )
        .unwrap();
        let passwd = std::fs::read_to_string(l.passwd()).unwrap();
        assert!(passwd.contains("\nalice:x:20000:20000:"));
        assert!(passwd.starts_with("root:x:0:0:"));
        assert!(write_conf(&l, "a").unwrap());
        assert!(!write_conf(&l, "a").unwrap());
        assert!(write_conf(&l, "b").unwrap());
    }
}
