//! The ICE servers each client is told to use, with short-lived TURN credentials.
//!
//! TURN credentials follow the "TURN REST API" scheme that coturn implements as
//! `use-auth-secret` / `static-auth-secret`: the relay and the TURN server share a secret, and
//! the relay mints a credential per connection without talking to the TURN server. The user name
//! carries its own expiry time, and the password is an HMAC of the user name under the shared
//! secret, so the TURN server can check both on its own. Nothing is stored: a credential simply
//! stops working once its expiry time has passed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use protocol::IceServer;
use sha1::Sha1;

/// Which STUN and TURN servers clients are told about, and how TURN credentials are minted.
#[derive(Debug, Clone, Default)]
pub struct TurnConfig {
    /// `stun:` URLs, handed out without credentials.
    pub stun_urls: Vec<String>,
    /// `turn:` / `turns:` URLs of one TURN deployment (they share the secret).
    pub turn_urls: Vec<String>,
    /// The secret shared with the TURN server (coturn's `static-auth-secret`). Without it the
    /// TURN URLs are handed out without credentials, for a TURN server that needs none.
    pub secret: Option<String>,
    /// How long minted credentials stay valid, in seconds. It should outlast a call's setup
    /// (ICE restarts included): the TURN server checks the expiry when an allocation is made or
    /// refreshed, so a credential that expires too soon cuts calls short.
    pub ttl_secs: u64,
}

