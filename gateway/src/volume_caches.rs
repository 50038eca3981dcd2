//! A volume's caching: `performance/md-cache`, `open-behind`, `quick-read`, `readdir-ahead`
//! and `write-behind` in its client graph and the bricks' `features/upcall` that keeps them coherent (GlusterFS's options, with
//! the defaults of glusterd's group `metadata-cache`).

use crate::volume::VolumeRecord;

/// Bricks tell clients what other clients change (GlusterFS's `features/upcall`).
pub const CACHE_INVALIDATION: &str = "features.cache-invalidation";
/// How long a brick keeps telling a client of an inode it last touched, seconds.
pub const CACHE_INVALIDATION_TIMEOUT: &str = "features.cache-invalidation-timeout";
/// Whether the client graph has `performance/md-cache` (GlusterFS's name for the switch).
pub const STAT_PREFETCH: &str = "performance.stat-prefetch";
pub const MD_CACHE_TIMEOUT: &str = "performance.md-cache-timeout";
/// md-cache trusts the bricks' upcalls (and keeps entries long); needs features.cache-invalidation.
pub const MD_CACHE_INVALIDATION: &str = "performance.cache-invalidation";
pub const CACHE_CAPABILITY_XATTRS: &str = "performance.cache-capability-xattrs";
/// Whether the client graph has `performance/open-behind`.
pub const OPEN_BEHIND: &str = "performance.open-behind";
/// Whether the client graph has `performance/quick-read`.
pub const QUICK_READ: &str = "performance.quick-read";
pub const QR_CACHE_TIMEOUT: &str = "performance.qr-cache-timeout";
/// Whether the client graph has `performance/readdir-ahead`.
pub const READDIR_AHEAD: &str = "performance.readdir-ahead";
pub const RDA_REQUEST_SIZE: &str = "performance.rda-request-size";
/// Whether the client graph has `performance/write-behind`.
pub const WRITE_BEHIND: &str = "performance.write-behind";
/// A close is answered before the data written behind reaches the bricks.
pub const FLUSH_BEHIND: &str = "performance.flush-behind";
pub const WRITE_BEHIND_WINDOW_SIZE: &str = "performance.write-behind-window-size";
pub const AGGREGATE_SIZE: &str = "performance.aggregate-size";
/// Our defaults, glusterd's group `metadata-cache` (GlusterFS itself ships cache-invalidation
/// off and md-cache-timeout 1): a gateway serves several protocols and often several
/// gateways share a volume, so the metadata cache that makes stat cheap must be one the bricks
/// keep coherent.
pub const CACHE_INVALIDATION_TIMEOUT_DEFAULT: u64 = 600;
/// md-cache's timeout when nothing tells it of changes (GlusterFS's default).
pub const MD_CACHE_TIMEOUT_UNCOORDINATED: u64 = 1;

impl VolumeRecord {
    fn bool_option(&self, key: &str, default: bool) -> bool {
        self.options
            .get(key)
            .and_then(|v| engine::options::parse_bool(v).ok())
            .unwrap_or(default)
    }

    /// `features.cache-invalidation` (on unless set off): what the bricks' features/upcall does.
    pub fn cache_invalidation(&self) -> bool {
        self.bool_option(CACHE_INVALIDATION, true)
    }

    pub fn cache_invalidation_timeout(&self) -> u64 {
        self.options
            .get(CACHE_INVALIDATION_TIMEOUT)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(CACHE_INVALIDATION_TIMEOUT_DEFAULT)
    }

