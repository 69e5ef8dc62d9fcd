// A real OpenID Connect provider for MONTI's tests: the OpenID Certified `oidc-provider`, run as a
// local process on 127.0.0.1 (scripts/test starts it). It offers what MONTI's sign-in uses: the
// device authorization grant for a public client, refresh tokens (offline_access), and ES256
// JWT access tokens for the API audience that carry the user's groups.
//
// Environment: PORT (default 9400); KEY_ID (default test-es256-1), so a restart with another id
// looks like a key rotation to the server; TLS_CERT and TLS_KEY (PEM files) serve https, with
// the issuer https://localhost:PORT; SHAPE shapes the access tokens the way a commercial provider
// documents them, so MONTI's configuration for that provider is tested against its token shape:
//   (unset)   aud urn:monti:api, groups in `groups`
//   entra     Entra ID v2: aud = the API's application id URI (api://monti-api), app roles in
//             `roles`, `scp`, `tid`, `ver`; the API chosen by scope (api://monti-api/.default),
//             no resource parameter
//   okta      Okta custom authorization server: aud api://default, `groups`, `scp` as a list,
//             `cid`, `uid`; no resource parameter
//   keycloak  Keycloak: aud ["monti-api", "account"], realm roles in `realm_access.roles`, `azp`
//   cognito   Amazon Cognito access token: no aud, `client_id`, `cognito:groups`, `token_use`
// DEVICE_FLOW=off turns the device flow off (as Cognito has none): the apps then sign in with the
// authorization code flow and PKCE through a loopback redirect (RFC 8252).
//
// Test accounts: any password; the account id decides the groups.

import Provider from 'oidc-provider';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const port = Number(process.env.PORT || 9400);
const tls = process.env.TLS_CERT && process.env.TLS_KEY;
const issuer = tls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`;
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: process.env.KEY_ID || 'test-es256-1',
  alg: 'ES256',
  use: 'sig',
};

const shape = process.env.SHAPE || '';
const deviceFlow = process.env.DEVICE_FLOW !== 'off';
const audiences = { entra: 'api://monti-api', okta: 'api://default' };
const audience = audiences[shape] || 'urn:monti:api';

// The access token's payload as the shaped provider writes it.
function shapeAccessToken(payload, accountGroups) {
  switch (shape) {
    case 'entra':
      delete payload.groups;
      Object.assign(payload, { roles: accountGroups, scp: 'monti.read', tid: '00000000-0000-4000-8000-000000000001', ver: '2.0', azp: payload.client_id });
      break;
    case 'okta':
      Object.assign(payload, { scp: (payload.scope || '').split(' ').filter(Boolean), cid: payload.client_id, uid: `00u${payload.sub}` });
      break;
    case 'keycloak':
      delete payload.groups;
      Object.assign(payload, { aud: ['monti-api', 'account'], realm_access: { roles: accountGroups }, azp: payload.client_id, typ: 'Bearer' });
      break;
    case 'cognito':
      delete payload.groups;
      Object.assign(payload, { 'cognito:groups': accountGroups, token_use: 'access', username: payload.sub });
      // Cognito's access tokens have no aud. oidc-provider insists on one before signing, so it
      // stays on the object but out of the JSON that is signed.
      Object.defineProperty(payload, 'aud', { value: payload.aud, enumerable: false, writable: true });
      break;
    default:
      break;
  }
}

const groups = {
  admin: ['monti-admins'],
  anna: ['monti-sup-berlin'],
  ben: ['monti-team-sales'],
  wall: ['monti-wallboard'],
  ingest: ['monti-ingest'],
  // Bound to nothing in the tests' configuration: an administrator grants it at run time.
  lead: ['monti-leads'],
  nobody: [],
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'monti',
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    grant_types: [...(deviceFlow ? ['urn:ietf:params:oauth:grant-type:device_code'] : []), 'authorization_code', 'refresh_token'],
    response_types: ['code'],
    // A native app's loopback redirect: any port (RFC 8252 section 7.3).
    redirect_uris: ['http://127.0.0.1/callback'],
    id_token_signed_response_alg: 'ES256',
  }],
  jwks: { keys: [signingKey] },
  enabledJWA: { idTokenSigningAlgValues: ['ES256'] },
  features: {
    deviceFlow: { enabled: deviceFlow },
    revocation: { enabled: true },
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Resource indicators must be absolute URIs; this is also the access tokens' audience.
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: shape === 'entra' ? 'monti api://monti-api/.default' : 'monti',
        audience,
        accessTokenFormat: 'jwt',
        accessTokenTTL: Number(process.env.ACCESS_TOKEN_TTL || 600),
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  scopes: ['openid', 'offline_access', 'monti'],
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id, groups: groups[id] ?? [] }) }),
  extraTokenClaims: (ctx, token) => (token.kind === 'AccessToken' ? { groups: groups[token.accountId] ?? [] } : undefined),
  issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
  formats: {
    customizers: {
      jwt: async (ctx, token, jwt) => {
        if (token.kind !== 'AccessToken') return;
        // When the person signed in, kept across refreshes, as Keycloak and Amazon Cognito write
        // it into access tokens (Entra ID and Okta do not): MONTI refuses the tokens of a device
        // an administrator signed out by it.
        const entities = ctx?.oidc?.entities ?? {};
        const signedIn = (entities.RefreshToken ?? entities.DeviceCode ?? entities.AuthorizationCode)?.authTime;
        if (signedIn && !['entra', 'okta'].includes(shape)) jwt.payload.auth_time = signedIn;
        shapeAccessToken(jwt.payload, groups[token.accountId] ?? []);
      },
    },
  },
});

const listening = () => console.log(`oidc-provider listening on ${issuer}`);
if (tls) {
  const options = { cert: readFileSync(process.env.TLS_CERT), key: readFileSync(process.env.TLS_KEY) };
  createServer(options, provider.callback()).listen(port, '127.0.0.1', listening);
} else {
  provider.listen(port, '127.0.0.1', listening);
}