/// A TURN REST API credential for `user`, valid until `expiry_unix` (seconds since the epoch).
///
/// Returns `(username, credential)`: the user name is `"<expiry>"`, or `"<expiry>:<user>"` when
/// `user` is not empty; the credential is `base64(HMAC-SHA1(secret, username))` (standard
/// alphabet, padded), exactly what coturn's `use-auth-secret` checks.
pub fn credentials(secret: &str, user: &str, expiry_unix: u64) -> (String, String) {
    let username = if user.is_empty() {
        expiry_unix.to_string()
    } else {
        format!("{expiry_unix}:{user}")
    };
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(username.as_bytes());
    let credential = STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

/// The `iceServers` for one connection at time `now_unix`.
///
/// One entry with every STUN URL (no credentials) when there are any, then one entry with every
/// TURN URL: with fresh credentials for `user` expiring at `now_unix + ttl_secs` when a secret
/// is set, without credentials otherwise. Empty when nothing is configured.
pub fn ice_servers(cfg: &TurnConfig, user: &str, now_unix: u64) -> Vec<IceServer> {
    let mut servers = Vec::with_capacity(2);
    if !cfg.stun_urls.is_empty() {
        servers.push(IceServer {
            urls: cfg.stun_urls.clone(),
            username: None,
            credential: None,
        });
    }
    if !cfg.turn_urls.is_empty() {
        let (username, credential) = match &cfg.secret {
            Some(secret) => {
                let expiry = now_unix.saturating_add(cfg.ttl_secs);
                let (username, credential) = credentials(secret, user, expiry);
                (Some(username), Some(credential))
            }
            None => (None, None),
        };
        servers.push(IceServer {
            urls: cfg.turn_urls.clone(),
            username,
            credential,
        });
    }
    servers
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::Digest;

    /// HMAC-SHA1 built from its definition (RFC 2104) on the bare hash, so the check does not
    /// go through the `hmac` crate that the code under test uses.
    fn rfc2104_hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
        const BLOCK: usize = 64;
        let mut block_key = [0u8; BLOCK];
        if key.len() > BLOCK {
            block_key[..20].copy_from_slice(&Sha1::digest(key));
        } else {
            block_key[..key.len()].copy_from_slice(key);
        }
        let ipad: Vec<u8> = block_key.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = block_key.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha1::new()
            .chain_update(&ipad)
            .chain_update(message)
            .finalize();
        let outer = Sha1::new()
            .chain_update(&opad)
            .chain_update(inner)
            .finalize();
        outer.into()
    }

    #[test]
    fn credential_matches_pinned_coturn_vectors() {
        // Computed once with Python's hmac/hashlib/base64:
        // base64.b64encode(hmac.new(b'secret', b'1700000000:alice', hashlib.sha1).digest())
        assert_eq!(
            credentials("secret", "alice", 1_700_000_000),
            (
                "1700000000:alice".to_owned(),
                "d8soP47RbdIKLDUOpnJPVQyq5Ts=".to_owned()
            )
        );
        // Same, over b'1700000000'.
        assert_eq!(
            credentials("secret", "", 1_700_000_000),
            (
                "1700000000".to_owned(),
                "WGw37+g43pfwVUmrc9tgArn/juE=".to_owned()
            )
        );
    }

    #[test]
    fn credential_is_base64_of_hmac_sha1_of_username() {
        let long_key = "k".repeat(100); // longer than a SHA-1 block: the key is hashed first
        for (secret, user, expiry) in [
            ("secret", "alice", 1_700_000_000),
            ("another secret", "bob:with:colons", 42),
            ("", "", 0),
            (long_key.as_str(), "carol", u64::MAX),
        ] {
            let (username, credential) = credentials(secret, user, expiry);
            let expected = rfc2104_hmac_sha1(secret.as_bytes(), username.as_bytes());
            assert_eq!(
                credential,
                STANDARD.encode(expected),
                "{secret:?} {username:?}"
            );
            assert_eq!(STANDARD.decode(&credential).unwrap().len(), 20);
            assert!(credential.ends_with('='), "padded: {credential}");
        }
    }

    #[test]
    fn username_carries_expiry_then_user() {
        assert_eq!(credentials("s", "alice", 123).0, "123:alice");
        assert_eq!(credentials("s", "", 123).0, "123");
        // coturn reads the expiry up to the first colon; later colons belong to the user.
        assert_eq!(credentials("s", "a:b", 123).0, "123:a:b");
    }

    fn urls(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nothing_configured_gives_no_servers() {
        assert!(ice_servers(&TurnConfig::default(), "alice", 1000).is_empty());
        // A secret alone does not make a TURN server.
        let cfg = TurnConfig {
            secret: Some("secret".into()),
            ttl_secs: 60,
            ..TurnConfig::default()
        };
        assert!(ice_servers(&cfg, "alice", 1000).is_empty());
    }

    #[test]
    fn stun_only_gives_one_entry_without_credentials() {
        let cfg = TurnConfig {
            stun_urls: urls(&["stun:a.example:3478", "stun:b.example:3478"]),
            secret: Some("secret".into()),
            ttl_secs: 60,
            ..TurnConfig::default()
        };
        assert_eq!(
            ice_servers(&cfg, "alice", 1000),
            vec![IceServer {
                urls: urls(&["stun:a.example:3478", "stun:b.example:3478"]),
                username: None,
                credential: None,
            }]
        );
    }

    #[test]
    fn turn_with_secret_gets_fresh_credentials() {
        let cfg = TurnConfig {
            stun_urls: urls(&["stun:turn.example:3478"]),
            turn_urls: urls(&[
                "turn:turn.example:3478?transport=udp",
                "turns:turn.example:5349?transport=tcp",
            ]),
            secret: Some("secret".into()),
            ttl_secs: 86_400,
        };
        let servers = ice_servers(&cfg, "alice", 1_699_913_600);
        assert_eq!(
            servers,
            vec![
                IceServer {
                    urls: urls(&["stun:turn.example:3478"]),
                    username: None,
                    credential: None,
                },
                IceServer {
                    urls: cfg.turn_urls.clone(),
                    // Expiry = now + ttl = 1_700_000_000: the pinned vector above.
                    username: Some("1700000000:alice".into()),
                    credential: Some("d8soP47RbdIKLDUOpnJPVQyq5Ts=".into()),
                },
            ]
        );
        // Without a user, the user name is the bare expiry.
        let anonymous = ice_servers(&cfg, "", 1_699_913_600);
        assert_eq!(anonymous[1].username.as_deref(), Some("1700000000"));
        assert_eq!(
            anonymous[1].credential.as_deref(),
            Some("WGw37+g43pfwVUmrc9tgArn/juE=")
        );
        // Later connections get later expiries.
        let later = ice_servers(&cfg, "alice", 1_699_913_601);
        assert_eq!(later[1].username.as_deref(), Some("1700000001:alice"));
    }

    #[test]
    fn turn_without_secret_has_no_credentials() {
        let cfg = TurnConfig {
            turn_urls: urls(&["turn:turn.example:3478"]),
            ttl_secs: 60,
            ..TurnConfig::default()
        };
        assert_eq!(
            ice_servers(&cfg, "alice", 1000),
            vec![IceServer {
                urls: urls(&["turn:turn.example:3478"]),
                username: None,
                credential: None,
            }]
        );
    }

    #[test]
    fn expiry_saturates_instead_of_wrapping() {
        let cfg = TurnConfig {
            turn_urls: urls(&["turn:turn.example:3478"]),
            secret: Some("secret".into()),
            ttl_secs: u64::MAX,
            ..TurnConfig::default()
        };
        let servers = ice_servers(&cfg, "", 1000);
        assert_eq!(servers[0].username, Some(u64::MAX.to_string()));
    }

    #[test]
    fn serializes_like_rtc_ice_server() {
        let cfg = TurnConfig {
            stun_urls: urls(&["stun:s.example"]),
            turn_urls: urls(&["turn:t.example"]),
            secret: Some("secret".into()),
            ttl_secs: 86_400,
        };
        let json = serde_json::to_string(&ice_servers(&cfg, "alice", 1_699_913_600)).unwrap();
        assert_eq!(
            json,
            r#"[{"urls":["stun:s.example"]},{"urls":["turn:t.example"],"username":"1700000000:alice","credential":"d8soP47RbdIKLDUOpnJPVQyq5Ts="}]"#
        );
    }
}