    /// Adds the caches above `below` to the client volfile `out`, in glusterd's order (md-cache
    /// on top, then open-behind, quick-read, readdir-ahead and write-behind), each unless
    /// switched off (write-behind only when switched on); returns what the next translator
    /// stands on.
    pub(crate) fn add_caches(&self, out: &mut String, below: String) -> String {
        let mut below = below;
        // Off unless set: with it on, tests that write through FUSE and then stop a brick at
        // once found the data not yet stored (flush-behind), and in e2e `elastic` a small file
        // written and closed through FUSE while bricks were added or files moved sometimes
        // read back empty; until both are settled it is opt-in.
        if self.bool_option(WRITE_BEHIND, false) {
            let mut opts = format!(
                "    option flush-behind {}\n",
                if self.bool_option(FLUSH_BEHIND, true) {
                    "on"
                } else {
                    "off"
                }
            );
            for (key, xlator_key) in [
                (WRITE_BEHIND_WINDOW_SIZE, "cache-size"),
                (AGGREGATE_SIZE, "aggregate-size"),
            ] {
                if let Some(v) = self.options.get(key) {
                    opts += &format!("    option {xlator_key} {v}\n");
                }
            }
            *out += &format!(
                "\nvolume {name}-write-behind\n    type performance/write-behind\n{opts}    subvolumes {below}\nend-volume\n",
                name = self.name
            );
            below = format!("{}-write-behind", self.name);
        }
        if self.bool_option(READDIR_AHEAD, true) {
            let opts = match self.options.get(RDA_REQUEST_SIZE) {
                Some(v) => format!("    option rda-request-size {v}\n"),
                None => String::new(),
            };
            *out += &format!(
                "\nvolume {name}-readdir-ahead\n    type performance/readdir-ahead\n{opts}    subvolumes {below}\nend-volume\n",
                name = self.name
            );
            below = format!("{}-readdir-ahead", self.name);
        }
        if self.bool_option(QUICK_READ, true) {
            *out += &format!(
                "\nvolume {name}-quick-read\n    type performance/quick-read\n    option cache-timeout {}\n    subvolumes {below}\nend-volume\n",
                self.cache_timeout(QR_CACHE_TIMEOUT),
                name = self.name
            );
            below = format!("{}-quick-read", self.name);
        }
        if self.bool_option(OPEN_BEHIND, true) {
            *out += &format!(
                "\nvolume {name}-open-behind\n    type performance/open-behind\n    subvolumes {below}\nend-volume\n",
                name = self.name
            );
            below = format!("{}-open-behind", self.name);
        }
        match self.md_cache_volume(&below) {
            Some(md) => {
                *out += &md;
                format!("{}-md-cache", self.name)
            }
            None => below,
        }
    }

    /// Whether a cache hears of other clients' changes: the bricks send upcalls and the
    /// cache listens (`performance.cache-invalidation`, md-cache's switch, for all of them).
    fn upcalls_heard(&self) -> bool {
        self.cache_invalidation() && self.bool_option(MD_CACHE_INVALIDATION, true)
    }

    /// A cache's timeout option `key`: with upcalls it keeps entries long, but never longer
    /// than the bricks remember who holds them (then a change would go untold); without, one
    /// second, GlusterFS's default. What is set is taken, even if unsafe.
    fn cache_timeout(&self, key: &str) -> u64 {
        let given = self
            .options
            .get(key)
            .and_then(|v| v.trim().parse::<u64>().ok());
        if self.upcalls_heard() {
            given
                .unwrap_or(CACHE_INVALIDATION_TIMEOUT_DEFAULT)
                .min(self.cache_invalidation_timeout())
        } else {
            given.unwrap_or(MD_CACHE_TIMEOUT_UNCOORDINATED)
        }
    }

