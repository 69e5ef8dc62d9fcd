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
    /// Why `groups` is empty when the token carries no groups claim (it names the claims the
    /// token does have, never their values); `None` when the claim was there.
    pub groups_note: Option<String>,
    /// When the token expires, seconds since the Unix epoch.
    pub expires_at: u64,
    /// When its holder signed in, ms since the Unix epoch: the token's `auth_time` (kept
    /// across refreshes), else its `iat`; `None` when it has neither.
    pub signed_in_ms: Option<u64>,
}

/// What a token must say to be accepted.
#[derive(Clone, Debug)]
pub struct Rules {
    /// The provider's issuer URL, exactly as in its tokens.
    pub issuer: String,
    /// The audience MONTI's API is registered as (in `aud`, or in `client_id` for providers
    /// whose access tokens have no `aud`, such as Amazon Cognito).
    pub audience: String,
    /// The claim that lists the holder's groups: a name (`groups`, `cognito:groups`, `roles`),
    /// or a path through objects (`realm_access.roles` for Keycloak).
    pub groups_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`, seconds.
    pub leeway_secs: u64,
}

/// Why a token was refused, in words a person can act on. Nothing secret: the issuer and
/// audience are public (`GET /api/v1/auth`), and claims are named, never their values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT at all.
    #[error("the token is not a JWT")]
    Malformed,
    /// An algorithm other than RS256 or ES256, or one that does not fit the key.
    #[error(
        "the token is signed with {0}; MONTI accepts RS256 and ES256, each with a key of its kind"
    )]
    Algorithm(String),
    /// No key with the token's `kid`, even after refreshing the key set.
    #[error(
        "the provider publishes no signing key {0} (keys fetched again, at most once a minute)"
    )]
    UnknownKey(String),
    /// The signature does not verify, even with the key set fetched again.
    #[error("the signature does not verify with the provider's key {0}")]
    Signature(String),
    /// Past `exp`.
    #[error("the token expired {0} s ago")]
    Expired(u64),
    /// Before `nbf`.
    #[error("the token is not valid for another {0} s")]
    NotYetValid(u64),
    /// Another issuer.
    #[error("the token was issued by {got:?}, MONTI expects {expected:?} ([auth] issuer){hint}")]
    Issuer {
        /// The configured issuer.
        expected: String,
        /// The token's `iss`.
        got: String,
        /// A hint when the two differ only in spelling.
        hint: &'static str,
    },
    /// Another audience.
    #[error("the token is for audience {got}, MONTI expects {expected:?} ([auth] audience)")]
    Audience {
        /// The configured audience.
        expected: String,
        /// The token's `aud` (or `client_id`), as JSON.
        got: String,
    },
    /// A required claim is missing or of the wrong type.
    #[error("the token's claim {0} is missing or not {1}")]
    Claim(&'static str, &'static str),
    /// The key set could not be fetched.
    #[error("the provider's signing keys cannot be fetched: {0}")]
    KeysUnavailable(String),
}

impl TokenError {
    /// One of each kind, for checks that every reason is handled somewhere (the alarms).
    pub fn examples() -> [TokenError; 10] {
        let text = String::new;
        [
            TokenError::Malformed,
            TokenError::Algorithm(text()),
            TokenError::UnknownKey(text()),
            TokenError::Signature(text()),
            TokenError::Expired(0),
            TokenError::NotYetValid(0),
            TokenError::Issuer {
                expected: text(),
                got: text(),
                hint: "",
            },
            TokenError::Audience {
                expected: text(),
                got: text(),
            },
            TokenError::Claim("", ""),
            TokenError::KeysUnavailable(text()),
        ]
    }

    /// A short stable name, for metric labels and log fields.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::Algorithm(_) => "algorithm",
            TokenError::UnknownKey(_) => "unknown_key",
            TokenError::Signature(_) => "signature",
            TokenError::Expired(_) => "expired",
            TokenError::NotYetValid(_) => "not_yet_valid",
            TokenError::Issuer { .. } => "issuer",
            TokenError::Audience { .. } => "audience",
            TokenError::Claim(..) => "claim",
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
            jsonwebtoken::errors::ErrorKind::Json(_) => {
                TokenError::Algorithm("an unknown algorithm".into())
            }
            _ => TokenError::Malformed,
        })?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.as_deref();
        let named = || {
            kid.map_or_else(
                || "(no kid, and not exactly one key of its kind)".to_owned(),
                |kid| format!("{kid:?}"),
            )
        };
        let jwk = match self.key(kid, header.alg).await {
            Some(jwk) => jwk,
            None => {
                self.refetch().await?;
                self.key(kid, header.alg)
                    .await
                    .ok_or_else(|| TokenError::UnknownKey(named()))?
            }
        };
        let claims = match self.check(token, &jwk, header.alg) {
            // A provider that rotates its key under the same kid: fetch the set again (within
            // the same limit as for an unknown kid) and try once more if the key changed.
            Err(TokenError::Signature(_)) => {
                self.refetch().await?;
                match self.key(kid, header.alg).await {
                    Some(fresh) if fresh != jwk => self.check(token, &fresh, header.alg)?,
                    _ => return Err(TokenError::Signature(named())),
                }
            }
            other => other?,
        };
        self.identity(&claims)
    }

    /// Checks the signature with `jwk`, then time, issuer and audience; returns the claims.
    fn check(&self, token: &str, jwk: &Jwk, alg: Algorithm) -> Result<Value, TokenError> {
        let declared = jwk.common.key_algorithm;
        if !of_its_kind(jwk, alg)
            || declared.is_some_and(|declared| declared != KeyAlgorithm::from(alg))
        {
            return Err(TokenError::Algorithm(format!(
                "{alg:?} with a key of another kind"
            )));
        }
        let kid = || format!("{:?}", jwk.common.key_id.as_deref().unwrap_or_default());
        let key = DecodingKey::from_jwk(jwk).map_err(|_| TokenError::UnknownKey(kid()))?;
        // The signature only: times, issuer and audience are checked below, to say which.
        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        let claims = decode::<Value>(token, &key, &validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::Signature(kid()),
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                    TokenError::Algorithm(format!("{alg:?}"))
                }
                _ => TokenError::Malformed,
            })?
            .claims;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let leeway = self.rules.leeway_secs;
        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or(TokenError::Claim("exp", "a number"))?;
        if exp.saturating_add(leeway) < now {
            return Err(TokenError::Expired(now - exp));
        }
        if let Some(nbf) = claims.get("nbf").and_then(Value::as_u64)
            && nbf > now.saturating_add(leeway)
        {
            return Err(TokenError::NotYetValid(nbf - now));
        }
        let issuer = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(TokenError::Claim("iss", "a string"))?;
        if issuer != self.rules.issuer {
            let same_but_slash =
                issuer.trim_end_matches('/') == self.rules.issuer.trim_end_matches('/');
            return Err(TokenError::Issuer {
                expected: self.rules.issuer.clone(),
                got: issuer.to_owned(),
                hint: if same_but_slash {
                    "; they differ only in the trailing slash: write [auth] issuer exactly as the token does"
                } else {
                    ""
                },
            });
        }
        let audience = &self.rules.audience;
        let accepted = match claims.get("aud") {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(audience)),
            // Amazon Cognito's access tokens carry the app client in client_id and no aud.
            None => claims.get("client_id").and_then(Value::as_str) == Some(audience),
            Some(_) => false,
        };
        if !accepted {
            let got = claims
                .get("aud")
                .or_else(|| claims.get("client_id"))
                .map_or_else(|| "(none)".to_owned(), Value::to_string);
            return Err(TokenError::Audience {
                expected: audience.clone(),
                got,
            });
        }
        Ok(claims)
    }

    /// Who the claims name, and their groups.
    fn identity(&self, claims: &Value) -> Result<Identity, TokenError> {
        let subject = (claims.get("sub").and_then(Value::as_str))
            .ok_or(TokenError::Claim("sub", "a string"))?;
        let expires_at = (claims.get("exp").and_then(Value::as_u64))
            .ok_or(TokenError::Claim("exp", "a number"))?;
        let (groups, groups_note) = match groups_at(claims, &self.rules.groups_claim) {
            Some(Value::Array(groups)) => (
                groups
                    .iter()
                    .map(|group| group.as_str().map(str::to_owned))
                    .collect::<Option<Vec<String>>>()
                    .ok_or(TokenError::Claim("groups", "a list of strings"))?,
                None,
            ),
            // A single group as a string, as some providers send it.
            Some(Value::String(group)) => (vec![group.clone()], None),
            Some(_) => return Err(TokenError::Claim("groups", "a list of strings")),
            None => (
                Vec::new(),
                Some(missing_groups(claims, &self.rules.groups_claim)),
            ),
        };
        let signed_in_ms = (claims.get("auth_time").or_else(|| claims.get("iat")))
            .and_then(Value::as_u64)
            .map(|secs| secs.saturating_mul(1000));
        Ok(Identity {
            subject: subject.to_owned(),
            groups,
            groups_note,
            expires_at,
            signed_in_ms,
        })
    }

    /// The key named `kid`; without a `kid`, the one key of the algorithm's kind, if there
    /// is exactly one (providers with a single key may leave `kid` out).
    async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
        let keys = self.keys.read().await;
        match kid {
            Some(kid) => keys.find(kid).cloned(),
            None => {
                let mut fitting = keys.keys.iter().filter(|jwk| of_its_kind(jwk, alg));
                match (fitting.next(), fitting.next()) {
                    (Some(only), None) => Some(only.clone()),
                    _ => None,
                }
            }
        }
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

/// Whether `jwk` is a key of the kind `alg` signs with (an EC key for ES256, RSA for RS256).
fn of_its_kind(jwk: &Jwk, alg: Algorithm) -> bool {
    matches!(
        (&jwk.algorithm, alg),
        (AlgorithmParameters::EllipticCurve(_), Algorithm::ES256)
            | (AlgorithmParameters::RSA(_), Algorithm::RS256)
    )
}

/// The groups claim: a top-level claim of that name (names may hold dots or colons, as in
/// `cognito:groups`), else a path through objects (`realm_access.roles`).
fn groups_at<'a>(claims: &'a Value, claim: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(claim) {
        return Some(value).filter(|value| !value.is_null());
    }
    let mut value = claims;
    for part in claim.split('.') {
        value = value.get(part)?;
    }
    Some(value).filter(|value| !value.is_null())
}

/// Why a token has no groups, for the person reading `/api/v1/me` or a refusal.
fn missing_groups(claims: &Value, claim: &str) -> String {
    // Entra ID leaves the groups out past 200 and says so in _claim_names.
    if claims.pointer("/_claim_names/groups").is_some() {
        return format!(
            "the provider left the groups out: it sent a groups overage marker (_claim_names), \
             as Entra ID does for more than 200 groups; emit only the groups assigned to the \
             application, or app roles with [auth] groups_claim = \"roles\" (the claim MONTI \
             reads is {claim:?})"
        );
    }
    let names: Vec<&str> = claims
        .as_object()
        .map(|claims| claims.keys().map(String::as_str).collect())
        .unwrap_or_default();
    format!(
        "the token has no claim {claim:?} ([auth] groups_claim); it has {}",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_examples_hold_every_kind_of_token_error() {
        // A new kind fails to compile here until it is among the examples (the alarms test
        // reads their reasons).
        let kinds: std::collections::BTreeSet<usize> = (TokenError::examples().iter())
            .map(|err| match err {
                TokenError::Malformed => 0,
                TokenError::Algorithm(_) => 1,
                TokenError::UnknownKey(_) => 2,
                TokenError::Signature(_) => 3,
                TokenError::Expired(_) => 4,
                TokenError::NotYetValid(_) => 5,
                TokenError::Issuer { .. } => 6,
                TokenError::Audience { .. } => 7,
                TokenError::Claim(..) => 8,
                TokenError::KeysUnavailable(_) => 9,
            })
            .collect();
        assert_eq!(kinds.len(), TokenError::examples().len());
    }

    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const ES256_KEY: &[u8] = include_bytes!("../../tests/fixtures/es256-test-key.pem");
    const RS256_KEY: &[u8] = include_bytes!("../../tests/fixtures/rs256-test-key.pem");
    const RS256_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/rs256-test-pub.pem");
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

    fn rules(groups_claim: &str) -> Rules {
        Rules {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            groups_claim: groups_claim.into(),
            leeway_secs: 30,
        }
    }

    /// With the usual limit of one key fetch a minute.
    fn verifier(source: &TestKeys) -> Verifier<&TestKeys> {
        Verifier::new(rules("groups"), source, Duration::from_secs(60))
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
    async fn every_bad_token_is_refused_for_its_own_reason_in_words() {
        let source = keys(vec![
            jwk("ec-1", Algorithm::ES256),
            jwk("rsa-1", Algorithm::RS256),
        ]);
        let verifier = verifier(&source);
        let hour_ago = now() - 3600;
        let es = |claims: &Value| sign(Algorithm::ES256, "ec-1", claims);
        let cases: Vec<(&str, String, &str, &str)> = vec![
            ("garbage", "not.a.token".into(), "malformed", "not a JWT"),
            (
                "expired",
                es(&with(claims(), "exp", json!(hour_ago))),
                "expired",
                "the token expired 36",
            ),
            (
                "not yet valid",
                es(&with(claims(), "nbf", json!(now() + 3600))),
                "not_yet_valid",
                "not valid for another 3",
            ),
            (
                "wrong issuer",
                es(&with(claims(), "iss", json!("https://evil.test"))),
                "issuer",
                "issued by \"https://evil.test\", MONTI expects \"https://id.example.test\"",
            ),
            (
                "the issuer with a trailing slash",
                es(&with(claims(), "iss", json!("https://id.example.test/"))),
                "issuer",
                "differ only in the trailing slash",
            ),
            (
                "wrong audience",
                es(&with(claims(), "aud", json!(["other-api", "more"]))),
                "audience",
                "for audience [\"other-api\",\"more\"], MONTI expects \"monti-api\"",
            ),
            (
                "unknown key",
                sign(Algorithm::ES256, "ec-9", &claims()),
                "unknown_key",
                "no signing key \"ec-9\"",
            ),
            (
                "groups that are not strings",
                es(&with(claims(), "groups", json!([1, 2]))),
                "claim",
                "claim groups is missing or not a list of strings",
            ),
            (
                "no subject",
                es(&with(claims(), "sub", Value::Null)),
                "claim",
                "claim sub",
            ),
            (
                "an RSA token naming the EC key",
                sign(Algorithm::RS256, "ec-1", &claims()),
                "algorithm",
                "RS256 with a key of another kind",
            ),
        ];
        for (what, token, reason, words) in cases {
            let err = verifier.verify(&token).await.expect_err(what);
            assert_eq!(err.reason(), reason, "{what}: {err}");
            assert!(err.to_string().contains(words), "{what}: {err}");
        }
    }

    #[tokio::test]
    async fn amazons_sample_access_token_names_its_sign_in_time() {
        // AWS's documented sample, signed here with the test key; MONTI configured for its
        // pool and app client. It expired in 2019: the leeway covers the years since, the only
        // way to take it as printed.
        let sample: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/aws/cognito-access-token-payload.json"
        ))
        .expect("the sample");
        let source = keys(vec![jwk("ec-1", Algorithm::ES256)]);
        let rules = Rules {
            issuer: "https://cognito-idp.us-west-2.amazonaws.com/us-west-2_example".into(),
            audience: "57cbishk4j24pabc1234567890".into(),
            groups_claim: "cognito:groups".into(),
            leeway_secs: now() - 1_562_194_124 + 60,
        };
        let verifier = Verifier::new(rules, &source, Duration::ZERO);
        let identity = (verifier
            .verify(&sign(Algorithm::ES256, "ec-1", &sample))
            .await)
            .expect("the sample is accepted");
        assert_eq!(identity.subject, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
        assert_eq!(identity.groups, ["admin"]);
        assert_eq!(identity.signed_in_ms, Some(1_562_190_524_000));
        // Refreshed an hour later: a new iat, the same auth_time, which is what a device
        // sign-out compares.
        let mut refreshed = sample.clone();
        refreshed["iat"] = json!(1_562_194_124);
        let identity = (verifier
            .verify(&sign(Algorithm::ES256, "ec-1", &refreshed))
            .await)
            .expect("accepted");
        assert_eq!(identity.signed_in_ms, Some(1_562_190_524_000));
        // Without auth_time (Entra ID), iat is all there is.
        refreshed
            .as_object_mut()
            .expect("claims")
            .remove("auth_time");
        let identity = (verifier
            .verify(&sign(Algorithm::ES256, "ec-1", &refreshed))
            .await)
            .expect("accepted");
        assert_eq!(identity.signed_in_ms, Some(1_562_194_124_000));
    }

    #[tokio::test]
    async fn claims_are_read_as_each_provider_sends_them() {
        let source = keys(vec![jwk("ec-1", Algorithm::ES256)]);
        let plain = |claims: &Value| sign(Algorithm::ES256, "ec-1", claims);
        // Keycloak: realm roles under realm_access, the API among several audiences.
        let keycloak = Verifier::new(rules("realm_access.roles"), &source, Duration::ZERO);
        let mut token = with(claims(), "realm_access", json!({"roles": ["monti-admins"]}));
        token["aud"] = json!(["account", AUDIENCE]);
        token["azp"] = json!("monti");
        let identity = keycloak.verify(&plain(&token)).await.expect("keycloak");
        assert_eq!(identity.groups, ["monti-admins"]);
        // Amazon Cognito: cognito:groups, and client_id instead of aud in access tokens.
        let cognito = Verifier::new(rules("cognito:groups"), &source, Duration::ZERO);
        let mut token = with(claims(), "cognito:groups", json!(["monti-admins"]));
        token.as_object_mut().expect("claims").remove("aud");
        token["client_id"] = json!(AUDIENCE);
        let identity = cognito.verify(&plain(&token)).await.expect("cognito");
        assert_eq!(identity.groups, ["monti-admins"]);
        // Entra ID: app roles as a string list, and a groups overage marker without groups.
        let entra = Verifier::new(rules("groups"), &source, Duration::ZERO);
        let mut token = with(claims(), "groups", Value::Null);
        token.as_object_mut().expect("claims").remove("groups");
        token["_claim_names"] = json!({"groups": "src1"});
        let identity = entra.verify(&plain(&token)).await.expect("a valid token");
        assert!(identity.groups.is_empty());
        let note = identity.groups_note.expect("a note");
        assert!(note.contains("overage"), "{note}");
        // No groups claim at all: a valid token with no groups, and the note names the claims.
        let mut token = claims();
        token.as_object_mut().expect("claims").remove("groups");
        let identity = entra.verify(&plain(&token)).await.expect("a valid token");
        let note = identity.groups_note.expect("a note");
        assert!(
            note.contains("no claim \"groups\"") && note.contains("sub"),
            "{note}"
        );
        // A single-key provider that leaves kid out.
        let mut header = Header::new(Algorithm::ES256);
        header.kid = None;
        let key = EncodingKey::from_ec_pem(ES256_KEY).expect("key");
        let no_kid = encode(&header, &claims(), &key).expect("signs");
        assert!(entra.verify(&no_kid).await.is_ok());
    }

    #[tokio::test]
    async fn a_key_rotated_under_the_same_kid_is_fetched_again() {
        let source = keys(vec![jwk("only", Algorithm::ES256)]);
        let verifier = Verifier::new(rules("groups"), &source, Duration::ZERO);
        assert!(
            verifier
                .verify(&sign(Algorithm::ES256, "only", &claims()))
                .await
                .is_ok()
        );
        // The provider replaces its key and keeps the kid.
        let fresh = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let fresh_key = EncodingKey::from_ec_pem(fresh.serialize_pem().as_bytes()).expect("key");
        let mut fresh_jwk = Jwk::from_encoding_key(&fresh_key, Algorithm::ES256).expect("jwk");
        fresh_jwk.common.key_id = Some("only".into());
        *source.set.lock().expect("lock") = JwkSet {
            keys: vec![fresh_jwk],
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("only".into());
        let token = encode(&header, &claims(), &fresh_key).expect("signs");
        let identity = verifier
            .verify(&token)
            .await
            .expect("the new key is fetched");
        assert_eq!(identity.subject, "anna");
        assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
        // A token signed with neither key still fails, as a signature.
        let old = sign(Algorithm::ES256, "only", &claims());
        let err = verifier
            .verify(&old)
            .await
            .expect_err("the old key is gone");
        assert_eq!(err.reason(), "signature", "{err}");
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
        let refused = verifier.verify(&unsigned).await.expect_err("alg none");
        assert_eq!(refused.reason(), "algorithm");
        // The classic confusion attack: HS256 with the RSA public key as the shared secret.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        let forged =
            encode(&header, &claims(), &EncodingKey::from_secret(RS256_PUBLIC)).expect("signs");
        let refused = verifier.verify(&forged).await.expect_err("HS256");
        assert_eq!(refused.reason(), "algorithm", "{refused}");
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
        let rotating = Verifier::new(rules("groups"), &source, Duration::ZERO);
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
            let refused = limited
                .verify(&sign(Algorithm::ES256, "bogus", &claims()))
                .await
                .expect_err("bogus kid");
            assert_eq!(refused.reason(), "unknown_key");
        }
        assert_eq!(
            source.fetches.load(Ordering::SeqCst),
            3,
            "one fetch for the first use, none for bogus kids"
        );
    }
}
