import type { Readable } from 'node:stream';
import type { Sensitive } from '../sensitive.js';

export interface S3Settings {
  bucket: string;
  region: string;
  endpoint?: string | undefined;
  forcePathStyle: boolean;
  /** Unset: the SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...). */
  credentials?: { accessKeyId: string; secretAccessKey: Sensitive } | undefined;
}

export interface S3Object {
  key: string;
  sizeBytes: number;
  lastModified: Date | undefined;
}

/** What an upload reads: a file of known size, read part by part (so a failed part can be sent again). */
export interface UploadSource {
  sizeBytes: number;
  read(start: number, length: number): Promise<Buffer>;
}

export interface MultipartListener {
  creating(): Promise<void>;
  created(uploadId: string): Promise<void>;
}

export interface UploadOptions {
  metadata: Record<string, string>;
  partSizeBytes: number;
  /** Parts in flight at once. */
  queueSize: number;
  onMultipart?: MultipartListener;
}

/** S3 behind one interface; the SDK loads only when a backup command talks to S3. */
export interface S3Adapter {
  /**
   * One PutObject when the source fits in one part, else a multipart upload. `onMultipart` hears of one
   * before CreateMultipartUpload is sent, then of its id before any part is: to record them, so that
   * the next run can abort the upload of a run killed mid-way. On failure nothing is aborted here: the
   * caller has the id.
   */
  upload(key: string, source: UploadSource, options: UploadOptions): Promise<void>;
  /** AbortMultipartUpload; `gone` when the store knows no such upload (completed, or aborted already). */
  abortMultipart(key: string, uploadId: string): Promise<'aborted' | 'gone'>;
  /** The ids of the multipart uploads in progress for exactly this key (ListMultipartUploads). */
  listMultipartUploads(key: string): Promise<string[]>;
  head(key: string): Promise<{ sizeBytes: number; metadata: Record<string, string> } | undefined>;
  list(prefix: string): Promise<S3Object[]>;
  remove(keys: readonly string[]): Promise<void>;
  download(key: string): Promise<Readable>;
}

/** S3 takes at most 10,000 parts. */
export const MAX_PARTS = 10_000;

/**
 * Pure: the parts of a multipart upload of `sizeBytes`: `partSizeBytes` each (the last one shorter),
 * grown to whole MiB when 10,000 would not hold the object. One part means one PutObject.
 */
export function planParts(
  sizeBytes: number,
  partSizeBytes: number,
): Array<{ partNumber: number; start: number; length: number }> {
  const mib = 2 ** 20;
  const size = Math.max(partSizeBytes, Math.ceil(sizeBytes / MAX_PARTS / mib) * mib);
  const count = Math.max(1, Math.ceil(sizeBytes / size));
  return Array.from({ length: count }, (_, i) => ({
    partNumber: i + 1,
    start: i * size,
    length: Math.min(size, sizeBytes - i * size),
  }));
}

/**
 * Pure: what a failed AbortMultipartUpload means. `gone`: no such upload (it completed, or was aborted
 * already). `unsupported`: the store does not implement the call (s3rver answers 405, see
 * ENVIRONMENT.md); asking again will not help, a lifecycle rule must clean up. `failed`: anything else
 * (network, credentials), worth another try later.
 */
export function abortFailureKind(error: {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}): 'gone' | 'unsupported' | 'failed' {
  const status = error.$metadata?.httpStatusCode;
  const name = error.Code ?? error.name;
  if (status === 404 || name === 'NoSuchUpload') return 'gone';
  if (status === 405 || status === 501 || name === 'MethodNotAllowed' || name === 'NotImplemented')
    return 'unsupported';
  return 'failed';
}

