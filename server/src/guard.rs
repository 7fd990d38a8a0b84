//! Per-IP protection: how many connections one address may hold, how fast all of its
//! connections together may send, and throttling of addresses that keep failing to
//! authenticate (bad tokens, wrong room passwords).
//!
//! [`IpGuard::admit`] hands each accepted WebSocket an [`IpTicket`]; the ticket holds the
//! address's shared message bucket and gives its connection slot back when dropped. With one of
//! the relay's connection permits it makes a session's [`Slot`], which a session keeps while
//! its connection is open and, when the connection is lost, while it waits to be resumed: a
//! session kept for resuming counts against the caps like an open one. [`IpGuard::pending`]
//! counts the connections of an address that wait for the rest of their request head (each
//! holds a head buffer of up to 64 KiB). The map only holds addresses with live connections or
//! recent failures.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

/// The address whose limits a connection from `ip` counts against: `ip` itself for IPv4, its
/// /64 network for IPv6 (one subscriber or one host usually gets a whole /64, so counting
/// single IPv6 addresses would give each attacker billions of budgets).
fn address(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

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
        self.refill();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes `n` tokens whether or not they are there: a debt (at most one burst) that later
    /// messages wait out.
    pub fn charge(&mut self, n: u32) {
        self.refill();
        self.tokens = (self.tokens - f64::from(n)).max(-self.burst);
    }

    /// Adds what the time since the last look earned.
    fn refill(&mut self) {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
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
    /// Connections waiting for the rest of their request head.
    pending: usize,
    /// Password guesses (joins with a password) being checked now.
    guessing: usize,
    bucket: Option<Arc<Mutex<TokenBucket>>>,
    failures: u32,
    window_start: Instant,
    blocked_until: Option<Instant>,
}

/// Limits for one relay (the default: none).
#[derive(Debug, Clone, Copy, Default)]
pub struct IpLimits {
    /// Connections per address (0: no limit).
    pub max_connections: usize,
    /// Messages per second per address over all its connections (0: no limit).
    pub rate: u32,
    /// Failures per address within [`FAILURE_WINDOW`] before it is refused (0: no limit).
    pub failures: u32,
    /// Connections per address waiting for the rest of their request head (0: no limit).
    pub max_pending: usize,
    /// Connections of all addresses waiting for the rest of their request head (0: no limit).
    pub max_pending_total: usize,
}

/// Per-address bookkeeping; see the module doc.
#[derive(Debug)]
pub struct IpGuard {
    limits: IpLimits,
    map: Mutex<HashMap<IpAddr, IpState>>,
    /// The sum of every address's `pending` (changed under the map's lock).
    pending_total: AtomicUsize,
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

    /// Charges the address's shared bucket `n` more messages (see [`TokenBucket::charge`]).
    pub fn charge(&self, n: u32) {
        if let Some(b) = &self.bucket {
            b.lock().unwrap_or_else(|p| p.into_inner()).charge(n);
        }
    }

    /// Records a failed authentication from this address; true when the address is now
    /// blocked.
    pub fn auth_failed(&self) -> bool {
        self.guard.auth_failed(self.ip)
    }

    /// Whether the address is blocked for failing to authenticate too often: its connections
    /// already open may not guess either (join rooms, which may take a password).
    pub fn blocked(&self) -> bool {
        self.guard.blocked(self.ip)
    }

    /// Reserves one password guess of the address: `None` when it is blocked, or when its
    /// failures so far and the guesses being checked now reach the limit (so that guesses sent
    /// at once on many connections cannot outrun the count while the store answers).
    pub fn guess(&self) -> Option<Guess> {
        self.guard.guess(self.ip)
    }
}

impl Drop for IpTicket {
    fn drop(&mut self) {
        self.guard.release(self.ip, |s| &mut s.connections);
    }
}

/// What one session holds of the relay's connection limits: its address's ticket and one of
/// the relay's connection permits (see the module doc).
#[derive(Debug)]
pub struct Slot {
    ticket: IpTicket,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    /// A slot of `ticket`'s address holding `permit`.
    pub fn new(ticket: IpTicket, permit: OwnedSemaphorePermit) -> Slot {
        Slot {
            ticket,
            _permit: permit,
        }
    }

    /// The address's share of the limits.
    pub fn ticket(&self) -> &IpTicket {
        &self.ticket
    }

    /// This slot for a connection from `ip` (a session resumed, maybe from a new address):
    /// the same when `ip` is its address and not blocked; else with a ticket of `ip`, if `ip`
    /// may have one. A refusal gives the slot back.
    pub fn move_to(self, ip: IpAddr) -> Result<Slot, (Slot, Refused)> {
        if address(self.ticket.ip) == address(ip) {
            if self.ticket.blocked() {
                return Err((self, Refused::Throttled));
            }
            return Ok(self);
        }
        match self.ticket.guard.admit(ip) {
            Ok(ticket) => Ok(Slot {
                ticket,
                _permit: self._permit,
            }),
            Err(why) => Err((self, why)),
        }
    }
}

/// A password guess being checked ([`IpTicket::guess`]); gives its place back when dropped.
#[derive(Debug)]
pub struct Guess {
    guard: Arc<IpGuard>,
    ip: IpAddr,
    counted: bool,
}

impl Guess {
    /// The guess was wrong: a failed authentication of the address. True when the address is
    /// blocked now.
    pub fn failed(self) -> bool {
        self.guard.auth_failed(self.ip)
    }
}

impl Drop for Guess {
    fn drop(&mut self) {
        if self.counted {
            self.guard.release(self.ip, |s| &mut s.guessing);
        }
    }
}

/// One connection of an address waiting for the rest of its request head; gives its place
/// back when dropped.
#[derive(Debug)]
pub struct Pending {
    guard: Arc<IpGuard>,
    ip: IpAddr,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.guard.release(self.ip, |s| &mut s.pending);
        self.guard.pending_total.fetch_sub(1, Ordering::Relaxed);
    }
}

