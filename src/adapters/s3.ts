import type { Readable } from 'node:stream';
import type { Sensitive } from '../config/sensitive.js';

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

/** S3 behind one interface; the SDK loads only when a backup command talks to S3. */
export interface S3Adapter {
  upload(key: string, body: Readable, options: { metadata: Record<string, string>; partSizeBytes: number; queueSize: number }): Promise<void>;
  head(key: string): Promise<{ sizeBytes: number; metadata: Record<string, string> } | undefined>;
  list(prefix: string): Promise<S3Object[]>;
  remove(keys: readonly string[]): Promise<void>;
  download(key: string): Promise<Readable>;
}

export async function createS3Adapter(settings: S3Settings): Promise<S3Adapter> {
  // The SDK warns on every run under Node 20 that its 2027 releases will need Node 22: cron would mail
  // it nightly. The README says so once (Install); an operator's own setting wins.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const sdk = await import('@aws-sdk/client-s3');
  const { Upload } = await import('@aws-sdk/lib-storage');
  const client = new sdk.S3Client({
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.forcePathStyle,
    // S3-compatible stores (and s3rver) mishandle the SDK's default streaming checksums; our own sha256
    // in the manifest is the integrity check.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    ...(settings.credentials ? { credentials: { accessKeyId: settings.credentials.accessKeyId, secretAccessKey: settings.credentials.secretAccessKey.reveal() } } : {}),
  });
  const Bucket = settings.bucket;
  return {
    async upload(key, body, options) {
      const upload = new Upload({
        client,
        params: { Bucket, Key: key, Body: body, Metadata: options.metadata, ContentType: 'application/gzip' },
        partSize: options.partSizeBytes,
        queueSize: options.queueSize,
        // Keep the real cause: some stores answer AbortMultipartUpload with an error that would hide it.
        leavePartsOnError: true,
      });
      try {
        await upload.done();
      } catch (error) {
        await upload.abort().catch(() => {});
        throw error;
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
        for (const o of r.Contents ?? []) if (o.Key) out.push({ key: o.Key, sizeBytes: o.Size ?? 0, lastModified: o.LastModified });
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      return out;
    },
    async remove(keys) {
      for (let i = 0; i < keys.length; i += 1000) {
        const r = await client.send(new sdk.DeleteObjectsCommand({ Bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }));
        if (r.Errors?.length) throw new Error(`S3 DeleteObjects: ${r.Errors.map((e) => `${e.Key}: ${e.Code}`).join(', ')}`);
      }
    },
    async download(key) {
      const r = await client.send(new sdk.GetObjectCommand({ Bucket, Key: key }));
      return r.Body as Readable;
    },
  };
}
