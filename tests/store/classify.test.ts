import { describe, expect, it } from 'vitest'
import { classifyInsertError } from '../../store/errors.ts'

describe('classifyInsertError', () => {
  it.each([
    [{ type: 'TOO_MANY_PARTS', code: '252' }, 'transient'],
    [{ type: 'MEMORY_LIMIT_EXCEEDED', code: '241' }, 'transient'],
    [{ type: 'CANNOT_PARSE_INPUT_ASSERTION_FAILED', code: '27' }, 'row'],
    [{ type: 'UNKNOWN_ELEMENT_OF_ENUM', code: '691' }, 'row'],
    [{ type: 'UNKNOWN_TABLE', code: '60' }, 'fatal'],
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'transient'],
    [new Error('socket hang up'), 'transient'],
    [new Error('Insert for JSONCompactEachRow expected Readable Stream with enabled object mode.'), 'fatal'],
  ])('%o is %s', (error, kind) => {
    expect(classifyInsertError(error)).toBe(kind)
  })
})
