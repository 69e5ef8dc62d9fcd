//! Signing in: the OAuth 2.0 device authorization grant (RFC 8628) at the server's OpenID
//! Connect provider, token refresh, and the refresh token kept in the operating system's keyring.
//!
//! The device grant suits MONTI's apps: a wallboard has no one at a keyboard, so it shows a short
//! code and a URL, someone completes the sign-in on a phone, and the app polls until the provider
//! hands out tokens. Providers rotate refresh tokens, so every refresh stores the new one.
//!
//! Not here: deciding what a token allows (the server does that) and any UI.

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

/// One OpenID Connect provider as MONTI's apps use it.
#[derive(Clone, Debug)]
pub struct Provider {
    /// Issuer URL.
    pub issuer: String,
    /// Public client id.
    pub client_id: String,
    /// The API's audience (resource) to ask tokens for.
    pub audience: String,
    device_endpoint: String,
    token_endpoint: String,
    transport: Transport,
}

impl Provider {
    /// Reads the provider's discovery document, through `transport`.
    pub async fn discover(
        transport: &Transport,
        issuer: &str,
        client_id: &str,
        audience: &str,
    ) -> Result<Provider, AuthError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
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
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            audience: audience.to_owned(),
            device_endpoint: endpoint("device_authorization_endpoint")?,
            token_endpoint: endpoint("token_endpoint")?,
            transport: transport.clone(),
        })
    }

    /// Asks for a code to show. `offline_access` asks for a refresh token.
    pub async fn start(&self) -> Result<DeviceCode, AuthError> {
        let form = [
            ("client_id", self.client_id.as_str()),
            ("scope", "openid offline_access"),
            ("resource", self.audience.as_str()),
        ];
        self.post(&self.device_endpoint, &form).await
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
                ("client_id", self.client_id.as_str()),
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
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, AuthError> {
        let form = [
            ("client_id", self.client_id.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("resource", self.audience.as_str()),
        ];
        self.post(&self.token_endpoint, &form).await
    }
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

/// The refresh token for one provider and client, in the operating system's keyring.
///
/// Keyring calls block (and on Linux drive their own D-Bus client), so each runs on tokio's
/// blocking pool rather than on an async worker.
pub struct TokenStore {
    entry: std::sync::Arc<keyring::Entry>,
}

impl TokenStore {
    /// The entry for `issuer` and `client_id`.
    pub fn new(issuer: &str, client_id: &str) -> Result<TokenStore, AuthError> {
        let entry = keyring::Entry::new("monti", &format!("{issuer} {client_id}"))
            .map_err(|err| AuthError::Keyring(err.to_string()))?;
        Ok(TokenStore {
            entry: std::sync::Arc::new(entry),
        })
    }

    async fn with_entry<T: Send + 'static>(
        &self,
        call: impl FnOnce(&keyring::Entry) -> keyring::Result<T> + Send + 'static,
    ) -> Result<keyring::Result<T>, AuthError> {
        let entry = self.entry.clone();
        tokio::task::spawn_blocking(move || call(&entry))
            .await
            .map_err(|err| AuthError::Keyring(err.to_string()))
    }

    /// The stored refresh token, if any.
    pub async fn load(&self) -> Result<Option<String>, AuthError> {
        match self.with_entry(|entry| entry.get_password()).await? {
            Ok(token) => Ok(Some(token)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(err) => Err(AuthError::Keyring(err.to_string())),
        }
    }

    /// Stores (replaces) the refresh token.
    pub async fn save(&self, refresh_token: &str) -> Result<(), AuthError> {
        let token = refresh_token.to_owned();
        self.with_entry(move |entry| entry.set_password(&token))
            .await?
            .map_err(|err| AuthError::Keyring(err.to_string()))
    }

    /// Forgets the refresh token (sign-out).
    pub async fn delete(&self) -> Result<(), AuthError> {
        match self.with_entry(|entry| entry.delete_credential()).await? {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(err) => Err(AuthError::Keyring(err.to_string())),
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
