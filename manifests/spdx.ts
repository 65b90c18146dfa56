// The SPDX 2.3 JSON SBOM of an image: the image as the described package, which CONTAINS every
// Debian or rpm package, which CONTAINS the regular files it owns (with the SHA1 SPDX 2.3 requires).
// Unowned files are left out: hashing the whole tree would cost more than it tells.

import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { PackageURL } from 'packageurl-js';
import { dataError } from '../common/index.ts';
import { NOASSERTION, spdxLicense } from './licenses.ts';
import type { PackageInfo } from './types.ts';

export interface SpdxInput {
  name: string;
  created: string;
  toolVersion: string;
  packages: PackageInfo[];
  /** Regular files owned by packages, in byte order. */
  files: Array<{ path: string; host: string; size: number; owner: string[] }>;
}

/** The parts of an SPDX 2.3 document this writer produces. */
export interface SpdxDocument {
  spdxVersion: 'SPDX-2.3';
  dataLicense: 'CC0-1.0';
  SPDXID: 'SPDXRef-DOCUMENT';
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[] };
  packages: Array<Record<string, unknown> & { SPDXID: string; name: string }>;
  files: Array<{
    fileName: string;
    SPDXID: string;
    checksums: Array<{ algorithm: string; checksumValue: string }>;
    licenseConcluded: string;
    copyrightText: string;
  }>;
  hasExtractedLicensingInfos?: Array<{ licenseId: string; extractedText: string; name: string }>;
  relationships: Array<{ spdxElementId: string; relationshipType: string; relatedSpdxElement: string }>;
}

