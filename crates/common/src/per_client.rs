//! Counting what each client holds open (connections, live streams), to bound it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// What each client address holds open; an address is forgotten once it holds nothing.
#[derive(Default)]
pub(crate) struct PerClient {
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerClient {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A place for one more of `client`'s, if it holds fewer than `max`; given back when the
    /// slot is dropped.
    pub(crate) fn enter(self: &Arc<Self>, client: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut open = self.open.lock().expect("held per client");
        let count = open.entry(client).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            counts: Arc::clone(self),
            client,
        })
    }
}

/// One thing a client holds open.
pub(crate) struct ClientSlot {
    counts: Arc<PerClient>,
    client: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().expect("held per client");
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_at_most_its_share_and_gets_it_back_as_they_close() {
        let clients = PerClient::new();
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let first = clients.enter(one, 2).unwrap();
        let second = clients.enter(one, 2).unwrap();
        assert!(clients.enter(one, 2).is_none());
        assert!(clients.enter(other, 2).is_some());
        drop(first);
        let third = clients.enter(one, 2).unwrap();
        drop((second, third));
        assert!(
            clients.open.lock().unwrap().is_empty(),
            "nobody is remembered once gone"
        );
    }
}
