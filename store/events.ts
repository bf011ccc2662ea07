// The events table's columns, in the order its writers give them (the MQTT
// gateway's device events and connectivity, the camera gateway's statuses
// and camera events); lib/bus/stored.ts reads rows back in this order.
export const EVENTS_COLUMNS = ['ts', 'source', 'source_id', 'kind', 'severity', 'micro_grid_id', 'community_id', 'street_id', 'district_id', 'lon', 'lat', 'attributes', 'evidence_path'] as const
