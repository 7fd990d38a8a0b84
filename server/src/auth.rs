//! Optional token authentication of WebSocket clients with JSON Web Tokens (RFC 7519).
//!
//! A client presents a compact JWS (`header.payload.signature`, each base64url without padding)
//! signed with HS256 (a shared secret) or EdDSA (an Ed25519 key whose public half the relay
//! holds). [`verify`] checks the signature first and only then reads the claims, so the relay
//! never acts on unauthenticated JSON. A valid token grants [`Claims`]: the user id (`sub`), the
//! rooms it may join (`room` and/or `rooms`; neither means any room) and its expiry (`exp`,
//! required, so a leaked token does not work forever).
//!
//! The algorithm named in the token header only selects which configured key to try: a token
//! can never pick `none`, and an EdDSA token is not checked against the HS256 secret (or the
//! other way round), which rules out the classic algorithm-confusion attacks.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use protocol::{RoomId, UserId};
use serde_json::{Map, Value};
use sha2::Sha256;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// Longest token accepted, in bytes; a bigger one is rejected before any decoding.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Longest piece of token text (an algorithm name) echoed back in an error, in characters.
const MAX_ECHO_CHARS: usize = 32;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID
/// 1.3.101.112 }, BIT STRING (0 unused bits) }, followed by the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// How tokens are checked.
///
/// Authentication is on when any key is set ([`AuthConfig::enabled`]). A token is checked only
/// against the key of the algorithm its header names.
#[derive(Clone)]
pub struct AuthConfig {
    /// Shared secret for HS256 tokens. An empty secret is treated as configured but rejects
    /// every token (anyone could forge a token for it), so a misconfiguration fails closed.
    pub hs256_secret: Option<Vec<u8>>,
    /// Public key for EdDSA (Ed25519) tokens.
    pub ed25519_public_key: Option<VerifyingKey>,
    /// Clock skew tolerated when checking `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// Longest a token may still be valid for, in seconds: a later `exp` is refused.
    pub max_lifetime_secs: u64,
}

/// The default of [`AuthConfig::max_lifetime_secs`]: a year.
pub const DEFAULT_MAX_LIFETIME_SECS: u64 = 365 * 24 * 3600;

impl fmt::Debug for AuthConfig {
    /// Never prints the secret, since configs end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "hs256_secret",
                &self.hs256_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("ed25519_public_key", &self.ed25519_public_key)
            .field("leeway_secs", &self.leeway_secs)
            .field("max_lifetime_secs", &self.max_lifetime_secs)
            .finish()
    }
}

impl AuthConfig {
    /// Parses an Ed25519 public key given as base64 (standard or url-safe, padded or not) of the
    /// 32 raw key bytes, or as a PEM `PUBLIC KEY` block (SPKI DER: the 32 key bytes are the last
    /// 32 bytes of the 44-byte DER). Base64 of that 44-byte DER without the PEM armour is accepted
    /// too. Weak (small-order) keys are rejected.
    pub fn parse_ed25519_public_key(text: &str) -> Result<VerifyingKey, AuthError> {
        let text = text.trim();
        let bytes = if text.starts_with("-----BEGIN") {
            pem_body(text)?
        } else {
            decode_any_base64(text)?
        };
        let raw: [u8; 32] = match bytes.len() {
            32 => bytes.as_slice().try_into(),
            44 if bytes.starts_with(&ED25519_SPKI_PREFIX) => bytes[12..].try_into(),
            44 => return Err(invalid_key("DER is not an Ed25519 SubjectPublicKeyInfo")),
            _ => return Err(invalid_key("expected 32 key bytes or a 44-byte SPKI DER")),
        }
        .map_err(|_| invalid_key("expected 32 key bytes"))?;
        let key =
            VerifyingKey::from_bytes(&raw).map_err(|_| invalid_key("not a valid Ed25519 point"))?;
        if key.is_weak() {
            return Err(invalid_key("weak (small-order) key"));
        }
        Ok(key)
    }

    /// Whether any key is configured, i.e. whether clients must present a token.
    pub fn enabled(&self) -> bool {
        self.hs256_secret.is_some() || self.ed25519_public_key.is_some()
    }
}

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The user the token was issued to.
    pub sub: UserId,
    /// The rooms the user may join; `None` means any room.
    pub rooms: Option<Vec<String>>,
    /// When the token expires, in seconds since the Unix epoch.
    pub exp: u64,
}

impl Claims {
    /// Whether the token lets its holder join `room`.
    pub fn allows_room(&self, room: &RoomId) -> bool {
        match &self.rooms {
            None => true,
            Some(rooms) => rooms.iter().any(|r| r == room.as_str()),
        }
    }
}

