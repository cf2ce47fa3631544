//! Who else listens on the gateway's address. Every HTTP thread binds with
//! `SO_REUSEPORT`, which lets any socket of the same user share the port:
//! a second gateway started on the same address would bind too, and the
//! kernel would split connections between the two without a word. So
//! before binding, a probe socket without `SO_REUSEPORT` tries the
//! address: it cannot bind beside a listener, and then the gateway
//! refuses to start, naming the process that holds it (from `/proc`, when
//! it can be read). Two gateways started at the same instant could both
//! pass the probe; a restart without downtime is not offered.

use std::io;
use std::net::SocketAddr;
use tokio::net::TcpSocket;

/// `Ok` when no process listens on `addr` (port 0 is always free).
pub fn vacant(addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // A previous run's connections in TIME_WAIT do not count.
    probe.set_reuseaddr(true)?;
    match probe.bind(addr) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            let who = holder(addr.port()).map_or(String::new(), |h| format!(" ({h})"));
            Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "another process already listens on {addr}{who}: stop it, or give this gateway another server.listen"
                ),
            ))
        }
        Err(e) => Err(e),
    }
}

/// The process listening on TCP `port`, as `pid N: its command line`.
fn holder(port: u16) -> Option<String> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .find_map(|table| table.lines().find_map(|l| listening(l, port)))?;
    let socket = format!("socket:[{inode}]");
    for proc_dir in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_dir
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc_dir.path().join("fd")) else {
            continue;
        };
        let owns = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == socket.as_str())
        });
        if owns {
            let cmdline = std::fs::read(proc_dir.path().join("cmdline")).unwrap_or_default();
            let mut shown = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            shown.truncate(shown.trim_end().len().min(160));
            return Some(format!("pid {pid}: {shown}"));
        }
    }
    None
}

/// The socket inode of a `/proc/net/tcp` line that listens on `port`.
fn listening(line: &str, port: u16) -> Option<u64> {
    let mut cols = line.split_whitespace();
    let local = cols.nth(1)?;
    let state = cols.nth(1)?;
    let inode = cols.nth(5)?;
    let (_, hex_port) = local.rsplit_once(':')?;
    let listens = state == "0A" && u16::from_str_radix(hex_port, 16).ok()? == port;
    listens.then(|| inode.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_line_gives_its_inode_for_its_port_only() {
        let line = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41708 1 0000000041708cfc 100 0 0 10 0";
        assert_eq!(listening(line, 8080), Some(41708));
        assert_eq!(listening(line, 8081), None);
        // An established connection on the port is not a listener.
        let conn = line.replace(" 0A ", " 01 ");
        assert_eq!(listening(&conn, 8080), None);
        assert_eq!(
            listening("  sl  local_address rem_address   st", 8080),
            None
        );
    }

    #[tokio::test]
    async fn an_address_another_socket_listens_on_is_refused_naming_the_process() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let e = vacant(addr).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        let text = e.to_string();
        assert!(
            text.contains(&format!("already listens on {addr}")),
            "{text}"
        );
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(taken);
        assert!(vacant(addr).is_ok(), "free once closed");
        assert!(vacant("127.0.0.1:0".parse().unwrap()).is_ok());
    }
}
