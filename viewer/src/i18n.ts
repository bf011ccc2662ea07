// The viewer speaks Simplified Chinese by default (the operations desk's
// language), English by a toggle. Terms follow the glossary in DESIGN.md.
export type Lang = 'zh' | 'en'

const zh = {
  title: '城市数字孪生 · 未诉先办', search: '搜索网格、设备、摄像头或工单编号', lang: 'EN', colourBy: '着色', health: '健康度', tickets: '工单',
  legendHealth: '健康度（0–100）', legendTickets: '未办结工单（最高等级）', noData: '无设备', critical: '紧急', warning: '警告', info: '一般',
  online: '在线', silent: '静默', offline: '离线', unknown: '未知', ok: '正常', degraded: '异常', tampered: '遮挡或移位',
  district: '区县', street: '街道', community: '社区网格', micro: '微网格', special: '专属网格', city: '全市',
  devices: '设备', cameras: '摄像头', openTickets: '未办结工单', healthScore: '健康度', close: '关闭',
  ticketList: '工单列表', slaLeft: '剩余时限', overdue: '已超时', sign: '签收', return: '退单', resolve: '办结', escalate: '督办', comment: '备注', start: '处理',
  token: '操作员令牌', tokenHint: '粘贴操作员令牌以签收、退单、办结', saved: '已保存', mode: '运行模态',
  normal: '常态', holiday: '重大节假日', major_event: '重大活动', emergency: '应急', switchMode: '切换',
  note: '请输入原因', done: '已完成', failed: '操作失败', history: '历史曲线', live: '实时', connected: '已连接', disconnected: '连接断开',
  status: '状态', type: '类型', unit: '责任单位', occurrences: '发生次数', loading: '加载中…', noTickets: '暂无未办结工单',
  all: '全部', heatmap: '事件热力', severity: '等级', timeSlider: '时间回放', replay: '回放', replayCoarse: '回放最细到社区网格', play: '播放', pause: '暂停',
  lastSeen: '最近上报', noSnapshot: '暂无抓拍：画面异常时视频接入网关才存储快照', noCameraGateway: '暂无抓拍：本系统未运行视频接入网关', snapshot: '抓拍',
  ingestDegraded: '数据接入降级', ingestLate: '数据延迟', ingestShedding: '网关正在拒绝新连接', ingestHold: '暂停静默判定，不据此派单',
  dispatched: '已派单', signed: '已签收', in_progress: '处理中', resolved: '已办结', verified: '已核验', closed: '已关闭', returned: '已退单', escalated: '已督办', reopened: '已重办', created: '已创建',
}

const en: Record<keyof typeof zh, string> = {
  title: 'City twin · handle it before the complaint', search: 'Search a grid, device, camera or ticket id', lang: '中文', colourBy: 'Colour by', health: 'Health', tickets: 'Tickets',
  legendHealth: 'Health (0-100)', legendTickets: 'Open tickets (worst severity)', noData: 'no devices', critical: 'critical', warning: 'warning', info: 'info',
  online: 'online', silent: 'silent', offline: 'offline', unknown: 'unknown', ok: 'ok', degraded: 'degraded', tampered: 'tampered',
  district: 'District', street: 'Street', community: 'Community grid', micro: 'Micro-grid', special: 'Special grid', city: 'City',
  devices: 'Devices', cameras: 'Cameras', openTickets: 'Open tickets', healthScore: 'Health', close: 'Close',
  ticketList: 'Tickets', slaLeft: 'SLA left', overdue: 'overdue', sign: 'Sign', return: 'Return', resolve: 'Resolve', escalate: 'Escalate', comment: 'Comment', start: 'Start',
  token: 'Operator token', tokenHint: 'Paste an operator token to sign, return and resolve', saved: 'saved', mode: 'Operating mode',
  normal: 'normal', holiday: 'holiday', major_event: 'major event', emergency: 'emergency', switchMode: 'Switch',
  note: 'Why?', done: 'done', failed: 'failed', history: 'History', live: 'Live', connected: 'connected', disconnected: 'disconnected',
  status: 'Status', type: 'Type', unit: 'Unit', occurrences: 'Occurrences', loading: 'Loading…', noTickets: 'No open tickets',
  all: 'all', heatmap: 'Incident heatmap', severity: 'Severity', timeSlider: 'Time slider', replay: 'Replay', replayCoarse: 'replay goes down to community grids', play: 'Play', pause: 'Pause',
  ingestDegraded: 'Ingest degraded', ingestLate: 'data late by', ingestShedding: 'a gateway is refusing new connections', ingestHold: 'no device is judged silent, and no ticket is raised for silence, until it recovers',
  lastSeen: 'Last seen', noSnapshot: 'No snapshot: the camera gateway keeps one when the picture goes wrong', noCameraGateway: 'No snapshot: this system runs no camera gateway', snapshot: 'Snapshot',
  dispatched: 'dispatched', signed: 'signed', in_progress: 'in progress', resolved: 'resolved', verified: 'verified', closed: 'closed', returned: 'returned', escalated: 'escalated', reopened: 'reopened', created: 'created',
}

export type Key = keyof typeof zh
const DICTS: Record<Lang, Record<Key, string>> = { zh, en }

let lang: Lang = 'zh'
const listeners = new Set<() => void>()

export function currentLang(): Lang {
  return lang
}

export function setLang(l: Lang): void {
  lang = l
  for (const f of listeners) f()
}

export function onLang(f: () => void): void {
  listeners.add(f)
}

/** The text of a key in the current language; a word that is no key (a name from the data) comes back as it is. */
export function t(key: string): string {
  return (DICTS[lang] as Record<string, string>)[key] ?? key
}

export function isKey(key: string): key is Key {
  return key in zh
}
