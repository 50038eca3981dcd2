//! Data heal (GlusterFS's afr-self-heal-data.c): a stale replica's contents made equal to the
//! source's, block by block.

use super::super::changelog::{self, TxnType};
use super::super::common::{Afr, SplitBrainChoice};
use super::common::{HEAL_BLOCK, Outcome};
use crate::fop::*;
use std::sync::Arc;

impl Afr {
    pub(super) async fn heal_data_locked(
        self: &Arc<Self>,
        ctx: &Ctx,
        g: Gfid,
        choice: Option<SplitBrainChoice>,
        locked: &[bool],
    ) -> Result<Outcome> {
        let (replies, answered, c) = self
            .locked_changelog(ctx, g, TxnType::Data, locked, |_| true)
            .await?;
        if !c.needs_heal() {
            return Ok(Outcome::Clean);
        }
        let d = changelog::find_direction(&c, &answered).map_err(|_| Errno::ENOTCONN)?;
        let mut sources: Vec<bool> = d.sources.clone();
        if let Some(a) = self.arbiter {
            sources[a] = false;
        }
        let source = if sources.iter().any(|s| *s) {
            // Several sources (only dirty marks): the one that witnessed most, then the first.
            (0..self.n())
                .filter(|i| sources[*i])
                .max_by_key(|i| (d.witness[*i], std::cmp::Reverse(*i)))
        } else {
            match choice.or(self.favorite) {
                Some(ch) => {
                    let s = self.choose(ch, &replies);
                    if s.is_none() {
                        tracing::warn!(xlator = %self.base.name, gfid = %g, ?ch, "split-brain: the policy does not pick a copy");
                    }
                    s
                }
                None => None,
            }
        };
        let Some(src) = source else {
            if d.split_brain() {
                tracing::warn!(xlator = %self.base.name, gfid = %g, path = %self.where_seen(g), "data split-brain: left for an operator (gwctl volume heal VOL split-brain …)");
                return Ok(Outcome::SplitBrain);
            }
            // Only the arbiter is good, and it holds no data: wait for a data replica.
            return Err(Errno::ENOTCONN);
        };
        let src_ia = replies[src].as_ref().expect("source answered").0.clone();
        let sinks: Vec<usize> = (0..self.n())
            .filter(|i| *i != src && answered[*i] && !self.is_arbiter(*i))
            .collect();
        let src_fd = Fd::anonymous(g);
        for &k in &sinks {
            self.copy_data(ctx, src, k, &src_fd, &src_ia).await?;
        }
        self.converge_times(ctx, g, &replies, &answered, Some(src))
            .await;
        self.clear_marks(ctx, g, TxnType::Data, &c, &answered).await;
        Ok(Outcome::Healed)
    }

    /// Makes replica `k`'s data equal to `src`'s: with the diff algorithm only the blocks whose
    /// checksums differ are read and written.
    pub(super) async fn copy_data(
        &self,
        ctx: &Ctx,
        src: usize,
        k: usize,
        src_fd: &FdRef,
        src_ia: &Iatt,
    ) -> Result<()> {
        let g = src_ia.gfid;
        let sink_fd = Fd::anonymous(g);
        let sink_size = self.sub(k).fstat(ctx, &sink_fd).await?.size;
        let mut off = 0u64;
        let mut written = 0u64;
        while off < src_ia.size {
            let want = (src_ia.size - off).min(HEAL_BLOCK as u64) as u32;
            // diff: both bricks checksum the block where the sink has one; only a block whose
            // checksums differ crosses the wire.
            if self.diff && off < sink_size {
                let (a, b) = futures::join!(
                    self.sub(src).rchecksum(ctx, src_fd, off, want),
                    self.sub(k).rchecksum(ctx, &sink_fd, off, want)
                );
                if a? == b? {
                    off += want as u64;
                    continue;
                }
            }
            let a = self.sub(src).read(ctx, src_fd, off, want).await?;
            if a.is_empty() {
                break;
            }
            let len = a.len() as u64;
            self.sub(k).write(ctx, &sink_fd, off, a).await?;
            written += len;
            off += want as u64;
        }
        if sink_size != src_ia.size {
            self.sub(k).ftruncate(ctx, &sink_fd, src_ia.size).await?;
        }
        // The copy keeps the source's times, as GlusterFS's data heal does.
        let times = SetAttr {
            atime: Some(SetTime::At(src_ia.atime)),
            mtime: Some(SetTime::At(src_ia.mtime)),
            ..Default::default()
        };
        self.sub(k).setattr(ctx, &Loc::gfid(g), &times).await?;
        tracing::info!(xlator = %self.base.name, gfid = %g, path = %self.where_seen(g), from = %self.names[src], to = %self.names[k], size = src_ia.size, written, "data healed");
        Ok(())
    }
}
