// CSV as RFC 4180 has it: fields separated by commas, a field quoted when it
// holds a comma, a quote or a line break, a quote inside doubled. Lines end
// with LF or CRLF. The reader keeps each record's line number, so an
// importer can say where a bad row is.

export interface CsvRecord {
  /** 1-based line the record starts on. */
  line: number
  fields: string[]
}

export type CsvResult = { ok: true; header: string[]; records: CsvRecord[] } | { ok: false; line: number; reason: string }

export function parseCsv(text: string): CsvResult {
  const records: CsvRecord[] = []
  let line = 1
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0 // a byte-order mark, as spreadsheets write
  while (i < text.length) {
    const start = line
    const fields: string[] = []
    for (;;) {
      let field = ''
      if (text[i] === '"') {
        i++
        for (;;) {
          if (i >= text.length) return { ok: false, line: start, reason: 'a quoted field is not closed' }
          const c = text[i] as string
          if (c === '"') {
            if (text[i + 1] === '"') {
              field += '"'
              i += 2
              continue
            }
            i++
            break
          }
          if (c === '\n') line++
          field += c
          i++
        }
        if (i < text.length && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') return { ok: false, line, reason: 'text after a closing quote' }
      } else {
        const from = i
        for (let c = text.charCodeAt(i); i < text.length && c !== 44 /* , */ && c !== 10 /* \n */ && c !== 13 /* \r */; c = text.charCodeAt(++i)) {
          if (c === 34 /* " */) return { ok: false, line, reason: 'a quote inside an unquoted field (quote the field and double the quote)' }
        }
        field = text.slice(from, i)
      }
      fields.push(field)
      if (text[i] === ',') {
        i++
        continue
      }
      if (text[i] === '\r') i++
      if (text[i] === '\n') i++
      line++
      break
    }
    // Blank lines (a trailing newline, say) are not records.
    if (!(fields.length === 1 && fields[0] === '')) records.push({ line: start, fields })
  }
  const [head, ...rest] = records
  if (!head) return { ok: false, line: 1, reason: 'the file is empty: it needs a header line' }
  return { ok: true, header: head.fields.map((h) => h.trim()), records: rest }
}

const needsQuotes = /[",\r\n]/

/** One CSV line (without its line break) of `fields`. */
export function csvLine(fields: readonly (string | number)[]): string {
  return fields.map((f) => {
    const s = String(f)
    return needsQuotes.test(s) ? `"${s.replace(/"/g, '""')}"` : s
  }).join(',')
}
