//! Signing in: the OAuth 2.0 device authorization grant (RFC 8628) at the server's OpenID
//! Connect provider, or, where the provider has none (Amazon Cognito), the authorization code
//! flow with PKCE through the system's browser and a loopback redirect (RFC 7636, RFC 8252);
//! token refresh and revocation, and the refresh token kept in the operating system's keyring.
//!
//! The device grant suits MONTI's apps: a wallboard has no one at a keyboard, so it shows a short
//! code and a URL, someone completes the sign-in on a phone, and the app polls until the provider
//! hands out tokens. Providers rotate refresh tokens, so every refresh stores the new one.
//!
//! Not here: deciding what a token allows (the server does that) and any UI.
//!
//! Why by hand and not with the `openidconnect` crate (measured 2026-11-30, `cargo tree` of
//! `openidconnect` 4.0 with `reqwest` and `rustls-tls` beside this crate's own tree): it adds
//! 61 crates to `monti-client`, most of them a second crypto stack (RustCrypto `rsa`, `p256`,
//! `p384`, `ed25519-dalek`, `hmac`, `sha2`, `der`, `pkcs8`) beside the `ring` that rustls
//! already brings, for ID-token verification the apps never do (they send access tokens to
//! the server, which verifies them). What MONTI uses of OpenID Connect is four form posts
//! (device authorization, token, refresh, revocation), discovery and PKCE: a few hundred lines
//! here, on the same `Transport` (CA file, proxy, explained errors) as the rest of the apps.

use std::time::Duration;

use monti_protocol::rest::AuthJson;
use serde::Deserialize;
use serde_json::Value;

use crate::transport::{Transport, explain};

/// What can go wrong signing in.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The provider or server could not be reached or answered nonsense.
    #[error("{0}")]
    Http(String),
    /// The person declined the sign-in.
    #[error("the sign-in was declined")]
    Denied,
    /// The code expired before the sign-in was completed.
    #[error("the sign-in code expired; start again")]
    Expired,
    /// The provider refused with an OAuth error.
    #[error("the provider refused: {error}{}", .description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        /// The OAuth error code, for example `invalid_grant`.
        error: String,
        /// The provider's explanation.
        description: Option<String>,
    },
    /// No refresh token is stored: sign in first.
    #[error("not signed in to this server; run monti-cli login")]
    NotSignedIn,
    /// The provider no longer honours the stored sign-in (`invalid_grant` on refresh): it was
    /// revoked, expired, or ended at the provider.
    #[error("your sign-in ended at the provider{}; sign in again (monti-cli login)", .0.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    SignInEnded(Option<String>),
    /// The keyring could not be used.
    #[error("keyring: {0}")]
    Keyring(String),
}

/// An HTTP failure with its whole cause chain (a refused certificate, an unreachable proxy).
fn http_error(err: reqwest::Error) -> AuthError {
    AuthError::Http(explain(&err))
}

/// A code to show the person signing in.
#[derive(Clone, Debug, Deserialize)]
pub struct DeviceCode {
    /// For polling; never shown.
    pub device_code: String,
    /// What the person types, for example `WDJB-MJHT`.
    pub user_code: String,
    /// Where they type it.
    pub verification_uri: String,
    /// The same with the code filled in (for a QR code), if the provider offers it.
    pub verification_uri_complete: Option<String>,
    /// Seconds until the code expires.
    pub expires_in: u64,
    /// Seconds to wait between polls.
    #[serde(default = "default_interval")]
    pub interval: u64,
}

fn default_interval() -> u64 {
    5
}

/// Tokens from the provider.
#[derive(Clone, Debug, Deserialize)]
pub struct Tokens {
    /// For the server.
    pub access_token: String,
    /// For getting the next access token without the person.
    pub refresh_token: Option<String>,
    /// Seconds the access token lives.
    #[serde(default)]
    pub expires_in: u64,
}

/// Where and how to sign in for one server, as its `GET /api/v1/auth` says; kept with the
/// sign-in, so that signing out works while the server is away.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct SignInSettings {
    /// Issuer URL.
    pub issuer: String,
    /// Public client id.
    pub client_id: String,
    /// The API's audience.
    pub audience: String,
    /// The scopes to ask for.
    pub scopes: String,
    /// The `resource` parameter (RFC 8707) to send, if any.
    pub resource: Option<String>,
    /// The browser sign-in's fixed loopback callback, if the server names one; else a port
    /// chosen per attempt.
    #[serde(default)]
    pub redirect_uri: Option<String>,
}

