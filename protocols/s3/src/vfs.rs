//! Paths over the translator graph: what the S3 frontend needs of a file system (walk a key to
//! its inode, make parent directories, stream a file in and out), built from the same fops the
//! FUSE frontend sends. Every call goes through the graph's top translator, so distribute and
//! whatever sits below it see S3 traffic exactly as they see FUSE traffic.

use bytes::{Bytes, BytesMut};
use engine::fop::{Ctx, Errno, FdRef, Gfid, Iatt, Loc, NewEntry, Result, Timespec, Xattrs};
use engine::xlator::XlatorRef;
use futures::StreamExt;
use std::sync::Arc;

/// Size of the writes and reads sent to the graph: large enough that a brick round trip is
/// amortised over a lot of data, and the size FUSE and NFS (rtmax/wtmax) use too.
pub const IO_BLOCK: usize = 1 << 20;
/// Writes or reads of one object in flight at once.
const IO_DEPTH: usize = 4;
/// The volume-root directory that holds uploads in progress. The volume's `features/reserved`
/// hides it from the other frontends (the gateway names it in the volfile), and listings skip
/// it, so staged data is never seen as a file or an object.
pub const STAGING_DIR: &str = ".s3-staging";

/// What a PUT's staging file next to its key carries in its name (`.NAME.s3tmp-ID`); hidden
/// from the other frontends as `STAGING_DIR` is.
pub const STAGING_INFIX: &str = ".s3tmp-";

/// A PUT's staging file next to its key.
pub fn is_staging_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(STAGING_INFIX)
}

/// Seconds without a write after which a staging file is taken for a crash's leftover.
pub const STALE_STAGING_SECS: i64 = 3600;

#[derive(Clone)]
pub struct Vfs {
    pub top: XlatorRef,
    pub ctx: Ctx,
}

/// An open file that is released (asynchronously) when the last user drops it.
pub struct OpenFile {
    pub fd: FdRef,
    top: XlatorRef,
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if self.fd.anonymous {
            return;
        }
        let top = self.top.clone();
        let fd = self.fd.clone();
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move { top.release(&fd).await });
        }
    }
}

pub fn new_entry(mode: u32, xattrs: Xattrs) -> NewEntry {
    NewEntry {
        gfid: Gfid::random(),
        mode,
        umask: 0o022,
        rdev: 0,
        xattrs,
        ..Default::default()
    }
}

impl Vfs {
    /// A view of the graph as the S3 frontend: its fops are counted as "s3", and it sees the
    /// names the volume reserves for it (`STAGING_DIR`, staging files).
    pub fn new(top: XlatorRef) -> Vfs {
        Vfs {
            top,
            ctx: Ctx {
                protocol: "s3",
                sees_reserved: true,
                ..Ctx::root()
            },
        }
    }

    /// The same view for the frontend's own bookkeeping (a cache kept in an xattr), not a
    /// user's change: `features/utime` moves none of the file's times for it.
    pub fn internal(&self) -> Vfs {
        Vfs {
            ctx: Ctx {
                pid: engine::fop::INTERNAL_PID,
                ..self.ctx.clone()
            },
            ..self.clone()
        }
    }

    pub async fn lookup(&self, parent: Gfid, name: &str, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        self.top
            .lookup(&self.ctx, &Loc::child(parent, name), want)
            .await
    }

    /// A lookup whose answer is used for the inode's gfid, type and xattrs only (a bucket, a
    /// directory on a key's way): the caches may answer it with a directory's attributes from
    /// before this gateway's latest PUTs and DELETEs in it (`Ctx::attrs_may_lag`), so busy
    /// buckets are not looked up on every brick for each request.
    pub async fn find(&self, parent: Gfid, name: &str, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        let ctx = Ctx {
            attrs_may_lag: true,
            ..self.ctx.clone()
        };
        self.top.lookup(&ctx, &Loc::child(parent, name), want).await
    }

    pub async fn lookup_gfid(&self, gfid: Gfid, want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        self.top.lookup(&self.ctx, &Loc::gfid(gfid), want).await
    }

    /// Walks `names` below `start`; ENOTDIR when a non-final component is a file.
    pub async fn walk(&self, start: Gfid, names: &[&str], want: &Xattrs) -> Result<(Iatt, Xattrs)> {
        let empty = Xattrs::new();
        let mut cur = start;
        for (i, n) in names.iter().enumerate() {
            let last = i + 1 == names.len();
            let (ia, x) = if last {
                self.lookup(cur, n, want).await?
            } else {
                self.find(cur, n, &empty).await?
            };
            if last {
                return Ok((ia, x));
            }
            if !ia.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            cur = ia.gfid;
        }
        self.lookup_gfid(start, want).await
    }