export async function createS3Adapter(settings: S3Settings): Promise<S3Adapter> {
  // The SDK warns on every run under Node 20 that its 2027 releases will need Node 22: cron would mail
  // it nightly. The README says so once (Install); an operator's own setting wins.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const sdk = await import('@aws-sdk/client-s3');
  const client = new sdk.S3Client({
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.forcePathStyle,
    // S3-compatible stores (and s3rver) mishandle the SDK's default streaming checksums; our own sha256
    // in the manifest is the integrity check.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    ...(settings.credentials
      ? {
          credentials: {
            accessKeyId: settings.credentials.accessKeyId,
            secretAccessKey: settings.credentials.secretAccessKey.reveal(),
          },
        }
      : {}),
  });
  const Bucket = settings.bucket;
  return {
    async upload(key, source, options) {
      const parts = planParts(source.sizeBytes, options.partSizeBytes);
      const common = { Bucket, Key: key, Metadata: options.metadata, ContentType: 'application/gzip' };
      if (parts.length === 1) {
        await client.send(
          new sdk.PutObjectCommand({
            ...common,
            Body: await source.read(0, source.sizeBytes),
            ContentLength: source.sizeBytes,
          }),
        );
        return;
      }
      await options.onMultipart?.creating();
      const created = await client.send(new sdk.CreateMultipartUploadCommand(common));
      const UploadId = created.UploadId;
      if (!UploadId) throw new Error('CreateMultipartUpload answered no UploadId');
      await options.onMultipart?.created(UploadId);
      // queueSize workers take the parts in order; the first failure stops them taking more, and every
      // request in flight ends before the upload is reported failed (so the caller's abort comes last).
      const etags: string[] = [];
      let next = 0;
      let failed = false;
      const worker = async () => {
        while (!failed && next < parts.length) {
          const part = parts[next++]!;
          try {
            const body = await source.read(part.start, part.length);
            const r = await client.send(
              new sdk.UploadPartCommand({
                Bucket,
                Key: key,
                UploadId,
                PartNumber: part.partNumber,
                Body: body,
                ContentLength: part.length,
              }),
            );
            if (!r.ETag) throw new Error(`UploadPart ${part.partNumber} answered no ETag`);
            etags[part.partNumber - 1] = r.ETag;
          } catch (error) {
            failed = true;
            throw error;
          }
        }
      };
      const settled = await Promise.allSettled(
        Array.from({ length: Math.min(Math.max(1, options.queueSize), parts.length) }, worker),
      );
      const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (rejected) throw rejected.reason;
      await client.send(
        new sdk.CompleteMultipartUploadCommand({
          Bucket,
          Key: key,
          UploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: etags[p.partNumber - 1]! })) },
        }),
      );
    },
    async abortMultipart(key, uploadId) {
      try {
        await client.send(new sdk.AbortMultipartUploadCommand({ Bucket, Key: key, UploadId: uploadId }));
        return 'aborted';
      } catch (error) {
        if (abortFailureKind(error as Parameters<typeof abortFailureKind>[0]) === 'gone') return 'gone';
        throw error;
      }
    },
    async listMultipartUploads(key) {
      const ids: string[] = [];
      let markers: { KeyMarker?: string | undefined; UploadIdMarker?: string | undefined } = {};
      for (;;) {
        const r = await client.send(new sdk.ListMultipartUploadsCommand({ Bucket, Prefix: key, ...markers }));
        for (const u of r.Uploads ?? []) if (u.Key === key && u.UploadId) ids.push(u.UploadId);
        if (!r.IsTruncated) return ids;
        markers = { KeyMarker: r.NextKeyMarker, UploadIdMarker: r.NextUploadIdMarker };
      }
    },
    async head(key) {
      try {
        const r = await client.send(new sdk.HeadObjectCommand({ Bucket, Key: key }));
        return { sizeBytes: r.ContentLength ?? 0, metadata: r.Metadata ?? {} };
      } catch (error) {
        const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (status === 404 || (error as Error).name === 'NotFound') return undefined;
        throw error;
      }
    },
    async list(prefix) {
      const out: S3Object[] = [];
      let token: string | undefined;
      do {
        const r = await client.send(new sdk.ListObjectsV2Command({ Bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of r.Contents ?? [])
          if (o.Key) out.push({ key: o.Key, sizeBytes: o.Size ?? 0, lastModified: o.LastModified });
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      return out;
    },
    async remove(keys) {
      for (let i = 0; i < keys.length; i += 1000) {
        const r = await client.send(
          new sdk.DeleteObjectsCommand({
            Bucket,
            Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true },
          }),
        );
        if (r.Errors?.length)
          throw new Error(`S3 DeleteObjects: ${r.Errors.map((e) => `${e.Key}: ${e.Code}`).join(', ')}`);
      }
    },
    async download(key) {
      const r = await client.send(new sdk.GetObjectCommand({ Bucket, Key: key }));
      return r.Body as Readable;
    },
  };
}