impl SignInSettings {
    /// The settings a server announces; `None` when it needs no sign-in. A server that
    /// predates announcing scopes gets what MONTI always asked for: `openid offline_access`
    /// and its audience as the resource.
    pub fn from_server(auth: AuthJson) -> Option<SignInSettings> {
        let (Some(issuer), Some(client_id), Some(audience)) =
            (auth.issuer, auth.client_id, auth.audience)
        else {
            return None;
        };
        let (scopes, resource) = match auth.scopes {
            Some(scopes) => (scopes, auth.resource),
            None => ("openid offline_access".to_owned(), Some(audience.clone())),
        };
        Some(SignInSettings {
            issuer,
            client_id,
            audience,
            scopes,
            resource,
            redirect_uri: auth.redirect_uri,
        })
    }
}

/// One OpenID Connect provider as MONTI's apps use it.
#[derive(Clone, Debug)]
pub struct Provider {
    /// How to sign in there.
    pub settings: SignInSettings,
    device_endpoint: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: String,
    revocation_endpoint: Option<String>,
    transport: Transport,
}

impl Provider {
    /// Reads the provider's discovery document, through `transport`.
    pub async fn discover(
        transport: &Transport,
        settings: &SignInSettings,
    ) -> Result<Provider, AuthError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            settings.issuer.trim_end_matches('/')
        );
        let discovery: Value = get_json(transport, &url).await?;
        let endpoint = |name: &str| {
            discovery
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| AuthError::Http(format!("the provider does not announce {name}")))
        };
        Ok(Provider {
            settings: settings.clone(),
            device_endpoint: endpoint("device_authorization_endpoint").ok(),
            authorization_endpoint: endpoint("authorization_endpoint").ok(),
            token_endpoint: endpoint("token_endpoint")?,
            revocation_endpoint: endpoint("revocation_endpoint").ok(),
            transport: transport.clone(),
        })
    }

    /// The client id, and the resource when the server asks for one.
    fn form<'a>(&'a self, mut form: Vec<(&'a str, &'a str)>) -> Vec<(&'a str, &'a str)> {
        form.push(("client_id", self.settings.client_id.as_str()));
        if let Some(resource) = &self.settings.resource {
            form.push(("resource", resource.as_str()));
        }
        form
    }

    /// Whether the provider offers the device flow; without it, sign in with
    /// [`Provider::browser_sign_in`].
    pub fn has_device_flow(&self) -> bool {
        self.device_endpoint.is_some()
    }

    /// Asks for a code to show; the scopes include `offline_access` for a refresh token.
    pub async fn start(&self) -> Result<DeviceCode, AuthError> {
        let Some(endpoint) = &self.device_endpoint else {
            return Err(AuthError::Http(format!(
                "the provider at {} offers no device flow; sign in through the browser",
                self.settings.issuer
            )));
        };
        let form = self.form(vec![("scope", self.settings.scopes.as_str())]);
        self.post(endpoint, &form).await
    }

    /// Starts the authorization code flow with PKCE: listens on a loopback port for the
    /// provider's redirect and returns the page to open in the browser.
    pub async fn browser_sign_in(&self) -> Result<BrowserSignIn, AuthError> {
        let Some(authorization_endpoint) = &self.authorization_endpoint else {
            return Err(AuthError::Http(format!(
                "the provider at {} offers neither the device flow nor an authorization endpoint",
                self.settings.issuer
            )));
        };
        // The server's fixed callback (providers that match callbacks exactly), else a free
        // port for this attempt.
        let fixed = (self.settings.redirect_uri.as_deref())
            .map(|uri| {
                let port = reqwest::Url::parse(uri).ok().and_then(|url| url.port());
                port.map(|port| (uri.to_owned(), port)).ok_or_else(|| {
                    AuthError::Http(format!(
                        "the server's sign-in callback {uri:?} names no port"
                    ))
                })
            })
            .transpose()?;
        let listener =
            tokio::net::TcpListener::bind(("127.0.0.1", fixed.as_ref().map_or(0, |f| f.1)))
                .await
                .map_err(|err| AuthError::Http(format!("cannot listen for the sign-in: {err}")))?;
        let port = listener
            .local_addr()
            .map_err(|err| AuthError::Http(err.to_string()))?
            .port();
        let redirect_uri =
            fixed.map_or_else(|| format!("http://127.0.0.1:{port}/callback"), |f| f.0);
        let verifier = random_text(32)?;
        let state = random_text(16)?;
        let challenge = {
            use base64::Engine;
            let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
        };
        let mut url = reqwest::Url::parse(authorization_endpoint)
            .map_err(|err| AuthError::Http(format!("{authorization_endpoint}: {err}")))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.settings.client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("scope", &self.settings.scopes)
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            // OpenID Connect hands out offline_access (a refresh token) only after consent.
            if self
                .settings
                .scopes
                .split(' ')
                .any(|scope| scope == "offline_access")
            {
                query.append_pair("prompt", "consent");
            }
            if let Some(resource) = &self.settings.resource {
                query.append_pair("resource", resource);
            }
        }
        Ok(BrowserSignIn {
            url: url.to_string(),
            listener,
            redirect_uri,
            verifier,
            state,
            provider: self.clone(),
        })
    }

    /// Ends the sign-in at the provider (RFC 7009), so that the refresh token stops working
    /// there too. `Ok(false)` when the provider offers no revocation.
    pub async fn revoke(&self, refresh_token: &str) -> Result<bool, AuthError> {
        let Some(endpoint) = &self.revocation_endpoint else {
            return Ok(false);
        };
        let form = [
            ("client_id", self.settings.client_id.as_str()),
            ("token", refresh_token),
            ("token_type_hint", "refresh_token"),
        ];
        let response = self
            .transport
            .http()
            .post(endpoint)
            .form(&form)
            .send()
            .await;
        match response {
            // RFC 7009: 200 also for a token that was no longer valid.
            Ok(response) if response.status().is_success() => Ok(true),
            Ok(response) => parse::<Value>(response).await.map(|_| true),
            Err(err) => Err(AuthError::Http(self.transport.describe(&err).await)),
        }
    }

    /// Posts a form and reads the answer as `T`, or as an OAuth error.
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<T, AuthError> {
        let response = self.transport.http().post(url).form(form).send().await;
        match response {
            Ok(response) => parse(response).await,
            Err(err) => Err(AuthError::Http(self.transport.describe(&err).await)),
        }
    }

    /// Polls until the person has signed in, honouring the provider's interval and `slow_down`.
    pub async fn poll(&self, code: &DeviceCode) -> Result<Tokens, AuthError> {
        let mut interval = Duration::from_secs(code.interval.max(1));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(code.expires_in);
        loop {
            tokio::time::sleep(interval).await;
            if tokio::time::Instant::now() > deadline {
                return Err(AuthError::Expired);
            }
            let form = [
                ("client_id", self.settings.client_id.as_str()),
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", code.device_code.as_str()),
            ];
            match self.post::<Tokens>(&self.token_endpoint, &form).await {
                Ok(tokens) => return Ok(tokens),
                Err(AuthError::Refused { error, .. }) if error == "authorization_pending" => {}
                Err(AuthError::Refused { error, .. }) if error == "slow_down" => {
                    interval += Duration::from_secs(5)
                }
                Err(AuthError::Refused { error, .. }) if error == "expired_token" => {
                    return Err(AuthError::Expired);
                }
                Err(AuthError::Refused { error, .. }) if error == "access_denied" => {
                    return Err(AuthError::Denied);
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// A new access token (and usually a new refresh token) for a refresh token.
    /// [`AuthError::SignInEnded`] when the provider no longer honours it.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, AuthError> {
        let form = self.form(vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ]);
        match self.post(&self.token_endpoint, &form).await {
            Err(AuthError::Refused { error, description }) if error == "invalid_grant" => {
                Err(AuthError::SignInEnded(description))
            }
            other => other,
        }
    }
}

/// A browser sign-in under way: open [`BrowserSignIn::url`], then [`BrowserSignIn::finish`].
pub struct BrowserSignIn {
    /// The provider's sign-in page for this attempt.
    pub url: String,
    listener: tokio::net::TcpListener,
    redirect_uri: String,
    verifier: String,
    state: String,
    provider: Provider,
}

impl BrowserSignIn {
    /// Waits (at most `timeout`) for the browser to come back with a code, answers it with a
    /// page saying the app has the sign-in, and exchanges the code for tokens.
    pub async fn finish(self, timeout: Duration) -> Result<Tokens, AuthError> {
        let code = tokio::time::timeout(timeout, self.callback())
            .await
            .map_err(|_| AuthError::Expired)??;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", self.verifier.as_str()),
            ("client_id", self.provider.settings.client_id.as_str()),
        ];
        let mut form = form.to_vec();
        if let Some(resource) = &self.provider.settings.resource {
            form.push(("resource", resource.as_str()));
        }
        self.provider
            .post(&self.provider.token_endpoint, &form)
            .await
    }

    /// The code from the redirect to the loopback port; other requests (a browser asking for
    /// a favicon) are answered and ignored.
    async fn callback(&self) -> Result<String, AuthError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (mut stream, _) = (self.listener.accept().await)
                .map_err(|err| AuthError::Http(format!("the sign-in's redirect: {err}")))?;
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            // A browser may open a connection it never uses (a preconnect): give each a few
            // seconds to send its request line, then go back to waiting for the next.
            let read = async {
                while !request.windows(4).any(|end| end == b"\r\n\r\n") && request.len() < 16 * 1024
                {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
            };
            if tokio::time::timeout(Duration::from_secs(5), read)
                .await
                .is_err()
            {
                continue;
            }
            let text = String::from_utf8_lossy(&request);
            let target = text.split_whitespace().nth(1).unwrap_or("/");
            let Ok(url) = reqwest::Url::parse(&format!("http://127.0.0.1{target}")) else {
                continue;
            };
            let expected = reqwest::Url::parse(&self.redirect_uri).ok();
            if Some(url.path()) != expected.as_ref().map(reqwest::Url::path) {
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            }
            let param = |name: &str| {
                url.query_pairs()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.into_owned())
            };
            let (outcome, page) = if param("state").as_deref() != Some(self.state.as_str()) {
                (
                    Err(AuthError::Http(
                        "the sign-in came back for another attempt (state)".into(),
                    )),
                    "This sign-in was not started here. Close this window and try again.",
                )
            } else if let Some(error) = param("error") {
                let denied = error == "access_denied";
                (
                    Err(if denied {
                        AuthError::Denied
                    } else {
                        AuthError::Refused {
                            error,
                            description: param("error_description"),
                        }
                    }),
                    "The sign-in did not succeed. Close this window and look at MONTI.",
                )
            } else if let Some(code) = param("code") {
                (Ok(code), "Signed in to MONTI. You can close this window.")
            } else {
                (
                    Err(AuthError::Http(
                        "the sign-in came back without a code".into(),
                    )),
                    "The sign-in came back without a code. Close this window and try again.",
                )
            };
            let body = format!("<!doctype html><title>MONTI</title><p>{page}</p>");
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            return outcome;
        }
    }
}

