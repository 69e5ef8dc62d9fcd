//! Access tokens: checking a JWT from the company's OpenID Connect provider against the keys the
//! provider publishes, and reading who it names and which groups they are in.
//!
//! Only RS256 and ES256 are accepted, each only with a key of its own kind: a token that says
//! `alg: none`, or that is HMAC-signed with a public key as the secret, is refused. `iss`, `aud`,
//! `exp` and `nbf` are checked with a small leeway. Keys are cached; a token naming an unknown
//! `kid` makes the verifier fetch the key set again, at most once per `min_refetch`, so the
//! provider can rotate keys without a server restart and a flood of bogus tokens cannot turn
//! into a flood of fetches.
//!
//! This module never logs a token. Mapping groups to roles is `auth`'s business, not this one's.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use tokio::sync::RwLock;

/// What a valid token says about its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The token's subject.
    pub subject: String,
    /// The groups in the configured claim.
    pub groups: Vec<String>,
    /// When the token expires, seconds since the Unix epoch.
    pub expires_at: u64,
}

/// What a token must say to be accepted.
#[derive(Clone, Debug)]
pub struct Rules {
    /// The provider's issuer URL, exactly as in its tokens.
    pub issuer: String,
    /// The audience MONTI's API is registered as.
    pub audience: String,
    /// The claim that lists the holder's groups (`groups` for most providers).
    pub groups_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`, seconds.
    pub leeway_secs: u64,
}

/// Why a token was refused. Callers answer every kind with the same 401; the kinds are for
/// debug logs and metrics.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT at all.
    #[error("malformed token")]
    Malformed,
    /// An algorithm other than RS256 or ES256, or one that does not fit the key.
    #[error("algorithm not accepted")]
    Algorithm,
    /// No key with the token's `kid`, even after refreshing the key set.
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// Past `exp`.
    #[error("token expired")]
    Expired,
    /// Before `nbf`.
    #[error("token not yet valid")]
    NotYetValid,
    /// Another issuer.
    #[error("wrong issuer")]
    Issuer,
    /// Another audience.
    #[error("wrong audience")]
    Audience,
    /// A required claim is missing or of the wrong type.
    #[error("missing or invalid claim {0}")]
    Claim(&'static str),
    /// The key set could not be fetched.
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
}

impl TokenError {
    /// A short stable name, for metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::Algorithm => "algorithm",
            TokenError::UnknownKey => "unknown_key",
            TokenError::Signature => "signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::Issuer => "issuer",
            TokenError::Audience => "audience",
            TokenError::Claim(_) => "claim",
            TokenError::KeysUnavailable(_) => "keys_unavailable",
        }
    }
}

/// Where the provider's keys come from.
pub trait KeySource: Send + Sync {
    /// Fetches the current key set.
    fn fetch(&self) -> impl Future<Output = anyhow::Result<JwkSet>> + Send;
}

/// Fetches keys the standard way: the issuer's discovery document names its `jwks_uri`.
pub struct DiscoveredKeys {
    http: reqwest::Client,
    issuer: String,
}

impl DiscoveredKeys {
    /// Keys of the provider at `issuer`.
    pub fn new(issuer: &str) -> anyhow::Result<DiscoveredKeys> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(DiscoveredKeys {
            http,
            issuer: issuer.trim_end_matches('/').to_owned(),
        })
    }
}

impl KeySource for DiscoveredKeys {
    async fn fetch(&self) -> anyhow::Result<JwkSet> {
        let discovery_url = format!("{}/.well-known/openid-configuration", self.issuer);
        let discovery: Value = self
            .http
            .get(&discovery_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("cannot fetch {discovery_url}"))?
            .json()
            .await
            .context("discovery document is not JSON")?;
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .context("discovery document has no jwks_uri")?;
        self.http
            .get(jwks_uri)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("cannot fetch {jwks_uri}"))?
            .json()
            .await
            .context("key set is not a JWK set")
    }
}

/// Checks tokens against one provider's rules and keys.
pub struct Verifier<S> {
    rules: Rules,
    source: S,
    keys: RwLock<JwkSet>,
    /// When keys were last fetched; `None` before the first fetch.
    last_fetch: Mutex<Option<Instant>>,
    min_refetch: Duration,
}

impl<S: KeySource> Verifier<S> {
    /// A verifier that fetches keys from `source` when it first needs them, and again for an
    /// unknown `kid` at most once per `min_refetch`.
    pub fn new(rules: Rules, source: S, min_refetch: Duration) -> Verifier<S> {
        Verifier {
            rules,
            source,
            keys: RwLock::new(JwkSet { keys: Vec::new() }),
            last_fetch: Mutex::new(None),
            min_refetch,
        }
    }

    /// Verifies a token and returns who it names.
    pub async fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let header = decode_header(token).map_err(|err| match err.kind() {
            // `alg: none` and other algorithms the library does not know end up here.
            jsonwebtoken::errors::ErrorKind::Json(_) => TokenError::Algorithm,
            _ => TokenError::Malformed,
        })?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let jwk = match self.key(&kid).await {
            Some(jwk) => jwk,
            None => {
                self.refetch().await?;
                self.key(&kid).await.ok_or(TokenError::UnknownKey)?
            }
        };
        let fits = matches!(
            (&jwk.algorithm, header.alg),
            (AlgorithmParameters::EllipticCurve(_), Algorithm::ES256)
                | (AlgorithmParameters::RSA(_), Algorithm::RS256)
        );
        let declared = jwk.common.key_algorithm;
        if !fits || declared.is_some_and(|alg| alg != KeyAlgorithm::from(header.alg)) {
            return Err(TokenError::Algorithm);
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| TokenError::UnknownKey)?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.rules.issuer]);
        validation.set_audience(&[&self.rules.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.rules.leeway_secs;
        let claims = decode::<Value>(token, &key, &validation)
            .map_err(|err| {
                use jsonwebtoken::errors::ErrorKind;
                match err.kind() {
                    ErrorKind::InvalidSignature => TokenError::Signature,
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                    ErrorKind::InvalidIssuer => TokenError::Issuer,
                    ErrorKind::InvalidAudience => TokenError::Audience,
                    ErrorKind::InvalidAlgorithm => TokenError::Algorithm,
                    ErrorKind::MissingRequiredClaim(_) => TokenError::Claim("exp, iss, aud or sub"),
                    _ => TokenError::Malformed,
                }
            })?
            .claims;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or(TokenError::Claim("sub"))?;
        let groups = match claims.get(&self.rules.groups_claim) {
            Some(Value::Array(groups)) => groups
                .iter()
                .map(|group| group.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .ok_or(TokenError::Claim("groups"))?,
            // A single group as a string, as some providers send it.
            Some(Value::String(group)) => vec![group.clone()],
            _ => return Err(TokenError::Claim("groups")),
        };
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or(TokenError::Claim("exp"))?;
        Ok(Identity {
            subject: subject.to_owned(),
            groups,
            expires_at,
        })
    }

    async fn key(&self, kid: &str) -> Option<Jwk> {
        self.keys.read().await.find(kid).cloned()
    }

    /// Fetches the key set again unless that was done less than `min_refetch` ago.
    async fn refetch(&self) -> Result<(), TokenError> {
        {
            // Short section, no await inside: a std Mutex is right.
            let mut last = self
                .last_fetch
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if last.is_some_and(|at| at.elapsed() < self.min_refetch) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        let keys = self
            .source
            .fetch()
            .await
            .map_err(|err| TokenError::KeysUnavailable(format!("{err:#}")))?;
        *self.keys.write().await = keys;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const ES256_KEY: &[u8] = include_bytes!("../tests/fixtures/es256-test-key.pem");
    const RS256_KEY: &[u8] = include_bytes!("../tests/fixtures/rs256-test-key.pem");
    const RS256_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/rs256-test-pub.pem");
    const ISSUER: &str = "https://id.example.test";
    const AUDIENCE: &str = "monti-api";

    /// A key source the test controls: the set it serves can be swapped (rotation), and it
    /// counts fetches.
    struct TestKeys {
        set: Mutex<JwkSet>,
        fetches: AtomicUsize,
    }

    impl KeySource for &TestKeys {
        async fn fetch(&self) -> anyhow::Result<JwkSet> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            Ok(self.set.lock().expect("lock").clone())
        }
    }

    fn jwk(kid: &str, alg: Algorithm) -> Jwk {
        let key = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(ES256_KEY),
            _ => EncodingKey::from_rsa_pem(RS256_KEY),
        }
        .expect("test key");
        let mut jwk = Jwk::from_encoding_key(&key, alg).expect("jwk");
        jwk.common.key_id = Some(kid.to_owned());
        jwk
    }

    fn keys(jwks: Vec<Jwk>) -> TestKeys {
        TestKeys {
            set: Mutex::new(JwkSet { keys: jwks }),
            fetches: AtomicUsize::new(0),
        }
    }

    fn verifier(source: &TestKeys) -> Verifier<&TestKeys> {
        let rules = Rules {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            groups_claim: "groups".into(),
            leeway_secs: 30,
        };
        Verifier::new(rules, source, Duration::from_secs(60))
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "anna", "groups": ["monti-sup-berlin"],
            "iat": now(), "nbf": now(), "exp": now() + 300,
        })
    }

    fn sign(alg: Algorithm, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        let key = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(ES256_KEY),
            _ => EncodingKey::from_rsa_pem(RS256_KEY),
        }
        .expect("test key");
        encode(&header, claims, &key).expect("signs")
    }

    fn with(mut claims: Value, key: &str, value: Value) -> Value {
        claims[key] = value;
        claims
    }

    #[tokio::test]
    async fn valid_es256_and_rs256_tokens_name_their_holder_and_groups() {
        let source = keys(vec![
            jwk("ec-1", Algorithm::ES256),
            jwk("rsa-1", Algorithm::RS256),
        ]);
        let verifier = verifier(&source);
        for (alg, kid) in [(Algorithm::ES256, "ec-1"), (Algorithm::RS256, "rsa-1")] {
            let identity = verifier
                .verify(&sign(alg, kid, &claims()))
                .await
                .expect("accepted");
            assert_eq!(identity.subject, "anna");
            assert_eq!(identity.groups, ["monti-sup-berlin"]);
        }
        assert_eq!(source.fetches.load(Ordering::SeqCst), 1, "keys are cached");
    }

    #[tokio::test]
    async fn every_bad_token_is_refused_for_its_own_reason() {
        let source = keys(vec![
            jwk("ec-1", Algorithm::ES256),
            jwk("rsa-1", Algorithm::RS256),
        ]);
        let verifier = verifier(&source);
        let hour_ago = now() - 3600;
        let cases: Vec<(&str, String, TokenError)> = vec![
            ("garbage", "not.a.token".into(), TokenError::Malformed),
            (
                "expired",
                sign(
                    Algorithm::ES256,
                    "ec-1",
                    &with(claims(), "exp", json!(hour_ago)),
                ),
                TokenError::Expired,
            ),
            (
                "not yet valid",
                sign(
                    Algorithm::ES256,
                    "ec-1",
                    &with(claims(), "nbf", json!(now() + 3600)),
                ),
                TokenError::NotYetValid,
            ),
            (
                "wrong issuer",
                sign(
                    Algorithm::ES256,
                    "ec-1",
                    &with(claims(), "iss", json!("https://evil.test")),
                ),
                TokenError::Issuer,
            ),
            (
                "wrong audience",
                sign(
                    Algorithm::ES256,
                    "ec-1",
                    &with(claims(), "aud", json!("other-api")),
                ),
                TokenError::Audience,
            ),
            (
                "unknown key",
                sign(Algorithm::ES256, "ec-9", &claims()),
                TokenError::UnknownKey,
            ),
            (
                "no groups claim",
                sign(
                    Algorithm::ES256,
                    "ec-1",
                    &with(claims(), "groups", Value::Null),
                ),
                TokenError::Claim("groups"),
            ),
            (
                "an RSA token naming the EC key",
                sign(Algorithm::RS256, "ec-1", &claims()),
                TokenError::Algorithm,
            ),
        ];
        for (what, token, expected) in cases {
            assert_eq!(verifier.verify(&token).await, Err(expected), "{what}");
        }
    }

    #[tokio::test]
    async fn alg_none_and_hmac_signed_with_the_public_key_are_refused() {
        let source = keys(vec![jwk("rsa-1", Algorithm::RS256)]);
        let verifier = verifier(&source);
        let b64 = |value: &Value| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
        };
        let unsigned = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "kid": "rsa-1"})),
            b64(&claims())
        );
        assert_eq!(verifier.verify(&unsigned).await, Err(TokenError::Algorithm));
        // The classic confusion attack: HS256 with the RSA public key as the shared secret.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        let forged =
            encode(&header, &claims(), &EncodingKey::from_secret(RS256_PUBLIC)).expect("signs");
        assert_eq!(verifier.verify(&forged).await, Err(TokenError::Algorithm));
    }

    #[tokio::test]
    async fn a_small_clock_skew_is_tolerated() {
        let source = keys(vec![jwk("ec-1", Algorithm::ES256)]);
        let verifier = verifier(&source);
        let just_expired = with(claims(), "exp", json!(now() - 10));
        assert!(
            verifier
                .verify(&sign(Algorithm::ES256, "ec-1", &just_expired))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_rotated_key_is_fetched_once_and_bogus_kids_do_not_cause_a_fetch_storm() {
        let source = keys(vec![jwk("old", Algorithm::ES256)]);
        let rotating = Verifier::new(
            Rules {
                issuer: ISSUER.into(),
                audience: AUDIENCE.into(),
                groups_claim: "groups".into(),
                leeway_secs: 30,
            },
            &source,
            Duration::ZERO,
        );
        assert!(
            rotating
                .verify(&sign(Algorithm::ES256, "old", &claims()))
                .await
                .is_ok()
        );
        // The provider rotates: the same key material under a new kid replaces the old one.
        *source.set.lock().expect("lock") = JwkSet {
            keys: vec![jwk("new", Algorithm::ES256)],
        };
        assert!(
            rotating
                .verify(&sign(Algorithm::ES256, "new", &claims()))
                .await
                .is_ok()
        );
        assert_eq!(source.fetches.load(Ordering::SeqCst), 2);

        // With the usual limit, the first use fetches and bogus kids after it fetch nothing.
        let limited = verifier(&source);
        assert!(
            limited
                .verify(&sign(Algorithm::ES256, "new", &claims()))
                .await
                .is_ok()
        );
        for _ in 0..20 {
            assert_eq!(
                limited
                    .verify(&sign(Algorithm::ES256, "bogus", &claims()))
                    .await,
                Err(TokenError::UnknownKey)
            );
        }
        assert_eq!(
            source.fetches.load(Ordering::SeqCst),
            3,
            "one fetch for the first use, none for bogus kids"
        );
    }
}
