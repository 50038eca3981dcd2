//! `xattrop`: atomic arithmetic on xattrs (AFR's changelogs, disperse's sizes and versions).

use super::super::xattr;
use super::common::{Posix, metadata};
use bytes::Bytes;
use engine::*;

impl Posix {
    pub(super) async fn do_xattrop(
        &self,
        loc: &Loc,
        op: XattropOp,
        xattrs: &Xattrs,
    ) -> Result<Xattrs> {
        let (h, loc, xs) = (self.h.clone(), loc.clone(), xattrs.clone());
        metadata(move || {
            let path = h.resolve(&loc)?;
            let g = match loc.gfid {
                Some(g) => g,
                None => h.gfid_of(&path, loc.parent)?,
            };
            // Concurrent changelog updates of one inode must add up.
            let _guard = h.stripe(&g).lock();
            let mut out = Xattrs::new();
            for (k, v) in &xs {
                let old = xattr::get(&path, k)?;
                let new = combine(op, old.as_deref().unwrap_or_default(), v)?;
                // AFR's pre-op and post-op add zero for every replica they do not blame; a
                // value they leave as it was is not written again (each write is a
                // journalled inode update). A missing key is still made, zeros and all.
                if old.as_deref() != Some(new.as_slice()) {
                    xattr::set(&path, k, &new, 0)?;
                }
                out.insert(k.clone(), Bytes::from(new));
            }
            Ok(out)
        })
        .await
    }
}

fn combine(op: XattropOp, old: &[u8], add: &[u8]) -> Result<Vec<u8>> {
    let n = old.len().max(add.len());
    let word = match op {
        XattropOp::AddArray | XattropOp::OrArray => 4,
        XattropOp::AddArray64 => 8,
    };
    if !add.len().is_multiple_of(word) || !old.len().is_multiple_of(word) {
        return Err(Errno::EINVAL);
    }
    let mut out = vec![0u8; n];
    for i in (0..n).step_by(word) {
        let get = |b: &[u8]| -> u64 {
            if i + word <= b.len() {
                if word == 4 {
                    u32::from_be_bytes(b[i..i + 4].try_into().expect("4")) as u64
                } else {
                    u64::from_be_bytes(b[i..i + 8].try_into().expect("8"))
                }
            } else {
                0
            }
        };
        let (a, b) = (get(old), get(add));
        let v = match op {
            XattropOp::OrArray => a | b,
            // Counters are signed on the wire (a post-op sends -1), so add with wrap-around.
            _ if word == 4 => (a as u32).wrapping_add(b as u32) as u64,
            _ => a.wrapping_add(b),
        };
        if word == 4 {
            out[i..i + 4].copy_from_slice(&(v as u32).to_be_bytes());
        } else {
            out[i..i + 8].copy_from_slice(&v.to_be_bytes());
        }
    }
    Ok(out)
}
