// `citytwin api-token new`: a bearer token for an operator, printed once,
// with the configuration entry that holds only its SHA-256.
import type { Command } from '../../lib/command.ts'
import { UsageError } from '../../lib/command.ts'
import { ROLES } from '../../lib/http/router.ts'
import { hashToken, newToken } from '../../lib/http/tokens.ts'

export const apiCommands: Command[] = [
  {
    name: 'api-token new',
    summary: 'Make a bearer token for the API: prints the token (give it to its holder) and its entry for api.tokens (only its SHA-256)',
    options: {
      name: { type: 'string', description: 'who holds it (shown in logs and the audit trail), e.g. desk-1', valueName: 'name' },
      role: { type: 'string', description: 'viewer, operator or admin (default viewer)', valueName: 'role' },
    },
    async run({ values, stdout }) {
      const name = typeof values.name === 'string' ? values.name.trim() : ''
      if (name === '') throw new UsageError('give --name, who holds the token, e.g. --name desk-1')
      const role = typeof values.role === 'string' ? values.role : 'viewer'
      if (!(ROLES as readonly string[]).includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}, got "${role}"`)
      const token = newToken()
      stdout.write(`token (shown once; give it to ${name}): ${token}\n` +
        `entry for api.tokens (CITYTWIN_API_TOKENS is a JSON list of these): ${JSON.stringify({ name, role, sha256: hashToken(token) })}\n`)
    },
  },
]
