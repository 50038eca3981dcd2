//! Elastic volumes (glusterd's add-brick, remove-brick, replace-brick and rebalance): the
//! commands change the volume record, give the running volume a new client graph, and drive
//! distribute's rebalance (`engine::...::distribute::rebalance`) as a job whose progress is
//! checkpointed in the store, so a rebalance cut short by a restart resumes where it stopped.

mod bricks;
mod run;
mod state;

pub use run::IO_THREADS;
pub use state::Runs;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a rebalance counted, on one subvolume or in all.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Counters {
    /// Files looked at (on this subvolume).
    pub scanned: u64,
    /// Files moved to the subvolume their directory's layout names.
    pub moved: u64,
    /// Files left where they are: already in place, hard links, or no room at the destination.
    pub skipped: u64,
    /// Files whose move failed (they stay where they were, whole).
    pub failed: u64,
    /// Bytes of the files moved.
    pub bytes_moved: u64,
    /// Directories whose layout was fixed.
    pub dirs: u64,
}

/// One subvolume (a replica set, or a brick of a plain distribute volume) in a rebalance.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SubvolProgress {
    /// Distribute's name for it (`VOL-replicate-N` or `VOL-client-N`).
    pub name: String,
    /// Its bricks, HOST:/PATH.
    pub bricks: Vec<String>,
    /// Being emptied by `remove-brick`.
    pub decommissioned: bool,
    pub counters: Counters,
}

/// `volume rebalance NAME status` and `volume remove-brick NAME ... status`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RebalanceStatus {
    pub volume: String,
    /// `rebalance`, `fix-layout` or `remove-brick`.
    pub kind: String,
    /// `not started`, `in progress`, `stopped`, `completed` or `failed`.
    pub state: String,
    /// Milliseconds since the epoch when it first started (kept across a resume).
    pub started_ms: u64,
    /// Seconds it has run, over all its runs.
    pub elapsed_secs: f64,
    /// Seconds left at the rate so far, from the files still to scan (None until it knows).
    pub eta_secs: Option<f64>,
    /// Files on the volume when it started (what the ETA is against).
    pub files_total: u64,
    /// Times it was resumed after gatewayd stopped in the middle.
    pub resumed: u32,
    /// Why it failed or stopped, if it did.
    pub message: Option<String>,
    pub subvolumes: Vec<SubvolProgress>,
    pub totals: Counters,
}

/// The step of `volume remove-brick NAME BRICK... ACTION`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RemoveAction {
    /// Stop placing files on the bricks and move their files off.
    Start,
    /// Stop moving; the bricks stay in the volume.
    Stop,
    /// Take the bricks out; refused until everything moved off them.
    Commit,
    /// Take the bricks out now, with whatever they still hold.
    Force,
}

/// `volume rebalance NAME [fix-layout] start|stop`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RebalanceAction {
    Start,
    Stop,
}

#[cfg(test)]
mod tests {
    use crate::volume::{BrickRecord, VolumeRecord};

    fn bricks(n: u16) -> Vec<BrickRecord> {
        (0..n)
            .map(|i| BrickRecord::new("127.0.0.1".into(), format!("/b{i}"), 50000 + i))
            .collect()
    }

    #[test]
    fn elastic_state_reaches_the_volfile_and_brick_names_stay() {
        let mut v = VolumeRecord::with_layout("vol", bricks(6), 2, 0).unwrap();
        v.commit_hash = Some(77);
        v.bricks[4].decommissioned = true;
        v.bricks[5].decommissioned = true;
        assert_eq!(v.decommissioned(), vec![2]);
        let text = v.client_volfile(42, "127.0.0.1");
        engine::graph::Graph::from_text(&text, &engine::registry::Registry::client_side()).unwrap();
        let dht = &text[text.find("type cluster/distribute").unwrap()..];
        assert!(dht.contains("option commit-hash 77"), "{dht}");
        assert!(
            dht.contains("option decommissioned-bricks vol-replicate-2"),
            "{dht}"
        );
        // Taking out the first set keeps the other bricks' translator names.
        for i in 0..v.bricks.len() {
            v.bricks[i].id.get_or_insert(i);
        }
        v.bricks.drain(0..2);
        assert_eq!(v.client_name(0), "vol-client-2");
        assert_eq!(v.next_brick_id(), 6);
        let text = v.client_volfile(42, "127.0.0.1");
        engine::graph::Graph::from_text(&text, &engine::registry::Registry::client_side()).unwrap();
        assert!(text.contains("option afr-pending-xattr vol-client-2,vol-client-3"));
    }
}
