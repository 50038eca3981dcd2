//! NFS file handles: the volume id, the file's gfid and a tag of the export it was reached
//! through (whose options apply to it). The gfid is the file's identity on every brick
//! (`trusted.gfid`), so a handle stays valid across gateway restarts, and resolving it is a
//! nameless lookup the bricks answer from `.glusterfs/xx/yy/<gfid>`.

use engine::fop::Gfid;

pub const HANDLE_LEN: usize = 36;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle {
    pub volume: [u8; 16],
    pub gfid: Gfid,
    /// `export_tag` of the export's path.
    pub export: u32,
}

/// A stable 32-bit tag for an export path (FNV-1a): the same after a restart.
pub fn export_tag(path: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in path.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

impl Handle {
    pub fn encode(&self) -> [u8; HANDLE_LEN] {
        let mut b = [0u8; HANDLE_LEN];
        b[..16].copy_from_slice(&self.volume);
        b[16..32].copy_from_slice(&self.gfid.0);
        b[32..].copy_from_slice(&self.export.to_be_bytes());
        b
    }

    /// None for anything that is not one of our handles (NFS3ERR_BADHANDLE).
    pub fn decode(b: &[u8]) -> Option<Handle> {
        if b.len() != HANDLE_LEN {
            return None;
        }
        let mut volume = [0u8; 16];
        volume.copy_from_slice(&b[..16]);
        let mut g = [0u8; 16];
        g.copy_from_slice(&b[16..32]);
        let gfid = Gfid(g);
        if gfid.is_null() {
            return None;
        }
        let export = u32::from_be_bytes([b[32], b[33], b[34], b[35]]);
        Some(Handle {
            volume,
            gfid,
            export,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let h = Handle {
            volume: [7; 16],
            gfid: Gfid::ROOT,
            export: export_tag("/vol"),
        };
        assert_eq!(Handle::decode(&h.encode()), Some(h));
        assert_eq!(Handle::decode(&[0; 35]), None);
        assert_eq!(Handle::decode(&[0; 36]), None);
        assert_ne!(export_tag("/vol"), export_tag("/vol/a"));
    }
}