impl IpGuard {
    /// A guard with no addresses yet.
    pub fn new(limits: IpLimits) -> Arc<Self> {
        Arc::new(IpGuard {
            limits,
            map: Mutex::new(HashMap::new()),
            pending_total: AtomicUsize::new(0),
        })
    }

    fn map(&self) -> MutexGuard<'_, HashMap<IpAddr, IpState>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn entry<'a>(&self, map: &'a mut HashMap<IpAddr, IpState>, ip: IpAddr) -> &'a mut IpState {
        let rate = self.limits.rate;
        map.entry(address(ip)).or_insert_with(|| IpState {
            connections: 0,
            pending: 0,
            guessing: 0,
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

    /// Counts a connection from `ip` that waits for the rest of its request head; `None` when
    /// the address, or the relay, has as many as allowed.
    pub fn pending(self: &Arc<Self>, ip: IpAddr) -> Option<Pending> {
        let mut map = self.map();
        let total = self.pending_total.load(Ordering::Relaxed);
        if self.limits.max_pending_total > 0 && total >= self.limits.max_pending_total {
            return None;
        }
        let state = self.entry(&mut map, ip);
        if self.limits.max_pending > 0 && state.pending >= self.limits.max_pending {
            return None;
        }
        state.pending += 1;
        self.pending_total.fetch_add(1, Ordering::Relaxed);
        Some(Pending {
            guard: self.clone(),
            ip,
        })
    }

    /// Gives back one of `ip`'s connections (the counter `which` picks), forgetting the address
    /// when nothing is left to remember of it.
    fn release(&self, ip: IpAddr, which: fn(&mut IpState) -> &mut usize) {
        let mut map = self.map();
        let ip = address(ip);
        if let Some(state) = map.get_mut(&ip) {
            let n = which(state);
            *n = n.saturating_sub(1);
            if state.connections == 0
                && state.pending == 0
                && state.guessing == 0
                && state.blocked_until.is_none()
                && state.failures == 0
            {
                map.remove(&ip);
            }
        }
    }

    /// Reserves a password guess of `ip` (see [`IpTicket::guess`]).
    fn guess(self: &Arc<Self>, ip: IpAddr) -> Option<Guess> {
        let mut guess = Guess {
            guard: self.clone(),
            ip,
            counted: false,
        };
        if self.limits.failures == 0 {
            return Some(guess);
        }
        let mut map = self.map();
        let now = Instant::now();
        let state = self.entry(&mut map, ip);
        if let Some(until) = state.blocked_until {
            if now < until {
                return None;
            }
            state.blocked_until = None;
            state.failures = 0;
        }
        if now.duration_since(state.window_start) > FAILURE_WINDOW {
            state.window_start = now;
            state.failures = 0;
        }
        if usize::try_from(state.failures).unwrap_or(usize::MAX) + state.guessing
            >= self.limits.failures as usize
        {
            return None;
        }
        state.guessing += 1;
        guess.counted = true;
        Some(guess)
    }

    /// Whether `ip` is blocked now.
    pub fn blocked(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        self.map()
            .get(&address(ip))
            .and_then(|s| s.blocked_until)
            .is_some_and(|until| now < until)
    }

    /// Records a failed authentication from `ip`; enough of them block it for a while. True
    /// when `ip` is blocked now.
    pub fn auth_failed(&self, ip: IpAddr) -> bool {
        if self.limits.failures == 0 {
            return false;
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
            return true;
        }
        false
    }

    /// Forgets addresses with no connections whose failures are old (called periodically).
    pub fn sweep(&self) {
        let now = Instant::now();
        self.map().retain(|_, s| {
            let blocked = s.blocked_until.is_some_and(|until| now < until);
            let recent = now.duration_since(s.window_start) <= FAILURE_WINDOW && s.failures > 0;
            s.connections > 0 || s.pending > 0 || s.guessing > 0 || blocked || recent
        });
    }

    /// Connections waiting for the rest of their request head, over all addresses.
    pub fn pending_total(&self) -> usize {
        self.pending_total.load(Ordering::Relaxed)
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
            ..IpLimits::default()
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

    #[tokio::test]
    async fn pending_connections_per_address_are_capped_and_given_back() {
        let guard = IpGuard::new(IpLimits {
            max_pending: 2,
            max_pending_total: 3,
            ..IpLimits::default()
        });
        let a = guard.pending(ip(1)).unwrap();
        let _b = guard.pending(ip(1)).unwrap();
        assert!(guard.pending(ip(1)).is_none());
        let c = guard.pending(ip(2)).unwrap();
        assert!(
            guard.pending(ip(3)).is_none(),
            "three in all, over every address"
        );
        assert_eq!(guard.pending_total(), 3);
        drop(c);
        let ws = guard.admit(ip(1)).unwrap();
        drop(a);
        assert!(guard.pending(ip(1)).is_some());
        drop((ws, _b));
        assert_eq!(guard.tracked(), 0, "nothing left to remember");
    }

    #[tokio::test]
    async fn a_slot_moves_to_a_new_address_only_if_that_one_has_room() {
        let guard = IpGuard::new(IpLimits {
            max_connections: 1,
            ..IpLimits::default()
        });
        let permits = Arc::new(tokio::sync::Semaphore::new(4));
        let permit = || permits.clone().try_acquire_owned().unwrap();
        let slot = Slot::new(guard.admit(ip(1)).unwrap(), permit());
        // Same address: kept, at its cap.
        let slot = slot.move_to(ip(1)).unwrap();
        let _full = Slot::new(guard.admit(ip(2)).unwrap(), permit());
        let (slot, why) = slot.move_to(ip(2)).unwrap_err();
        assert_eq!(why, Refused::TooManyConnections);
        let slot = slot.move_to(ip(3)).unwrap();
        assert_eq!(slot.ticket().ip, ip(3));
        assert!(
            guard.admit(ip(1)).is_ok(),
            "the old address's place is given back"
        );
        assert_eq!(permits.available_permits(), 2);
    }

    #[tokio::test]
    async fn ipv6_addresses_count_by_their_64_bit_network() {
        let guard = IpGuard::new(IpLimits {
            max_connections: 2,
            ..IpLimits::default()
        });
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let _a = guard.admit(v6("2001:db8:1:2::1")).unwrap();
        let _b = guard.admit(v6("2001:db8:1:2:ffff::9")).unwrap();
        assert_eq!(
            guard.admit(v6("2001:db8:1:2:abcd::1")).unwrap_err(),
            Refused::TooManyConnections,
            "the same /64"
        );
        assert!(guard.admit(v6("2001:db8:1:3::1")).is_ok(), "another /64");
        // An IPv4 address written as IPv6 is the IPv4 address.
        let _c = guard.admit(ip(7)).unwrap();
        let _d = guard.admit(ip(7)).unwrap();
        assert!(guard.admit(v6("::ffff:10.0.0.7")).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn guesses_in_flight_count_against_the_failure_limit() {
        let guard = IpGuard::new(IpLimits {
            failures: 3,
            ..IpLimits::default()
        });
        let t = guard.admit(ip(1)).unwrap();
        let (a, b) = (t.guess().unwrap(), t.guess().unwrap());
        assert!(!t.auth_failed(), "one failure");
        assert!(t.guess().is_none(), "1 failure + 2 in flight reach 3");
        drop(b);
        let c = t.guess().unwrap();
        assert!(!a.failed());
        assert!(c.failed(), "the third failure blocks");
        assert!(t.guess().is_none());
        tokio::time::advance(FAILURE_WINDOW + Duration::from_secs(1)).await;
        assert!(t.guess().is_some(), "the block expires");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_throttle_an_address_for_a_while() {
        let guard = IpGuard::new(IpLimits {
            failures: 3,
            ..IpLimits::default()
        });
        let t = guard.admit(ip(1)).unwrap();
        assert!(!t.auth_failed());
        assert!(!t.auth_failed());
        assert!(guard.admit(ip(1)).is_ok(), "below the limit");
        assert!(!t.blocked());
        assert!(t.auth_failed(), "the third failure blocks");
        assert!(t.blocked(), "the open connection sees the block");
        assert_eq!(guard.admit(ip(1)).unwrap_err(), Refused::Throttled);
        assert!(guard.admit(ip(2)).is_ok());
        tokio::time::advance(FAILURE_WINDOW + Duration::from_secs(1)).await;
        assert!(!t.blocked());
        assert!(guard.admit(ip(1)).is_ok(), "the block expires");
        drop(t);
        guard.sweep();
        assert_eq!(guard.tracked(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_message_rate_is_shared_by_an_address() {
        let guard = IpGuard::new(IpLimits {
            rate: 5,
            ..IpLimits::default()
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
