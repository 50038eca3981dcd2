//! Resolving a directory by its path inside a volume, as MOUNT does for an export and LOOKUP
//! of ".." for the export's root.

use engine::fop::{Ctx, Errno, Gfid, Loc, Xattrs};
use engine::xlator::XlatorRef;

/// The gfid of a directory by its path inside the volume, checking search permission on the
/// way as a kernel would.
pub(crate) async fn walk(top: &XlatorRef, ctx: &Ctx, path: &str) -> Result<Gfid, Errno> {
    let mut cur = Gfid::ROOT;
    for name in path.split('/').filter(|s| !s.is_empty()) {
        if name == ".." {
            return Err(Errno::EACCES);
        }
        let (ia, _) = top
            .lookup(ctx, &Loc::child(cur, name), &Xattrs::new())
            .await?;
        if !ia.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if !crate::attr::permits(ctx, &ia, crate::attr::X) {
            return Err(Errno::EACCES);
        }
        cur = ia.gfid;
    }
    Ok(cur)
}
