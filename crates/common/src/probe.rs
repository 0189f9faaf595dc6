//! `<binary> healthcheck`: the container's health check, for images with no shell or curl.
//!
//! It asks the process on this machine's loopback, at the port its settings name, for
//! `GET /api/livez/`, and exits 0 on a 200 within two seconds, 1 otherwise.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the process listening on 127.0.0.1:`port` answers its liveness path with 200.
pub fn live(port: u16) -> bool {
    ask(port).is_ok_and(|status_line| {
        status_line.starts_with("HTTP/1.1 200 ") || status_line.starts_with("HTTP/1.0 200 ")
    })
}

/// The first line of the answer to `GET /api/livez/`.
fn ask(port: u16) -> std::io::Result<String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.write_all(
        b"GET /api/livez/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: healthcheck\r\nConnection: close\r\n\r\n",
    )?;
    // The status line fits in the first read's worth of bytes; the rest is not needed.
    let mut head = [0_u8; 64];
    let mut filled = 0;
    while filled < head.len() {
        let read = stream.read(&mut head[filled..])?;
        if read == 0 {
            break;
        }
        filled += read;
        if head[..filled].contains(&b'\n') {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head[..filled]);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot server on a free port answering `answer` to the first connection.
    fn answering(answer: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0_u8; 512];
            let _ = stream.read(&mut request);
            stream.write_all(answer.as_bytes()).unwrap();
        });
        port
    }

    #[test]
    fn a_200_is_live() {
        assert!(live(answering(
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        )));
    }

    #[test]
    fn any_other_status_is_not() {
        assert!(!live(answering(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
        )));
        assert!(!live(answering("HTTP/1.1 2000 nonsense\r\n\r\n")));
    }

    #[test]
    fn nothing_listening_is_not_live() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(!live(port));
    }
}
