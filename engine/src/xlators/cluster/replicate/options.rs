//! `cluster/replicate`'s options, under GlusterFS's names (`gluster volume set VOL cluster.<key>`).

use crate::options::{OptKind, OptionSpec};

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new(
        "afr-pending-xattr",
        OptKind::List,
        None,
        "the changelog key of each replica, in order: trusted.afr.<name> (default <volume>-client-<N>, as glusterd writes them)",
    ),
    OptionSpec::new(
        "arbiter-count",
        OptKind::Int { min: 0, max: 1 },
        Some("0"),
        "1: the last replica is an arbiter, holding names and metadata but no data",
    ),
    OptionSpec::new(
        "quorum-type",
        OptKind::Enum(&["none", "auto", "fixed"]),
        Some("none"),
        "writes need: none, any replica up; auto, more than half (half with the first replica among them); fixed, quorum-count replicas",
    ),
    OptionSpec::new(
        "quorum-count",
        OptKind::Int { min: 1, max: 64 },
        None,
        "replicas that must be up for a write with quorum-type fixed",
    ),
    OptionSpec::new(
        "favorite-child-policy",
        OptKind::Enum(&["none", "size", "ctime", "mtime", "majority"]),
        Some("none"),
        "resolve split-brain by itself, picking the bigger file, the newer ctime or mtime, or the copy a majority agrees on; none leaves it to an operator",
    ),
    OptionSpec::new(
        "read-hash-mode",
        OptKind::Int { min: 0, max: 2 },
        Some("1"),
        "which good replica serves reads: 0 the first up, 1 by the file's gfid, 2 by gfid and client",
    ),
    OptionSpec::new(
        "data-self-heal",
        OptKind::Bool,
        Some("on"),
        "heal file data when a lookup finds it pending",
    ),
    OptionSpec::new(
        "metadata-self-heal",
        OptKind::Bool,
        Some("on"),
        "heal ownership, mode and xattrs when a lookup finds them pending",
    ),
    OptionSpec::new(
        "entry-self-heal",
        OptKind::Bool,
        Some("on"),
        "heal directory entries when a lookup finds them pending",
    ),
    OptionSpec::new(
        "data-self-heal-algorithm",
        OptKind::Enum(&["diff", "full"]),
        Some("diff"),
        "diff: compare block checksums and copy only blocks that differ; full: copy everything",
    ),
    OptionSpec::new(
        "eager-lock",
        OptKind::Bool,
        Some("on"),
        "keep a file's transaction lock across writes of one fd while no other client wants it",
    ),
    OptionSpec::new(
        "post-op-delay-secs",
        OptKind::Int { min: 0, max: 60 },
        Some("1"),
        "seconds an idle file keeps its eager lock and dirty mark before the post-op",
    ),
    OptionSpec::new(
        "self-heal-daemon",
        OptKind::Bool,
        Some("on"),
        "gatewayd's heal daemon crawls the bricks' indices",
    ),
];
