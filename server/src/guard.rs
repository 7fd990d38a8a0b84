//! Per-IP protection: how many connections one address may hold, how fast all of its
//! connections together may send, and throttling of addresses that keep failing to
//! authenticate (bad tokens, wrong room passwords).
//!
//! [`IpGuard::admit`] hands each accepted WebSocket an [`IpTicket`]; the ticket holds the
//! address's shared message bucket and gives its connection slot back when dropped. The map
//! only holds addresses with live connections or recent failures.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Window in which failures are counted, and how long an address is then refused.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes one token; false when empty.
    pub fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The sustained rate, per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }
}

/// Why an address may not open another connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// It holds as many connections as allowed.
    TooManyConnections,
    /// It failed to authenticate too often recently.
    Throttled,
}

#[derive(Debug)]
struct IpState {
    connections: usize,
    bucket: Option<Arc<Mutex<TokenBucket>>>,
    failures: u32,
    window_start: Instant,
    blocked_until: Option<Instant>,
}

/// Limits for one relay.
#[derive(Debug, Clone, Copy)]
pub struct IpLimits {
    /// Connections per address (0: no limit).
    pub max_connections: usize,
    /// Messages per second per address over all its connections (0: no limit).
    pub rate: u32,
    /// Failures per address within [`FAILURE_WINDOW`] before it is refused (0: no limit).
    pub failures: u32,
}

/// Per-address bookkeeping; see the module doc.
#[derive(Debug)]
pub struct IpGuard {
    limits: IpLimits,
    map: Mutex<HashMap<IpAddr, IpState>>,
}

/// One admitted connection's share of its address's limits.
#[derive(Debug)]
pub struct IpTicket {
    guard: Arc<IpGuard>,
    /// The address.
    pub ip: IpAddr,
    bucket: Option<Arc<Mutex<TokenBucket>>>,
}

impl IpTicket {
    /// Takes a token from the address's shared bucket; false when the address is over its rate.
    pub fn allow_message(&self) -> bool {
        match &self.bucket {
            Some(b) => b.lock().unwrap_or_else(|p| p.into_inner()).take(),
            None => true,
        }
    }

    /// Records a failed authentication from this address.
    pub fn auth_failed(&self) {
        self.guard.auth_failed(self.ip);
    }
}

impl Drop for IpTicket {
    fn drop(&mut self) {
        let mut map = self.guard.map();
        if let Some(state) = map.get_mut(&self.ip) {
            state.connections = state.connections.saturating_sub(1);
            if state.connections == 0 && state.blocked_until.is_none() && state.failures == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl IpGuard {
    /// A guard with no addresses yet.
    pub fn new(limits: IpLimits) -> Arc<Self> {
        Arc::new(IpGuard {
            limits,
            map: Mutex::new(HashMap::new()),
        })
    }

    fn map(&self) -> MutexGuard<'_, HashMap<IpAddr, IpState>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn entry<'a>(&self, map: &'a mut HashMap<IpAddr, IpState>, ip: IpAddr) -> &'a mut IpState {
        let rate = self.limits.rate;
        map.entry(ip).or_insert_with(|| IpState {
            connections: 0,
            // A burst of two seconds' worth: a page joining a big room sends many candidates.
            bucket: (rate > 0).then(|| {
                Arc::new(Mutex::new(TokenBucket::new(
                    f64::from(rate),
                    2.0 * f64::from(rate),
                )))
            }),
            failures: 0,
            window_start: Instant::now(),
            blocked_until: None,
        })
    }

    /// Admits a new connection from `ip`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<IpTicket, Refused> {
        let mut map = self.map();
        let now = Instant::now();
        let state = self.entry(&mut map, ip);
        if let Some(until) = state.blocked_until {
            if now < until {
                return Err(Refused::Throttled);
            }
            state.blocked_until = None;
            state.failures = 0;
        }
        if self.limits.max_connections > 0 && state.connections >= self.limits.max_connections {
            return Err(Refused::TooManyConnections);
        }
        state.connections += 1;
        let bucket = state.bucket.clone();
        Ok(IpTicket {
            guard: self.clone(),
            ip,
            bucket,
        })
    }

    /// Records a failed authentication from `ip`; enough of them block it for a while.
    pub fn auth_failed(&self, ip: IpAddr) {
        if self.limits.failures == 0 {
            return;
        }
        let mut map = self.map();
        let now = Instant::now();
        let state = self.entry(&mut map, ip);
        if now.duration_since(state.window_start) > FAILURE_WINDOW {
            state.window_start = now;
            state.failures = 0;
        }
        state.failures += 1;
        if state.failures >= self.limits.failures {
            state.blocked_until = Some(now + FAILURE_WINDOW);
            tracing::warn!(%ip, failures = state.failures, "authentication failures: address throttled");
        }
    }

    /// Forgets addresses with no connections whose failures are old (called periodically).
    pub fn sweep(&self) {
        let now = Instant::now();
        self.map().retain(|_, s| {
            let blocked = s.blocked_until.is_some_and(|until| now < until);
            let recent = now.duration_since(s.window_start) <= FAILURE_WINDOW && s.failures > 0;
            s.connections > 0 || blocked || recent
        });
    }

    /// Addresses currently tracked (for tests).
    pub fn tracked(&self) -> usize {
        self.map().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[tokio::test]
    async fn connections_per_address_are_capped_and_given_back() {
        let guard = IpGuard::new(IpLimits {
            max_connections: 2,
            rate: 0,
            failures: 0,
        });
        let a = guard.admit(ip(1)).unwrap();
        let _b = guard.admit(ip(1)).unwrap();
        assert_eq!(guard.admit(ip(1)).unwrap_err(), Refused::TooManyConnections);
        assert!(
            guard.admit(ip(2)).is_ok(),
            "other addresses are not affected"
        );
        drop(a);
        assert!(guard.admit(ip(1)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn failures_throttle_an_address_for_a_while() {
        let guard = IpGuard::new(IpLimits {
            max_connections: 0,
            rate: 0,
            failures: 3,
        });
        let t = guard.admit(ip(1)).unwrap();
        t.auth_failed();
        t.auth_failed();
        assert!(guard.admit(ip(1)).is_ok(), "below the limit");
        t.auth_failed();
        assert_eq!(guard.admit(ip(1)).unwrap_err(), Refused::Throttled);
        assert!(guard.admit(ip(2)).is_ok());
        tokio::time::advance(FAILURE_WINDOW + Duration::from_secs(1)).await;
        assert!(guard.admit(ip(1)).is_ok(), "the block expires");
        drop(t);
        guard.sweep();
        assert_eq!(guard.tracked(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_message_rate_is_shared_by_an_address() {
        let guard = IpGuard::new(IpLimits {
            max_connections: 0,
            rate: 5,
            failures: 0,
        });
        let a = guard.admit(ip(1)).unwrap();
        let b = guard.admit(ip(1)).unwrap();
        let sent = (0..20).filter(|i| {
            if i % 2 == 0 {
                a.allow_message()
            } else {
                b.allow_message()
            }
        });
        assert_eq!(sent.count(), 10, "a burst of two seconds, shared");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(a.allow_message());
        let other = guard.admit(ip(2)).unwrap();
        assert!(other.allow_message());
    }
}
