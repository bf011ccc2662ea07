// The benchmarks' reading of the system's Prometheus text: a histogram's
// buckets summed over the series asked for, and a quantile's bucket between
// two scrapes.
import { describe, expect, it } from 'vitest'
import { histogramBuckets, quantileAtMost } from '../../bench/metrics.ts'

const scrape = (city: number[], grid: number[]): string => {
  const les = ['0.001', '0.01', '0.05', '+Inf']
  const lines = ['# HELP citytwin_api_answer_seconds x', '# TYPE citytwin_api_answer_seconds histogram']
  les.forEach((le, i) => lines.push(`citytwin_api_answer_seconds_bucket{le="${le}",service="citytwin",route="GET /api/city"} ${city[i]}`))
  les.forEach((le, i) => lines.push(`citytwin_api_answer_seconds_bucket{le="${le}",service="citytwin",route="GET /api/grids/:id"} ${grid[i]}`))
  lines.push(`citytwin_api_answer_seconds_count{service="citytwin",route="GET /api/city"} ${city[3]}`)
  return lines.join('\n')
}

describe('histogram readings', () => {
  it('reads one route\'s cumulative buckets, +Inf included', () => {
    const b = histogramBuckets(scrape([1, 5, 9, 10], [0, 0, 0, 0]), 'citytwin_api_answer_seconds', 'route="GET /api/city"')
    expect([...b]).toEqual([[0.001, 1], [0.01, 5], [0.05, 9], [Number.POSITIVE_INFINITY, 10]])
  })

  it('gives the bucket that holds a quantile of what came between two scrapes', () => {
    const route = 'route="GET /api/grids/'
    const before = histogramBuckets(scrape([0, 0, 0, 0], [10, 10, 10, 10]), 'citytwin_api_answer_seconds', route)
    // 200 more: 150 under 1 ms, 48 under 10 ms, 1 under 50 ms, 1 above.
    const after = histogramBuckets(scrape([0, 0, 0, 0], [160, 208, 209, 210]), 'citytwin_api_answer_seconds', route)
    expect(quantileAtMost(before, after, 0.5)).toEqual({ n: 200, atMost: 0.001 })
    expect(quantileAtMost(before, after, 0.99)).toEqual({ n: 200, atMost: 0.01 })
    expect(quantileAtMost(before, after, 0.995)).toEqual({ n: 200, atMost: 0.05 })
    expect(quantileAtMost(before, after, 1)).toEqual({ n: 200, atMost: Number.POSITIVE_INFINITY })
    expect(quantileAtMost(after, after, 0.99)).toEqual({ n: 0, atMost: Number.NaN })
  })
})