/// Why a token (or a configured key) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The token is not a well-formed compact JWS with JSON header and payload.
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    /// The signature does not match the header and payload.
    #[error("token signature is invalid")]
    BadSignature,
    /// The header names an algorithm other than HS256 or EdDSA (including `none`).
    #[error("unsupported token algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The header names a supported algorithm for which no key is configured.
    #[error("no key configured for {0}")]
    NoKey(&'static str),
    /// The token expired more than the leeway ago.
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp` claim.
        exp: u64,
        /// The time of the check.
        now: u64,
    },
    /// The token's `nbf` is more than the leeway in the future.
    #[error("token is not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's `nbf` claim.
        nbf: u64,
        /// The time of the check.
        now: u64,
    },
    /// The token has no `exp` claim; tokens that never expire are refused.
    #[error("token has no exp claim")]
    MissingExp,
    /// The token has no `sub` claim.
    #[error("token has no sub claim")]
    MissingSub,
    /// A claim is present but has the wrong type or value.
    #[error("invalid {claim} claim: {reason}")]
    InvalidClaim {
        /// The claim's name (`sub`, `exp`, `nbf`, `room`, `rooms`).
        claim: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A configured Ed25519 public key could not be parsed.
    #[error("invalid Ed25519 public key: {0}")]
    InvalidKey(&'static str),
}

fn invalid_key(reason: &'static str) -> AuthError {
    AuthError::InvalidKey(reason)
}

fn invalid_claim(claim: &'static str, reason: impl Into<String>) -> AuthError {
    AuthError::InvalidClaim {
        claim,
        reason: reason.into(),
    }
}

/// The algorithms the relay accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Hs256,
    EdDsa,
}

impl Alg {
    fn name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::EdDsa => "EdDSA",
        }
    }
}

/// Checks a token and returns what it grants.
///
/// Checks, in order: size (at most [`MAX_TOKEN_BYTES`]) and shape (three base64url segments
/// without padding); the header `alg` (HS256 or EdDSA; `none` and anything else are refused) and
/// that a key is configured for it; the signature over `header.payload` (constant-time for
/// HS256, strict Ed25519 verification for EdDSA); then the claims: `exp` (required, a number;
/// expired when `now > exp + leeway`), `nbf` if present (refused when `now + leeway < nbf`), `sub`
/// (required, a valid [`UserId`]) and the rooms (`room`: a string, `rooms`: an array of strings;
/// both may be present and are merged; neither means any room).
pub fn verify(token: &str, cfg: &AuthConfig, now_unix: u64) -> Result<Claims, AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::Malformed("token is longer than 8 KiB"));
    }
    let mut segments = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(AuthError::Malformed(
            "expected three dot-separated segments",
        ));
    };

    let header = decode_json_object(header_b64, Segment::Header)?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) if alg == "HS256" => Alg::Hs256,
        Some(Value::String(alg)) if alg == "EdDSA" => Alg::EdDsa,
        Some(Value::String(alg)) => return Err(AuthError::UnsupportedAlgorithm(clip(alg))),
        Some(_) => return Err(AuthError::Malformed("header alg is not a string")),
        None => return Err(AuthError::Malformed("header has no alg")),
    };
    // RFC 7515 §4.1.11: a recipient must reject critical extensions it does not understand,
    // and we understand none.
    if header.contains_key("crit") {
        return Err(AuthError::Malformed(
            "critical header extensions are not supported",
        ));
    }

    let signature = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| AuthError::Malformed("signature is not base64url"))?;
    // The signing input is the two segments exactly as sent, with the dot between them.
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    check_signature(alg, cfg, signing_input.as_bytes(), &signature)?;

    let payload = decode_json_object(payload_b64, Segment::Payload)?;
    claims_from_payload(&payload, cfg, now_unix)
}

/// Checks `signature` over `input` with the configured key for `alg`.
fn check_signature(
    alg: Alg,
    cfg: &AuthConfig,
    input: &[u8],
    signature: &[u8],
) -> Result<(), AuthError> {
    match alg {
        Alg::Hs256 => {
            let secret = match &cfg.hs256_secret {
                Some(secret) if !secret.is_empty() => secret,
                _ => return Err(AuthError::NoKey(alg.name())),
            };
            let mut mac = hmac_sha256(secret);
            mac.update(input);
            // `verify_slice` compares in constant time and refuses truncated tags.
            mac.verify_slice(signature)
                .map_err(|_| AuthError::BadSignature)
        }
        Alg::EdDsa => {
            let key = cfg
                .ed25519_public_key
                .as_ref()
                .ok_or(AuthError::NoKey(alg.name()))?;
            let signature =
                Signature::from_slice(signature).map_err(|_| AuthError::BadSignature)?;
            // Strict verification refuses malleable signatures and small-order keys.
            key.verify_strict(input, &signature)
                .map_err(|_| AuthError::BadSignature)
        }
    }
}

/// Reads the claims of a payload whose signature has been checked.
fn claims_from_payload(
    payload: &Map<String, Value>,
    cfg: &AuthConfig,
    now: u64,
) -> Result<Claims, AuthError> {
    let leeway = cfg.leeway_secs;
    let exp = match payload.get("exp") {
        None => return Err(AuthError::MissingExp),
        // A fractional expiry is rounded down: the token expires slightly early, never late.
        Some(v) => numeric_date(v, "exp", f64::floor)?,
    };
    if now > exp.saturating_add(leeway) {
        return Err(AuthError::Expired { exp, now });
    }
    // Huge values (1e308, 2^70) saturate to u64::MAX in `numeric_date` and end here.
    let latest = now
        .saturating_add(cfg.max_lifetime_secs)
        .saturating_add(leeway);
    if exp > latest {
        return Err(invalid_claim(
            "exp",
            format!(
                "lies more than {} days ahead; tokens that long-lived are refused",
                cfg.max_lifetime_secs / 86400
            ),
        ));
    }
    if let Some(v) = payload.get("nbf") {
        // Rounded up, so the token never becomes valid early.
        let nbf = numeric_date(v, "nbf", f64::ceil)?;
        if now.saturating_add(leeway) < nbf {
            return Err(AuthError::NotYetValid { nbf, now });
        }
    }

    let sub = match payload.get("sub") {
        None => return Err(AuthError::MissingSub),
        Some(Value::String(sub)) => {
            UserId::new(sub.as_str()).map_err(|e| invalid_claim("sub", e.to_string()))?
        }
        Some(_) => return Err(invalid_claim("sub", "must be a string")),
    };

    let mut rooms: Option<Vec<String>> = None;
    if let Some(v) = payload.get("room") {
        let Value::String(room) = v else {
            return Err(invalid_claim("room", "must be a string"));
        };
        rooms = Some(vec![room.clone()]);
    }
    if let Some(v) = payload.get("rooms") {
        let Value::Array(list) = v else {
            return Err(invalid_claim("rooms", "must be an array of strings"));
        };
        let merged = rooms.get_or_insert_with(Vec::new);
        for item in list {
            let Value::String(room) = item else {
                return Err(invalid_claim("rooms", "must be an array of strings"));
            };
            if !merged.contains(room) {
                merged.push(room.clone());
            }
        }
    }

    Ok(Claims { sub, rooms, exp })
}

/// Reads a NumericDate (RFC 7519 §2): a non-negative JSON number of seconds, possibly
/// fractional, which `round` turns into whole seconds.
fn numeric_date(v: &Value, claim: &'static str, round: fn(f64) -> f64) -> Result<u64, AuthError> {
    let Value::Number(n) = v else {
        return Err(invalid_claim(claim, "must be a number"));
    };
    if let Some(secs) = n.as_u64() {
        return Ok(secs);
    }
    match n.as_f64() {
        // `as` saturates at u64::MAX for huge values, which the lifetime bound then refuses.
        Some(secs) if secs.is_finite() && secs >= 0.0 => Ok(round(secs) as u64),
        _ => Err(invalid_claim(claim, "must be a non-negative number")),
    }
}

/// The two JSON segments of a token, named in errors.
#[derive(Debug, Clone, Copy)]
enum Segment {
    Header,
    Payload,
}

impl Segment {
    /// The reason given when a key appears twice.
    fn duplicate_key(self) -> &'static str {
        match self {
            Segment::Header => "header has a duplicate key",
            Segment::Payload => "payload has a duplicate key",
        }
    }

    /// Error reasons: not base64url, not JSON, not a JSON object.
    fn errors(self) -> [&'static str; 3] {
        match self {
            Segment::Header => [
                "header is not base64url",
                "header is not JSON",
                "header is not a JSON object",
            ],
            Segment::Payload => [
                "payload is not base64url",
                "payload is not JSON",
                "payload is not a JSON object",
            ],
        }
    }
}

/// Decodes one base64url segment holding a JSON object. A key given twice makes the segment
/// ambiguous (parsers differ on which one wins: RFC 7515 §5.2 says to refuse or take the last),
/// so it is refused.
fn decode_json_object(text: &str, segment: Segment) -> Result<Map<String, Value>, AuthError> {
    let [not_base64, not_json, not_object] = segment.errors();
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| AuthError::Malformed(not_base64))?;
    match serde_json::from_slice::<UniqueKeys>(&bytes) {
        Ok(UniqueKeys::Object(map)) => Ok(map),
        Ok(UniqueKeys::NotObject) => Err(AuthError::Malformed(not_object)),
        Err(e) if e.to_string().starts_with(DUPLICATE_KEY) => {
            Err(AuthError::Malformed(segment.duplicate_key()))
        }
        Err(_) => Err(AuthError::Malformed(not_json)),
    }
}

/// Start of the error a [`UniqueKeys`] map with a repeated key fails with.
const DUPLICATE_KEY: &str = "duplicate key";

/// A JSON value read as a map whose keys must be distinct (nested values are read as usual).
enum UniqueKeys {
    Object(Map<String, Value>),
    NotObject,
}

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<UniqueKeys, A::Error> {
                let mut map = Map::new();
                while let Some((key, value)) = m.next_entry::<String, Value>()? {
                    if map.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!("{DUPLICATE_KEY} {key:?}")));
                    }
                    map.insert(key, value);
                }
                Ok(UniqueKeys::Object(map))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<UniqueKeys, A::Error> {
                while s.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(UniqueKeys::NotObject)
            }
            fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys::NotObject)
            }
            fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys::NotObject)
            }
            fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys::NotObject)
            }
            fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys::NotObject)
            }
            fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys::NotObject)
            }
            fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys::NotObject)
            }
        }
        d.deserialize_any(Visit)
    }
}

/// Shortens token text echoed in an error, so a hostile token cannot flood the logs.
fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_ECHO_CHARS {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX_ECHO_CHARS).collect();
        format!("{head:?}...")
    }
}

/// The base64 body of a PEM `PUBLIC KEY` block, decoded.
fn pem_body(text: &str) -> Result<Vec<u8>, AuthError> {
    const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
    const END: &str = "-----END PUBLIC KEY-----";
    let body = text
        .strip_prefix(BEGIN)
        .ok_or(invalid_key("PEM block is not a PUBLIC KEY"))?;
    let end = body
        .find(END)
        .ok_or(invalid_key("PEM block has no END line"))?;
    if !body[end + END.len()..].trim().is_empty() {
        return Err(invalid_key("text after the PEM block"));
    }
    let b64: String = body[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(b64)
        .map_err(|_| invalid_key("PEM body is not base64"))
}

/// Decodes base64 in any of the common alphabets, with or without padding.
fn decode_any_base64(text: &str) -> Result<Vec<u8>, AuthError> {
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .ok_or(invalid_key("not base64"))
}

/// A fresh HMAC-SHA256 keyed with `secret`.
fn hmac_sha256(secret: &[u8]) -> HmacSha256 {
    // HMAC hashes keys longer than a block and pads shorter ones, so every key length works.
    HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

/// The base64url header and claims segments, joined by a dot: the signing input.
fn signing_input(alg: Alg, sub: &str, rooms: &[String], ttl_secs: u64, now: u64) -> String {
    let header = format!(r#"{{"alg":"{}","typ":"JWT"}}"#, alg.name());
    // Built by hand rather than through a `Map` so the claim order is fixed and documented.
    let mut claims = format!(r#"{{"sub":{}"#, Value::from(sub));
    if !rooms.is_empty() {
        claims.push_str(&format!(r#","rooms":{}"#, Value::from(rooms.to_vec())));
    }
    let exp = now.saturating_add(ttl_secs);
    claims.push_str(&format!(r#","exp":{exp},"iat":{now}}}"#));
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

/// Issues an HS256 token (for the `server token` CLI and tests): header
/// `{"alg":"HS256","typ":"JWT"}`, claims `{"sub","rooms"?,"exp","iat"}` in that order, with
/// `rooms` left out when empty (any room) and `exp = now_unix + ttl_secs`.
pub fn issue_hs256(
    secret: &[u8],
    sub: &str,
    rooms: &[String],
    ttl_secs: u64,
    now_unix: u64,
) -> String {
    let input = signing_input(Alg::Hs256, sub, rooms, ttl_secs, now_unix);
    let mut mac = hmac_sha256(secret);
    mac.update(input.as_bytes());
    let tag = mac.finalize().into_bytes();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Issues an EdDSA token (tests), with the same claims as [`issue_hs256`].
pub fn issue_eddsa(
    key: &SigningKey,
    sub: &str,
    rooms: &[String],
    ttl_secs: u64,
    now_unix: u64,
) -> String {
    let input = signing_input(Alg::EdDsa, sub, rooms, ttl_secs, now_unix);
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// Seconds since the Unix epoch (0 if the clock is set before 1970).
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"test secret, long enough to be a real one";
    const NOW: u64 = 1_700_000_000;

    fn hs_cfg() -> AuthConfig {
        AuthConfig {
            hs256_secret: Some(SECRET.to_vec()),
            ed25519_public_key: None,
            leeway_secs: 30,
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
        }
    }

    fn signing_key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn ed_cfg(key: &SigningKey) -> AuthConfig {
        AuthConfig {
            hs256_secret: None,
            ed25519_public_key: Some(key.verifying_key()),
            leeway_secs: 30,
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
        }
    }

    fn rooms(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Signs arbitrary header and payload JSON with HS256, independently of `issue_hs256`.
    fn sign_hs256(secret: &[u8], header: &str, payload: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = HmacSha256::new_from_slice(secret).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn hs_token(payload: &str) -> String {
        sign_hs256(SECRET, r#"{"alg":"HS256","typ":"JWT"}"#, payload)
    }

    fn room(name: &str) -> RoomId {
        RoomId::new(name).unwrap()
    }

    #[test]
    fn hs256_round_trip() {
        let token = issue_hs256(SECRET, "alice", &rooms(&["a", "b"]), 600, NOW);
        let claims = verify(&token, &hs_cfg(), NOW + 10).unwrap();
        assert_eq!(
            claims,
            Claims {
                sub: UserId::new("alice").unwrap(),
                rooms: Some(rooms(&["a", "b"])),
                exp: NOW + 600,
            }
        );

        let any_room = issue_hs256(SECRET, "bob", &[], 600, NOW);
        let claims = verify(&any_room, &hs_cfg(), NOW).unwrap();
        assert_eq!(claims.rooms, None);
        assert!(claims.allows_room(&room("anything")));
    }

    #[test]
    fn issue_hs256_matches_an_independent_computation() {
        let token = issue_hs256(SECRET, "alice", &rooms(&["a", "b"]), 100, 1000);
        let expected = sign_hs256(
            SECRET,
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"sub":"alice","rooms":["a","b"],"exp":1100,"iat":1000}"#,
        );
        assert_eq!(token, expected);

        let token = issue_hs256(SECRET, "q\"uote", &[], 5, 7);
        let expected = sign_hs256(
            SECRET,
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"sub":"q\"uote","exp":12,"iat":7}"#,
        );
        assert_eq!(token, expected);
    }

    #[test]
    fn jwt_io_example_has_a_valid_signature_but_no_exp() {
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
                     eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.\
                     SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        assert_eq!(
            token,
            sign_hs256(
                b"your-256-bit-secret",
                r#"{"alg":"HS256","typ":"JWT"}"#,
                r#"{"sub":"1234567890","name":"John Doe","iat":1516239022}"#,
            )
        );
        let cfg = AuthConfig {
            hs256_secret: Some(b"your-256-bit-secret".to_vec()),
            ed25519_public_key: None,
            leeway_secs: 0,
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
        };
        assert_eq!(verify(token, &cfg, NOW), Err(AuthError::MissingExp));
        // With another secret the signature check fails first.
        assert_eq!(verify(token, &hs_cfg(), NOW), Err(AuthError::BadSignature));
    }

    #[test]
    fn forged_signature_is_rejected() {
        let token = issue_hs256(SECRET, "alice", &[], 600, NOW);
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        sig[0] ^= 1;
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig));
        assert_eq!(
            verify(&forged, &hs_cfg(), NOW),
            Err(AuthError::BadSignature)
        );

        let truncated = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig[..16]));
        assert_eq!(
            verify(&truncated, &hs_cfg(), NOW),
            Err(AuthError::BadSignature)
        );
        let empty = format!("{input}.");
        assert_eq!(verify(&empty, &hs_cfg(), NOW), Err(AuthError::BadSignature));
    }

    #[test]
    fn tampered_payload_is_rejected() {
        let token = issue_hs256(SECRET, "alice", &rooms(&["a"]), 600, NOW);
        let mut parts: Vec<&str> = token.split('.').collect();
        let evil = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"sub":"admin","exp":{},"iat":{NOW}}}"#,
            NOW + 600
        ));
        parts[1] = &evil;
        assert_eq!(
            verify(&parts.join("."), &hs_cfg(), NOW),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn wrong_secret_is_rejected() {
        let token = issue_hs256(b"another secret", "alice", &[], 600, NOW);
        assert_eq!(verify(&token, &hs_cfg(), NOW), Err(AuthError::BadSignature));
    }

    #[test]
    fn empty_secret_fails_closed() {
        let cfg = AuthConfig {
            hs256_secret: Some(Vec::new()),
            ed25519_public_key: None,
            leeway_secs: 0,
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
        };
        assert!(cfg.enabled());
        let token = issue_hs256(b"", "alice", &[], 600, NOW);
        assert_eq!(verify(&token, &cfg, NOW), Err(AuthError::NoKey("HS256")));
    }

    #[test]
    fn alg_none_is_rejected() {
        let exp = NOW + 600;
        let token = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"alice","exp":{exp}}}"#)),
        );
        let err = verify(&token, &hs_cfg(), NOW).unwrap_err();
        assert_eq!(err, AuthError::UnsupportedAlgorithm("\"none\"".into()));
        assert_eq!(err.to_string(), "unsupported token algorithm \"none\"");
    }

    #[test]
    fn alg_hs512_and_odd_headers_are_rejected() {
        let payload = format!(r#"{{"sub":"alice","exp":{}}}"#, NOW + 600);
        let token = sign_hs256(SECRET, r#"{"alg":"HS512","typ":"JWT"}"#, &payload);
        assert_eq!(
            verify(&token, &hs_cfg(), NOW),
            Err(AuthError::UnsupportedAlgorithm("\"HS512\"".into()))
        );
        // Algorithm names are case-sensitive.
        let token = sign_hs256(SECRET, r#"{"alg":"hs256"}"#, &payload);
        assert!(matches!(
            verify(&token, &hs_cfg(), NOW),
            Err(AuthError::UnsupportedAlgorithm(_))
        ));
        let token = sign_hs256(SECRET, r#"{"typ":"JWT"}"#, &payload);
        assert!(matches!(
            verify(&token, &hs_cfg(), NOW),
            Err(AuthError::Malformed(_))
        ));
        let token = sign_hs256(SECRET, r#"{"alg":256}"#, &payload);
        assert!(matches!(
            verify(&token, &hs_cfg(), NOW),
            Err(AuthError::Malformed(_))
        ));
        let token = sign_hs256(SECRET, r#"{"alg":"HS256","crit":["exp"]}"#, &payload);
        assert!(matches!(
            verify(&token, &hs_cfg(), NOW),
            Err(AuthError::Malformed(_))
        ));
        // A hostile algorithm name is not echoed in full.
        let long = "A".repeat(1000);
        let token = sign_hs256(SECRET, &format!(r#"{{"alg":"{long}"}}"#), &payload);
        let err = verify(&token, &hs_cfg(), NOW).unwrap_err().to_string();
        assert!(err.len() < 80, "{err}");
    }

    #[test]
    fn expiry_respects_leeway() {
        let token = issue_hs256(SECRET, "alice", &[], 60, NOW);
        let exp = NOW + 60;
        assert!(verify(&token, &hs_cfg(), exp).is_ok());
        // Within the 30 s leeway.
        assert!(verify(&token, &hs_cfg(), exp + 30).is_ok());
        let err = verify(&token, &hs_cfg(), exp + 31).unwrap_err();
        assert_eq!(err, AuthError::Expired { exp, now: exp + 31 });
        assert_eq!(
            err.to_string(),
            format!("token expired at {exp} (now {})", exp + 31)
        );
        let strict = AuthConfig {
            leeway_secs: 0,
            ..hs_cfg()
        };
        assert_eq!(
            verify(&token, &strict, exp + 1),
            Err(AuthError::Expired { exp, now: exp + 1 })
        );
    }

    #[test]
    fn exp_is_bounded_by_the_configured_lifetime() {
        let latest = NOW + DEFAULT_MAX_LIFETIME_SECS + 30;
        for exp in [
            "1e308".to_owned(),
            "1180591620717411303424".to_owned(),
            u64::MAX.to_string(),
            (latest + 1).to_string(),
        ] {
            let token = hs_token(&format!(r#"{{"sub":"alice","exp":{exp}}}"#));
            assert!(
                matches!(
                    verify(&token, &hs_cfg(), NOW),
                    Err(AuthError::InvalidClaim { claim: "exp", .. })
                ),
                "exp {exp} accepted"
            );
        }
        let token = hs_token(&format!(r#"{{"sub":"alice","exp":{latest}}}"#));
        assert!(verify(&token, &hs_cfg(), NOW).is_ok());
        let short = AuthConfig {
            max_lifetime_secs: 3600,
            ..hs_cfg()
        };
        let day = issue_hs256(SECRET, "alice", &[], 86400, NOW);
        assert!(verify(&day, &short, NOW).is_err());
        assert!(verify(&day, &short, NOW + 86400 - 3600).is_ok());
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let exp = NOW + 60;
        let twice = hs_token(&format!(r#"{{"sub":"alice","sub":"admin","exp":{exp}}}"#));
        assert_eq!(
            verify(&twice, &hs_cfg(), NOW),
            Err(AuthError::Malformed("payload has a duplicate key"))
        );
        let payload = format!(r#"{{"sub":"alice","exp":{exp}}}"#);
        let token = sign_hs256(SECRET, r#"{"alg":"HS256","alg":"none"}"#, &payload);
        assert_eq!(
            verify(&token, &hs_cfg(), NOW),
            Err(AuthError::Malformed("header has a duplicate key"))
        );
        // Still told apart from JSON that is not an object, or not JSON.
        let token = sign_hs256(SECRET, r#"["alg"]"#, &payload);
        assert_eq!(
            verify(&token, &hs_cfg(), NOW),
            Err(AuthError::Malformed("header is not a JSON object"))
        );
        let token = sign_hs256(SECRET, r#"{"alg":"#, &payload);
        assert_eq!(
            verify(&token, &hs_cfg(), NOW),
            Err(AuthError::Malformed("header is not JSON"))
        );
    }

    #[test]
    fn exp_must_be_a_number() {
        let token = hs_token(r#"{"sub":"alice","exp":"2000000000"}"#);
        assert!(matches!(
            verify(&token, &hs_cfg(), NOW),
            Err(AuthError::InvalidClaim { claim: "exp", .. })
        ));
        let token = hs_token(r#"{"sub":"alice","exp":-5}"#);
        assert!(matches!(
            verify(&token, &hs_cfg(), NOW),
            Err(AuthError::InvalidClaim { claim: "exp", .. })
        ));
        // Fractional NumericDates are allowed (RFC 7519 §2) and rounded down.
        let token = hs_token(&format!(r#"{{"sub":"alice","exp":{}.9}}"#, NOW + 5));
        assert_eq!(verify(&token, &hs_cfg(), NOW).unwrap().exp, NOW + 5);
    }

    #[test]
    fn nbf_in_the_future_is_rejected() {
        let exp = NOW + 600;
        let nbf = NOW + 100;
        let token = hs_token(&format!(r#"{{"sub":"alice","exp":{exp},"nbf":{nbf}}}"#));
        let err = verify(&token, &hs_cfg(), NOW).unwrap_err();
        assert_eq!(err, AuthError::NotYetValid { nbf, now: NOW });
        assert_eq!(
            err.to_string(),
            format!("token is not valid before {nbf} (now {NOW})")
        );
        // Within the leeway, and after nbf.
        assert!(verify(&token, &hs_cfg(), nbf - 30).is_ok());
        assert!(verify(&token, &hs_cfg(), nbf + 1).is_ok());
        let token = hs_token(&format!(r#"{{"sub":"alice","exp":{exp},"nbf":"soon"}}"#));
        assert!(matches!(
            verify(&token, &hs_cfg(), NOW),
            Err(AuthError::InvalidClaim { claim: "nbf", .. })
        ));
    }

    #[test]
    fn missing_exp_is_rejected() {
        let token = hs_token(r#"{"sub":"alice"}"#);
        let err = verify(&token, &hs_cfg(), NOW).unwrap_err();
        assert_eq!(err, AuthError::MissingExp);
        assert_eq!(err.to_string(), "token has no exp claim");
    }

    #[test]
    fn missing_or_bad_sub_is_rejected() {
        let exp = NOW + 600;
        let token = hs_token(&format!(r#"{{"exp":{exp}}}"#));
        let err = verify(&token, &hs_cfg(), NOW).unwrap_err();
        assert_eq!(err, AuthError::MissingSub);
        assert_eq!(err.to_string(), "token has no sub claim");

        let token = hs_token(&format!(r#"{{"sub":42,"exp":{exp}}}"#));
        assert!(matches!(
            verify(&token, &hs_cfg(), NOW),
            Err(AuthError::InvalidClaim { claim: "sub", .. })
        ));
        let token = hs_token(&format!(r#"{{"sub":"","exp":{exp}}}"#));
        assert!(matches!(
            verify(&token, &hs_cfg(), NOW),
            Err(AuthError::InvalidClaim { claim: "sub", .. })
        ));
    }

    #[test]
    fn sub_too_long_is_rejected() {
        let long = "x".repeat(protocol::MAX_ID_CHARS + 1);
        let token = issue_hs256(SECRET, &long, &[], 600, NOW);
        let err = verify(&token, &hs_cfg(), NOW).unwrap_err();
        assert!(matches!(err, AuthError::InvalidClaim { claim: "sub", .. }));
        assert!(err.to_string().starts_with("invalid sub claim: "), "{err}");
        let longest = "x".repeat(protocol::MAX_ID_CHARS);
        let token = issue_hs256(SECRET, &longest, &[], 600, NOW);
        assert!(verify(&token, &hs_cfg(), NOW).is_ok());
    }

    #[test]
    fn room_and_rooms_claims() {
        let exp = NOW + 600;
        let one = hs_token(&format!(r#"{{"sub":"a","exp":{exp},"room":"lobby"}}"#));
        let claims = verify(&one, &hs_cfg(), NOW).unwrap();
        assert_eq!(claims.rooms, Some(rooms(&["lobby"])));
        assert!(claims.allows_room(&room("lobby")));
        assert!(!claims.allows_room(&room("other")));

        let many = hs_token(&format!(r#"{{"sub":"a","exp":{exp},"rooms":["x","y"]}}"#));
        let claims = verify(&many, &hs_cfg(), NOW).unwrap();
        assert!(claims.allows_room(&room("x")));
        assert!(claims.allows_room(&room("y")));
        assert!(!claims.allows_room(&room("z")));

        let both = hs_token(&format!(
            r#"{{"sub":"a","exp":{exp},"room":"x","rooms":["y","x","z"]}}"#
        ));
        let claims = verify(&both, &hs_cfg(), NOW).unwrap();
        assert_eq!(claims.rooms, Some(rooms(&["x", "y", "z"])));

        // An explicit empty list grants no room.
        let none = hs_token(&format!(r#"{{"sub":"a","exp":{exp},"rooms":[]}}"#));
        let claims = verify(&none, &hs_cfg(), NOW).unwrap();
        assert!(!claims.allows_room(&room("x")));

        for bad in [r#""room":7"#, r#""rooms":"x""#, r#""rooms":["x",1]"#] {
            let token = hs_token(&format!(r#"{{"sub":"a","exp":{exp},{bad}}}"#));
            assert!(
                matches!(
                    verify(&token, &hs_cfg(), NOW),
                    Err(AuthError::InvalidClaim { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn eddsa_round_trip_and_wrong_key() {
        let key = signing_key(7);
        let token = issue_eddsa(&key, "carol", &rooms(&["r"]), 600, NOW);
        let claims = verify(&token, &ed_cfg(&key), NOW).unwrap();
        assert_eq!(claims.sub.as_str(), "carol");
        assert_eq!(claims.rooms, Some(rooms(&["r"])));
        assert_eq!(claims.exp, NOW + 600);

        let other = signing_key(8);
        assert_eq!(
            verify(&token, &ed_cfg(&other), NOW),
            Err(AuthError::BadSignature)
        );

        // Both keys configured: each token is checked with its own algorithm's key.
        let both = AuthConfig {
            ed25519_public_key: Some(key.verifying_key()),
            ..hs_cfg()
        };
        assert!(verify(&token, &both, NOW).is_ok());
        let hs = issue_hs256(SECRET, "dave", &[], 600, NOW);
        assert!(verify(&hs, &both, NOW).is_ok());
    }

    #[test]
    fn token_for_an_unconfigured_algorithm_is_rejected() {
        let key = signing_key(7);
        let token = issue_eddsa(&key, "carol", &[], 600, NOW);
        let err = verify(&token, &hs_cfg(), NOW).unwrap_err();
        assert_eq!(err, AuthError::NoKey("EdDSA"));
        assert_eq!(err.to_string(), "no key configured for EdDSA");

        let token = issue_hs256(SECRET, "alice", &[], 600, NOW);
        assert_eq!(
            verify(&token, &ed_cfg(&key), NOW),
            Err(AuthError::NoKey("HS256"))
        );
    }

    #[test]
    fn algorithm_confusion_is_rejected() {
        // An HS256 token keyed with the public key bytes must not pass as EdDSA, nor an
        // HS256-labelled token with an Ed25519 signature.
        let key = signing_key(7);
        let public = key.verifying_key().to_bytes();
        let token = issue_hs256(&public, "mallory", &[], 600, NOW);
        assert_eq!(
            verify(&token, &ed_cfg(&key), NOW),
            Err(AuthError::NoKey("HS256"))
        );
    }

    #[test]
    fn parses_raw_base64_public_keys() {
        let key = signing_key(9).verifying_key();
        let bytes = key.to_bytes();
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            let text = format!("  {}\n", engine.encode(bytes));
            assert_eq!(AuthConfig::parse_ed25519_public_key(&text), Ok(key));
        }
        assert!(matches!(
            AuthConfig::parse_ed25519_public_key(&STANDARD.encode([1u8; 31])),
            Err(AuthError::InvalidKey(_))
        ));
        assert!(matches!(
            AuthConfig::parse_ed25519_public_key("not base64 at all!"),
            Err(AuthError::InvalidKey(_))
        ));
        assert!(matches!(
            AuthConfig::parse_ed25519_public_key(""),
            Err(AuthError::InvalidKey(_))
        ));
        // The identity point is a valid encoding but a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            AuthConfig::parse_ed25519_public_key(&STANDARD.encode(identity)),
            Err(AuthError::InvalidKey(_))
        ));
    }

    #[test]
    fn parses_pem_public_keys() {
        let signing = signing_key(9);
        let key = signing.verifying_key();
        let mut der = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        der.extend_from_slice(&key.to_bytes());
        assert_eq!(der.len(), 44);
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(&der)
        );
        let parsed = AuthConfig::parse_ed25519_public_key(&pem).unwrap();
        assert_eq!(parsed, key);

        // The parsed key verifies tokens.
        let cfg = AuthConfig {
            hs256_secret: None,
            ed25519_public_key: Some(parsed),
            leeway_secs: 0,
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
        };
        assert!(cfg.enabled());
        let token = issue_eddsa(&signing, "erin", &[], 60, NOW);
        assert!(verify(&token, &cfg, NOW).is_ok());

        // The DER body without the armour is accepted too.
        assert_eq!(
            AuthConfig::parse_ed25519_public_key(&STANDARD.encode(&der)),
            Ok(key)
        );

        // Another algorithm's OID, a private key block, and a truncated block are refused.
        let mut x25519 = der.clone();
        x25519[8] = 0x6e;
        let other = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----",
            STANDARD.encode(&x25519)
        );
        let private = pem.replace("PUBLIC", "PRIVATE");
        let truncated = pem.replace("-----END PUBLIC KEY-----", "");
        for bad in [other, private, truncated] {
            assert!(
                matches!(
                    AuthConfig::parse_ed25519_public_key(&bad),
                    Err(AuthError::InvalidKey(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn enabled_means_any_key() {
        let none = AuthConfig {
            hs256_secret: None,
            ed25519_public_key: None,
            leeway_secs: 0,
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
        };
        assert!(!none.enabled());
        assert!(hs_cfg().enabled());
        assert!(ed_cfg(&signing_key(1)).enabled());
        assert_eq!(
            verify(&issue_hs256(SECRET, "a", &[], 60, NOW), &none, NOW),
            Err(AuthError::NoKey("HS256"))
        );
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let text = format!("{:?}", hs_cfg());
        assert!(!text.contains("test secret"), "{text}");
        assert!(text.contains("redacted"), "{text}");
    }

    #[test]
    fn garbage_is_malformed() {
        let not_json = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode("hello"),
            URL_SAFE_NO_PAD.encode("{}"),
            URL_SAFE_NO_PAD.encode("sig")
        );
        let array_header = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode("[1,2]"),
            URL_SAFE_NO_PAD.encode("{}")
        );
        let padded = issue_hs256(SECRET, "alice", &[], 600, NOW) + "=";
        let too_long = format!("{}.{}.x", "a".repeat(4096), "b".repeat(4096));
        let inputs = [
            String::new(),
            "abc".into(),
            "a.b".into(),
            "a.b.c.d".into(),
            "...".into(),
            "!!!.@@@.###".into(),
            "eyJhbGciOiJIUzI1NiJ9.e30.%%%".into(),
            not_json,
            array_header,
            padded,
            too_long,
        ];
        for input in inputs {
            let result = verify(&input, &hs_cfg(), NOW);
            assert!(
                matches!(result, Err(AuthError::Malformed(_))),
                "{input:?}: {result:?}"
            );
        }

        // A correctly signed token whose payload is not a JSON object.
        for payload in ["not json", "[1]", "\"str\""] {
            let token = hs_token(payload);
            assert!(
                matches!(verify(&token, &hs_cfg(), NOW), Err(AuthError::Malformed(_))),
                "{payload}"
            );
        }
        assert!(
            AuthError::Malformed("x")
                .to_string()
                .starts_with("token is malformed: ")
        );
    }

    #[test]
    fn now_unix_is_recent() {
        assert!(now_unix() > NOW);
    }

    proptest! {
        #[test]
        fn verify_never_panics_on_arbitrary_text(s in "\\PC{0,300}") {
            let _ = verify(&s, &hs_cfg(), NOW);
        }

        #[test]
        fn verify_never_panics_on_token_shaped_text(
            a in "[A-Za-z0-9_-]{0,80}",
            b in "[A-Za-z0-9_-]{0,80}",
            c in "[A-Za-z0-9_-]{0,90}",
        ) {
            let token = format!("{a}.{b}.{c}");
            prop_assert!(verify(&token, &hs_cfg(), NOW).is_err());
        }

        #[test]
        fn any_signed_claims_never_panic(payload in "\\PC{0,200}") {
            let _ = verify(&hs_token(&payload), &hs_cfg(), NOW);
        }
    }
}
