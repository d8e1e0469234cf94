import { createHash } from 'node:crypto';
import { nkeys } from '@nats-io/transport-node';

// A NATS decentralized-auth setup made on the spot: an operator, one account and one user, each an nkey, with the
// JWTs nats-server checks (ed25519-nkey signed, claims version 2). `serverConfig` makes nats-server trust the operator
// and know the account (resolver MEMORY); `creds` is the user's .creds file, as `nsc generate creds` writes it.

export interface NatsJwtSetup {
  /** Lines of nats-server configuration. */
  readonly serverConfig: string[];
  /** The user's .creds file: its JWT and its nkey seed. */
  readonly creds: string;
}

const b64 = (v: string | Uint8Array) => Buffer.from(v).toString('base64url');

function jwt(issuer: nkeys.KeyPair, subject: string, name: string, nats: Record<string, unknown>, exp?: number): string {
  const header = b64(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
  const claims: Record<string, unknown> = {
    iat: Math.floor(Date.now() / 1000),
    ...(exp !== undefined && { exp }),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  claims.jti = createHash('sha256').update(JSON.stringify(claims)).digest('hex').toUpperCase();
  const payload = b64(JSON.stringify(claims));
  return `${header}.${payload}.${b64(issuer.sign(new TextEncoder().encode(`${header}.${payload}`)))}`;
}

/**
 * `permissions`: the user's `pub` / `sub` claims, e.g. `{ pub: { deny: ['request-mirror.>'] } }`; `expiresAt`: when the
 * user's JWT expires, in seconds since the epoch (never by default).
 */
export function natsJwtSetup(user: string, permissions: { pub?: object; sub?: object } = {}, expiresAt?: number): NatsJwtSetup {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const userKey = nkeys.createUser();
  const unlimited = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
  const operatorJwt = jwt(operator, operator.getPublicKey(), 'test-operator', { type: 'operator' });
  const accountJwt = jwt(operator, account.getPublicKey(), 'test-account', { type: 'account', limits: unlimited });
  const userJwt = jwt(account, userKey.getPublicKey(), user, { type: 'user', pub: {}, sub: {}, ...permissions, subs: -1, data: -1, payload: -1 }, expiresAt);
  const seed = new TextDecoder().decode(userKey.getSeed());
  return {
    serverConfig: [`operator: ${operatorJwt}`, 'resolver: MEMORY', 'resolver_preload: {', `  ${account.getPublicKey()}: ${accountJwt}`, '}'],
    creds: [
      '-----BEGIN NATS USER JWT-----',
      userJwt,
      '------END NATS USER JWT------',
      '',
      '************************* IMPORTANT *************************',
      'NKEY Seed printed below can be used to sign and prove identity.',
      'NKEYs are sensitive and should be treated as secrets.',
      '',
      '-----BEGIN USER NKEY SEED-----',
      seed,
      '------END USER NKEY SEED------',
      '',
    ].join('\n'),
  };
}
