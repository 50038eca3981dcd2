//! Registration with the local portmapper (rpcbind, PMAP v2 over TCP, RFC 1833 §3), so clients
//! that ask port 111 where NFS and MOUNT are (the kernel's `mount -t nfs` without `port=`,
//! libnfs without `nfsport=`) find them.

use crate::export::{MOUNT_PROGRAM, NFS_PROGRAM};
use crate::xdr::{Put, Reader};
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PMAP_PROGRAM: u32 = 100000;
const PMAPPROC_SET: u32 = 1;
const PMAPPROC_UNSET: u32 = 2;
const IPPROTO_TCP: u32 = 6;

#[derive(Debug, thiserror::Error)]
pub enum PortmapError {
    #[error("no portmapper (rpcbind) on {0}")]
    NotRunning(SocketAddr),
    #[error("portmapper: {0}")]
    Io(#[from] std::io::Error),
    #[error("portmapper refused to register program {0}")]
    Refused(u32),
    #[error("portmapper sent a malformed reply")]
    Malformed,
}

/// rpcbind takes registrations only from a reserved source port; as root we have one.
async fn connect(pm: SocketAddr) -> Result<tokio::net::TcpStream, PortmapError> {
    for port in (600..1024).rev() {
        let sock = tokio::net::TcpSocket::new_v4()?;
        if sock.bind(([127, 0, 0, 1], port).into()).is_err() {
            continue;
        }
        return match tokio::time::timeout(Duration::from_secs(2), sock.connect(pm)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Err(PortmapError::NotRunning(pm))
            }
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(PortmapError::NotRunning(pm)),
        };
    }
    // Not root, or every reserved port busy: try unprivileged (rpcbind -i accepts it).
    match tokio::net::TcpStream::connect(pm).await {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Err(PortmapError::NotRunning(pm))
        }
        Err(e) => Err(e.into()),
    }
}

async fn call(
    s: &mut tokio::net::TcpStream,
    xid: u32,
    proc_: u32,
    prog: u32,
    port: u16,
) -> Result<bool, PortmapError> {
    let mut m = BytesMut::new();
    m.u32(xid);
    m.u32(0); // CALL
    m.u32(2); // RPC version
    m.u32(PMAP_PROGRAM);
    m.u32(2);
    m.u32(proc_);
    for _ in 0..2 {
        // AUTH_NONE credential and verifier
        m.u32(0);
        m.u32(0);
    }
    m.u32(prog);
    m.u32(3);
    m.u32(IPPROTO_TCP);
    m.u32(u32::from(port));
    let mut rec = BytesMut::new();
    rec.u32(0x8000_0000 | m.len() as u32);
    rec.unsplit(m);
    s.write_all(&rec).await?;
    let mut mark = [0u8; 4];
    s.read_exact(&mut mark).await?;
    let len = (u32::from_be_bytes(mark) & 0x7fff_ffff) as usize;
    if len > 1024 {
        return Err(PortmapError::Malformed);
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    let mut r = Reader::new(Bytes::from(body));
    let bad = |_| PortmapError::Malformed;
    let _xid = r.u32().map_err(bad)?;
    let (mtype, stat) = (r.u32().map_err(bad)?, r.u32().map_err(bad)?);
    if mtype != 1 || stat != 0 {
        return Err(PortmapError::Refused(prog));
    }
    r.u32().map_err(bad)?;
    r.opaque(400).map_err(bad)?;
    if r.u32().map_err(bad)? != 0 {
        return Err(PortmapError::Refused(prog));
    }
    r.bool().map_err(bad)
}

/// Registers NFS v3 and MOUNT v3 over TCP at `port`, replacing earlier registrations.
pub async fn register(pm: SocketAddr, port: u16) -> Result<(), PortmapError> {
    let mut s = connect(pm).await?;
    for (i, prog) in [NFS_PROGRAM, MOUNT_PROGRAM].into_iter().enumerate() {
        let xid = 0x676e_0000 + 2 * i as u32;
        call(&mut s, xid, PMAPPROC_UNSET, prog, 0).await?;
        if !call(&mut s, xid + 1, PMAPPROC_SET, prog, port).await? {
            return Err(PortmapError::Refused(prog));
        }
    }
    Ok(())
}

/// Withdraws the registrations (at shutdown), so clients are not sent to a closed port.
pub async fn unregister(pm: SocketAddr) -> Result<(), PortmapError> {
    let mut s = connect(pm).await?;
    for (i, prog) in [NFS_PROGRAM, MOUNT_PROGRAM].into_iter().enumerate() {
        call(&mut s, 0x676f_0000 + i as u32, PMAPPROC_UNSET, prog, 0).await?;
    }
    Ok(())
}
