//! Running several relay instances behind one load balancer, sharing their state through Redis.
//!
//! - `store.rs`: [`RedisStore`], the authoritative room state in Redis (membership, caps,
//!   locks, passwords), every change one atomic Lua script (`lua/*.lua`), so the caps hold
//!   exactly however many instances join at once; instance heartbeats and the clean-up of dead
//!   instances; pub/sub channels that carry messages to the instance holding a socket.
//! - `router.rs`: [`RedisRouter`], the relay's routing interface over that store.

mod router;
mod store;

pub use router::RedisRouter;
pub use store::{
    JoinOutcome, JoinRefusal, Left, Member, NotInRoom, RedisStore, Route, RouteRefusal, StoreError,
    password_digest,
};
