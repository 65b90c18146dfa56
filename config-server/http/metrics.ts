// GET /metrics in the Prometheus text format (version 0.0.4): HTTP requests by route and status,
// the TFTP server's transfers, bytes and errors, and the uploads waiting for an admin.

import type { TftpStats } from '../tftp/index.ts';

interface Family {
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  samples: Array<{ labels?: Record<string, string>; value: number }>;
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function renderFamily(f: Family): string {
  const lines = [`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`];
  for (const s of f.samples) {
    const labels = s.labels
      ? `{${Object.entries(s.labels)
          .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
          .join(',')}}`
      : '';
    lines.push(`${f.name}${labels} ${Number.isFinite(s.value) ? s.value : 0}`);
  }
  return lines.join('\n');
}

/** The TFTP server's figures exported (its stats() fields). */
const TFTP_FIELDS: Array<[field: keyof TftpStats, name: string, type: Family['type'], help: string]> = [
  ['transfersCompleted', 'hvnode_tftp_transfers_completed_total', 'counter', 'TFTP transfers completed.'],
  ['transfersFailed', 'hvnode_tftp_transfers_failed_total', 'counter', 'TFTP transfers that failed.'],
  ['sessionsStarted', 'hvnode_tftp_sessions_started_total', 'counter', 'TFTP transfers started.'],
  ['sessionsActive', 'hvnode_tftp_sessions_active', 'gauge', 'TFTP transfers in progress.'],
  [
    'bytesSent',
    'hvnode_tftp_bytes_sent_total',
    'counter',
    'TFTP DATA payload bytes sent (retransmissions included).',
  ],
  ['packetsSent', 'hvnode_tftp_packets_sent_total', 'counter', 'TFTP datagrams sent.'],
  ['retransmits', 'hvnode_tftp_retransmits_total', 'counter', 'TFTP packets re-sent on timeout.'],
  [
    'errorsSuppressed',
    'hvnode_tftp_errors_suppressed_total',
    'counter',
    'TFTP ERROR replies not sent (rate limit).',
  ],
];

export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly started = Date.now();

  /** Counts one answered request; `route` is the route's pattern (not the URL: bounded labels). */
  count(method: string, route: string, status: number): void {
    const key = `${method}\u0000${route}\u0000${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  render(o: { tftp?: TftpStats; pendingUploads?: number }): string {
    const families: Family[] = [
      {
        name: 'hvnode_http_requests_total',
        type: 'counter',
        help: 'HTTP requests answered, by method, route pattern and status.',
        samples: [...this.requests].map(([key, value]) => {
          const [method = '', route = '', status = ''] = key.split('\u0000');
          return { labels: { method, route, status }, value };
        }),
      },
    ];
    const tftp = o.tftp;
    if (tftp) {
      for (const [field, name, type, help] of TFTP_FIELDS)
        families.push({ name, type, help, samples: [{ value: Number(tftp[field]) }] });
      families.push({
        name: 'hvnode_tftp_errors_sent_total',
        type: 'counter',
        help: 'TFTP ERROR packets sent (requests refused, transfers aborted), by TFTP error code.',
        samples: Object.entries(tftp.errorsSent).map(([code, value]) => ({ labels: { code }, value })),
      });
    }
    if (o.pendingUploads !== undefined)
      families.push({
        name: 'hvnode_uploads_pending',
        type: 'gauge',
        help: 'Uploads waiting for an admin to approve or reject them.',
        samples: [{ value: o.pendingUploads }],
      });
    families.push({
      name: 'hvnode_uptime_seconds',
      type: 'gauge',
      help: 'Seconds since this server process started.',
      samples: [{ value: Math.round((Date.now() - this.started) / 1000) }],
    });
    return `${families.map(renderFamily).join('\n')}\n`;
  }
}