    /// Makes every missing directory of `names` below `start` and returns the last one's gfid;
    /// ENOTDIR when one of them is a file. Concurrent makers of the same directory both win.
    pub async fn mkdir_p(&self, start: Gfid, names: &[&str]) -> Result<Gfid> {
        let mut cur = start;
        for n in names {
            let ia = match self.find(cur, n, &Xattrs::new()).await {
                Ok((ia, _)) => ia,
                Err(Errno::ENOENT) => {
                    let loc = Loc::child(cur, *n);
                    match self
                        .top
                        .mkdir(
                            &self.ctx,
                            &loc,
                            &new_entry(libc::S_IFDIR | 0o755, Xattrs::new()),
                        )
                        .await
                    {
                        Ok((ia, _)) => ia,
                        Err(Errno::EEXIST) => self.lookup(cur, n, &Xattrs::new()).await?.0,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            };
            if !ia.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            cur = ia.gfid;
        }
        Ok(cur)
    }

    pub async fn create(
        &self,
        parent: Gfid,
        name: &str,
        xattrs: Xattrs,
    ) -> Result<(OpenFile, Iatt)> {
        let (fd, ia, _) = self
            .top
            .create(
                &self.ctx,
                &Loc::child(parent, name),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                &new_entry(libc::S_IFREG | 0o644, xattrs),
            )
            .await?;
        Ok((
            OpenFile {
                fd,
                top: self.top.clone(),
            },
            ia,
        ))
    }

    /// Creates `name` holding all of `data` and `xattrs` in one create, stamped with the time
    /// `at` (the times it reports unless the volume keeps no times of its own).
    pub async fn create_whole(
        &self,
        parent: Gfid,
        name: &str,
        xattrs: Xattrs,
        data: Bytes,
        at: Timespec,
    ) -> Result<Iatt> {
        let entry = NewEntry {
            data,
            ..new_entry(libc::S_IFREG | 0o644, xattrs)
        };
        let (fd, ia, _) = self
            .top
            .create(
                &self.ctx.at(at),
                &Loc::child(parent, name),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                &entry,
            )
            .await?;
        drop(OpenFile {
            fd,
            top: self.top.clone(),
        });
        Ok(ia)
    }

    pub async fn open(&self, gfid: Gfid, flags: i32) -> Result<OpenFile> {
        let fd = self.top.open(&self.ctx, &Loc::gfid(gfid), flags).await?;
        Ok(OpenFile {
            fd,
            top: self.top.clone(),
        })
    }

    /// An anonymous fd: reads by gfid with no OPEN or RELEASE round trip (the brick keeps a
    /// cache of such fds), as GlusterFS's NFS server and open-behind do.
    pub fn anonymous(&self, gfid: Gfid) -> OpenFile {
        OpenFile {
            fd: engine::fop::Fd::anonymous(gfid),
            top: self.top.clone(),
        }
    }

    /// Writes a stream of chunks from offset 0, coalesced into IO_BLOCK writes with a few in
    /// flight; `seen` gets every chunk in order (for the MD5). Returns the bytes written.
    ///
    /// Coalescing copies each chunk once: HTTP bodies arrive in pieces of a few KiB, and one
    /// brick round trip per piece would cost far more than the copy.
    pub async fn write_stream<S, E>(
        &self,
        f: &OpenFile,
        mut body: S,
        mut seen: impl FnMut(&[u8]),
    ) -> std::result::Result<(u64, Option<Iatt>), WriteError<E>>
    where
        S: futures::Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    {
        let mut inflight = futures::stream::FuturesOrdered::new();
        let mut buf = BytesMut::new();
        let mut queued = 0u64;
        // The file as the last write to land left it: the greatest (mtime, size) any write
        // reported, so the caller needs no extra stat.
        let mut last: Option<Iatt> = None;
        let mut keep = |ia: Iatt| {
            if last.as_ref().is_none_or(|l| {
                (l.mtime.sec, l.mtime.nsec, l.size) <= (ia.mtime.sec, ia.mtime.nsec, ia.size)
            }) {
                last = Some(ia);
            }
        };
        let send = |data: Bytes, at: u64| {
            let top = self.top.clone();
            let ctx = self.ctx.clone();
            let fd = f.fd.clone();
            async move { top.write(&ctx, &fd, at, data).await }
        };
        loop {
            let chunk = match body.next().await {
                Some(Ok(c)) => Some(c),
                Some(Err(e)) => return Err(WriteError::Body(e)),
                None => None,
            };
            let end = chunk.is_none();
            if let Some(c) = chunk {
                seen(&c);
                // A chunk that is already a whole block goes as it is, without a copy.
                if buf.is_empty() && c.len() == IO_BLOCK {
                    inflight.push_back(send(c, queued));
                    queued += IO_BLOCK as u64;
                } else {
                    buf.extend_from_slice(&c);
                }
            }
            while buf.len() >= IO_BLOCK || (end && !buf.is_empty()) {
                let n = buf.len().min(IO_BLOCK);
                let data = buf.split_to(n).freeze();
                inflight.push_back(send(data, queued));
                queued += n as u64;
            }
            while inflight.len() > IO_DEPTH || (end && !inflight.is_empty()) {
                if let Some(r) = inflight.next().await {
                    keep(r.map_err(WriteError::Fs)?);
                }
            }
            if end {
                return Ok((queued, last));
            }
        }
    }

    /// Reads `[start, end)` of an open file into a channel of blocks, a few reads ahead.
    pub fn read_range(
        &self,
        f: Arc<OpenFile>,
        start: u64,
        end: u64,
    ) -> tokio::sync::mpsc::Receiver<std::io::Result<Bytes>> {
        let (tx, rx) = tokio::sync::mpsc::channel(IO_DEPTH);
        let vfs = self.clone();
        tokio::spawn(async move {
            let mut reads = futures::stream::iter((start..end).step_by(IO_BLOCK).map(|at| {
                let vfs = vfs.clone();
                let f = f.clone();
                let n = (end - at).min(IO_BLOCK as u64) as u32;
                async move { (n, vfs.top.read(&vfs.ctx, &f.fd, at, n).await) }
            }))
            .buffered(IO_DEPTH);
            while let Some((want, r)) = reads.next().await {
                let item = match r {
                    // A file that shrank under us must not give a short body after its length
                    // was promised in the headers.
                    Ok(b) if (b.len() as u32) < want => Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file shrank while it was read",
                    )),
                    Ok(b) => Ok(b),
                    Err(e) => Err(std::io::Error::from_raw_os_error(e.code())),
                };
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    break;
                }
            }
        });
        rx
    }

    /// Every entry of a directory: name and whether it is a directory, unsorted.
    pub async fn list_dir(&self, gfid: Gfid) -> Result<Vec<(String, bool)>> {
        Ok(self
            .list_dir_with(gfid, &Xattrs::new())
            .await?
            .into_iter()
            .map(|e| (e.name, e.is_dir))
            .collect())
    }

    /// Every entry of a directory with its attributes, when the graph gave them, and the
    /// xattrs named in `want` (readdirp), unsorted.
    pub async fn list_dir_with(&self, gfid: Gfid, want: &Xattrs) -> Result<Vec<Listed>> {
        let fd = self.top.opendir(&self.ctx, &Loc::gfid(gfid)).await?;
        let f = OpenFile {
            fd,
            top: self.top.clone(),
        };
        let mut out = Vec::new();
        let mut off = 0u64;
        loop {
            let ents = self
                .top
                .readdirp(&self.ctx, &f.fd, off, 64 * 1024, want)
                .await?;
            let Some(last) = ents.last() else { break };
            off = last.d_off;
            for e in ents {
                if is_staging_name(&e.name) {
                    self.sweep_if_stale(gfid, e.name);
                    continue;
                }
                if e.name == "." || e.name == ".." {
                    continue;
                }
                let (is_dir, iatt, xattrs) = match e.iatt {
                    Some(ia) => (ia.is_dir(), Some(ia), e.xattrs),
                    // No attributes from the graph: a lookup when the type is unknown, or for
                    // a directory's wanted xattrs.
                    None if e.d_type == libc::DT_UNKNOWN
                        || (e.d_type == libc::DT_DIR && !want.is_empty()) =>
                    {
                        match self.lookup(gfid, &e.name, want).await {
                            Ok((ia, x)) => (ia.is_dir(), Some(ia), x),
                            Err(_) => continue,
                        }
                    }
                    None => (e.d_type == libc::DT_DIR, None, Xattrs::new()),
                };
                out.push(Listed {
                    name: e.name,
                    is_dir,
                    iatt,
                    xattrs,
                });
            }
        }
        Ok(out)
    }

    /// A PUT's staging file that a crash left behind is removed when a listing passes it and
    /// nothing has written to it for an hour (a live upload writes it continuously).
    fn sweep_if_stale(&self, dir: Gfid, name: String) {
        let (top, ctx) = (self.top.clone(), self.ctx.clone());
        tokio::spawn(async move {
            let loc = Loc::child(dir, name.as_str());
            let Ok((ia, _)) = top.lookup(&ctx, &loc, &Xattrs::new()).await else {
                return;
            };
            let age = Timespec::now().sec - ia.mtime.sec;
            if ia.is_reg() && age > STALE_STAGING_SECS {
                match top.unlink(&ctx, &loc).await {
                    Ok(_) => tracing::info!(file = %name, age, "removed a stale S3 staging file"),
                    Err(e) => tracing::warn!(file = %name, "removing a stale S3 staging file: {e}"),
                }
            }
        });
    }

    /// Whether a directory holds any entry (stops at the first): the look before an rmdir.
    pub async fn has_entries(&self, gfid: Gfid) -> Result<bool> {
        let f = OpenFile {
            fd: self.top.opendir(&self.ctx, &Loc::gfid(gfid)).await?,
            top: self.top.clone(),
        };
        // Every batch until a name or the end: the first batch may hold only one brick's
        // `.` and `..`, and an rmdir on that word would take the directory off the bricks that
        // are empty while another still holds a name (a partly removed directory).
        let mut off = 0;
        loop {
            let ents = self.top.readdir(&self.ctx, &f.fd, off, 4096).await?;
            let Some(last) = ents.last() else {
                return Ok(false);
            };
            if ents.iter().any(|e| e.name != "." && e.name != "..") {
                return Ok(true);
            }
            off = last.d_off;
        }
    }

    pub async fn unlink(&self, parent: Gfid, name: &str) -> Result<()> {
        self.top
            .unlink(&self.ctx, &Loc::child(parent, name))
            .await
            .map(|_| ())
    }

    pub async fn rmdir(&self, parent: Gfid, name: &str) -> Result<()> {
        self.top
            .rmdir(&self.ctx, &Loc::child(parent, name))
            .await
            .map(|_| ())
    }

    pub async fn mkdir(&self, parent: Gfid, name: &str, xattrs: Xattrs) -> Result<Iatt> {
        self.top
            .mkdir(
                &self.ctx,
                &Loc::child(parent, name),
                &new_entry(libc::S_IFDIR | 0o755, xattrs),
            )
            .await
            .map(|(ia, _)| ia)
    }

    pub async fn rename(&self, from: (Gfid, &str), to: (Gfid, &str)) -> Result<Iatt> {
        self.top
            .rename(
                &self.ctx,
                &Loc::child(from.0, from.1),
                &Loc::child(to.0, to.1),
            )
            .await
            .map(|(ia, _, _)| ia)
    }

    pub async fn getxattr(&self, gfid: Gfid, name: Option<&str>) -> Result<Xattrs> {
        self.top.getxattr(&self.ctx, &Loc::gfid(gfid), name).await
    }

    pub async fn setxattrs(&self, gfid: Gfid, x: &Xattrs) -> Result<()> {
        if x.is_empty() {
            return Ok(());
        }
        self.top.setxattr(&self.ctx, &Loc::gfid(gfid), x, 0).await
    }

    pub async fn removexattr(&self, gfid: Gfid, name: &str) -> Result<()> {
        match self
            .top
            .removexattr(&self.ctx, &Loc::gfid(gfid), name)
            .await
        {
            Ok(()) | Err(Errno::ENODATA) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes a directory tree (staged uploads). Best effort on the contents; the result is
    /// the final rmdir's.
    pub async fn remove_tree(&self, parent: Gfid, name: &str) -> Result<()> {
        let (ia, _) = self.lookup(parent, name, &Xattrs::new()).await?;
        if !ia.is_dir() {
            return self.unlink(parent, name).await;
        }
        for (n, is_dir) in self.list_dir(ia.gfid).await? {
            if is_dir {
                let _ = Box::pin(self.remove_tree(ia.gfid, &n)).await;
            } else {
                let _ = self.unlink(ia.gfid, &n).await;
            }
        }
        self.rmdir(parent, name).await
    }
}

/// A directory entry as `list_dir_with` gives it.
#[derive(Clone, Debug)]
pub struct Listed {
    pub name: String,
    pub is_dir: bool,
    pub iatt: Option<Iatt>,
    pub xattrs: Xattrs,
}

#[derive(Debug)]
pub enum WriteError<E> {
    Body(E),
    Fs(Errno),
}
