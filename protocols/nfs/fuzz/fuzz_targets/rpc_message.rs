#![no_main]
//! One record's bytes as an RPC message to the NFS/MOUNT server: any input must produce an
//! answer or a closed connection, never a panic, a hang or an unbounded allocation.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = protocols_nfs::fuzz::message(data);
});