// Hashing a rootfs is most of the cost of the SBOM (~1 s per GB on one core), so it runs in
// worker threads. Plain JS evaluated in the worker: it needs no TypeScript loader.
const HASH_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { openSync, readSync, closeSync } = require('node:fs');
const buf = Buffer.allocUnsafe(1 << 20);
const out = [];
for (const file of workerData) {
  const hash = createHash('sha1');
  const fd = openSync(file, 'r');
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  out.push(hash.digest('hex'));
}
parentPort.postMessage(out);
`;

/** SHA1 of each file, in the order given. */
export async function sha1Files(files: Array<{ host: string; size: number }>): Promise<string[]> {
  const workers = Math.max(1, Math.min(availableParallelism(), 8, Math.ceil(files.length / 64)));
  // biggest first onto the least loaded worker: shares of about equal bytes
  const shares = Array.from({ length: workers }, () => ({ bytes: 0, index: [] as number[] }));
  const order = files.map((_, i) => i).sort((a, b) => (files[b]?.size ?? 0) - (files[a]?.size ?? 0));
  for (const i of order) {
    const share = shares.reduce((min, s) => (s.bytes < min.bytes ? s : min));
    share.bytes += files[i]?.size ?? 0;
    share.index.push(i);
  }
  const out = new Array<string>(files.length);
  await Promise.all(
    shares.map(
      (share) =>
        new Promise<void>((resolve, reject) => {
          const w = new Worker(HASH_WORKER, {
            eval: true,
            workerData: share.index.map((i) => files[i]?.host),
          });
          w.once('message', (sums: string[]) => {
            sums.forEach((sum, k) => {
              out[share.index[k] as number] = sum;
            });
            resolve();
          });
          w.once('error', reject);
          w.once('exit', (code) => {
            if (code !== 0) reject(new Error(`hash worker exited with ${code}`));
          });
        }),
    ),
  );
  return out;
}

function spdxId(kind: string, text: string): string {
  return `SPDXRef-${kind}-${text.replace(/[^A-Za-z0-9.-]+/g, '-')}`;
}

/**
 * The package URL: Debian `pkg:deb/debian/<name>@<version>?arch=<arch>` (the epoch stays in the
 * version); rpm `pkg:rpm/<name>@<version-release>?arch=<arch>&epoch=<epoch>`, without a vendor
 * namespace (the database does not name one reliably). distro, when given, is a qualifier too
 * (`debian-12`). The purl spec percent-encodes `+` but not `:`: `libc6@1:2.36-9%2Bdeb12u4`.
 */
export function purl(p: PackageInfo, distro?: string): string {
  const rpm = p.format === 'rpm';
  const epoch = rpm ? /^(\d+):/.exec(p.version)?.[1] : undefined;
  const version = epoch === undefined ? p.version : p.version.slice(epoch.length + 1);
  let text: string;
  try {
    text = new PackageURL(rpm ? 'rpm' : 'deb', rpm ? undefined : 'debian', p.name, version || undefined, {
      arch: p.arch,
      ...(distro ? { distro } : {}),
      ...(epoch !== undefined ? { epoch } : {}),
    }).toString();
  } catch (e) {
    throw dataError(
      `package "${p.name}" ${p.version} (${p.arch}) has no package URL: ${(e as Error).message}`,
      'manifests',
      'the package database of the image is damaged: check it with dpkg --audit or rpm --verifydb',
    );
  }
  // packageurl-js 2 keeps a `+` of the version as it is; the spec's canonical form encodes it
  // (its test suite: pkg:deb/debian/attr@1:2.4.47-2%2Bb1). Only the version can hold a raw `+`.
  const query = text.indexOf('?');
  const head = query < 0 ? text : text.slice(0, query);
  return head.replaceAll('+', '%2B') + text.slice(head.length);
}

/** Debian: SHA-256 of the md5sums file; rpm: of the package header. */
function checksum(p: PackageInfo): string | undefined {
  if (p.format === 'rpm') return p.headerSha256;
  return p.md5sumsSha256 !== 'none' ? p.md5sumsSha256 : undefined;
}

const LICENSE_SOURCE = {
  deb: "the package's Debian copyright file (usr/share/doc/<package>/copyright)",
  rpm: "the package's rpm License tag",
};

/** SPDX's declared license of a package: the AND of its licenses (its copyright file's or its License tag). */
function declared(p: PackageInfo, refs: Set<string>): string {
  const { expression, refs: used } = spdxLicense(...p.licenses);
  for (const r of used) refs.add(r);
  return expression;
}

export async function buildSpdx(input: SpdxInput): Promise<SpdxDocument> {
  const sha1s = await sha1Files(input.files);
  const refs = new Set<string>();
  const imageId = 'SPDXRef-Image';
  const relationships: SpdxDocument['relationships'] = [
    { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageId },
  ];

  const pkgIds = new Map<string, string>();
  const used = new Set<string>();
  for (const p of input.packages) {
    let id = spdxId(`Package-${p.format ?? 'deb'}`, `${p.name}-${p.arch}`);
    while (used.has(id)) id += '-x';
    used.add(id);
    pkgIds.set(`${p.name}\0${p.arch}`, id);
  }
  // files are owned by name; with Multi-Arch the same name may exist for several arches
  const idsByName = new Map<string, string[]>();
  for (const p of input.packages) {
    const id = pkgIds.get(`${p.name}\0${p.arch}`) as string;
    idsByName.set(p.name, [...(idsByName.get(p.name) ?? []), id]);
  }

  const files: SpdxDocument['files'] = [];
  const fileSha1sByPkg = new Map<string, string[]>();
  const contains: SpdxDocument['relationships'] = [];
  input.files.forEach((f, i) => {
    const sha1 = sha1s[i] as string;
    const id = `SPDXRef-File-${createHash('sha256').update(f.path).digest('hex').slice(0, 16)}`;
    files.push({
      fileName: `.${f.path}`,
      SPDXID: id,
      checksums: [{ algorithm: 'SHA1', checksumValue: sha1 }],
      licenseConcluded: NOASSERTION,
      copyrightText: NOASSERTION,
    });
    for (const owner of f.owner)
      for (const pkgId of idsByName.get(owner) ?? []) {
        contains.push({ spdxElementId: pkgId, relationshipType: 'CONTAINS', relatedSpdxElement: id });
        fileSha1sByPkg.set(pkgId, [...(fileSha1sByPkg.get(pkgId) ?? []), sha1]);
      }
  });

  const packages: SpdxDocument['packages'] = [
    {
      name: input.name,
      SPDXID: imageId,
      downloadLocation: NOASSERTION,
      filesAnalyzed: false,
      licenseConcluded: NOASSERTION,
      licenseDeclared: NOASSERTION,
      copyrightText: NOASSERTION,
      primaryPackagePurpose: 'OPERATING-SYSTEM',
    },
  ];
  for (const p of input.packages) {
    const id = pkgIds.get(`${p.name}\0${p.arch}`) as string;
    relationships.push({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: id });
    const verification = createHash('sha1')
      .update((fileSha1sByPkg.get(id) ?? []).sort().join(''))
      .digest('hex');
    packages.push({
      name: p.name,
      SPDXID: id,
      versionInfo: p.version,
      downloadLocation: NOASSERTION,
      filesAnalyzed: true,
      packageVerificationCode: { packageVerificationCodeValue: verification },
      ...(checksum(p) !== undefined
        ? { checksums: [{ algorithm: 'SHA256', checksumValue: checksum(p) as string }] }
        : {}),
      sourceInfo: `built package from: ${p.source} ${p.sourceVersion}`,
      // Concluding a license takes a review nobody did; the declared one is what the package says.
      licenseConcluded: NOASSERTION,
      licenseDeclared: declared(p, refs),
      copyrightText: NOASSERTION,
      externalRefs: [
        { referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl(p) },
      ],
    });
  }
  // a loop, not push(...contains): 170,000 arguments overflow the call stack
  for (const r of contains) relationships.push(r);

  const body = {
    spdxVersion: 'SPDX-2.3' as const,
    dataLicense: 'CC0-1.0' as const,
    SPDXID: 'SPDXRef-DOCUMENT' as const,
    name: input.name,
    creationInfo: { created: input.created, creators: [`Tool: hvnode-${input.toolVersion}`] },
    packages,
    files,
    ...(refs.size > 0
      ? {
          hasExtractedLicensingInfos: [...refs].sort().map((licenseId) => ({
            licenseId,
            name: licenseId.slice('LicenseRef-'.length),
            extractedText: `The license named "${licenseId.slice('LicenseRef-'.length)}" in ${LICENSE_SOURCE[input.packages.some((p) => p.format === 'rpm') ? 'rpm' : 'deb']}.`,
          })),
        }
      : {}),
    relationships,
  };
  // same content, same namespace: a rebuild of the same image gives the same document
  const hash = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 32);
  const { spdxVersion, dataLicense, SPDXID, name, ...rest } = body;
  return {
    spdxVersion,
    dataLicense,
    SPDXID,
    name,
    documentNamespace: `https://hvnode.invalid/spdx/${encodeURIComponent(input.name)}-${hash}`,
    ...rest,
  };
}
