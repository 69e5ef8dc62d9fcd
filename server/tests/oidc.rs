//! Tokens from a real OpenID provider: the device authorization grant run against
//! `oidc-provider` (started by scripts/test, its URL in `MONTI_TEST_OIDC_URL`), completed through
//! the provider's own HTML forms as a user would, and the access token checked by the server's
//! token verifier with keys fetched through discovery.

use std::time::Duration;

use monti_server::token::{DiscoveredKeys, Rules, TokenError, Verifier};
use serde_json::Value;

const CLIENT_ID: &str = "monti";
const AUDIENCE: &str = "urn:monti:api";

/// The provider's URL, or `None` (skip) when it is not configured and not required.
fn provider() -> Option<String> {
    match std::env::var("MONTI_TEST_OIDC_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("MONTI_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("MONTI_TEST_OIDC_URL is not set but MONTI_REQUIRE_SERVICES=1")
        }
        Err(_) => {
            eprintln!("skipping: MONTI_TEST_OIDC_URL is not set");
            None
        }
    }
}

/// The first `<form>` of a page: its action and its inputs' names and values.
fn first_form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let form = &html[html.find("<form")?..];
    let form = &form[..form.find("</form>").unwrap_or(form.len())];
    let action = attribute(&form[..form.find('>')?], "action")?;
    let mut fields = Vec::new();
    for input in form.split("<input").skip(1) {
        let tag = &input[..input.find('>').unwrap_or(input.len())];
        if let Some(name) = attribute(tag, "name") {
            fields.push((name, attribute(tag, "value").unwrap_or_default()));
        }
    }
    Some((action, fields))
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].to_owned())
}

/// Signs `user` in with the device flow and returns the token response.
async fn device_flow(issuer: &str, user: &str) -> Value {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let device: Value = http
        .post(format!("{issuer}/device/auth"))
        .form(&[
            ("client_id", CLIENT_ID),
            ("scope", "openid offline_access monti"),
            ("resource", AUDIENCE),
        ])
        .send()
        .await
        .expect("device authorization")
        .json()
        .await
        .expect("json");
    let user_code = device["user_code"].as_str().expect("user code");
    // The user opens the verification page, confirms the code, signs in, consents.
    let mut page = http
        .get(
            device["verification_uri"]
                .as_str()
                .expect("verification uri"),
        )
        .send()
        .await
        .expect("verification page")
        .text()
        .await
        .expect("html");
    for _ in 0..5 {
        if page.contains("Sign-in Success") {
            break;
        }
        let (action, fields) = first_form(&page).unwrap_or_else(|| panic!("no form on {page}"));
        let fields: Vec<(String, String)> = fields
            .into_iter()
            .map(|(name, value)| match name.as_str() {
                "user_code" if value.is_empty() => (name, user_code.to_owned()),
                "login" => (name, user.to_owned()),
                "password" => (name, "any".to_owned()),
                _ => (name, value),
            })
            .collect();
        let url = if action.starts_with("http") {
            action
        } else {
            format!("{issuer}{action}")
        };
        page = http
            .post(url)
            .form(&fields)
            .send()
            .await
            .expect("form")
            .text()
            .await
            .expect("html");
    }
    assert!(
        page.contains("Sign-in Success"),
        "the device flow did not finish: {page}"
    );
    http.post(format!("{issuer}/token"))
        .form(&[
            ("client_id", CLIENT_ID),
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            (
                "device_code",
                device["device_code"].as_str().expect("device code"),
            ),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json")
}

fn verifier(issuer: &str) -> Verifier<DiscoveredKeys> {
    let rules = Rules {
        issuer: issuer.to_owned(),
        audience: AUDIENCE.to_owned(),
        groups_claim: "groups".to_owned(),
        leeway_secs: 30,
    };
    Verifier::new(
        rules,
        DiscoveredKeys::new(issuer).expect("keys"),
        Duration::from_secs(30),
    )
}

#[tokio::test]
async fn a_device_flow_token_from_the_real_provider_names_the_user_and_groups() {
    let Some(issuer) = provider() else { return };
    let tokens = device_flow(&issuer, "anna").await;
    assert!(
        tokens["refresh_token"].is_string(),
        "offline_access yields a refresh token: {tokens}"
    );
    let access = tokens["access_token"].as_str().expect("access token");
    let identity = verifier(&issuer)
        .verify(access)
        .await
        .expect("the server accepts it");
    assert_eq!(identity.subject, "anna");
    assert_eq!(identity.groups, ["monti-sup-berlin"]);
}

#[tokio::test]
async fn a_tampered_token_or_one_for_another_issuer_is_refused() {
    let Some(issuer) = provider() else { return };
    let tokens = device_flow(&issuer, "ben").await;
    let access = tokens["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    // Flip one character of the signature.
    let mut tampered = access.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    assert_eq!(
        verifier(&issuer).verify(&tampered).await,
        Err(TokenError::Signature)
    );
    // The same provider's keys, but MONTI configured for another issuer.
    let rules = Rules {
        issuer: "https://elsewhere.example".to_owned(),
        audience: AUDIENCE.to_owned(),
        groups_claim: "groups".to_owned(),
        leeway_secs: 30,
    };
    let other = Verifier::new(
        rules,
        DiscoveredKeys::new(&issuer).expect("keys"),
        Duration::from_secs(30),
    );
    assert_eq!(other.verify(&access).await, Err(TokenError::Issuer));
}
