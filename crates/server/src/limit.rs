//! Per-client rate limit of the public pages: a fixed window of one clock minute per client
//! address (off when the limit is 0).
//!
//! Several servers on one PostgreSQL share the limit: each counts here, and about once a
//! second [`Limiter::sync`] adds what it counted to the database's count of the minute and
//! reads back the totals of its own clients and of every client at the limit anywhere.
//! A client spread over several servers therefore gets the limit once, not once per
//! server, give or take what it sends within one sync. The database holds a sha256 of the
//! address, never the address, and only for the current and the previous minute.
//!
//! The key is the TCP peer address. Behind a reverse proxy every client shares the proxy's
//! address; limit there (or teach this a trusted forwarded header) before deploying so.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use kjp_store::Store;
use sha2::{Digest, Sha256};

#[derive(Debug)]
pub(crate) struct Limiter {
    per_minute: u32,
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    /// The clock minute (Unix seconds / 60) counted.
    minute: u64,
    clients: HashMap<IpAddr, Count>,
    /// Digests of clients at their limit in the shared counts (so on other servers).
    at_limit_elsewhere: HashSet<String>,
}

#[derive(Debug, Default)]
struct Count {
    /// Requests counted here and not yet added to the shared count.
    unsent: u32,
    /// The client's count across servers at the last sync (what was sent included).
    shared: u32,
}

fn clock_minute() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 60)
}

/// What the database holds for a client: not its address.
fn digest(ip: IpAddr) -> String {
    hex::encode(&Sha256::digest(ip.to_string().as_bytes())[..16])
}

impl Limiter {
    pub(crate) fn new(per_minute: u32) -> Limiter {
        Limiter { per_minute, window: Mutex::new(Window::default()) }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.per_minute > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a request; false when the client is over its limit for this minute. A limit
    /// of 0 is no limit.
    pub(crate) fn allow(&self, client: IpAddr) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let minute = clock_minute();
        let mut w = self.lock();
        if w.minute != minute {
            // A new window: forget everyone (keeps the map bounded by one minute's clients).
            *w = Window { minute, ..Window::default() };
        }
        let at_limit = !w.at_limit_elsewhere.is_empty() && w.at_limit_elsewhere.contains(&digest(client));
        let per_minute = self.per_minute;
        let n = w
            .clients
            .entry(client)
            .or_insert_with(|| Count { unsent: 0, shared: if at_limit { per_minute } else { 0 } });
        n.unsent = n.unsent.saturating_add(1);
        n.shared.saturating_add(n.unsent) <= per_minute
    }

    /// Adds the requests counted since the last sync to the database's counts and takes
    /// back the totals across servers. On a database error the counts stay to be sent
    /// next time.
    pub(crate) async fn sync(&self, store: &Store) -> Result<(), kjp_store::StoreError> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let (minute, sent): (u64, Vec<(IpAddr, u32)>) = {
            let mut w = self.lock();
            let now = clock_minute();
            if w.minute != now {
                // Counts of a past minute no longer matter.
                *w = Window { minute: now, ..Window::default() };
            }
            let sent = w
                .clients
                .iter_mut()
                .filter(|(_, c)| c.unsent > 0)
                .map(|(ip, c)| {
                    let n = std::mem::take(&mut c.unsent);
                    c.shared = c.shared.saturating_add(n);
                    (*ip, n)
                })
                .collect();
            (w.minute, sent)
        };
        let hits: Vec<(String, i64)> = sent.iter().map(|&(ip, n)| (digest(ip), i64::from(n))).collect();
        let totals = store
            .add_rate_hits(minute as i64, &hits, i64::from(self.per_minute))
            .await
            .inspect_err(|_| self.restore(minute, &sent))?;
        let totals: HashMap<String, i64> = totals.into_iter().collect();
        let mut w = self.lock();
        if w.minute != minute {
            return Ok(());
        }
        let mut mine = HashSet::with_capacity(sent.len());
        for (ip, c) in &mut w.clients {
            let d = digest(*ip);
            if let Some(&total) = totals.get(&d) {
                c.shared = c.shared.max(u32::try_from(total).unwrap_or(u32::MAX));
            }
            mine.insert(d);
        }
        w.at_limit_elsewhere = totals
            .into_iter()
            .filter(|&(_, total)| total >= i64::from(self.per_minute))
            .map(|(d, _)| d)
            .filter(|d| !mine.contains(d))
            .collect();
        Ok(())
    }

    /// Puts back counts that could not be sent.
    fn restore(&self, minute: u64, sent: &[(IpAddr, u32)]) {
        let mut w = self.lock();
        if w.minute != minute {
            return;
        }
        for &(ip, n) in sent {
            let c = w.clients.entry(ip).or_default();
            c.unsent = c.unsent.saturating_add(n);
            c.shared = c.shared.saturating_sub(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_client_and_zero_is_no_limit() {
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let limited = Limiter::new(2);
        assert!(limited.allow(a) && limited.allow(a));
        assert!(!limited.allow(a), "the third request of the minute");
        assert!(limited.allow(b), "another client has its own count");
        let off = Limiter::new(0);
        assert!((0..10_000).all(|_| off.allow(a)));
    }

    #[tokio::test]
    async fn two_servers_on_one_database_share_a_clients_limit() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("kjp.db").display());
        let store = Store::open(&url, None).await.unwrap();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let (one, two) = (Limiter::new(5), Limiter::new(5));
        // A minute boundary between the requests and the syncs would start new counts.
        while SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() % 60 > 55 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert!((0..3).all(|_| one.allow(a)), "three on the first server");
        one.sync(&store).await.unwrap();
        assert!(two.allow(a), "a fourth on the second, which has not synced yet");
        two.sync(&store).await.unwrap();
        assert!(two.allow(a), "the fifth, the limit");
        assert!(!two.allow(a), "the sixth: the second server knows of the first's three");
        // The first server learns of a client over the limit that it saw under it.
        two.sync(&store).await.unwrap();
        one.sync(&store).await.unwrap();
        assert!(!one.allow(a), "over the limit elsewhere, refused here too");
        assert!(one.allow(b), "another client is not affected");
        // A client that used its whole limit on one server is refused on another.
        let c: IpAddr = [10, 0, 0, 3].into();
        assert!((0..5).all(|_| one.allow(c)));
        one.sync(&store).await.unwrap();
        two.sync(&store).await.unwrap();
        assert!(!two.allow(c), "five of five used on the first server");
        // A third server that never saw the client refuses it after one sync.
        let three = Limiter::new(5);
        three.sync(&store).await.unwrap();
        assert!(!three.allow(a));
    }
}
