//! GlusterFS's Davies–Meyer hash (`gf_dm_hashfn`, libglusterfs/src/hashfn.c): placement must
//! match GlusterFS bit for bit, or files written by one would be looked for on the wrong brick
//! by the other.

const DELTA: u32 = 0x9E37_79B9;

fn dm_round(rounds: u32, a: &[u32; 4], h0: &mut u32, h1: &mut u32) {
    let (mut b0, mut b1) = (*h0, *h1);
    let mut sum: u32 = 0;
    for _ in 0..rounds {
        sum = sum.wrapping_add(DELTA);
        b0 = b0.wrapping_add(
            (b1 << 4).wrapping_add(a[0]) ^ b1.wrapping_add(sum) ^ (b1 >> 5).wrapping_add(a[1]),
        );
        b1 = b1.wrapping_add(
            (b0 << 4).wrapping_add(a[2]) ^ b0.wrapping_add(sum) ^ (b0 >> 5).wrapping_add(a[3]),
        );
    }
    *h0 = h0.wrapping_add(b0);
    *h1 = h1.wrapping_add(b1);
}

pub fn dm_hash(msg: &[u8]) -> u32 {
    let len = msg.len();
    let mut h0: u32 = 0x9464_a485;
    let mut h1: u32 = 0x542e_1a94;
    let mut pad = (len as u32) | ((len as u32) << 8);
    pad |= pad << 16;
    let word = |i: usize| u32::from_le_bytes(msg[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
    let full_quads = len / 16;
    let mut full_words = len / 4;
    let mut full_bytes = len;
    let mut w = 0;
    for _ in 0..full_quads {
        let a = [word(w), word(w + 1), word(w + 2), word(w + 3)];
        w += 4;
        full_words -= 4;
        full_bytes -= 16;
        dm_round(6, &a, &mut h0, &mut h1);
    }
    let mut a = [0u32; 4];
    for slot in a.iter_mut() {
        if full_words > 0 {
            *slot = word(w);
            w += 1;
            full_words -= 1;
            full_bytes -= 4;
        } else {
            *slot = pad;
            while full_bytes > 0 {
                // GlusterFS reads the byte through a (signed, on x86) `char`.
                let b = msg[len - full_bytes] as i8 as i32 as u32;
                *slot = (*slot << 8) | b;
                full_bytes -= 1;
            }
        }
    }
    dm_round(10, &a, &mut h0, &mut h1);
    h0 ^ h1
}

/// The name GlusterFS hashes for placement: rsync's temporary `.NAME.XXXXXX` hashes as `NAME`,
/// so the rename at the end of an rsync keeps the file where it already is
/// (the default `rsync-hash-regex`, `^\.(.+)\.[^.]+$`).
pub fn hash_name(name: &str) -> &str {
    if let Some(rest) = name.strip_prefix('.')
        && let Some(dot) = rest.rfind('.')
    {
        let (base, suffix) = (&rest[..dot], &rest[dot + 1..]);
        if !base.is_empty() && !suffix.is_empty() {
            return base;
        }
    }
    name
}

pub fn name_hash(name: &str) -> u32 {
    dm_hash(hash_name(name).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_glusterfs_test_vectors() {
        assert_eq!(dm_hash(b"a"), 0x3a17e4e6);
        assert_eq!(dm_hash(b"file1"), 0xa787fa82);
        assert_eq!(dm_hash(b"hello.txt"), 0xe68d61cc);
        assert_eq!(dm_hash(b"abcdefghijklmnopq"), 0xee27cbd1);
        assert_eq!(dm_hash("café".as_bytes()), 0x9e089967);
    }

    #[test]
    fn rsync_temporaries_hash_as_their_final_name() {
        assert_eq!(hash_name(".hello.txt.Ab12Cd"), "hello.txt");
        assert_eq!(hash_name(".bashrc"), ".bashrc");
        assert_eq!(hash_name("plain"), "plain");
        assert_eq!(name_hash(".file1.XyZ123"), dm_hash(b"file1"));
    }
}
