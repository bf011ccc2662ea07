// The device catalogue: every IoT device type the city runs, the metrics it
// sends with their units and physical ranges, how often it reports, and how
// many of the city's 219,300 devices are of that type. The MQTT gateway
// validates telemetry against it; the simulators generate from it.

export interface MetricSpec {
  /** Metric name as sent in telemetry `values`. */
  readonly name: string
  readonly unit: string
  /** Physical range: a value outside it is an error, not an alarm. */
  readonly min: number
  readonly max: number
  /** Normal operating value, around which simulators draw readings. */
  readonly typical: number
}

export interface DeviceTypeSpec {
  readonly type: DeviceType
  readonly nameZh: string
  readonly description: string
  /** Devices of this type in the full-scale city. */
  readonly count: number
  /** Normal reporting interval in seconds. */
  readonly intervalS: number
  readonly metrics: readonly MetricSpec[]
}

export const DEVICE_TYPES_LIST = [
  'water_level', 'manhole_cover', 'smoke', 'gas', 'noise', 'streetlight',
  'bin_fill', 'elevator', 'tree_tilt', 'hydrant_pressure', 'air_quality',
] as const
export type DeviceType = (typeof DEVICE_TYPES_LIST)[number]

const battery: MetricSpec = { name: 'battery_pct', unit: '%', min: 0, max: 100, typical: 85 }

// Counts sum to 219,300 (Zhengzhou's figure). Intervals are chosen so the
// whole fleet averages about one message per device every ten seconds
// (~23k msg/s), the load the gateway is built for.
export const DEVICE_TYPES: readonly DeviceTypeSpec[] = [
  { type: 'water_level', nameZh: '积水监测', description: 'Road and underpass waterlogging level gauge', count: 9_000, intervalS: 10,
    metrics: [{ name: 'level_cm', unit: 'cm', min: 0, max: 500, typical: 2 }, battery] },
  { type: 'manhole_cover', nameZh: '智能井盖', description: 'Manhole-cover tilt and opening sensor', count: 60_000, intervalS: 10,
    metrics: [{ name: 'tilt_deg', unit: 'deg', min: 0, max: 90, typical: 1 }, { name: 'open', unit: 'bool', min: 0, max: 1, typical: 0 }, battery] },
  { type: 'smoke', nameZh: '烟感', description: 'Smoke detector in public and residential buildings', count: 40_000, intervalS: 10,
    metrics: [{ name: 'obscuration_pct_m', unit: '%/m', min: 0, max: 30, typical: 0.1 }, { name: 'temperature_c', unit: 'degC', min: -40, max: 125, typical: 22 }, battery] },
  { type: 'gas', nameZh: '燃气监测', description: 'Combustible gas (methane) detector in kitchens and pipe wells', count: 25_000, intervalS: 5,
    metrics: [{ name: 'ch4_pct_lel', unit: '%LEL', min: 0, max: 100, typical: 0.5 }] },
  { type: 'noise', nameZh: '噪声监测', description: 'Environmental noise meter', count: 3_000, intervalS: 5,
    metrics: [{ name: 'noise_dba', unit: 'dB(A)', min: 20, max: 140, typical: 55 }] },
  { type: 'streetlight', nameZh: '智慧路灯', description: 'Streetlight controller', count: 45_000, intervalS: 15,
    metrics: [{ name: 'power_w', unit: 'W', min: 0, max: 400, typical: 120 }, { name: 'voltage_v', unit: 'V', min: 0, max: 300, typical: 220 }, { name: 'lamp_on', unit: 'bool', min: 0, max: 1, typical: 1 }] },
  { type: 'bin_fill', nameZh: '垃圾满溢', description: 'Waste-bin fill-level sensor', count: 15_000, intervalS: 30,
    metrics: [{ name: 'fill_pct', unit: '%', min: 0, max: 100, typical: 40 }, { name: 'temperature_c', unit: 'degC', min: -40, max: 125, typical: 20 }, battery] },
  { type: 'elevator', nameZh: '电梯监测', description: 'Elevator safety monitor', count: 12_000, intervalS: 5,
    metrics: [{ name: 'speed_m_s', unit: 'm/s', min: 0, max: 10, typical: 1 }, { name: 'trapped', unit: 'bool', min: 0, max: 1, typical: 0 }, { name: 'door_faults', unit: 'count', min: 0, max: 10_000, typical: 0 }] },
  { type: 'tree_tilt', nameZh: '古树倾斜', description: 'Tree tilt sensor on old and roadside trees', count: 3_300, intervalS: 30,
    metrics: [{ name: 'tilt_deg', unit: 'deg', min: 0, max: 90, typical: 2 }, battery] },
  { type: 'hydrant_pressure', nameZh: '消火栓水压', description: 'Fire-hydrant water-pressure sensor', count: 5_000, intervalS: 10,
    metrics: [{ name: 'pressure_mpa', unit: 'MPa', min: 0, max: 2.5, typical: 0.35 }, battery] },
  { type: 'air_quality', nameZh: '空气质量', description: 'Air-quality micro-station', count: 2_000, intervalS: 10,
    metrics: [{ name: 'pm25_ug_m3', unit: 'ug/m3', min: 0, max: 1000, typical: 45 }, { name: 'pm10_ug_m3', unit: 'ug/m3', min: 0, max: 2000, typical: 80 }, { name: 'no2_ug_m3', unit: 'ug/m3', min: 0, max: 2000, typical: 35 }] },
]

export const DEVICE_TYPE_BY_NAME: ReadonlyMap<DeviceType, DeviceTypeSpec> = new Map(DEVICE_TYPES.map((t) => [t.type, t]))

export function deviceTypeSpec(type: DeviceType): DeviceTypeSpec {
  const spec = DEVICE_TYPE_BY_NAME.get(type)
  if (!spec) throw new RangeError(`unknown device type ${type}`)
  return spec
}
