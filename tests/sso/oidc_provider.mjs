// A real OpenID provider for the SSO tests: panva's certified `oidc-provider` (npm, pinned in
// scripts/install.sh, installed into .tools/oidc-provider with WITH_TESTS=1).
//
// Configured by the JSON in SB_OIDC_CONFIG: {port, issuer, module, clients, users_file}.
// - Users are read from users_file at each sign-in (the tests change claims between sign-ins):
//   {"<login>": {"email": ..., "email_verified": true, "name": ..., "groups": [...], ...}}.
// - The login page is a plain form (#login, #submit) that takes a login name, no password; consent
//   is granted automatically for the requested scopes (a first-party client), so a sign-in is one
//   form submission, by a browser or by httpx.
// - Test endpoints: GET /__test/stats (JWKS, token and userinfo requests served),
//   POST /__test/rotate (a new signing key, published first, used from now on).
import http from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const config = JSON.parse(process.env.SB_OIDC_CONFIG);
const { default: Provider } = await import(pathToFileURL(config.module).href);

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

let keys = [newKey()];
const stats = { jwks: 0, token: 0, userinfo: 0 };
const users = () => JSON.parse(readFileSync(config.users_file, 'utf8'));

function build() {
  const provider = new Provider(config.issuer, {
    clients: config.clients,
    jwks: { keys },
    cookies: { keys: ['switchboard-sso-tests-cookie-key'] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const user = users()[sub];
      if (!user) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...user }) };
    },
    async loadExistingGrant(ctx) {
      const accountId = ctx.oidc.session.accountId;
      if (!accountId) return undefined;
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId });
      grant.addOIDCScope(ctx.oidc.params.scope || 'openid');
      await grant.save();
      return grant;
    },
  });
  return provider;
}

let current = build();

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (chunk) => { data += chunk; });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

function loginPage(uid, error) {
  return `<!doctype html><meta charset="utf-8"><title>Test provider sign-in</title>
<h1>Test provider</h1>${error ? `<p id="error">${error}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<input id="login" name="login" autofocus placeholder="login"><button id="submit" type="submit">Sign in</button>
</form>`;
}

async function interaction(req, res, url) {
  const provider = current;
  const [, , uid, action] = url.pathname.split('/');
  try {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) return send(res, 400, 'text/plain', 'interaction mismatch');
    if (req.method === 'GET') return send(res, 200, 'text/html', loginPage(uid));
    if (req.method === 'POST' && action === 'login') {
      const login = new URLSearchParams(await readBody(req)).get('login') || '';
      if (!users()[login]) return send(res, 200, 'text/html', loginPage(uid, 'unknown login'));
      await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
      return undefined;
    }
    return send(res, 405, 'text/plain', 'method not allowed');
  } catch (err) {
    return send(res, 400, 'text/plain', `interaction failed: ${err.message}`);
  }
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, config.issuer);
  if (url.pathname === '/__test/stats') return send(res, 200, 'application/json', JSON.stringify(stats));
  if (url.pathname === '/__test/rotate' && req.method === 'POST') {
    keys = [newKey(), ...keys];
    current = build();
    return send(res, 200, 'application/json', JSON.stringify({ kid: keys[0].kid }));
  }
  if (url.pathname.startsWith('/interaction/')) return interaction(req, res, url);
  if (url.pathname === '/jwks') stats.jwks += 1;
  if (url.pathname === '/token') stats.token += 1;
  if (url.pathname === '/me') stats.userinfo += 1;
  return current.callback()(req, res);
});

server.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`listening ${config.issuer}\n`);
});
