//! A TCP proxy a test can cut, to take a backing service away from the code under test and
//! bring it back, without touching the shared server.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Forwards connections from its own port to `target` while it is up.
pub struct TcpProxy {
    /// Where the code under test connects.
    pub addr: SocketAddr,
    target: SocketAddr,
    running: Option<(JoinHandle<()>, Arc<Notify>)>,
}

impl TcpProxy {
    /// Starts forwarding to `target` on a free local port.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("bound");
        let mut proxy = Self {
            addr,
            target,
            running: None,
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target;
        let cut = Arc::new(Notify::new());
        let cut_seen = Arc::clone(&cut);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    () = cut_seen.notified() => break,
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { continue };
                        connections.spawn(async move {
                            if let Ok(mut outbound) = TcpStream::connect(target).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            }
                        });
                    }
                }
            }
            // Aborting every forwarded connection: the peers see them break.
            connections.abort_all();
        });
        self.running = Some((task, cut));
    }

    /// Refuses new connections and breaks the open ones, as a stopped server would.
    pub async fn cut(&mut self) {
        if let Some((task, cut)) = self.running.take() {
            cut.notify_one();
            let _ = task.await;
        }
    }

    /// Forwards again, on the same port.
    pub async fn restore(&mut self) {
        if self.running.is_none() {
            let listener = TcpListener::bind(self.addr)
                .await
                .expect("the proxy port is free again");
            self.serve(listener);
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        if let Some((task, _)) = self.running.take() {
            task.abort();
        }
    }
}