/// `bytes` random bytes as URL-safe text (PKCE verifiers, states).
fn random_text(bytes: usize) -> Result<String, AuthError> {
    use base64::Engine;
    use ring::rand::SecureRandom;
    let mut random = vec![0u8; bytes];
    ring::rand::SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| AuthError::Http("no random numbers from the system".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random))
}

/// A successful body as `T`, an OAuth error body as [`AuthError::Refused`].
async fn parse<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, AuthError> {
    let ok = response.status().is_success();
    let body: Value = response.json().await.map_err(http_error)?;
    if !ok {
        return Err(AuthError::Refused {
            error: body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned(),
            description: body
                .get("error_description")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    serde_json::from_value(body).map_err(|err| AuthError::Http(err.to_string()))
}

/// The sign-in for one server, in the operating system's keyring: the refresh token with the
/// settings it was issued under, keyed by the server (so that signing out of one server leaves
/// the others signed in, and works while the server is away).
///
/// Keyring calls block (and on Linux drive their own D-Bus client), so each runs on tokio's
/// blocking pool rather than on an async worker.
pub struct TokenStore {
    entry: std::sync::Arc<keyring::Entry>,
    /// Where earlier versions kept a bare refresh token, by issuer and client; moved on save.
    legacy: Option<std::sync::Arc<keyring::Entry>>,
    settings: Option<SignInSettings>,
}

/// What the keyring holds for a server.
#[derive(serde::Serialize, Deserialize)]
struct Stored {
    settings: SignInSettings,
    refresh_token: String,
}

fn keyring_error(err: keyring::Error) -> AuthError {
    AuthError::Keyring(err.to_string())
}

impl TokenStore {
    /// The entry for `server`, signing in with `settings`.
    pub fn new(server: &str, settings: &SignInSettings) -> Result<TokenStore, AuthError> {
        let mut store = TokenStore::for_server(server)?;
        let legacy = keyring::Entry::new(
            "monti",
            &format!("{} {}", settings.issuer, settings.client_id),
        )
        .map_err(keyring_error)?;
        store.legacy = Some(std::sync::Arc::new(legacy));
        store.settings = Some(settings.clone());
        Ok(store)
    }

    /// The entry for `server`, to read or forget what is stored (signing out).
    pub fn for_server(server: &str) -> Result<TokenStore, AuthError> {
        let entry =
            keyring::Entry::new("monti", &format!("server {}", server.trim_end_matches('/')))
                .map_err(keyring_error)?;
        Ok(TokenStore {
            entry: std::sync::Arc::new(entry),
            legacy: None,
            settings: None,
        })
    }

    async fn with_entry<T: Send + 'static>(
        entry: &std::sync::Arc<keyring::Entry>,
        call: impl FnOnce(&keyring::Entry) -> keyring::Result<T> + Send + 'static,
    ) -> Result<keyring::Result<T>, AuthError> {
        let entry = entry.clone();
        tokio::task::spawn_blocking(move || call(&entry))
            .await
            .map_err(|err| AuthError::Keyring(err.to_string()))
    }

    /// Whether the keyring can be used at all: asked before a person is sent through a
    /// sign-in whose result could not be kept.
    pub async fn probe(&self) -> Result<(), AuthError> {
        match Self::with_entry(&self.entry, |entry| entry.get_password()).await? {
            Ok(_) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(err) => Err(keyring_error(err)),
        }
    }

    /// What is stored for the server: the settings and the refresh token.
    pub async fn stored(&self) -> Result<Option<(SignInSettings, String)>, AuthError> {
        match Self::with_entry(&self.entry, |entry| entry.get_password()).await? {
            Ok(json) => Ok(serde_json::from_str::<Stored>(&json)
                .ok()
                .map(|stored| (stored.settings, stored.refresh_token))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(err) => Err(keyring_error(err)),
        }
    }

    /// The stored refresh token, if any, issued under this store's settings (or kept by an
    /// earlier version under the issuer and client).
    pub async fn load(&self) -> Result<Option<String>, AuthError> {
        if let Some((settings, token)) = self.stored().await? {
            let same = (self.settings.as_ref()).is_none_or(|own| {
                own.issuer == settings.issuer && own.client_id == settings.client_id
            });
            if same {
                return Ok(Some(token));
            }
        }
        let Some(legacy) = &self.legacy else {
            return Ok(None);
        };
        match Self::with_entry(legacy, |entry| entry.get_password()).await? {
            Ok(token) => Ok(Some(token)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(err) => Err(keyring_error(err)),
        }
    }

    /// Stores (replaces) the refresh token with this store's settings.
    pub async fn save(&self, refresh_token: &str) -> Result<(), AuthError> {
        let Some(settings) = self.settings.clone() else {
            return Err(AuthError::Keyring("no sign-in settings to store".into()));
        };
        let json = serde_json::to_string(&Stored {
            settings,
            refresh_token: refresh_token.to_owned(),
        })
        .map_err(|err| AuthError::Keyring(err.to_string()))?;
        Self::with_entry(&self.entry, move |entry| entry.set_password(&json))
            .await?
            .map_err(keyring_error)?;
        self.delete_legacy().await
    }

    /// Forgets the sign-in (and one an earlier version kept).
    pub async fn delete(&self) -> Result<(), AuthError> {
        match Self::with_entry(&self.entry, |entry| entry.delete_credential()).await? {
            Ok(()) | Err(keyring::Error::NoEntry) => {}
            Err(err) => return Err(keyring_error(err)),
        }
        self.delete_legacy().await
    }

    async fn delete_legacy(&self) -> Result<(), AuthError> {
        let Some(legacy) = &self.legacy else {
            return Ok(());
        };
        match Self::with_entry(legacy, |entry| entry.delete_credential()).await? {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(err) => Err(keyring_error(err)),
        }
    }
}

/// Exchanges the stored refresh token for fresh tokens and stores the rotated refresh token.
pub async fn refresh_stored(provider: &Provider, store: &TokenStore) -> Result<Tokens, AuthError> {
    let refresh_token = store.load().await?.ok_or(AuthError::NotSignedIn)?;
    let tokens = provider.refresh(&refresh_token).await?;
    if let Some(rotated) = &tokens.refresh_token {
        store.save(rotated).await?;
    }
    Ok(tokens)
}

/// The server's sign-in settings, from `GET /api/v1/auth` (no token needed).
pub async fn server_auth(transport: &Transport, server: &str) -> Result<AuthJson, AuthError> {
    let url = format!("{}/api/v1/auth", server.trim_end_matches('/'));
    get_json(transport, &url).await
}

/// `GET url` as JSON; a failure says why, what a proxy answered included.
async fn get_json<T: serde::de::DeserializeOwned>(
    transport: &Transport,
    url: &str,
) -> Result<T, AuthError> {
    let answer = transport
        .http()
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status);
    match answer {
        Ok(response) => response.json().await.map_err(http_error),
        Err(err) => {
            let why = transport.describe(&err).await;
            Err(AuthError::Http(format!("cannot read {url}: {why}")))
        }
    }
}