    /// The client graph's md-cache, above `below`, or None with `performance.stat-prefetch`
    /// off. With upcalls it keeps entries long, but never longer than the bricks remember
    /// who holds them (then a change would go untold); without, one second.
    fn md_cache_volume(&self, below: &str) -> Option<String> {
        if !self.bool_option(STAT_PREFETCH, true) {
            return None;
        }
        let upcalls = self.upcalls_heard();
        let timeout = self.cache_timeout(MD_CACHE_TIMEOUT);
        let mut opts = format!(
            "    option md-cache-timeout {timeout}\n    option cache-invalidation {}\n",
            if upcalls { "on" } else { "off" }
        );
        if !self.bool_option(CACHE_CAPABILITY_XATTRS, true) {
            opts += "    option cache-capability-xattrs off\n";
        }
        if upcalls {
            // The S3 frontend reads a bucket's access settings (these xattrs of its directory)
            // for every request; upcalls tell another gateway's change of them as they tell
            // any xattr change.
            opts += &format!(
                "    option xattr-cache-list {}*\n",
                protocols_s3::access::keys::PREFIX
            );
        }
        Some(format!(
            "\nvolume {name}-md-cache\n    type performance/md-cache\n{opts}    subvolumes {below}\nend-volume\n",
            name = self.name
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::tests::{bricks, parse_checked};

    #[test]
    fn md_cache_follows_stat_prefetch_and_cache_invalidation() {
        let mut v = VolumeRecord::with_layout("vol", bricks(4), 2, 0).unwrap();
        let md = |v: &VolumeRecord| {
            let text = v.client_volfile(42, "127.0.0.1");
            let vf = parse_checked(&text);
            vf.get("vol-md-cache").map(|d| d.options.clone())
        };
        assert!(v.cache_invalidation());
        assert_eq!(v.cache_invalidation_timeout(), 600);
        // glusterd's order: md-cache, open-behind, quick-read, then utime.
        let vf = parse_checked(&v.client_volfile(42, "127.0.0.1"));
        for (name, ty, below) in [
            ("vol-md-cache", "performance/md-cache", "vol-open-behind"),
            (
                "vol-open-behind",
                "performance/open-behind",
                "vol-quick-read",
            ),
            (
                "vol-quick-read",
                "performance/quick-read",
                "vol-readdir-ahead",
            ),
            (
                "vol-readdir-ahead",
                "performance/readdir-ahead",
                "vol-utime",
            ),
        ] {
            let d = vf.get(name).unwrap();
            assert_eq!(
                (d.type_name.as_str(), d.subvolumes.as_slice()),
                (ty, [below.to_string()].as_slice())
            );
        }
        let qr = vf.get("vol-quick-read").unwrap();
        assert_eq!(qr.options.get("cache-timeout").unwrap(), "600");
        // Bricks send upcalls by default, so md-cache keeps entries as glusterd's group
        // metadata-cache does.
        let o = md(&v).unwrap();
        assert_eq!(o.get("cache-invalidation").unwrap(), "on");
        assert_eq!(o.get("md-cache-timeout").unwrap(), "600");

        // Without upcalls nothing keeps a long timeout safe: GlusterFS's 1 s.
        v.options.insert(CACHE_INVALIDATION.into(), "off".into());
        let o = md(&v).unwrap();
        assert_eq!(o.get("md-cache-timeout").unwrap(), "1");
        assert_eq!(o.get("cache-invalidation").unwrap(), "off");
        assert!(!v.cache_invalidation());
        // What is set is taken, even if it is unsafe (the test of staleness does it).
        v.options.insert(MD_CACHE_TIMEOUT.into(), "300".into());
        assert_eq!(md(&v).unwrap().get("md-cache-timeout").unwrap(), "300");

        // With upcalls, never longer than the bricks keep telling.
        v.options.insert(CACHE_INVALIDATION.into(), "on".into());
        v.options
            .insert(CACHE_INVALIDATION_TIMEOUT.into(), "60".into());
        assert_eq!(md(&v).unwrap().get("md-cache-timeout").unwrap(), "60");

        v.options.insert(STAT_PREFETCH.into(), "off".into());
        assert_eq!(md(&v), None);
        let text = v.client_volfile(42, "127.0.0.1");
        assert_eq!(
            parse_checked(&text).get("vol-reserved").unwrap().subvolumes,
            ["vol-open-behind"]
        );
        // quick-read follows the same timeouts as md-cache; each cache can go on its own.
        let qr = |v: &VolumeRecord| {
            let vf = parse_checked(&v.client_volfile(42, "127.0.0.1"));
            vf.get("vol-quick-read")
                .map(|d| d.options.get("cache-timeout").unwrap().clone())
        };
        assert_eq!(qr(&v).as_deref(), Some("60"));
        v.options.insert(CACHE_INVALIDATION.into(), "off".into());
        assert_eq!(qr(&v).as_deref(), Some("1"));
        v.options.insert(OPEN_BEHIND.into(), "off".into());
        v.options.insert(QUICK_READ.into(), "off".into());
        let text = v.client_volfile(42, "127.0.0.1");
        assert_eq!(
            parse_checked(&text).get("vol-reserved").unwrap().subvolumes,
            ["vol-readdir-ahead"]
        );
        v.options.insert(RDA_REQUEST_SIZE.into(), "1MB".into());
        let text = v.client_volfile(42, "127.0.0.1");
        let rda = parse_checked(&text)
            .get("vol-readdir-ahead")
            .unwrap()
            .clone();
        assert_eq!(rda.options.get("rda-request-size").unwrap(), "1MB");
        v.options.insert(READDIR_AHEAD.into(), "off".into());
        let text = v.client_volfile(42, "127.0.0.1");
        assert_eq!(
            parse_checked(&text).get("vol-reserved").unwrap().subvolumes,
            ["vol-utime"]
        );
        // write-behind is opt-in; on, it sits right above utime.
        v.options.insert(WRITE_BEHIND.into(), "on".into());
        let text = v.client_volfile(42, "127.0.0.1");
        assert_eq!(
            parse_checked(&text).get("vol-reserved").unwrap().subvolumes,
            ["vol-write-behind"]
        );
        let wb = parse_checked(&text)
            .get("vol-write-behind")
            .unwrap()
            .clone();
        assert_eq!(wb.options.get("flush-behind").unwrap(), "on");
        v.options.insert(FLUSH_BEHIND.into(), "off".into());
        v.options
            .insert(WRITE_BEHIND_WINDOW_SIZE.into(), "4MB".into());
        let text = v.client_volfile(42, "127.0.0.1");
        let wb = parse_checked(&text)
            .get("vol-write-behind")
            .unwrap()
            .clone();
        assert_eq!(wb.options.get("flush-behind").unwrap(), "off");
        assert_eq!(wb.options.get("cache-size").unwrap(), "4MB");
        v.options.insert(WRITE_BEHIND.into(), "off".into());
        let text = v.client_volfile(42, "127.0.0.1");
        assert_eq!(
            parse_checked(&text).get("vol-reserved").unwrap().subvolumes,
            ["vol-utime"]
        );
    }
}
