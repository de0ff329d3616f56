//! Per-client rate limiting: a fixed one-minute window per client address (off when the
//! limit is 0).
//!
//! The key is the TCP peer address. Behind a reverse proxy every client shares the proxy's
//! address; limit there (or teach this a trusted forwarded header) before deploying so.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct Limiter {
    per_minute: u32,
    start: Instant,
    /// The current window's number and the count per client in it.
    window: Mutex<(u64, HashMap<IpAddr, u32>)>,
}

impl Limiter {
    pub(crate) fn new(per_minute: u32) -> Limiter {
        Limiter { per_minute, start: Instant::now(), window: Mutex::new((0, HashMap::new())) }
    }

    /// Counts a request; false when the client is over its limit for this minute. A limit
    /// of 0 is no limit.
    pub(crate) fn allow(&self, client: IpAddr) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let minute = self.start.elapsed().as_secs() / 60;
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if w.0 != minute {
            // A new window: forget everyone (keeps the map bounded by one minute's clients).
            *w = (minute, HashMap::new());
        }
        let n = w.1.entry(client).or_insert(0);
        *n = n.saturating_add(1);
        *n <= self.per_minute
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
}
